//! The TOML configuration of a Boltzmann-generator run (`boltzflow train CONFIG.toml`).
//! Unknown keys are errors, so a typo never silently falls back to a default.

use std::path::{Path, PathBuf};

use boltzflow_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::flow_spec::FlowSpec;

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgConfig {
    /// `model = "bg"` (optional: a configuration without `model` is a Boltzmann generator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The run seed: every random stream derives from it.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// `[system]`.
    pub system: SystemConfig,
    /// `[data]`: training data for J_ML (omit for energy-only training).
    #[serde(default)]
    pub data: Option<DataConfig>,
    /// `[flow]`.
    #[serde(default)]
    pub flow: FlowSpec,
    /// `[prior]`.
    #[serde(default)]
    pub prior: PriorConfig,
    /// `[train]`: settings shared by all stages.
    #[serde(default)]
    pub train: TrainConfig,
    /// `[[stage]]`: trained in order.
    #[serde(rename = "stage")]
    pub stages: Vec<StageConfig>,
    /// `[evaluate]`.
    #[serde(default)]
    pub evaluate: EvaluateConfig,
}

fn default_seed() -> u64 {
    1
}

/// `[system]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemConfig {
    /// A system specification (`boltzflow systems`), e.g. `double-well` or `openmm:ala2.xml`.
    pub spec: String,
    /// PDB with atom names and start positions (molecules).
    #[serde(default)]
    pub pdb: Option<PathBuf>,
    /// Temperature in K (molecules; reduced energies are E/k_BT). Toy systems are in kT.
    #[serde(default)]
    pub temperature: Option<f64>,
}

/// `[data]`: a file, or a simulation with the project's own sampler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A `.npy` file `[n, dim]`.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// `[data.simulate]`: generate the data instead.
    #[serde(default)]
    pub simulate: Option<SimulateConfig>,
    /// Fraction held out for the validation loss.
    #[serde(default = "default_validation")]
    pub validation_fraction: f64,
}

fn default_validation() -> f64 {
    0.1
}

/// `[data.simulate]`: Metropolis chains (DESIGN: the project's own sampler).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulateConfig {
    /// Independent chains.
    pub chains: usize,
    /// Steps per chain, burn-in included.
    pub steps: u64,
    /// Steps discarded.
    pub burn_in: u64,
    /// A frame every `stride` steps.
    pub stride: u64,
    /// The sampler: `metropolis` (default), or `langevin` (BAOAB, atomic masses and 300 K
    /// for molecules), `overdamped` or `mala` (see `boltzflow simulate`).
    #[serde(default = "default_sampler", skip_serializing_if = "is_metropolis")]
    pub sampler: crate::run::Sampler,
    /// Gaussian proposal width (Metropolis) or time step (Langevin; ps for molecules).
    pub step_size: f64,
    /// Langevin friction γ (1/ps for molecules).
    #[serde(
        default = "default_friction",
        skip_serializing_if = "is_default_friction"
    )]
    pub friction: f64,
    /// Start: `default` (the system's start configuration), `uniform` (in its reference box),
    /// `exact` (its exact sampler) or a .npy file `[m, dim]` whose rows each start chains/m
    /// consecutive chains.
    #[serde(default = "default_init")]
    pub init: String,
    /// `[data.simulate.replica_exchange]`: run the chains as parallel tempering and keep the
    /// kT = 1 replica (reduced-unit systems, Metropolis moves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_exchange: Option<ReplicaExchangeConfig>,
}

/// `[data.simulate.replica_exchange]`: every chain of `[data.simulate]` becomes an independent
/// parallel-tempering run (`boltzflow_mcmc::replica_exchange`) over `replicas` temperatures
/// geometric from kT = 1 to `max_temperature`, Metropolis moves of `step_size` at each, a swap
/// attempt between neighbours every `exchange_every` steps (even and odd pairs alternating).
/// `steps`, `burn_in` and `stride` count Metropolis steps and must be multiples of
/// `exchange_every`; the frames are those of the kT = 1 replica. Equilibrium data for systems
/// whose chains stay in one state (a dimer behind a 15 kT barrier, a liquid that forgets its
/// start slowly).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaExchangeConfig {
    /// Temperatures per run (≥ 2).
    pub replicas: usize,
    /// The highest kT (> 1).
    pub max_temperature: f64,
    /// Metropolis steps between swap attempts.
    #[serde(default = "default_exchange_every")]
    pub exchange_every: u64,
}

