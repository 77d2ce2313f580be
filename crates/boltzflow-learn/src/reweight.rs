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

/// Kish's effective number of samples (Σw)²/Σw² among the samples where `keep` holds (0 if
/// none has a positive weight). Non-finite log-weights other than −∞ count as weight 0.
pub fn effective_count(log_w: &[f64], keep: impl Fn(usize) -> bool) -> f64 {
    let kept = || (0..log_w.len()).filter(|&i| keep(i) && log_w[i].is_finite());
    let m = kept().map(|i| log_w[i]).fold(f64::NEG_INFINITY, f64::max);
    kish(kept().map(|i| (log_w[i] - m).exp()))
}

/// Kish's effective number of *lineages* among the samples where `keep` holds: the weights of
/// samples descended from the same initial sample (`ancestors[i]`, e.g. copies made by
/// resampling in [`crate::ais`]) are summed before (Σw)²/Σw², since copies are not
/// independent. Equals [`effective_count`] when every ancestor is distinct.
pub fn effective_lineages(log_w: &[f64], ancestors: &[usize], keep: impl Fn(usize) -> bool) -> f64 {
    let kept = || (0..log_w.len()).filter(|&i| keep(i) && log_w[i].is_finite());
    let m = kept().map(|i| log_w[i]).fold(f64::NEG_INFINITY, f64::max);
    let mut by_ancestor = std::collections::BTreeMap::<usize, f64>::new();
    for i in kept() {
        *by_ancestor.entry(ancestors[i]).or_default() += (log_w[i] - m).exp();
    }
    kish(by_ancestor.into_values())
}

/// (Σw)²/Σw² of non-negative weights in any units (0 when none is positive).
pub(crate) fn kish(weights: impl Iterator<Item = f64>) -> f64 {
    let (s1, s2) = weights.fold((0.0, 0.0), |(a, b), w| (a + w, b + w * w));
    if s2 > 0.0 { s1 * s1 / s2 } else { 0.0 }
}

/// The Pareto-smoothed importance sampling diagnostic k̂ (Vehtari, Simpson, Gelman, Yao,
/// Gabry, JMLR 25, 72 (2024)): the shape of a generalised Pareto distribution fitted to the
/// largest M = ⌈min(N/5, 3√N)⌉ weights. The weights' distribution has finite moments of order
/// below 1/k, so for k̂ < 0.5 the self-normalised estimates converge at the usual rate, for
/// 0.5 ≤ k̂ < 0.7 slowly, and for k̂ ≥ 0.7 the estimates, the bootstrap errors and the Kish ESS
/// are unreliable whatever they say (a heavy tail that N samples have not yet seen).
///
/// The fit is Zhang and Stephens's (Technometrics 51, 316 (2009)) posterior mean over a grid of
/// the scale-to-shape ratio, with the paper's weakly informative pull of k̂ towards 0.5 by 10
/// pseudo-observations; written here because no Rust crate fits it.
/// Returns NaN with fewer than 20 finite weights, or a tail of equal weights.
pub fn pareto_k(log_w: &[f64]) -> f64 {
    let mut lw: Vec<f64> = log_w.iter().copied().filter(|v| v.is_finite()).collect();
    let n = lw.len();
    if n < 20 {
        return f64::NAN;
    }
    lw.sort_by(f64::total_cmp);
    let m = ((0.2 * n as f64).min(3.0 * (n as f64).sqrt()).ceil() as usize).clamp(5, n - 1);
    let top = lw[n - 1];
    let cutoff = (lw[n - m - 1] - top).exp();
    // Exceedances over the cut-off, ascending, in units of the largest weight.
    let x: Vec<f64> = lw[n - m..]
        .iter()
        .map(|l| (l - top).exp() - cutoff)
        .collect();
    if x[m - 1] <= 0.0 || x[0] == x[m - 1] {
        return f64::NAN;
    }
    gpd_shape(&x)
}

/// Shape k of a generalised Pareto distribution fitted to exceedances `x` (ascending,
/// positive largest): Zhang and Stephens's estimator, with the prior of [`pareto_k`].
fn gpd_shape(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let grid = 30 + n.sqrt() as usize;
    let quartile = x[((n / 4.0 + 0.5) as usize).saturating_sub(1)];
    let x_max = x[x.len() - 1];
    // θ_j = 1/x_max + (1 − √(grid/(j − ½))) / (3·x_quartile), j = 1..grid.
    let thetas: Vec<f64> = (1..=grid)
        .map(|j| 1.0 / x_max + (1.0 - (grid as f64 / (j as f64 - 0.5)).sqrt()) / (3.0 * quartile))
        .collect();
    // Profile log-likelihood of each θ: k(θ) = −mean ln(1 − θx), ℓ = n(ln(θ/k) + k − 1).
    let k_of = |t: f64| -x.iter().map(|&v| (-t * v).ln_1p()).sum::<f64>() / n;
    let profile: Vec<f64> = thetas
        .iter()
        .map(|&t| {
            let k = k_of(t);
            n * ((t / k).ln() + k - 1.0)
        })
        .collect();
    let best = profile
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = profile
        .iter()
        .map(|&l| if l.is_finite() { (l - best).exp() } else { 0.0 })
        .collect();
    let total: f64 = weights.iter().sum();
    let theta: f64 = thetas.iter().zip(&weights).map(|(t, w)| t * w).sum::<f64>() / total;
    // Zhang–Stephens's k has the opposite sign of the usual shape.
    let shape = -k_of(theta);
    (n * shape + 10.0 * 0.5) / (n + 10.0)
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

/// How a bootstrap resamples: `replicates` resamples, drawn sample by sample (`blocks` =
/// `None`: independent samples) or as whole contiguous blocks (`Some(b)`: the samples are cut
/// into b blocks of near-equal length, e.g. the independent populations of an AIS run with
/// resampling, whose members share ancestors and are not independent; a resample draws b
/// blocks with replacement, Künsch, Ann. Stat. 17, 1217 (1989)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bootstrap {
    /// Number of bootstrap resamples (0: no error bars).
    pub replicates: usize,
    /// Contiguous blocks drawn as units, or `None` for single samples.
    pub blocks: Option<usize>,
}

