//! The training loop of a Boltzmann generator: stages of epochs, each epoch a fixed number of
//! Adam steps on w_ml·J_ML + w_kl·J_KL, then a validation NLL and an ESS estimate.
//!
//! Reproducibility and resumption: every epoch draws its random numbers from its own named
//! stream (`train.epoch.{e}`), so a run resumed from the checkpoint after epoch e continues
//! with exactly the numbers an uninterrupted run would have used.

use std::time::Instant;

use boltzflow_core::{ChainRng, Energy, Error, RandomStreams, Result};
use boltzflow_nn::{Adam, AdamConfig, clip_grad_norm};
use ndarray::{Array2, ArrayView2, ArrayViewMut1, ArrayViewMut2};
use rand::RngExt;
use rand::distr::{Distribution, weighted::WeightedIndex};

use crate::config::BgConfig;
use crate::generator::{BoltzmannGenerator, LinLogCut, Objective};
use crate::rc::RcEntropy;
use crate::reweight::ess_fraction;

/// An energy in reduced units: u = β·E (β = 1/k_BT for molecules, 1 for the toy systems).
pub struct Reduced<'a> {
    /// The system's energy in its native unit.
    pub inner: &'a dyn Energy,
    /// The factor β.
    pub beta: f64,
}

impl Energy for Reduced<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn energy_into(&self, x: ArrayView2<f64>, mut out: ArrayViewMut1<f64>) -> Result<()> {
        self.inner.energy_into(x, out.view_mut())?;
        out.mapv_inplace(|e| e * self.beta);
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
        energy.mapv_inplace(|e| e * self.beta);
        forces.mapv_inplace(|f| f * self.beta);
        Ok(())
    }
}

/// Systematic resampling: `n` indices drawn in proportion to `w` (normalised, ≥ 0) with one
/// uniform, each index i appearing ⌊n·wᵢ⌋ or ⌈n·wᵢ⌉ times (Kitagawa, J. Comput. Graph. Stat.
/// 5, 1 (1996)): unbiased, with less variance than multinomial draws.
pub(crate) fn systematic_resample(w: &[f64], n: usize, rng: &mut ChainRng) -> Vec<usize> {
    let u0: f64 = rng.random::<f64>();
    let mut out = Vec::with_capacity(n);
    let mut cum = 0.0;
    let mut i = 0;
    for m in 0..n {
        let target = (m as f64 + u0) / n as f64;
        while i + 1 < w.len() && cum + w[i] < target {
            cum += w[i];
            i += 1;
        }
        out.push(i);
    }
    out
}

/// `moves` Metropolis moves of every row of `x` at exp(−target): each redraws one periodic
/// coordinate (chosen at random) uniformly over its period, a symmetric proposal, so it is
/// accepted with min(1, e^{−Δu}); a NaN energy rejects. Returns the acceptance.
///
/// # Errors
/// [`Error::InvalidParameter`] when no coordinate is periodic; the energy's errors.
pub(crate) fn torsion_jumps(
    x: &mut Array2<f64>,
    target: &dyn Energy,
    periods: &[Option<[f64; 2]>],
    moves: usize,
    rng: &mut ChainRng,
) -> Result<f64> {
    let periodic: Vec<(usize, [f64; 2])> = periods
        .iter()
        .enumerate()
        .filter_map(|(k, p)| p.map(|p| (k, p)))
        .collect();
    if periodic.is_empty() {
        return Err(Error::invalid(
            "self_torsion_jumps",
            "the flow has no periodic coordinate (free torsion) to redraw",
        ));
    }
    let mut u = target.energy(x.view())?;
    let mut accepted = 0usize;
    for _ in 0..moves {
        let mut proposal = x.clone();
        for mut row in proposal.rows_mut() {
            let (k, [lo, hi]) = periodic[rng.random_range(0..periodic.len())];
            row[k] = lo + (hi - lo) * rng.random::<f64>();
        }
        let u_new = target.energy(proposal.view())?;
        for (i, (un, uo)) in u_new.iter().zip(u.iter_mut()).enumerate() {
            let log_a = -(un - *uo);
            // NaN (including ∞ − ∞) rejects.
            if log_a >= 0.0 || rng.random::<f64>().ln() < log_a {
                x.row_mut(i).assign(&proposal.row(i));
                *uo = *un;
                accepted += 1;
            }
        }
    }
    Ok(accepted as f64 / (moves * x.nrows()).max(1) as f64)
}

