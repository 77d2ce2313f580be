//! Sampler state and the [`Move`] and [`Reporter`] traits.

use ndarray::{Array1, Array2};

use crate::{ChainRng, Energy, Error, Result, ThermodynamicState};

/// The state of many independent chains (walkers) of one sampler.
///
/// # Shapes
/// `positions` `[n_chains, dim]`, `energies` `[n_chains]`, `forces` and `velocities` (when the
/// move needs them) `[n_chains, dim]`. Each chain owns its random generator, so a move that
/// runs chains in parallel gives the same result for any number of threads.
#[derive(Debug, Clone)]
pub struct SamplerState {
    /// Current configurations.
    pub positions: Array2<f64>,
    /// Energies of `positions`, in the system's unit.
    pub energies: Array1<f64>,
    /// Forces at `positions` (−∇E), if a move keeps them.
    pub forces: Option<Array2<f64>>,
    /// Velocities (underdamped dynamics), if a move keeps them.
    pub velocities: Option<Array2<f64>>,
    /// One generator per chain.
    pub rngs: Vec<ChainRng>,
    /// Steps taken so far.
    pub step: u64,
}

impl SamplerState {
    /// A state with the given positions and per-chain generators; energies are evaluated.
    ///
    /// # Errors
    /// [`Error::Shape`] if the widths or counts disagree; [`Error::NonFinite`] if a starting
    /// configuration has a non-finite coordinate or energy.
    pub fn new(positions: Array2<f64>, energy: &dyn Energy, rngs: Vec<ChainRng>) -> Result<Self> {
        if rngs.len() != positions.nrows() {
            return Err(Error::shape(
                "chain generators",
                positions.nrows(),
                rngs.len(),
            ));
        }
        crate::check_finite_rows("initial positions", positions.view())?;
        let energies = energy.energy(positions.view())?;
        if let Some(i) = energies.iter().position(|e| !e.is_finite()) {
            return Err(Error::NonFinite {
                what: "initial energy".into(),
                location: format!("chain {i}"),
                value: energies[i],
            });
        }
        Ok(Self {
            positions,
            energies,
            forces: None,
            velocities: None,
            rngs,
            step: 0,
        })
    }

    /// Number of chains.
    pub fn n_chains(&self) -> usize {
        self.positions.nrows()
    }

    /// Coordinates per chain.
    pub fn dim(&self) -> usize {
        self.positions.ncols()
    }
}

/// Proposal and acceptance counts of a move.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MoveStats {
    /// Trials proposed (over all chains).
    pub proposed: u64,
    /// Trials accepted.
    pub accepted: u64,
}

impl MoveStats {
    /// Accepted / proposed (1 for moves without rejection, NaN if nothing was proposed).
    pub fn acceptance(&self) -> f64 {
        self.accepted as f64 / self.proposed as f64
    }
}

impl std::ops::AddAssign for MoveStats {
    fn add_assign(&mut self, rhs: Self) {
        self.proposed += rhs.proposed;
        self.accepted += rhs.accepted;
    }
}

/// A Markov kernel that leaves exp(−βE) invariant (or, for discretised dynamics, approximately so).
pub trait Move: Send + Sync {
    /// A short name for logs ("metropolis", "baoab", ...).
    fn name(&self) -> &'static str;

    /// Advances every chain of `state` by `n_steps` steps (one trial per chain per step).
    /// Moves run many steps per call so that they can parallelise over chains once per call.
    ///
    /// # Errors
    /// Shape errors from the energy, or [`Error::NonFinite`] when the state becomes non-finite
    /// (the error names the chain and step).
    fn apply(
        &mut self,
        state: &mut SamplerState,
        energy: &dyn Energy,
        thermo: &ThermodynamicState,
        n_steps: u64,
    ) -> Result<MoveStats>;
}

/// Receives the state of a long computation every so often (progress, trajectories, logs).
pub trait Reporter<S: ?Sized> {
    /// Called at `step` with the current state.
    ///
    /// # Errors
    /// Whatever the reporter's sink reports (for example a failed write).
    fn report(&mut self, step: u64, state: &S) -> Result<()>;
}
