//! Umbrella sampling: harmonic restraints on a reaction coordinate, and MBAR (Shirts & Chodera,
//! J. Chem. Phys. 129, 124105, 2008) to combine the biased windows into unbiased weights.
//!
//! Written by hand: MBAR for biases that depend on one coordinate is a short self-consistent
//! iteration, and no Rust crate provides it (pymbar is Python).

use ndarray::ArrayView1;
use rayon::prelude::*;

use boltzflow_core::{Coordinate, Energy, Error, Result};

use crate::bias::RowBias;

/// E(x) + ½k(s(x) − s₀)² for a coordinate s; forces include the restraint.
pub struct Restrained<'a> {
    /// The unbiased energy (reduced units).
    pub inner: &'a dyn Energy,
    /// The restrained coordinate.
    pub coordinate: &'a Coordinate,
    /// Window centre s₀.
    pub centre: f64,
    /// Spring constant k (energy per coordinate unit squared).
    pub k: f64,
}

impl Restrained<'_> {
    /// The bias ½k(s − s₀)² at coordinate value s.
    pub fn bias(&self, s: f64) -> f64 {
        0.5 * self.k * (s - self.centre).powi(2)
    }
}

impl RowBias for Restrained<'_> {
    fn row_bias(&self, x: ArrayView1<f64>, forces: Option<&mut [f64]>) -> f64 {
        let s = self.coordinate.value(x);
        if let Some(f) = forces {
            self.coordinate
                .add_gradient(x, -self.k * (s - self.centre), f);
        }
        self.bias(s)
    }
}

