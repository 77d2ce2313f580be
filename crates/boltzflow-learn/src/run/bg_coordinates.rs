//! The coordinates a Boltzmann-generator run's flow works in: the system's own, or for
//! molecules with `[flow] coordinates = "internal"` the internal coordinates of
//! [`boltzflow_coords::InternalLayer`], whose bond and angle statistics come from the training
//! data and are kept in the run directory (`internal_coordinates.json`). [`RunEnergy`] is the
//! reduced energy the flow is trained against in either case, and the conversions map flow
//! space to configurations and back.

use std::path::Path;

use boltzflow_coords::{
    FixedBonds, InternalCoordinates, InternalEnergy, InternalLayer, PermutationReduction, ZMatrix,
};
use boltzflow_core::{Energy, Error, Result};
use boltzflow_systems::System;
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use crate::trainer::Reduced;

/// The file of the layer's statistics in a run directory.
pub const INTERNAL_COORDINATES_FILE: &str = "internal_coordinates.json";

/// Atoms heavier than this (amu) are heavy atoms: the Z-matrix builds them first.
const HEAVY_AMU: f64 = 1.5;

/// The Cartesian ↔ internal transform of a molecule, from its bond graph (which includes the
/// constrained bonds).
///
/// # Errors
/// [`Error::InvalidParameter`] (`flow.coordinates`) for a system that is not a molecule; the
/// Z-matrix's errors for a bond graph that is not one connected molecule.
pub fn internal_coordinates(system: &dyn System) -> Result<InternalCoordinates> {
    let Some(mol) = system.as_openmm() else {
        return Err(Error::invalid(
            "flow.coordinates",
            format!(
                "\"internal\" needs a molecule (an `openmm:` system with bonds); {} has none: use \"cartesian\"",
                system.spec()
            ),
        ));
    };
    let ff = &mol.force_field;
    let heavy: Vec<bool> = ff.masses().iter().map(|&m| m > HEAVY_AMU).collect();
    Ok(InternalCoordinates::new(ZMatrix::from_bonds(
        ff.n_atoms(),
        ff.bonds(),
        &heavy,
    )?))
}

/// The constrained bonds of a molecule with their masses (`None` for a System without
/// constraints, or a system that is not a molecule): the bonds an internal-coordinate layer
/// holds fixed.
///
/// # Errors
/// Constraints that do not join two atoms of the molecule.
pub fn fixed_bonds(system: &dyn System) -> Result<Option<FixedBonds>> {
    let Some(mol) = system.as_openmm() else {
        return Ok(None);
    };
    let ff = &mol.force_field;
    if ff.constraints().is_empty() {
        return Ok(None);
    }
    FixedBonds::new(ff.constraints(), ff.masses()).map(Some)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct LayerFile {
    /// The Z-matrix the run was trained with: its root atoms and rows `[i, j, k, l]`. Kept so
    /// that a run keeps its coordinates when the Z-matrix builder changes.
    roots: [usize; 3],
    rows: Vec<[usize; 4]>,
    /// Per internal coordinate: q = shift + scale · y (torsions: wrap(q − shift) = scale · y).
    shift: Vec<f64>,
    scale: Vec<f64>,
    /// Per internal coordinate: a free torsion (periodic in the flow).
    periodic: Vec<bool>,
    /// The bonds held fixed `(i, j, d)`: the System's constraints when the layer was fitted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    fixed: Vec<(usize, usize, f64)>,
}

/// Writes the layer's statistics into `dir` atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn save_layer(dir: &Path, layer: &InternalLayer) -> Result<()> {
    boltzflow_io::write_json(
        &dir.join(INTERNAL_COORDINATES_FILE),
        &LayerFile {
            roots: layer.internal_coordinates().zmatrix().roots(),
            rows: layer.internal_coordinates().zmatrix().rows().to_vec(),
            shift: layer.shift().to_vec(),
            scale: layer.scale().to_vec(),
            periodic: layer.periodic().to_vec(),
            fixed: layer
                .fixed_bonds()
                .map_or_else(Vec::new, |f| f.pairs().to_vec()),
        },
    )
}