impl From<usize> for Bootstrap {
    /// `replicates` resamples of independent samples.
    fn from(replicates: usize) -> Self {
        Self {
            replicates,
            blocks: None,
        }
    }
}

impl Bootstrap {
    /// Fills `idx` with one resample of the indices 0..n.
    fn resample(&self, n: usize, rng: &mut ChainRng, idx: &mut Vec<usize>) {
        idx.clear();
        match self.blocks {
            Some(b) if b >= 1 && n > 0 => {
                let b = b.min(n);
                for _ in 0..b {
                    let g = rng.random_range(0..b);
                    idx.extend(g * n / b..(g + 1) * n / b);
                }
            }
            // Sample by sample; the same draws as before blocks existed.
            _ => idx.extend((0..n).map(|_| rng.random_range(0..n))),
        }
    }

    /// One value of `f` per resample.
    fn replicate<T>(
        &self,
        n: usize,
        rng: &mut ChainRng,
        mut f: impl FnMut(&[usize]) -> T,
    ) -> Vec<T> {
        let mut idx = Vec::with_capacity(n);
        (0..self.replicates)
            .map(|_| {
                self.resample(n, rng, &mut idx);
                f(&idx)
            })
            .collect()
    }
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
/// for A, `Some(true)` for B, `None` for neither. Error bar from bootstrap resamples (`boot`:
/// a number of resamples of independent samples, or a [`Bootstrap`] by blocks).
///
/// # Errors
/// As [`normalised_weights`]; [`Error::Numerical`] if a state holds no weight.
pub fn delta_f(
    log_w: &[f64],
    state: &[Option<bool>],
    boot: impl Into<Bootstrap>,
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
    let reps = boot
        .into()
        .replicate(w.len(), rng, |idx| df(&mut idx.iter().copied()));
    let std_error = finite_std(&reps);
    Ok(Estimate { value, std_error })
}

/// Weighted populations of discrete states: `state[i]` is sample i's state (< `n_states`) or
/// `None`; each population is the state's share of the total weight (samples in no state
/// count in the total), with a bootstrap standard error (`boot`: a number of resamples, or a
/// [`Bootstrap`] by blocks).
///
/// # Errors
/// As [`normalised_weights`].
pub fn state_populations(
    log_w: &[f64],
    state: &[Option<usize>],
    n_states: usize,
    boot: impl Into<Bootstrap>,
    rng: &mut ChainRng,
) -> Result<Vec<Estimate>> {
    let w = normalised_weights(log_w)?;
    let pops = |idx: &mut dyn Iterator<Item = usize>| {
        let mut p = vec![0.0; n_states];
        let mut total = 0.0;
        for i in idx {
            total += w[i];
            if let Some(s) = state[i] {
                p[s] += w[i];
            }
        }
        p.iter_mut().for_each(|v| *v /= total);
        p
    };
    let value = pops(&mut (0..w.len()));
    let boots = boot
        .into()
        .replicate(w.len(), rng, |idx| pops(&mut idx.iter().copied()));
    Ok((0..n_states)
        .map(|s| Estimate {
            value: value[s],
            std_error: finite_std(&boots.iter().map(|b| b[s]).collect::<Vec<_>>()),
        })
        .collect())
}

/// Unweighted populations of discrete states: each state's share of the samples that are in
/// some state (`None` samples are left out).
pub fn state_fractions(state: &[Option<usize>], n_states: usize) -> Vec<f64> {
    let mut counts = vec![0usize; n_states];
    for s in state.iter().flatten() {
        counts[*s] += 1;
    }
    let total = counts.iter().sum::<usize>().max(1) as f64;
    counts.into_iter().map(|c| c as f64 / total).collect()
}

/// Populations of discrete states along a correlated series (MD frames in time order) with
/// block-average standard errors: the series is cut into `n_blocks` contiguous blocks of equal
/// length (the remainder left out of the errors, not of the values), and the error is the
/// standard deviation of the blocks' fractions over √n_blocks. The blocks must be longer than
/// the slowest correlation time for the error to hold (Flyvbjerg & Petersen, J. Chem. Phys.
/// 91, 461 (1989)). Values as [`state_fractions`]; errors NaN with fewer than 2 blocks.
pub fn block_state_populations(
    state: &[Option<usize>],
    n_states: usize,
    n_blocks: usize,
) -> Vec<Estimate> {
    let value = state_fractions(state, n_states);
    let len = if n_blocks >= 2 {
        state.len() / n_blocks
    } else {
        0
    };
    let blocks: Vec<Vec<f64>> = if len == 0 {
        Vec::new()
    } else {
        state
            .chunks_exact(len)
            .map(|b| state_fractions(b, n_states))
            .collect()
    };
    (0..n_states)
        .map(|s| {
            let m = blocks.len() as f64;
            let std_error = if blocks.len() < 2 {
                f64::NAN
            } else {
                let mean = blocks.iter().map(|b| b[s]).sum::<f64>() / m;
                let var = blocks.iter().map(|b| (b[s] - mean).powi(2)).sum::<f64>() / (m - 1.0);
                (var / m).sqrt()
            };
            Estimate {
                value: value[s],
                std_error,
            }
        })
        .collect()
}

/// The 2-Wasserstein distance between two 1-D samples (unweighted): √∫₀¹ (F_a⁻¹(t) − F_b⁻¹(t))² dt
/// with the quantile functions of the sorted samples evaluated at `n_quantiles` midpoints.
/// Non-finite values are dropped; NaN if either sample is then empty.
pub fn wasserstein2_1d(a: &[f64], b: &[f64], n_quantiles: usize) -> f64 {
    let sorted = |v: &[f64]| {
        let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        s.sort_by(f64::total_cmp);
        s
    };
    let (sa, sb) = (sorted(a), sorted(b));
    if sa.is_empty() || sb.is_empty() || n_quantiles == 0 {
        return f64::NAN;
    }
    let q = |s: &[f64], t: f64| s[((t * s.len() as f64) as usize).min(s.len() - 1)];
    let sum: f64 = (0..n_quantiles)
        .map(|k| {
            let t = (k as f64 + 0.5) / n_quantiles as f64;
            (q(&sa, t) - q(&sb, t)).powi(2)
        })
        .sum();
    (sum / n_quantiles as f64).sqrt()
}

/// The normalised `bins` × `bins` histogram (row = first angle's cell) over (−π, π]² of angle
/// pairs with weights (unnormalised; all equal when `None`); pairs with a non-finite angle are
/// left out.
pub fn torus_histogram(angles: &[[f64; 2]], weights: Option<&[f64]>, bins: usize) -> Vec<f64> {
    use std::f64::consts::PI;
    let cell = |a: f64| (((a + PI) / (2.0 * PI) * bins as f64) as usize).min(bins - 1);
    let mut h = vec![0.0; bins * bins];
    for (i, [x, y]) in angles.iter().enumerate() {
        if x.is_finite() && y.is_finite() {
            h[cell(*x) * bins + cell(*y)] += weights.map_or(1.0, |w| w[i]);
        }
    }
    let total: f64 = h.iter().sum();
    h.iter_mut().for_each(|v| *v /= total);
    h
}

/// KL(p ‖ q) between two distributions of angle pairs on the torus, from histograms of
/// `bins` × `bins` cells over (−π, π]² ([`torus_histogram`]): p from the (unweighted) pairs
/// `p_angles`, q from the pairs `q_angles` with weights `q_weights` (unnormalised; all equal
/// when `None`). q is smoothed with a pseudo-count totalling 10⁻⁶ of its mass, spread evenly
/// over the cells, so that a cell p visits and q does not costs a large but finite amount.
pub fn torus_histogram_kl(
    p_angles: &[[f64; 2]],
    q_angles: &[[f64; 2]],
    q_weights: Option<&[f64]>,
    bins: usize,
) -> f64 {
    let p = torus_histogram(p_angles, None, bins);
    let q = torus_histogram(q_angles, q_weights, bins);
    let eps = 1e-6 / (bins * bins) as f64;
    let norm = 1.0 + 1e-6;
    p.iter()
        .zip(&q)
        .filter(|(p, _)| **p > 0.0)
        .map(|(p, q)| p * (p / ((q + eps) / norm)).ln())
        .sum()
}

/// The 2-Wasserstein distance (radians) between the histograms of two distributions of angle
/// pairs on the torus, as [`torus_histogram_kl`] builds them, from the debiased Sinkhorn
/// divergence of [`crate::torus_transport::torus_w2`].
pub fn torus_histogram_w2(
    p_angles: &[[f64; 2]],
    q_angles: &[[f64; 2]],
    q_weights: Option<&[f64]>,
    bins: usize,
) -> f64 {
    crate::torus_transport::torus_w2(
        &torus_histogram(p_angles, None, bins),
        &torus_histogram(q_angles, q_weights, bins),
        bins,
    )
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
            if let Some(b) = uniform_bin(values[i], lo, hi, n) {
                p[b] += w[i];
            }
        }
        t
    };
    p.iter_mut().for_each(|v| *v /= total);
    p
}

