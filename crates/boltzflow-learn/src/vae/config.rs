//! The TOML configuration of a VAE run (`model = "vae"`) and of a sweep (the same file with a
//! `[sweep]` table).
//!
//! ```toml
//! model = "vae"
//! seed = 1
//! [system]
//! spec = "gaussian2d"
//! [data]
//! exact = 100000             # or file = "X.npy", or [data.simulate] (Metropolis chains)
//! [vae]
//! decoder = "flow"           # mse | cond-indep | autoregressive | flow
//! latent_dim = 1
//! [train]
//! betas = [0, 1, 2, 5, 10]
//! epochs = 20
//! [sweep]                    # only for `boltzflow sweep`
//! decoders = ["mse", "cond-indep", "autoregressive", "flow"]
//! replicates = 3
//! latent_dims = [1]
//! ```

use std::path::{Path, PathBuf};

use boltzflow_core::{Error, Result};
use serde::{Deserialize, Serialize};

use super::decoder::{DecoderKind, DecoderSpec};
use super::model::{PriorKind, VaeSpec};
use crate::config::{SimulateConfig, SystemConfig};

/// The value of the top-level `model` key that selects this configuration.
pub const MODEL: &str = "vae";

/// A VAE run (or sweep): system, data, model, training protocol and evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeConfig {
    /// Must be `"vae"`.
    pub model: String,
    /// Seed of every random stream of the run (a sweep adds the replicate number).
    #[serde(default = "one")]
    pub seed: u64,
    /// `[system]`: the energy for VAE Monte Carlo and exact samples.
    pub system: SystemConfig,
    /// `[data]`.
    pub data: VaeDataConfig,
    /// `[vae]`.
    #[serde(default)]
    pub vae: VaeModelConfig,
    /// `[train]`.
    #[serde(default)]
    pub train: VaeTrainConfig,
    /// `[evaluate]`.
    #[serde(default)]
    pub evaluate: VaeEvaluateConfig,
    /// `[sweep]` (for `boltzflow sweep`).
    #[serde(default)]
    pub sweep: Option<SweepConfig>,
}

fn one() -> u64 {
    1
}

/// `[data]`: exactly one of `exact`, `file` and `[data.simulate]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeDataConfig {
    /// Independent samples from the system's exact sampler (10⁵ in the paper).
    #[serde(default)]
    pub exact: Option<usize>,
    /// A `.npy` file `[n, dim]`.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Metropolis chains (the `mueller` data of the paper).
    #[serde(default)]
    pub simulate: Option<SimulateConfig>,
    /// For `file`: the frames are this many trajectories, frame-major (all chains of the first
    /// frame, then the second, …, as `boltzflow simulate` writes them); 1 (the default) is one
    /// trajectory. Used by the kinetic scores of the latent CV.
    #[serde(default)]
    pub chains: Option<usize>,
}

/// `[vae]`: the model (defaults: the paper's 2D model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaeModelConfig {
    /// `mse`, `cond-indep`, `autoregressive` or `flow`.
    pub decoder: String,
    /// Latent dimension k.
    pub latent_dim: usize,
    /// Encoder hidden widths (ReLU).
    pub encoder_hidden: Vec<usize>,
    /// Decoder hidden widths (tanh); the MADE of the autoregressive decoders uses the first.
    pub decoder_hidden: Vec<usize>,
    /// `flow` (N(0, I) through 4 spline couplings) or `normal`.
    pub prior: String,
    /// Autoregressive degree per coordinate (empty: one per coordinate in order).
    pub groups: Vec<usize>,
    /// Spline bins of the flow decoder.
    pub flow_bins: usize,
    /// Half-width of the flow decoder's spline interval.
    pub flow_bound: f64,
    /// For molecules (required there): `cartesian`, `heavy-atoms` or `internal` (`bat`); see
    /// [`crate::run::RepresentationKind`].
    pub representation: Option<String>,
}

impl Default for VaeModelConfig {
    fn default() -> Self {
        Self {
            decoder: "flow".into(),
            latent_dim: 1,
            encoder_hidden: vec![50, 50],
            decoder_hidden: vec![50, 50],
            prior: "flow".into(),
            groups: Vec::new(),
            flow_bins: 32,
            flow_bound: 10.0,
            representation: None,
        }
    }
}

/// `[train]`: the β protocol and the optimiser (defaults: the paper's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaeTrainConfig {
    /// β values trained in turn; β ≤ 1 starts from fresh parameters (annealed from 0), a
    /// larger β carries on from the previous stage (annealed from its β).
    pub betas: Vec<f64>,
    /// Epochs per stage.
    pub epochs: usize,
    /// Epochs over which β rises linearly at the start of a stage.
    pub anneal_epochs: usize,
    /// Rows per optimiser step.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// After the largest β, anneal back down through the smaller β ≥ 1 (carried).
    pub reverse: bool,
    /// Also train a plain autoencoder (z = μ(x), no KL) as a baseline stage.
    pub autoencoder: bool,
    /// Rows per parallel chunk (fixed: results do not depend on the thread count).
    pub chunk_rows: usize,
}

