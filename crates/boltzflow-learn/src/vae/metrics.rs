//! Latent metrics of an encoder q(z|x) = N(μ(x), diag σ²(x)) (Monroe & Shen 2022, DESIGN §1):
//! JD_encode (the mean Jeffreys divergence between the encodings of two different data points,
//! per latent dimension and in total), active dimensions, and the total correlation of the
//! aggregate posterior.

use super::likelihood::LN_2PI;

/// Jeffreys divergence KL(p‖q) + KL(q‖p) of two 1D Gaussians given by means and variances:
/// ½(v₁/v₂ + v₂/v₁ − 2) + ½(μ₁ − μ₂)²(1/v₁ + 1/v₂).
pub fn jeffreys_1d(mu1: f64, var1: f64, mu2: f64, var2: f64) -> f64 {
    let d = mu1 - mu2;
    0.5 * (var1 / var2 + var2 / var1 - 2.0) + 0.5 * d * d * (1.0 / var1 + 1.0 / var2)
}

/// JD_encode per latent dimension: the Jeffreys divergence averaged over all ordered pairs
/// (i ≠ j) of the encodings `mu`, `var` `[n, d]` (row-major). For diagonal Gaussians the total
/// is the sum over dimensions. The all-pairs mean is computed exactly in O(n·d) from sums of
/// μ, μ², v and 1/v (no sampling of pairs).
///
/// # Panics
/// If fewer than two encodings are given or the shapes disagree (callers validate).
pub fn jd_encode(mu: &[f64], var: &[f64], d: usize) -> Vec<f64> {
    assert!(d > 0 && mu.len() == var.len() && mu.len().is_multiple_of(d) && mu.len() / d >= 2);
    let n = (mu.len() / d) as f64;
    (0..d)
        .map(|k| {
            let col = |v: &[f64]| v.iter().skip(k).step_by(d).copied().collect::<Vec<f64>>();
            let (m, v) = (col(mu), col(var));
            let s_v: f64 = v.iter().sum();
            let s_iv: f64 = v.iter().map(|x| 1.0 / x).sum();
            let s_m: f64 = m.iter().sum();
            let s_m2: f64 = m.iter().map(|x| x * x).sum();
            let s_m_iv: f64 = m.iter().zip(&v).map(|(a, b)| a / b).sum();
            let s_m2_iv: f64 = m.iter().zip(&v).map(|(a, b)| a * a / b).sum();
            // Σ_{i≠j} (v_i/v_j + v_j/v_i − 2) = 2(S_v S_{1/v} − n) − 2n(n − 1).
            let ratio = 2.0 * (s_v * s_iv - n) - 2.0 * n * (n - 1.0);
            // Σ_{i≠j} (μ_i − μ_j)²/v_i, and the same with v_j (equal by symmetry); i = j adds 0.
            let shift = n * s_m2_iv - 2.0 * s_m * s_m_iv + s_m2 * s_iv;
            0.5 * (ratio + 2.0 * shift) / (n * (n - 1.0))
        })
        .collect()
}

/// Latent dimensions in use: log₁₀ JD_encode > −1 (Monroe & Shen 2022).
pub fn active_dims(jd_per_dim: &[f64]) -> usize {
    jd_per_dim.iter().filter(|&&j| j > 0.1).count()
}

/// Total correlation of the aggregate posterior, KL(q(z) ‖ Π_k q(z_k)), of the encodings
/// q(z|x_j) = N(`mu`_j, diag `var`_j) (`[m, d]`, row-major), from one draw `z`_i ~ q(z|x_i) per
/// encoding (`[m, d]`): the aggregate posterior is their mixture q(z) = (1/m) Σ_j q(z|x_j), its
/// marginals are the mixtures of the per-dimension Gaussians, and
/// TC ≈ (1/m) Σ_i [ln q(z_i) − Σ_k ln q_k(z_ik)] (the estimator of β-TCVAE, Chen et al.,
/// NeurIPS 2018, with the whole sample as the batch). It is the exact total correlation of the
/// m-component mixture up to the Monte Carlo error of the draws, so it is not biased by a prior
/// that misfits q(z); it is at most (d − 1) ln m, reached when the encodings are sharp and
/// separated (a memorising encoder). O(m² d), parallel over i.
///
/// # Panics
/// If the shapes disagree or m = 0 (callers validate).
pub fn total_correlation(z: &[f64], mu: &[f64], var: &[f64], d: usize) -> f64 {
    use rayon::prelude::*;
    assert!(d > 0 && z.len() == mu.len() && mu.len() == var.len() && !z.is_empty());
    assert!(z.len().is_multiple_of(d));
    let m = z.len() / d;
    let inv_var: Vec<f64> = var.iter().map(|v| 1.0 / v).collect();
    let norm: Vec<f64> = var.iter().map(|v| -0.5 * v.ln() - 0.5 * LN_2PI).collect();
    let ln_m = (m as f64).ln();
    let total: f64 = (0..m)
        .into_par_iter()
        .map(|i| {
            let zi = &z[i * d..(i + 1) * d];
            // Running log-sum-exp of the joint and of each marginal over the components j.
            let (mut joint_max, mut joint_sum) = (f64::NEG_INFINITY, 0.0);
            let mut marg = vec![(f64::NEG_INFINITY, 0.0); d];
            for j in 0..m {
                let mut joint = 0.0;
                for (k, mk) in marg.iter_mut().enumerate() {
                    let t = zi[k] - mu[j * d + k];
                    let l = norm[j * d + k] - 0.5 * t * t * inv_var[j * d + k];
                    joint += l;
                    accumulate(mk, l);
                }
                let mut js = (joint_max, joint_sum);
                accumulate(&mut js, joint);
                (joint_max, joint_sum) = js;
            }
            let lse = |(max, sum): (f64, f64)| max + sum.ln() - ln_m;
            lse((joint_max, joint_sum)) - marg.iter().map(|&a| lse(a)).sum::<f64>()
        })
        .sum();
    total / m as f64
}

