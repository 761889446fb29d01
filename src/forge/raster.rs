//! Small float raster helpers for the forge: planes (masks, weights), RGB float images,
//! separable Gaussian blur, dilation, bilinear sampling and exact mask blending.

use image::{GrayImage, Luma, RgbImage};

/// A single-channel float image, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Plane {
    pub w: u32,
    pub h: u32,
    pub data: Vec<f32>,
}

impl Plane {
    pub fn new(w: u32, h: u32) -> Self {
        Self {
            w,
            h,
            data: vec![0.0; (w * h) as usize],
        }
    }

    /// 0..255 grey → 0..1.
    pub fn from_gray(m: &GrayImage) -> Self {
        Self {
            w: m.width(),
            h: m.height(),
            data: m.as_raw().iter().map(|&v| v as f32 / 255.0).collect(),
        }
    }

    /// 0..1 → 0..255 grey (clamped, rounded).
    pub fn to_gray(&self) -> GrayImage {
        let raw = self
            .data
            .iter()
            .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect();
        GrayImage::from_raw(self.w, self.h, raw).expect("plane size")
    }

    #[inline]
    pub fn get(&self, x: u32, y: u32) -> f32 {
        self.data[(y * self.w + x) as usize]
    }

    #[inline]
    pub fn set(&mut self, x: u32, y: u32, v: f32) {
        let i = (y * self.w + x) as usize;
        self.data[i] = v;
    }

    /// Separable Gaussian blur with clamped borders.
    pub fn blur(&self, sigma: f32) -> Plane {
        let mut out = self.clone();
        blur_channels(&mut out.data, self.w, self.h, 1, sigma);
        out
    }

    /// Grey-level dilation with a square of half-size `r`.
    pub fn dilate(&self, r: u32) -> Plane {
        let pass = |src: &[f32], horizontal: bool| -> Vec<f32> {
            let (w, h) = (self.w as i64, self.h as i64);
            let mut dst = vec![0.0f32; src.len()];
            for y in 0..h {
                for x in 0..w {
                    let mut m = 0.0f32;
                    for d in -(r as i64)..=(r as i64) {
                        let (xx, yy) = if horizontal { (x + d, y) } else { (x, y + d) };
                        if xx >= 0 && yy >= 0 && xx < w && yy < h {
                            m = m.max(src[(yy * w + xx) as usize]);
                        }
                    }
                    dst[(y * w + x) as usize] = m;
                }
            }
            dst
        };
        let a = pass(&self.data, true);
        Plane {
            w: self.w,
            h: self.h,
            data: pass(&a, false),
        }
    }

    /// Sum of all values.
    pub fn sum(&self) -> f32 {
        self.data.iter().sum()
    }

    /// Largest value.
    pub fn max(&self) -> f32 {
        self.data.iter().cloned().fold(0.0, f32::max)
    }
}

/// Separable Gaussian blur of interleaved channels in place.
pub fn blur_channels(data: &mut [f32], w: u32, h: u32, ch: usize, sigma: f32) {
    if sigma <= 0.05 {
        return;
    }
    let r = (sigma * 3.0).ceil() as i64;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let ks: f32 = k.iter().sum();
    let k: Vec<f32> = k.iter().map(|v| v / ks).collect();
    let (w, h) = (w as i64, h as i64);
    let mut tmp = vec![0.0f32; data.len()];
    for y in 0..h {
        for x in 0..w {
            for c in 0..ch {
                let mut acc = 0.0;
                for (j, kv) in k.iter().enumerate() {
                    let xx = (x + j as i64 - r).clamp(0, w - 1);
                    acc += kv * data[((y * w + xx) as usize) * ch + c];
                }
                tmp[((y * w + x) as usize) * ch + c] = acc;
            }
        }
    }
    for y in 0..h {
        for x in 0..w {
            for c in 0..ch {
                let mut acc = 0.0;
                for (j, kv) in k.iter().enumerate() {
                    let yy = (y + j as i64 - r).clamp(0, h - 1);
                    acc += kv * tmp[((yy * w + x) as usize) * ch + c];
                }
                data[((y * w + x) as usize) * ch + c] = acc;
            }
        }
    }
}

/// An RGB image in floats (0..255), interleaved.
#[derive(Debug, Clone, PartialEq)]
pub struct Rgbf {
    pub w: u32,
    pub h: u32,
    pub data: Vec<f32>,
}

impl Rgbf {
    pub fn from_rgb(img: &RgbImage) -> Self {
        Self {
            w: img.width(),
            h: img.height(),
            data: img.as_raw().iter().map(|&v| v as f32).collect(),
        }
    }

    pub fn to_rgb(&self) -> RgbImage {
        let raw = self
            .data
            .iter()
            .map(|&v| v.clamp(0.0, 255.0).round() as u8)
            .collect();
        RgbImage::from_raw(self.w, self.h, raw).expect("rgbf size")
    }