impl Default for VaeTrainConfig {
    fn default() -> Self {
        Self {
            betas: vec![0.0, 1.0, 2.0, 5.0, 10.0],
            epochs: 20,
            anneal_epochs: 5,
            batch_size: 200,
            lr: 1e-4,
            reverse: false,
            autoencoder: false,
            chunk_rows: 100,
        }
    }
}

/// `[evaluate]`: sizes of the metric estimates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
// The private unit field is the compatibility key `tc_bins`, not a non-exhaustive marker.
#[allow(clippy::manual_non_exhaustive)]
pub struct VaeEvaluateConfig {
    /// Data points encoded for JD_encode, JD_prior, the total correlation and the losses.
    pub n_encode: usize,
    /// Prior draws per encoding in the JD_prior estimate.
    pub prior_samples: usize,
    /// VAE Monte Carlo walkers (started from data points).
    pub mc_walkers: usize,
    /// VAE Monte Carlo steps per walker.
    pub mc_steps: usize,
    /// Encodings (a strided subsample of the n_encode) whose mixture the total correlation is
    /// estimated on (cost ∝ tc_samples²).
    pub tc_samples: usize,
    /// Read and ignored: run directories whose saved configuration has it (written before the
    /// total correlation stopped using histograms) still open and resume.
    #[serde(default, skip_serializing, deserialize_with = "ignore_value")]
    tc_bins: (),
    /// Lag time (frames of the data) of the kinetic scores of the latent CV (VAMP-2, implied
    /// timescale), for data from trajectories.
    pub lag: usize,
}

/// Consumes a value of any type (a key kept only for compatibility).
fn ignore_value<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<(), D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| ())
}

impl Default for VaeEvaluateConfig {
    fn default() -> Self {
        Self {
            n_encode: 10_000,
            prior_samples: 256,
            mc_walkers: 1000,
            mc_steps: 100,
            tc_samples: 4000,
            tc_bins: (),
            lag: 10,
        }
    }
}

/// `[sweep]`: the grid (decoders × latent dimensions × replicates, each a chain over β).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// Decoder names.
    pub decoders: Vec<String>,
    /// Replicates (seeds `seed + r`).
    #[serde(default = "three")]
    pub replicates: usize,
    /// Latent dimensions.
    #[serde(default = "latent_one")]
    pub latent_dims: Vec<usize>,
}

fn three() -> usize {
    3
}

fn latent_one() -> Vec<usize> {
    vec![1]
}

