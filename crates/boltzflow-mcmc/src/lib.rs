//! Batched Markov chain samplers over many independent chains (walkers).
//!
//! * [`Metropolis`]: Gaussian random-walk Metropolis, one trial per chain per step;
//! * [`OverdampedLangevin`]: Euler–Maruyama (optionally Metropolis-adjusted, MALA);
//! * [`Baoab`]: underdamped Langevin with the BAOAB splitting (Leimkuhler & Matthews 2013);
//! * [`Simulation`]: burn-in, stride and reporters around any [`Move`];
//! * [`replica_exchange`]: parallel tempering over a temperature ladder;
//! * [`autocorrelation`]: integrated autocorrelation times.
//!
//! Chains are processed in blocks in parallel (rayon); every chain has its own generator, so the
//! result is the same for any number of threads.

pub mod autocorrelation;
pub mod bias;
mod blocks;
pub mod constraints;
pub mod langevin;
pub mod metadynamics;
pub mod metropolis;
pub mod replica_exchange;
pub mod reporters;
pub mod simulation;
pub mod umbrella;

pub use boltzflow_core::{Move, MoveStats, Reporter, SamplerState};
pub use constraints::Constraints;
pub use langevin::{Baoab, OverdampedLangevin};
pub use metropolis::Metropolis;
pub use simulation::{Protocol, Simulation, SimulationResult};

/// Wraps periodic coordinates of a row into their interval `[lo, hi)`.
#[inline]
pub(crate) fn wrap_periodic(row: &mut [f64], periods: &[Option<[f64; 2]>]) {
    for (v, p) in row.iter_mut().zip(periods) {
        if let Some([lo, hi]) = *p {
            let w = hi - lo;
            *v = lo + (*v - lo).rem_euclid(w);
        }
    }
}
