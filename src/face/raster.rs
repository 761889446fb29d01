//! Binary mask rasterization: scanline polygon fill, thick polylines, ellipses, Euclidean
//! dilation/erosion and set operations on image-sized masks (`GrayImage`, 0 = out, 255 = in).
//!
//! Pixel `(x, y)` covers the unit square `[x, x+1) × [y, y+1)` and is inside a shape when its
//! centre `(x + 0.5, y + 0.5)` is. Polygons use the even-odd rule.

use image::{GrayImage, Luma};

/// Value of a pixel inside a mask.
pub const ON: u8 = 255;

/// An empty mask of the given size.
pub fn empty(width: u32, height: u32) -> GrayImage {
    GrayImage::new(width, height)
}

/// A mask with every pixel set.
pub fn full(width: u32, height: u32) -> GrayImage {
    GrayImage::from_pixel(width, height, Luma([ON]))
}

/// Fill a polygon (even-odd rule) into `mask`, setting covered pixels to `value`.
/// Vertices are in pixel coordinates; fewer than 3 vertices or non-finite ones draw nothing.
pub fn fill_polygon(mask: &mut GrayImage, poly: &[[f32; 2]], value: u8) {
    let (w, h) = mask.dimensions();
    if poly.len() < 3 || w == 0 || h == 0 || poly.iter().flatten().any(|v| !v.is_finite()) {
        return;
    }
    let ymin = poly.iter().map(|p| p[1]).fold(f32::INFINITY, f32::min);
    let ymax = poly.iter().map(|p| p[1]).fold(f32::NEG_INFINITY, f32::max);
    let y0 = (ymin - 0.5).ceil().max(0.0) as i64;
    let y1 = ((ymax - 0.5).floor() as i64).min(h as i64 - 1);
    let mut xs: Vec<f32> = Vec::with_capacity(16);
    for y in y0..=y1 {
        let sy = y as f32 + 0.5;
        xs.clear();
        for i in 0..poly.len() {
            let a = poly[i];
            let b = poly[(i + 1) % poly.len()];
            // Half-open rule so that a vertex on the scanline is counted once.
            if (a[1] <= sy && b[1] > sy) || (b[1] <= sy && a[1] > sy) {
                let t = (sy - a[1]) / (b[1] - a[1]);
                xs.push(a[0] + t * (b[0] - a[0]));
            }
        }
        xs.sort_by(f32::total_cmp);
        for pair in xs.chunks_exact(2) {
            // Pixels whose centre x + 0.5 lies in [pair[0], pair[1]).
            let xa = (pair[0] - 0.5).ceil().max(0.0) as i64;
            let xb = ((pair[1] - 0.5).ceil() as i64 - 1).min(w as i64 - 1);
            for x in xa..=xb {
                mask.put_pixel(x as u32, y as u32, Luma([value]));
            }
        }
    }
}

/// Fill an ellipse with centre `c`, semi-axes `rx`, `ry` and the first axis along the unit
/// direction `axis` (pixel coordinates).
pub fn fill_ellipse(mask: &mut GrayImage, c: [f32; 2], rx: f32, ry: f32, axis: [f32; 2]) {
    if rx.is_nan() || ry.is_nan() || rx <= 0.0 || ry <= 0.0 {
        return;
    }
    let n = 48;
    let poly: Vec<[f32; 2]> = (0..n)
        .map(|k| {
            let t = k as f32 / n as f32 * std::f32::consts::TAU;
            let (u, v) = (rx * t.cos(), ry * t.sin());
            [
                c[0] + u * axis[0] - v * axis[1],
                c[1] + u * axis[1] + v * axis[0],
            ]
        })
        .collect();
    fill_polygon(mask, &poly, ON);
}

