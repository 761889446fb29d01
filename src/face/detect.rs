//! Face detection: SeetaFace first (the pure-Rust `rustface` port; model weights BSD-2,
//! embedded), frontal and near-frontal faces down to about 20 px. When it finds nothing, the
//! BlazeFace fallback ([`super::blaze`]): the whole image letterboxed to 256x256, then, if still
//! nothing, the same frame rotated by ±25° and ±45° (faces rolled further than the network
//! tolerates), mapped back to the image as an axis-aligned box. Fallback boxes are rescaled to
//! SeetaFace's convention (measured on photos both find; see `docs/face-detect.md`) so that
//! callers crop them the same way; their score is BlazeFace's probability (0..1), SeetaFace
//! scores are larger (above 2).

use std::sync::OnceLock;

use image::RgbImage;

use super::blaze::{self, BlazeDetection, BlazeFace};

static SEETA_MODEL: &[u8] = include_bytes!("../../assets/face/seeta_fd_frontal_v1.0.bin");

/// A detected face: box `[x0, y0, x1, y1]` in image pixels and the detector's score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceBox {
    pub bbox: [f32; 4],
    pub score: f32,
}

/// Detection settings.
#[derive(Debug, Clone, Copy)]
pub struct DetectOptions {
    pub min_face: u32,
    pub score_threshold: f64,
    /// Run the BlazeFace fallback when SeetaFace finds nothing (default true).
    pub fallback: bool,
    /// Least BlazeFace probability for a fallback face (default [`FALLBACK_SCORE`]).
    pub fallback_score: f32,
}

impl Default for DetectOptions {
    fn default() -> Self {
        Self {
            min_face: 20,
            score_threshold: 2.0,
            fallback: true,
            fallback_score: FALLBACK_SCORE,
        }
    }
}

/// Default least BlazeFace probability for a fallback face.
pub const FALLBACK_SCORE: f32 = 0.6;
/// Roll angles (degrees) of the rotated retries, in order; the best-scored angle wins.
pub const RETRY_ANGLES: [f32; 4] = [25.0, -25.0, 45.0, -45.0];
/// BlazeFace box -> SeetaFace box: side = SEETA_SCALE · BlazeFace width, centre moved by
/// SEETA_SHIFT · BlazeFace width (x, y in the face's upright frame). Medians over faces both
/// detectors find (tests/face_real.rs `fallback_benchmark` prints them).
const SEETA_SCALE: f32 = 1.07;
const SEETA_SHIFT: [f32; 2] = [0.0, -0.08];

/// Find faces, largest score first: SeetaFace, else the BlazeFace fallback (see the module doc).
pub fn detect_faces(img: &RgbImage, opts: DetectOptions) -> Vec<FaceBox> {
    let faces = detect_seeta(img, opts);
    if !faces.is_empty() || !opts.fallback {
        return faces;
    }
    detect_fallback(img, opts)
}

/// The BlazeFace model, loaded once (None if the embedded weights fail to load).
pub fn blazeface() -> Option<&'static BlazeFace> {
    static MODEL: OnceLock<Option<BlazeFace>> = OnceLock::new();
    MODEL
        .get_or_init(|| BlazeFace::load_default().ok())
        .as_ref()
}

/// The fallback alone: BlazeFace on the letterboxed image, then the rotated retries.
pub fn detect_fallback(img: &RgbImage, opts: DetectOptions) -> Vec<FaceBox> {
    let (w, h) = img.dimensions();
    let Some(net) = blazeface() else {
        return Vec::new();
    };
    if w < 20 || h < 20 {
        return Vec::new();
    }
    let run = |roll_deg: f32| -> Vec<FaceBox> {
        let frame = blaze::whole_frame(img, 1.0, roll_deg.to_radians());
        let dets = net
            .detect_frame(img, frame, opts.fallback_score)
            .unwrap_or_default();
        let mut faces: Vec<FaceBox> = dets
            .iter()
            .filter_map(|d| seeta_like(d, frame.roll, w, h, opts.min_face))
            .collect();
        faces.sort_by(|a, b| b.score.total_cmp(&a.score));
        faces
    };
    let upright = run(0.0);
    if !upright.is_empty() {
        return upright;
    }
    RETRY_ANGLES
        .iter()
        .map(|&a| run(a))
        .filter(|f| !f.is_empty())
        .max_by(|a, b| a[0].score.total_cmp(&b[0].score))
        .unwrap_or_default()
}

