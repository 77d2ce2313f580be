//! Annealed importance sampling (Neal, Stat. Comput. 11, 125 (2001)) from a trained generator
//! to the Boltzmann distribution, in the generator's latent space.
//!
//! Plain importance weights w = e^{−u(x)}/q(x) of a generator in many dimensions are
//! dominated by a handful of samples (the dimer bath: ESS 5·10⁻⁵ of 2·10⁵). AIS bridges q and
//! the target with T intermediate distributions and lets Markov moves carry every sample part
//! of the way, so that each step's weight increment is small. Working in latent space keeps
//! the moves simple: the target pulled back through the flow F is
//!
//! E_z(z) = u(F(z)) − log|det J_zx(z)|,
//!
//! the prior is U_p(z) = −log p_Z(z) (normalised), and level t has the energy
//! E_t = (1 − β_t) U_p + β_t E_z with β₀ = 0 < β₁ < … < β_T = 1. Starting from exact prior
//! samples z₀, each level adds (β_t − β_{t−1})(U_p(z) − E_z(z)) to the log-weight and then moves
//! z by random-walk Metropolis steps that leave E_t invariant. Without moves the log-weights are
//! the plain ones, −u(x) − log q(x); with moves they stay unbiased (E[w] = Z = ∫e^{−u}) and
//! their variance falls as the levels get finer.
//!
//! Metropolis in z needs no gradients of the flow (the generator need not be differentiable in
//! its input); its width adapts between levels towards an acceptance of 0.3 (from the previous
//! level's acceptance over all samples, as adaptive SMC samplers do).
//!
//! With [`Resampling`] AIS becomes a sequential Monte Carlo sampler (Del Moral, Doucet &
//! Jasra, J. R. Stat. Soc. B 68, 411 (2006)): whenever the Kish ESS of a population's weights
//! falls below a threshold after a weight increment, the population is resampled
//! (systematically) in proportion to its weights, every member's log-weight becomes the
//! population's running ln Ẑ, and the moves that follow spread the copies apart again. Samples
//! whose weights have collapsed stop costing moves, and the final weights stay unbiased for Z.
//! Copies share ancestors, so error bars must resample whole populations
//! ([`crate::reweight::Bootstrap`] by blocks), which is why the samples form several
//! independent populations.

use boltzflow_core::{ChainRng, Energy, Error, Result};
use boltzflow_nn::distributions::LatentPrior;
use ndarray::Array2;
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};

use crate::generator::BoltzmannGenerator;

/// The Markov move at every level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AisKernel {
    /// Gaussian random-walk Metropolis in z (no gradients; width adapted towards acceptance 0.3).
    Metropolis,
    /// Hamiltonian Monte Carlo in z with unit mass and this many leapfrog steps per move
    /// (gradients by the flow's backward pass; step adapted towards acceptance 0.65), as FAB's
    /// AIS uses (Midgley et al., ICLR 2023).
    Hmc {
        /// Leapfrog steps per move.
        leapfrog: usize,
    },
}

/// The annealing schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AisSchedule {
    /// Intermediate distributions T (β_t = (t/T)^`exponent`).
    pub levels: usize,
    /// Moves at each level.
    pub steps_per_level: usize,
    /// Initial step in z: the Metropolis width or the leapfrog step (adapted between levels).
    pub step: f64,
    /// Exponent of the β schedule (1: linear; larger: finer steps near the prior).
    pub exponent: f64,
    /// The move.
    pub kernel: AisKernel,
    /// Resampling between levels (sequential Monte Carlo), or `None` for plain AIS.
    pub resampling: Option<Resampling>,
}

/// Adaptive resampling of AIS populations (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resampling {
    /// A population is resampled when the Kish ESS fraction of its weights falls below this,
    /// in (0, 1] (1: after every level).
    pub threshold: f64,
    /// Independent populations: the samples are cut into this many contiguous groups of
    /// near-equal size (group g holds samples g·n/P .. (g+1)·n/P), each resampled within
    /// itself only.
    pub populations: usize,
    /// Start from a pool of this many generator samples instead of n (0: no pool). The pool is
    /// cut into the populations' sub-pools, and each population draws its members from its
    /// own sub-pool by importance resampling towards the level β* at which the pool still
    /// holds [`POOL_ESS_PER_SAMPLE`] effective samples per member; the levels then anneal
    /// from β* to 1. Flow samples are cheap next to moves, so the first part of the path
    /// (clashes and the bulk of the generator's misfit) is done by plain importance sampling
    /// over many samples, and every level's moves go where the weights change fastest.
    /// Sequential Boltzmann generators (Tan et al., ICML 2025) start their SMC the same way.
    pub pool: usize,
}

/// A pool start ([`Resampling::pool`]) anneals from the largest β* at which the pool's Kish
/// ESS is at least this many times the samples drawn from it: resampling n members from m ≥ 4n
/// effective ones leaves most of them distinct (a Poisson draw of mean ≤ ¼ per pool member).
pub const POOL_ESS_PER_SAMPLE: f64 = 4.0;