/// Fill a thick polyline: every point within `half_width` of the path (round joins and caps).
pub fn fill_band(mask: &mut GrayImage, path: &[[f32; 2]], half_width: f32, closed: bool) {
    if path.is_empty() || half_width.is_nan() || half_width <= 0.0 {
        return;
    }
    let seg_count = if closed { path.len() } else { path.len() - 1 };
    for i in 0..seg_count {
        let a = path[i];
        let b = path[(i + 1) % path.len()];
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let len = (dx * dx + dy * dy).sqrt();
        if len > 1e-6 {
            let (nx, ny) = (-dy / len * half_width, dx / len * half_width);
            let quad = [
                [a[0] + nx, a[1] + ny],
                [b[0] + nx, b[1] + ny],
                [b[0] - nx, b[1] - ny],
                [a[0] - nx, a[1] - ny],
            ];
            fill_polygon(mask, &quad, ON);
        }
    }
    for p in path {
        fill_ellipse(mask, *p, half_width, half_width, [1.0, 0.0]);
    }
}

/// Set every pixel of `a` that is set in `b` (a ∪= b).
pub fn union_in_place(a: &mut GrayImage, b: &GrayImage) {
    zip_in_place(a, b, |x, y| x.max(y));
}

/// Clear every pixel of `a` that is not set in `b` (a ∩= b).
pub fn intersect_in_place(a: &mut GrayImage, b: &GrayImage) {
    zip_in_place(a, b, |x, y| if y > 0 { x } else { 0 });
}

/// Clear every pixel of `a` that is set in `b` (a −= b).
pub fn subtract_in_place(a: &mut GrayImage, b: &GrayImage) {
    zip_in_place(a, b, |x, y| if y > 0 { 0 } else { x });
}

/// Invert a mask in place.
pub fn invert_in_place(a: &mut GrayImage) {
    for p in a.iter_mut() {
        *p = if *p > 0 { 0 } else { ON };
    }
}

fn zip_in_place(a: &mut GrayImage, b: &GrayImage, f: impl Fn(u8, u8) -> u8) {
    assert_eq!(a.dimensions(), b.dimensions(), "mask sizes differ");
    for (x, y) in a.iter_mut().zip(b.iter()) {
        *x = f(*x, *y);
    }
}

/// Number of set pixels.
pub fn area(mask: &GrayImage) -> u64 {
    mask.iter().filter(|&&v| v > 0).count() as u64
}

/// Number of pixels above `thr`.
pub fn mask_area(m: &GrayImage, thr: u8) -> u64 {
    m.as_raw().iter().filter(|&&v| v > thr).count() as u64
}

/// Number of pixels set in both masks.
pub fn overlap(a: &GrayImage, b: &GrayImage) -> u64 {
    a.iter()
        .zip(b.iter())
        .filter(|(x, y)| **x > 0 && **y > 0)
        .count() as u64
}

/// Tight box `[x0, y0, x1, y1]` (exclusive end) of the set pixels, `None` when empty.
pub fn bbox(mask: &GrayImage) -> Option<[u32; 4]> {
    let (w, h) = mask.dimensions();
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for y in 0..h {
        let row = &mask.as_raw()[(y * w) as usize..((y + 1) * w) as usize];
        if let Some(first) = row.iter().position(|&v| v > 0) {
            let last = row.iter().rposition(|&v| v > 0).unwrap_or(first);
            x0 = x0.min(first as u32);
            x1 = x1.max(last as u32 + 1);
            y0 = y0.min(y);
            y1 = y + 1;
        }
    }
    (x0 != u32::MAX).then_some([x0, y0, x1, y1])
}

