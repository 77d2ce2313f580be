//! boltzflow's compute engine (DECISIONS D1): layers with explicit forward and backward passes
//! over preallocated row-major `[rows, features]` buffers, GEMM from the `gemm` crate, Adam,
//! safetensors checkpoints, generic gradient checks, latent distributions and normalizing flows.
//!
//! # How a model is laid out
//! A model's parameters are one flat vector; [`ParamLayout`] names its slices (the checkpoint
//! keys). Layers hold only their ranges, so a model is immutable while it runs and any number of
//! threads can run it on different rows, each adding to its own gradient vector
//! ([`parallel`]). Every layer's backward pass is hand-derived and tested against f64 finite
//! differences ([`gradcheck`]).

pub mod adam;
pub mod checkpoint;
pub mod distributions;
pub mod flows;
pub mod gemm;
pub mod gradcheck;
pub mod linear;
pub mod made;
pub mod masked_conv;
pub mod mlp;
pub mod parallel;
pub mod params;
pub mod real;
pub mod training_checkpoint;

pub use adam::{Adam, AdamConfig, clip_grad_norm};
pub use checkpoint::{Tensor, TensorFile};
pub use distributions::LatentPrior;
pub use flows::{Direction, FlowLayer, FlowWorkspace, SequentialFlow};
pub use linear::{Activation, Linear};
pub use made::{Made, MadeSampler};
pub use mlp::{Mlp, MlpCache};
pub use params::{ParamEntry, ParamLayout};
pub use real::Real;
pub use training_checkpoint::{CheckpointFormat, InTraining, TrainingCheckpoint};
