//! Replica exchange in temperature (parallel tempering; Swendsen & Wang 1986, Geyer 1991).
//!
//! A ladder of K temperatures T₀ < T₁ < … < T_{K−1} holds one [`SamplerState`] each. Every
//! state has the same number of chains R: chain r of every temperature belongs to *run* r, and
//! the R runs are independent parallel-tempering simulations (their estimates give honest error
//! bars). A round moves every temperature's chains with that temperature's own [`Move`] (the
//! temperatures in parallel), then attempts swaps of configurations between neighbouring
//! temperatures of the same run, accepted with probability
//!
//! min(1, exp[(β_k − β_{k+1}) (E_k − E_{k+1})]),
//!
//! which keeps the product of the exp(−β_k E) invariant, so every temperature's marginal is exact.
//! The pairs alternate between even (0–1, 2–3, …) and odd (1–2, 3–4, …) rounds: the
//! deterministic even–odd scheme, whose replicas travel the ladder ballistically instead of
//! diffusively (Okabe et al. 2001; Syed et al., JRSS B 2022).
//!
//! Swaps exchange positions, energies and forces (when a move keeps them); velocities are
//! exchanged and rescaled by √(T_new/T_old), so they stay Maxwell–Boltzmann at the new
//! temperature. Each run has its own generator for the swap decisions, so the result does not
//! depend on the number of threads.

use boltzflow_core::math::unit_f64;
use boltzflow_core::{
    ChainRng, Energy, Error, Move, MoveStats, RandomStreams, Result, SamplerState,
    ThermodynamicState,
};
use ndarray::Array2;
use rand::Rng;
use rayon::prelude::*;

/// K temperatures spaced geometrically from `t_min` to `t_max` (the spacing that keeps swap
/// acceptance roughly constant when the heat capacity is).
///
/// # Errors
/// [`Error::InvalidParameter`] unless 0 < `t_min` < `t_max` are finite and K ≥ 2.
pub fn geometric_ladder(t_min: f64, t_max: f64, k: usize) -> Result<Vec<f64>> {
    if !(t_min.is_finite() && t_max.is_finite() && t_min > 0.0 && t_max > t_min) {
        return Err(Error::invalid(
            "temperatures",
            format!("need 0 < t_min < t_max, got {t_min} and {t_max}"),
        ));
    }
    if k < 2 {
        return Err(Error::invalid(
            "replicas",
            format!("a ladder needs at least 2 temperatures, got {k}"),
        ));
    }
    let r = (t_max / t_min).ln() / (k - 1) as f64;
    Ok((0..k).map(|i| t_min * (r * i as f64).exp()).collect())
}

/// Swap and round-trip statistics of a parallel-tempering run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExchangeStats {
    /// Swap attempts and acceptances between temperatures k and k + 1, `[K − 1]`.
    pub swaps: Vec<MoveStats>,
    /// Move statistics per temperature, `[K]`.
    pub moves: Vec<MoveStats>,
    /// Completed round trips (lowest → highest → lowest temperature) per run, `[R]`.
    pub round_trips: Vec<u64>,
}

impl ExchangeStats {
    /// All runs' round trips together.
    pub fn total_round_trips(&self) -> u64 {
        self.round_trips.iter().sum()
    }
}

/// The chains of every temperature and the bookkeeping of which replica sits where.
#[derive(Debug, Clone)]
pub struct Ladder {
    /// One state per temperature (ascending); chain r of each belongs to run r.
    pub states: Vec<SamplerState>,
    temperatures: Vec<ThermodynamicState>,
    /// `replica[k][r]`: the replica (configuration identity, 0..K) of run r at temperature k.
    replica: Vec<Vec<usize>>,
    /// Per run and replica: `true` once it has touched the lowest temperature and is heading up.
    heading_up: Vec<Vec<Option<bool>>>,
    swap_rngs: Vec<ChainRng>,
    rounds: u64,
    stats: ExchangeStats,
}

