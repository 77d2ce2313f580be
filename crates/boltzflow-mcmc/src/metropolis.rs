//! Gaussian random-walk Metropolis over many chains.

use boltzflow_core::math::exp;
use boltzflow_core::{Energy, Error, Move, MoveStats, Result, SamplerState, ThermodynamicState};
use ndarray::{ArrayView2, ArrayViewMut1};
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};

use crate::blocks::{Block, par_blocks};
use crate::wrap_periodic;

/// Random-walk Metropolis: propose x' = x + σ ξ with ξ ~ N(0, I) for every chain, accept with
/// probability min(1, exp(−β (E(x') − E(x)))).
///
/// This is the seed papers' sampler (10⁴ chains, σ = 0.1 on `mueller`). Periodic coordinates
/// are wrapped into their interval after each proposal (the proposal stays symmetric).
/// A proposal with energy +∞ is rejected; a NaN energy is an error naming the chain and step.
#[derive(Debug, Clone)]
pub struct Metropolis {
    step_size: f64,
    periods: Vec<Option<[f64; 2]>>,
    chains_per_block: usize,
}

impl Metropolis {
    /// A sampler with displacement standard deviation `step_size` (same unit as the coordinates).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] unless `step_size` is finite and positive.
    pub fn new(step_size: f64) -> Result<Self> {
        if !(step_size.is_finite() && step_size > 0.0) {
            return Err(Error::invalid(
                "step_size",
                format!("must be finite and positive, got {step_size}"),
            ));
        }
        Ok(Self {
            step_size,
            periods: Vec::new(),
            chains_per_block: 256,
        })
    }

    /// Declares periodic coordinates (`[lo, hi)` per coordinate, `None` for ordinary ones).
    pub fn with_periods(mut self, periods: Vec<Option<[f64; 2]>>) -> Self {
        self.periods = periods;
        self
    }

    /// The displacement standard deviation σ.
    pub fn step_size(&self) -> f64 {
        self.step_size
    }

    fn run_block(
        &self,
        b: Block<'_>,
        energy: &dyn Energy,
        beta: f64,
        step0: u64,
        n_steps: u64,
    ) -> Result<MoveStats> {
        let n = b.e.len();
        let dim = b.x.len() / n.max(1);
        let mut prop = vec![0.0; n * dim];
        let mut e_new = vec![0.0; n];
        let mut stats = MoveStats::default();
        let periodic = self.periods.iter().any(Option::is_some);
        for step in 0..n_steps {
            for ((xr, pr), rng) in
                b.x.chunks_exact(dim)
                    .zip(prop.chunks_exact_mut(dim))
                    .zip(b.rngs.iter_mut())
            {
                for (p, x) in pr.iter_mut().zip(xr) {
                    let z: f64 = StandardNormal.sample(rng);
                    *p = x + self.step_size * z;
                }
                if periodic {
                    wrap_periodic(pr, &self.periods);
                }
            }
            energy.energy_into(
                ArrayView2::from_shape((n, dim), &prop).expect("block shape"),
                ArrayViewMut1::from(&mut e_new[..]),
            )?;
            for c in 0..n {
                let de = e_new[c] - b.e[c];
                if de.is_nan() {
                    return Err(Error::NonFinite {
                        what: "proposal energy".into(),
                        location: format!("chain {}, step {}", b.first_chain + c, step0 + step + 1),
                        value: e_new[c],
                    });
                }
                let accept = de <= 0.0 || b.rngs[c].random::<f64>() < exp(-beta * de);
                if accept {
                    b.x[c * dim..(c + 1) * dim].copy_from_slice(&prop[c * dim..(c + 1) * dim]);
                    b.e[c] = e_new[c];
                    stats.accepted += 1;
                }
            }
            stats.proposed += n as u64;
        }
        Ok(stats)
    }
}

impl Move for Metropolis {
    fn name(&self) -> &'static str {
        "metropolis"
    }

    fn apply(
        &mut self,
        state: &mut SamplerState,
        energy: &dyn Energy,
        thermo: &ThermodynamicState,
        n_steps: u64,
    ) -> Result<MoveStats> {
        if energy.dim() != state.dim() {
            return Err(Error::shape(
                "sampler state",
                format!("[n, {}]", energy.dim()),
                format!("[n, {}]", state.dim()),
            ));
        }
        let beta = thermo.beta();
        let step0 = state.step;
        let stats = par_blocks(state, self.chains_per_block, |b| {
            self.run_block(b, energy, beta, step0, n_steps)
        })?;
        state.step += n_steps;
        Ok(stats)
    }
}
