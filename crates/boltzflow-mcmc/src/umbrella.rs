//! Umbrella sampling: harmonic restraints on a reaction coordinate, and MBAR (Shirts & Chodera,
//! J. Chem. Phys. 129, 124105, 2008) to combine the biased windows into unbiased weights.
//!
//! Written by hand: MBAR for biases that depend on one coordinate is a short self-consistent
//! iteration, and no Rust crate provides it (pymbar is Python).

use ndarray::{ArrayView2, ArrayViewMut1, ArrayViewMut2};
use rayon::prelude::*;

use boltzflow_core::{Coordinate, Energy, Error, Result};

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

impl Energy for Restrained<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn energy_into(&self, x: ArrayView2<f64>, mut out: ArrayViewMut1<f64>) -> Result<()> {
        self.inner.energy_into(x, out.view_mut())?;
        for (e, row) in out.iter_mut().zip(x.rows()) {
            *e += self.bias(self.coordinate.value(row));
        }
        Ok(())
    }

    fn energy_and_forces_into(
        &self,
        x: ArrayView2<f64>,
        mut energy: ArrayViewMut1<f64>,
        mut forces: ArrayViewMut2<f64>,
    ) -> Result<()> {
        self.inner
            .energy_and_forces_into(x, energy.view_mut(), forces.view_mut())?;
        let mut g = vec![0.0; x.ncols()];
        for ((e, row), mut f) in energy.iter_mut().zip(x.rows()).zip(forces.rows_mut()) {
            let s = self.coordinate.value(row);
            *e += self.bias(s);
            self.coordinate.gradient(row, &mut g);
            let c = self.k * (s - self.centre);
            for (fi, gi) in f.iter_mut().zip(&g) {
                *fi -= c * gi;
            }
        }
        Ok(())
    }
}

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

/// ln Σ exp(v) for a slice, with the vectorised exponential.
fn logsumexp(v: &[f64], scratch: &mut Vec<f64>) -> f64 {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    scratch.clear();
    scratch.extend(v.iter().map(|x| x - m));
    boltzflow_core::math::exp_slice(scratch);
    m + scratch.iter().sum::<f64>().ln()
}

/// MBAR for windows whose reduced potentials differ only by biases b_k(s):
/// `values[k]` are the coordinate values sampled in window k, `bias(k, s)` the bias of window k.
/// Iterates f_i = −ln Σ_n exp(−b_i(s_n)) / Σ_k N_k exp(f_k − b_k(s_n)) to `tol`.
///
/// # Errors
/// [`Error::InvalidParameter`] for an empty window; [`Error::Numerical`] without convergence
/// in `max_iter` iterations (windows that do not overlap).
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
    let n_all = all.len();
    let ln_n: Vec<f64> = values.iter().map(|v| (v.len() as f64).ln()).collect();
    // Biases [n, k] (row per sample) and their transpose [k, n] (row per window).
    let b: Vec<f64> = all
        .iter()
        .flat_map(|&s| (0..k).map(move |i| (i, s)))
        .map(|(i, s)| bias(i, s))
        .collect();
    let bt: Vec<f64> = (0..k)
        .flat_map(|i| all.iter().map(move |&s| (i, s)))
        .map(|(i, s)| bias(i, s))
        .collect();
    let mut f = vec![0.0; k];
    let mut log_den = vec![0.0; n_all];
    for it in 0..max_iter {
        let shift: Vec<f64> = (0..k).map(|j| ln_n[j] + f[j]).collect();
        log_den.par_chunks_mut(4096).enumerate().for_each_init(
            || (Vec::with_capacity(k), Vec::with_capacity(k)),
            |(terms, scratch), (c, chunk)| {
                for (o, ld) in chunk.iter_mut().enumerate() {
                    let n = c * 4096 + o;
                    terms.clear();
                    terms.extend(
                        b[n * k..(n + 1) * k]
                            .iter()
                            .zip(&shift)
                            .map(|(bj, sj)| sj - bj),
                    );
                    *ld = logsumexp(terms, scratch);
                }
            },
        );
        let mut new: Vec<f64> = (0..k)
            .into_par_iter()
            .map(|i| {
                let terms: Vec<f64> = bt[i * n_all..(i + 1) * n_all]
                    .iter()
                    .zip(&log_den)
                    .map(|(bi, ld)| -bi - ld)
                    .collect();
                -logsumexp(&terms, &mut Vec::with_capacity(n_all))
            })
            .collect();
        let f0 = new[0];
        new.iter_mut().for_each(|v| *v -= f0);
        let change = new
            .iter()
            .zip(&f)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        f = new;
        if change < tol {
            let log_weights = log_den.iter().map(|l| -l).collect();
            return Ok(Mbar {
                f,
                log_weights,
                iterations: it + 1,
            });
        }
    }
    Err(Error::Numerical {
        what: "MBAR".into(),
        reason: format!(
            "no convergence to {tol} in {max_iter} iterations; do neighbouring windows overlap?"
        ),
    })
}
