//! Collective variables from variational autoencoders with flow priors (Monroe & Shen, J. Chem.
//! Phys. 2022; DESIGN §1): the pieces built so far — decoder log-likelihoods
//! ([`likelihood`]) and the latent metrics ([`metrics`]). Encoders, the flow prior, the four
//! decoders, training, VAE Monte Carlo and sweeps are still to come (issue 5).

pub mod likelihood;
pub mod metrics;
