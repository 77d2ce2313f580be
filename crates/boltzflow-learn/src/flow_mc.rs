//! Flow-proposed Monte Carlo (Noé et al., Science 2019): Markov chains that use a trained
//! generator to move, and leave the Boltzmann distribution exactly invariant however biased the
//! generator is — independence Metropolis with the generator as proposal, and Metropolis in
//! latent space on the Boltzmann distribution pulled back through the flow.

use boltzflow_core::{ChainRng, Energy, Error, Result};
use ndarray::Array2;
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};

use crate::generator::BoltzmannGenerator;

/// Independence Metropolis with the generator as proposal (Noé et al. 2019, flow-proposed MC):
/// the chain moves from sample i to proposal j with probability min(1, w_j / w_i), which leaves
/// the Boltzmann distribution invariant however biased q is. Proposals are the samples in order
/// (they are independent draws from q). Returns the visited sample index at every step and the
/// acceptance rate.
///
/// # Errors
/// [`Error::NonFinite`] for a NaN or +∞ log-weight.
pub fn independence_metropolis(log_w: &[f64], rng: &mut ChainRng) -> Result<(Vec<usize>, f64)> {
    if let Some(i) = log_w.iter().position(|v| v.is_nan() || *v == f64::INFINITY) {
        return Err(Error::NonFinite {
            what: "log-weight".into(),
            location: format!("sample {i}"),
            value: log_w[i],
        });
    }
    let mut cur = 0;
    let mut accepted = 0usize;
    let mut chain = Vec::with_capacity(log_w.len());
    chain.push(0);
    for j in 1..log_w.len() {
        let log_a = log_w[j] - log_w[cur];
        if log_a >= 0.0 || rng.random::<f64>().ln() < log_a {
            cur = j;
            accepted += 1;
        }
        chain.push(cur);
    }
    let rate = accepted as f64 / (log_w.len().max(2) - 1) as f64;
    Ok((chain, rate))
}

/// Metropolis in latent space: `chains` random walks in z with Gaussian steps of width `step`
/// and target π(z) ∝ exp(−u(F(z)) + log|det J_zx(z)|), whose push-forward is exp(−u(x)).
/// Chains start from prior samples; after `burn_in` steps a frame is kept every `stride` steps.
/// Returns the kept configurations `[frames × chains, dim]` (frame-major) and the acceptance.
///
/// # Errors
/// [`Error::InvalidParameter`] for a bad step or protocol; [`Error::NonFinite`] for a NaN
/// energy (naming the step).
#[allow(clippy::too_many_arguments)]
pub fn latent_metropolis(
    bg: &mut BoltzmannGenerator,
    energy: &dyn Energy,
    chains: usize,
    steps: usize,
    burn_in: usize,
    stride: usize,
    step: f64,
    rng: &mut ChainRng,
) -> Result<(Array2<f64>, f64)> {
    if !(step > 0.0 && step.is_finite()) || stride == 0 || burn_in >= steps {
        return Err(Error::invalid(
            "latent_metropolis",
            "need step > 0, stride ≥ 1 and burn_in < steps",
        ));
    }
    let d = bg.dim();
    let mut z = vec![0.0f32; chains * d];
    bg.prior().sample_into(rng, &mut z);
    let log_target =
        |bg: &mut BoltzmannGenerator, z: &[f32], s: usize| -> Result<(Array2<f64>, Vec<f64>)> {
            let (x, ld) = bg.push_forward(z);
            let u = energy.energy(x.view())?;
            if let Some(i) = u.iter().position(|v| v.is_nan()) {
                return Err(Error::NonFinite {
                    what: "energy".into(),
                    location: format!("latent Metropolis step {s}, chain {i}"),
                    value: f64::NAN,
                });
            }
            Ok((x, u.iter().zip(&ld).map(|(u, l)| -u + l).collect()))
        };
    let (mut x, mut lp) = log_target(bg, &z, 0)?;
    let frames = (steps - burn_in) / stride;
    let mut out = Array2::zeros((frames * chains, d));
    let (mut accepted, mut proposed) = (0usize, 0usize);
    let mut z_new = z.clone();
    for s in 1..=steps {
        for (zn, &zo) in z_new.iter_mut().zip(&z) {
            let e: f64 = StandardNormal.sample(rng);
            *zn = zo + (step * e) as f32;
        }
        let (x_new, lp_new) = log_target(bg, &z_new, s)?;
        for c in 0..chains {
            let log_a = lp_new[c] - lp[c];
            if log_a >= 0.0 || rng.random::<f64>().ln() < log_a {
                z[c * d..(c + 1) * d].copy_from_slice(&z_new[c * d..(c + 1) * d]);
                x.row_mut(c).assign(&x_new.row(c));
                lp[c] = lp_new[c];
                if s > burn_in {
                    accepted += 1;
                }
            }
        }
        if s > burn_in {
            proposed += chains;
            if (s - burn_in).is_multiple_of(stride) {
                let f = (s - burn_in) / stride - 1;
                out.slice_mut(ndarray::s![f * chains..(f + 1) * chains, ..])
                    .assign(&x);
            }
        }
    }
    Ok((out, accepted as f64 / proposed.max(1) as f64))
}