/// Training and validation rows, f32, row-major.
#[derive(Debug, Clone)]
pub struct TrainData {
    /// Training rows `[n_train, dim]`.
    pub train: Vec<f32>,
    /// Held-out rows `[n_val, dim]`.
    pub validation: Array2<f64>,
    dim: usize,
}

impl TrainData {
    /// No rows.
    fn empty(dim: usize) -> Self {
        Self {
            train: Vec::new(),
            validation: Array2::zeros((0, dim)),
            dim,
        }
    }

    /// Replaces the training rows with `n` samples of the flow importance-weighted to
    /// exp(−target) and resampled in proportion to their weights (the annealing step of TA-BG),
    /// then moved (MALA, torsion jumps) as the stage says; returns the weights' ESS fraction and
    /// the torsion jumps' acceptance (NaN without them).
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the epoch for a NaN energy (+∞ is weight 0); the weights'
    /// errors when every weight is 0.
    fn resample_from(
        &mut self,
        bg: &mut BoltzmannGenerator,
        target: &dyn Energy,
        stage: &crate::config::StageConfig,
        epoch: usize,
        rng: &mut ChainRng,
    ) -> Result<(f64, f64)> {
        let n = stage.self_samples;
        let (x, neg_log_q) = bg.sample(n, 1.0, 4096, rng);
        let u = target.energy(x.view())?;
        if let Some(i) = u.iter().position(|v| v.is_nan()) {
            return Err(Error::NonFinite {
                what: "energy of a generated configuration (self_samples)".into(),
                location: format!("epoch {}, sample {i}", epoch + 1),
                value: u[i],
            });
        }
        let log_w: Vec<f64> = u.iter().zip(&neg_log_q).map(|(u, q)| q - u).collect();
        let w = crate::reweight::normalised_weights(&log_w)
            .map_err(|err| err.context(format!("the own samples of epoch {}", epoch + 1)))?;
        let idx = systematic_resample(&w, n, rng);
        let mut picked = x.select(ndarray::Axis(0), &idx);
        if stage.self_mcmc_steps > 0 {
            // Resample-move: MALA at the target (kT = 1 in its reduced units), one stream per
            // chain derived from this epoch's.
            use boltzflow_core::{Move, SamplerState, ThermodynamicState};
            let seed: u64 = rng.random();
            let streams = RandomStreams::new(seed);
            let rngs = (0..n)
                .map(|c| streams.stream(&format!("self_mcmc.{c}")))
                .collect();
            let mut state = SamplerState::new(picked, target, rngs)
                .map_err(|err| err.context(format!("the own samples of epoch {}", epoch + 1)))?;
            let mut mala =
                boltzflow_mcmc::langevin::OverdampedLangevin::new(stage.self_mcmc_step, 1.0, true)?
                    .with_periods(bg.periods());
            mala.apply(
                &mut state,
                target,
                &ThermodynamicState::reduced(1.0)?,
                stage.self_mcmc_steps as u64,
            )?;
            picked = state.positions;
        }
        let mut jump_acceptance = f64::NAN;
        if stage.self_torsion_jumps > 0 {
            jump_acceptance = torsion_jumps(
                &mut picked,
                target,
                &bg.periods(),
                stage.self_torsion_jumps,
                rng,
            )
            .map_err(|err| err.context(format!("the own samples of epoch {}", epoch + 1)))?;
        }
        self.train.clear();
        self.train.extend(picked.iter().map(|&v| v as f32));
        Ok((ess_fraction(&log_w).unwrap_or(f64::NAN), jump_acceptance))
    }

    /// Shuffles `x` with the run's `data.split` stream and holds out `validation_fraction` of
    /// its rows (for rows that are independent samples).
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the row of a NaN or infinite coordinate.
    pub fn split(
        x: &Array2<f64>,
        validation_fraction: f64,
        streams: &RandomStreams,
    ) -> Result<Self> {
        Self::split_by_chain(x, validation_fraction, x.nrows(), streams)
    }