/// Samples with their AIS log-weights.
#[derive(Debug, Clone)]
pub struct AisSamples {
    /// Configurations `[n, dim]` in the flow's coordinates.
    pub x: Array2<f64>,
    /// Unnormalised log-weights for exp(−u(x)), `[n]` (−∞ where a sample hit an infinite energy).
    pub log_w: Vec<f64>,
    /// Acceptance over all levels.
    pub acceptance: f64,
    /// Target energy evaluations: n·(1 + levels·steps_per_level·(leapfrog steps, 1 for
    /// Metropolis)).
    pub energy_evaluations: u64,
    /// One entry per level, after its weight increment and its moves: where along the
    /// schedule the weights degenerate, and how the moves fared.
    pub trace: Vec<AisLevel>,
    /// For every sample, the initial sample it descends from (itself without resampling).
    pub ancestors: Vec<usize>,
    /// Independent populations the samples form (1 without resampling): the blocks of a
    /// bootstrap.
    pub populations: usize,
}

impl AisSamples {
    /// Number of distinct initial samples with descendants among the final ones.
    pub fn distinct_ancestors(&self) -> usize {
        let mut a = self.ancestors.clone();
        a.sort_unstable();
        a.dedup();
        a.len()
    }
}

/// The state of an AIS run after one level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AisLevel {
    /// The level t (1..=T; 0 for a pool start's importance resampling).
    pub level: usize,
    /// β_t of the level.
    pub beta: f64,
    /// Kish ESS fraction of the log-weights so far (for level t's distribution; with
    /// resampling, of the weights since each population's last resampling, before this
    /// level's).
    pub ess_fraction: f64,
    /// The 10–90 % range of the log-weights so far (nats; −∞ for samples lost to infinite
    /// energies counts as the lowest): the spread a handful of clashing samples would hide
    /// in a standard deviation.
    pub log_w_range: f64,
    /// Acceptance of this level's moves (NaN without moves).
    pub acceptance: f64,
    /// The step the level's moves used (before adaptation).
    pub step: f64,
    /// Populations resampled at this level (0 without resampling).
    pub resampled: usize,
}

impl AisLevel {
    fn new(level: usize, beta: f64, log_w: &[f64], acceptance: f64, step: f64) -> Self {
        let mut sorted = log_w.to_vec();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| match sorted.len() {
            0 => f64::NAN,
            n => sorted[(q * (n - 1) as f64).round() as usize],
        };
        Self {
            level,
            beta,
            // NaN weights are an error before this point; all −∞ reads as 0.
            ess_fraction: crate::reweight::ess_fraction(log_w).unwrap_or(0.0),
            log_w_range: at(0.9) - at(0.1),
            acceptance,
            step,
            resampled: 0,
        }
    }
}

/// The samples' latent points with their energies (and gradients for HMC).
struct Particles {
    z: Vec<f32>,
    x: Array2<f64>,
    /// E_z = u(F(z)) − log|det J_zx(z)|.
    e_z: Vec<f64>,
    /// U_p = −log p_Z(z).
    u_p: Vec<f64>,
    /// ∇_z E_z, row-major (empty for Metropolis).
    grad: Vec<f64>,
}

/// Evaluates `z` (with gradients if `with_grad`). A NaN energy is an error naming `what`,
/// unless `divergence_ok` (inside an HMC trajectory), where it becomes +∞.
fn evaluate(
    bg: &mut BoltzmannGenerator,
    energy: &dyn Energy,
    z: Vec<f32>,
    with_grad: bool,
    divergence_ok: bool,
    what: &dyn Fn() -> String,
) -> Result<Particles> {
    let d = bg.dim();
    let (x, e_z, grad) = if with_grad {
        bg.latent_energy_and_gradient(energy, &z)?
    } else {
        let (x, ld) = bg.push_forward(&z);
        let u = energy.energy(x.view())?;
        let e_z = u.iter().zip(&ld).map(|(u, l)| u - l).collect();
        (x, e_z, Vec::new())
    };
    let (mut e_z, mut grad) = (e_z, grad);
    if divergence_ok {
        // Along an HMC trajectory a NaN (or a non-finite gradient) is a divergence: the state
        // gets infinite energy and the trajectory is rejected.
        for (i, e) in e_z.iter_mut().enumerate() {
            let row = grad.get_mut(i * d..(i + 1) * d).unwrap_or(&mut []);
            if e.is_nan() || row.iter().any(|g| !g.is_finite()) {
                *e = f64::INFINITY;
                row.fill(0.0);
            }
        }
    }
    if let Some(i) = e_z.iter().position(|v| v.is_nan()) {
        return Err(Error::NonFinite {
            what: "energy".into(),
            location: format!("{}, sample {i}", what()),
            value: f64::NAN,
        });
    }
    let prior = bg.prior();
    let u_p = z.chunks_exact(d).map(|r| prior.energy(r)).collect();
    Ok(Particles {
        z,
        x,
        e_z,
        u_p,
        grad,
    })
}

/// Keeps the proposal of every sample where `accept` holds.
fn take(cur: &mut Particles, new: &Particles, accept: &[bool], d: usize) {
    for (i, _) in accept.iter().enumerate().filter(|(_, a)| **a) {
        cur.z[i * d..(i + 1) * d].copy_from_slice(&new.z[i * d..(i + 1) * d]);
        cur.x.row_mut(i).assign(&new.x.row(i));
        cur.e_z[i] = new.e_z[i];
        cur.u_p[i] = new.u_p[i];
        if !cur.grad.is_empty() {
            cur.grad[i * d..(i + 1) * d].copy_from_slice(&new.grad[i * d..(i + 1) * d]);
        }
    }
}

/// Wraps the prior's periodic latent coordinates into [−π, π).
fn wrap(z: &mut [f32], prior: &LatentPrior) {
    let d = prior.dim();
    if (0..d).any(|k| prior.is_periodic(k)) {
        let two_pi = std::f32::consts::TAU;
        for (k, v) in z.iter_mut().enumerate() {
            if prior.is_periodic(k % d) {
                *v = (*v + std::f32::consts::PI).rem_euclid(two_pi) - std::f32::consts::PI;
            }
        }
    }
}

