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
mod bg_coordinates;
mod bg_evaluate;
mod metadynamics;
mod plumed;
mod simulate;
mod system;
mod vae;
mod vae_cv;
mod vae_evaluate;
mod vae_representation;
mod vae_sweep;
mod van;
mod van_evaluate;

use std::path::{Path, PathBuf};

use boltzflow_core::{Error, Result};
pub use boltzflow_io::run_dir::StartMode;

pub use bg::{BgRun, BgSamples, split_data};
pub use bg_coordinates::{INTERNAL_COORDINATES_FILE, RunEnergy};
pub use bg_evaluate::{
    AIS_LEVELS_FILE, BAR_MIN_OVERLAP, BgEvaluateOptions, BgEvaluation, ProfileFile,
};
pub use metadynamics::{
    MetadynamicsResult, MetadynamicsSpec, MetadynamicsSummary, simulate_metadynamics,
};
pub use plumed::plumed_input;
pub use simulate::{
    BasinRow, DynamicsSummary, Sampler, SimulationResult, SimulationSpec, SimulationSummary,
    basin_populations, simulate,
};
pub use system::{build_system, initial_positions, simulate_data};
pub use vae::{TrainedStage, VaeRun};
pub use vae_cv::EncoderCv;
pub use vae_evaluate::{StageResult, VaeRunMetrics};
pub use vae_representation::{
    REPRESENTATION_FILE, Representation, RepresentationEnergy, RepresentationKind, phi_psi,
};
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
        Self::of_table(&table, &path.display().to_string())
    }

    /// The model of a configuration table (`origin` names it in errors).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (`model`) naming the accepted models for any other value.
    pub fn of_table(table: &toml::Table, origin: &str) -> Result<Self> {
        match table.get("model") {
            None => Ok(Self::Bg),
            Some(toml::Value::String(s)) => {
                Self::from_name(s).map_err(|e| e.context(format!("in `{origin}`")))
            }
            Some(v) => Err(Error::invalid(
                "model",
                format!(
                    "must be a string, one of {:?}, got {v} (in `{origin}`)",
                    Self::NAMES
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

/// A validated run configuration of any model.
#[derive(Debug, Clone)]
pub enum RunConfig {
    /// `model = "bg"` (or no `model`).
    Bg(Box<crate::config::BgConfig>),
    /// `model = "vae"`.
    Vae(Box<crate::vae::config::VaeConfig>),
    /// `model = "van"`.
    Van(Box<crate::van::VanConfig>),
}

impl RunConfig {
    /// Reads and validates a configuration file, whichever model its `model` key names.
    ///
    /// # Errors
    /// The file's errors (TOML line and column) and the model's validation (naming the field).
    pub fn from_file(path: &Path) -> Result<Self> {
        Ok(match ModelKind::of_file(path)? {
            ModelKind::Bg => Self::Bg(Box::new(crate::config::BgConfig::from_file(path)?)),
            ModelKind::Vae => Self::Vae(Box::new(crate::vae::config::VaeConfig::from_file(path)?)),
            ModelKind::Van => Self::Van(Box::new(crate::van::VanConfig::from_file(path)?)),
        })
    }

    /// Validates a configuration given as a table (a Python dict); `origin` names it in errors.
    ///
    /// # Errors
    /// As [`RunConfig::from_file`].
    pub fn from_table(table: toml::Table, origin: &str) -> Result<Self> {
        use crate::config::from_table;
        Ok(match ModelKind::of_table(&table, origin)? {
            ModelKind::Bg => {
                let c: crate::config::BgConfig = from_table(table, origin)?;
                c.validate()?;
                Self::Bg(Box::new(c))
            }
            ModelKind::Vae => {
                let c: crate::vae::config::VaeConfig = from_table(table, origin)?;
                c.validate()?;
                Self::Vae(Box::new(c))
            }
            ModelKind::Van => {
                let c: crate::van::VanConfig = from_table(table, origin)?;
                c.validate()?;
                Self::Van(Box::new(c))
            }
        })
    }

    /// Replaces the seed and `[system] spec` where `overrides` gives them, and makes the
    /// configuration's relative paths absolute (against the working directory).
    ///
    /// # Errors
    /// A path that cannot be made absolute.
    pub fn resolve(&mut self, overrides: &Overrides) -> Result<()> {
        match self {
            Self::Bg(c) => {
                overrides.apply(&mut c.seed, &mut c.system.spec);
                c.resolve_paths()
            }
            Self::Vae(c) => {
                overrides.apply(&mut c.seed, &mut c.system.spec);
                c.resolve_paths()
            }
            Self::Van(c) => {
                overrides.apply(&mut c.seed, &mut c.system.spec);
                c.resolve_paths()
            }
        }
    }

    /// Trains the run into `out`.
    ///
    /// # Errors
    /// Those of the model's `train`.
    pub fn train(
        self,
        out: PathBuf,
        opts: TrainOptions,
        progress: &mut dyn Progress,
    ) -> Result<()> {
        match self {
            Self::Bg(c) => BgRun::new(out, *c)?.train(opts, progress),
            Self::Vae(c) => VaeRun::new(out, *c)?.train(opts, progress),
            Self::Van(c) => VanRun::new(out, *c)?.train(opts, progress),
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
    let mut cfg = RunConfig::from_file(config)?;
    cfg.resolve(overrides)?;
    cfg.train(out, opts, progress)
}

/// Where a run's progress lines go. `status` lines (resuming, stopping, data made) matter to
/// anyone watching; `detail` lines (per epoch) are what a quiet run drops.
pub trait Progress {
    /// A status line.
    fn status(&mut self, line: &str);
    /// A per-epoch (or per-step) line.
    fn detail(&mut self, line: &str);
    /// Asked after every checkpoint; `true` stops training there with
    /// [`Error::Interrupted`] (the Python package answers from its pending Ctrl-C).
    fn interrupted(&mut self) -> bool {
        false
    }
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

/// Checks that `x` is `[n, dim]` with finite entries (`what` names it in the error).
///
/// # Errors
/// [`Error::Shape`] for another width, [`Error::NonFinite`] naming the first bad row and column.
pub(crate) fn check_configurations(
    x: ndarray::ArrayView2<'_, f64>,
    dim: usize,
    what: &str,
) -> Result<()> {
    if x.ncols() != dim {
        return Err(Error::Shape {
            what: what.into(),
            expected: format!("[n, {dim}]"),
            got: format!("[{}, {}]", x.nrows(), x.ncols()),
        });
    }
    if let Some(((r, c), v)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: what.into(),
            location: format!("row {r}, column {c}"),
            value: *v,
        });
    }
    Ok(())
}

/// Adds where the last good checkpoint is to an error that stopped training.
fn stopped(e: Error, checkpoint: &Path) -> Error {
    if matches!(e, Error::Interrupted { .. }) {
        return e; // it names its checkpoint
    }
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