fn default_exchange_every() -> u64 {
    20
}

impl ReplicaExchangeConfig {
    /// Checks the ladder and that `sim`'s steps, burn-in and stride are whole rounds.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the key.
    pub fn check(&self, sim: &SimulateConfig) -> Result<()> {
        let key = "data.simulate.replica_exchange";
        let every = self.exchange_every;
        if every == 0 {
            return Err(Error::invalid(
                format!("{key}.exchange_every"),
                "must be at least 1",
            ));
        }
        for (name, v) in [
            ("steps", sim.steps),
            ("burn_in", sim.burn_in),
            ("stride", sim.stride),
        ] {
            if !v.is_multiple_of(every) {
                return Err(Error::invalid(
                    format!("data.simulate.{name}"),
                    format!("{v} is not a multiple of {key}.exchange_every = {every}"),
                ));
            }
        }
        if self.max_temperature.is_nan() || self.max_temperature <= 1.0 {
            return Err(Error::invalid(
                format!("{key}.max_temperature"),
                format!(
                    "must be above 1 (the data's kT), got {}",
                    self.max_temperature
                ),
            ));
        }
        if self.replicas < 2 {
            return Err(Error::invalid(
                format!("{key}.replicas"),
                format!(
                    "a ladder needs at least 2 temperatures, got {}",
                    self.replicas
                ),
            ));
        }
        Ok(())
    }
}

fn default_sampler() -> crate::run::Sampler {
    crate::run::Sampler::Metropolis
}

fn is_metropolis(s: &crate::run::Sampler) -> bool {
    *s == crate::run::Sampler::Metropolis
}

fn default_friction() -> f64 {
    1.0
}

fn is_default_friction(f: &f64) -> bool {
    *f == 1.0
}

fn default_init() -> String {
    "default".into()
}

/// `[prior]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorConfig {
    /// Latent standard deviation σ.
    pub sigma: f64,
}

impl Default for PriorConfig {
    fn default() -> Self {
        Self { sigma: 1.0 }
    }
}

/// `[train]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Rows per batch (data batch and generated batch alike).
    pub batch_size: usize,
    /// Optimizer steps per epoch (an epoch is one row of metrics.csv and one checkpoint).
    pub steps_per_epoch: usize,
    /// Clip the gradient's Euclidean norm to this value.
    pub clip_grad_norm: Option<f64>,
    /// linlogcut: energies above this (reduced units) grow logarithmically in J_KL.
    pub high_energy: Option<f64>,
    /// linlogcut: energies are capped here.
    pub max_energy: Option<f64>,
    /// Rows per parallel chunk.
    pub chunk_rows: usize,
    /// Generated samples for the per-epoch ESS column (0 to skip).
    pub ess_samples: usize,
    /// J_RC: the reaction coordinate (`projection:…` or `distance:i,j`).
    pub rc_coordinate: Option<String>,
    /// J_RC: bounds of the kernel grid.
    pub rc_bounds: Option<[f64; 2]>,
    /// J_RC: number of kernels.
    pub rc_grid: usize,
    /// J_RC: kernel width (default: the grid spacing).
    pub rc_width: Option<f64>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            batch_size: 256,
            steps_per_epoch: 100,
            clip_grad_norm: None,
            high_energy: None,
            max_energy: None,
            chunk_rows: boltzflow_nn::parallel::CHUNK_ROWS,
            ess_samples: 2048,
            rc_coordinate: None,
            rc_bounds: None,
            rc_grid: 50,
            rc_width: None,
        }
    }
}

