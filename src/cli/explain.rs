//! `dfa explain IMG`: one-shot verdict, grounded explanation and masks.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::analysis::{AnalysisResult, Analyzer, Event, RegionQuery, Request};
use crate::report::{json::report_json, markdown::report_markdown, overlay};

/// Analyse one image: is the face manipulated, where, and why.
#[derive(Debug, Clone, clap::Args)]
pub struct ExplainArgs {
    /// The image (PNG, JPEG, WebP, BMP).
    pub image: PathBuf,
    /// Question to ask instead of the default explanation prompt.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Ask about a facial region by name (e.g. "left eye", "lips"; `dfa regions --list`).
    #[arg(long, conflicts_with_all = ["bbox", "point", "mask"])]
    pub region: Option<String>,
    /// Ask about a box: x0,y0,x1,y1 in image pixels.
    #[arg(long = "box", value_name = "X0,Y0,X1,Y1", conflicts_with_all = ["point", "mask"])]
    pub bbox: Option<String>,
    /// Ask about a point: x,y in image pixels.
    #[arg(long, value_name = "X,Y", conflicts_with = "mask")]
    pub point: Option<String>,
    /// Ask about a region given as a mask PNG the size of the image.
    #[arg(long, value_name = "PNG")]
    pub mask: Option<PathBuf>,
    /// Only this face (0-based, detection order; see `faces[]`).
    #[arg(long)]
    pub face: Option<usize>,
    /// With no face found, analyse the whole image (with a warning) instead of failing.
    #[arg(long)]
    pub whole_image: bool,
    /// Print the JSON report (schema dfa.report/1) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write overlay.png, mask_<face>_<i>.png, report.json and report.md into this folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub model: super::ModelArgs,
    #[command(flatten)]
    pub gen: super::GenArgs,
}

/// Parse "a,b,c,d" into `N` floats.
pub fn parse_floats<const N: usize>(s: &str, what: &str) -> anyhow::Result<[f32; N]> {
    let v: Vec<f32> = s
        .split(',')
        .map(|x| x.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            super::usage(format!(
                "{what} must be {N} comma-separated numbers, got \"{s}\""
            ))
        })?;
    v.try_into().map_err(|_| {
        super::usage(format!(
            "{what} must be {N} comma-separated numbers, got \"{s}\""
        ))
    })
}

impl ExplainArgs {
    fn region(&self) -> anyhow::Result<Option<RegionQuery>> {
        Ok(if let Some(r) = &self.region {
            Some(RegionQuery::Concept(r.clone()))
        } else if let Some(b) = &self.bbox {
            let b = parse_floats::<4>(b, "--box")?;
            if b[2] <= b[0] || b[3] <= b[1] {
                return Err(super::usage("--box must have x1 > x0 and y1 > y0".into()));
            }
            Some(RegionQuery::Box(b))
        } else if let Some(p) = &self.point {
            Some(RegionQuery::Point(parse_floats::<2>(p, "--point")?))
        } else if let Some(m) = &self.mask {
            let img = crate::imageio::load_rgb(m)?;
            Some(RegionQuery::Mask(
                image::DynamicImage::ImageRgb8(img).to_luma8(),
            ))
        } else {
            None
        })
    }
}

pub fn run(args: &ExplainArgs) -> anyhow::Result<()> {
    let image = Arc::new(crate::imageio::load_rgb(&args.image)?);
    let region = args.region()?;
    if let Some(RegionQuery::Concept(name)) = &region {
        crate::face::fict::Fict::builtin()
            .lookup(name)
            .map_err(|e| super::usage(e.to_string()))?;
    }
    let engine = args.model.load()?;
    let mut req = Request::new(image.clone(), args.image.display().to_string());
    req.prompt = args.prompt.clone();
    req.region = region;
    req.face = args.face;
    req.whole_image_fallback = args.whole_image;
    req.gen = args.gen.options();
    let stream = !args.json;
    let colour =
        stream && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut printer = StreamPrinter::new(colour, std::io::stdout());
    let result = engine.analyze(&req, &mut |e| {
        if stream {
            printer.event(&e);
        }
        true
    })?;
    if let Some(dir) = &args.out {
        write_outputs(dir, &image, &result)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report_json(&result))?);
    }
    Ok(())
}

