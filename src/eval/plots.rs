//! PNG plots drawn directly with the `image` crate and the `font8x8` bitmap font: ROC and PR
//! curves (every system on one chart), and per system an IoU histogram, per-recipe and
//! per-concept bars and the forgery-type confusion matrix.

use std::path::{Path, PathBuf};

use font8x8::UnicodeFonts;
use image::{Rgb, RgbImage};

use super::summary::SystemMetrics;
use crate::forge::record::FORGERY_TYPES;

const W: u32 = 640;
const H: u32 = 480;
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
const GREY: Rgb<u8> = Rgb([200, 200, 200]);
const PALETTE: [Rgb<u8>; 6] = [
    Rgb([31, 119, 180]),
    Rgb([214, 39, 40]),
    Rgb([44, 160, 44]),
    Rgb([148, 103, 189]),
    Rgb([255, 127, 14]),
    Rgb([23, 190, 207]),
];

/// Draw `text` with its top-left corner at (x, y), each font pixel `scale` pixels wide.
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, color: Rgb<u8>, scale: u32) {
    for (i, ch) in text.chars().enumerate() {
        let glyph = font8x8::BASIC_FONTS.get(ch).unwrap_or([0; 8]);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits >> col & 1 == 1 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let px = x + (i as i64 * 8 + col) * scale as i64 + dx as i64;
                            let py = y + row as i64 * scale as i64 + dy as i64;
                            put(img, px, py, color);
                        }
                    }
                }
            }
        }
    }
}

fn put(img: &mut RgbImage, x: i64, y: i64, c: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, c);
    }
}

