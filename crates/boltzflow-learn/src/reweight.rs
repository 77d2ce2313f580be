//! Using a trained generator: importance weights, effective sample size, reweighted
//! expectations, free-energy differences and profiles with bootstrap error bars, and
//! flow-proposed Monte Carlo that turns a biased generator into exact samples.
//!
//! Weights are self-normalised: with log w_i = −u(x_i) − log q(x_i), an expectation is
//! Σ w_i f(x_i) / Σ w_i, so neither the partition function nor q's normalisation is needed.

use boltzflow_core::{ChainRng, Error, Result};
use rand::RngExt;

/// Kish's effective sample size divided by N: (Σw)² / (N Σw²), in (0, 1].
///
/// # Errors
/// [`Error::NonFinite`] if a log-weight is NaN or +∞ (−∞ is a zero weight).
pub fn ess_fraction(log_w: &[f64]) -> Result<f64> {
    let w = normalised_weights(log_w)?;
    let s2: f64 = w.iter().map(|v| v * v).sum();
    Ok(1.0 / (s2 * log_w.len() as f64))
}

/// Weights w_i / Σ w, computed stably from log-weights.
///
/// # Errors
/// [`Error::NonFinite`] naming the first bad sample, or if every weight is zero.
pub fn normalised_weights(log_w: &[f64]) -> Result<Vec<f64>> {
    if let Some(i) = log_w.iter().position(|v| v.is_nan() || *v == f64::INFINITY) {
        return Err(Error::NonFinite {
            what: "log-weight".into(),
            location: format!("sample {i}"),
            value: log_w[i],
        });
    }
    let m = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return Err(Error::NonFinite {
            what: "log-weights".into(),
            location: "all samples".into(),
            value: m,
        });
    }
    let mut w: Vec<f64> = log_w.iter().map(|&l| (l - m).exp()).collect();
    let s: f64 = w.iter().sum();
    w.iter_mut().for_each(|v| *v /= s);
    Ok(w)
}

/// A number with its bootstrap standard error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The estimate on all samples.
    pub value: f64,
    /// Standard deviation over bootstrap resamples.
    pub std_error: f64,
}

fn bootstrap(
    n_samples: usize,
    n_boot: usize,
    rng: &mut ChainRng,
    mut f: impl FnMut(&[usize]) -> f64,
) -> f64 {
    let mut idx = vec![0; n_samples];
    let vals: Vec<f64> = (0..n_boot)
        .map(|_| {
            idx.iter_mut()
                .for_each(|i| *i = rng.random_range(0..n_samples));
            f(&idx)
        })
        .collect();
    finite_std(&vals)
}

