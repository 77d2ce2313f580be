//! Core of boltzflow: typed errors, units and [`ThermodynamicState`], seeded random streams,
//! vectorised elementary functions, and the traits the other crates implement
//! ([`Energy`], [`Move`], [`Reporter`]).
//!
//! Conventions (DESIGN §5): a batch of configurations is a row-major `[n, dim]` array, energies are
//! `[n]`, forces are −∇E with the shape of the configurations, all in f64.

pub mod coordinate;
pub mod energy;
pub mod error;
pub mod geometry;
pub mod math;
pub mod rng;
pub mod sampler;
pub mod units;

pub use coordinate::Coordinate;
pub use energy::{Energy, check_finite_rows};
pub use error::{Error, Result, ResultExt};
pub use rng::{ChainRng, RandomStreams};
pub use sampler::{Move, MoveStats, Reporter, SamplerState};
pub use units::{KB_KJ_PER_MOL_K, ThermodynamicState};