impl Ladder {
    /// A ladder of `states` at `temperatures` (ascending), with one swap generator per run.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if the temperatures do not ascend or the counts differ;
    /// [`Error::Shape`] if the states disagree on chains or width.
    pub fn new(
        states: Vec<SamplerState>,
        temperatures: Vec<ThermodynamicState>,
        swap_rngs: Vec<ChainRng>,
    ) -> Result<Self> {
        let k = states.len();
        if k < 2 || temperatures.len() != k {
            return Err(Error::invalid(
                "temperatures",
                format!(
                    "need one state per temperature and at least 2 of each, got {k} states and {} temperatures",
                    temperatures.len()
                ),
            ));
        }
        if temperatures.windows(2).any(|w| w[1].kt() <= w[0].kt()) {
            return Err(Error::invalid(
                "temperatures",
                "must ascend strictly (lowest first)",
            ));
        }
        let (runs, dim) = (states[0].n_chains(), states[0].dim());
        for s in &states {
            if s.n_chains() != runs {
                return Err(Error::shape("chains per temperature", runs, s.n_chains()));
            }
            if s.dim() != dim {
                return Err(Error::shape("coordinates per chain", dim, s.dim()));
            }
        }
        if swap_rngs.len() != runs {
            return Err(Error::shape("swap generators", runs, swap_rngs.len()));
        }
        let replica = (0..k).map(|i| vec![i; runs]).collect();
        let mut heading_up = vec![vec![None; k]; runs];
        for h in &mut heading_up {
            h[0] = Some(true);
        }
        Ok(Self {
            states,
            temperatures,
            replica,
            heading_up,
            swap_rngs,
            rounds: 0,
            stats: ExchangeStats {
                swaps: vec![MoveStats::default(); k - 1],
                moves: vec![MoveStats::default(); k],
                round_trips: vec![0; runs],
            },
        })
    }

    /// A ladder in reduced units at `temperatures` (kT, ascending) whose every temperature
    /// starts from the rows of `start` `[runs, dim]`; the chains draw from the streams
    /// `replica.t{k}` and the swaps from `replica.swap` of `streams`.
    ///
    /// # Errors
    /// As [`Ladder::new`] and [`SamplerState::new`] (a non-finite start or temperature).
    pub fn from_start(
        start: &Array2<f64>,
        energy: &dyn Energy,
        temperatures: &[f64],
        streams: &RandomStreams,
    ) -> Result<Self> {
        let runs = start.nrows();
        let states = (0..temperatures.len())
            .map(|k| {
                SamplerState::new(
                    start.clone(),
                    energy,
                    streams.chains(&format!("replica.t{k}"), runs),
                )
            })
            .collect::<Result<_>>()?;
        let thermo = temperatures
            .iter()
            .map(|&t| ThermodynamicState::reduced(t))
            .collect::<Result<_>>()?;
        Self::new(states, thermo, streams.chains("replica.swap", runs))
    }

    /// Number of temperatures K.
    pub fn n_temperatures(&self) -> usize {
        self.states.len()
    }

    /// Number of independent runs R (chains per temperature).
    pub fn n_runs(&self) -> usize {
        self.states[0].n_chains()
    }

    /// The temperatures, ascending.
    pub fn temperatures(&self) -> &[ThermodynamicState] {
        &self.temperatures
    }

    /// Rounds (move + swap) done so far.
    pub fn rounds(&self) -> u64 {
        self.rounds
    }

    /// Swap, move and round-trip statistics since the ladder was made.
    pub fn stats(&self) -> &ExchangeStats {
        &self.stats
    }

    /// One round: `steps` steps of `moves[k]` at every temperature k (temperatures in
    /// parallel), then one sweep of swap attempts over the even or odd neighbour pairs.
    ///
    /// # Errors
    /// [`Error::Shape`] unless there is one move per temperature; whatever a move returns
    /// (non-finite energies name the chain and step).
    pub fn round(
        &mut self,
        moves: &mut [Box<dyn Move>],
        energy: &dyn Energy,
        steps: u64,
    ) -> Result<()> {
        let k = self.n_temperatures();
        if moves.len() != k {
            return Err(Error::shape("moves (one per temperature)", k, moves.len()));
        }
        let temps = &self.temperatures;
        let stats: Vec<MoveStats> = self
            .states
            .par_iter_mut()
            .zip(moves.par_iter_mut())
            .zip(temps.par_iter())
            .map(|((s, m), t)| m.apply(s, energy, t, steps))
            .collect::<Result<_>>()?;
        for (acc, s) in self.stats.moves.iter_mut().zip(stats) {
            *acc += s;
        }
        self.swap_sweep();
        self.rounds += 1;
        Ok(())
    }

    /// Swap attempts over the pairs (k, k + 1) with k of this round's parity, for every run.
    fn swap_sweep(&mut self) {
        let k_max = self.n_temperatures();
        let first = (self.rounds % 2) as usize;
        for r in 0..self.n_runs() {
            for k in (first..k_max - 1).step_by(2) {
                let (lo, hi) = (&self.temperatures[k], &self.temperatures[k + 1]);
                let (e_lo, e_hi) = (self.states[k].energies[r], self.states[k + 1].energies[r]);
                let log_acc = (lo.beta() - hi.beta()) * (e_lo - e_hi);
                let u = unit_f64(self.swap_rngs[r].next_u64());
                self.stats.swaps[k].proposed += 1;
                // u ∈ [0, 1): accept iff u < exp(log_acc), written so that log_acc ≥ 0 always accepts.
                if log_acc >= 0.0 || u < log_acc.exp() {
                    self.stats.swaps[k].accepted += 1;
                    self.swap_rows(k, r, lo.kt(), hi.kt());
                }
            }
            self.track_round_trips(r);
        }
    }

