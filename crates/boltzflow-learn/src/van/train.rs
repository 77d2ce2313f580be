//! Training a VAN by the variational free energy (Wu, Wang & Zhang 2019):
//! β F_q = E_q[β E(s) + ln q(s)] ≥ β F, minimised with the score-function gradient
//! ∇ β F_q = E_q[(f − b) ∇ ln q(s)], f = β E + ln q, b the batch mean of f (the baseline keeps
//! the estimator unbiased and cuts its variance), with β annealed as β_t = β(1 − aᵗ).

use boltzflow_core::{ChainRng, Error, RandomStreams, Result};
use boltzflow_nn::{Adam, AdamConfig, clip_grad_norm};
use boltzflow_systems::SpinSystem;

use super::config::VanTrainConfig;
use super::model::Van;

/// Estimates of one batch of samples of q at inverse temperature `beta`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FreeEnergyEstimate {
    /// β at which F_q is evaluated.
    pub beta: f64,
    /// Number of samples.
    pub samples: usize,
    /// F_q / n = E_q[E + ln q / β] / n (an upper bound on F / n).
    pub f_per_spin: f64,
    /// Standard error of `f_per_spin`.
    pub f_stderr: f64,
    /// E_q[E] / n.
    pub energy_per_spin: f64,
    /// Standard error of `energy_per_spin`.
    pub energy_stderr: f64,
    /// −E_q[ln q] / n (the entropy of q per spin, in units of k_B).
    pub entropy_per_spin: f64,
    /// Standard error of `entropy_per_spin`.
    pub entropy_stderr: f64,
    /// The importance-sampling estimate −ln E_q[e^{−βE}/q] / (βn) (consistent for F, not a bound).
    pub f_reweighted_per_spin: f64,
    /// Kish effective sample size of the weights e^{−βE}/q, as a fraction.
    pub ess_fraction: f64,
}

impl FreeEnergyEstimate {
    /// From energies and log q of samples of q.
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming `location` if an energy or log q is not finite.
    pub fn new(
        beta: f64,
        n: usize,
        energies: &[f64],
        log_q: &[f64],
        location: &str,
    ) -> Result<Self> {
        let m = energies.len();
        let nf = n as f64;
        let mut sum_f = 0.0;
        let mut sum_f2 = 0.0;
        let mut sum_e = 0.0;
        let mut sum_e2 = 0.0;
        let mut sum_lq = 0.0;
        let mut sum_lq2 = 0.0;
        for (k, (&e, &lq)) in energies.iter().zip(log_q).enumerate() {
            for (what, v) in [("energy of a sample", e), ("log q of a sample", lq)] {
                if !v.is_finite() {
                    return Err(Error::NonFinite {
                        what: what.into(),
                        location: format!("{location}, sample {k}"),
                        value: v,
                    });
                }
            }
            let f = e + lq / beta;
            sum_f += f;
            sum_f2 += f * f;
            sum_e += e;
            sum_e2 += e * e;
            sum_lq += lq;
            sum_lq2 += lq * lq;
        }
        let mf = m as f64;
        // Standard error of a mean from Σx and Σx² (the values are moderate: energies and
        // log-probabilities of n spins).
        let stderr = |s: f64, s2: f64| (((s2 - s * s / mf) / (mf - 1.0)).max(0.0) / mf).sqrt();
        let mean_f = sum_f / mf;
        // log w = −βE − ln q, combined in log space (two passes, no buffer).
        let log_w = || energies.iter().zip(log_q).map(|(&e, &lq)| -beta * e - lq);
        let top = log_w().fold(f64::NEG_INFINITY, f64::max);
        let (s1, s2) = log_w().fold((0.0, 0.0), |(a, b), v| {
            let w = (v - top).exp();
            (a + w, b + w * w)
        });
        Ok(Self {
            beta,
            samples: m,
            f_per_spin: mean_f / nf,
            f_stderr: stderr(sum_f, sum_f2) / nf,
            energy_per_spin: sum_e / mf / nf,
            energy_stderr: stderr(sum_e, sum_e2) / nf,
            entropy_per_spin: -sum_lq / mf / nf,
            entropy_stderr: stderr(sum_lq, sum_lq2) / nf,
            f_reweighted_per_spin: -(top + (s1 / mf).ln()) / (beta * nf),
            ess_fraction: s1 * s1 / s2 / mf,
        })
    }
}

