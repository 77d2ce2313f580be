//! The models of boltzflow on its own compute engine (`boltzflow-nn`): Boltzmann generators
//! trained by example, by energy and with a reaction-coordinate loss; reweighting, effective
//! sample sizes, free energies and flow-proposed Monte Carlo; variational autoregressive
//! networks for spin systems ([`van`]).

pub mod ais;
pub mod config;
pub mod flow_mc;
pub mod flow_spec;
pub mod generator;
pub mod particle_split;
pub mod profile_bias;
pub mod rc;
pub mod reweight;
pub mod run;
pub mod torus_transport;
pub mod trainer;
pub mod vae;
pub mod van;

pub use boltzflow_core::Coordinate;
pub use flow_spec::{FlowCoordinates, FlowKind, FlowSpec, Split, TorsionLayer};
pub use generator::{BoltzmannGenerator, LinLogCut, Objective, StepStats};
pub use rc::RcEntropy;
pub use trainer::Reduced;
