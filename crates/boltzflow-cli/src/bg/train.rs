//! `boltzflow train CONFIG.toml`: the arguments, and the Boltzmann-generator case (the run
//! itself is [`BgRun::train`] in the library), with a checkpoint after every epoch and
//! `--resume` from the last one.

use std::path::PathBuf;

use anyhow::Result;
use boltzflow_learn::config::BgConfig;
use boltzflow_learn::run::{BgRun, PrintProgress, StartMode, TrainOptions};

/// Arguments of `boltzflow train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// The run configuration (TOML; see examples/*.toml).
    pub config: PathBuf,
    /// Run directory (default: runs/<configuration name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Overrides the configuration's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Overrides the configuration's `[system] spec` (e.g. `sk:n=20,seed=3`).
    #[arg(long)]
    pub system: Option<String>,
    /// Continue the run in --out from its last checkpoint (or start it, if it has none).
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Delete a run already in --out and start over.
    #[arg(long)]
    pub force: bool,
    /// Stop after this many epochs (VAN: optimizer steps) in total, as a killed run would (for
    /// testing --resume).
    #[arg(long, hide = true)]
    pub stop_after: Option<usize>,
    /// No per-epoch lines on standard output.
    #[arg(long)]
    pub quiet: bool,
}

impl TrainArgs {
    /// `--out`, or `runs/<configuration file stem>`.
    pub fn out_dir(&self) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| boltzflow_io::run_dir::default_out_dir(&self.config))
    }

    /// `--resume`, `--force` and `--stop-after`.
    pub fn options(&self) -> TrainOptions {
        TrainOptions {
            mode: StartMode::from_flags(self.resume, self.force),
            stop_after: self.stop_after,
        }
    }

    /// Progress lines on standard output (per-epoch lines dropped with `--quiet`).
    pub fn progress(&self) -> PrintProgress {
        PrintProgress { quiet: self.quiet }
    }

    /// Applies `--seed` and `--system` to a configuration's seed and `[system] spec`.
    pub fn override_seed_and_system(&self, seed: &mut u64, spec: &mut String) {
        if let Some(s) = self.seed {
            *seed = s;
        }
        if let Some(s) = &self.system {
            spec.clone_from(s);
        }
    }
}

/// Runs `boltzflow train`; returns the run directory.
pub fn run(a: &TrainArgs) -> Result<PathBuf> {
    let mut cfg = BgConfig::from_file(&a.config)?;
    a.override_seed_and_system(&mut cfg.seed, &mut cfg.system.spec);
    cfg.resolve_paths()?;
    let out = a.out_dir();
    BgRun::new(out.clone(), cfg)?.train(a.options(), &mut a.progress())?;
    Ok(out)
}
