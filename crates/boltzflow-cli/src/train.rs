//! `boltzflow train CONFIG.toml`: the arguments; the run (any model, by the configuration's
//! `model` key) is [`boltzflow_learn::run::train_file`] in the library, with a checkpoint after
//! every epoch and `--resume` from the last one.

use std::path::PathBuf;

use anyhow::Result;
use boltzflow_learn::run::{Overrides, PrintProgress, StartMode, TrainOptions, train_file};

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
}

/// Runs `boltzflow train`; returns the run directory.
pub fn run(a: &TrainArgs) -> Result<PathBuf> {
    let out = a.out_dir();
    let overrides = Overrides {
        seed: a.seed,
        system: a.system.clone(),
    };
    let opts = TrainOptions {
        mode: StartMode::from_flags(a.resume, a.force),
        stop_after: a.stop_after,
    };
    train_file(
        &a.config,
        out.clone(),
        &overrides,
        opts,
        &mut PrintProgress { quiet: a.quiet },
    )?;
    Ok(out)
}