/// Adds e^l to a running log-sum-exp kept as (max, Σ e^(l − max)).
fn accumulate(acc: &mut (f64, f64), l: f64) {
    if l > acc.0 {
        acc.1 = acc.1 * (acc.0 - l).exp() + 1.0;
        acc.0 = l;
    } else {
        acc.1 += (l - acc.0).exp();
    }
}

/// ln N(z; μ, diag v) of one row.
fn log_normal_diag(z: &[f64], mu: &[f64], var: &[f64]) -> f64 {
    z.iter()
        .zip(mu.iter().zip(var))
        .map(|(&z, (&m, &v))| -0.5 * (z - m) * (z - m) / v - 0.5 * v.ln() - 0.5 * LN_2PI)
        .sum()
}

/// JD_prior: the Jeffreys divergence KL(q_i‖P) + KL(P‖q_i) between each encoding
/// q_i = N(`mu`_i, diag `var`_i) (`[n, k]`) and the prior P, averaged over the encodings, by
/// Monte Carlo through the prior's density: KL(q_i‖P) from one draw `z_q`_i ~ q_i per encoding
/// (`[n, k]`, with ln P(z_q) in `log_p_zq` `[n]`), KL(P‖q_i) from prior draws `z_p` `[m, k]`
/// shared by all encodings (with ln P(z_p) in `log_p_zp` `[m]`). Unbiased for the average;
/// for P = N(0, I) it estimates Σ_dims [`jeffreys_1d`](μ, v, 0, 1).
pub fn jd_prior(
    mu: &[f64],
    var: &[f64],
    k: usize,
    z_q: &[f64],
    log_p_zq: &[f64],
    z_p: &[f64],
    log_p_zp: &[f64],
) -> f64 {
    let n = log_p_zq.len();
    let m = log_p_zp.len();
    let mean_log_p = log_p_zp.iter().sum::<f64>() / m as f64;
    let total: f64 = (0..n)
        .map(|i| {
            let (mi, vi) = (&mu[i * k..(i + 1) * k], &var[i * k..(i + 1) * k]);
            let forward = log_normal_diag(&z_q[i * k..(i + 1) * k], mi, vi) - log_p_zq[i];
            let backward = mean_log_p
                - z_p
                    .chunks_exact(k)
                    .map(|z| log_normal_diag(z, mi, vi))
                    .sum::<f64>()
                    / m as f64;
            forward + backward
        })
        .sum();
    total / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use boltzflow_core::RandomStreams;
    use rand::RngExt;
    use rand_distr::{Distribution, StandardNormal};

    fn normals(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = RandomStreams::new(seed).stream("z");
        (0..n).map(|_| StandardNormal.sample(&mut rng)).collect()
    }

    #[test]
    fn jeffreys_divergence_equals_a_monte_carlo_estimate() {
        let (m1, v1, m2, v2): (f64, f64, f64, f64) = (0.3, 0.5, -0.4, 1.7);
        // E_p[ln p − ln q] + E_q[ln q − ln p] from 10⁶ draws of each.
        let lp = |x: f64, m: f64, v: f64| -0.5 * (x - m) * (x - m) / v - 0.5 * v.ln();
        let g = normals(2_000_000, 1);
        let (a, b) = g.split_at(1_000_000);
        let kl12: f64 = a
            .iter()
            .map(|e| {
                let x = m1 + v1.sqrt() * e;
                lp(x, m1, v1) - lp(x, m2, v2)
            })
            .sum::<f64>()
            / 1e6;
        let kl21: f64 = b
            .iter()
            .map(|e| {
                let x = m2 + v2.sqrt() * e;
                lp(x, m2, v2) - lp(x, m1, v1)
            })
            .sum::<f64>()
            / 1e6;
        let exact = jeffreys_1d(m1, v1, m2, v2);
        assert!(
            (kl12 + kl21 - exact).abs() < 5e-3,
            "MC {} vs {exact}",
            kl12 + kl21
        );
    }

    #[test]
    fn jd_encode_equals_the_average_over_all_pairs() {
        let mut rng = RandomStreams::new(2).stream("enc");
        let (n, d) = (40, 3);
        let mu: Vec<f64> = (0..n * d).map(|_| rng.random_range(-2.0..2.0)).collect();
        let var: Vec<f64> = (0..n * d).map(|_| rng.random_range(0.05..3.0)).collect();
        let fast = jd_encode(&mu, &var, d);
        for k in 0..d {
            let mut s = 0.0;
            for i in 0..n {
                for j in 0..n {
                    if i != j {
                        s += jeffreys_1d(
                            mu[i * d + k],
                            var[i * d + k],
                            mu[j * d + k],
                            var[j * d + k],
                        );
                    }
                }
            }
            let slow = s / (n * (n - 1)) as f64;
            assert!(
                (fast[k] - slow).abs() < 1e-10 * slow.max(1.0),
                "dim {k}: {} vs {slow}",
                fast[k]
            );
        }
        // Identical encodings: zero, and no active dimension.
        let same = jd_encode(&[0.5, 0.5, 0.5], &[2.0, 2.0, 2.0], 1);
        assert!(same[0].abs() < 1e-12);
        assert_eq!(active_dims(&same), 0);
        assert_eq!(active_dims(&[0.01, 0.5, 3.0]), 2);
    }

    #[test]
    fn total_correlation_is_zero_for_independent_latents_and_exact_for_a_correlated_gaussian() {
        // Encodings N(μ_j, v I) with μ_j ~ N(0, [[1, ρ], [ρ, 1]]): the aggregate posterior is
        // N(0, [[1 + v, ρ], [ρ, 1 + v]]), whose total correlation is −½ ln(1 − ρ'²) with
        // ρ' = ρ / (1 + v).
        let m = 4000;
        let v = 0.25f64;
        let g = normals(4 * m, 3);
        for rho in [0.0f64, 0.8] {
            let c = (1.0 - rho * rho).sqrt();
            let mu: Vec<f64> = g[..2 * m]
                .chunks_exact(2)
                .flat_map(|p| [p[0], rho * p[0] + c * p[1]])
                .collect();
            let var = vec![v; 2 * m];
            let z: Vec<f64> = mu
                .iter()
                .zip(&g[2 * m..])
                .map(|(m, e)| m + v.sqrt() * e)
                .collect();
            let tc = total_correlation(&z, &mu, &var, 2);
            let r = rho / (1.0 + v);
            let exact = -0.5 * (1.0 - r * r).ln();
            assert!((tc - exact).abs() < 0.02, "ρ={rho}: TC {tc} vs {exact}");
        }
        // Sharp, separated encodings (a memorising encoder): TC → (d − 1) ln m, never below 0.
        let mu: Vec<f64> = g[..3 * m].iter().map(|x| 10.0 * x).collect();
        let var = vec![1e-8; 3 * m];
        let tc = total_correlation(&mu, &mu, &var, 3);
        let bound = 2.0 * (m as f64).ln();
        assert!(tc > 0.95 * bound && tc <= bound + 1e-9, "{tc} vs {bound}");
    }

    #[test]
    fn jd_prior_equals_the_analytic_divergence_from_a_standard_normal_prior() {
        // Encodings N(μ_i, v_i) in 2D against P = N(0, I): the exact average is
        // mean_i Σ_dims jeffreys_1d(μ, v, 0, 1).
        let n = 400;
        let k = 2;
        let g = normals(2 * n * k, 5);
        let mu: Vec<f64> = g[..n * k].iter().map(|x| 1.5 * x).collect();
        let var: Vec<f64> = g[n * k..].iter().map(|x| (0.8 * x).exp()).collect();
        let exact: f64 = mu
            .iter()
            .zip(&var)
            .map(|(&m, &v)| jeffreys_1d(m, v, 0.0, 1.0))
            .sum::<f64>()
            / n as f64;
        let log_p = |z: &[f64]| z.iter().map(|x| -0.5 * x * x - 0.5 * LN_2PI).sum::<f64>();
        // Many draws per encoding (replicated rows) so the Monte Carlo error is small.
        let reps = 200;
        let e = normals(n * k * reps, 6);
        let (mut mu_r, mut var_r, mut z_q) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..reps {
            for i in 0..n {
                for j in 0..k {
                    let (m, v) = (mu[i * k + j], var[i * k + j]);
                    mu_r.push(m);
                    var_r.push(v);
                    z_q.push(m + v.sqrt() * e[(r * n + i) * k + j]);
                }
            }
        }
        let lq: Vec<f64> = z_q.chunks_exact(k).map(log_p).collect();
        let z_p = normals(4000 * k, 7);
        let lp: Vec<f64> = z_p.chunks_exact(k).map(log_p).collect();
        let est = jd_prior(&mu_r, &var_r, k, &z_q, &lq, &z_p, &lp);
        assert!(
            (est - exact).abs() < 0.03 * exact,
            "JD_prior {est} vs exact {exact}"
        );
    }
}
