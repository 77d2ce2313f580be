//! Training runs in run directories (DESIGN §7), for every model: the run directory of each
//! model ([`BgRun`], [`VaeRun`], [`VanRun`]), started, refused or resumed through one layer
//! (`boltzflow_io::run_dir`), with one checkpoint type ([`boltzflow_nn::TrainingCheckpoint`])
//! and one metrics writer ([`boltzflow_io::run_dir::MetricsCsv`]). A run killed at any point
//! resumes from its last checkpoint to bit-identical parameters and metrics: every epoch or step
//! draws from its own named random streams.
//!
//! The command line (`boltzflow train`) and the Python package are thin layers over
//! [`BgRun::train`], [`VaeRun::train`] and [`VanRun::train`].

mod bg;
mod bg_evaluate;
mod system;
mod vae;
mod vae_evaluate;
mod vae_sweep;
mod van;
mod van_evaluate;

use std::path::{Path, PathBuf};

use boltzflow_core::{Error, Result};
pub use boltzflow_io::run_dir::StartMode;

pub use bg::{BgRun, BgSamples, split_data};
pub use bg_evaluate::{BAR_MIN_OVERLAP, BgEvaluateOptions, BgEvaluation, ProfileFile};
pub use system::{build_system, initial_positions, simulate_data};
pub use vae::{TrainedStage, VaeRun};
pub use vae_evaluate::{StageResult, VaeRunMetrics};
pub use vae_sweep::{SWEEP_CONFIG_FILE, SweepOutcome, SweepUnit, VaeSweep};
pub use van::VanRun;
pub use van_evaluate::{BetaResult, VanMetrics, VanSamples};

/// The models a configuration's `model` key selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// A Boltzmann generator (`model = "bg"`, the default when `model` is absent).
    Bg,
    /// A variational autoencoder (`model = "vae"`).
    Vae,
    /// A variational autoregressive network on spins (`model = "van"`).
    Van,
}

impl ModelKind {
    /// The names as written in configurations.
    pub const NAMES: [&'static str; 3] = ["bg", "vae", "van"];

    /// The model of a configuration file.
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::BadFile`] if the file cannot be read or is not TOML;
    /// [`Error::InvalidParameter`] (`model`) naming the accepted models for any other value.
    pub fn of_file(path: &Path) -> Result<Self> {
        let table: toml::Table = crate::config::read_toml(path)?;
        match table.get("model") {
            None => Ok(Self::Bg),
            Some(toml::Value::String(s)) => {
                Self::from_name(s).map_err(|e| e.context(format!("in `{}`", path.display())))
            }
            Some(v) => Err(Error::invalid(
                "model",
                format!(
                    "must be a string, one of {:?}, got {v} (in `{}`)",
                    Self::NAMES,
                    path.display()
                ),
            )),
        }
    }

    /// The model of a name.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (`model`) for an unknown name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "bg" => Ok(Self::Bg),
            "vae" => Ok(Self::Vae),
            "van" => Ok(Self::Van),
            other => Err(Error::invalid(
                "model",
                format!(
                    "unknown model `{other}`; use \"bg\" (Boltzmann generator, the default), \"vae\" or \"van\""
                ),
            )),
        }
    }

    /// The model of a run directory (from its config.toml).
    ///
    /// # Errors
    /// As [`ModelKind::of_file`], and [`Error::InvalidParameter`] (`RUN_DIR`) without one.
    pub fn of_run(dir: &Path) -> Result<Self> {
        Self::of_file(&boltzflow_io::run_dir::config_file(dir)?)
    }
}

/// How a training run starts and ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrainOptions {
    /// What to do with a run already in the directory.
    pub mode: StartMode,
    /// Stop after this many epochs (VAN: optimizer steps) in total, as a killed run would.
    pub stop_after: Option<usize>,
}

/// Overrides of a configuration's seed and `[system] spec` (the command line's `--seed` and
/// `--system`).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Replaces `seed`.
    pub seed: Option<u64>,
    /// Replaces `[system] spec`.
    pub system: Option<String>,
}

impl Overrides {
    fn apply(&self, seed: &mut u64, spec: &mut String) {
        if let Some(s) = self.seed {
            *seed = s;
        }
        if let Some(s) = &self.system {
            spec.clone_from(s);
        }
    }
}

/// Trains the run of the configuration file `config` into `out`, whichever model its `model`
/// key names (relative paths in it are resolved against the working directory first).
///
/// # Errors
/// The configuration's errors (naming the field), and those of the model's `train`.
pub fn train_file(
    config: &Path,
    out: PathBuf,
    overrides: &Overrides,
    opts: TrainOptions,
    progress: &mut dyn Progress,
) -> Result<()> {
    match ModelKind::of_file(config)? {
        ModelKind::Bg => {
            let mut cfg = crate::config::BgConfig::from_file(config)?;
            overrides.apply(&mut cfg.seed, &mut cfg.system.spec);
            cfg.resolve_paths()?;
            BgRun::new(out, cfg)?.train(opts, progress)
        }
        ModelKind::Vae => {
            let mut cfg = crate::vae::config::VaeConfig::from_file(config)?;
            overrides.apply(&mut cfg.seed, &mut cfg.system.spec);
            cfg.resolve_paths()?;
            VaeRun::new(out, cfg)?.train(opts, progress)
        }
        ModelKind::Van => {
            let mut cfg = crate::van::VanConfig::from_file(config)?;
            overrides.apply(&mut cfg.seed, &mut cfg.system.spec);
            cfg.resolve_paths()?;
            VanRun::new(out, cfg)?.train(opts, progress)
        }
    }
}

/// Where a run's progress lines go. `status` lines (resuming, stopping, data made) matter to
/// anyone watching; `detail` lines (per epoch) are what a quiet run drops.
pub trait Progress {
    /// A status line.
    fn status(&mut self, line: &str);
    /// A per-epoch (or per-step) line.
    fn detail(&mut self, line: &str);
}

/// Progress on standard output; `quiet` drops the detail lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrintProgress {
    /// Drop the detail lines.
    pub quiet: bool,
}

impl Progress for PrintProgress {
    fn status(&mut self, line: &str) {
        println!("{line}");
    }
    fn detail(&mut self, line: &str) {
        if !self.quiet {
            println!("{line}");
        }
    }
}

/// No progress output at all (runs inside a sweep).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn status(&mut self, _: &str) {}
    fn detail(&mut self, _: &str) {}
}

/// Adds where the last good checkpoint is to an error that stopped training.
fn stopped(e: Error, checkpoint: &Path) -> Error {
    e.context(format!(
        "training stopped; the last good checkpoint is `{}`",
        checkpoint.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_are_bg_vae_van_and_nothing_else() {
        for (name, kind) in
            ModelKind::NAMES
                .iter()
                .zip([ModelKind::Bg, ModelKind::Vae, ModelKind::Van])
        {
            assert_eq!(ModelKind::from_name(name).unwrap(), kind);
        }
        let e = ModelKind::from_name("flow").unwrap_err().to_string();
        assert!(
            e.contains("unknown model `flow`") && e.contains("\"vae\""),
            "{e}"
        );
    }
}