    /// Holds out `validation_fraction` of the *chains* of frame-major chain output (row
    /// `frame·chains + chain`, as the samplers write it), so the validation rows are independent
    /// of the training rows: frames of one chain are correlated, and a flow that fits some of
    /// them fits the rest too. With one row per chain this is [`TrainData::split`].
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the row of a NaN or infinite coordinate;
    /// [`Error::InvalidParameter`] if the rows are not a whole number of frames.
    pub fn split_by_chain(
        x: &Array2<f64>,
        validation_fraction: f64,
        chains: usize,
        streams: &RandomStreams,
    ) -> Result<Self> {
        if let Some((i, v)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "training data".into(),
                location: format!("row {}", i / x.ncols().max(1)),
                value: *v,
            });
        }
        let n = x.nrows();
        if n > 0 && (chains == 0 || !n.is_multiple_of(chains)) {
            return Err(Error::invalid(
                "data",
                format!("{n} rows are not whole frames of {chains} chains"),
            ));
        }
        let mut order: Vec<usize> = (0..chains).collect();
        let mut rng = streams.stream("data.split");
        for i in (1..chains).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        let rows = |chain_set: &[usize]| -> Vec<usize> {
            chain_set
                .iter()
                .flat_map(|&c| (c..n).step_by(chains))
                .collect()
        };
        let n_val = ((chains as f64) * validation_fraction).round() as usize;
        if validation_fraction > 0.0 && n_val == 0 {
            return Err(Error::invalid(
                "data.validation_fraction",
                format!(
                    "{validation_fraction} of {chains} chains holds out no whole chain (frames of one chain are correlated, so chains are held out whole); use at least {:.3}, or 0 for no validation",
                    0.5 / chains as f64
                ),
            ));
        }
        let validation = x.select(ndarray::Axis(0), &rows(&order[..n_val]));
        let train = rows(&order[n_val..])
            .into_iter()
            .flat_map(|i| x.row(i).iter().map(|&v| v as f32).collect::<Vec<_>>())
            .collect();
        Ok(Self {
            train,
            validation,
            dim: x.ncols(),
        })
    }

    /// Training rows.
    pub fn n_train(&self) -> usize {
        self.train.len() / self.dim.max(1)
    }
}

/// One row of metrics.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRecord {
    /// Global epoch, counted from 1.
    pub epoch: usize,
    /// Stage name.
    pub stage: String,
    /// Learning rate used.
    pub lr: f64,
    /// Mean J_ML over the epoch's steps (NaN if not trained).
    pub nll: f64,
    /// Mean J_KL (NaN if not trained).
    pub kl: f64,
    /// Mean reduced energy of generated samples (NaN if not trained).
    pub energy: f64,
    /// Mean over the steps of the batch's median reduced energy (NaN if not trained).
    pub energy_median: f64,
    /// Mean total loss.
    pub loss: f64,
    /// Mean gradient norm before clipping.
    pub grad_norm: f64,
    /// Mean fraction of the KL batch above `[train] high_energy` (NaN without KL or cut; see
    /// [`crate::StepStats::cut_fraction`]).
    pub kl_cut_fraction: f64,
    /// Mean J_RC (NaN if not trained).
    pub rc: f64,
    /// NLL of the held-out data (NaN without).
    pub val_nll: f64,
    /// ESS fraction of `ess_samples` generated samples (NaN if 0) with respect to the stage's
    /// target temperature.
    pub ess_fraction: f64,
    /// ESS fraction of the epoch's own samples reweighted to the stage's target temperature
    /// (NaN for stages without `self_samples`).
    pub self_ess_fraction: f64,
    /// Acceptance of the epoch's torsion jumps (`self_torsion_jumps`; NaN without them).
    pub jump_acceptance: f64,
    /// Energy evaluations since the start of training, this epoch's included (KL batches,
    /// reweighted samples, the ESS monitor).
    pub energy_evaluations: u64,
    /// Wall time of the epoch in seconds.
    pub seconds: f64,
}