/// The layer saved in `dir` (with its own Z-matrix, which must place the atoms of `ic`), or
/// `None` if there is none yet. `fixed` are the system's constrained bonds, which must be
/// those the layer was fitted with.
///
/// # Errors
/// [`Error::Io`] / [`Error::BadFile`] naming the file (also for a file of an older boltzflow,
/// without its Z-matrix: retrain with `--force`); statistics that do not fit the molecule;
/// constraints other than the layer's.
pub fn load_layer(
    dir: &Path,
    ic: InternalCoordinates,
    fixed: Option<FixedBonds>,
) -> Result<Option<InternalLayer>> {
    let path = dir.join(INTERNAL_COORDINATES_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let f: LayerFile = boltzflow_io::read_json(
        &path,
        " (a file written before boltzflow kept the Z-matrix and the free torsions: retrain the run with `train --force`)",
    )?;
    let in_file = |e: Error| e.context(format!("in `{}`", path.display()));
    let z = ZMatrix::new(ic.zmatrix().n_atoms(), f.roots, f.rows).map_err(in_file)?;
    let system_pairs = fixed.as_ref().map_or(&[][..], |b| b.pairs());
    if f.fixed != system_pairs {
        return Err(Error::BadFile {
            path: path.clone(),
            reason: format!(
                "the layer holds {} bonds fixed, the System has {} constraints: the run was trained with another System XML (use that one, or retrain with `train --force`)",
                f.fixed.len(),
                system_pairs.len()
            ),
        });
    }
    InternalLayer::from_parts_constrained(
        InternalCoordinates::new(z),
        f.shift,
        f.scale,
        f.periodic,
        fixed,
    )
    .map(Some)
    .map_err(in_file)
}

/// The reduced energy of a run in its flow's coordinates: u(x) = βE(x) in the system's own
/// coordinates, or [`InternalEnergy`] (βE(x(y)) − log|det ∂x/∂y|) in internal ones.
///
/// With a permutation-reduced domain D (`[flow] reduce_permutations`) the energy that
/// reweighting and AIS see is u(x) − ln n! on D and +∞ outside (forces 0 there): its partition
/// function ∫_D e^{−u} · n! is the full Z, so every ln Z estimate stays one of the whole
/// system, and samples outside D get weight 0. Training uses the plain u (`domain: None`).
pub struct RunEnergy<'a> {
    /// βE in the system's coordinates.
    pub reduced: Reduced<'a>,
    /// The internal-coordinate layer, for internal runs.
    pub layer: Option<&'a InternalLayer>,
    /// The reduced domain of identical particles, for reweighting.
    pub domain: Option<&'a PermutationReduction>,
}

impl RunEnergy<'_> {
    /// Restricts energies (and forces) to the domain: +∞ and zero force outside it, u − ln n!
    /// inside.
    fn restrict(
        &self,
        x: ArrayView2<f64>,
        mut energy: ArrayViewMut1<f64>,
        forces: Option<ArrayViewMut2<f64>>,
    ) -> Result<()> {
        let Some(d) = self.domain else {
            return Ok(());
        };
        let inside = d.reduced_mask(x)?;
        let shift = d.ln_symmetry();
        for (e, &ok) in energy.iter_mut().zip(&inside) {
            *e = if ok { *e - shift } else { f64::INFINITY };
        }
        if let Some(mut f) = forces {
            for (mut row, &ok) in f.rows_mut().into_iter().zip(&inside) {
                if !ok {
                    row.fill(0.0);
                }
            }
        }
        Ok(())
    }
}

impl Energy for RunEnergy<'_> {
    fn dim(&self) -> usize {
        self.layer
            .map_or_else(|| self.reduced.dim(), InternalLayer::dim)
    }

    fn energy_into(&self, x: ArrayView2<f64>, mut out: ArrayViewMut1<f64>) -> Result<()> {
        match self.layer {
            Some(layer) => InternalEnergy {
                inner: &self.reduced,
                layer,
            }
            .energy_into(x, out.view_mut()),
            None => self.reduced.energy_into(x, out.view_mut()),
        }?;
        self.restrict(x, out, None)
    }

    fn energy_and_forces_into(
        &self,
        x: ArrayView2<f64>,
        mut energy: ArrayViewMut1<f64>,
        mut forces: ArrayViewMut2<f64>,
    ) -> Result<()> {
        match self.layer {
            Some(layer) => InternalEnergy {
                inner: &self.reduced,
                layer,
            }
            .energy_and_forces_into(x, energy.view_mut(), forces.view_mut()),
            None => self
                .reduced
                .energy_and_forces_into(x, energy.view_mut(), forces.view_mut()),
        }?;
        self.restrict(x, energy, Some(forces))
    }
}

/// Flow coordinates → configurations (the identity without a layer).
///
/// # Errors
/// The layer's shape errors.
pub fn to_configurations(layer: Option<&InternalLayer>, y: Array2<f64>) -> Result<Array2<f64>> {
    match layer {
        Some(l) => Ok(l.to_cartesian(y.view())?.0),
        None => Ok(y),
    }
}

/// Configurations → flow coordinates and log|det ∂y/∂x| (zeros without a layer).
///
/// # Errors
/// The layer's shape errors.
pub fn to_flow_space(
    layer: Option<&InternalLayer>,
    x: ArrayView2<f64>,
) -> Result<(Array2<f64>, Array1<f64>)> {
    match layer {
        Some(l) => l.to_internal(x),
        None => Ok((x.to_owned(), Array1::zeros(x.nrows()))),
    }
}