    #[inline]
    pub fn px(&self, x: u32, y: u32) -> [f32; 3] {
        let i = ((y * self.w + x) * 3) as usize;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    #[inline]
    pub fn put(&mut self, x: u32, y: u32, v: [f32; 3]) {
        let i = ((y * self.w + x) * 3) as usize;
        self.data[i..i + 3].copy_from_slice(&v);
    }

    pub fn blur(&self, sigma: f32) -> Rgbf {
        let mut out = self.clone();
        blur_channels(&mut out.data, self.w, self.h, 3, sigma);
        out
    }

    /// Bilinear sample at a real position (clamped to the border).
    pub fn sample(&self, x: f32, y: f32) -> [f32; 3] {
        let xf = x.clamp(0.0, (self.w - 1) as f32);
        let yf = y.clamp(0.0, (self.h - 1) as f32);
        let (x0, y0) = (xf.floor() as u32, yf.floor() as u32);
        let (x1, y1) = ((x0 + 1).min(self.w - 1), (y0 + 1).min(self.h - 1));
        let (fx, fy) = (xf - x0 as f32, yf - y0 as f32);
        let (a, b, c, d) = (
            self.px(x0, y0),
            self.px(x1, y0),
            self.px(x0, y1),
            self.px(x1, y1),
        );
        let mut o = [0.0; 3];
        for i in 0..3 {
            o[i] =
                (a[i] * (1.0 - fx) + b[i] * fx) * (1.0 - fy) + (c[i] * (1.0 - fx) + d[i] * fx) * fy;
        }
        o
    }
}

/// `base*(1-m) + other*m` with `m` the u8 mask / 255; where the mask is 0 the base pixel is
/// copied exactly, so an edit never leaks outside its mask.
pub fn blend(base: &RgbImage, other: &Rgbf, mask: &GrayImage) -> RgbImage {
    let mut out = base.clone();
    for (x, y, p) in out.enumerate_pixels_mut() {
        let m = mask.get_pixel(x, y).0[0];
        if m == 0 {
            continue;
        }
        let a = m as f32 / 255.0;
        let o = other.px(x, y);
        for c in 0..3 {
            p.0[c] = (p.0[c] as f32 * (1.0 - a) + o[c] * a)
                .clamp(0.0, 255.0)
                .round() as u8;
        }
    }
    out
}

/// Filled axis-aligned ellipse (0/255), optionally rotated by `angle` radians.
pub fn ellipse(w: u32, h: u32, cx: f32, cy: f32, rx: f32, ry: f32, angle: f32) -> GrayImage {
    let (s, c) = angle.sin_cos();
    GrayImage::from_fn(w, h, |x, y| {
        let dx = x as f32 + 0.5 - cx;
        let dy = y as f32 + 0.5 - cy;
        let u = (dx * c + dy * s) / rx.max(0.5);
        let v = (-dx * s + dy * c) / ry.max(0.5);
        Luma([if u * u + v * v <= 1.0 { 255 } else { 0 }])
    })
}

/// Bounding box `[x0, y0, x1, y1]` (exclusive end) of pixels above `thr`, if any.
pub fn mask_bbox(m: &GrayImage, thr: u8) -> Option<[f32; 4]> {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0u32, 0u32);
    for (x, y, p) in m.enumerate_pixels() {
        if p.0[0] > thr {
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x + 1);
            y1 = y1.max(y + 1);
        }
    }
    (x0 != u32::MAX).then_some([x0 as f32, y0 as f32, x1 as f32, y1 as f32])
}

/// Centroid of pixels above `thr`.
pub fn mask_centroid(m: &GrayImage, thr: u8) -> Option<[f32; 2]> {
    let (mut sx, mut sy, mut n) = (0f64, 0f64, 0f64);
    for (x, y, p) in m.enumerate_pixels() {
        if p.0[0] > thr {
            sx += x as f64 + 0.5;
            sy += y as f64 + 0.5;
            n += 1.0;
        }
    }
    (n > 0.0).then(|| [(sx / n) as f32, (sy / n) as f32])
}

pub use crate::face::raster::mask_area;

/// Pixel-wise maximum of two masks.
pub fn mask_union(a: &GrayImage, b: &GrayImage) -> GrayImage {
    let mut o = a.clone();
    for (p, q) in o.as_mut().iter_mut().zip(b.as_raw()) {
        *p = (*p).max(*q);
    }
    o
}

/// Intersection over union of two masks binarised at `> thr`.
pub fn mask_iou(a: &GrayImage, b: &GrayImage, thr: u8) -> f32 {
    let (mut i, mut u) = (0u64, 0u64);
    for (p, q) in a.as_raw().iter().zip(b.as_raw()) {
        let (x, y) = (*p > thr, *q > thr);
        i += (x && y) as u64;
        u += (x || y) as u64;
    }
    if u == 0 {
        0.0
    } else {
        i as f32 / u as f32
    }
}