crate::impl_energy_with_row_bias!(Restrained<'_>);

/// The result of [`mbar`].
#[derive(Debug, Clone, PartialEq)]
pub struct Mbar {
    /// Dimensionless free energies of the biased windows, f₀ = 0.
    pub f: Vec<f64>,
    /// Log-weights of every sample (windows concatenated) in the unbiased ensemble.
    pub log_weights: Vec<f64>,
    /// Iterations used.
    pub iterations: usize,
}

/// MBAR (Shirts & Chodera, J. Chem. Phys. 129, 124105 (2008)) for windows whose reduced
/// potentials differ only by biases b_k(s): `values[k]` are the coordinate values sampled in
/// window k, `bias(k, s)` the bias of window k. Solves the MBAR equations
/// f_i = −ln Σ_n exp(−b_i(s_n)) / Σ_k N_k exp(f_k − b_k(s_n)) until no f_i moves by `tol`.
///
/// The solver is Newton's method on the convex MBAR objective
/// F(f) = Σ_n ln Σ_k N_k e^{f_k − b_k(s_n)} − Σ_k N_k f_k (its stationary point is the solution),
/// with f₀ = 0 fixed, a Cholesky solve of the (K−1)² Hessian and a backtracking line search;
/// where the Hessian is not positive definite (far from the solution) it takes a
/// self-consistent step instead. It converges in ~10 iterations where the plain self-consistent
/// iteration needed ~1600 on 21 umbrella windows, each iteration costing about the same.
///
/// # Errors
/// [`Error::InvalidParameter`] for an empty window; [`Error::Numerical`] without convergence
/// in `max_iter` iterations (windows that do not overlap) or for a non-finite bias.
pub fn mbar(
    values: &[Vec<f64>],
    bias: impl Fn(usize, f64) -> f64,
    tol: f64,
    max_iter: usize,
) -> Result<Mbar> {
    let k = values.len();
    if let Some(i) = values.iter().position(Vec::is_empty) {
        return Err(Error::invalid(
            "windows",
            format!("window {i} has no samples"),
        ));
    }
    let all: Vec<f64> = values.iter().flatten().copied().collect();
    let counts: Vec<f64> = values.iter().map(|v| v.len() as f64).collect();
    // Biases [n, k], a row per sample.
    let b: Vec<f64> = all
        .iter()
        .flat_map(|&s| (0..k).map(move |i| (i, s)))
        .map(|(i, s)| bias(i, s))
        .collect();
    if let Some(n) = b.iter().position(|v| v.is_nan() || *v == f64::NEG_INFINITY) {
        return Err(Error::Numerical {
            what: "MBAR".into(),
            reason: format!(
                "bias of window {} at sample value {} is {}",
                n % k,
                all[n / k],
                b[n]
            ),
        });
    }
    let mut f = vec![0.0; k];
    let mut at = MbarPoint::evaluate(&b, &counts, &f);
    for it in 0..max_iter {
        let (direction, newton) = match at.newton_direction(&counts) {
            Some(d) => (d, true),
            None => (at.self_consistent(), false),
        };
        let moved = |step: f64| -> Vec<f64> {
            f.iter()
                .zip(&direction)
                .map(|(fi, d)| fi - step * d)
                .collect()
        };
        if direction.iter().all(|d| d.abs() < tol) {
            f = moved(1.0);
            at = MbarPoint::evaluate(&b, &counts, &f);
            let log_weights = at.log_den.iter().map(|l| -l).collect();
            return Ok(Mbar {
                f,
                log_weights,
                iterations: it + 1,
            });
        }
        // Backtracking: halve the Newton step until the objective does not rise (beyond
        // rounding; F is flat near the solution); the self-consistent step is a descent step
        // of its own (it is a minorise–maximise iteration) and is taken whole.
        let slack = 1e-12 * at.objective.abs().max(1.0);
        let mut step = 1.0;
        loop {
            let trial = moved(step);
            let next = MbarPoint::evaluate(&b, &counts, &trial);
            if !newton || next.objective <= at.objective + slack || step < 1e-6 {
                f = trial;
                at = next;
                break;
            }
            step *= 0.5;
        }
    }
    Err(Error::Numerical {
        what: "MBAR".into(),
        reason: format!(
            "no convergence to {tol} in {max_iter} iterations; do neighbouring windows overlap?"
        ),
    })
}

/// The MBAR objective with its gradient and Hessian at one f (see [`mbar`]).
struct MbarPoint {
    /// ln Σ_k N_k e^{f_k − b_nk} per sample.
    log_den: Vec<f64>,
    objective: f64,
    /// Σ_n W_nk with W_nk = e^{f_k − b_nk} / Σ_j N_j e^{f_j − b_nj}.
    weight_sums: Vec<f64>,
    /// Σ_n W_ni W_nj, `[k, k]` row-major.
    weight_products: Vec<f64>,
}

impl MbarPoint {
    fn evaluate(b: &[f64], counts: &[f64], f: &[f64]) -> Self {
        let k = counts.len();
        let n_all = b.len() / k;
        let shift: Vec<f64> = counts.iter().zip(f).map(|(n, fk)| n.ln() + fk).collect();
        let mut log_den = vec![0.0; n_all];
        const CHUNK: usize = 4096;
        let (weight_sums, weight_products) = log_den
            .par_chunks_mut(CHUNK)
            .enumerate()
            .map(|(c, chunk)| {
                let mut sums = vec![0.0; k];
                let mut products = vec![0.0; k * k];
                let mut w = vec![0.0; k];
                for (o, ld) in chunk.iter_mut().enumerate() {
                    let row = &b[(c * CHUNK + o) * k..(c * CHUNK + o + 1) * k];
                    // ln D_n by log-sum-exp; the shifted exponentials it sums give the weights
                    // W_nj = e^{f_j − b_nj} / D_n (the shift carries ln N_j too: divide).
                    w.clear();
                    w.extend(row.iter().zip(&shift).map(|(bj, sj)| sj - bj));
                    let top = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    w.iter_mut().for_each(|v| *v -= top);
                    boltzflow_core::math::exp_slice(&mut w);
                    let sum: f64 = w.iter().sum();
                    *ld = top + sum.ln();
                    for (wj, nj) in w.iter_mut().zip(counts) {
                        *wj /= sum * nj;
                    }
                    for i in 0..k {
                        sums[i] += w[i];
                        for j in 0..k {
                            products[i * k + j] += w[i] * w[j];
                        }
                    }
                }
                (sums, products)
            })
            .reduce(
                || (vec![0.0; k], vec![0.0; k * k]),
                |(mut s, mut p), (s2, p2)| {
                    s.iter_mut().zip(&s2).for_each(|(a, b)| *a += b);
                    p.iter_mut().zip(&p2).for_each(|(a, b)| *a += b);
                    (s, p)
                },
            );
        let objective =
            log_den.iter().sum::<f64>() - counts.iter().zip(f).map(|(n, fk)| n * fk).sum::<f64>();
        Self {
            log_den,
            objective,
            weight_sums,
            weight_products,
        }
    }

    /// H⁻¹ g with f₀ held at 0 (gradient g_i = N_i (Σ_n W_ni − 1), Hessian
    /// H_ij = δ_ij N_i Σ_n W_ni − N_i N_j Σ_n W_ni W_nj); `None` if the reduced Hessian is not
    /// positive definite.
    fn newton_direction(&self, counts: &[f64]) -> Option<Vec<f64>> {
        let k = counts.len();
        if k == 1 {
            return Some(vec![0.0]);
        }
        let m = k - 1;
        let h = faer::Mat::<f64>::from_fn(m, m, |a, c| {
            let (i, j) = (a + 1, c + 1);
            let diag = if i == j {
                counts[i] * self.weight_sums[i]
            } else {
                0.0
            };
            diag - counts[i] * counts[j] * self.weight_products[i * k + j]
        });
        let g =
            faer::Mat::<f64>::from_fn(m, 1, |a, _| counts[a + 1] * (self.weight_sums[a + 1] - 1.0));
        use faer::prelude::Solve;
        let x = h.llt(faer::Side::Lower).ok()?.solve(&g);
        let mut d = vec![0.0f64; k];
        for a in 0..m {
            d[a + 1] = x[(a, 0)];
        }
        d.iter().all(|v| v.is_finite()).then_some(d)
    }

    /// f − f_SC for the self-consistent update f_i ← f_i − ln Σ_n W_ni, re-zeroed at f₀.
    fn self_consistent(&self) -> Vec<f64> {
        let l0 = self.weight_sums[0].ln();
        self.weight_sums.iter().map(|s| s.ln() - l0).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, StandardNormal};

    /// ln Σ exp(v), with the system library's exp (independent of the solver's).
    fn logsumexp(v: &[f64]) -> f64 {
        let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
    }

    /// Exact samples of harmonic windows ½κ(s − c_k)² on the potential ½s²: window k is
    /// N(κc_k/(1+κ), 1/(1+κ)) and f_k − f₀ = ½κ/(1+κ) (c_k² − c₀²) exactly.
    fn gaussian_windows(centres: &[f64], kappa: f64, n: usize) -> Vec<Vec<f64>> {
        let mut rng = boltzflow_core::RandomStreams::new(4).stream("mbar");
        let sd = (1.0 + kappa).powf(-0.5);
        centres
            .iter()
            .map(|&c| {
                (0..n)
                    .map(|_| {
                        let z: f64 = StandardNormal.sample(&mut rng);
                        kappa * c / (1.0 + kappa) + sd * z
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn window_free_energies_equal_the_gaussian_closed_form() {
        let centres: Vec<f64> = (0..9).map(|i| -3.0 + 0.75 * f64::from(i)).collect();
        let kappa = 4.0;
        let values = gaussian_windows(&centres, kappa, 20_000);
        let bias = |k: usize, s: f64| 0.5 * kappa * (s - centres[k]).powi(2);
        let m = mbar(&values, bias, 1e-10, 100).unwrap();
        assert!(m.iterations < 30, "{} Newton iterations", m.iterations);
        for (k, &c) in centres.iter().enumerate() {
            let exact = 0.5 * kappa / (1.0 + kappa) * (c * c - centres[0] * centres[0]);
            // Statistical error of f_k here is ~0.01–0.02 kT (20 000 samples per window).
            assert!(
                (m.f[k] - exact).abs() < 0.06,
                "f_{k} = {} vs exact {exact}",
                m.f[k]
            );
        }
        // The solution satisfies the self-consistent MBAR equations to rounding.
        let all: Vec<f64> = values.iter().flatten().copied().collect();
        for (i, fi) in m.f.iter().enumerate() {
            let terms: Vec<f64> = all
                .iter()
                .zip(&m.log_weights)
                .map(|(&s, lw)| lw - bias(i, s))
                .collect();
            let f_sc = -logsumexp(&terms);
            let f0 = -logsumexp(
                &all.iter()
                    .zip(&m.log_weights)
                    .map(|(&s, lw)| lw - bias(0, s))
                    .collect::<Vec<_>>(),
            );
            assert!(
                (f_sc - f0 - fi).abs() < 1e-8,
                "window {i}: {fi} vs {}",
                f_sc - f0
            );
        }
    }

    #[test]
    fn windows_that_do_not_overlap_fail_to_converge_or_are_reported() {
        let values = vec![vec![0.0; 10], vec![]];
        assert!(mbar(&values, |_, _| 0.0, 1e-9, 10).is_err());
        let values = vec![vec![0.0; 10], vec![1.0; 10]];
        let e = mbar(&values, |_, _| f64::NAN, 1e-9, 10).unwrap_err();
        assert!(e.to_string().contains("bias of window"), "{e}");
    }
}