/// `[[stage]]`: a training stage with its own loss weights and learning rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// Name (in metrics.csv).
    pub name: String,
    /// Epochs in this stage.
    pub epochs: usize,
    /// Learning rate at the start of the stage.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Learning rate factor per epoch (1 = constant).
    #[serde(default = "one")]
    pub lr_decay: f64,
    /// Weight of J_ML.
    #[serde(default)]
    pub w_ml: f64,
    /// Weight of J_KL.
    #[serde(default)]
    pub w_kl: f64,
    /// Weight of J_RC (needs `rc_coordinate`).
    #[serde(default)]
    pub w_rc: f64,
    /// Temperatures (relative, τ) that the KL batch is split over.
    #[serde(default = "default_temperatures")]
    pub temperatures: Vec<f64>,
    /// The temperature (relative to the system's) this stage trains towards: J_KL and the
    /// reweighted samples target exp(−u/τ_target) with the latent prior at its own
    /// temperature (temperature-annealed training, TA-BG: Schopmans & Friederich, 2024).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub target_temperature: f64,
    /// Training without data: J_ML over samples of the flow itself, drawn at the start of every
    /// epoch (this many), importance-weighted to exp(−u/τ_target) and resampled in proportion
    /// to their weights (TA-BG's annealing step). 0: J_ML uses `[data]`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub self_samples: usize,
    /// Resample-move: Metropolis-adjusted Langevin steps (MALA) at the target temperature
    /// applied to the resampled own samples before they are used, so that copies of one sample
    /// spread out (as SMC samplers and FAB's AIS do). 0: none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub self_mcmc_steps: usize,
    /// The MALA step Δt/γ in the flow's coordinates (kT = 1 at the target temperature).
    #[serde(
        default = "default_self_mcmc_step",
        skip_serializing_if = "is_default_self_mcmc_step"
    )]
    pub self_mcmc_step: f64,
    /// Torsion jumps after the MALA steps: this many Metropolis moves per own sample, each
    /// redrawing one free torsion (a periodic flow coordinate, chosen at random) uniformly over
    /// its period. A symmetric proposal, accepted with min(1, e^{−Δu}) at the target, so the
    /// own samples cross torsion barriers that MALA's small steps never do and can show the
    /// flow basins it has not found. Needs `self_samples` and an internal-coordinate flow.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub self_torsion_jumps: usize,
    /// Tilts J_ML towards the data the flow covers worst: each data row of a batch is weighted
    /// by w_i^γ, w_i = e^{−u(x_i)}/q(x_i), normalised over the batch (γ = `ml_tilt`). γ = 0 is
    /// maximum likelihood (the forward KL); γ = 1 is the gradient of the Rényi-2 divergence
    /// D₂(p‖q) = ln E_p[p/q], whose exponential is the inverse of the importance-sampling
    /// ESS fraction, so the tilt trains for the ESS where ML trains for the average density.
    /// The batch normalisation makes it noisy near γ = 1; in between it interpolates.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub ml_tilt: f64,
    /// Balances J_ML along the reaction coordinate (`[train] rc_coordinate`, binned on the J_RC
    /// grid): data rows are drawn with probability ∝ min(h_max/h(bin), r), h the data's
    /// histogram along the coordinate and r this value (≥ 1; 0 = uniform draws). Rare states
    /// and the wells' edges get up to r times their share of the batches, so the generator
    /// spends more of its capacity there; reweighting corrects for the changed density as for
    /// any other generator.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub ml_balance: f64,
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

fn default_self_mcmc_step() -> f64 {
    0.005
}

fn is_default_self_mcmc_step(v: &f64) -> bool {
    *v == default_self_mcmc_step()
}

