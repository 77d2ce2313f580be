//! Kinetic models from trajectories (the "array world", f64): streaming time-lagged covariances,
//! TICA and VAMP, k-means and regular-space clustering, transition counting and Markov state
//! models with implied timescales, Chapman–Kolmogorov tests, mean first passage times and PCCA+.
//!
//! The API follows the estimator → model split: an estimator holds validated hyperparameters and
//! `fit` returns an immutable model that owns the results (`Tica::new(lag)?.fit(&trajs)?` →
//! [`TicaModel`]). Lag times are in frames everywhere.

pub mod cluster;
pub mod counting;
pub mod covariance;
mod linalg;
pub mod msm;
mod pcca;
pub mod tica;
pub mod vamp;

pub use cluster::{ClusterModel, KMeans, RegularSpace};
pub use counting::{connected_sets, count_matrix};
pub use covariance::{CovarianceAccumulator, Covariances};
pub use msm::{
    CkTest, MaximumLikelihoodMsm, MetastableSets, Msm, Pcca, ck_test, implied_timescales_over_lags,
};
pub use tica::{Dimension, Scaling, Tica, TicaModel};
pub use vamp::{Vamp, VampModel, VampScore};
