//! `dfa forge show`: a contact sheet PNG of a dataset — per fake: its real twin, the fake, the
//! fake with the artifact mask in red and the edit mask outline in yellow, and the AGE answer.

use std::path::Path;

use font8x8::{UnicodeFonts, BASIC_FONTS};
use image::imageops::FilterType;
use image::{Rgb, RgbImage};

use super::record::Sample;
use super::writer::read_existing;
use super::ForgeError;

const THUMB: u32 = 96;
const TEXT_LINES: u32 = 4;
const COLS: u32 = 4;

/// Draw `text` at (x, y) with the 8×8 font, clipped to `max_chars`.
pub fn draw_text(
    img: &mut RgbImage,
    x: u32,
    y: u32,
    text: &str,
    max_chars: usize,
    colour: Rgb<u8>,
) {
    for (k, ch) in text.chars().take(max_chars).enumerate() {
        let Some(glyph) = BASIC_FONTS.get(ch) else {
            continue;
        };
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    let (px, py) = (x + k as u32 * 8 + col, y + row as u32);
                    if px < img.width() && py < img.height() {
                        img.put_pixel(px, py, colour);
                    }
                }
            }
        }
    }
}

/// `<p> the nose </p> [SEG]` → `[the nose]`, for display.
pub fn plain_markup(s: &str) -> String {
    s.replace("<p> ", "[").replace(" </p> [SEG]", "]")
}

/// Greedy word wrap.
pub fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for w in s.split_whitespace() {
        let cur = lines.last_mut().expect("one line");
        if !cur.is_empty() && cur.len() + 1 + w.len() > width {
            lines.push(w.to_string());
        } else {
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(w);
        }
    }
    lines
}

fn load(dir: &Path, rel: &str) -> Result<RgbImage, ForgeError> {
    let p = dir.join(rel);
    let img = crate::imageio::load_rgb(&p).map_err(|e| ForgeError::io(&p, e))?;
    Ok(image::imageops::resize(
        &img,
        THUMB,
        THUMB,
        FilterType::Triangle,
    ))
}

/// Render up to `n` fakes of `data` (spread evenly over the file) into one image.
pub fn contact_sheet(data: &Path, n: usize) -> Result<RgbImage, ForgeError> {
    let dir = data.parent().unwrap_or(Path::new("."));
    let fakes: Vec<Sample> = read_existing(data)?
        .into_iter()
        .filter(|s| s.label == "fake")
        .collect();
    if fakes.is_empty() {
        return Err(ForgeError::io(data, "no fake samples to show"));
    }
    let n = n.clamp(1, fakes.len());
    let pick: Vec<&Sample> = (0..n).map(|k| &fakes[k * fakes.len() / n]).collect();
    let cell_w = 3 * THUMB + 8;
    let cell_h = THUMB + 10 + TEXT_LINES * 9 + 6;
    let rows = (n as u32).div_ceil(COLS);
    let mut sheet = RgbImage::from_pixel(COLS * cell_w, rows * cell_h, Rgb([24, 24, 28]));
    let chars = (3 * THUMB / 8) as usize;
    for (k, s) in pick.iter().enumerate() {
        let (x0, y0) = (
            (k as u32 % COLS) * cell_w + 4,
            (k as u32 / COLS) * cell_h + 4,
        );
        let fake = load(dir, &s.image)?;
        let real = match &s.real_image {
            Some(r) => load(dir, r)?,
            None => fake.clone(),
        };
        let mut over = fake.clone();
        if let Some(a) = &s.artifact_mask {
            let m = load(dir, a)?;
            for (x, y, p) in over.enumerate_pixels_mut() {
                if m.get_pixel(x, y).0[0] > 127 {
                    p.0 = [(p.0[0] as u16 / 2 + 127) as u8, p.0[1] / 2, p.0[2] / 2];
                }
            }
        }
        if let Some(e) = &s.edit_mask {
            let m = load(dir, e)?;
            let on = |x: u32, y: u32| m.get_pixel(x, y).0[0] > 127;
            for y in 1..THUMB - 1 {
                for x in 1..THUMB - 1 {
                    if on(x, y)
                        && (!on(x - 1, y) || !on(x + 1, y) || !on(x, y - 1) || !on(x, y + 1))
                    {
                        over.put_pixel(x, y, Rgb([255, 230, 0]));
                    }
                }
            }
        }
        for (j, im) in [&real, &fake, &over].into_iter().enumerate() {
            image::imageops::replace(&mut sheet, im, (x0 + j as u32 * THUMB) as i64, y0 as i64);
        }
        let ty = y0 + THUMB + 3;
        let head = format!("{} / {}", s.forgery_type.as_deref().unwrap_or("?"), s.split);
        draw_text(&mut sheet, x0, ty, &head, chars, Rgb([120, 200, 255]));
        let age = s
            .tasks
            .iter()
            .find(|t| t.task == "age")
            .map(|t| plain_markup(&t.answer))
            .unwrap_or_default();
        for (l, line) in wrap(&age, chars)
            .iter()
            .take(TEXT_LINES as usize)
            .enumerate()
        {
            draw_text(
                &mut sheet,
                x0,
                ty + 10 + l as u32 * 9,
                line,
                chars,
                Rgb([230, 230, 230]),
            );
        }
    }
    Ok(sheet)
}

/// Save a sheet as a maximally compressed PNG.
pub fn save_png(sheet: &RgbImage, path: &Path) -> Result<(), ForgeError> {
    let f = std::fs::File::create(path).map_err(|e| ForgeError::io(path, e))?;
    let enc = image::codecs::png::PngEncoder::new_with_quality(
        std::io::BufWriter::new(f),
        image::codecs::png::CompressionType::Best,
        image::codecs::png::FilterType::Adaptive,
    );
    sheet
        .write_with_encoder(enc)
        .map_err(|e| ForgeError::io(path, e))
}