/// Metropolis test of every sample: accept where log u < −ΔE (NaN ΔE rejects; a move away
/// from an infinite energy to a finite one accepts).
fn metropolis_accept(delta: impl Iterator<Item = f64>, rng: &mut ChainRng) -> Vec<bool> {
    delta
        .map(|de| {
            let log_a = -de;
            log_a >= 0.0 || rng.random::<f64>().ln() < log_a
        })
        .collect()
}

/// The contiguous sample range of population `g` of `populations` over `n` samples.
fn population(g: usize, populations: usize, n: usize) -> std::ops::Range<usize> {
    g * n / populations..(g + 1) * n / populations
}

/// Systematic resampling of `k` indices in proportion to `w` (non-negative weights in any
/// units, not all zero; [`crate::trainer::systematic_resample`]).
fn systematic(w: &[f64], k: usize, rng: &mut ChainRng) -> Vec<usize> {
    let s1: f64 = w.iter().sum();
    let normalised: Vec<f64> = w.iter().map(|v| v / s1).collect();
    crate::trainer::systematic_resample(&normalised, k, rng)
}

/// The start of a pooled run ([`Resampling::pool`]): the members with their log-weights at
/// β*, the pool indices they were drawn from, and the pool's trace entry.
struct PoolStart {
    beta: f64,
    particles: Particles,
    log_w: Vec<f64>,
    ancestors: Vec<usize>,
    level: AisLevel,
}

