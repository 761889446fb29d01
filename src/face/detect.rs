//! Face detection with SeetaFace (the pure-Rust `rustface` port; model weights BSD-2, embedded).
//! Frontal and near-frontal faces, down to about 20 px; profiles are not found ("no usable face").

use image::RgbImage;

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
}

impl Default for DetectOptions {
    fn default() -> Self {
        Self {
            min_face: 20,
            score_threshold: 2.0,
        }
    }
}

/// Find faces, largest score first.
pub fn detect_faces(img: &RgbImage, opts: DetectOptions) -> Vec<FaceBox> {
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
