//! COCO run-length encoding of binary masks, byte-compatible with pycocotools: runs are counted
//! in column-major order starting with a (possibly empty) run of zeros, and stored as the
//! compressed LEB128-like string `maskUtils.encode` writes.

use image::GrayImage;
use serde::{Deserialize, Serialize};

/// `{"size": [H, W], "counts": "..."}` as in COCO.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rle {
    pub size: [u32; 2],
    pub counts: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RleError {
    #[error("RLE counts string is malformed")]
    Malformed,
    #[error("RLE runs cover {got} pixels, expected {expected}")]
    WrongLength { got: u64, expected: u64 },
}

/// Encode a mask (pixels > 127 are on).
pub fn encode(mask: &GrayImage) -> Rle {
    let (w, h) = mask.dimensions();
    let mut runs: Vec<u64> = Vec::new();
    let mut current = false;
    let mut len = 0u64;
    for x in 0..w {
        for y in 0..h {
            let on = mask.get_pixel(x, y).0[0] > 127;
            if on != current {
                runs.push(len);
                len = 0;
                current = on;
            }
            len += 1;
        }
    }
    runs.push(len);
    Rle {
        size: [h, w],
        counts: runs_to_string(&runs),
    }
}

/// Decode back to a 0/255 mask.
pub fn decode(rle: &Rle) -> Result<GrayImage, RleError> {
    let [h, w] = rle.size;
    let runs = string_to_runs(&rle.counts)?;
    let total: u64 = runs.iter().sum();
    let expected = h as u64 * w as u64;
    if total != expected {
        return Err(RleError::WrongLength {
            got: total,
            expected,
        });
    }
    let mut img = GrayImage::new(w, h);
    let mut idx = 0u64;
    for (i, &r) in runs.iter().enumerate() {
        if i % 2 == 1 {
            for k in idx..idx + r {
                let (x, y) = ((k / h as u64) as u32, (k % h as u64) as u32);
                img.put_pixel(x, y, image::Luma([255]));
            }
        }
        idx += r;
    }
    Ok(img)
}

fn runs_to_string(runs: &[u64]) -> String {
    let mut out = String::new();
    for i in 0..runs.len() {
        let mut x = runs[i] as i64;
        if i > 2 {
            x -= runs[i - 2] as i64;
        }
        loop {
            let mut c = x & 0x1f;
            x >>= 5;
            let more = if c & 0x10 != 0 { x != -1 } else { x != 0 };
            if more {
                c |= 0x20;
            }
            out.push((c as u8 + 48) as char);
            if !more {
                break;
            }
        }
    }
    out
}

fn string_to_runs(s: &str) -> Result<Vec<u64>, RleError> {
    let bytes = s.as_bytes();
    let mut runs: Vec<u64> = Vec::new();
    let mut p = 0;
    while p < bytes.len() {
        let mut x: i64 = 0;
        let mut k = 0;
        loop {
            let b = *bytes.get(p).ok_or(RleError::Malformed)?;
            if !(48..48 + 64).contains(&b) || k > 12 {
                return Err(RleError::Malformed);
            }
            let c = (b - 48) as i64;
            x |= (c & 0x1f) << (5 * k);
            let more = c & 0x20 != 0;
            p += 1;
            k += 1;
            if !more {
                if c & 0x10 != 0 {
                    x |= -1i64 << (5 * k);
                }
                break;
            }
        }
        let i = runs.len();
        if i > 2 {
            x += runs[i - 2] as i64;
        }
        if x < 0 {
            return Err(RleError::Malformed);
        }
        runs.push(x as u64);
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_pycocotools_reference() {
        // m = np.zeros((4,5)); m[1:3,1:4] = 1 -> column-major runs 5,2,2,2,2,2,5; pycocotools'
        // rleToString stores runs 0-2 as is and later runs as deltas to run i-2: "5","2","2","0","0","0","3".
        let mut m = GrayImage::new(5, 4);
        for y in 1..3 {
            for x in 1..4 {
                m.put_pixel(x, y, image::Luma([255]));
            }
        }
        let rle = encode(&m);
        assert_eq!(rle.size, [4, 5]);
        assert_eq!(
            string_to_runs(&rle.counts).unwrap(),
            vec![5, 2, 2, 2, 2, 2, 5]
        );
        assert_eq!(rle.counts, "5220003");
        assert_eq!(decode(&rle).unwrap(), m);
    }

    #[test]
    fn round_trips_random_masks_and_rejects_garbage() {
        let mut s = 7u64;
        for (w, h) in [(1, 1), (13, 7), (64, 48)] {
            let mut m = GrayImage::new(w, h);
            for p in m.pixels_mut() {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                p.0[0] = if (s >> 40) % 3 == 0 { 255 } else { 0 };
            }
            assert_eq!(decode(&encode(&m)).unwrap(), m);
        }
        let full = GrayImage::from_pixel(300, 200, image::Luma([255]));
        assert_eq!(decode(&encode(&full)).unwrap(), full);
        assert!(decode(&Rle {
            size: [2, 2],
            counts: "~~~".into()
        })
        .is_err());
        assert!(matches!(
            decode(&Rle {
                size: [2, 2],
                counts: "3".into()
            }),
            Err(RleError::WrongLength { .. })
        ));
    }
}
