//! Collective variables from variational autoencoders with flow priors (Monroe & Shen, J. Chem.
//! Phys. 2022; DESIGN §1): decoder log-likelihoods ([`likelihood`]), the four decoders
//! ([`decoder`]), the VAE with its flow prior and batch-parallel loss ([`model`]), the β protocol
//! and training epochs ([`train`]), the latent metrics ([`metrics`], assembled in [`evaluate`]),
//! VAE-proposed Monte Carlo with its acceptance f_acc (Monroe & Shen, JCTC 2022; [`mc`]), the
//! latent space as a collective variable of a molecule ([`cv_quality`]: VAMP-2 against TICA,
//! basin separation), and the
//! TOML configuration of runs and sweeps ([`config`]).

pub mod config;
pub mod cv_quality;
pub mod decoder;
pub mod evaluate;
pub mod likelihood;
pub mod mc;
pub mod metrics;
pub mod model;
pub mod train;