    /// Exchanges run r's configuration between temperatures k and k + 1.
    fn swap_rows(&mut self, k: usize, r: usize, kt_lo: f64, kt_hi: f64) {
        let (a, b) = self.states.split_at_mut(k + 1);
        let (lo, hi) = (&mut a[k], &mut b[0]);
        for (x, y) in lo
            .positions
            .row_mut(r)
            .iter_mut()
            .zip(hi.positions.row_mut(r).iter_mut())
        {
            std::mem::swap(x, y);
        }
        std::mem::swap(&mut lo.energies[r], &mut hi.energies[r]);
        if let (Some(f_lo), Some(f_hi)) = (lo.forces.as_mut(), hi.forces.as_mut()) {
            for (x, y) in f_lo.row_mut(r).iter_mut().zip(f_hi.row_mut(r).iter_mut()) {
                std::mem::swap(x, y);
            }
        }
        if let (Some(v_lo), Some(v_hi)) = (lo.velocities.as_mut(), hi.velocities.as_mut()) {
            let up = (kt_hi / kt_lo).sqrt();
            for (x, y) in v_lo.row_mut(r).iter_mut().zip(v_hi.row_mut(r).iter_mut()) {
                let (old_lo, old_hi) = (*x, *y);
                *x = old_hi / up;
                *y = old_lo * up;
            }
        }
        let rep = &mut self.replica;
        let (ra, rb) = (rep[k][r], rep[k + 1][r]);
        rep[k][r] = rb;
        rep[k + 1][r] = ra;
    }

