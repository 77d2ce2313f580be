//! Internal coordinates for molecules (DESIGN §3, `boltzflow-coords`).
//!
//! * [`ZMatrix`]: which atoms define each atom's bond, angle and torsion — built automatically
//!   from a bond graph ([`ZMatrix::from_bonds`]) or given ([`ZMatrix::new`]).
//! * [`InternalCoordinates`]: the bijection between Cartesian coordinates `[n, 3·n_atoms]` (nm)
//!   and internal coordinates `[n, 3·n_atoms]` — the six external degrees of freedom (position
//!   of the first root atom and the orientation of the root triangle) explicitly, then a bond
//!   length, an angle and a torsion per further atom — with log|det J| of either direction.
//! * [`align`]: Kabsch superposition on a reference; [`Whitening`]: PCA whitening of aligned
//!   Cartesian coordinates with the near-zero rigid-body modes dropped, with its log-determinant.
//! * [`FixedBonds`]: constrained bonds and the Fixman factor √det G of the density that
//!   constrained dynamics sample.
//! * [`PermutationReduction`]: identical particles relabelled by their optimal assignment to
//!   reference sites, the fundamental domain a generator of a liquid learns.
//! * [`features`]: dihedral angles (backbone φ, ψ found from a topology) and their sin/cos.
//!
//! Angles are in radians; torsions are periodic on (−π, π] (IUPAC sign, as OpenMM and MDTraj).

pub mod align;
pub mod features;
pub mod fixed_bonds;
pub mod internal;
pub mod layer;
pub mod permutation;
pub mod whiten;
pub mod zmatrix;

pub use align::{align, kabsch_rotation};
pub use fixed_bonds::FixedBonds;
pub use internal::{IcKind, InternalCoordinates};
pub use layer::{InternalEnergy, InternalLayer, ReferenceWidths};
pub use permutation::PermutationReduction;
pub use whiten::Whitening;
pub use zmatrix::ZMatrix;
