//! Dihedral features: angles of atom quadruples over a batch, their sin/cos, and the backbone
//! φ/ψ torsions of a peptide found from its topology.

use boltzflow_core::geometry::{dihedral, point};
use boltzflow_core::{Error, Result};
use boltzflow_io::pdb::Topology;
use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

/// A named torsion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedTorsion {
    /// `phi` or `psi` with the residue number, for example `phi 2`.
    pub name: String,
    /// The four atoms.
    pub atoms: [usize; 4],
}

/// Dihedral angles (rad, (−π, π]) of `quads` for every row of `x` (`[n, 3·n_atoms]`), `[n, q]`.
///
/// # Errors
/// [`Error::Shape`] if `x` is not a multiple of 3 wide; [`Error::InvalidParameter`] for an atom
/// index beyond it.
pub fn dihedrals(x: ArrayView2<f64>, quads: &[[usize; 4]]) -> Result<Array2<f64>> {
    if !x.ncols().is_multiple_of(3) {
        return Err(Error::shape(
            "configurations",
            "[n, 3·n_atoms]",
            format!("[{}, {}]", x.nrows(), x.ncols()),
        ));
    }
    let n_atoms = x.ncols() / 3;
    if let Some(q) = quads.iter().find(|q| q.iter().any(|&a| a >= n_atoms)) {
        return Err(Error::invalid(
            "torsion atoms",
            format!("{q:?} has an atom beyond the {n_atoms} atoms of the configurations"),
        ));
    }
    let mut out = Array2::zeros((x.nrows(), quads.len()));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(x.axis_iter(Axis(0)).into_par_iter())
        .for_each(|(mut o, xr)| {
            let xr = xr.to_vec();
            for (v, q) in o.iter_mut().zip(quads) {
                *v = dihedral(q.map(|a| point(&xr, a))).angle();
            }
        });
    Ok(out)
}

/// `[sin a₁, cos a₁, sin a₂, cos a₂, …]` per row: `[n, 2q]` from angles `[n, q]` (the periodic
/// inputs of encoders and kinetic analyses).
pub fn sin_cos(angles: ArrayView2<f64>) -> Array2<f64> {
    let mut out = Array2::zeros((angles.nrows(), 2 * angles.ncols()));
    for (mut o, a) in out.outer_iter_mut().zip(angles.outer_iter()) {
        for (k, v) in a.iter().enumerate() {
            let (s, c) = v.sin_cos();
            o[2 * k] = s;
            o[2 * k + 1] = c;
        }
    }
    out
}

/// Backbone torsions of a peptide: φᵢ = C(i−1)–N(i)–CA(i)–C(i) and ψᵢ = N(i)–CA(i)–C(i)–N(i+1)
/// for every residue where all four atoms exist (capping groups such as ACE and NME provide the
/// outer C and N), in residue order, φ before ψ.
pub fn backbone_torsions(top: &Topology) -> Vec<NamedTorsion> {
    let mut residues: Vec<isize> = top.atoms.iter().map(|a| a.residue_number).collect();
    residues.dedup();
    let mut out = Vec::new();
    for (k, &res) in residues.iter().enumerate() {
        let prev = k.checked_sub(1).map(|p| residues[p]);
        let next = residues.get(k + 1).copied();
        let (n, ca, c) = (top.find(res, "N"), top.find(res, "CA"), top.find(res, "C"));
        if let (Some(p), Some(n), Some(ca), Some(c)) =
            (prev.and_then(|p| top.find(p, "C")), n, ca, c)
        {
            out.push(NamedTorsion {
                name: format!("phi {res}"),
                atoms: [p, n, ca, c],
            });
        }
        if let (Some(n), Some(ca), Some(c), Some(nn)) =
            (n, ca, c, next.and_then(|q| top.find(q, "N")))
        {
            out.push(NamedTorsion {
                name: format!("psi {res}"),
                atoms: [n, ca, c, nn],
            });
        }
    }
    out
}
