//! VAE-proposed Monte Carlo (Monroe & Shen, JCTC 2022; DESIGN §1). The chain runs on the pair
//! (x, z) with target π(x) q(z|x): first z₁ ~ q(z|x₁) is redrawn (a Gibbs step), then the move
//! proposes z₂ ~ P(z), x₂ ~ p(x|z₂) and accepts with
//! log a = −(u₂ − u₁) + ln q(z₂|x₂) − ln q(z₁|x₁) + ln P(z₁) − ln P(z₂) + ln p(x₁|z₁) − ln p(x₂|z₂),
//! so the x-chain samples exp(−u) exactly whatever the VAE; how well the VAE matches decides
//! only the acceptance f_acc.

use boltzflow_core::{ChainRng, Energy, Error, RandomStreams, Result};
use boltzflow_nn::parallel::chunk_ranges;
use ndarray::Array2;
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::likelihood::LN_2PI;
use super::model::Vae;

/// ln N(x; m, diag e^{ℓ}) of each row.
fn gaussian_rows(x: &[f64], mean: &[f64], log_var: &[f64], d: usize) -> Vec<f64> {
    x.chunks_exact(d)
        .zip(mean.chunks_exact(d).zip(log_var.chunks_exact(d)))
        .map(|(x, (m, l))| {
            x.iter()
                .zip(m.iter().zip(l))
                .map(|(&x, (&m, &l))| {
                    -0.5 * (x - m) * (x - m) * (-l).exp() - 0.5 * l - 0.5 * LN_2PI
                })
                .sum()
        })
        .collect()
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// Draws from N(m, diag e^{ℓ}) row by row.
fn draw(mean: &[f64], log_var: &[f64], rng: &mut ChainRng) -> Vec<f64> {
    mean.iter()
        .zip(log_var)
        .map(|(&m, &l)| {
            let e: f64 = StandardNormal.sample(rng);
            m + (0.5 * l).exp() * e
        })
        .collect()
}

/// Walkers per parallel chunk (fixed, so that results do not depend on the thread count).
const CHUNK_WALKERS: usize = 250;

/// One chunk of walkers with its own random stream and current energies.
struct Walkers {
    x: Array2<f64>,
    u: Vec<f64>,
    rng: ChainRng,
    accepted: usize,
}

/// One VAE move of every walker of a chunk.
fn vae_move(vae: &Vae, params: &[f32], energy: &dyn Energy, w: &mut Walkers) -> Result<()> {
    let (n, d, k) = (w.x.nrows(), vae.dim(), vae.latent_dim());
    let rng = &mut w.rng;
    let x1: Vec<f64> = w.x.iter().copied().collect();
    // z₁ ~ q(z|x₁).
    let (mu1, var1) = vae.encode(params, &to_f32(&x1), n);
    let lv1: Vec<f64> = var1.iter().map(|v| v.ln()).collect();
    let z1 = draw(&mu1, &lv1, rng);
    // z₂ ~ P(z) (through the prior flow, if any), x₂ ~ p(x|z₂).
    let u: Vec<f32> = (0..n * k)
        .map(|_| StandardNormal.sample(&mut *rng))
        .collect();
    let (z2, lz2) = vae.prior_sample_with_density(params, &u, n);
    let z2: Vec<f64> = z2.iter().map(|&v| f64::from(v)).collect();
    let (x2, lp2) = vae.sample_x(params, &to_f32(&z2), n, rng);
    let (mu2, var2) = vae.encode(params, &to_f32(&x2), n);
    let lv2: Vec<f64> = var2.iter().map(|v| v.ln()).collect();
    let x2a = Array2::from_shape_vec((n, d), x2).expect("n·d values");
    let u2 = energy.energy(x2a.view())?;
    let (lq1, lq2) = (
        gaussian_rows(&z1, &mu1, &lv1, k),
        gaussian_rows(&z2, &mu2, &lv2, k),
    );
    let lp1 = vae.log_likelihood(params, &to_f32(&x1), &to_f32(&z1), n);
    let lz1 = vae.log_prior_density(params, &to_f32(&z1), n);
    for i in 0..n {
        let log_a = -(u2[i] - w.u[i]) + lq2[i] - lq1[i] + lz1[i] - lz2[i] + lp1[i] - lp2[i];
        // NaN (from the network) is rejected; u₂ = +∞ gives log a = −∞, rejected too.
        if log_a >= 0.0 || rng.random::<f64>().ln() < log_a {
            w.x.row_mut(i).assign(&x2a.row(i));
            w.u[i] = u2[i];
            w.accepted += 1;
        }
    }
    Ok(())
}

/// Runs `steps` VAE moves on every walker (rows of `x`, updated in place) under `energy` (in
/// units of kT), calling `record(step, x)` after each; returns the acceptance fraction f_acc.
/// Walkers move in fixed chunks of 250 in parallel, each chunk drawing from its own stream
/// seeded from `rng`, so the chain does not depend on the thread count.
///
/// # Errors
/// [`Error::Shape`] if `x` does not have the VAE's dimension; energy errors; [`Error::NonFinite`]
/// if the current energies are not finite.
pub fn vae_metropolis(
    vae: &Vae,
    params: &[f32],
    energy: &dyn Energy,
    x: &mut Array2<f64>,
    steps: usize,
    rng: &mut ChainRng,
    mut record: impl FnMut(usize, &Array2<f64>),
) -> Result<f64> {
    let (n, d) = (x.nrows(), vae.dim());
    if x.ncols() != d {
        return Err(Error::shape(
            "VAE-MC walkers",
            format!("[n, {d}]"),
            format!("{:?}", x.shape()),
        ));
    }
    let u = energy.energy(x.view())?.to_vec();
    if let Some((i, &v)) = u.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: "energy of a VAE-MC walker".into(),
            location: format!("walker {i}"),
            value: v,
        });
    }
    let streams = RandomStreams::new(rng.random());
    let ranges = chunk_ranges(n, CHUNK_WALKERS);
    let mut chunks: Vec<Walkers> = ranges
        .iter()
        .enumerate()
        .map(|(c, r)| Walkers {
            x: x.slice(ndarray::s![r.clone(), ..]).to_owned(),
            u: u[r.clone()].to_vec(),
            rng: streams.stream(&format!("vae-mc.chunk{c}")),
            accepted: 0,
        })
        .collect();
    for step in 0..steps {
        chunks
            .par_iter_mut()
            .map(|w| vae_move(vae, params, energy, w))
            .collect::<Result<Vec<()>>>()?;
        for (w, r) in chunks.iter().zip(&ranges) {
            x.slice_mut(ndarray::s![r.clone(), ..]).assign(&w.x);
        }
        record(step, x);
    }
    let accepted: usize = chunks.iter().map(|w| w.accepted).sum();
    Ok(accepted as f64 / (n * steps).max(1) as f64)
}