impl boltzflow_io::run_dir::MetricsRow for EpochRecord {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("epoch", self.epoch.to_string()),
            ("stage", self.stage.clone()),
            ("lr", format!("{:e}", self.lr)),
            ("nll", self.nll.to_string()),
            ("kl", self.kl.to_string()),
            ("energy", self.energy.to_string()),
            ("energy_median", self.energy_median.to_string()),
            ("loss", self.loss.to_string()),
            ("grad_norm", self.grad_norm.to_string()),
            ("kl_cut_fraction", self.kl_cut_fraction.to_string()),
            ("val_nll", self.val_nll.to_string()),
            ("ess_fraction", self.ess_fraction.to_string()),
            ("rc", self.rc.to_string()),
            ("self_ess_fraction", self.self_ess_fraction.to_string()),
            ("jump_acceptance", self.jump_acceptance.to_string()),
            ("energy_evaluations", self.energy_evaluations.to_string()),
            ("seconds", format!("{:.3}", self.seconds)),
        ]
    }
}

/// The `ml_tilt` weights of a data batch: w_i^γ normalised to mean 1, with
/// log w_i = −u(x_i)/τ − log q(x_i) (`u` the energies of all training rows, `rows` the batch's).
/// Rows of infinite energy get weight 0.
fn tilted_weights(
    bg: &mut BoltzmannGenerator,
    batch: &[f32],
    rows: &[usize],
    u: &[f64],
    tau: f64,
    gamma: f64,
    out: &mut Vec<f64>,
) {
    let dim = bg.dim();
    let x = Array2::from_shape_fn((rows.len(), dim), |(i, j)| f64::from(batch[i * dim + j]));
    let log_q = bg.log_density(&x, rows.len());
    out.clear();
    out.extend(
        rows.iter()
            .zip(&log_q)
            .map(|(&i, lq)| gamma * (-u[i] / tau - lq)),
    );
    let max = out.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        out.iter_mut().for_each(|w| *w = 1.0);
        return;
    }
    out.iter_mut().for_each(|w| *w = (*w - max).exp());
    let mean = out.iter().sum::<f64>() / out.len() as f64;
    out.iter_mut().for_each(|w| *w /= mean);
}

/// What a generator is trained on: the reduced energy, the data (for J_ML) and the
/// reaction-coordinate loss (for J_RC).
#[derive(Clone, Copy)]
pub struct Problem<'a> {
    /// Reduced energy u(x) (see [`Reduced`]).
    pub energy: &'a dyn Energy,
    /// Training and validation data.
    pub data: Option<&'a TrainData>,
    /// J_RC, when a stage weights it.
    pub rc: Option<&'a RcEntropy>,
    /// The energy of the per-epoch ESS monitor when it differs from `energy` (a reduced
    /// domain of identical particles, where samples outside it weigh 0 as in `evaluate`).
    pub monitor: Option<&'a dyn Energy>,
}

/// Told about every finished epoch (writes checkpoints and metrics in the CLI).
pub trait EpochObserver {
    /// Called after epoch `rec.epoch` with the model and optimizer state.
    ///
    /// # Errors
    /// Whatever the observer fails with (stops training).
    fn epoch_end(
        &mut self,
        rec: &EpochRecord,
        bg: &BoltzmannGenerator,
        adam: &Adam<f32>,
    ) -> Result<()>;
}

