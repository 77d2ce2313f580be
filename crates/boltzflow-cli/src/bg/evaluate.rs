//! `boltzflow evaluate RUN_DIR`: the evaluation of a trained generator
//! ([`boltzflow_learn::run::BgRun::evaluate`]) written into the run directory and printed.

use std::path::PathBuf;

use anyhow::Result;
use boltzflow_learn::run::{BgEvaluateOptions, BgRun};
use serde_json::{Map, Value};

/// Arguments of `boltzflow evaluate`.
#[derive(clap::Args)]
pub struct EvaluateArgs {
    /// A run directory made by `boltzflow train`.
    pub run_dir: PathBuf,
    /// Held-out configurations `[n, dim]` (npy, xtc, trr, dcd) for the NLL and BAR.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Generated samples (default: `[evaluate] n_samples`).
    #[arg(long)]
    pub n_samples: Option<usize>,
    /// No table on standard output.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `boltzflow evaluate`; returns the metrics.
pub fn run(a: &EvaluateArgs) -> Result<Map<String, Value>> {
    let run = BgRun::open(&a.run_dir)?;
    let ev = run.evaluate(&BgEvaluateOptions {
        data: a.data.clone(),
        n_samples: a.n_samples,
    })?;
    ev.save(&run.dir)?;
    if !a.quiet {
        println!(
            "evaluation of {} (epoch {}, {} samples):",
            run.dir.display(),
            ev.metrics["epoch"],
            ev.x.nrows()
        );
        for (k, v) in &ev.metrics {
            println!("  {k:<24} {v}");
        }
    }
    Ok(ev.metrics)
}
