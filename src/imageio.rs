//! Reading user images safely: size limits against decompression bombs, EXIF orientation,
//! every pixel format (grey, 16-bit, alpha, CMYK JPEG) turned into 8-bit RGB.

use std::path::Path;

use image::{ImageDecoder, ImageReader, RgbImage};

/// Largest accepted width or height.
pub const MAX_SIDE: u32 = 12_000;
/// Largest accepted pixel count (about 64 megapixels).
pub const MAX_PIXELS: u64 = 64_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ImageLoadError {
    #[error("cannot open image {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("image {path} is empty (0 bytes)")]
    Empty { path: String },
    #[error("{path} is not an image dfa can read (PNG, JPEG, WebP or BMP): {reason}")]
    Format { path: String, reason: String },
    #[error(
        "image {path} is too large: {w}x{h} (limit {MAX_SIDE} px a side, {MAX_PIXELS} px in all)"
    )]
    TooLarge { path: String, w: u32, h: u32 },
    #[error("image {path} is damaged or truncated: {reason}")]
    Decode { path: String, reason: String },
}

/// Load an image from disk as upright 8-bit RGB.
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageLoadError> {
    let p = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| ImageLoadError::Open {
        path: p.clone(),
        reason: e.to_string(),
    })?;
    if meta.is_dir() {
        return Err(ImageLoadError::Open {
            path: p,
            reason: "it is a directory".into(),
        });
    }
    if meta.len() == 0 {
        return Err(ImageLoadError::Empty { path: p });
    }
    let mut reader = ImageReader::open(path)
        .map_err(|e| ImageLoadError::Open {
            path: p.clone(),
            reason: e.to_string(),
        })?
        .with_guessed_format()
        .map_err(|e| ImageLoadError::Open {
            path: p.clone(),
            reason: e.to_string(),
        })?;
    // Our own size check below replaces the crate's allocation limit, so that a huge header is
    // reported as "too large" rather than as a decoder error.
    reader.no_limits();
    if reader.format().is_none() {
        return Err(ImageLoadError::Format {
            path: p,
            reason: "unrecognised file contents".into(),
        });
    }
    let mut decoder = reader.into_decoder().map_err(|e| ImageLoadError::Format {
        path: p.clone(),
        reason: e.to_string(),
    })?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE || (w as u64) * (h as u64) > MAX_PIXELS {
        return Err(ImageLoadError::TooLarge { path: p, w, h });
    }
    let orientation = decoder.orientation().ok();
    let mut img =
        image::DynamicImage::from_decoder(decoder).map_err(|e| ImageLoadError::Decode {
            path: p.clone(),
            reason: e.to_string(),
        })?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    Ok(img.to_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_text_and_truncated_files() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.png");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(
            load_rgb(&empty),
            Err(ImageLoadError::Empty { .. })
        ));

        let text = dir.path().join("text.png");
        std::fs::write(&text, b"hello, I am not a picture").unwrap();
        assert!(matches!(
            load_rgb(&text),
            Err(ImageLoadError::Format { .. })
        ));

        let img = RgbImage::from_pixel(64, 64, image::Rgb([10, 200, 30]));
        let good = dir.path().join("good.png");
        img.save(&good).unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let cut = dir.path().join("cut.png");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        assert!(load_rgb(&cut).is_err());
        assert_eq!(load_rgb(&good).unwrap().dimensions(), (64, 64));
    }

    #[test]
    fn rejects_decompression_bomb_header() {
        // A valid PNG header that claims 30000x30000: refused before any pixel is decoded.
        let dir = tempfile::tempdir().unwrap();
        let mut png = Vec::new();
        png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(b"IHDR");
        ihdr.extend_from_slice(&30000u32.to_be_bytes());
        ihdr.extend_from_slice(&30000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        for (kind, body) in [
            (&b"IDAT"[..], &[0x78u8, 0x9c, 0x03, 0x00][..]),
            (&b"IEND"[..], &[][..]),
        ] {
            let mut chunk = kind.to_vec();
            chunk.extend_from_slice(body);
            png.extend_from_slice(&(body.len() as u32).to_be_bytes());
            png.extend_from_slice(&chunk);
            png.extend_from_slice(&crc32(&chunk).to_be_bytes());
        }
        let bomb = dir.path().join("bomb.png");
        std::fs::write(&bomb, &png).unwrap();
        let err = load_rgb(&bomb);
        assert!(
            matches!(err, Err(ImageLoadError::TooLarge { .. })),
            "{err:?}"
        );
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn converts_cmyk_jpeg_to_rgb() {
        // tests/data/cmyk-red-blue.jpg: a 32x24 CMYK JPEG made with Pillow, red left, blue right.
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cmyk-red-blue.jpg");
        let img = load_rgb(&p).unwrap();
        assert_eq!(img.dimensions(), (32, 24));
        let [r, g, b] = img.get_pixel(4, 12).0;
        assert!(
            r > 200 && g < 60 && b < 60,
            "left should be red, got {:?}",
            [r, g, b]
        );
        let [r, g, b] = img.get_pixel(28, 12).0;
        assert!(
            b > 200 && r < 60 && g < 60,
            "right should be blue, got {:?}",
            [r, g, b]
        );
    }

    #[test]
    fn applies_exif_orientation() {
        // tests/data/exif-rotate90.jpg: stored 32x16 (blue left half, red right), EXIF orientation
        // 6 (display rotated 90° clockwise): upright it is 16x32 with blue on top.
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/exif-rotate90.jpg");
        let img = load_rgb(&p).unwrap();
        assert_eq!(img.dimensions(), (16, 32));
        assert!(
            img.get_pixel(8, 4).0[2] > 200,
            "top should be blue: {:?}",
            img.get_pixel(8, 4)
        );
        assert!(
            img.get_pixel(8, 28).0[0] > 200,
            "bottom should be red: {:?}",
            img.get_pixel(8, 28)
        );
    }

    #[test]
    fn converts_grey_16bit_and_alpha_to_rgb() {
        let dir = tempfile::tempdir().unwrap();
        let g16 =
            image::ImageBuffer::<image::Luma<u16>, _>::from_pixel(8, 8, image::Luma([65535u16]));
        let p = dir.path().join("g16.png");
        g16.save(&p).unwrap();
        assert_eq!(load_rgb(&p).unwrap().get_pixel(0, 0).0, [255, 255, 255]);
        let rgba = image::RgbaImage::from_pixel(8, 8, image::Rgba([1, 2, 3, 0]));
        let p = dir.path().join("a.png");
        rgba.save(&p).unwrap();
        assert_eq!(load_rgb(&p).unwrap().get_pixel(0, 0).0, [1, 2, 3]);
    }
}