/// A BlazeFace box in SeetaFace's convention (not clipped). `roll`: the rotation of the frame
/// it was found in, so that the centre shift follows the face's own up direction.
pub fn seeta_box(d: &BlazeDetection, roll: f32) -> [f32; 4] {
    let [x0, y0, x1, y1] = d.bbox;
    let bw = x1 - x0;
    let half = SEETA_SCALE * bw / 2.0;
    let (sin, cos) = roll.sin_cos();
    let (sx, sy) = (SEETA_SHIFT[0] * bw, SEETA_SHIFT[1] * bw);
    let cx = (x0 + x1) / 2.0 + cos * sx - sin * sy;
    let cy = (y0 + y1) / 2.0 + sin * sx + cos * sy;
    [cx - half, cy - half, cx + half, cy + half]
}

/// [`seeta_box`] clipped to the image, or None when smaller than `min_face` or outside.
fn seeta_like(d: &BlazeDetection, roll: f32, w: u32, h: u32, min_face: u32) -> Option<FaceBox> {
    let s = seeta_box(d, roll);
    let side = s[2] - s[0];
    let b = [
        s[0].max(0.0),
        s[1].max(0.0),
        s[2].min(w as f32),
        s[3].min(h as f32),
    ];
    let ok = side >= min_face.max(1) as f32 && b[2] - b[0] >= 2.0 && b[3] - b[1] >= 2.0;
    ok.then_some(FaceBox {
        bbox: b,
        score: d.score,
    })
}

/// SeetaFace alone (the detector before the fallback existed).
pub fn detect_seeta(img: &RgbImage, opts: DetectOptions) -> Vec<FaceBox> {
    let (w, h) = img.dimensions();
    if w < 20 || h < 20 {
        return Vec::new();
    }
    let model = match rustface::read_model(SEETA_MODEL) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    let mut det = rustface::create_detector_with_model(model);
    det.set_min_face_size(opts.min_face.max(20));
    det.set_score_thresh(opts.score_threshold.max(0.01)); // rustface panics at <= 0
    det.set_pyramid_scale_factor(0.8);
    det.set_slide_window_step(4, 4);
    let gray = image::DynamicImage::ImageRgb8(img.clone()).to_luma8();
    let data = rustface::ImageData::new(gray.as_raw(), w, h);
    let mut faces: Vec<FaceBox> = det
        .detect(&data)
        .into_iter()
        .map(|f| {
            let b = f.bbox();
            let x0 = b.x().max(0) as f32;
            let y0 = b.y().max(0) as f32;
            let x1 = ((b.x() + b.width() as i32) as f32).min(w as f32);
            let y1 = ((b.y() + b.height() as i32) as f32).min(h as f32);
            FaceBox {
                bbox: [x0, y0, x1, y1],
                score: f.score() as f32,
            }
        })
        .collect();
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    faces
}

/// Intersection over union of two boxes.
pub fn box_iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let ix = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iy = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ix * iy;
    let area = |r: [f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeta_box_scales_and_shifts_along_the_face_up_direction() {
        let d = BlazeDetection {
            bbox: [0.0, 0.0, 100.0, 100.0],
            keypoints: [[0.0; 2]; 6],
            score: 0.9,
        };
        let up = seeta_box(&d, 0.0);
        assert!((up[2] - up[0] - 100.0 * SEETA_SCALE).abs() < 1e-3);
        assert!(((up[1] + up[3]) / 2.0 - (50.0 + 100.0 * SEETA_SHIFT[1])).abs() < 1e-3);
        // A frame turned a quarter clockwise: the face's "up" is the image's +x.
        let turned = seeta_box(&d, std::f32::consts::FRAC_PI_2);
        assert!(((turned[0] + turned[2]) / 2.0 - (50.0 - 100.0 * SEETA_SHIFT[1])).abs() < 1e-3);
        assert!(((turned[1] + turned[3]) / 2.0 - 50.0).abs() < 1e-3);
        // Clipped to the image; too small is dropped.
        let clipped = seeta_like(&d, 0.0, 60, 60, 20).unwrap();
        assert_eq!([clipped.bbox[2], clipped.bbox[3]], [60.0, 60.0]);
        assert!(seeta_like(&d, 0.0, 500, 500, 200).is_none());
    }
}