/// The bin of `v` among `n` uniform bins on [lo, hi) (direct index), or `None` outside.
pub fn uniform_bin(v: f64, lo: f64, hi: f64, n: usize) -> Option<usize> {
    (v >= lo && v < hi).then(|| ((((v - lo) / (hi - lo)) * n as f64) as usize).min(n - 1))
}

/// Uniform bin edges on [lo, hi].
pub fn uniform_edges(lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    (0..=bins)
        .map(|i| lo + (hi - lo) * i as f64 / bins as f64)
        .collect()
}

/// A free-energy profile shifted so that its lowest finite value is 0 (empty bins stay +∞).
pub fn shift_to_minimum(f: &[f64]) -> Vec<f64> {
    let m = f
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    f.iter().map(|v| v - m).collect()
}

/// Profile of `values` (one per sample) with log-weights `log_w` over uniform `edges`, with
/// bootstrap errors (`boot`: a number of resamples, or a [`Bootstrap`] by blocks).
///
/// # Errors
/// As [`normalised_weights`].
pub fn profile(
    values: &[f64],
    log_w: &[f64],
    edges: &[f64],
    boot: impl Into<Bootstrap>,
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
    let reps = boot.into().replicate(w.len(), rng, |idx| {
        to_f(&histogram(values, &w, edges, &mut idx.iter().copied()))
    });
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

/// 1 / (1 + e^a) without overflow.
fn fermi(a: f64) -> f64 {
    if a > 0.0 {
        let e = (-a).exp();
        e / (1.0 + e)
    } else {
        1.0 / (1.0 + a.exp())
    }
}

/// Bennett's acceptance ratio (Bennett 1976; Shirts, Bair, Hooker & Pande 2003): the reduced
/// free-energy difference Δf = f₁ − f₀ (f = −ln Z, in kT) between two states from forward
/// work values `w_f` = u₁(x) − u₀(x) with x drawn from state 0 and reverse ones `w_r` =
/// u₀(x) − u₁(x) with x drawn from state 1. A work value of +∞ (a sample outside the other
/// state) contributes nothing. With no reverse samples this is one-sided importance sampling,
/// Δf = −ln mean(e^{−w_f}), its limit.
///
/// Solves Σ_F 1/(1 + e^{M + w_F − Δf}) = Σ_R 1/(1 + e^{−M + w_R + Δf}), M = ln(n_F / n_R), by
/// bisection: the left side increases and the right side decreases with Δf, so the root is
/// unique. (Written by hand: the equation is one line and no crate ships it.)
///
/// # Errors
/// [`Error::NonFinite`] if a work value is NaN or −∞; [`Error::Numerical`] if no forward work
/// is finite (the states do not overlap at all).
pub fn bar(w_f: &[f64], w_r: &[f64]) -> Result<f64> {
    for (name, w) in [("forward", w_f), ("reverse", w_r)] {
        if let Some(v) = w.iter().find(|v| v.is_nan() || **v == f64::NEG_INFINITY) {
            return Err(Error::NonFinite {
                what: format!("{name} work value (BAR)"),
                location: "free-energy estimate".into(),
                value: *v,
            });
        }
    }
    let counted = |w: &[f64]| -> Vec<(f64, f64)> {
        w.iter()
            .filter(|v| v.is_finite())
            .map(|&v| (v, 1.0))
            .collect()
    };
    bar_counted(
        &counted(w_f),
        w_f.len() as f64,
        &counted(w_r),
        w_r.len() as f64,
    )
}

/// BAR on finite work values with multiplicities `(work, count)` (a bootstrap resample is a
/// set of counts); `n_f`, `n_r` are the sample totals, +∞ work values included.
fn bar_counted(wf: &[(f64, f64)], n_f: f64, wr: &[(f64, f64)], n_r: f64) -> Result<f64> {
    if wf.is_empty() {
        return Err(Error::Numerical {
            what: "BAR free-energy difference".into(),
            reason: "no forward sample lies in the target state; sample more or check the state"
                .into(),
        });
    }
    // One-sided estimate: the answer without reverse samples and the bisection's start.
    let m = wf.iter().map(|w| -w.0).fold(f64::NEG_INFINITY, f64::max);
    let mean = wf.iter().map(|(w, c)| c * (-w - m).exp()).sum::<f64>() / n_f;
    let one_sided = -(m + mean.ln());
    if wr.is_empty() {
        return Ok(one_sided);
    }
    let big_m = (n_f / n_r).ln();
    let g = |df: f64| -> f64 {
        wf.iter()
            .map(|(w, c)| c * fermi(big_m + w - df))
            .sum::<f64>()
            - wr.iter()
                .map(|(w, c)| c * fermi(-big_m + w + df))
                .sum::<f64>()
    };
    // Bracket the root, g(lo) < 0 < g(hi), then bisect.
    let (mut lo, mut hi) = (one_sided - 1.0, one_sided + 1.0);
    let mut step = 1.0;
    while g(lo) > 0.0 && step < 1e6 {
        step *= 2.0;
        lo -= step;
    }
    step = 1.0;
    while g(hi) < 0.0 && step < 1e6 {
        step *= 2.0;
        hi += step;
    }
    while hi - lo > 1e-10 * (1.0 + lo.abs()) {
        let mid = 0.5 * (lo + hi);
        if g(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(0.5 * (lo + hi))
}

/// The overlap of the two states of a BAR estimate Δf, as the MBAR overlap O₀₁ they would have
/// with equal sample sizes (Shirts & Chodera 2008; Klimovich, Shirts & Mobley 2015): ½ for
/// identical states, 0 when no sample is plausible under both. Below ~0.03 a BAR estimate is
/// not to be trusted, whatever its bootstrap error.
///
/// With r = p₁/p₀ = e^{Δf − w} (w = u₁ − u₀; for reverse samples w = −w_R), that overlap is
/// ½ E₀[2r/(1 + r)] = ½ E₁[2/(1 + r)]; the two sample estimates are averaged. `n_f` counts all
/// forward samples, of which only the `wf` (finite work) lie in state 1: state 0 is compared
/// with state 1 on state 1's support, p₀ restricted there (r scaled by its mass |wf|/n_f).
fn bar_overlap(wf: &[(f64, f64)], n_f: f64, wr: &[(f64, f64)], df: f64) -> f64 {
    let inside: f64 = wf.iter().map(|(_, c)| c).sum();
    let n_r: f64 = wr.iter().map(|(_, c)| c).sum();
    if inside == 0.0 || n_r == 0.0 {
        return 0.0;
    }
    let ln_mass = (inside / n_f).ln();
    // 2r/(1 + r) and 2/(1 + r) through the logistic function of a = ln r (no overflow).
    let h_f = wf
        .iter()
        .map(|(w, c)| c * 2.0 * fermi(-(df - w + ln_mass)))
        .sum::<f64>()
        / inside;
    let h_r = wr
        .iter()
        .map(|(w, c)| c * 2.0 * fermi(df + w + ln_mass))
        .sum::<f64>()
        / n_r;
    0.25 * (h_f + h_r)
}

/// Free energies of states from a normalised generator and equilibrium data, by BAR between
/// the generator's density q and the Boltzmann density restricted to each state: state 0 has
/// u₀ = −ln q (so f₀ = 0), state 1 has u₁ = u inside the state and +∞ outside, so
/// Δf = f_s = −ln Z_s. Forward work for a generated sample inside the state is u + ln q (minus
/// its log-weight); reverse work for a data point in the state is −ln q − u (its log-weight).
/// A state without data falls back to importance sampling, the BAR limit.
///
/// The data enter only through their log-weights and must be Boltzmann distributed *within*
/// each state; their ratio between states does not matter (chains that stay in their basin,
/// as for the dimer, qualify). Data the generator was trained on make ln q too large: pass
/// held-out data.
///
/// `state_*[i]` is the state (`0..n_states`) of a sample, or `None`. Returns f_s for every
/// state with `n_boot` bootstrap replicates (generated samples and each state's data resampled
/// together), from which [`StateFreeEnergies::difference`] takes error bars of differences.
///
/// A state that holds no generated sample gets f_s = NaN: BAR cannot estimate it.
///
/// # Errors
/// [`Error::NonFinite`] for a NaN or +∞ log-weight.
pub fn bar_state_free_energies(
    log_w_gen: &[f64],
    state_gen: &[Option<usize>],
    log_w_data: &[f64],
    state_data: &[Option<usize>],
    n_states: usize,
    n_boot: usize,
    rng: &mut ChainRng,
) -> Result<StateFreeEnergies> {
    for (name, lw) in [("generated", log_w_gen), ("data", log_w_data)] {
        if let Some(i) = lw.iter().position(|v| v.is_nan() || *v == f64::INFINITY) {
            return Err(Error::NonFinite {
                what: format!("log-weight of a {name} sample (BAR)"),
                location: format!("sample {i}"),
                value: lw[i],
            });
        }
    }
    // Members of each state (−∞ log-weights are +∞ work: they drop out of the sums).
    let members = |states: &[Option<usize>], lw: &[f64]| -> Vec<Vec<usize>> {
        let mut m = vec![Vec::new(); n_states];
        for (i, s) in states.iter().enumerate() {
            if let Some(s) = *s
                && s < n_states
                && lw[i].is_finite()
            {
                m[s].push(i);
            }
        }
        m
    };
    let gen_members = members(state_gen, log_w_gen);
    let data_members = members(state_data, log_w_data);
    let n_gen = log_w_gen.len();
    // Every data point of a state, −∞ log-weights included (they count in n_R).
    let data_by_state: Vec<Vec<usize>> = (0..n_states)
        .map(|s| {
            (0..state_data.len())
                .filter(|&i| state_data[i] == Some(s))
                .collect()
        })
        .collect();
    // f_s for counts per generated sample and per data point (NaN: no generated sample).
    let free = |c_gen: &[f64], c_data: &[f64]| -> Vec<f64> {
        (0..n_states)
            .map(|s| {
                let wf: Vec<(f64, f64)> = gen_members[s]
                    .iter()
                    .filter(|&&i| c_gen[i] > 0.0)
                    .map(|&i| (-log_w_gen[i], c_gen[i]))
                    .collect();
                let wr: Vec<(f64, f64)> = data_members[s]
                    .iter()
                    .filter(|&&i| c_data[i] > 0.0)
                    .map(|&i| (log_w_data[i], c_data[i]))
                    .collect();
                bar_counted(&wf, n_gen as f64, &wr, data_by_state[s].len() as f64)
                    .unwrap_or(f64::NAN)
            })
            .collect()
    };
    let values = free(&vec![1.0; n_gen], &vec![1.0; log_w_data.len()]);
    let overlap = (0..n_states)
        .map(|s| {
            let wf: Vec<(f64, f64)> = gen_members[s]
                .iter()
                .map(|&i| (-log_w_gen[i], 1.0))
                .collect();
            let wr: Vec<(f64, f64)> = data_members[s]
                .iter()
                .map(|&i| (log_w_data[i], 1.0))
                .collect();
            if values[s].is_finite() {
                bar_overlap(&wf, n_gen as f64, &wr, values[s])
            } else {
                0.0
            }
        })
        .collect();
    // Bootstrap: all generated samples resampled; each state's data resampled within it.
    let mut reps: Vec<Vec<f64>> = Vec::with_capacity(n_boot);
    let (mut c_gen, mut c_data) = (vec![0.0; n_gen], vec![0.0; log_w_data.len()]);
    for _ in 0..n_boot {
        c_gen.fill(0.0);
        c_data.fill(0.0);
        for _ in 0..n_gen {
            c_gen[rng.random_range(0..n_gen)] += 1.0;
        }
        for m in &data_by_state {
            for _ in 0..m.len() {
                c_data[m[rng.random_range(0..m.len())]] += 1.0;
            }
        }
        reps.push(free(&c_gen, &c_data));
    }
    Ok(StateFreeEnergies {
        values,
        replicates: reps,
        overlap,
    })
}

/// State free energies f_s = −ln Z_s (kT) with their bootstrap replicates.
#[derive(Debug, Clone, PartialEq)]
pub struct StateFreeEnergies {
    /// f_s on all samples.
    pub values: Vec<f64>,
    /// One vector of f_s per bootstrap replicate (NaN where a state lost all its generated
    /// samples; error bars use the finite replicates).
    pub replicates: Vec<Vec<f64>>,
    /// Overlap between the generator and each state ([`bar_overlap`]'s equal-size MBAR
    /// overlap; 0 for a state without data, whose estimate is importance sampling alone);
    /// trust f_s only where it is ≳ 0.03.
    pub overlap: Vec<f64>,
}

impl StateFreeEnergies {
    /// f_s with the bootstrap standard deviation of f_s.
    pub fn state(&self, s: usize) -> Estimate {
        Estimate {
            value: self.values[s],
            std_error: finite_std(&self.replicates.iter().map(|r| r[s]).collect::<Vec<_>>()),
        }
    }

    /// f_b − f_a with the bootstrap standard deviation of the difference.
    pub fn difference(&self, a: usize, b: usize) -> Estimate {
        Estimate {
            value: self.values[b] - self.values[a],
            std_error: finite_std(
                &self
                    .replicates
                    .iter()
                    .map(|r| r[b] - r[a])
                    .collect::<Vec<_>>(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {

    /// k̂ recovers the shape of generalised-Pareto weights (w = 1 + X, X ~ GPD(ξ)) to within
    /// its sampling error (~0.07 on the 424 tail samples of 20 000), and is negative for
    /// bounded weights, whose tail has no power law.
    #[test]
    fn pareto_k_recovers_the_tail_shape_of_the_weights() {
        let mut rng = boltzflow_core::RandomStreams::new(4).stream("pareto");
        let n = 20_000;
        for xi in [0.2, 0.5, 0.9] {
            let log_w: Vec<f64> = (0..n)
                .map(|_| {
                    let u: f64 = rng.random();
                    (1.0 + ((1.0 - u).powf(-xi) - 1.0) / xi).ln()
                })
                .collect();
            let k = pareto_k(&log_w);
            assert!((k - xi).abs() < 0.15, "ξ {xi}: k̂ {k}");
        }
        let bounded: Vec<f64> = (0..n).map(|_| (0.5 + rng.random::<f64>()).ln()).collect();
        assert!(pareto_k(&bounded) < 0.0, "{}", pareto_k(&bounded));
        // −∞ weights are left out; too few finite ones give NaN.
        let mut few = vec![f64::NEG_INFINITY; 100];
        few[..10].fill(0.0);
        assert!(pareto_k(&few).is_nan());
    }

    #[test]
    fn a_profile_shifted_to_its_minimum_keeps_empty_bins_empty() {
        let f = shift_to_minimum(&[3.0, f64::INFINITY, 1.0, 2.5]);
        assert_eq!(f, vec![2.0, f64::INFINITY, 0.0, 1.5]);
    }

    use super::*;

    #[test]
    fn the_effective_count_is_kish_within_the_kept_samples() {
        // Equal weights: every kept sample counts; 2 and 1 (weights e^{ln 2}, e^0): 9/5.
        let lw = [0.0, 0.0, 0.0, 2f64.ln(), 0.0, f64::NEG_INFINITY];
        assert!((effective_count(&lw, |i| i < 3) - 3.0).abs() < 1e-12);
        assert!((effective_count(&lw, |i| i == 3 || i == 4) - 1.8).abs() < 1e-12);
        assert_eq!(effective_count(&lw, |i| i == 5), 0.0);
        // One weight e^{50} above the rest: one effective sample.
        let lw = [50.0, 0.0, 0.0, 0.0];
        assert!((effective_count(&lw, |_| true) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn wasserstein2_of_shifted_samples_is_the_shift_and_kl_of_equal_histograms_is_zero() {
        let a: Vec<f64> = (0..10_000).map(|i| (i as f64 + 0.5) / 10_000.0).collect();
        let b: Vec<f64> = a.iter().map(|v| v + 0.3).collect();
        assert!((wasserstein2_1d(&a, &b, 1000) - 0.3).abs() < 1e-3);
        assert!(wasserstein2_1d(&a, &a, 1000) < 1e-12);
        let pts: Vec<[f64; 2]> = (0..5000)
            .map(|i| [-3.0 + 6.0 * (i as f64 / 5000.0), 1.0])
            .collect();
        assert!(torus_histogram_kl(&pts, &pts, None, 36).abs() < 1e-4);
        // Half of p's cells unvisited by q: KL ≈ ln 2 is exceeded by far (smoothing only).
        let half: Vec<[f64; 2]> = pts.iter().filter(|p| p[0] < 0.0).copied().collect();
        assert!(torus_histogram_kl(&pts, &half, None, 36) > 3.0);
        // q twice as dense on half the support (by weights): KL = ln(4/3)/2 + ln(2/3)/2 … in
        // closed form ½ ln(½ / ⅓) + ½ ln(½ / ⅔).
        let w: Vec<f64> = pts
            .iter()
            .map(|p| if p[0] < 0.0 { 2.0 } else { 1.0 })
            .collect();
        let want = 0.5 * (0.5f64 / (2.0 / 3.0)).ln() + 0.5 * (0.5f64 / (1.0 / 3.0)).ln();
        assert!((torus_histogram_kl(&pts, &pts, Some(&w), 36) - want).abs() < 1e-3);
    }

    #[test]
    fn block_populations_of_independent_frames_have_binomial_errors() {
        // Independent frames: the block error equals the binomial √(p(1−p)/n) within its own
        // sampling error (20 blocks: ±16 %); a series of long runs in one state has a larger
        // error than the binomial one, as correlation demands.
        let mut rng = RandomStreams::new(5).stream("blocks");
        let n = 200_000;
        let state: Vec<Option<usize>> = (0..n)
            .map(|_| Some(usize::from(rng.random::<f64>() < 0.3)))
            .collect();
        let p = block_state_populations(&state, 2, 20);
        let binomial = (0.3f64 * 0.7 / n as f64).sqrt();
        assert!((p[1].value - 0.3).abs() < 4.0 * binomial);
        assert!(
            (p[1].std_error / binomial - 1.0).abs() < 0.4,
            "{}",
            p[1].std_error / binomial
        );
        assert!((p[0].std_error - p[1].std_error).abs() < 1e-12);
        let runs: Vec<Option<usize>> = (0..n).map(|i| Some((i / 7000) % 2)).collect();
        let q = block_state_populations(&runs, 2, 20);
        assert!((q[0].value - 0.5).abs() < 0.02);
        assert!(q[0].std_error > 10.0 * (0.25 / n as f64).sqrt());
        assert!(block_state_populations(&state, 2, 1)[0].std_error.is_nan());
    }

    #[test]
    fn state_populations_are_weighted_shares_with_binomial_bootstrap_errors() {
        let n = 4000;
        // Equal weights: shares 0.25 / 0.5 / 0.25 with errors √(p(1 − p)/n).
        let state: Vec<Option<usize>> = (0..n).map(|i| Some([0, 1, 1, 2][i % 4])).collect();
        let mut rng = boltzflow_core::RandomStreams::new(1).stream("b");
        let p = state_populations(&vec![0.0; n], &state, 3, 400, &mut rng).unwrap();
        for (e, want) in p.iter().zip([0.25, 0.5, 0.25]) {
            assert!((e.value - want).abs() < 1e-12);
            let se = (want * (1.0 - want) / n as f64).sqrt();
            assert!(
                (e.std_error - se).abs() < 0.15 * se,
                "{} vs {se}",
                e.std_error
            );
        }
        // Weights: state 1 samples weigh 3×, a sample in no state still counts in the total.
        let log_w = [0.0, 3f64.ln(), 0.0];
        let st = [Some(0), Some(1), None];
        let p = state_populations(&log_w, &st, 2, 10, &mut rng).unwrap();
        assert!((p[0].value - 0.2).abs() < 1e-12 && (p[1].value - 0.6).abs() < 1e-12);
    }
    use boltzflow_core::RandomStreams;
    use rand_distr::{Distribution, StandardNormal};

    fn normals(n: usize, mean: f64, sd: f64, rng: &mut ChainRng) -> Vec<f64> {
        (0..n)
            .map(|_| {
                let z: f64 = StandardNormal.sample(rng);
                mean + sd * z
            })
            .collect()
    }

    /// N(0, 1) → N(1, 0.5²) with unnormalised u₀ = x²/2, u₁ = (x − 1)²/(2 · 0.25):
    /// Δf = −ln(Z₁ / Z₀) = ln 2.
    #[test]
    fn bar_equals_the_analytic_free_energy_of_two_gaussians() {
        let mut rng = RandomStreams::new(3).stream("bar");
        let u0 = |x: f64| 0.5 * x * x;
        let u1 = |x: f64| (x - 1.0).powi(2) / 0.5;
        let x0 = normals(20_000, 0.0, 1.0, &mut rng);
        let x1 = normals(20_000, 1.0, 0.5, &mut rng);
        let wf: Vec<f64> = x0.iter().map(|&x| u1(x) - u0(x)).collect();
        let wr: Vec<f64> = x1.iter().map(|&x| u0(x) - u1(x)).collect();
        let df = bar(&wf, &wr).unwrap();
        assert!((df - 2f64.ln()).abs() < 0.02, "BAR {df} vs ln 2");
        // Swapping the states flips the sign.
        let back = bar(&wr, &wf).unwrap();
        assert!((df + back).abs() < 1e-9, "{df} vs {back}");
        // Without reverse samples: one-sided importance sampling, still unbiased here.
        let one = bar(&wf, &[]).unwrap();
        assert!((one - 2f64.ln()).abs() < 0.05, "one-sided {one}");
        assert!(bar(&[f64::NAN], &[]).is_err());
        // Overlap: ½ for identical states sampled equally, ~0 for states far apart.
        let same: Vec<(f64, f64)> = vec![(0.0, 1.0); 100];
        assert!((bar_overlap(&same, 100.0, &same[..10], 0.0) - 0.5).abs() < 1e-12);
        let counted = |w: &[f64]| w.iter().map(|&v| (v, 1.0)).collect::<Vec<_>>();
        let o = bar_overlap(&counted(&wf), 2e4, &counted(&wr), df);
        assert!(o > 0.05 && o < 0.5, "overlap {o}");
        // Unequal sample sizes do not change it.
        let o_small = bar_overlap(&counted(&wf), 2e4, &counted(&wr[..2000]), df);
        assert!((o - o_small).abs() < 0.02, "{o} vs {o_small}");
        let far_f: Vec<f64> = normals(1000, 0.0, 1.0, &mut rng);
        let far_r: Vec<f64> = normals(1000, 30.0, 1.0, &mut rng);
        let wf2: Vec<f64> = far_f
            .iter()
            .map(|x| 0.5 * (x - 30.0).powi(2) - 0.5 * x * x)
            .collect();
        let wr2: Vec<f64> = far_r
            .iter()
            .map(|x| 0.5 * x * x - 0.5 * (x - 30.0).powi(2))
            .collect();
        let df2 = bar(&wf2, &wr2).unwrap();
        assert!(bar_overlap(&counted(&wf2), 1e3, &counted(&wr2), df2) < 1e-10);
        assert!(bar(&[f64::INFINITY], &[0.0]).is_err());
    }

    /// A generator q = N(0, 1.5²) and a two-state target e^{−u} = e^{−3}[0.7 N(−1.5, 0.5²) +
    /// 0.3 N(1.5, 0.5²)], states x < 0 and x ≥ 0, data drawn within each state: BAR gives each
    /// state's f = −ln Z_s (absolute, since q is normalised) and their difference.
    #[test]
    fn bar_state_free_energies_equal_the_exact_state_masses() {
        let mut rng = RandomStreams::new(4).stream("bar.states");
        let gauss = |x: f64, m: f64, s: f64| {
            (-(x - m).powi(2) / (2.0 * s * s)).exp() / (s * (2.0 * std::f64::consts::PI).sqrt())
        };
        let u = |x: f64| 3.0 - (0.7 * gauss(x, -1.5, 0.5) + 0.3 * gauss(x, 1.5, 0.5)).ln();
        let ln_q = |x: f64| gauss(x, 0.0, 1.5).ln();
        let state = |x: f64| Some(usize::from(x >= 0.0));
        let xg = normals(50_000, 0.0, 1.5, &mut rng);
        // Data: 4000 points per mode, so the data do not hold the states' true ratio.
        let mut xd = normals(4000, -1.5, 0.5, &mut rng);
        xd.extend(normals(4000, 1.5, 0.5, &mut rng));
        let lw_g: Vec<f64> = xg.iter().map(|&x| -u(x) - ln_q(x)).collect();
        let lw_d: Vec<f64> = xd.iter().map(|&x| -u(x) - ln_q(x)).collect();
        let sg: Vec<Option<usize>> = xg.iter().map(|&x| state(x)).collect();
        let sd: Vec<Option<usize>> = xd.iter().map(|&x| state(x)).collect();
        let fe = bar_state_free_energies(&lw_g, &sg, &lw_d, &sd, 2, 50, &mut rng).unwrap();
        let f = [fe.state(0), fe.state(1)];
        let d = fe.difference(0, 1);
        // Φ(3) = 0.998650101968…; Z_A = e^{−3}(0.7 Φ(3) + 0.3 Φ(−3)), Z_B likewise.
        let phi3 = 0.998_650_101_968;
        let za = (-3f64).exp() * (0.7 * phi3 + 0.3 * (1.0 - phi3));
        let zb = (-3f64).exp() * (0.3 * phi3 + 0.7 * (1.0 - phi3));
        assert!(
            (f[0].value + za.ln()).abs() < 0.03,
            "f_A {} vs {}",
            f[0].value,
            -za.ln()
        );
        assert!(
            (f[1].value + zb.ln()).abs() < 0.03,
            "f_B {} vs {}",
            f[1].value,
            -zb.ln()
        );
        let exact = -(zb / za).ln();
        // q = N(0, 1.5²), restricted to a state, overlaps it well.
        assert!(
            fe.overlap.iter().all(|&o| o > 0.2 && o < 0.5),
            "{:?}",
            fe.overlap
        );
        assert!(d.std_error > 0.0 && d.std_error < 0.05, "{}", d.std_error);
        assert!(
            f[1].std_error > 0.0 && f[1].std_error < 0.05,
            "{}",
            f[1].std_error
        );
        assert!(
            (d.value - exact).abs() < 4.0 * d.std_error + 0.01,
            "ΔF {} vs {exact}",
            d.value
        );
        // No data in a state: that state falls back to importance sampling.
        let none: Vec<Option<usize>> = sd.iter().map(|s| s.filter(|&v| v == 0)).collect();
        let g = bar_state_free_energies(&lw_g, &sg, &lw_d, &none, 2, 0, &mut rng).unwrap();
        assert!(
            (g.values[1] + zb.ln()).abs() < 0.05,
            "IS f_B {}",
            g.values[1]
        );
    }

    /// Ten populations of 100 copies each (as resampling leaves them): 4 in state B, 6 in A.
    /// Resampling single samples treats the 1000 as independent and gives the binomial error
    /// of 1000 draws, √(1/(1000·0.24)) = 0.065 in ΔF; resampling whole populations gives that of
    /// 10, ten times larger (the delta method: 0.65).
    #[test]
    fn a_block_bootstrap_resamples_whole_populations() {
        let state: Vec<Option<bool>> = (0..1000).map(|i| Some(i / 100 < 4)).collect();
        let log_w = vec![0.0; 1000];
        let mut rng = boltzflow_core::RandomStreams::new(6).stream("blocks");
        let by_sample = delta_f(&log_w, &state, 2000, &mut rng).unwrap();
        let blocks = Bootstrap {
            replicates: 2000,
            blocks: Some(10),
        };
        let by_block = delta_f(&log_w, &state, blocks, &mut rng).unwrap();
        assert!((by_sample.value - (1.5f64).ln()).abs() < 1e-12);
        assert_eq!(by_block.value, by_sample.value);
        assert!(
            (by_sample.std_error - 0.065).abs() < 0.01,
            "{}",
            by_sample.std_error
        );
        assert!(
            by_block.std_error > 0.5 && by_block.std_error < 0.9,
            "{}",
            by_block.std_error
        );
        // A resample of blocks covers whole blocks: 10 draws of 100 contiguous indices.
        let mut idx = Vec::new();
        blocks.resample(1000, &mut rng, &mut idx);
        assert_eq!(idx.len(), 1000);
        assert!(
            idx.chunks(100)
                .all(|c| c[0] % 100 == 0 && c.windows(2).all(|w| w[1] == w[0] + 1))
        );
        // Unequal blocks (1003 samples in 10) still cover every index once per draw of each.
        blocks.resample(1003, &mut rng, &mut idx);
        assert!(idx.iter().all(|&i| i < 1003));
    }

    #[test]
    fn effective_lineages_count_copies_once() {
        // Equal weights, ancestors 0, 0, 1, 2: lineage weights 2, 1, 1 → 16 / 6.
        let log_w = [0.0; 4];
        let n = effective_lineages(&log_w, &[0, 0, 1, 2], |_| true);
        assert!((n - 16.0 / 6.0).abs() < 1e-12, "{n}");
        assert_eq!(effective_count(&log_w, |_| true), 4.0);
        // Distinct ancestors: Kish's count itself; zero weights and `keep` as there.
        let lw = [0.3, -1.0, f64::NEG_INFINITY, 2.0];
        for keep in [|_: usize| true, |i: usize| i != 3] {
            let a = effective_lineages(&lw, &[3, 1, 0, 2], keep);
            let b = effective_count(&lw, keep);
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        assert_eq!(effective_lineages(&lw, &[0, 1, 2, 3], |i| i == 2), 0.0);
    }
}
