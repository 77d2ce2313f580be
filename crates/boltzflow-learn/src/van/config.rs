//! The TOML configuration of a variational autoregressive network run (`model = "van"`).
//!
//! ```toml
//! model = "van"
//! seed = 1
//! [system]
//! spec = "sk:n=20,seed=1"
//! [network]
//! type = "made"        # or "pixelcnn" (lattices)
//! depth = 2
//! width = 40
//! z2 = true
//! [train]
//! betas = [0.1, 0.5, 1.0]
//! steps = 2000
//! ```

use std::path::Path;

use boltzflow_core::{Error, Result};
use boltzflow_nn::Activation;
use serde::{Deserialize, Serialize};

/// The value of the top-level `model` key that selects this configuration.
pub const MODEL: &str = "van";

/// A VAN run: system, network, training per β and evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VanConfig {
    /// Must be `"van"`.
    pub model: String,
    /// Seed of every random stream of the run.
    #[serde(default = "one_u64")]
    pub seed: u64,
    /// `[system]`.
    pub system: SpinSystemConfig,
    /// `[network]`.
    pub network: NetworkSpec,
    /// `[train]`.
    pub train: VanTrainConfig,
    /// `[evaluate]`.
    #[serde(default)]
    pub evaluate: VanEvaluateConfig,
}

fn one_u64() -> u64 {
    1
}

/// `[system]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpinSystemConfig {
    /// `ising:L=16,j=1`, `sk:n=20,seed=S` or `couplings:PATH.npy`.
    pub spec: String,
}

/// The autoregressive network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkKind {
    /// Masked dense network over all spins (any system).
    Made,
    /// Masked convolutions over the lattice (lattice systems only).
    Pixelcnn,
}

/// `[network]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSpec {
    /// `made` or `pixelcnn`.
    #[serde(rename = "type")]
    pub kind: NetworkKind,
    /// Masked layers (MADE: 1 is a single masked linear map; PixelCNN: convolutions).
    pub depth: usize,
    /// MADE: hidden units per layer. PixelCNN: channels per layer.
    pub width: usize,
    /// PixelCNN: half-size of the kernels (kernel side 2k + 1).
    pub half_kernel: usize,
    /// PixelCNN: add a dense masked linear map from all earlier spins to the logits (lets every
    /// site see its periodic neighbours across the boundary; not in the paper).
    pub skip: bool,
    /// Hidden activation.
    pub activation: Activation,
    /// Symmetrise q under the global flip, q(s) = ½(q̃(s) + q̃(−s)) (for systems without a field).
    pub z2: bool,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        Self {
            kind: NetworkKind::Made,
            depth: 2,
            width: 64,
            half_kernel: 3,
            skip: false,
            activation: Activation::Tanh,
            z2: true,
        }
    }
}

/// `[train]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VanTrainConfig {
    /// The inverse temperatures; one network is trained for each.
    pub betas: Vec<f64>,
    /// Optimizer steps per β.
    pub steps: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// β annealing: β_t = β(1 − aᵗ) at step t (0 to train at β from the start).
    pub anneal: f64,
    /// Clip the gradient's Euclidean norm.
    pub clip_grad_norm: Option<f64>,
    /// Start each β from the parameters trained at the previous one.
    pub carry: bool,
    /// A checkpoint every this many steps (and after each β).
    pub checkpoint_every: usize,
    /// A row of metrics.csv every this many steps.
    pub log_every: usize,
    /// Rows per parallel chunk.
    pub chunk_rows: usize,
}

impl Default for VanTrainConfig {
    fn default() -> Self {
        Self {
            betas: vec![1.0],
            steps: 1000,
            batch_size: 1000,
            lr: 1e-3,
            anneal: 0.998,
            clip_grad_norm: None,
            carry: false,
            checkpoint_every: 200,
            log_every: 10,
            chunk_rows: 125,
        }
    }
}

/// `[evaluate]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VanEvaluateConfig {
    /// Samples per β for F_q and its standard error.
    pub n_samples: usize,
}

impl Default for VanEvaluateConfig {
    fn default() -> Self {
        Self { n_samples: 100_000 }
    }
}

impl VanConfig {
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
        let n = &self.network;
        if n.depth == 0 {
            return Err(Error::invalid("network.depth", "must be at least 1"));
        }
        if (n.depth > 1 || n.kind == NetworkKind::Pixelcnn) && n.width == 0 {
            return Err(Error::invalid("network.width", "must be at least 1"));
        }
        if n.kind == NetworkKind::Made && n.skip {
            return Err(Error::invalid(
                "network.skip",
                "only a pixelcnn has a dense skip (a MADE sees every earlier spin already)",
            ));
        }
        if n.kind == NetworkKind::Pixelcnn && n.half_kernel == 0 {
            return Err(Error::invalid("network.half_kernel", "must be at least 1"));
        }
        let t = &self.train;
        if t.betas.is_empty() {
            return Err(Error::invalid(
                "train.betas",
                "give at least one inverse temperature",
            ));
        }
        if let Some(b) = t.betas.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
            return Err(Error::invalid(
                "train.betas",
                format!("β must be positive, got {b}"),
            ));
        }
        if t.steps == 0 || t.batch_size < 2 {
            return Err(Error::invalid(
                "train.steps",
                "need steps ≥ 1 and batch_size ≥ 2 (the baseline is the batch mean)",
            ));
        }
        if !(t.lr > 0.0 && t.lr.is_finite()) {
            return Err(Error::invalid(
                "train.lr",
                format!("must be positive, got {}", t.lr),
            ));
        }
        if !(0.0..1.0).contains(&t.anneal) {
            return Err(Error::invalid(
                "train.anneal",
                format!("must be in [0, 1), got {}", t.anneal),
            ));
        }
        if let Some(c) = t.clip_grad_norm
            && (c.is_nan() || c <= 0.0)
        {
            return Err(Error::invalid(
                "train.clip_grad_norm",
                format!("must be positive, got {c}"),
            ));
        }
        if t.checkpoint_every == 0 || t.log_every == 0 || t.chunk_rows == 0 {
            return Err(Error::invalid(
                "train.checkpoint_every",
                "checkpoint_every, log_every and chunk_rows must be at least 1",
            ));
        }
        if self.evaluate.n_samples < 2 {
            return Err(Error::invalid("evaluate.n_samples", "must be at least 2"));
        }
        Ok(())
    }

    /// Makes a `couplings:` path absolute so that the run directory's copy works from anywhere.
    ///
    /// # Errors
    /// If the path cannot be resolved.
    pub fn resolve_paths(&mut self) -> Result<()> {
        if let Some(rest) = self.system.spec.strip_prefix("couplings:") {
            let p = crate::config::absolute(Path::new(rest.trim()))?;
            self.system.spec = format!("couplings:{}", p.display());
        }
        Ok(())
    }
}
