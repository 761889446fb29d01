//! `dfa forge`: make pixel-aligned real/fake face pairs with masks and task records, or draw a
//! contact sheet of a dataset (`dfa forge show`).

use std::path::PathBuf;

use anyhow::bail;

use crate::forge::{collections, contact, layout, writer};

/// Make training/benchmark data: real faces edited by recipes, with artifact masks, FICT
/// concepts and task records (det, cls, age, toe, loc, region, box) in DIR/data.jsonl.
#[derive(clap::Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ForgeArgs {
    #[command(subcommand)]
    pub command: Option<ForgeCommand>,
    /// Output directory (data.jsonl, images/, masks/); an existing one is continued.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Number of fakes; each comes with its real twin.
    #[arg(long, default_value_t = 100)]
    pub n: usize,
    /// Seed: the same seed and sources give the same bytes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Recipe families, comma-separated (default: all):
    /// self_blend, region_swap, warp, smoothing, colour, noise, copy_move, face_swap.
    #[arg(long, value_delimiter = ',')]
    pub recipes: Option<Vec<String>>,
    /// Which identities to use: train, val, test or all.
    #[arg(long, default_value = "all")]
    pub split: String,
    /// Side of the square face crops, in pixels (64..=1024).
    #[arg(long, default_value_t = 256)]
    pub size: u32,
    /// Folder of unpacked source packages (tools/fetch-sources.sh makes it); its missing
    /// files are listed, not fatal.
    #[arg(long, default_value = "cache/sources/un")]
    pub packages: PathBuf,
    /// A folder of real photos (one photo source; repeatable): sub-folder = person, or a
    /// loose file = person; an optional source.json gives its name and identity rule
    /// (tools/fetch-faces.sh makes cache/faces/{lfw,utkface,webmorph-london,webmorph-canada}).
    #[arg(long = "sources", value_name = "DIR")]
    pub collections: Vec<PathBuf>,
    /// Hold whole photo sources out of training: `SPLIT=SOURCE[,SOURCE]` with SPLIT val or
    /// test (repeatable). The other sources' people split into train and test-id.
    #[arg(long, value_name = "SPLIT=SOURCES")]
    pub holdout: Vec<String>,
    /// Share of pairs per split, e.g. `train=0.8,val=0.07,test=0.07,test-id=0.06` (default:
    /// in proportion to the faces each split has).
    #[arg(long, value_delimiter = ',', value_name = "SPLIT=SHARE")]
    pub shares: Vec<String>,
    /// Drop faces whose box is smaller than this (photo pixels; `--sources` folders only).
    #[arg(long, default_value_t = 64.0)]
    pub min_face: f32,
    /// Drop faces whose sharpness (variance of the Laplacian at 96²) is below this.
    #[arg(long, default_value_t = 25.0)]
    pub min_sharpness: f32,
    /// Only faces whose licence allows redistribution (for committed samples).
    #[arg(long)]
    pub free_only: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Subcommands of `dfa forge`.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum ForgeCommand {
    /// Draw a contact sheet (real, fake, masks, explanation) of a data.jsonl.
    Show {
        /// The dataset's data.jsonl.
        data: PathBuf,
        /// Output PNG.
        #[arg(long)]
        out: PathBuf,
        /// How many fakes to show.
        #[arg(long, default_value_t = 32)]
        n: usize,
    },
}

