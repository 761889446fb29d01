//! Training progress: a bar with loss and ETA, a JSONL log, checkpoint timing, loss-curve PNG.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Learning rate at `step` of `steps`: linear warm-up over the first 5 %, then cosine to zero.
pub fn warmup_cosine(step: usize, steps: usize, base: f64) -> f64 {
    let warm = (steps / 20).max(1);
    if step < warm {
        base * (step + 1) as f64 / warm as f64
    } else {
        let t = (step - warm) as f64 / (steps - warm).max(1) as f64;
        base * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepLog {
    pub stage: &'static str,
    pub step: usize,
    pub total: usize,
    pub loss: f32,
    pub parts: Vec<f32>,
    pub lr: f64,
}

pub struct Progress {
    bar: indicatif::ProgressBar,
    log: std::fs::File,
    last_ckpt: Instant,
    every: Duration,
    started: Instant,
    ema: Option<f32>,
}

impl Progress {
    pub fn new(
        log_path: &Path,
        total: u64,
        start: u64,
        checkpoint_every: Duration,
    ) -> anyhow::Result<Self> {
        let bar = indicatif::ProgressBar::new(total);
        if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}",
            )
            .expect("static template"),
        );
        bar.set_position(start);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)?;
        Ok(Self {
            bar,
            log,
            last_ckpt: Instant::now(),
            every: checkpoint_every,
            started: Instant::now(),
            ema: None,
        })
    }

    pub fn step(&mut self, s: StepLog) -> anyhow::Result<()> {
        let ema = match self.ema {
            Some(e) => 0.95 * e + 0.05 * s.loss,
            None => s.loss,
        };
        self.ema = Some(ema);
        self.bar.set_prefix(s.stage);
        self.bar.set_length(s.total as u64);
        self.bar.set_position(s.step as u64);
        self.bar.set_message(format!("loss {ema:.4}"));
        let mut v = serde_json::to_value(&s)?;
        v["elapsed_s"] = serde_json::json!(self.started.elapsed().as_secs_f32());
        writeln!(self.log, "{v}")?;
        if !self.bar.is_hidden() {
            return Ok(());
        }
        if s.step % 25 == 0 || s.step == s.total {
            eprintln!(
                "{} step {}/{} loss {:.4} ({:.0} s)",
                s.stage,
                s.step,
                s.total,
                ema,
                self.started.elapsed().as_secs_f32()
            );
        }
        Ok(())
    }

    /// Log one finished step and call `checkpoint(step)` when one is due or the stage is done.
    pub fn record(
        &mut self,
        s: StepLog,
        checkpoint: &mut dyn FnMut(usize) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let (step, total) = (s.step, s.total);
        self.step(s)?;
        if self.checkpoint_due() || step == total {
            checkpoint(step)?;
        }
        Ok(())
    }

    /// True once every `checkpoint_every`; resets the timer.
    pub fn checkpoint_due(&mut self) -> bool {
        if self.last_ckpt.elapsed() >= self.every {
            self.last_ckpt = Instant::now();
            true
        } else {
            false
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