/// What one optimizer step saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VanStep {
    /// Step within this β (0-based).
    pub step: usize,
    /// The annealed β_t the gradient used.
    pub beta_t: f64,
    /// F_q etc. of the batch, at the target β.
    pub estimate: FreeEnergyEstimate,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
}

/// Reused buffers of a training loop.
#[derive(Debug, Default)]
pub struct VanBuffers {
    s: Vec<f32>,
    log_q: Vec<f64>,
    energies: Vec<f64>,
    coeffs: Vec<f64>,
    grads: Vec<f32>,
}

/// The random stream of step `step` of β number `k`: a resumed run draws the same numbers.
pub fn step_stream(seed: u64, k: usize, step: usize) -> ChainRng {
    RandomStreams::new(seed).stream(&format!("van.beta{k}.step{step}"))
}

/// One optimizer step at the target `beta` (annealed by `cfg.anneal`), drawing from `rng`.
///
/// # Errors
/// [`Error::NonFinite`] naming the step if an energy, log q or the gradient is not finite
/// (the parameters are then left as they were).
#[allow(clippy::too_many_arguments)]
pub fn train_step(
    van: &mut Van,
    adam: &mut Adam<f32>,
    system: &SpinSystem,
    cfg: &VanTrainConfig,
    beta: f64,
    step: usize,
    rng: &mut ChainRng,
    buf: &mut VanBuffers,
) -> Result<VanStep> {
    let beta_t = beta * (1.0 - cfg.anneal.powi(step as i32 + 1));
    let b = cfg.batch_size;
    van.sample(b, rng, &mut buf.s, &mut buf.log_q);
    buf.energies.resize(b, 0.0);
    system.energies(&buf.s, &mut buf.energies)?;
    let location = format!("training step {step} at β = {beta}");
    let estimate = FreeEnergyEstimate::new(beta, van.n(), &buf.energies, &buf.log_q, &location)?;
    // f = β_t E + ln q; coefficients (f − f̄)/B.
    buf.coeffs.clear();
    buf.coeffs.extend(
        buf.energies
            .iter()
            .zip(&buf.log_q)
            .map(|(&e, &lq)| beta_t * e + lq),
    );
    let mean = buf.coeffs.iter().sum::<f64>() / b as f64;
    buf.coeffs
        .iter_mut()
        .for_each(|f| *f = (*f - mean) / b as f64);
    van.score_gradient(&buf.coeffs, &mut buf.grads);
    let grad_norm = match cfg.clip_grad_norm {
        Some(c) => clip_grad_norm(&mut buf.grads, c),
        None => boltzflow_nn::params::squared_norm(&buf.grads).sqrt(),
    };
    if !grad_norm.is_finite() {
        return Err(Error::NonFinite {
            what: "gradient norm".into(),
            location,
            value: grad_norm,
        });
    }
    let adam_cfg = AdamConfig {
        lr: cfg.lr,
        ..AdamConfig::default()
    };
    adam.step(&adam_cfg, cfg.lr, &mut van.params, &buf.grads);
    Ok(VanStep {
        step,
        beta_t,
        estimate,
        grad_norm,
    })
}

/// Samples `n_samples` configurations of q in batches of `batch` and estimates F_q at `beta`.
///
/// # Errors
/// [`Error::NonFinite`] if an energy or log q is not finite.
pub fn estimate(
    van: &mut Van,
    system: &SpinSystem,
    beta: f64,
    n_samples: usize,
    batch: usize,
    rng: &mut ChainRng,
) -> Result<FreeEnergyEstimate> {
    let mut energies = Vec::with_capacity(n_samples);
    let mut log_qs = Vec::with_capacity(n_samples);
    let (mut s, mut lq) = (Vec::new(), Vec::new());
    let mut e = Vec::new();
    while energies.len() < n_samples {
        let rows = batch.min(n_samples - energies.len());
        van.sample(rows, rng, &mut s, &mut lq);
        e.resize(rows, 0.0);
        system.energies(&s, &mut e)?;
        energies.extend_from_slice(&e);
        log_qs.extend_from_slice(&lq);
    }
    FreeEnergyEstimate::new(
        beta,
        van.n(),
        &energies,
        &log_qs,
        &format!("evaluation at β = {beta}"),
    )
}