/// A 2-pixel line (Bresenham); `dash` > 0 skips every other `dash` pixels.
fn line(img: &mut RgbImage, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: Rgb<u8>, dash: i64) {
    let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
    let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
    let (mut x, mut y, mut err, mut n) = (x0, y0, dx + dy, 0i64);
    loop {
        if dash == 0 || (n / dash) % 2 == 0 {
            put(img, x, y, c);
            put(img, x + 1, y, c);
            put(img, x, y + 1, c);
        }
        n += 1;
        if x == x1 && y == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

fn fill(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb<u8>) {
    for y in y0..y1 {
        for x in x0..x1 {
            put(img, x, y, c);
        }
    }
}

/// The plotting area of a chart with unit axes.
struct Frame {
    left: i64,
    top: i64,
    right: i64,
    bottom: i64,
}

impl Frame {
    const fn standard() -> Self {
        Frame {
            left: 70,
            top: 62,
            right: W as i64 - 30,
            bottom: H as i64 - 60,
        }
    }
    fn at(&self, x: f64, y: f64) -> (i64, i64) {
        let px = self.left as f64 + x.clamp(0.0, 1.0) * (self.right - self.left) as f64;
        let py = self.bottom as f64 - y.clamp(0.0, 1.0) * (self.bottom - self.top) as f64;
        (px.round() as i64, py.round() as i64)
    }
    /// Axes with ticks at 0, 0.5, 1, a title and axis labels.
    fn axes(&self, img: &mut RgbImage, title: &str, xlabel: &str, ylabel: &str) {
        draw_text(img, self.left, 15, title, BLACK, 2);
        for t in [0.0, 0.25, 0.5, 0.75, 1.0] {
            let (x, _) = self.at(t, 0.0);
            let (_, y) = self.at(0.0, t);
            line(img, (x, self.top), (x, self.bottom), GREY, 3);
            line(img, (self.left, y), (self.right, y), GREY, 3);
            draw_text(img, x - 12, self.bottom + 8, &format!("{t:.2}"), BLACK, 1);
            draw_text(img, self.left - 40, y - 4, &format!("{t:.2}"), BLACK, 1);
        }
        line(
            img,
            (self.left, self.bottom),
            (self.right, self.bottom),
            BLACK,
            0,
        );
        line(
            img,
            (self.left, self.top),
            (self.left, self.bottom),
            BLACK,
            0,
        );
        draw_text(
            img,
            (self.left + self.right) / 2 - 4 * xlabel.len() as i64,
            self.bottom + 25,
            xlabel,
            BLACK,
            1,
        );
        draw_text(img, 4, self.top - 16, ylabel, BLACK, 1);
    }
}

fn canvas() -> RgbImage {
    RgbImage::from_pixel(W, H, WHITE)
}

/// Several curves of (x, y) points in [0, 1]² on one chart, with a legend.
fn curves(
    title: &str,
    xl: &str,
    yl: &str,
    series: &[(String, Vec<(f64, f64)>)],
    diagonal: bool,
) -> RgbImage {
    let mut img = canvas();
    let f = Frame::standard();
    f.axes(&mut img, title, xl, yl);
    if diagonal {
        line(&mut img, f.at(0.0, 0.0), f.at(1.0, 1.0), GREY, 6);
    }
    for (i, (name, pts)) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        for w in pts.windows(2) {
            line(&mut img, f.at(w[0].0, w[0].1), f.at(w[1].0, w[1].1), c, 0);
        }
        for p in pts {
            let (x, y) = f.at(p.0, p.1);
            fill(&mut img, x - 2, y - 2, x + 3, y + 3, c);
        }
        let y = f.bottom - 20 - 14 * (series.len() - 1 - i) as i64;
        fill(&mut img, f.right - 230, y, f.right - 218, y + 8, c);
        draw_text(&mut img, f.right - 212, y, name, BLACK, 1);
    }
    img
}

/// Horizontal bars `(label, value in [0,1], n)`.
fn bars(title: &str, items: &[(String, f64, usize)]) -> RgbImage {
    let h = (90 + 18 * items.len() as u32).max(160);
    let mut img = RgbImage::from_pixel(W, h, WHITE);
    draw_text(&mut img, 10, 12, title, BLACK, 2);
    let (left, right) = (230i64, W as i64 - 90);
    for (i, (label, v, n)) in items.iter().enumerate() {
        let y = 50 + 18 * i as i64;
        let short: String = label.chars().take(27).collect();
        draw_text(&mut img, 8, y + 2, &short, BLACK, 1);
        let x1 = left + (v.clamp(0.0, 1.0) * (right - left) as f64) as i64;
        fill(&mut img, left, y, x1.max(left + 1), y + 12, PALETTE[0]);
        draw_text(
            &mut img,
            right + 6,
            y + 2,
            &format!("{v:.2} n{n}"),
            BLACK,
            1,
        );
    }
    line(&mut img, (left, 46), (left, h as i64 - 30), BLACK, 0);
    draw_text(&mut img, left - 4, h as i64 - 22, "0", BLACK, 1);
    draw_text(&mut img, right - 4, h as i64 - 22, "1", BLACK, 1);
    img
}

/// Histogram of values in [0, 1] in ten bins.
fn histogram(title: &str, values: &[f64]) -> RgbImage {
    let mut counts = [0usize; 10];
    for v in values {
        counts[((v.clamp(0.0, 1.0) * 10.0) as usize).min(9)] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let mut img = canvas();
    let f = Frame::standard();
    f.axes(
        &mut img,
        title,
        "IoU",
        &format!("fakes per bin (axis top = {})", max as usize),
    );
    for (i, c) in counts.iter().enumerate() {
        let (x0, _) = f.at(i as f64 / 10.0, 0.0);
        let (x1, y) = f.at((i + 1) as f64 / 10.0, *c as f64 / max);
        fill(&mut img, x0 + 2, y, x1 - 1, f.bottom, PALETTE[0]);
        if *c > 0 {
            // Inside the bar's top when there is room, else just above it.
            let (ty, color) = if f.bottom - y > 14 {
                (y + 4, WHITE)
            } else {
                (y - 10, BLACK)
            };
            draw_text(&mut img, x0 + 8, ty, &c.to_string(), color, 1);
        }
    }
    img
}

/// Confusion matrix: rows = true type, columns = predicted type (+ none).
fn confusion(
    title: &str,
    m: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, usize>>,
) -> RgbImage {
    let mut rows: Vec<String> = FORGERY_TYPES.iter().map(|s| s.to_string()).collect();
    for k in m.keys() {
        if !rows.contains(k) {
            rows.push(k.clone());
        }
    }
    let mut cols = rows.clone();
    cols.push("none".into());
    let cell = 52i64;
    let (left, top) = (110i64, 120i64);
    let w = (left + cell * cols.len() as i64 + 20) as u32;
    let h = (top + cell * rows.len() as i64 + 40) as u32;
    let mut img = RgbImage::from_pixel(w.max(W), h, WHITE);
    draw_text(&mut img, 10, 12, title, BLACK, 2);
    draw_text(
        &mut img,
        left,
        40,
        "predicted ->   (rows: true type)",
        BLACK,
        1,
    );
    for (j, c) in cols.iter().enumerate() {
        let short: String = c.chars().take(6).collect();
        draw_text(
            &mut img,
            left + cell * j as i64 + 2,
            top - 14,
            &short,
            BLACK,
            1,
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let short: String = r.chars().take(12).collect();
        let y = top + cell * i as i64;
        draw_text(&mut img, 6, y + cell / 2 - 4, &short, BLACK, 1);
        let total: usize = m.get(r).map_or(0, |row| row.values().sum());
        for (j, c) in cols.iter().enumerate() {
            let n = m.get(r).and_then(|row| row.get(c)).copied().unwrap_or(0);
            let share = if total > 0 {
                n as f64 / total as f64
            } else {
                0.0
            };
            let shade = (255.0 - 200.0 * share) as u8;
            let x = left + cell * j as i64;
            fill(&mut img, x, y, x + cell + 1, y + cell + 1, GREY);
            fill(
                &mut img,
                x + 1,
                y + 1,
                x + cell,
                y + cell,
                Rgb([shade, shade, 255]),
            );
            if n > 0 {
                let color = if share > 0.6 { WHITE } else { BLACK };
                draw_text(&mut img, x + 8, y + cell / 2 - 4, &n.to_string(), color, 1);
            }
        }
    }
    img
}

/// A file-name-safe version of a system name.
fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Write every plot into `dir`; returns the files written.
pub fn write_all(dir: &Path, systems: &[SystemMetrics]) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut save = |img: RgbImage, name: String| -> anyhow::Result<()> {
        let p = dir.join(name);
        img.save(&p)
            .map_err(|e| anyhow::anyhow!("cannot write plot {}: {e}", p.display()))?;
        written.push(p);
        Ok(())
    };
    let with_det: Vec<&SystemMetrics> = systems.iter().filter(|s| !s.roc.is_empty()).collect();
    if !with_det.is_empty() {
        let label = |s: &SystemMetrics| match s.det.auc.value {
            Some(a) => format!("{} AUC {a:.3}", s.system),
            None => s.system.clone(),
        };
        let roc: Vec<_> = with_det.iter().map(|s| (label(s), s.roc.clone())).collect();
        save(
            curves(
                "ROC (detection)",
                "false-positive rate",
                "true-positive rate",
                &roc,
                true,
            ),
            "roc.png".into(),
        )?;
        let pr: Vec<_> = with_det
            .iter()
            .map(|s| (s.system.clone(), s.pr.clone()))
            .collect();
        save(
            curves(
                "Precision-recall (fake = positive)",
                "recall",
                "precision",
                &pr,
                false,
            ),
            "pr.png".into(),
        )?;
    }
    for s in systems {
        let slug = slug(&s.system);
        if !s.loc.ious.is_empty() {
            save(
                histogram(&format!("Loc IoU: {}", s.system), &s.loc.ious),
                format!("iou_hist_{slug}.png"),
            )?;
        }
        let recipes: Vec<_> = s
            .det
            .per_recipe
            .iter()
            .filter_map(|(k, v)| v.value.map(|x| (k.clone(), x, v.n)))
            .collect();
        if !recipes.is_empty() {
            save(
                bars(&format!("Det accuracy per recipe: {}", s.system), &recipes),
                format!("per_recipe_{slug}.png"),
            )?;
        }
        let concepts: Vec<_> = s
            .age
            .per_concept
            .iter()
            .filter_map(|(k, v)| v.value.map(|x| (k.clone(), x, v.n)))
            .collect();
        if !concepts.is_empty() {
            save(
                bars(&format!("AGE IoU per concept: {}", s.system), &concepts),
                format!("per_concept_{slug}.png"),
            )?;
        }
        if !s.cls.confusion.is_empty() {
            save(
                confusion(&format!("Forgery type: {}", s.system), &s.cls.confusion),
                format!("confusion_{slug}.png"),
            )?;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_lines_land_on_the_canvas() {
        let mut img = canvas();
        draw_text(&mut img, 0, 0, "A", BLACK, 1);
        // 'A' in font8x8 has ink in its first row.
        assert!((0..8).any(|x| img.get_pixel(x, 0) == &BLACK));
        let mut img = canvas();
        line(&mut img, (0, 0), (10, 10), BLACK, 0);
        assert_eq!(img.get_pixel(5, 5), &BLACK);
        let h = histogram("t", &[0.05, 0.95, 0.95]);
        assert_eq!(h.dimensions(), (W, H));
    }
}

/// A training-loss chart: every series is scaled into the unit square (x by its last step, y by
/// the largest loss of all series); the scales are written into the legend names.
pub fn loss_chart(path: &Path, series: &[(String, Vec<(f64, f64)>)]) -> anyhow::Result<()> {
    let ymax = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .fold(1e-9f64, f64::max);
    let scaled: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(name, pts)| {
            let xmax = pts.last().map(|p| p.0).unwrap_or(1.0).max(1.0);
            (
                format!("{name} (x: step/{xmax:.0})"),
                pts.iter().map(|&(x, y)| (x / xmax, y / ymax)).collect(),
            )
        })
        .collect();
    curves(
        &format!("loss/{ymax:.2}, EMA 0.95"),
        "step",
        "loss",
        &scaled,
        false,
    )
    .save(path)?;
    Ok(())
}