/// Human output: the verdict first, then the explanation with numbered, coloured phrases.
pub struct StreamPrinter<W: Write> {
    colour: bool,
    out: W,
    /// The last character written was a space or a line break: the model's tokens around
    /// `<p>` tags and sentences carry their own spaces, shown once.
    after_space: bool,
}

impl<W: Write> StreamPrinter<W> {
    pub fn new(colour: bool, out: W) -> Self {
        Self {
            colour,
            out,
            after_space: true,
        }
    }

    /// `text` with runs of spaces (across deltas too) written as one.
    fn squash(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if c == ' ' && self.after_space {
                continue;
            }
            self.after_space = c == ' ' || c == '\n';
            out.push(c);
        }
        out
    }

    pub fn event(&mut self, e: &Event) {
        let _ = match e {
            Event::Warning(w) => writeln!(self.out, "warning: {w}"),
            Event::FaceStart { face_id, bbox } => {
                self.after_space = true;
                writeln!(
                    self.out,
                    "\nface {face_id} at [{:.0}, {:.0}, {:.0}, {:.0}]",
                    bbox[0], bbox[1], bbox[2], bbox[3]
                )
            }
            Event::Verdict {
                verdict,
                p_fake,
                forgery_type,
                ..
            } => writeln!(
                self.out,
                "verdict: {} (P(fake) = {:.2}{})",
                verdict.as_str().to_uppercase(),
                p_fake,
                forgery_type
                    .as_ref()
                    .map(|t| format!(", type: {t}"))
                    .unwrap_or_default()
            ),
            Event::TextDelta { text, .. } => {
                let text = self.squash(text);
                write!(self.out, "{text}")
            }
            Event::PhraseOpen { seg_id, .. } if self.colour => {
                let [r, g, b] = overlay::PALETTE[(seg_id - 1) % overlay::PALETTE.len()];
                write!(self.out, "\x1b[1;38;2;{r};{g};{b}m")
            }
            Event::PhraseClose { .. } if self.colour => write!(self.out, "\x1b[0m"),
            Event::MaskReady { segment, .. } => {
                write!(self.out, " (mask {}: {} px)", segment.id, segment.area_px)
            }
            Event::Done { stopped } => {
                self.after_space = true;
                writeln!(self.out, "{}", if *stopped { "\n[stopped]" } else { "" })
            }
            _ => Ok(()),
        };
        let _ = self.out.flush();
    }
}

/// Write every artifact into `dir` via a temporary folder, so a failure leaves nothing half-written.
pub fn write_outputs(
    dir: &Path,
    image: &image::RgbImage,
    result: &AnalysisResult,
) -> anyhow::Result<()> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let tmp = parent.join(format!(
        ".{}.tmp-{}",
        dir.file_name().and_then(|s| s.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut layers = Vec::new();
    for f in &result.faces {
        for s in &f.segments {
            s.mask.save(tmp.join(mask_name(f.face_id, s.id)))?;
            layers.push((
                s.mask.clone(),
                overlay::PALETTE[(s.id - 1) % overlay::PALETTE.len()],
                format!("{} {}", s.id, s.phrase),
            ));
        }
    }
    overlay::draw_overlay(image, &layers, 0.45).save(tmp.join("overlay.png"))?;
    std::fs::write(
        tmp.join("report.json"),
        serde_json::to_string_pretty(&report_json(result))?,
    )?;
    std::fs::write(
        tmp.join("report.md"),
        report_markdown(result, &|f, s| Some(mask_name(f, s))),
    )?;
    if dir.exists() {
        for entry in std::fs::read_dir(&tmp)? {
            let entry = entry?;
            std::fs::rename(entry.path(), dir.join(entry.file_name()))?;
        }
        std::fs::remove_dir_all(&tmp)?;
    } else {
        std::fs::rename(&tmp, dir)?;
    }
    Ok(())
}

pub fn mask_name(face: usize, seg: usize) -> String {
    format!("mask_{face}_{seg}.png")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_text_shows_each_run_of_spaces_once() {
        let mut p = StreamPrinter::new(false, Vec::new());
        for t in [" The face.  ", " the eye ", " [1] is off.\n", "  Next"] {
            p.event(&Event::TextDelta {
                face_id: 0,
                text: t.into(),
            });
        }
        let out = String::from_utf8(p.out).unwrap();
        assert_eq!(out, "The face. the eye [1] is off.\nNext");
    }
}