/// Sample standard deviation of the finite values (NaN with fewer than 2).
fn finite_std(values: &[f64]) -> f64 {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.len() < 2 {
        return f64::NAN;
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// ΔF = F_B − F_A = −ln(P_B / P_A) in kT from weighted samples; `state[i]` is `Some(false)`
/// for A, `Some(true)` for B, `None` for neither. Error bar from `n_boot` bootstrap resamples.
///
/// # Errors
/// As [`normalised_weights`]; [`Error::Numerical`] if a state holds no weight.
pub fn delta_f(
    log_w: &[f64],
    state: &[Option<bool>],
    n_boot: usize,
    rng: &mut ChainRng,
) -> Result<Estimate> {
    let w = normalised_weights(log_w)?;
    let df = |idx: &mut dyn Iterator<Item = usize>| {
        let (mut pa, mut pb) = (0.0, 0.0);
        for i in idx {
            match state[i] {
                Some(false) => pa += w[i],
                Some(true) => pb += w[i],
                None => {}
            }
        }
        -(pb / pa).ln()
    };
    let value = df(&mut (0..w.len()));
    if !value.is_finite() {
        return Err(Error::Numerical {
            what: "free-energy difference".into(),
            reason:
                "one of the states holds no (weighted) sample; sample more or check the thresholds"
                    .into(),
        });
    }
    let std_error = bootstrap(w.len(), n_boot, rng, |idx| df(&mut idx.iter().copied()));
    Ok(Estimate { value, std_error })
}

/// A free-energy profile from weighted samples.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedProfile {
    /// Bin edges `[n_bins + 1]`.
    pub edges: Vec<f64>,
    /// Weighted probability of each bin (normalised over all samples).
    pub probabilities: Vec<f64>,
    /// F = −ln(P / width) in kT (+∞ for empty bins).
    pub free_energy: Vec<f64>,
    /// Bootstrap standard error of F per bin (NaN where undefined).
    pub std_error: Vec<f64>,
}

fn histogram(
    values: &[f64],
    w: &[f64],
    edges: &[f64],
    idx: &mut dyn Iterator<Item = usize>,
) -> Vec<f64> {
    let n = edges.len() - 1;
    let (lo, hi) = (edges[0], edges[n]);
    let mut p = vec![0.0; n];
    let total: f64 = {
        let mut t = 0.0;
        for i in idx {
            t += w[i];
            let v = values[i];
            if v >= lo && v < hi {
                // Uniform edges: direct index.
                let b = (((v - lo) / (hi - lo)) * n as f64) as usize;
                p[b.min(n - 1)] += w[i];
            }
        }
        t
    };
    p.iter_mut().for_each(|v| *v /= total);
    p
}

/// Uniform bin edges on [lo, hi].
pub fn uniform_edges(lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    (0..=bins)
        .map(|i| lo + (hi - lo) * i as f64 / bins as f64)
        .collect()
}

/// Profile of `values` (one per sample) with log-weights `log_w` over uniform `edges`.
///
/// # Errors
/// As [`normalised_weights`].
pub fn profile(
    values: &[f64],
    log_w: &[f64],
    edges: &[f64],
    n_boot: usize,
    rng: &mut ChainRng,
) -> Result<WeightedProfile> {
    let w = normalised_weights(log_w)?;
    let n = edges.len() - 1;
    let widths: Vec<f64> = edges.windows(2).map(|e| e[1] - e[0]).collect();
    let to_f = |p: &[f64]| -> Vec<f64> {
        p.iter()
            .zip(&widths)
            .map(|(p, wd)| -(p / wd).ln())
            .collect()
    };
    let probabilities = histogram(values, &w, edges, &mut (0..w.len()));
    let free_energy = to_f(&probabilities);
    let mut reps: Vec<Vec<f64>> = Vec::with_capacity(n_boot);
    let mut idx = vec![0; w.len()];
    for _ in 0..n_boot {
        idx.iter_mut()
            .for_each(|i| *i = rng.random_range(0..w.len()));
        reps.push(to_f(&histogram(
            values,
            &w,
            edges,
            &mut idx.iter().copied(),
        )));
    }
    let std_error = (0..n)
        .map(|b| finite_std(&reps.iter().map(|r| r[b]).collect::<Vec<_>>()))
        .collect();
    Ok(WeightedProfile {
        edges: edges.to_vec(),
        probabilities,
        free_energy,
        std_error,
    })
}

/// RMSE between two profiles over the bins where the reference holds more than
/// `min_probability`, after removing the mean offset (free energies are defined up to a
/// constant). Returns NaN if no bin qualifies or the estimate is infinite in one of them.
pub fn profile_rmse(
    estimate: &[f64],
    reference: &[f64],
    reference_prob: &[f64],
    min_probability: f64,
) -> f64 {
    let sel: Vec<usize> = (0..reference.len())
        .filter(|&i| reference_prob[i] > min_probability)
        .collect();
    if sel.is_empty() {
        return f64::NAN;
    }
    let off = sel.iter().map(|&i| estimate[i] - reference[i]).sum::<f64>() / sel.len() as f64;
    (sel.iter()
        .map(|&i| (estimate[i] - reference[i] - off).powi(2))
        .sum::<f64>()
        / sel.len() as f64)
        .sqrt()
}
