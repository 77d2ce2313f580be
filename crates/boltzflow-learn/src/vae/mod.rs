//! Collective variables from variational autoencoders with flow priors (Monroe & Shen, J. Chem.
//! Phys. 2022; DESIGN §1): the pieces built so far — decoder log-likelihoods
//! ([`likelihood`]), the latent metrics ([`metrics`]) and a Gaussian VAE with the "MSE",
//! conditionally independent and autoregressive decoders and a standard-normal or spline-flow
//! prior ([`model`]), and
//! VAE-proposed Monte Carlo with its acceptance f_acc ([`mc`]). Encoders, the flow prior, the four
//! decoders, training, VAE Monte Carlo and sweeps are still to come (issue 5).

pub mod decoder;
pub mod likelihood;
pub mod mc;
pub mod metrics;
pub mod model;