/// Run `dfa forge`.
pub fn run(args: &ForgeArgs) -> anyhow::Result<()> {
    if let Some(ForgeCommand::Show { data, out, n }) = &args.command {
        let sheet = contact::contact_sheet(data, *n)?;
        contact::save_png(&sheet, out)?;
        println!(
            "wrote {} ({}x{})",
            out.display(),
            sheet.width(),
            sheet.height()
        );
        return Ok(());
    }
    let Some(out) = &args.out else {
        bail!("dfa forge needs --out DIR (or `dfa forge show DATA.jsonl --out sheet.png`)")
    };
    if !(64..=1024).contains(&args.size) {
        bail!("--size must be between 64 and 1024, got {}", args.size);
    }
    let holdout = args
        .holdout
        .iter()
        .map(|kv| split_kv(kv, "--holdout"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut cfg = writer::ForgeConfig {
        n: args.n,
        seed: args.seed,
        split: args.split.clone(),
        size: args.size,
        free_only: args.free_only,
        ..Default::default()
    };
    if let Some(r) = &args.recipes {
        cfg.recipes = r
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    }
    for (split, _) in &holdout {
        if split != "val" && split != "test" {
            return Err(super::usage(format!(
                "--holdout takes val=SOURCES or test=SOURCES, got split \"{split}\""
            )));
        }
    }
    let holdout: std::collections::BTreeMap<String, String> = holdout
        .into_iter()
        .flat_map(|(split, srcs)| {
            srcs.split(',')
                .map(|s| (s.trim().to_string(), split.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    cfg.holdout = holdout.clone();
    for kv in &args.shares {
        let (k, v) = split_kv(kv, "--shares")?;
        let v: f64 = v
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| super::usage(format!("--shares: \"{kv}\" needs a share >= 0")))?;
        cfg.shares.insert(k, v);
    }
    let filters = collections::Filters {
        min_face: args.min_face,
        min_sharpness: args.min_sharpness,
    };
    let rep =
        collections::collect_all(Some(&args.packages), &args.collections, &filters, &holdout)?;
    let summary = writer::forge(out, &cfg, &rep, &layout::regions_from_mesh, !args.quiet)?;
    println!("{}", describe(&summary, out));
    Ok(())
}

fn split_kv(kv: &str, flag: &str) -> anyhow::Result<(String, String)> {
    match kv.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {
            Ok((k.trim().to_string(), v.trim().to_string()))
        }
        _ => Err(super::usage(format!("{flag}: \"{kv}\" is not KEY=VALUE"))),
    }
}

/// The human-readable summary.
pub fn describe(s: &writer::Summary, out: &std::path::Path) -> String {
    let kv = |m: &std::collections::BTreeMap<String, usize>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut t = format!(
        "{}: {} samples ({} real, {} fake); made {} this run in {:.1} s ({:.1} samples/s)\n  recipes: {}\n  splits: {} (identities: {})",
        out.join("data.jsonl").display(), s.samples, s.real, s.fake, s.made_this_run, s.seconds, s.samples_per_second,
        kv(&s.per_recipe), kv(&s.per_split), kv(&s.identities),
    );
    if !s.collections.is_empty() {
        t += "\n  photo sources (photos read -> faces kept, people; dropped and why):";
        for c in &s.collections {
            t += &format!(
                "\n    {:<18} {:>6} -> {:>6}, {:>5} people; dropped: {}",
                c.name,
                c.photos,
                c.kept,
                c.identities,
                if c.dropped.is_empty() {
                    "none".into()
                } else {
                    kv(&c.dropped)
                }
            );
        }
    }
    if !s.split_sources.is_empty() {
        t += "\n  split     people  images  sources (images)";
        for (split, srcs) in &s.split_sources {
            t += &format!(
                "\n    {:<8} {:>6} {:>7}  {}",
                split,
                s.identities.get(split).copied().unwrap_or(0),
                s.per_split.get(split).copied().unwrap_or(0),
                kv(srcs)
            );
        }
    }
    if s.post_dropped > 0 {
        t += &format!(
            "\n  {} fakes redone without post-processing (their edit vanished)",
            s.post_dropped
        );
    }
    for (what, v) in [
        ("skipped", &s.skipped),
        ("sources missing", &s.sources_missing),
        ("sources unreadable", &s.sources_corrupt),
        ("sources without a face", &s.sources_without_face),
    ] {
        if !v.is_empty() {
            t += &format!("\n  {what} ({}): {}", v.len(), v.join("; "));
        }
    }
    t
}