    /// A replica that reached the top after touching the bottom heads down; one that reaches the
    /// bottom heading down completes a round trip.
    fn track_round_trips(&mut self, r: usize) {
        let top = self.n_temperatures() - 1;
        let bottom_replica = self.replica[0][r];
        let top_replica = self.replica[top][r];
        let h = &mut self.heading_up[r];
        if h[top_replica] == Some(true) {
            h[top_replica] = Some(false);
        }
        if h[bottom_replica] == Some(false) {
            self.stats.round_trips[r] += 1;
        }
        h[bottom_replica] = Some(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Metropolis;
    use boltzflow_core::RandomStreams;
    use ndarray::{ArrayView2, ArrayViewMut1, ArrayViewMut2};

    /// E = ½ x² in one dimension.
    struct Harmonic;

    impl Energy for Harmonic {
        fn dim(&self) -> usize {
            1
        }
        fn energy_into(&self, x: ArrayView2<f64>, mut out: ArrayViewMut1<f64>) -> Result<()> {
            for (o, r) in out.iter_mut().zip(x.rows()) {
                *o = 0.5 * r[0] * r[0];
            }
            Ok(())
        }
        fn energy_and_forces_into(
            &self,
            x: ArrayView2<f64>,
            out: ArrayViewMut1<f64>,
            mut forces: ArrayViewMut2<f64>,
        ) -> Result<()> {
            self.energy_into(x, out)?;
            forces.assign(&x.mapv(|v| -v));
            Ok(())
        }
    }

    fn ladder(temps: &[f64], runs: usize, seed: u64) -> Ladder {
        Ladder::from_start(
            &Array2::zeros((runs, 1)),
            &Harmonic,
            temps,
            &RandomStreams::new(seed),
        )
        .unwrap()
    }

    #[test]
    fn geometric_ladder_spans_the_range_with_a_constant_ratio() {
        let t = geometric_ladder(1.0, 8.0, 4).unwrap();
        for (a, b) in t.iter().zip([1.0, 2.0, 4.0, 8.0]) {
            assert!((a - b).abs() < 1e-12);
        }
        assert!(geometric_ladder(2.0, 1.0, 4).is_err());
        assert!(geometric_ladder(1.0, 2.0, 1).is_err());
    }

    #[test]
    fn every_temperature_keeps_its_marginal_and_swaps_match_the_analytic_rate() {
        // Harmonic oscillator: at kT = T the variance is T. The swap acceptance between two
        // temperatures is E[min(1, exp(Δβ ΔE))] over independent exact draws at each, which we
        // estimate directly.
        let temps = [1.0, 2.0, 4.0];
        let runs = 512;
        let mut l = ladder(&temps, runs, 3);
        let mut moves: Vec<Box<dyn Move>> = temps
            .iter()
            .map(|&t| Box::new(Metropolis::new(2.4 * t.sqrt()).unwrap()) as Box<dyn Move>)
            .collect();
        let mut sums = vec![0.0; temps.len()];
        let mut n = 0.0;
        for round in 0..600 {
            l.round(&mut moves, &Harmonic, 5).unwrap();
            if round >= 100 {
                for (k, s) in l.states.iter().enumerate() {
                    sums[k] += s.positions.iter().map(|x| x * x).sum::<f64>();
                }
                n += runs as f64;
            }
        }
        for (k, &t) in temps.iter().enumerate() {
            let var = sums[k] / n;
            // 256 000 correlated draws: a few per cent.
            assert!((var / t - 1.0).abs() < 0.05, "T = {t}: variance {var}");
        }
        // Exact swap rate between kT = 1 and 2 from independent exact draws.
        let mut rng = RandomStreams::new(9).stream("check");
        let m = 400_000;
        let mut acc = 0.0;
        for _ in 0..m {
            let (a, b) = (
                rand_distr::Distribution::<f64>::sample(&rand_distr::StandardNormal, &mut rng),
                rand_distr::Distribution::<f64>::sample(&rand_distr::StandardNormal, &mut rng),
            );
            let (e0, e1) = (0.5 * a * a, 0.5 * 2.0 * b * b);
            acc += ((1.0 - 0.5) * (e0 - e1)).exp().min(1.0);
        }
        let expected = acc / m as f64;
        let got = l.stats().swaps[0].acceptance();
        assert!(
            (got - expected).abs() < 0.02,
            "swap acceptance {got} vs {expected}"
        );
        assert!(l.stats().total_round_trips() > 0);
    }

    #[test]
    fn the_result_does_not_depend_on_the_thread_count() {
        let temps = [1.0, 1.5, 2.5];
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut l = ladder(&temps, 64, 5);
                let mut moves: Vec<Box<dyn Move>> = temps
                    .iter()
                    .map(|_| Box::new(Metropolis::new(1.0).unwrap()) as Box<dyn Move>)
                    .collect();
                for _ in 0..50 {
                    l.round(&mut moves, &Harmonic, 3).unwrap();
                }
                (l.states[0].positions.clone(), l.stats().clone())
            })
        };
        assert_eq!(run(1), run(2));
    }

    #[test]
    fn a_swap_exchanges_positions_energies_forces_and_rescaled_velocities() {
        let mut l = ladder(&[1.0, 4.0], 2, 1);
        for (k, s) in l.states.iter_mut().enumerate() {
            s.positions.fill(k as f64 + 1.0);
            s.energies.fill(10.0 * (k as f64 + 1.0));
            s.forces = Some(Array2::from_elem((2, 1), -(k as f64 + 1.0)));
            s.velocities = Some(Array2::from_elem((2, 1), 0.5));
        }
        l.swap_rows(0, 1, 1.0, 4.0);
        let (lo, hi) = (&l.states[0], &l.states[1]);
        // Run 1 swapped, run 0 untouched.
        assert_eq!((lo.positions[[1, 0]], hi.positions[[1, 0]]), (2.0, 1.0));
        assert_eq!((lo.positions[[0, 0]], hi.positions[[0, 0]]), (1.0, 2.0));
        assert_eq!((lo.energies[1], hi.energies[1]), (20.0, 10.0));
        let (f_lo, f_hi) = (lo.forces.as_ref().unwrap(), hi.forces.as_ref().unwrap());
        assert_eq!((f_lo[[1, 0]], f_hi[[1, 0]]), (-2.0, -1.0));
        // Velocities scale by √(T_new / T_old): 0.5 → 0.25 going down, 0.5 → 1.0 going up.
        let (v_lo, v_hi) = (
            lo.velocities.as_ref().unwrap(),
            hi.velocities.as_ref().unwrap(),
        );
        assert_eq!((v_lo[[1, 0]], v_hi[[1, 0]]), (0.25, 1.0));
        assert_eq!(l.replica[0][1], 1);
        assert_eq!(l.replica[1][1], 0);
    }

    #[test]
    fn bad_ladders_are_refused() {
        let streams = RandomStreams::new(1);
        let st =
            || SamplerState::new(Array2::zeros((4, 1)), &Harmonic, streams.chains("a", 4)).unwrap();
        let t = |v: f64| ThermodynamicState::reduced(v).unwrap();
        assert!(
            Ladder::new(
                vec![st(), st()],
                vec![t(2.0), t(1.0)],
                streams.chains("s", 4)
            )
            .is_err()
        );
        assert!(
            Ladder::new(
                vec![st(), st()],
                vec![t(1.0), t(2.0)],
                streams.chains("s", 3)
            )
            .is_err()
        );
        assert!(Ladder::new(vec![st()], vec![t(1.0)], streams.chains("s", 4)).is_err());
    }
}