/// Squared Euclidean distance from every pixel to the nearest set pixel (`f32::INFINITY`
/// where the mask is empty). Exact, linear time (Felzenszwalb & Huttenlocher 2012).
pub fn distance_sq_to_set(mask: &GrayImage) -> Vec<f32> {
    let (w, h) = (mask.width() as usize, mask.height() as usize);
    let inf = 1e20_f32;
    let mut d: Vec<f32> = mask
        .iter()
        .map(|&v| if v > 0 { 0.0 } else { inf })
        .collect();
    let n = w.max(h);
    let mut f = vec![0.0f32; n];
    let mut out = vec![0.0f32; n];
    let mut v = vec![0usize; n];
    let mut z = vec![0.0f32; n + 1];
    for x in 0..w {
        for y in 0..h {
            f[y] = d[y * w + x];
        }
        edt_1d(&f[..h], &mut out[..h], &mut v, &mut z);
        for y in 0..h {
            d[y * w + x] = out[y];
        }
    }
    for y in 0..h {
        f[..w].copy_from_slice(&d[y * w..(y + 1) * w]);
        edt_1d(&f[..w], &mut out[..w], &mut v, &mut z);
        d[y * w..(y + 1) * w].copy_from_slice(&out[..w]);
    }
    for x in d.iter_mut() {
        if *x >= inf * 0.5 {
            *x = f32::INFINITY;
        }
    }
    d
}

/// One-dimensional squared distance transform of the sampled function `f`.
fn edt_1d(f: &[f32], out: &mut [f32], v: &mut [usize], z: &mut [f32]) {
    let n = f.len();
    if n == 0 {
        return;
    }
    let mut k = 0usize;
    v[0] = 0;
    z[0] = f32::NEG_INFINITY;
    z[1] = f32::INFINITY;
    for q in 1..n {
        loop {
            let p = v[k];
            let s = ((f[q] + (q * q) as f32) - (f[p] + (p * p) as f32)) / (2.0 * (q - p) as f32);
            if s <= z[k] && k > 0 {
                k -= 1;
            } else {
                k += 1;
                v[k] = q;
                z[k] = s;
                z[k + 1] = f32::INFINITY;
                break;
            }
        }
    }
    k = 0;
    for (q, o) in out.iter_mut().enumerate() {
        while z[k + 1] < q as f32 {
            k += 1;
        }
        let p = v[k];
        let dq = q as f32 - p as f32;
        *o = dq * dq + f[p];
    }
}

/// Grow a mask by `radius` pixels (a disc structuring element).
pub fn dilate(mask: &GrayImage, radius: f32) -> GrayImage {
    let d = distance_sq_to_set(mask);
    let r2 = radius * radius;
    let mut out = GrayImage::new(mask.width(), mask.height());
    for (o, dv) in out.iter_mut().zip(d.iter()) {
        *o = if *dv <= r2 { ON } else { 0 };
    }
    out
}

/// Shrink a mask by `radius` pixels (a disc structuring element). Pixels outside the image
/// count as outside the mask.
pub fn erode(mask: &GrayImage, radius: f32) -> GrayImage {
    let (w, h) = mask.dimensions();
    // Erosion is the complement of dilating the complement; pad by one pixel so that the
    // image border counts as background.
    let mut comp = GrayImage::from_pixel(w + 2, h + 2, Luma([ON]));
    for (x, y, p) in mask.enumerate_pixels() {
        if p[0] > 0 {
            comp.put_pixel(x + 1, y + 1, Luma([0]));
        }
    }
    let grown = dilate(&comp, radius);
    let mut out = GrayImage::new(w, h);
    for (x, y, p) in out.enumerate_pixels_mut() {
        if grown.get_pixel(x + 1, y + 1)[0] == 0 {
            *p = Luma([ON]);
        }
    }
    out
}

/// The inner outline of a mask: set pixels with a 4-neighbour outside the mask (or at the
/// image border), `thickness` pixels wide.
pub fn outline(mask: &GrayImage, thickness: f32) -> GrayImage {
    let mut out = mask.clone();
    let inner = erode(mask, thickness.max(1.0));
    subtract_in_place(&mut out, &inner);
    out
}

