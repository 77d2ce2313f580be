//! `boltzflow sample RUN_DIR --n N --out X.npy [--log-weights W.npy]`.

use std::path::PathBuf;

use anyhow::Result;

use boltzflow_learn::run::BgRun as Run;

/// Arguments of `boltzflow sample`.
#[derive(clap::Args)]
pub struct SampleArgs {
    /// A run directory made by `boltzflow train`.
    pub run_dir: PathBuf,
    /// Number of configurations.
    #[arg(long)]
    pub n: usize,
    /// Output `[n, dim]`: `.npy` (float64), or `.xtc` / `.trr` / `.dcd` for molecules (nm).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write log w = −u(x) − log q(x) `[n]` (reduced units).
    #[arg(long)]
    pub log_weights: Option<PathBuf>,
    /// Latent temperature τ (prior σ√τ).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// Seed of the latent draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs `boltzflow sample`.
pub fn run(a: &SampleArgs) -> Result<()> {
    let run = Run::open(&a.run_dir)?;
    let s = run.sample(a.n, a.temperature, a.seed)?;
    boltzflow_io::trajectory::write_coordinates(&a.out, s.x.view(), 1.0)?;
    if let Some(path) = &a.log_weights {
        boltzflow_io::write_npy_1d(path, s.log_weights.view())?;
    }
    let epoch = s.epoch;
    println!(
        "{} samples from {} (epoch {epoch}) → {}",
        a.n,
        run.dir.display(),
        a.out.display()
    );
    Ok(())
}
