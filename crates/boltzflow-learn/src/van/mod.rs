//! Variational autoregressive networks for spin systems (Wu, Wang & Zhang, PRL 122, 080602,
//! 2019): an exactly normalised q(s) = Π_i q(s_i | s_<i) (MADE or masked convolutions) trained
//! to minimise the variational free energy F_q = E_q[E(s) + (1/β) ln q(s)] ≥ F.

pub mod config;
pub mod model;
pub mod train;

pub use config::{NetworkKind, NetworkSpec, VanConfig};
pub use model::{SpinNetwork, Van};
pub use train::{FreeEnergyEstimate, VanBuffers, VanStep, estimate, step_stream, train_step};