/// The inside pixel farthest from the mask's border (a good place for a label) and that
/// distance in pixels, `None` when the mask is empty.
pub fn pole_of_inaccessibility(mask: &GrayImage) -> Option<(u32, u32, f32)> {
    let (w, h) = mask.dimensions();
    let mut comp = mask.clone();
    invert_in_place(&mut comp);
    let d = distance_sq_to_set(&comp);
    let mut best: Option<(f32, u32, u32)> = None;
    for y in 0..h {
        for x in 0..w {
            if mask.get_pixel(x, y)[0] == 0 {
                continue;
            }
            // Distance to the image border counts too.
            let bx = (x.min(w - 1 - x) + 1) as f32;
            let by = (y.min(h - 1 - y) + 1) as f32;
            let dv = d[(y * w + x) as usize].min(bx * bx).min(by * by);
            if best.is_none_or(|b| dv > b.0) {
                best = Some((dv, x, y));
            }
        }
    }
    best.map(|(d, x, y)| (x, y, d.sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_fill_covers_exact_pixels() {
        let mut m = empty(10, 10);
        fill_polygon(
            &mut m,
            &[[2.0, 3.0], [6.0, 3.0], [6.0, 8.0], [2.0, 8.0]],
            ON,
        );
        assert_eq!(area(&m), 4 * 5);
        assert_eq!(bbox(&m), Some([2, 3, 6, 8]));
    }

    #[test]
    fn triangle_area_is_close_to_geometry() {
        let mut m = empty(200, 200);
        fill_polygon(&mut m, &[[10.0, 10.0], [190.0, 10.0], [10.0, 190.0]], ON);
        let want = 180.0 * 180.0 / 2.0;
        assert!((area(&m) as f32 - want).abs() / want < 0.01);
    }

    #[test]
    fn polygon_outside_image_is_clipped() {
        let mut m = empty(10, 10);
        fill_polygon(
            &mut m,
            &[[-5.0, -5.0], [50.0, -5.0], [50.0, 50.0], [-5.0, 50.0]],
            ON,
        );
        assert_eq!(area(&m), 100);
        let mut m = empty(10, 10);
        fill_polygon(&mut m, &[[f32::NAN, 1.0], [5.0, 1.0], [5.0, 5.0]], ON);
        assert_eq!(area(&m), 0);
    }

    #[test]
    fn disc_dilate_erode_and_distance() {
        let mut m = empty(101, 101);
        m.put_pixel(50, 50, Luma([ON]));
        let d = dilate(&m, 20.0);
        let a = area(&d) as f32;
        let want = std::f32::consts::PI * 400.0;
        assert!((a - want).abs() / want < 0.05, "disc area {a} vs {want}");
        let e = erode(&d, 10.0);
        let a = area(&e) as f32;
        let want = std::f32::consts::PI * 100.0;
        assert!((a - want).abs() / want < 0.1, "eroded area {a} vs {want}");
        let ds = distance_sq_to_set(&m);
        assert_eq!(ds[50 * 101 + 53], 9.0);
        assert_eq!(ds[54 * 101 + 53], 25.0);
        let (x, y, r) = pole_of_inaccessibility(&d).unwrap();
        assert_eq!((x, y), (50, 50));
        assert!((r - 21.0).abs() <= 1.0, "{r}");
    }

    #[test]
    fn set_operations() {
        let mut a = empty(10, 1);
        let mut b = empty(10, 1);
        for x in 0..6 {
            a.put_pixel(x, 0, Luma([ON]));
        }
        for x in 4..10 {
            b.put_pixel(x, 0, Luma([ON]));
        }
        assert_eq!(overlap(&a, &b), 2);
        let mut u = a.clone();
        union_in_place(&mut u, &b);
        assert_eq!(area(&u), 10);
        let mut i = a.clone();
        intersect_in_place(&mut i, &b);
        assert_eq!(area(&i), 2);
        let mut d = a.clone();
        subtract_in_place(&mut d, &b);
        assert_eq!(area(&d), 4);
        invert_in_place(&mut d);
        assert_eq!(area(&d), 6);
    }

    #[test]
    fn band_has_expected_width() {
        let mut m = empty(100, 40);
        fill_band(&mut m, &[[10.0, 20.0], [90.0, 20.0]], 5.0, false);
        // 80 px long, 10 px wide, plus two half discs.
        let want = 80.0 * 10.0 + std::f32::consts::PI * 25.0;
        let a = area(&m) as f32;
        assert!((a - want).abs() / want < 0.05, "{a} vs {want}");
    }
}
