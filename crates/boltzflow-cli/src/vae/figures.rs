//! The panels of the paper's figures for one trained model (Monroe & Shen 2022, Fig. 2):
//! the latent distribution (aggregate posterior and prior, 2b), the data coloured by the
//! encoded latent value (2c) and reconstructions x̃ ~ p(x|z), z ~ q(z|x), coloured by z (2d).

use boltzflow_core::RandomStreams;
use boltzflow_learn::vae::model::Vae;
use rand_distr::{Distribution, StandardNormal};

use crate::plot::{Panel, Series, histogram_points};

/// Points drawn per scatter panel.
const SCATTER_POINTS: usize = 3000;

/// The 1 % and 99 % quantiles of `v`, widened by 10 %.
pub fn robust_range(v: &[f64]) -> (f64, f64) {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return (-1.0, 1.0);
    }
    s.sort_by(f64::total_cmp);
    let q = |p: f64| s[((p * (s.len() - 1) as f64) as usize).min(s.len() - 1)];
    let (lo, hi) = (q(0.01), q(0.99));
    let pad = if hi > lo { 0.1 * (hi - lo) } else { 1.0 };
    (lo - pad, hi + pad)
}

/// Colour values in [0, 1] of `z` over its robust range.
fn colours(z: &[f64]) -> Vec<f64> {
    let (lo, hi) = robust_range(z);
    z.iter().map(|v| (v - lo) / (hi - lo)).collect()
}

/// The three panels of one model, captioned `caption`: (latent distribution, data coloured by
/// μ₁(x), reconstructions coloured by z₁). Scatter panels show coordinates 0 and 1 on `box_`.
pub fn model_panels(
    vae: &Vae,
    params: &[f32],
    points: &[f32],
    caption: &str,
    box_: ((f64, f64), (f64, f64)),
    seed: u64,
) -> (Panel, Panel, Panel) {
    let (d, k) = (vae.dim(), vae.latent_dim());
    let n = (points.len() / d).min(SCATTER_POINTS);
    let pts = &points[..n * d];
    let mut rng = RandomStreams::new(seed).stream("vae.figures");
    let (mu, var) = vae.encode(params, pts, n);
    let eps: Vec<f64> = (0..n * k)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let z: Vec<f64> = mu
        .iter()
        .zip(&var)
        .zip(&eps)
        .map(|((m, v), e)| m + v.sqrt() * e)
        .collect();
    let z1: Vec<f64> = z.iter().step_by(k).copied().collect();
    let mu1: Vec<f64> = mu.iter().step_by(k).copied().collect();
    // Latent distribution: aggregate posterior and prior, first latent dimension.
    let u: Vec<f32> = (0..n * k)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let prior: Vec<f64> = vae
        .prior_sample(params, &u, n)
        .iter()
        .step_by(k)
        .map(|&v| f64::from(v))
        .collect();
    let both: Vec<f64> = z1.iter().chain(&prior).copied().collect();
    let (lo, hi) = robust_range(&both);
    let latent = Panel::lines(
        caption,
        vec![
            Series::line(
                "q(z) (encoded data)",
                histogram_points(&z1, None, lo, hi, 40),
            ),
            Series::reference("P(z) (prior)", histogram_points(&prior, None, lo, hi, 40)),
        ],
    );
    let xy = |x: &[f64], c: &[f64]| -> Vec<(f64, f64, f64)> {
        x.chunks_exact(d)
            .zip(c)
            .map(|(r, &c)| (r[0], r.get(1).copied().unwrap_or(0.0), c))
            .collect()
    };
    let data64: Vec<f64> = pts.iter().map(|&v| f64::from(v)).collect();
    let by_latent = Panel::scatter(caption, xy(&data64, &colours(&mu1)), box_.0, box_.1);
    let z32: Vec<f32> = z.iter().map(|&v| v as f32).collect();
    let (recon, _) = vae.sample_x(params, &z32, n, &mut rng);
    let recon = Panel::scatter(caption, xy(&recon, &colours(&z1)), box_.0, box_.1);
    (latent, by_latent, recon)
}

/// The scatter box of a data set: robust ranges of coordinates 0 and 1.
pub fn data_box(points: &[f32], d: usize) -> ((f64, f64), (f64, f64)) {
    let col = |j: usize| -> Vec<f64> {
        points
            .chunks_exact(d)
            .map(|r| r.get(j).map_or(0.0, |&v| f64::from(v)))
            .collect()
    };
    (robust_range(&col(0)), robust_range(&col(1)))
}
