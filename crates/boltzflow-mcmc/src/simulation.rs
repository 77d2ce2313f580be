//! Running a move for a protocol: burn-in, stride, saved frames, reporters.

use boltzflow_core::{
    Energy, Error, Move, MoveStats, Reporter, Result, SamplerState, ThermodynamicState,
};
use ndarray::{Array2, s};

/// Steps to run, steps to discard, and the spacing of saved frames.
///
/// Frames are saved after steps `burn_in + k·stride` for k = 1, 2, … up to `n_steps`
/// (the seed paper's protocol, 10⁵ steps, burn-in 6·10⁴, stride 4000, saves 10 frames per chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocol {
    /// Total steps, burn-in included.
    pub n_steps: u64,
    /// Steps discarded before the first save.
    pub burn_in: u64,
    /// Steps between saved frames.
    pub stride: u64,
}

impl Protocol {
    /// A validated protocol.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if the stride is 0 or no frame would be saved.
    pub fn new(n_steps: u64, burn_in: u64, stride: u64) -> Result<Self> {
        if stride == 0 {
            return Err(Error::invalid("stride", "must be at least 1"));
        }
        if burn_in + stride > n_steps {
            return Err(Error::invalid(
                "steps",
                format!(
                    "{n_steps} steps with burn-in {burn_in} and stride {stride} save no frame; need steps ≥ burn-in + stride"
                ),
            ));
        }
        Ok(Self {
            n_steps,
            burn_in,
            stride,
        })
    }

    /// Frames saved per chain.
    pub fn n_saves(&self) -> u64 {
        (self.n_steps - self.burn_in) / self.stride
    }
}

/// What a simulation produced.
#[derive(Debug, Clone)]
pub struct SimulationResult {
    /// Saved configurations `[n_saves · n_chains, dim]`, frame-major (all chains of the first
    /// frame, then the second, ...).
    pub samples: Array2<f64>,
    /// Energies of the saved configurations `[n_saves, n_chains]`.
    pub energies: Array2<f64>,
    /// Move statistics during burn-in.
    pub burn_in_stats: MoveStats,
    /// Move statistics after burn-in.
    pub production_stats: MoveStats,
}

/// A move run over many chains for a [`Protocol`] at a thermodynamic state.
pub struct Simulation<'a> {
    /// The potential.
    pub energy: &'a dyn Energy,
    /// Temperature.
    pub thermo: ThermodynamicState,
    /// Steps, burn-in, stride.
    pub protocol: Protocol,
}

impl Simulation<'_> {
    /// Runs `mv` on `state`; reporters are called after the burn-in chunks and every saved frame.
    ///
    /// # Errors
    /// Whatever the move or a reporter returns (non-finite energies name the chain and step).
    pub fn run(
        &self,
        mv: &mut dyn Move,
        state: &mut SamplerState,
        reporters: &mut [&mut dyn Reporter<SamplerState>],
    ) -> Result<SimulationResult> {
        let p = self.protocol;
        let (n_chains, dim) = (state.n_chains(), state.dim());
        let n_saves = p.n_saves() as usize;
        let mut samples = Array2::zeros((n_saves * n_chains, dim));
        let mut energies = Array2::zeros((n_saves, n_chains));
        let mut burn_in_stats = MoveStats::default();
        let mut done = 0;
        while done < p.burn_in {
            let chunk = p.stride.min(p.burn_in - done);
            burn_in_stats += mv.apply(state, self.energy, &self.thermo, chunk)?;
            done += chunk;
            for r in reporters.iter_mut() {
                r.report(state.step, state)?;
            }
        }
        let mut production_stats = MoveStats::default();
        for k in 0..n_saves {
            production_stats += mv.apply(state, self.energy, &self.thermo, p.stride)?;
            samples
                .slice_mut(s![k * n_chains..(k + 1) * n_chains, ..])
                .assign(&state.positions);
            energies.row_mut(k).assign(&state.energies);
            for r in reporters.iter_mut() {
                r.report(state.step, state)?;
            }
        }
        Ok(SimulationResult {
            samples,
            energies,
            burn_in_stats,
            production_stats,
        })
    }
}
