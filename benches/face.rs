//! Face pipeline speed: SeetaFace detection on the Solvay photo (29 faces) and the two-pass
//! FaceMesh per face. `cargo bench --bench face` (set RAYON_NUM_THREADS to choose threads).

use std::path::Path;
use std::time::Instant;

use dfa::face::mesh::FaceMesh;
use dfa::face::{detect_faces, DetectOptions};

fn main() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // Without it candle re-reads /proc/cpuinfo on every op (docs/STACK.md's thread trap).
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/solvay-1927.png");
    let img = dfa::imageio::load_rgb(&path).expect("solvay photo");
    let reps = 3;

    let t = Instant::now();
    let mut faces = Vec::new();
    for _ in 0..reps {
        faces = detect_faces(&img, DetectOptions::default());
    }
    let detect_ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;

    let t = Instant::now();
    let mesh = FaceMesh::load_default().expect("facemesh weights");
    let load_ms = t.elapsed().as_secs_f64() * 1e3;

    // Warm up once, then time every face.
    let _ = mesh.landmarks(&img, &faces[0]);
    let t = Instant::now();
    let mut usable = 0;
    for _ in 0..reps {
        for f in &faces {
            if mesh.landmarks(&img, f).expect("mesh").is_usable() {
                usable += 1;
            }
        }
    }
    let runs = (reps * faces.len()) as f64;
    let mesh_ms = t.elapsed().as_secs_f64() * 1e3 / runs;

    let n = faces.len().max(1) as f64;
    println!(
        "image {}x{}, {} faces ({} usable meshes), RAYON_NUM_THREADS={}",
        img.width(),
        img.height(),
        faces.len(),
        usable / reps,
        std::env::var("RAYON_NUM_THREADS").unwrap_or_default()
    );
    println!(
        "detection: {detect_ms:.1} ms per image ({:.1} ms per face)",
        detect_ms / n
    );
    println!("mesh load: {load_ms:.1} ms (once)");
    println!("mesh (2 network passes): {mesh_ms:.1} ms per face");
    println!(
        "detection + mesh: {:.1} ms per face",
        detect_ms / n + mesh_ms
    );
}
