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

/// The φ and ψ atom quadruples of the first residue that has both (alanine dipeptide's one
/// residue), with the residue's number.
pub fn first_phi_psi(top: &Topology) -> Option<(isize, [[usize; 4]; 2])> {
    let torsions = backbone_torsions(top);
    torsions.iter().find_map(|t| {
        let res = t.name.strip_prefix("phi ")?;
        let psi = torsions.iter().find(|u| u.name == format!("psi {res}"))?;
        Some((res.parse().ok()?, [t.atoms, psi.atoms]))
    })
}

/// The α carbons with a side chain: `[CA, N, C, CB]` per residue that has all four atoms
/// (glycine has no CB and no chirality).
pub fn chiral_centers(top: &Topology) -> Vec<[usize; 4]> {
    let mut residues: Vec<isize> = top.atoms.iter().map(|a| a.residue_number).collect();
    residues.dedup();
    residues
        .into_iter()
        .filter_map(|r| {
            Some([
                top.find(r, "CA")?,
                top.find(r, "N")?,
                top.find(r, "C")?,
                top.find(r, "CB")?,
            ])
        })
        .collect()
}

/// The handedness of a chiral centre in configuration `x` `[3·n_atoms]`: the sign of the
/// triple product (N − CA) · ((C − CA) × (CB − CA)). Mirror images have opposite signs; an
/// L-amino acid has the sign of its reference structure.
pub fn chirality_sign(x: &[f64], [ca, n, c, cb]: [usize; 4]) -> f64 {
    use boltzflow_core::geometry::{cross, dot, point, sub};
    let o = point(x, ca);
    let v = dot(
        sub(point(x, n), o),
        cross(sub(point(x, c), o), sub(point(x, cb), o)),
    );
    v.signum()
}

/// For each configuration of `x` `[n, 3·n_atoms]`, whether every chiral centre has the
/// handedness it has in `reference` (`[3·n_atoms]`, e.g. the PDB structure).
pub fn same_chirality(x: ArrayView2<f64>, reference: &[f64], centers: &[[usize; 4]]) -> Vec<bool> {
    let want: Vec<f64> = centers
        .iter()
        .map(|&c| chirality_sign(reference, c))
        .collect();
    x.outer_iter()
        .map(|row| {
            let row = row.to_vec();
            centers
                .iter()
                .zip(&want)
                .all(|(&c, &w)| chirality_sign(&row, c) == w)
        })
        .collect()
}

/// The conformational basins of a residue's (φ, ψ) map, an exhaustive partition (degrees):
/// αL/C7ax: φ ≥ 0; αR: φ < 0, −120 ≤ ψ < −10; C5 (β): φ < −120, other ψ; C7eq: −120 ≤ φ < 0,
/// other ψ. The usual coarse states of alanine dipeptide (e.g. Stecher et al., JCTC 2014).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RamachandranBasin {
    /// −120° ≤ φ < 0 outside αR.
    C7eq,
    /// φ < −120° outside αR (β, extended).
    C5,
    /// φ < 0, −120° ≤ ψ < −10° (right-handed helix).
    AlphaR,
    /// φ ≥ 0 (left-handed helix and C7ax).
    AlphaLC7ax,
}

impl RamachandranBasin {
    /// Every basin, in the order of the population vectors.
    pub const ALL: [Self; 4] = [Self::C7eq, Self::C5, Self::AlphaR, Self::AlphaLC7ax];

    /// The rule in words, for summaries.
    pub const DEFINITION: &'static str = "alphaL/C7ax: phi >= 0; alphaR: phi < 0 and -120 <= psi < -10; C5: phi < -120; C7eq: -120 <= phi < 0 (other psi)";

    /// The basin of (φ, ψ) in radians.
    pub fn of(phi: f64, psi: f64) -> Self {
        let (phi, psi) = (phi.to_degrees(), psi.to_degrees());
        if phi >= 0.0 {
            Self::AlphaLC7ax
        } else if (-120.0..-10.0).contains(&psi) {
            Self::AlphaR
        } else if phi < -120.0 {
            Self::C5
        } else {
            Self::C7eq
        }
    }

    /// Its name in summaries: `C7eq`, `C5`, `alphaR`, `alphaL/C7ax`.
    pub fn name(self) -> &'static str {
        match self {
            Self::C7eq => "C7eq",
            Self::C5 => "C5",
            Self::AlphaR => "alphaR",
            Self::AlphaLC7ax => "alphaL/C7ax",
        }
    }

    /// Position in [`RamachandranBasin::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Fractions of frames in each basin of [`RamachandranBasin::ALL`] from the φ and ψ columns of
/// `angles` `[n, torsions]` (rad); weights `w` `[n]` (importance weights, unnormalised) when
/// given, else equal.
pub fn basin_populations(
    angles: ArrayView2<f64>,
    phi: usize,
    psi: usize,
    w: Option<&[f64]>,
) -> [f64; 4] {
    let mut p = [0.0; 4];
    for (r, row) in angles.outer_iter().enumerate() {
        p[RamachandranBasin::of(row[phi], row[psi]).index()] += w.map_or(1.0, |w| w[r]);
    }
    let total: f64 = p.iter().sum();
    if total > 0.0 {
        p.iter_mut().for_each(|v| *v /= total);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basins_partition_the_ramachandran_map_and_weights_move_populations() {
        let d = f64::to_radians;
        let points = [
            (-80.0, 70.0, RamachandranBasin::C7eq),
            (-150.0, 150.0, RamachandranBasin::C5),
            (-70.0, -40.0, RamachandranBasin::AlphaR),
            (60.0, 40.0, RamachandranBasin::AlphaLC7ax),
            (-150.0, -60.0, RamachandranBasin::AlphaR),
            (0.0, -60.0, RamachandranBasin::AlphaLC7ax),
        ];
        for (phi, psi, b) in points {
            assert_eq!(RamachandranBasin::of(d(phi), d(psi)), b, "({phi}, {psi})");
        }
        let angles = ndarray::Array2::from_shape_fn((4, 2), |(r, c)| {
            let (phi, psi, _) = points[r];
            d(if c == 0 { phi } else { psi })
        });
        assert_eq!(basin_populations(angles.view(), 0, 1, None), [0.25; 4]);
        let p = basin_populations(angles.view(), 0, 1, Some(&[1.0, 1.0, 2.0, 0.0]));
        assert_eq!(p, [0.25, 0.25, 0.5, 0.0]);
    }
}
