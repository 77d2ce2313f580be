//! The metrics of a trained VAE (Monroe & Shen 2022, DESIGN §1): the loss terms, JD_encode
//! (total and per latent dimension), JD_prior, the total correlation, the number of active
//! dimensions, and f_acc, the acceptance of VAE-proposed Metropolis moves under the system's
//! energy, run as a real Markov chain over many walkers.

use boltzflow_core::{Energy, RandomStreams, Result};
use ndarray::Array2;
use rand::seq::SliceRandom;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::config::VaeEvaluateConfig;
use super::mc::vae_metropolis;
use super::metrics::{active_dims, jd_encode, jd_prior, total_correlation};
use super::model::Vae;

/// The metrics of one trained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VaeMetrics {
    /// −ln p(x|z), nats per configuration (one z per point).
    pub loss_recon: f64,
    /// ln q(z|x) − ln P(z), nats per configuration.
    pub loss_kl: f64,
    /// Σ over latent dimensions of JD_encode.
    pub jd_encode: f64,
    /// JD_encode per latent dimension.
    pub jd_encode_per_dim: Vec<f64>,
    /// Mean Jeffreys divergence between an encoding and the prior.
    pub jd_prior: f64,
    /// Total correlation of the aggregate posterior (0 for one latent dimension).
    pub total_correlation: f64,
    /// Latent dimensions with log₁₀ JD_encode > −1.
    pub active_dims: usize,
    /// Acceptance of VAE-proposed Metropolis moves (`None` without an energy).
    pub f_acc: Option<f64>,
}

/// `n` rows of `data` `[rows, d]` picked at random (all of them, shuffled, if fewer).
pub fn subset(data: &[f32], d: usize, n: usize, streams: &RandomStreams) -> Vec<f32> {
    let rows = data.len() / d;
    let mut idx: Vec<usize> = (0..rows).collect();
    idx.shuffle(&mut streams.stream("vae.evaluate.subset"));
    idx.truncate(n.min(rows));
    idx.iter()
        .flat_map(|&i| data[i * d..(i + 1) * d].iter().copied())
        .collect()
}

/// The metrics of `params` on the evaluation points `data` `[n, d]` at `beta`. VAE Monte Carlo
/// (with an `energy` in kT) starts `cfg.mc_walkers` walkers at the first evaluation points and
/// runs `cfg.mc_steps` moves each. Random numbers come from named streams of `seed`.
///
/// # Errors
/// Energy errors, and [`boltzflow_core::Error::NonFinite`] from VAE Monte Carlo.
pub fn evaluate(
    vae: &Vae,
    params: &[f32],
    data: &[f32],
    beta: f64,
    energy: Option<&dyn Energy>,
    cfg: &VaeEvaluateConfig,
    seed: u64,
) -> Result<VaeMetrics> {
    let (d, k) = (vae.dim(), vae.latent_dim());
    let n = data.len() / d;
    let streams = RandomStreams::new(seed);
    let mut rng = streams.stream("vae.evaluate");
    // Loss terms with one reparameterised draw per point.
    let eps: Vec<f32> = (0..n * k)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let mut scratch = vec![0.0f32; params.len()];
    let loss = vae.batch_loss_and_gradient(
        params,
        &mut scratch,
        data,
        &eps,
        n,
        beta,
        1000,
        &mut Vec::new(),
    );
    let (mu, var) = vae.encode(params, data, n);
    let per_dim = jd_encode(&mu, &var, k);
    // One draw of the aggregate posterior per point, and draws of the prior.
    let z_q: Vec<f64> = mu
        .iter()
        .zip(&var)
        .zip(&eps)
        .map(|((&m, &v), &e)| m + v.sqrt() * f64::from(e))
        .collect();
    let z_q32: Vec<f32> = z_q.iter().map(|&v| v as f32).collect();
    let log_p_zq = vae.log_prior_density(params, &z_q32, n);
    let m = cfg.prior_samples;
    let u: Vec<f32> = (0..m * k)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let z_p32 = vae.prior_sample(params, &u, m);
    let log_p_zp = vae.log_prior_density(params, &z_p32, m);
    let z_p: Vec<f64> = z_p32.iter().map(|&v| f64::from(v)).collect();
    let jdp = jd_prior(&mu, &var, k, &z_q, &log_p_zq, &z_p, &log_p_zp);
    let tc = if k == 1 {
        0.0
    } else {
        // A strided subsample: the evaluation points may come in time order.
        let m = cfg.tc_samples.min(n);
        let stride = n / m;
        let pick = |v: &[f64]| -> Vec<f64> {
            (0..m)
                .flat_map(|i| v[i * stride * k..(i * stride + 1) * k].iter().copied())
                .collect()
        };
        total_correlation(&pick(&z_q), &pick(&mu), &pick(&var), k)
    };
    let f_acc = match energy {
        Some(e) if cfg.mc_walkers > 0 && cfg.mc_steps > 0 => {
            let w = cfg.mc_walkers.min(n);
            let mut x = Array2::from_shape_fn((w, d), |(i, j)| f64::from(data[i * d + j]));
            let mut mc_rng = streams.stream("vae.evaluate.mc");
            Some(vae_metropolis(
                vae,
                params,
                e,
                &mut x,
                cfg.mc_steps,
                &mut mc_rng,
                |_, _| {},
            )?)
        }
        _ => None,
    };
    Ok(VaeMetrics {
        loss_recon: loss.recon,
        loss_kl: loss.kl,
        jd_encode: per_dim.iter().sum(),
        active_dims: active_dims(&per_dim),
        jd_encode_per_dim: per_dim,
        jd_prior: jdp,
        total_correlation: tc,
        f_acc,
    })
}
