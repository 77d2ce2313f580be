//! `boltzflow sample RUN_DIR --n N --out X.npy [--log-weights W.npy]`.

use std::path::PathBuf;

use anyhow::{Result, bail};
use boltzflow_core::{Energy, Error, RandomStreams};
use boltzflow_learn::trainer::Reduced;
use ndarray::Array1;

use boltzflow_learn::run::BgRun as Run;

/// Arguments of `boltzflow sample`.
#[derive(clap::Args)]
pub struct SampleArgs {
    /// A run directory made by `boltzflow train`.
    pub run_dir: PathBuf,
    /// Number of configurations.
    #[arg(long)]
    pub n: usize,
    /// Output `.npy` `[n, dim]` (float64).
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
    if a.n == 0 {
        bail!(Error::invalid("--n", "must be at least 1"));
    }
    if !(a.temperature > 0.0 && a.temperature.is_finite()) {
        bail!(Error::invalid(
            "--temperature",
            format!("must be positive, got {}", a.temperature)
        ));
    }
    let run = Run::open(&a.run_dir)?;
    let (mut bg, epoch) = run.load_generator()?;
    let mut rng = RandomStreams::new(a.seed).stream("sample");
    let (x, neg_log_q) = bg.sample(a.n, a.temperature, 8192, &mut rng);
    boltzflow_io::write_npy_2d(&a.out, x.view())?;
    if let Some(path) = &a.log_weights {
        let energy = Reduced {
            inner: run.system.as_ref(),
            beta: run.beta,
        };
        let u = energy.energy(x.view())?;
        let lw: Array1<f64> = u.iter().zip(&neg_log_q).map(|(u, q)| -u + q).collect();
        boltzflow_io::write_npy_1d(path, lw.view())?;
    }
    println!(
        "{} samples from {} (epoch {epoch}) → {}",
        a.n,
        run.dir.display(),
        a.out.display()
    );
    Ok(())
}
