//! A VAE sweep (DESIGN §7): decoders × latent dimensions × replicates, each a full run of the β
//! protocol in `DIR/runs/{decoder}-k{k}-r{r}` (a run directory that `evaluate` and `report`
//! understand), trained in parallel on one shared data set (`DIR/data.npy`); the sweep's
//! configuration is kept as `DIR/sweep.toml`. A resumed sweep keeps finished runs and resumes
//! the others, each bit-identically (replicate r uses seed + r).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use boltzflow_core::{Error, Result};
use boltzflow_io::run_dir;
use ndarray::Array2;
use rayon::prelude::*;

use super::{NoProgress, StartMode, VaeRun, VaeRunMetrics};
use crate::vae::config::{SweepConfig, VaeConfig};

/// The file a sweep directory keeps its configuration in.
pub const SWEEP_CONFIG_FILE: &str = "sweep.toml";

/// One trained model of the grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepUnit {
    /// The decoder's name.
    pub decoder: String,
    /// Latent dimensions.
    pub latent: usize,
    /// Replicate number (seed + replicate).
    pub replicate: usize,
}

impl SweepUnit {
    /// Its run directory under the sweep directory `out`.
    pub fn dir(&self, out: &Path) -> PathBuf {
        out.join("runs").join(format!(
            "{}-k{}-r{}",
            self.decoder, self.latent, self.replicate
        ))
    }
}

/// What a sweep produced: every finished run's metrics (also those of earlier, resumed
/// invocations) in grid order, and the runs that failed with their errors.
pub struct SweepOutcome {
    /// Finished runs and their metrics.
    pub results: Vec<(SweepUnit, VaeRunMetrics)>,
    /// Failed runs: run directory and error.
    pub failures: Vec<(PathBuf, Error)>,
}

/// A sweep directory with its configuration.
pub struct VaeSweep {
    /// The directory.
    pub dir: PathBuf,
    /// The resolved configuration (with its `[sweep]`).
    pub cfg: VaeConfig,
    sweep: SweepConfig,
}

impl VaeSweep {
    /// A sweep of `cfg` in `dir` (nothing is written until [`VaeSweep::run`]).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (`sweep`) when `cfg` has no `[sweep]` table.
    pub fn new(dir: PathBuf, cfg: VaeConfig) -> Result<Self> {
        let Some(sweep) = cfg.sweep.clone() else {
            return Err(Error::invalid(
                "sweep",
                "the configuration has no [sweep] table (decoders, replicates, latent_dims); `boltzflow train` runs a single model",
            ));
        };
        Ok(Self { dir, cfg, sweep })
    }

    /// The grid, decoder-major then latent dimension then replicate.
    pub fn units(&self) -> Vec<SweepUnit> {
        let s = &self.sweep;
        let mut units = Vec::new();
        for decoder in &s.decoders {
            for &latent in &s.latent_dims {
                for replicate in 0..s.replicates {
                    units.push(SweepUnit {
                        decoder: decoder.clone(),
                        latent,
                        replicate,
                    });
                }
            }
        }
        units
    }

    /// Starts (or resumes) the sweep directory and returns the shared data `[n, dim]` (made
    /// once, kept as data.npy).
    ///
    /// # Errors
    /// As [`run_dir::start_or_resume_as`]; the data's errors.
    pub fn start(&self, mode: StartMode) -> Result<Array2<f64>> {
        let out = &self.dir;
        let resuming =
            run_dir::start_or_resume_as(out, SWEEP_CONFIG_FILE, mode, &self.cfg.to_toml(), || {
                Ok(VaeConfig::from_file(&out.join(SWEEP_CONFIG_FILE))? == self.cfg)
            })?;
        let runs = out.join("runs");
        std::fs::create_dir_all(&runs).map_err(|source| Error::Io {
            action: "cannot create",
            path: runs,
            source,
        })?;
        let data_path = out.join("data.npy");
        if resuming && data_path.exists() {
            return boltzflow_io::read_npy_2d(&data_path);
        }
        let x = VaeRun::new(out.clone(), self.cfg.clone())?.make_data()?;
        boltzflow_io::write_npy_2d(&data_path, x.view())?;
        Ok(x)
    }

    /// Trains and evaluates every run of the grid in parallel on `data` (from
    /// [`VaeSweep::start`]); with `resume`, finished runs keep their metrics and interrupted
    /// ones resume. `done` is told of each run as it finishes or fails (from worker threads).
    /// A failed run does not stop the others.
    ///
    /// # Errors
    /// Only a metrics.json that cannot be read back; failures of single runs are in the
    /// outcome.
    pub fn run(
        &self,
        data: &Array2<f64>,
        resume: bool,
        done: &(dyn Fn(&SweepUnit, &Result<VaeRunMetrics>) + Sync),
    ) -> Result<SweepOutcome> {
        let units = self.units();
        let failures = Mutex::new(Vec::new());
        units.par_iter().for_each(|u| {
            let res = self.run_unit(u, data, resume);
            done(u, &res);
            if let Err(e) = res {
                failures
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((u.dir(&self.dir), e));
            }
        });
        let mut failures = failures
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        failures.sort_by(|a, b| a.0.cmp(&b.0));
        let mut results = Vec::new();
        for u in units {
            let dir = u.dir(&self.dir);
            if dir.join("metrics.json").exists() {
                results.push((u, VaeRunMetrics::read(&dir)?));
            }
        }
        Ok(SweepOutcome { results, failures })
    }

    /// The configuration of one grid point.
    pub fn unit_config(&self, u: &SweepUnit) -> VaeConfig {
        let mut c = self.cfg.clone();
        c.sweep = None;
        c.vae.decoder.clone_from(&u.decoder);
        c.vae.latent_dim = u.latent;
        c.seed = self.cfg.seed.wrapping_add(u.replicate as u64);
        c
    }

    /// Trains and evaluates one grid point (or keeps its finished result on resume).
    fn run_unit(&self, u: &SweepUnit, data: &Array2<f64>, resume: bool) -> Result<VaeRunMetrics> {
        let dir = u.dir(&self.dir);
        if resume && dir.join("metrics.json").exists() {
            return VaeRunMetrics::read(&dir);
        }
        let run = VaeRun::new(dir, self.unit_config(u))?;
        let resuming = run.start(StartMode::from_flags(resume, false), Some(data))?;
        run.train_started(resuming, None, &mut NoProgress)?;
        let m = run.evaluate()?;
        m.save(&run.dir)?;
        Ok(m)
    }
}