fn is_one(v: &f64) -> bool {
    *v == 1.0
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

fn default_lr() -> f64 {
    1e-3
}
fn one() -> f64 {
    1.0
}
fn default_temperatures() -> Vec<f64> {
    vec![1.0]
}

/// `[evaluate]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluateConfig {
    /// Generated samples for the evaluation.
    pub n_samples: usize,
    /// Bootstrap resamples for error bars.
    pub bootstrap: usize,
    /// Reaction coordinate (`projection:…` or `distance:i,j`) for the profile and the states.
    pub coordinate: Option<String>,
    /// States: A is coordinate < threshold, B is coordinate ≥ threshold; ΔF = F_B − F_A.
    pub threshold: Option<f64>,
    /// Profile range along the coordinate.
    pub profile_range: Option<[f64; 2]>,
    /// Profile bins.
    pub profile_bins: usize,
    /// Reference profile bins below this probability are left out of `profile_rmse`.
    pub min_probability: f64,
    /// A reference JSON (`edges`, `free_energy` in kT, optionally `delta_f`) for systems without
    /// quadrature, e.g. the umbrella-sampling fixture of the dimer.
    pub reference: Option<std::path::PathBuf>,
    /// Latent-space Metropolis: chains (0 to skip).
    pub latent_mc_chains: usize,
    /// Latent-space Metropolis: steps per chain (a quarter is burn-in; a frame every 10 steps).
    pub latent_mc_steps: usize,
    /// Latent-space Metropolis: Gaussian step width in z.
    pub latent_mc_step: f64,
    /// Temperature τ of the prior the evaluation samples from (σ → √τ σ). Below 1 it trims the
    /// latent tails that a maximum-likelihood flow maps onto clashing configurations; the
    /// log-weights use the tempered density, so reweighting stays exact.
    pub prior_temperature: f64,
    /// Annealed importance sampling from the generator to the target in latent space
    /// ([`crate::ais`]): samples (0 to skip). Reported as `ais_*` next to the plain estimates;
    /// `ais_levels.csv` in the run has β, the ESS fraction and the log-weights' 10–90 % range (towards
    /// the flattened target with `ais_flatten`), the acceptance and the step after every level.
    pub ais_samples: usize,
    /// AIS: intermediate distributions.
    pub ais_levels: usize,
    /// AIS: moves per level.
    pub ais_steps: usize,
    /// AIS: initial step in z, the Metropolis width or the HMC leapfrog step (adapted between
    /// levels towards acceptance 0.3 or 0.65).
    pub ais_step: f64,
    /// AIS: the move, `hmc` (default) or `metropolis`.
    pub ais_kernel: AisKernelName,
    /// AIS: leapfrog steps per HMC move.
    pub ais_leapfrog: usize,
    /// AIS: schedule exponent, β_t = (t/T)^p (1: linear; above 1 spends more levels near the
    /// generator, where a poor generator's weights change fastest).
    pub ais_exponent: f64,
    /// AIS towards the target flattened along `coordinate` (kT; absent: the target itself):
    /// the biased target e^{−u + b(s)}, b = the generator's reweighted profile above its
    /// minimum, capped at this many kT, spreads the AIS samples over every bin below the cap;
    /// the weights remove b again ([`crate::profile_bias`]). Needs `coordinate` and
    /// `profile_range`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ais_flatten: Option<f64>,
    /// AIS with resampling (sequential Monte Carlo, [`crate::ais::Resampling`]): a population
    /// is resampled when the Kish ESS fraction of its weights falls below this (0 < t ≤ 1;
    /// absent: plain AIS). Error bars then bootstrap whole populations, and the per-state
    /// effective counts of the warnings count lineages (copies of one initial sample once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ais_resample: Option<f64>,
    /// AIS with resampling: independent populations the samples are split into (each
    /// resampled within itself; at least 2, for the error bars).
    pub ais_populations: usize,
    /// AIS with resampling: start from a pool of this many generator samples (0: from
    /// `ais_samples` of them), at least 4 × `ais_samples`. Each population draws its members
    /// from its share of the pool by importance resampling towards the level β* where the pool
    /// still holds 4 effective samples per member, and the levels anneal from β* to 1
    /// ([`crate::ais::Resampling::pool`]): generator samples are cheap next to moves.
    pub ais_pool: usize,
}

