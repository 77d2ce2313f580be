//! `boltzflow sample RUN_DIR --n N --out X.npy [--log-weights W.npy] [--trajectory T.pdb]`.

use std::path::PathBuf;

use anyhow::{Result, bail};
use boltzflow_core::Error;

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
    /// Molecules: also write the samples as a multi-model `.pdb` or an `.xyz` trajectory with
    /// the run's PDB topology (for viewers).
    #[arg(long)]
    pub trajectory: Option<PathBuf>,
}

/// Runs `boltzflow sample`.
pub fn run(a: &SampleArgs) -> Result<()> {
    let run = Run::open(&a.run_dir)?;
    let topology = run.system.as_openmm().and_then(|o| o.topology());
    if a.trajectory.is_some() && topology.is_none() {
        bail!(Error::invalid(
            "--trajectory",
            "needs a molecule with a topology (an `openmm:` system with `pdb` in [system]); write .npy only"
        ));
    }
    let s = run.sample(a.n, a.temperature, a.seed)?;
    boltzflow_io::trajectory::write_coordinates(&a.out, s.x.view(), 1.0)?;
    if let (Some(t), Some(top)) = (&a.trajectory, topology) {
        top.write_trajectory(t, s.x.view())?;
    }
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
