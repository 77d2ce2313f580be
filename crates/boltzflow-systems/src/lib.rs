//! Reference systems of boltzflow (DESIGN §6): toy potentials, the Monroe–Shen densities and the
//! particle dimer in a solvent bath, each with analytic forces, batched over rows and parallel
//! over the batch; exact direct samplers for the mixture densities; and exact references by
//! quadrature for every 2D system ([`quadrature`]); and molecules from OpenMM System XML files
//! ([`openmm`]).
//!
//! Systems are built from a specification string `name[:key=value,...]` ([`SystemSpec`]):
//!
//! ```
//! use boltzflow_core::Energy;
//! let system = boltzflow_systems::build("mueller:k=0.1").unwrap();
//! let e = system.energy(ndarray::array![[-0.558, 1.442]].view()).unwrap();
//! assert!((e[0] + 14.67).abs() < 0.01);
//! ```

pub mod densities;
pub mod dimer;
pub mod double_well;
/// Batched parallel evaluation from per-row kernels.
mod kernel;
pub mod mueller;
pub mod obc;
pub mod openmm;
pub mod quadrature;
pub mod spec;
pub mod spins;

use boltzflow_core::{ChainRng, Energy, Result};
use ndarray::{Array1, Array2};

pub use densities::{Beltway, BeltwayPolar, Bimodal2d, CorrBimodal2d, Gaussian2d};
pub use dimer::DimerBath;
pub use double_well::DoubleWell;
pub use mueller::MuellerBrown;
pub use openmm::{ForceField, OpenMmSystem};
pub use spec::{ParamInfo, SystemInfo, SystemSpec, build, build_with_pdb, catalog};
pub use spins::{SpinSystem, SpinThermo};

/// A reference system: an [`Energy`] with what samplers, references and plots need to know.
pub trait System: Energy {
    /// The canonical specification, with every parameter spelled out (`mueller:k=0.1`).
    fn spec(&self) -> String;

    /// A box `[[lo, hi]; dim]` that holds all but a negligible part of the Boltzmann weight at
    /// kT = 1: the domain of quadrature references, uniform initialisation and plots. `None` for
    /// systems without one (many-particle systems).
    fn reference_box(&self) -> Option<Vec<[f64; 2]>>;

    /// For each coordinate, the interval `[lo, hi)` of a periodic (angular) coordinate, or `None`.
    fn periods(&self) -> Vec<Option<[f64; 2]>> {
        vec![None; self.dim()]
    }

    /// A configuration of finite, moderate energy to start chains from, `[dim]`.
    fn initial_configuration(&self) -> Array1<f64>;

    /// The exact ln Z at kT = 1 where it is known analytically (0 for normalised densities).
    fn exact_ln_z(&self) -> Option<f64> {
        None
    }

    /// An exact direct sampler of exp(−E) where one exists.
    fn exact_sampler(&self) -> Option<&dyn ExactSampler> {
        None
    }

    /// Atom masses (amu, `[n_atoms]`, dim = 3·n_atoms) for molecular systems, whose units are
    /// OpenMM's (nm, ps, kJ/mol, temperatures in K); `None` for the reduced-unit systems.
    fn atom_masses(&self) -> Option<&[f64]> {
        None
    }

    /// Particles the energy does not tell apart (a solvent), for permutation reduction
    /// (`boltzflow_coords::PermutationReduction`); `None` when every particle is distinct.
    fn identical_particles(&self) -> Option<IdenticalParticles> {
        None
    }

    /// The OpenMM force field and structure behind an `openmm:` system.
    fn as_openmm(&self) -> Option<&OpenMmSystem> {
        None
    }
}

/// Identical particles of a [`System`]: particles `first ..` (x, y[, z] interleaved), one per
/// row of `sites`, the reference positions they are matched to.
#[derive(Debug, Clone, PartialEq)]
pub struct IdenticalParticles {
    /// Index of the first identical particle (in particles, not coordinates).
    pub first: usize,
    /// Reference sites `[n, spatial_dim]`: a typical, well-spread arrangement.
    pub sites: Array2<f64>,
}

/// Draws independent samples from exp(−E) / Z exactly (no Markov chain).
pub trait ExactSampler: Send + Sync {
    /// `n` samples, `[n, dim]`.
    ///
    /// # Errors
    /// Only if the sampler's parameters are invalid (validated when the system was built).
    fn sample(&self, n: usize, rng: &mut ChainRng) -> Result<Array2<f64>>;
}