/// Draws `r.pool` samples from the prior (in batches), finds β*, the largest β in [0, 1] at
/// which the Kish ESS of the pool's weights e^{β ℓ} (ℓ = U_p − E_z, the plain log-weight) is at
/// least [`POOL_ESS_PER_SAMPLE`]·n, and fills every population from its own sub-pool (pool
/// samples g·m/P .. (g+1)·m/P) by systematic resampling; each member's log-weight is its
/// sub-pool's ln Ẑ(β*) = ln mean e^{β* ℓ}, an unbiased estimate of the level's normaliser
/// (the prior is normalised), so the run's final weights stay unbiased for Z.
fn pool_start(
    bg: &mut BoltzmannGenerator,
    energy: &dyn Energy,
    n: usize,
    r: Resampling,
    with_grad: bool,
    step: f64,
    rng: &mut ChainRng,
) -> Result<PoolStart> {
    const BATCH: usize = 8192;
    let (d, m) = (bg.dim(), r.pool);
    let prior = bg.prior();
    let mut z = vec![0.0f32; m * d];
    let mut ell = Vec::with_capacity(m);
    for (b, batch) in z.chunks_mut(BATCH * d).enumerate() {
        prior.sample_into(rng, batch);
        let what = || format!("AIS pool, samples {}..", b * BATCH);
        let q = evaluate(bg, energy, batch.to_vec(), false, false, &what)?;
        ell.extend(q.u_p.iter().zip(&q.e_z).map(|(up, ez)| up - ez));
    }
    // −∞ (an infinite energy) stays −∞ at every β, weight 0.
    let tempered = |b: f64| -> Vec<f64> {
        ell.iter()
            .map(|&l| if l.is_finite() { b * l } else { l })
            .collect()
    };
    if !ell.iter().any(|l| l.is_finite()) {
        return Err(Error::NonFinite {
            what: "energy".into(),
            location: format!("all {m} samples of the AIS pool"),
            value: f64::INFINITY,
        });
    }
    let target = POOL_ESS_PER_SAMPLE * n as f64;
    let ess = |b: f64| crate::reweight::effective_count(&tempered(b), |_| true);
    let beta = if ess(1.0) >= target {
        1.0
    } else {
        // The ESS falls as β rises (the weights' spread grows): bisection to ~10⁻¹².
        let (mut lo, mut hi) = (0.0, 1.0);
        for _ in 0..40 {
            let mid = 0.5 * (lo + hi);
            if ess(mid) >= target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    };
    let lw = tempered(beta);
    let (mut chosen, mut log_w) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for g in 0..r.populations {
        let sub = population(g, r.populations, m);
        let k = population(g, r.populations, n).len();
        let sub_lw = &lw[sub.clone()];
        let top = sub_lw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !top.is_finite() {
            // No finite weight in this sub-pool: its members carry weight 0.
            chosen.extend(sub.take(k));
            log_w.extend(std::iter::repeat_n(f64::NEG_INFINITY, k));
            continue;
        }
        let w: Vec<f64> = sub_lw.iter().map(|l| (l - top).exp()).collect();
        let ln_z = top + (w.iter().sum::<f64>() / w.len() as f64).ln();
        chosen.extend(systematic(&w, k, rng).into_iter().map(|j| sub.start + j));
        log_w.extend(std::iter::repeat_n(ln_z, k));
    }
    let members: Vec<f32> = chosen
        .iter()
        .flat_map(|&i| z[i * d..(i + 1) * d].iter().copied())
        .collect();
    let particles = evaluate(bg, energy, members, with_grad, false, &|| {
        "AIS pool start".into()
    })?;
    let mut level = AisLevel::new(0, beta, &lw, f64::NAN, step);
    level.resampled = r.populations;
    Ok(PoolStart {
        beta,
        particles,
        log_w,
        ancestors: chosen,
        level,
    })
}

/// Resamples every population whose Kish ESS fraction is below `r.threshold`: systematic
/// resampling (one uniform per population) of its members in proportion to their weights,
/// after which each member's log-weight is the population's ln Ẑ (the log-mean of its weights).
/// A population whose weights are all zero is left alone. Returns the populations resampled.
fn resample(
    p: &mut Particles,
    log_w: &mut [f64],
    ancestors: &mut Vec<usize>,
    r: Resampling,
    rng: &mut ChainRng,
) -> usize {
    let n = log_w.len();
    let d = p.z.len() / n.max(1);
    let mut source: Vec<usize> = (0..n).collect();
    let mut resampled = 0;
    for g in 0..r.populations {
        let range = population(g, r.populations, n);
        let lw = &mut log_w[range.clone()];
        let m = lw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lw.is_empty() || !m.is_finite() {
            continue;
        }
        let w: Vec<f64> = lw.iter().map(|l| (l - m).exp()).collect();
        let k = w.len();
        if crate::reweight::kish(w.iter().copied()) / k as f64 >= r.threshold {
            continue;
        }
        let ln_z = m + (w.iter().sum::<f64>() / k as f64).ln();
        for (src, j) in source[range.clone()].iter_mut().zip(systematic(&w, k, rng)) {
            *src = range.start + j;
        }
        lw.fill(ln_z);
        resampled += 1;
    }
    if resampled > 0 {
        let old_z = p.z.clone();
        let old_grad = p.grad.clone();
        for (i, &s) in source.iter().enumerate() {
            p.z[i * d..(i + 1) * d].copy_from_slice(&old_z[s * d..(s + 1) * d]);
            if !old_grad.is_empty() {
                p.grad[i * d..(i + 1) * d].copy_from_slice(&old_grad[s * d..(s + 1) * d]);
            }
        }
        p.x = p.x.select(ndarray::Axis(0), &source);
        p.e_z = source.iter().map(|&s| p.e_z[s]).collect();
        p.u_p = source.iter().map(|&s| p.u_p[s]).collect();
        *ancestors = source.iter().map(|&s| ancestors[s]).collect();
    }
    resampled
}

/// Runs AIS for `n` samples from the generator's prior (τ = 1) to exp(−u) pulled back into
/// latent space, following `schedule`.
///
/// # Errors
/// [`Error::InvalidParameter`] for a schedule without levels, a non-positive step or exponent,
/// HMC without leapfrog steps, or resampling with a threshold outside (0, 1] or without
/// populations (or more than samples); [`Error::NonFinite`] for a NaN energy (naming the level).
pub fn latent_ais(
    bg: &mut BoltzmannGenerator,
    energy: &dyn Energy,
    n: usize,
    schedule: AisSchedule,
    rng: &mut ChainRng,
) -> Result<AisSamples> {
    let AisSchedule {
        levels,
        steps_per_level,
        mut step,
        exponent,
        kernel,
        resampling,
    } = schedule;
    if let Some(r) = resampling
        && (!(r.threshold > 0.0 && r.threshold <= 1.0) || r.populations == 0 || r.populations > n)
    {
        return Err(Error::invalid(
            "ais",
            format!(
                "resampling needs a threshold in (0, 1] and between 1 and {n} populations; got {} and {}",
                r.threshold, r.populations
            ),
        ));
    }
    if let Some(r) = resampling
        && r.pool > 0
        && (r.pool as f64) < POOL_ESS_PER_SAMPLE * n as f64
    {
        return Err(Error::invalid(
            "ais",
            format!(
                "a pool start needs at least {POOL_ESS_PER_SAMPLE} × {n} samples in the pool, got {}",
                r.pool
            ),
        ));
    }
    let bad_hmc = matches!(kernel, AisKernel::Hmc { leapfrog: 0 });
    let bad_exponent = !(exponent.is_finite() && exponent > 0.0);
    if levels == 0 || !(step > 0.0 && step.is_finite()) || bad_exponent || bad_hmc {
        return Err(Error::invalid(
            "ais",
            format!(
                "need at least one level, a positive step and exponent and (HMC) at least one leapfrog step; got {levels} levels, step {step}, exponent {exponent}, {kernel:?}"
            ),
        ));
    }
    let d = bg.dim();
    let prior = bg.prior();
    let with_grad = matches!(kernel, AisKernel::Hmc { .. });
    let mut trace = Vec::with_capacity(levels + 1);
    let (beta0, mut p, mut log_w, mut ancestors, mut evaluations) =
        match resampling.filter(|r| r.pool > 0) {
            Some(r) => {
                let s = pool_start(bg, energy, n, r, with_grad, step, rng)?;
                trace.push(s.level);
                let evaluations = (r.pool + n) as u64;
                (s.beta, s.particles, s.log_w, s.ancestors, evaluations)
            }
            None => {
                let mut z = vec![0.0f32; n * d];
                prior.sample_into(rng, &mut z);
                let p = evaluate(bg, energy, z, with_grad, false, &|| "AIS start".into())?;
                (0.0, p, vec![0.0; n], (0..n).collect(), n as u64)
            }
        };
    let (mut accepted, mut proposed) = (0u64, 0u64);
    // β_t = β₀ + (1 − β₀)(t/T)^p, exactly 1 at the last level.
    let beta = |t: usize| match t {
        t if t == levels => 1.0,
        t => beta0 + (1.0 - beta0) * (t as f64 / levels as f64).powf(exponent),
    };
    for t in 1..=levels {
        let level_step = step;
        let (b_prev, b) = (beta(t - 1), beta(t));
        for (lw, (up, ez)) in log_w.iter_mut().zip(p.u_p.iter().zip(&p.e_z)) {
            // −∞ · 0 would be NaN: a sample at infinite energy keeps weight 0.
            let inc = (b - b_prev) * (up - ez);
            *lw += if inc.is_nan() { f64::NEG_INFINITY } else { inc };
        }
        // The level's weights before any resampling (the moves do not change them).
        let mut level = AisLevel::new(t, b, &log_w, f64::NAN, level_step);
        if let Some(r) = resampling {
            level.resampled = resample(&mut p, &mut log_w, &mut ancestors, r, rng);
        }
        let level_energy = |u_p: f64, e_z: f64| (1.0 - b) * u_p + b * e_z;
        let mut level_accepted = 0u64;
        for s in 0..steps_per_level {
            let what = || format!("AIS level {t}, move {}", s + 1);
            let accept = match kernel {
                AisKernel::Metropolis => {
                    let mut z_new = p.z.clone();
                    for v in &mut z_new {
                        let e: f64 = StandardNormal.sample(rng);
                        *v += (step * e) as f32;
                    }
                    wrap(&mut z_new, &prior);
                    let new = evaluate(bg, energy, z_new, false, false, &what)?;
                    evaluations += n as u64;
                    let delta = (0..n).map(|i| {
                        level_energy(new.u_p[i], new.e_z[i]) - level_energy(p.u_p[i], p.e_z[i])
                    });
                    let accept = metropolis_accept(delta, rng);
                    take(&mut p, &new, &accept, d);
                    accept
                }
                AisKernel::Hmc { leapfrog } => {
                    let (accept, evals) =
                        hmc_move(bg, energy, &p, b, step, leapfrog, &prior, rng, &what)?;
                    evaluations += evals;
                    take(&mut p, &accept.1, &accept.0, d);
                    accept.0
                }
            };
            level_accepted += accept.iter().filter(|a| **a).count() as u64;
        }
        let mut rate = f64::NAN;
        if steps_per_level > 0 {
            let level_proposed = (n * steps_per_level) as u64;
            rate = level_accepted as f64 / level_proposed as f64;
            let target = if with_grad { 0.65 } else { 0.3 };
            step *= (2.0 * (rate - target)).exp().clamp(0.5, 2.0);
            accepted += level_accepted;
            proposed += level_proposed;
        }
        level.acceptance = rate;
        trace.push(level);
    }
    Ok(AisSamples {
        x: p.x,
        log_w,
        acceptance: if proposed == 0 {
            f64::NAN
        } else {
            accepted as f64 / proposed as f64
        },
        energy_evaluations: evaluations,
        trace,
        ancestors,
        populations: resampling.map_or(1, |r| r.populations),
    })
}

/// One HMC move of every sample at level β: fresh momenta, `leapfrog` steps of size `eps` on
/// E_β = (1 − β) U_p + β E_z, a Metropolis test on the total energy. Returns the acceptances
/// with the proposals, and the energy evaluations used.
#[allow(clippy::too_many_arguments)]
fn hmc_move(
    bg: &mut BoltzmannGenerator,
    energy: &dyn Energy,
    p: &Particles,
    b: f64,
    eps: f64,
    leapfrog: usize,
    prior: &LatentPrior,
    rng: &mut ChainRng,
    what: &dyn Fn() -> String,
) -> Result<((Vec<bool>, Particles), u64)> {
    let d = bg.dim();
    let n = p.e_z.len();
    let precision: Vec<f64> = (0..d).map(|k| prior.precision_of(k)).collect();
    // ∇E_β at a state, row-major.
    let grad_of = |q: &Particles| -> Vec<f64> {
        q.z.iter()
            .zip(&q.grad)
            .enumerate()
            .map(|(k, (&z, &g))| (1.0 - b) * precision[k % d] * f64::from(z) + b * g)
            .collect()
    };
    let mut mom: Vec<f64> = (0..n * d).map(|_| StandardNormal.sample(rng)).collect();
    let kinetic = |m: &[f64]| -> Vec<f64> {
        m.chunks_exact(d)
            .map(|r| 0.5 * r.iter().map(|v| v * v).sum::<f64>())
            .collect()
    };
    let h0: Vec<f64> = kinetic(&mom)
        .iter()
        .enumerate()
        .map(|(i, k)| k + (1.0 - b) * p.u_p[i] + b * p.e_z[i])
        .collect();
    // Positions in f64 along the trajectory; the flow sees them as f32.
    let mut zq: Vec<f64> = p.z.iter().map(|&v| f64::from(v)).collect();
    let mut g = grad_of(p);
    let mut cur: Option<Particles> = None;
    for _ in 0..leapfrog {
        for ((m, gi), zi) in mom.iter_mut().zip(&g).zip(zq.iter_mut()) {
            *m -= 0.5 * eps * gi;
            *zi += eps * *m;
        }
        let mut z32: Vec<f32> = zq.iter().map(|&v| v as f32).collect();
        wrap(&mut z32, prior);
        zq.iter_mut()
            .zip(&z32)
            .for_each(|(a, &b)| *a = f64::from(b));
        let q = evaluate(bg, energy, z32, true, true, what)?;
        g = grad_of(&q);
        for (m, gi) in mom.iter_mut().zip(&g) {
            *m -= 0.5 * eps * gi;
        }
        cur = Some(q);
    }
    let q = cur.expect("at least one leapfrog step");
    let h1 = kinetic(&mom);
    let delta = (0..n).map(|i| h1[i] + (1.0 - b) * q.u_p[i] + b * q.e_z[i] - h0[i]);
    let accept = metropolis_accept(delta, rng);
    Ok(((accept, q), (n * leapfrog) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow_spec::FlowSpec;
    use crate::reweight::ess_fraction;
    use boltzflow_core::RandomStreams;
    use boltzflow_systems::build;

    fn generator(dim: usize) -> BoltzmannGenerator {
        let mut rng = RandomStreams::new(4).stream("init");
        BoltzmannGenerator::new(dim, &FlowSpec::default(), 1.0, &mut rng).unwrap()
    }

    /// The weighted samples of `gaussian2d` (N((−3, −3), I), normalised): ln Z within `tol_ln_z`
    /// of 0 and the mean of each coordinate within `tol_mean` of −3.
    fn assert_gaussian2d(s: &AisSamples, tol_ln_z: f64, tol_mean: f64) {
        let lz = ln_z(&s.log_w);
        assert!(lz.abs() < tol_ln_z, "ln Z = {lz}");
        let w = crate::reweight::normalised_weights(&s.log_w).unwrap();
        for c in 0..2 {
            let mean: f64 = w.iter().zip(s.x.column(c)).map(|(w, x)| w * x).sum();
            assert!((mean + 3.0).abs() < tol_mean, "coordinate {c}: mean {mean}");
        }
    }

    /// ln Z from AIS weights: ln mean w (the prior is normalised).
    fn ln_z(log_w: &[f64]) -> f64 {
        let m = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean = log_w.iter().map(|l| (l - m).exp()).sum::<f64>() / log_w.len() as f64;
        m + mean.ln()
    }

    #[test]
    fn without_moves_the_weights_are_the_plain_importance_weights() {
        let system = build("double-well").unwrap();
        let mut bg = generator(2);
        let schedule = AisSchedule {
            levels: 5,
            steps_per_level: 0,
            step: 0.1,
            exponent: 1.0,
            kernel: AisKernel::Metropolis,
            resampling: None,
        };
        let s = latent_ais(
            &mut bg,
            system.as_ref(),
            64,
            schedule,
            &mut RandomStreams::new(1).stream("ais"),
        )
        .unwrap();
        let u = system.energy(s.x.view()).unwrap();
        let log_q = bg.log_density(&s.x, 64);
        for i in 0..64 {
            let plain = -u[i] - log_q[i];
            assert!(
                (s.log_w[i] - plain).abs() < 1e-4 * (1.0 + plain.abs()),
                "sample {i}: {} vs {plain}",
                s.log_w[i]
            );
        }
        assert_eq!(s.energy_evaluations, 64);
    }

    #[test]
    fn ais_from_an_untrained_generator_recovers_ln_z_and_the_mean() {
        // gaussian2d is N((−3, −3), I) as a normalised density: ln Z = 0. The untrained
        // generator sits near the origin, 4.2 σ away: plain importance sampling has almost no
        // effective samples, AIS with 100 levels most of them.
        let system = build("gaussian2d").unwrap();
        let mut bg = generator(2);
        let n = 4000;
        let plain = latent_ais(
            &mut bg,
            system.as_ref(),
            n,
            AisSchedule {
                levels: 1,
                steps_per_level: 0,
                step: 0.5,
                exponent: 1.0,
                kernel: AisKernel::Metropolis,
                resampling: None,
            },
            &mut RandomStreams::new(2).stream("plain"),
        )
        .unwrap();
        let annealed = latent_ais(
            &mut bg,
            system.as_ref(),
            n,
            AisSchedule {
                levels: 100,
                steps_per_level: 3,
                step: 0.5,
                exponent: 1.0,
                kernel: AisKernel::Metropolis,
                resampling: None,
            },
            &mut RandomStreams::new(2).stream("ais"),
        )
        .unwrap();
        let ess_plain = ess_fraction(&plain.log_w).unwrap();
        let ess_ais = ess_fraction(&annealed.log_w).unwrap();
        assert!(ess_ais > 0.5, "AIS ESS {ess_ais}");
        assert!(
            ess_ais > 20.0 * ess_plain,
            "AIS {ess_ais} vs plain {ess_plain}"
        );
        assert_gaussian2d(&annealed, 0.05, 0.05);
        assert_eq!(annealed.energy_evaluations, (n * (1 + 300)) as u64);
        assert!(annealed.acceptance > 0.1 && annealed.acceptance < 0.6);
        // The trace: one entry per level, β rising to 1, the last ESS the final weights'; the
        // single plain level without moves has no acceptance and the plain spread.
        let trace = &annealed.trace;
        assert_eq!(trace.len(), 100);
        assert!(trace.windows(2).all(|w| w[1].beta > w[0].beta));
        assert_eq!(trace[99].beta, 1.0);
        assert!((trace[99].ess_fraction - ess_ais).abs() < 1e-12);
        let mean_acceptance = trace.iter().map(|l| l.acceptance).sum::<f64>() / 100.0;
        assert!((mean_acceptance - annealed.acceptance).abs() < 1e-12);
        let p = plain.trace[0];
        assert!(p.acceptance.is_nan() && (p.ess_fraction - ess_plain).abs() < 1e-12);
        let mut sorted = plain.log_w.clone();
        sorted.sort_by(f64::total_cmp);
        let range = sorted[(0.9f64 * (n - 1) as f64).round() as usize]
            - sorted[(0.1f64 * (n - 1) as f64).round() as usize];
        assert_eq!(p.log_w_range, range);
        assert!(trace[99].log_w_range < 0.5 * range, "{trace:?}");
    }

    #[test]
    fn the_latent_gradient_equals_finite_differences() {
        // f64 generator with a RealNVP flow (random, not identity) on the double well.
        let system = build("double-well").unwrap();
        let mut rng = RandomStreams::new(8).stream("init");
        let mut bg =
            BoltzmannGenerator::<f64>::new(2, &FlowSpec::default(), 1.0, &mut rng).unwrap();
        let z = vec![0.3, -0.7, -1.1, 0.4, 0.05, 1.6];
        let (_, e, g) = bg.latent_energy_and_gradient(system.as_ref(), &z).unwrap();
        let h = 1e-6;
        for k in 0..z.len() {
            let mut zp = z.clone();
            zp[k] += h;
            let mut zm = z.clone();
            zm[k] -= h;
            let ep = bg
                .latent_energy_and_gradient(system.as_ref(), &zp)
                .unwrap()
                .1;
            let em = bg
                .latent_energy_and_gradient(system.as_ref(), &zm)
                .unwrap()
                .1;
            let fd = (ep[k / 2] - em[k / 2]) / (2.0 * h);
            assert!(
                (fd - g[k]).abs() < 1e-6 * (1.0 + fd.abs()),
                "z[{k}]: gradient {} vs finite difference {fd}",
                g[k]
            );
        }
        // E_z is u(x) − log|det J| of the pushed-forward rows.
        let (x, ld) = bg.push_forward(&z);
        let u = system.energy(x.view()).unwrap();
        for i in 0..3 {
            assert!((e[i] - (u[i] - ld[i])).abs() < 1e-12);
        }
    }

    #[test]
    fn hmc_ais_from_an_untrained_generator_recovers_ln_z_and_the_mean() {
        let system = build("gaussian2d").unwrap();
        let mut bg = generator(2);
        let n = 2000;
        let s = latent_ais(
            &mut bg,
            system.as_ref(),
            n,
            AisSchedule {
                levels: 50,
                steps_per_level: 1,
                step: 0.3,
                exponent: 1.0,
                kernel: AisKernel::Hmc { leapfrog: 5 },
                resampling: None,
            },
            &mut RandomStreams::new(3).stream("hmc"),
        )
        .unwrap();
        let ess = ess_fraction(&s.log_w).unwrap();
        assert!(ess > 0.3, "HMC-AIS ESS {ess}");
        assert_gaussian2d(&s, 0.05, 0.06);
        assert_eq!(s.energy_evaluations, (n * (1 + 50 * 5)) as u64);
        assert!(s.acceptance > 0.4, "acceptance {}", s.acceptance);
    }

    #[test]
    fn a_bad_schedule_is_refused() {
        let system = build("double-well").unwrap();
        let mut bg = generator(2);
        let mut rng = RandomStreams::new(1).stream("ais");
        for (levels, step, exponent, kernel) in [
            (0, 0.1, 1.0, AisKernel::Metropolis),
            (5, 0.0, 1.0, AisKernel::Metropolis),
            (5, 0.1, f64::NAN, AisKernel::Metropolis),
            (5, 0.1, 1.0, AisKernel::Hmc { leapfrog: 0 }),
        ] {
            let s = AisSchedule {
                levels,
                steps_per_level: 1,
                step,
                exponent,
                kernel,
                resampling: None,
            };
            assert!(latent_ais(&mut bg, system.as_ref(), 4, s, &mut rng).is_err());
        }
    }

    #[test]
    fn systematic_resampling_copies_in_proportion_to_the_weights() {
        // Two populations of four; the first degenerate (weights 2:1:1:0), the second even.
        let d = 2;
        let z: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let mut p = Particles {
            x: Array2::from_shape_fn((8, d), |(i, k)| (i * d + k) as f64),
            z,
            e_z: (0..8).map(|i| i as f64).collect(),
            u_p: (0..8).map(|i| -(i as f64)).collect(),
            grad: (0..16).map(|v| 0.5 * v as f64).collect(),
        };
        let l2 = 2f64.ln();
        let mut log_w = vec![l2, 0.0, 0.0, f64::NEG_INFINITY, 1.0, 1.0, 1.0, 1.0];
        let mut ancestors: Vec<usize> = (0..8).collect();
        let r = Resampling {
            threshold: 0.9,
            populations: 2,
            pool: 0,
        };
        let mut rng = RandomStreams::new(5).stream("resample");
        assert_eq!(resample(&mut p, &mut log_w, &mut ancestors, r, &mut rng), 1);
        // Systematic resampling gives every sample ⌊4w⌋ or ⌈4w⌉ copies: here exactly 2, 1, 1, 0.
        let mut first = ancestors[..4].to_vec();
        first.sort_unstable();
        assert_eq!(first, vec![0, 0, 1, 2]);
        assert_eq!(&ancestors[4..], &[4, 5, 6, 7]);
        // Each population's ln Ẑ: ln((2 + 1 + 1 + 0)/4) = 0 for the first, 1 for the second.
        assert!(log_w[..4].iter().all(|l| l.abs() < 1e-12), "{log_w:?}");
        assert_eq!(&log_w[4..], &[1.0; 4]);
        // Every field of a copy comes from its ancestor.
        for (i, &a) in ancestors.iter().enumerate() {
            assert_eq!(p.e_z[i], a as f64);
            assert_eq!(p.u_p[i], -(a as f64));
            assert_eq!(p.x[[i, 1]], (a * d + 1) as f64);
            assert_eq!(p.z[i * d + 1], (a * d + 1) as f32);
            assert_eq!(p.grad[i * d], 0.5 * (a * d) as f64);
        }
        // Even weights (ESS 1) are left alone at any threshold below 1.
        assert_eq!(resample(&mut p, &mut log_w, &mut ancestors, r, &mut rng), 0);
    }

    #[test]
    fn resampling_ais_recovers_ln_z_and_the_mean_with_few_levels() {
        // As the plain test above, with a fifth of the levels: resampling after every level
        // whose ESS falls below ½, in 8 independent populations.
        let system = build("gaussian2d").unwrap();
        let mut bg = generator(2);
        let n = 4000;
        let schedule = |resampling| AisSchedule {
            levels: 20,
            steps_per_level: 3,
            step: 0.5,
            exponent: 1.0,
            kernel: AisKernel::Metropolis,
            resampling,
        };
        let r = Resampling {
            threshold: 0.5,
            populations: 8,
            pool: 0,
        };
        let smc = latent_ais(
            &mut bg,
            system.as_ref(),
            n,
            schedule(Some(r)),
            &mut RandomStreams::new(2).stream("smc"),
        )
        .unwrap();
        assert_gaussian2d(&smc, 0.05, 0.05);
        // Populations were resampled, copies share ancestors, and ancestors stay inside their
        // population.
        let resampled: usize = smc.trace.iter().map(|l| l.resampled).sum();
        assert!(resampled >= 8, "{resampled} resamplings");
        assert!(smc.distinct_ancestors() < n, "{}", smc.distinct_ancestors());
        assert_eq!(smc.populations, 8);
        for g in 0..8 {
            let range = population(g, 8, n);
            assert!(
                smc.ancestors[range.clone()]
                    .iter()
                    .all(|a| range.contains(a))
            );
        }
        // The same schedule without resampling keeps every ancestor.
        let ais = latent_ais(
            &mut bg,
            system.as_ref(),
            n,
            schedule(None),
            &mut RandomStreams::new(2).stream("smc"),
        )
        .unwrap();
        assert_eq!(ais.distinct_ancestors(), n);
        assert!(ais.trace.iter().all(|l| l.resampled == 0));
        // A threshold outside (0, 1] or more populations than samples is refused.
        for bad in [(0.0, 2), (1.5, 2), (0.5, 0), (0.5, n + 1)] {
            let r = Resampling {
                threshold: bad.0,
                populations: bad.1,
                pool: 0,
            };
            let e = latent_ais(
                &mut bg,
                system.as_ref(),
                n,
                schedule(Some(r)),
                &mut RandomStreams::new(2).stream("smc"),
            );
            assert!(e.is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_pool_start_anneals_from_where_the_pool_runs_out_of_samples() {
        // The untrained generator against gaussian2d (ln Z = 0, mean (−3, −3)), as above: a
        // pool of 64 000 generator samples starts 4000 members at β*, and 20 levels of
        // resampling SMC anneal the rest of the way.
        let system = build("gaussian2d").unwrap();
        let mut bg = generator(2);
        let (n, m, levels, populations) = (4000, 64_000, 20, 8);
        let schedule = |pool| AisSchedule {
            levels,
            steps_per_level: 3,
            step: 0.5,
            exponent: 1.0,
            kernel: AisKernel::Metropolis,
            resampling: Some(Resampling {
                threshold: 0.5,
                populations,
                pool,
            }),
        };
        let s = latent_ais(
            &mut bg,
            system.as_ref(),
            n,
            schedule(m),
            &mut RandomStreams::new(6).stream("pool"),
        )
        .unwrap();
        // Within 3 s.d. of the run-to-run spread (over 12 seeds: ln Z −0.002 ± 0.034, the
        // mean −3.001 ± 0.019; without the pool −0.000 ± 0.027 and −2.995 ± 0.020).
        assert_gaussian2d(&s, 0.1, 0.06);
        // The pool's entry comes first: β* strictly inside (0, 1), where the pool's ESS is 4 n
        // (the bisection's end), every population filled; then the levels rise to 1.
        let start = s.trace[0];
        assert_eq!(s.trace.len(), levels + 1);
        assert!(start.beta > 0.0 && start.beta < 1.0, "β* = {}", start.beta);
        let pool_ess = start.ess_fraction * m as f64;
        assert!(
            (pool_ess / (POOL_ESS_PER_SAMPLE * n as f64) - 1.0).abs() < 1e-3,
            "pool ESS {pool_ess}"
        );
        assert_eq!((start.level, start.resampled), (0, populations));
        assert_eq!(s.trace[levels].level, levels);
        assert!(s.trace.windows(2).all(|w| w[1].beta > w[0].beta));
        assert_eq!(s.trace[levels].beta, 1.0);
        // Members descend from their own population's share of the pool.
        for g in 0..populations {
            let sub = population(g, populations, m);
            assert!(
                s.ancestors[population(g, populations, n)]
                    .iter()
                    .all(|a| sub.contains(a))
            );
        }
        assert!(s.distinct_ancestors() > n / 2, "{}", s.distinct_ancestors());
        assert_eq!(s.energy_evaluations, (m + n + n * levels * 3) as u64);
        // A pool smaller than 4 n is refused.
        let small = latent_ais(
            &mut bg,
            system.as_ref(),
            n,
            schedule(4 * n - 1),
            &mut RandomStreams::new(6).stream("pool"),
        );
        assert!(small.is_err());
    }
}
