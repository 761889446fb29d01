//! `dfa forge`: make pixel-aligned real/fake face pairs with masks and task records, or draw a
//! contact sheet of a dataset (`dfa forge show`).

use std::path::PathBuf;

use anyhow::bail;

use crate::forge::{contact, layout, sources, writer};

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
    /// self_blend, region_swap, warp, smoothing, colour, noise, copy_move.
    #[arg(long, value_delimiter = ',')]
    pub recipes: Option<Vec<String>>,
    /// Which identities to use: train, val, test or all.
    #[arg(long, default_value = "all")]
    pub split: String,
    /// Side of the square face crops, in pixels (64..=1024).
    #[arg(long, default_value_t = 256)]
    pub size: u32,
    /// Folder of unpacked source packages (tools/fetch-sources.sh makes it).
    #[arg(long, default_value = "cache/sources/un")]
    pub sources: PathBuf,
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
    let rep = sources::collect(&args.sources);
    let summary = writer::forge(out, &cfg, &rep, &layout::regions_from_mesh, !args.quiet)?;
    println!("{}", describe(&summary, out));
    Ok(())
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
