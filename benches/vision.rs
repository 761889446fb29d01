//! Vision encoder latency of the shipped default: ms per 160² face crop (batch 1).
//! `cargo bench --bench vision` (set RAYON_NUM_THREADS; 1 is best on 2 cores).

use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters/dfa-tiny");
    let model = dfa::model::config::ModelDir::open(dir.to_str().unwrap())?;
    let dev = candle_core::Device::Cpu;
    let (parts, _) = dfa::model::extras::load(&model.config.extras, &dev)?;
    let img = dfa::imageio::load_rgb(&dir.join("../../assets/samples/fake-1.png"))?;
    let cfg = &model.config.image;
    let crop =
        dfa::model::vision::crop_face(&img, [61.7, 59.4, 205.6, 203.3], cfg.face_margin, cfg.size);
    let runs = 30;
    let t = Instant::now();
    for _ in 0..runs {
        let x = dfa::model::vision::to_tensor(&crop.image, cfg, &dev)?;
        let _ = parts.vision.forward(&x)?;
    }
    let ms = t.elapsed().as_secs_f64() * 1000.0 / runs as f64;
    println!(
        "{} encoder (incl. preprocessing), {}² crop: {ms:.1} ms/image over {runs} runs",
        parts.vision.kind(),
        cfg.size
    );
    Ok(())
}