/// `[evaluate] ais_kernel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AisKernelName {
    /// Hamiltonian Monte Carlo in latent space.
    #[default]
    Hmc,
    /// Random-walk Metropolis in latent space.
    Metropolis,
}

impl Default for EvaluateConfig {
    fn default() -> Self {
        Self {
            n_samples: 100_000,
            bootstrap: 100,
            coordinate: None,
            threshold: None,
            profile_range: None,
            profile_bins: 50,
            min_probability: 1e-3,
            reference: None,
            latent_mc_chains: 256,
            latent_mc_steps: 2000,
            latent_mc_step: 0.2,
            prior_temperature: 1.0,
            ais_samples: 0,
            ais_levels: 200,
            ais_steps: 1,
            ais_step: 0.05,
            ais_kernel: AisKernelName::Hmc,
            ais_leapfrog: 5,
            ais_exponent: 1.0,
            ais_flatten: None,
            ais_resample: None,
            ais_populations: 10,
            ais_pool: 0,
        }
    }
}

impl BgConfig {
    /// Reads and validates a configuration file.
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable, [`Error::BadFile`] with the TOML error (line, column and
    /// field) if malformed, [`Error::InvalidParameter`] naming the field for bad values.
    pub fn from_file(path: &Path) -> Result<Self> {
        let cfg: Self = read_toml(path)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses and validates TOML text.
    ///
    /// # Errors
    /// As [`BgConfig::from_file`].
    pub fn from_toml(text: &str) -> Result<Self> {
        let cfg: Self = toml::from_str(text).map_err(|e| Error::BadFile {
            path: PathBuf::from("<config>"),
            reason: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The configuration as TOML (the run directory's resolved `config.toml`).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Makes relative paths absolute (the system's files, the data file, a simulation's
    /// `init` file, the evaluation reference), so that the run directory's copy works from
    /// anywhere.
    ///
    /// # Errors
    /// [`Error::Io`] if a path cannot be resolved.
    pub fn resolve_paths(&mut self) -> Result<()> {
        self.system.resolve_paths()?;
        if let Some(d) = &mut self.data {
            if let Some(f) = &d.file {
                d.file = Some(absolute(f)?);
            }
            if let Some(sim) = &mut d.simulate
                && !["default", "uniform", "exact"].contains(&sim.init.as_str())
            {
                sim.init = absolute(Path::new(&sim.init))?.display().to_string();
            }
        }
        if let Some(r) = &self.evaluate.reference {
            self.evaluate.reference = Some(absolute(r)?);
        }
        Ok(())
    }

    /// Checks the values serde cannot.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if let Some(m) = &self.model
            && m != "bg"
        {
            crate::run::ModelKind::from_name(m)?;
            return Err(Error::invalid(
                "model",
                format!("`{m}` configurations are not Boltzmann-generator configurations"),
            ));
        }
        if self.stages.is_empty() {
            return Err(Error::invalid("stage", "at least one [[stage]] is needed"));
        }
        let has_data = self
            .data
            .as_ref()
            .is_some_and(|d| d.file.is_some() || d.simulate.is_some());
        if let Some(sim) = self.data.as_ref().and_then(|d| d.simulate.as_ref())
            && let Some(re) = &sim.replica_exchange
        {
            re.check(sim)?;
        }
        if self.flow.whiten && !has_data {
            return Err(Error::invalid(
                "flow.whiten",
                "whitening is fitted to training data: add [data] with `file` or [data.simulate]",
            ));
        }
        for (k, s) in self.stages.iter().enumerate() {
            let f = |name: &str| format!("stage[{k}].{name}");
            if !(s.lr > 0.0 && s.lr.is_finite()) {
                return Err(Error::invalid(
                    f("lr"),
                    format!("must be positive, got {}", s.lr),
                ));
            }
            if !(s.lr_decay > 0.0 && s.lr_decay <= 1.0) {
                return Err(Error::invalid(
                    f("lr_decay"),
                    format!("must be in (0, 1], got {}", s.lr_decay),
                ));
            }
            for (n, w) in [("w_ml", s.w_ml), ("w_kl", s.w_kl), ("w_rc", s.w_rc)] {
                if !(w >= 0.0 && w.is_finite()) {
                    return Err(Error::invalid(f(n), format!("must be ≥ 0, got {w}")));
                }
            }
            if s.w_ml + s.w_kl + s.w_rc == 0.0 {
                return Err(Error::invalid(
                    f("w_ml"),
                    "all loss weights are zero; set w_ml, w_kl or w_rc",
                ));
            }
            if s.w_ml > 0.0 && !has_data && s.self_samples == 0 {
                return Err(Error::invalid(
                    f("w_ml"),
                    "J_ML needs training data: add [data] with `file` or [data.simulate], or train on the flow's own reweighted samples with `self_samples`",
                ));
            }
            if s.self_samples > 0 && s.w_ml == 0.0 {
                return Err(Error::invalid(
                    f("self_samples"),
                    "the reweighted samples are J_ML's data: set w_ml > 0",
                ));
            }
            if s.self_samples == 1 {
                return Err(Error::invalid(
                    f("self_samples"),
                    "need at least 2 samples to reweight",
                ));
            }
            if !(0.0..=1.0).contains(&s.ml_tilt) {
                return Err(Error::invalid(
                    f("ml_tilt"),
                    format!("must be in [0, 1], got {}", s.ml_tilt),
                ));
            }
            if s.ml_tilt > 0.0 && (s.w_ml == 0.0 || s.self_samples > 0) {
                return Err(Error::invalid(
                    f("ml_tilt"),
                    "tilts J_ML on [data]: needs w_ml > 0 and no self_samples",
                ));
            }
            if s.ml_balance != 0.0 {
                if !(s.ml_balance >= 1.0 && s.ml_balance.is_finite()) {
                    return Err(Error::invalid(
                        f("ml_balance"),
                        format!("must be at least 1 (or 0 for none), got {}", s.ml_balance),
                    ));
                }
                if s.w_ml == 0.0 || s.self_samples > 0 || self.train.rc_bounds.is_none() {
                    return Err(Error::invalid(
                        f("ml_balance"),
                        "balances the [data] rows of J_ML along [train] rc_coordinate: needs w_ml > 0, no self_samples, and rc_coordinate with rc_bounds",
                    ));
                }
            }
            if s.self_mcmc_steps > 0 && s.self_samples == 0 {
                return Err(Error::invalid(
                    f("self_mcmc_steps"),
                    "moves the resampled own samples: set self_samples too",
                ));
            }
            if s.self_torsion_jumps > 0
                && (s.self_samples == 0
                    || self.flow.coordinates != crate::FlowCoordinates::Internal)
            {
                return Err(Error::invalid(
                    f("self_torsion_jumps"),
                    "redraws free torsions of the resampled own samples: set self_samples, in a flow with coordinates = \"internal\"",
                ));
            }
            if !(s.self_mcmc_step > 0.0 && s.self_mcmc_step.is_finite()) {
                return Err(Error::invalid(
                    f("self_mcmc_step"),
                    format!("must be positive, got {}", s.self_mcmc_step),
                ));
            }
            let tt = s.target_temperature;
            if !(tt > 0.0 && tt.is_finite()) {
                return Err(Error::invalid(
                    f("target_temperature"),
                    format!("must be positive, got {tt}"),
                ));
            }
            if s.w_rc > 0.0
                && (self.train.rc_coordinate.is_none() || self.train.rc_bounds.is_none())
            {
                return Err(Error::invalid(
                    f("w_rc"),
                    "J_RC needs [train] rc_coordinate (e.g. \"distance:0,1\") and rc_bounds = [lo, hi]",
                ));
            }
            if s.temperatures.is_empty()
                || s.temperatures.iter().any(|t| !(*t > 0.0 && t.is_finite()))
            {
                return Err(Error::invalid(
                    f("temperatures"),
                    format!("need positive values, got {:?}", s.temperatures),
                ));
            }
        }
        if self.train.batch_size == 0 || self.train.steps_per_epoch == 0 {
            return Err(Error::invalid(
                "train.batch_size",
                "batch_size and steps_per_epoch must be positive",
            ));
        }
        if let (Some(h), Some(m)) = (self.train.high_energy, self.train.max_energy)
            && m <= h
        {
            return Err(Error::invalid(
                "train.max_energy",
                format!("must exceed high_energy ({h}), got {m}"),
            ));
        }
        if let Some(d) = &self.data {
            if d.file.is_some() == d.simulate.is_some() {
                return Err(Error::invalid(
                    "data",
                    "give exactly one of `file` and [data.simulate]",
                ));
            }
            if !(0.0..0.9).contains(&d.validation_fraction) {
                return Err(Error::invalid(
                    "data.validation_fraction",
                    "must be in [0, 0.9)",
                ));
            }
        }
        if !(self.prior.sigma > 0.0 && self.prior.sigma.is_finite()) {
            return Err(Error::invalid(
                "prior.sigma",
                format!("must be positive, got {}", self.prior.sigma),
            ));
        }
        let t = self.evaluate.prior_temperature;
        if !(t > 0.0 && t.is_finite()) {
            return Err(Error::invalid(
                "evaluate.prior_temperature",
                format!("must be positive, got {t}"),
            ));
        }
        if self.evaluate.profile_bins == 0 {
            return Err(Error::invalid(
                "evaluate.profile_bins",
                "must be at least 1",
            ));
        }
        let ev = &self.evaluate;
        if ev.ais_samples > 0 {
            if ev.ais_samples < 2 || ev.ais_levels == 0 {
                return Err(Error::invalid(
                    "evaluate.ais_samples",
                    format!(
                        "AIS needs at least 2 samples and 1 level (got {} and ais_levels = {}); set ais_samples = 0 to skip it",
                        ev.ais_samples, ev.ais_levels
                    ),
                ));
            }
            if ev.ais_kernel == AisKernelName::Hmc && ev.ais_leapfrog == 0 {
                return Err(Error::invalid(
                    "evaluate.ais_leapfrog",
                    "HMC needs at least 1 leapfrog step",
                ));
            }
            if !(ev.ais_exponent > 0.0 && ev.ais_exponent.is_finite()) {
                return Err(Error::invalid(
                    "evaluate.ais_exponent",
                    format!("must be positive, got {}", ev.ais_exponent),
                ));
            }
            if !(ev.ais_step > 0.0 && ev.ais_step.is_finite()) {
                return Err(Error::invalid(
                    "evaluate.ais_step",
                    format!("must be positive, got {}", ev.ais_step),
                ));
            }
        }
        if let Some(t) = ev.ais_resample {
            if !(t > 0.0 && t <= 1.0) {
                return Err(Error::invalid(
                    "evaluate.ais_resample",
                    format!("is an ESS fraction in (0, 1], got {t}"),
                ));
            }
            if ev.ais_populations < 2 || ev.ais_populations > ev.ais_samples {
                return Err(Error::invalid(
                    "evaluate.ais_populations",
                    format!(
                        "resampling AIS needs between 2 and ais_samples = {} independent populations (the error bars resample whole populations), got {}",
                        ev.ais_samples, ev.ais_populations
                    ),
                ));
            }
        }
        if ev.ais_pool > 0 {
            let least = crate::ais::POOL_ESS_PER_SAMPLE * ev.ais_samples as f64;
            if ev.ais_resample.is_none() || (ev.ais_pool as f64) < least {
                return Err(Error::invalid(
                    "evaluate.ais_pool",
                    format!(
                        "a pool start is part of resampling AIS: it needs ais_resample and at least {least} samples (4 × ais_samples), got {}; or remove ais_pool",
                        ev.ais_pool
                    ),
                ));
            }
        }
        if let Some(cap) = ev.ais_flatten {
            if !(cap > 0.0 && cap.is_finite()) {
                return Err(Error::invalid(
                    "evaluate.ais_flatten",
                    format!("must be a positive number of kT, got {cap}"),
                ));
            }
            if ev.ais_samples == 0 || ev.coordinate.is_none() || ev.profile_range.is_none() {
                return Err(Error::invalid(
                    "evaluate.ais_flatten",
                    "flattens AIS along the profile: set ais_samples, coordinate and profile_range too (or remove ais_flatten)",
                ));
            }
            if self.flow.coordinates == crate::FlowCoordinates::Internal {
                return Err(Error::invalid(
                    "evaluate.ais_flatten",
                    "works in Cartesian flows only: this flow runs in internal coordinates, where the bias would need the coordinate layer's Jacobian",
                ));
            }
        }
        Ok(())
    }

    /// Total epochs over all stages.
    pub fn total_epochs(&self) -> usize {
        self.stages.iter().map(|s| s.epochs).sum()
    }

    /// Energy evaluations of training epoch `e` (global): the KL batches, the reweighted
    /// samples and the ESS monitor.
    pub fn energy_evaluations_in_epoch(&self, e: usize) -> u64 {
        let Some((k, _)) = self.stage_of(e) else {
            return 0;
        };
        let s = &self.stages[k];
        let t = &self.train;
        let kl = if s.w_kl > 0.0 || s.w_rc > 0.0 {
            t.batch_size * t.steps_per_epoch
        } else {
            0
        };
        // MALA: one energy and force evaluation per sample and step (plus the start).
        let mcmc = if s.self_mcmc_steps > 0 {
            s.self_samples * (s.self_mcmc_steps + 1)
        } else {
            0
        };
        // Torsion jumps: one energy per sample and jump (plus the start).
        let jumps = if s.self_torsion_jumps > 0 {
            s.self_samples * (s.self_torsion_jumps + 1)
        } else {
            0
        };
        (kl + s.self_samples + mcmc + jumps + t.ess_samples) as u64
    }

    /// The stage of global epoch `e` and the epoch index within it.
    pub fn stage_of(&self, e: usize) -> Option<(usize, usize)> {
        let mut start = 0;
        for (k, s) in self.stages.iter().enumerate() {
            if e < start + s.epochs {
                return Some((k, e - start));
            }
            start += s.epochs;
        }
        None
    }
}

/// Reads a TOML file into `T`.
///
/// # Errors
/// [`Error::Io`] if unreadable, [`Error::BadFile`] with the TOML error (line, column and field)
/// if malformed.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        action: "cannot read configuration",
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| Error::BadFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// A configuration from a TOML table (a Python dict, a table built in code); `origin` names
/// it in errors, as a file's path would.
///
/// # Errors
/// [`Error::BadFile`] with serde's message (the field, and what it expected).
pub fn from_table<T: serde::de::DeserializeOwned>(table: toml::Table, origin: &str) -> Result<T> {
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| Error::BadFile {
            path: PathBuf::from(origin),
            reason: e.to_string(),
        })
}

/// `p` made absolute (against the working directory).
///
/// # Errors
/// [`Error::Io`] if the working directory cannot be read.
pub(crate) fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|source| Error::Io {
        action: "cannot resolve",
        path: p.to_path_buf(),
        source,
    })
}

impl SystemConfig {
    /// Makes the system's files (an `openmm:` System XML, the PDB) absolute.
    ///
    /// # Errors
    /// As [`absolute`].
    pub(crate) fn resolve_paths(&mut self) -> Result<()> {
        if let Some(rest) = self.spec.strip_prefix("openmm:") {
            self.spec = format!("openmm:{}", absolute(Path::new(rest.trim()))?.display());
        }
        if let Some(p) = &self.pdb {
            self.pdb = Some(absolute(p)?);
        }
        Ok(())
    }
}
