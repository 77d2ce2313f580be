//! Normalizing flows: invertible layers with log-determinants, and their composition.
//!
//! Conventions (DESIGN §4): [`Direction::Forward`] maps latent `z` to configuration `x`;
//! [`Direction::Inverse`] maps `x` to `z`. Every layer can run and be differentiated in both
//! directions, since maximum likelihood trains through x → z and reverse KL through z → x. A
//! log-determinant is log|det ∂output/∂input| of the direction that ran, per row, so the two
//! directions' log-dets of the same point sum to zero.

mod autoregressive;
mod coupling;
mod elementwise;
mod local;
mod sequential;
mod spline;
mod whiten;

pub use autoregressive::AutoregressiveSpline;
pub use coupling::{Coupling, Transformer};
pub use elementwise::{ActNorm, Permutation};
pub use local::{LocalCache, LocalConditioner};
pub use sequential::{FlowWorkspace, Inverted, SequentialFlow};
pub use spline::{
    MAX_BINS, SharedSpline, SplineParams, SplineRecords, rq_spline, rq_spline_backward,
    spline_batch, spline_batch_len,
};
pub use whiten::Whiten;

use boltzflow_core::ChainRng;

use crate::Real;
use crate::mlp::MlpCache;

/// Which way a flow runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Latent → configuration (sampling, reverse KL).
    Forward,
    /// Configuration → latent (density evaluation, maximum likelihood).
    Inverse,
}

impl Direction {
    /// The other direction.
    pub fn flip(self) -> Self {
        match self {
            Self::Forward => Self::Inverse,
            Self::Inverse => Self::Forward,
        }
    }
}

/// What one layer keeps between its forward and backward passes. Owned by the workspace and
/// reused across steps, so buffers are allocated once per batch size.
#[derive(Debug, Clone, Default)]
pub struct LayerCache<T> {
    /// The conditioner input `[rows, n_cond]` (coupling layers).
    pub cond: Vec<T>,
    /// The conditioner network's buffers.
    pub mlp: MlpCache<T>,
    /// Layer-specific per-element values (log-scales, spline derivatives, ...).
    pub aux: Vec<T>,
    /// Scratch for gradients of the conditioner output.
    pub grad_h: Vec<T>,
    /// Scratch for gradients of the conditioner input.
    pub grad_cond: Vec<T>,
    /// f64 per-element values the backward pass reuses (spline knots: see
    /// [`spline_batch`]).
    pub aux64: Vec<f64>,
    /// The buffers of a coupling's [`LocalConditioner`].
    pub local: LocalCache<T>,
}

/// One invertible layer acting on rows of width [`FlowLayer::dim`].
///
/// Parameters live in the model's flat vector (see [`crate::params`]); a layer only stores the
/// ranges it registered, so it is immutable during training and shared between threads.
pub trait FlowLayer<T: Real>: Send + Sync + std::fmt::Debug {
    /// Row width.
    fn dim(&self) -> usize;

    /// Initialises this layer's parameters so that a fresh layer is the identity map (or close
    /// to it, for layers that cannot be exactly the identity with random weights).
    fn init(&self, params: &mut [T], rng: &mut ChainRng);

    /// Maps `input` `[rows, dim]` to `output` (same shape) in direction `dir` and adds the
    /// log-determinant of each row to `log_det` `[rows]`.
    #[allow(clippy::too_many_arguments)]
    fn transform(
        &self,
        params: &[T],
        input: &[T],
        output: &mut [T],
        log_det: &mut [T],
        rows: usize,
        dir: Direction,
        cache: &mut LayerCache<T>,
    );

    /// Backward pass of the last [`FlowLayer::transform`] on the same `input`/`output`:
    /// `grad` holds dL/d(output) on entry and dL/d(input) on return; `grad_log_det` is
    /// dL/d(log-det) per row; parameter gradients are added to `grads`.
    #[allow(clippy::too_many_arguments)]
    fn backward(
        &self,
        params: &[T],
        grads: &mut [T],
        input: &[T],
        output: &[T],
        grad: &mut [T],
        grad_log_det: &[T],
        rows: usize,
        dir: Direction,
        cache: &mut LayerCache<T>,
    );

    /// Data-dependent initialisation (ActNorm): `x` `[rows, dim]` is a batch as it arrives at
    /// this layer's configuration side. The default does nothing.
    fn data_init(&self, _params: &mut [T], _x: &[T], _rows: usize) {}

    /// Zeroes the entries of `values` (parameters or gradients, the model's flat vector) that
    /// this layer holds at zero by construction (a MADE's masked weights). The default holds
    /// none.
    fn mask_params(&self, _values: &mut [T]) {}
}