impl VaeConfig {
    /// Reads and validates a configuration file.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::BadFile`] with the TOML error, [`Error::InvalidParameter`] naming
    /// the field.
    pub fn from_file(path: &Path) -> Result<Self> {
        let cfg: Self = crate::config::read_toml(path)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// The decoder family.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an unknown name.
    pub fn decoder_kind(&self) -> Result<DecoderKind> {
        parse_decoder(&self.vae.decoder, "vae.decoder")
    }

    /// The model's shape for configurations of dimension `dim` with the periodic coordinates
    /// `periodic`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the field that does not fit.
    pub fn vae_spec(&self, dim: usize, periodic: &[usize]) -> Result<VaeSpec> {
        let m = &self.vae;
        if !m.groups.is_empty() && m.groups.len() != dim {
            return Err(Error::invalid(
                "vae.groups",
                format!(
                    "give one degree per coordinate ({dim}), got {}",
                    m.groups.len()
                ),
            ));
        }
        let mut decoder = DecoderSpec::new(self.decoder_kind()?, &m.decoder_hidden);
        decoder.groups = m.groups.clone();
        decoder.flow_bins = m.flow_bins;
        decoder.flow_bound = m.flow_bound;
        Ok(VaeSpec {
            dim,
            latent: m.latent_dim,
            encoder_hidden: m.encoder_hidden.clone(),
            decoder,
            prior: if m.prior == "flow" {
                PriorKind::Flow
            } else {
                PriorKind::Normal
            },
            periodic: periodic.to_vec(),
        })
    }

    /// Checks the values serde cannot.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.model != MODEL {
            return Err(Error::invalid(
                "model",
                format!("expected \"{MODEL}\", got \"{}\"", self.model),
            ));
        }
        let d = &self.data;
        let sources = usize::from(d.exact.is_some())
            + usize::from(d.file.is_some())
            + usize::from(d.simulate.is_some());
        if sources != 1 {
            return Err(Error::invalid(
                "data",
                "give exactly one of exact = N, file = \"X.npy\" and [data.simulate]",
            ));
        }
        if d.chains.is_some() && d.file.is_none() {
            return Err(Error::invalid(
                "data.chains",
                "only for file = \"X.npy\" (simulated data know their chains)",
            ));
        }
        if d.chains == Some(0) {
            return Err(Error::invalid("data.chains", "must be at least 1"));
        }
        if let Some(r) = &self.vae.representation {
            crate::run::RepresentationKind::parse(r)?;
        }
        if d.exact.is_some_and(|n| n < 2) {
            return Err(Error::invalid("data.exact", "need at least 2 samples"));
        }
        let m = &self.vae;
        self.decoder_kind()?;
        if m.latent_dim == 0 || m.latent_dim > 64 {
            return Err(Error::invalid(
                "vae.latent_dim",
                format!("must be in 1..=64, got {}", m.latent_dim),
            ));
        }
        if m.encoder_hidden.contains(&0) || m.decoder_hidden.contains(&0) {
            return Err(Error::invalid(
                "vae.encoder_hidden",
                "hidden widths must be at least 1",
            ));
        }
        if !["flow", "normal"].contains(&m.prior.as_str()) {
            return Err(Error::invalid(
                "vae.prior",
                format!("expected \"flow\" or \"normal\", got \"{}\"", m.prior),
            ));
        }
        let bins_ok = (2..=boltzflow_nn::flows::MAX_BINS).contains(&m.flow_bins);
        if !(bins_ok && m.flow_bound > 0.0 && m.flow_bound.is_finite()) {
            return Err(Error::invalid(
                "vae.flow_bins",
                format!(
                    "need 2..={} bins and a positive flow_bound",
                    boltzflow_nn::flows::MAX_BINS
                ),
            ));
        }
        let t = &self.train;
        if t.betas.is_empty() && !t.autoencoder {
            return Err(Error::invalid(
                "train.betas",
                "give at least one β (or autoencoder = true)",
            ));
        }
        if let Some(b) = t.betas.iter().find(|b| !(b.is_finite() && **b >= 0.0)) {
            return Err(Error::invalid(
                "train.betas",
                format!("β must be finite and ≥ 0, got {b}"),
            ));
        }
        if t.epochs == 0 || t.batch_size == 0 || t.chunk_rows == 0 {
            return Err(Error::invalid(
                "train.epochs",
                "epochs, batch_size and chunk_rows must be at least 1",
            ));
        }
        if t.anneal_epochs > t.epochs {
            return Err(Error::invalid(
                "train.anneal_epochs",
                format!(
                    "must not exceed epochs ({}), got {}",
                    t.epochs, t.anneal_epochs
                ),
            ));
        }
        if !(t.lr > 0.0 && t.lr.is_finite()) {
            return Err(Error::invalid(
                "train.lr",
                format!("must be positive, got {}", t.lr),
            ));
        }
        let e = &self.evaluate;
        if e.lag == 0 {
            return Err(Error::invalid("evaluate.lag", "must be at least 1 frame"));
        }
        if e.n_encode < 2 || e.prior_samples == 0 || e.tc_samples < 2 {
            return Err(Error::invalid(
                "evaluate.n_encode",
                "need n_encode ≥ 2, prior_samples ≥ 1 and tc_samples ≥ 2",
            ));
        }
        if let Some(s) = &self.sweep {
            if s.decoders.is_empty() || s.replicates == 0 || s.latent_dims.is_empty() {
                return Err(Error::invalid(
                    "sweep",
                    "give at least one decoder, one replicate and one latent dimension",
                ));
            }
            for name in &s.decoders {
                parse_decoder(name, "sweep.decoders")?;
            }
            if let Some(k) = s.latent_dims.iter().find(|&&k| k == 0 || k > 64) {
                return Err(Error::invalid(
                    "sweep.latent_dims",
                    format!("must be in 1..=64, got {k}"),
                ));
            }
        }
        Ok(())
    }

    /// Makes file paths absolute so that the run directory's copy works from anywhere.
    ///
    /// # Errors
    /// If a path cannot be resolved.
    pub fn resolve_paths(&mut self) -> Result<()> {
        if let Some(f) = &self.data.file {
            self.data.file = Some(crate::config::absolute(f)?);
        }
        self.system.resolve_paths()
    }
}

fn parse_decoder(name: &str, field: &str) -> Result<DecoderKind> {
    DecoderKind::parse(name).ok_or_else(|| {
        Error::invalid(
            field,
            format!(
                "unknown decoder \"{name}\"; expected one of {}",
                DecoderKind::ALL.map(DecoderKind::name).join(", ")
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::VaeEvaluateConfig;

    #[test]
    fn saved_configurations_with_the_old_histogram_bins_still_read() {
        let e: VaeEvaluateConfig = toml::from_str("n_encode = 100\ntc_bins = 50").unwrap();
        assert_eq!((e.n_encode, e.tc_samples), (100, 4000));
        // Equal to the same configuration without it (so that `--resume` accepts old runs).
        let plain: VaeEvaluateConfig = toml::from_str("n_encode = 100").unwrap();
        assert_eq!(e, plain);
        // Not written back.
        let text = toml::to_string(&e).unwrap();
        assert!(
            !text.contains("tc_bins") && text.contains("tc_samples = 4000"),
            "{text}"
        );
    }
}