/// Trains `bg` over the global epochs `epochs` (`0..cfg.total_epochs()` for a whole new run;
/// a resumed run starts at the epoch of its checkpoint).
///
/// # Errors
/// Non-finite energies or losses (naming the step), and observer errors.
pub fn train(
    cfg: &BgConfig,
    problem: &Problem<'_>,
    bg: &mut BoltzmannGenerator,
    adam: &mut Adam<f32>,
    epochs: std::ops::Range<usize>,
    observer: &mut dyn EpochObserver,
) -> Result<()> {
    let Problem {
        energy,
        data,
        rc,
        monitor,
    } = *problem;
    let start_epoch = epochs.start;
    let streams = RandomStreams::new(cfg.seed);
    let t = &cfg.train;
    bg.set_chunk_rows(t.chunk_rows);
    if start_epoch == 0
        && (cfg.flow.actnorm || cfg.flow.whiten)
        && let Some(d) = data
    {
        // Whitening fits a covariance: all training rows; ActNorm alone: one batch.
        let rows = if cfg.flow.whiten {
            d.n_train()
        } else {
            d.n_train().min(t.batch_size.max(256))
        };
        bg.data_init(&d.train[..rows * bg.dim()]);
    }
    let reg = t.high_energy.map(|high| LinLogCut {
        high,
        max: t.max_energy.unwrap_or(f64::INFINITY),
    });
    let dim = bg.dim();
    let mut batch: Vec<f32> = Vec::with_capacity(t.batch_size * dim);
    // Deterministic per epoch, so a resumed run counts on from the epochs before it.
    let mut evaluations: u64 = (0..start_epoch)
        .map(|e| cfg.energy_evaluations_in_epoch(e))
        .sum();
    let mut own = TrainData::empty(dim);
    // Energies of the training rows, for stages with `ml_tilt` (computed once, when needed).
    let mut data_energies: Option<Vec<f64>> = None;
    let mut ml_weights: Vec<f64> = Vec::with_capacity(t.batch_size);
    let mut rows: Vec<usize> = Vec::with_capacity(t.batch_size);
    // `ml_balance`: the draw distribution over the training rows and its ratio.
    let mut balanced: Option<(f64, WeightedIndex<f64>)> = None;
    for e in epochs.start..epochs.end.min(cfg.total_epochs()) {
        let (k, j) = cfg.stage_of(e).expect("epoch within the stages");
        let stage = &cfg.stages[k];
        evaluations += cfg.energy_evaluations_in_epoch(e);
        // The energy this stage trains towards: u/τ_target.
        let target = Reduced {
            inner: energy,
            beta: 1.0 / stage.target_temperature,
        };
        let (ml_data, self_ess, jump_acceptance) = if stage.self_samples > 0 {
            let mut r = streams.stream(&format!("train.self_samples.{e}"));
            let (ess, jumps) = own.resample_from(bg, &target, stage, e, &mut r)?;
            (Some(&own), ess, jumps)
        } else {
            (data, f64::NAN, f64::NAN)
        };
        let lr = stage.lr * stage.lr_decay.powi(j as i32);
        let adam_cfg = AdamConfig {
            lr,
            ..AdamConfig::default()
        };
        let mut rng: ChainRng = streams.stream(&format!("train.epoch.{e}"));
        let t0 = Instant::now();
        let mut sums = [0.0f64; 8];
        let tilt = stage.ml_tilt;
        if tilt > 0.0
            && data_energies.is_none()
            && let Some(d) = data
        {
            let x =
                Array2::from_shape_fn((d.n_train(), dim), |(i, j)| f64::from(d.train[i * dim + j]));
            data_energies = Some(energy.energy(x.view())?.to_vec());
        }
        let balance = stage.ml_balance;
        if balance > 0.0
            && balanced.as_ref().is_none_or(|(r, _)| *r != balance)
            && let (Some(d), Some(rc)) = (data, rc)
        {
            let w = rc.balance_weights(&d.train, dim, balance);
            let index = WeightedIndex::new(&w).map_err(|e| {
                Error::invalid(format!("stage.{}.ml_balance", stage.name), e.to_string())
            })?;
            balanced = Some((balance, index));
        }
        let draw = balanced
            .as_ref()
            .filter(|_| balance > 0.0)
            .map(|(_, index)| index);
        for s in 0..t.steps_per_epoch {
            let step = (e * t.steps_per_epoch + s) as u64;
            batch.clear();
            rows.clear();
            if stage.w_ml > 0.0
                && let Some(d) = ml_data
            {
                let n = d.n_train();
                for _ in 0..t.batch_size {
                    let i = match draw {
                        Some(index) => index.sample(&mut rng),
                        None => rng.random_range(0..n),
                    };
                    rows.push(i);
                    batch.extend_from_slice(&d.train[i * dim..(i + 1) * dim]);
                }
            }
            let tilted = match &data_energies {
                Some(u) if tilt > 0.0 && !rows.is_empty() => {
                    tilted_weights(
                        bg,
                        &batch,
                        &rows,
                        u,
                        stage.target_temperature,
                        tilt,
                        &mut ml_weights,
                    );
                    Some(ml_weights.as_slice())
                }
                _ => None,
            };
            let objective = Objective {
                w_ml: stage.w_ml,
                w_kl: stage.w_kl,
                w_rc: stage.w_rc,
                n_gen: if stage.w_kl > 0.0 || stage.w_rc > 0.0 {
                    t.batch_size
                } else {
                    0
                },
                taus: &stage.temperatures,
                reg,
                rc,
                ml_weights: tilted,
            };
            let st = bg.gradient(&target, &batch, &objective, step, &mut rng)?;
            let norm = match t.clip_grad_norm {
                Some(c) => clip_grad_norm(&mut bg.grads, c),
                None => boltzflow_nn::params::squared_norm(&bg.grads).sqrt(),
            };
            if !norm.is_finite() {
                return Err(Error::NonFinite {
                    what: "gradient norm".into(),
                    location: format!("step {step}"),
                    value: norm,
                });
            }
            let grads = std::mem::take(&mut bg.grads);
            adam.step(&adam_cfg, lr, &mut bg.params, &grads);
            bg.grads = grads;
            for (acc, v) in sums.iter_mut().zip([
                st.nll,
                st.kl,
                st.energy,
                st.loss,
                norm,
                st.rc,
                st.cut_fraction,
                st.energy_median,
            ]) {
                *acc += v;
            }
        }
        let m = t.steps_per_epoch as f64;
        let val_nll = match data {
            Some(d) if d.validation.nrows() > 0 => {
                let lq = bg.log_density(&d.validation, 4096);
                -lq.iter().sum::<f64>() / lq.len() as f64
            }
            _ => f64::NAN,
        };
        let ess = if t.ess_samples > 0 {
            let mut r = streams.stream(&format!("train.ess.{e}"));
            let (x, neg_log_q) = bg.sample(t.ess_samples, 1.0, 4096, &mut r);
            let u = Reduced {
                inner: monitor.unwrap_or(energy),
                beta: target.beta,
            }
            .energy(x.view())?;
            let log_w: Vec<f64> = u.iter().zip(&neg_log_q).map(|(u, q)| -u + q).collect();
            ess_fraction(&log_w).unwrap_or(f64::NAN)
        } else {
            f64::NAN
        };
        let rec = EpochRecord {
            epoch: e + 1,
            stage: stage.name.clone(),
            lr,
            nll: sums[0] / m,
            kl: sums[1] / m,
            energy: sums[2] / m,
            loss: sums[3] / m,
            grad_norm: sums[4] / m,
            rc: sums[5] / m,
            kl_cut_fraction: sums[6] / m,
            energy_median: sums[7] / m,
            val_nll,
            ess_fraction: ess,
            self_ess_fraction: self_ess,
            jump_acceptance,
            energy_evaluations: evaluations,
            seconds: t0.elapsed().as_secs_f64(),
        };
        observer.epoch_end(&rec, bg, adam)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Systematic resampling keeps every index ⌊n·wᵢ⌋ or ⌈n·wᵢ⌉ times, zero weights never.
    #[test]
    fn systematic_resampling_keeps_each_weight_to_within_one_copy() {
        let w = [0.5, 0.0, 0.123, 0.25, 0.127];
        let n = 1000;
        let mut rng = RandomStreams::new(2).stream("resample");
        for _ in 0..20 {
            let idx = systematic_resample(&w, n, &mut rng);
            assert_eq!(idx.len(), n);
            for (i, wi) in w.iter().enumerate() {
                let c = idx.iter().filter(|&&k| k == i).count() as f64;
                let expected = wi * n as f64;
                assert!(
                    c >= expected.floor() - 1e-9 && c <= expected.ceil() + 1e-9,
                    "{i}: {c}"
                );
            }
        }
    }

    /// u(θ, y) = −2 cos 2θ − ½ cos θ + y²/2 with θ periodic on [−π, π): wells at θ = 0 and π
    /// behind barriers of ~4 kT, which small moves do not cross.
    struct TwoWellRing;

    impl Energy for TwoWellRing {
        fn dim(&self) -> usize {
            2
        }
        fn energy_into(&self, x: ArrayView2<f64>, mut out: ArrayViewMut1<f64>) -> Result<()> {
            for (o, r) in out.iter_mut().zip(x.rows()) {
                *o = -2.0 * (2.0 * r[0]).cos() - 0.5 * r[0].cos() + 0.5 * r[1] * r[1];
            }
            Ok(())
        }
        fn energy_and_forces_into(
            &self,
            _: ArrayView2<f64>,
            _: ArrayViewMut1<f64>,
            _: ArrayViewMut2<f64>,
        ) -> Result<()> {
            unreachable!("torsion jumps need no forces")
        }
    }

    /// Started all in the θ = 0 well, torsion jumps reach the exact share of the θ = π one
    /// (quadrature), leave the other coordinate alone, and are refused without a periodic
    /// coordinate.
    #[test]
    fn torsion_jumps_cross_the_barrier_to_the_exact_populations() {
        let pi = std::f64::consts::PI;
        let n = 20_000;
        let mut x = Array2::from_shape_fn(
            (n, 2),
            |(i, k)| if k == 0 { 0.0 } else { (i % 7) as f64 * 0.1 },
        );
        let y0 = x.column(1).to_owned();
        let periods = [Some([-pi, pi]), None];
        let mut rng = RandomStreams::new(3).stream("jumps");
        let acc = torsion_jumps(&mut x, &TwoWellRing, &periods, 20, &mut rng).unwrap();
        assert!(acc > 0.05 && acc < 0.9, "acceptance {acc}");
        assert_eq!(x.column(1), y0);
        assert!(x.column(0).iter().all(|t| (-pi..pi).contains(t)));
        // Exact share of |θ| > π/2 by the midpoint rule.
        let m = 100_000;
        let (mut far, mut all) = (0.0, 0.0);
        for k in 0..m {
            let t = -pi + (k as f64 + 0.5) * 2.0 * pi / m as f64;
            let p = (2.0 * (2.0 * t).cos() + 0.5 * t.cos()).exp();
            all += p;
            if t.abs() > 0.5 * pi {
                far += p;
            }
        }
        let exact = far / all;
        let got = x.column(0).iter().filter(|t| t.abs() > 0.5 * pi).count() as f64 / n as f64;
        // 20 jumps from one well: the share relaxes as (1 − rate)^20; 0.01 is ~5 binomial s.d.
        assert!((got - exact).abs() < 0.01, "{got} vs exact {exact}");
        let flat = [None, None];
        assert!(torsion_jumps(&mut x, &TwoWellRing, &flat, 1, &mut rng).is_err());
    }

    /// Frame-major chain output (row = frame·chains + chain, value = chain id): whole chains
    /// are held out, and the training rows hold no frame of a validation chain.
    #[test]
    fn simulated_data_are_held_out_by_chain() {
        let (chains, frames) = (20, 7);
        let x = Array2::from_shape_fn((chains * frames, 2), |(r, _)| (r % chains) as f64);
        let streams = RandomStreams::new(5);
        let d = TrainData::split_by_chain(&x, 0.25, chains, &streams).unwrap();
        assert_eq!(d.validation.nrows(), 5 * frames);
        assert_eq!(d.n_train(), 15 * frames);
        let val: std::collections::BTreeSet<i64> =
            d.validation.column(0).iter().map(|&v| v as i64).collect();
        assert_eq!(val.len(), 5);
        assert!(d.train.iter().all(|&v| !val.contains(&(v as i64))));
        // Rows that are not whole frames are refused.
        let bad = Array2::<f64>::zeros((chains * frames + 1, 2));
        assert!(TrainData::split_by_chain(&bad, 0.25, chains, &streams).is_err());
        // One row per chain is the row split.
        let a = TrainData::split(&x, 0.25, &streams).unwrap();
        let b = TrainData::split_by_chain(&x, 0.25, x.nrows(), &streams).unwrap();
        assert_eq!((a.train, a.validation), (b.train, b.validation));
    }
}
