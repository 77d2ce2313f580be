//! The coordinates a VAE of a molecule learns from (`[vae] representation`), after Monroe &
//! Shen (JCTC 2022), who compared three for alanine dipeptide:
//!
//! | name | columns | periodic | energy (VAE Monte Carlo) |
//! |---|---|---|---|
//! | `cartesian` | 3·atoms: every atom, Kabsch-aligned | none | βE(x) |
//! | `heavy-atoms` | 3·heavy atoms, Kabsch-aligned | none | none (hydrogens are gone) |
//! | `internal` (`bat`) | 3·atoms − 6 bonds, angles, torsions | free torsions (von Mises) | βE(x(y)) − ln\|det ∂x/∂y\| |
//!
//! The aligned representations superpose every frame's selected atoms (equal weights) onto a
//! reference, the mean structure of the training data found by iterated superposition, then
//! standardise each column with the aligned data's mean and standard deviation: the networks
//! see unit-scale inputs, and the map is linear, so densities change by a constant factor that
//! cancels in VAE Monte Carlo acceptance. `internal` is the Boltzmann generators'
//! [`InternalLayer`]: bonds, angles and rigid torsions standardised, free torsions on
//! (−π, π], the six rigid-body degrees of freedom removed; its energy is that of the molecule's
//! density marginalised over rigid motions, so VAE Monte Carlo in it samples the molecule's
//! Boltzmann distribution exactly.
//!
//! The energy of `cartesian` is invariant to the rigid motions the alignment removed, so the
//! VAE Monte Carlo chain on it is the paper's: f_acc measures how well the decoder proposes
//! aligned molecules, but the 66-D target is not a normalisable density; use `internal` for
//! populations.
//!
//! A run keeps the fitted statistics in its directory (`representation.json`, and
//! `internal_coordinates.json` for `internal`), so that evaluation, sampling and encoding of
//! new frames use exactly the training coordinates.

use std::path::Path;

use boltzflow_coords::{InternalEnergy, InternalLayer, align::align};
use boltzflow_core::{Energy, Error, Result, ResultExt};
use boltzflow_systems::System;
use ndarray::{Array2, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis};
use serde::{Deserialize, Serialize};

use super::bg_coordinates::{fixed_bonds, internal_coordinates, load_layer, save_layer};
use crate::trainer::Reduced;

/// The file of an aligned representation's statistics in a run directory.
pub const REPRESENTATION_FILE: &str = "representation.json";

/// Atoms heavier than this (amu) are heavy atoms.
const HEAVY_AMU: f64 = 1.5;

/// Superposition rounds of the reference structure (the mean converges in two or three).
const REFERENCE_ROUNDS: usize = 4;

/// Which coordinates of a molecule the VAE sees; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RepresentationKind {
    /// Every atom, Kabsch-aligned and standardised.
    Cartesian,
    /// The heavy atoms, Kabsch-aligned and standardised.
    HeavyAtoms,
    /// Bonds, angles and torsions (BAT).
    Internal,
}

impl RepresentationKind {
    /// The names `[vae] representation` accepts (`bat` is another name of `internal`).
    pub const NAMES: [&'static str; 4] = ["cartesian", "heavy-atoms", "internal", "bat"];

    /// The kind of a name in [`RepresentationKind::NAMES`].
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (`vae.representation`) listing the names.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "cartesian" => Ok(Self::Cartesian),
            "heavy-atoms" => Ok(Self::HeavyAtoms),
            "internal" | "bat" => Ok(Self::Internal),
            _ => Err(Error::invalid(
                "vae.representation",
                format!(
                    "unknown representation `{name}`; use one of {}",
                    Self::NAMES.join(", ")
                ),
            )),
        }
    }

    /// Its name in files and summaries.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cartesian => "cartesian",
            Self::HeavyAtoms => "heavy-atoms",
            Self::Internal => "internal",
        }
    }
}

/// The statistics of an aligned representation, as kept in [`REPRESENTATION_FILE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AlignedFile {
    kind: RepresentationKind,
    /// The molecule's atom count (a check against the system).
    n_atoms: usize,
    /// The atoms represented, in order.
    atoms: Vec<usize>,
    /// The reference structure of those atoms `[3·atoms]`, nm, centred at the origin.
    reference: Vec<f64>,
    /// Per column: aligned coordinate = mean + scale · y.
    mean: Vec<f64>,
    scale: Vec<f64>,
}

/// A fitted representation; see the module documentation.
#[derive(Debug, Clone)]
pub enum Representation {
    /// `cartesian` or `heavy-atoms`.
    Aligned(AlignedCoordinates),
    /// `internal`.
    Internal(InternalLayer),
}

/// Kabsch-aligned, standardised Cartesian coordinates of a set of atoms.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignedCoordinates {
    file: AlignedFile,
}

impl AlignedCoordinates {
    /// The atoms represented, in order.
    pub fn atoms(&self) -> &[usize] {
        &self.file.atoms
    }

    /// The selected atoms of configurations `x` `[n, 3·n_atoms]`, superposed on the reference
    /// (not standardised), `[n, 3·atoms]`, nm.
    ///
    /// # Errors
    /// [`Error::Shape`] for rows of the wrong width.
    pub fn superpose(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        let sel = select_atoms(x, &self.file.atoms, self.file.n_atoms)?;
        align(sel.view(), self.file.reference.as_slice().into(), None)
    }

    /// Standardised aligned coordinates → aligned Cartesian ones `[n, 3·atoms]`, nm.
    pub fn unstandardise(&self, y: ArrayView2<'_, f64>) -> Array2<f64> {
        let mut x = y.to_owned();
        for mut row in x.outer_iter_mut() {
            for ((v, m), s) in row.iter_mut().zip(&self.file.mean).zip(&self.file.scale) {
                *v = m + s * *v;
            }
        }
        x
    }
}

/// Columns `3a..3a+3` of every selected atom a.
fn select_atoms(x: ArrayView2<'_, f64>, atoms: &[usize], n_atoms: usize) -> Result<Array2<f64>> {
    if x.ncols() != 3 * n_atoms {
        return Err(Error::shape(
            "Cartesian configurations",
            format!("[n, {}] (3 × {n_atoms} atoms)", 3 * n_atoms),
            format!("[{}, {}]", x.nrows(), x.ncols()),
        ));
    }
    Ok(Array2::from_shape_fn(
        (x.nrows(), 3 * atoms.len()),
        |(r, c)| x[[r, 3 * atoms[c / 3] + c % 3]],
    ))
}

/// The mean structure of `sel` `[n, 3·m]` under superposition, centred at the origin: start
/// from the first frame, then superpose every frame on the current mean and average, a few
/// rounds.
fn mean_structure(sel: ArrayView2<'_, f64>) -> Result<Vec<f64>> {
    let centre = |v: &mut [f64]| {
        let m = v.len() / 3;
        let mut c = [0.0; 3];
        for p in v.chunks_exact(3) {
            for k in 0..3 {
                c[k] += p[k] / m as f64;
            }
        }
        for p in v.chunks_exact_mut(3) {
            for k in 0..3 {
                p[k] -= c[k];
            }
        }
    };
    let mut reference = sel.row(0).to_vec();
    centre(&mut reference);
    for _ in 0..REFERENCE_ROUNDS {
        let aligned = align(sel, reference.as_slice().into(), None)?;
        reference = aligned
            .mean_axis(Axis(0))
            .expect("at least one frame")
            .to_vec();
        centre(&mut reference);
    }
    Ok(reference)
}

impl Representation {
    /// Fits `kind` for `system` (a molecule) on its Cartesian frames `x` `[n ≥ 2, 3·atoms]`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (`vae.representation`) for a system that is not a molecule;
    /// [`Error::Shape`] for frames of the wrong width; [`Error::Numerical`] for a coordinate
    /// with no spread in the data.
    pub fn fit(
        kind: RepresentationKind,
        system: &dyn System,
        x: ArrayView2<'_, f64>,
    ) -> Result<Self> {
        let Some(masses) = system.atom_masses() else {
            return Err(Error::invalid(
                "vae.representation",
                format!(
                    "`{}` needs a molecule (an `openmm:` system); {} has no atoms: leave representation out",
                    kind.name(),
                    system.spec()
                ),
            ));
        };
        if kind == RepresentationKind::Internal {
            return Ok(Self::Internal(
                InternalLayer::fit_constrained(
                    internal_coordinates(system)?,
                    x,
                    fixed_bonds(system)?,
                )
                .context("fitting the internal coordinates of [vae] representation")?,
            ));
        }
        let atoms: Vec<usize> = (0..masses.len())
            .filter(|&a| kind == RepresentationKind::Cartesian || masses[a] > HEAVY_AMU)
            .collect();
        let sel = select_atoms(x, &atoms, masses.len())?;
        if sel.nrows() < 2 {
            return Err(Error::shape("VAE data", "[n ≥ 2, …]", sel.nrows()));
        }
        let reference = mean_structure(sel.view())?;
        let aligned = align(sel.view(), reference.as_slice().into(), None)?;
        let mean = aligned.mean_axis(Axis(0)).expect("n ≥ 2").to_vec();
        let scale = aligned.std_axis(Axis(0), 1.0).to_vec();
        if let Some(c) = scale.iter().position(|&s| !(s > 1e-12 && s.is_finite())) {
            return Err(Error::Numerical {
                what: "[vae] representation".into(),
                reason: format!(
                    "aligned coordinate {} of atom {} has no spread in the VAE data (sd {}); the frames must differ",
                    ["x", "y", "z"][c % 3],
                    atoms[c / 3],
                    scale[c]
                ),
            });
        }
        Ok(Self::Aligned(AlignedCoordinates {
            file: AlignedFile {
                kind,
                n_atoms: masses.len(),
                atoms,
                reference,
                mean,
                scale,
            },
        }))
    }

    /// Its kind.
    pub fn kind(&self) -> RepresentationKind {
        match self {
            Self::Aligned(a) => a.file.kind,
            Self::Internal(_) => RepresentationKind::Internal,
        }
    }

    /// Columns per configuration.
    pub fn dim(&self) -> usize {
        match self {
            Self::Aligned(a) => a.file.mean.len(),
            Self::Internal(l) => l.dim(),
        }
    }

    /// Indices of the periodic columns (period 2π): the free torsions of `internal`.
    pub fn periodic(&self) -> Vec<usize> {
        match self {
            Self::Aligned(_) => Vec::new(),
            Self::Internal(l) => l
                .periodic()
                .iter()
                .enumerate()
                .filter_map(|(i, &p)| p.then_some(i))
                .collect(),
        }
    }

    /// The representation of Cartesian frames `x` `[n, 3·atoms]` (nm): `[n, dim]`.
    ///
    /// # Errors
    /// [`Error::Shape`] for frames of the wrong width.
    pub fn features(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        match self {
            Self::Aligned(a) => {
                let mut y = a.superpose(x)?;
                for mut row in y.outer_iter_mut() {
                    for ((v, m), s) in row.iter_mut().zip(&a.file.mean).zip(&a.file.scale) {
                        *v = (*v - m) / s;
                    }
                }
                Ok(y)
            }
            Self::Internal(l) => Ok(l.to_internal(x)?.0),
        }
    }

    /// The positions (nm) representation rows `y` hold: whole molecules `[n, 3·atoms]` for
    /// `cartesian` and `internal` (the latter in its canonical frame), the aligned heavy atoms
    /// `[n, 3·heavy atoms]` for `heavy-atoms`.
    ///
    /// # Errors
    /// [`Error::Shape`] for rows of the wrong width.
    pub fn positions(&self, y: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        check_width(y, self.dim())?;
        match self {
            Self::Aligned(a) => Ok(a.unstandardise(y)),
            Self::Internal(l) => Ok(l.to_cartesian(y)?.0),
        }
    }

    /// Where atom `atom` of the molecule is among the atoms of [`Representation::positions`],
    /// or `None` if it is not represented.
    pub fn atom_index(&self, atom: usize) -> Option<usize> {
        match self {
            Self::Aligned(a) => a.file.atoms.iter().position(|&b| b == atom),
            Self::Internal(l) => (atom < l.cartesian_dim() / 3).then_some(atom),
        }
    }

    /// The reduced energy (kT) of representation rows whose Boltzmann density VAE Monte Carlo
    /// samples, or `None` for `heavy-atoms`; see the module documentation.
    pub fn energy<'a>(&'a self, reduced: Reduced<'a>) -> Option<RepresentationEnergy<'a>> {
        (self.kind() != RepresentationKind::HeavyAtoms).then_some(RepresentationEnergy {
            reduced,
            repr: self,
        })
    }

    /// Writes the statistics into run directory `dir` atomically.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn save(&self, dir: &Path) -> Result<()> {
        match self {
            Self::Aligned(a) => boltzflow_io::write_json(&dir.join(REPRESENTATION_FILE), &a.file),
            Self::Internal(l) => save_layer(dir, l),
        }
    }

    /// The representation `kind` of `system` kept in run directory `dir`, or `None` if the
    /// run has not written it yet.
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::BadFile`] naming the file, also for statistics of another kind
    /// or molecule.
    pub fn load(kind: RepresentationKind, system: &dyn System, dir: &Path) -> Result<Option<Self>> {
        if kind == RepresentationKind::Internal {
            return Ok(
                load_layer(dir, internal_coordinates(system)?, fixed_bonds(system)?)?
                    .map(Self::Internal),
            );
        }
        let path = dir.join(REPRESENTATION_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let bad = |reason: String| Error::BadFile {
            path: path.clone(),
            reason,
        };
        let file: AlignedFile = boltzflow_io::read_json(&path, "")?;
        let n_atoms = system.atom_masses().map_or(0, <[f64]>::len);
        let m = 3 * file.atoms.len();
        if file.kind != kind
            || file.n_atoms != n_atoms
            || file.atoms.iter().any(|&a| a >= n_atoms)
            || file.reference.len() != m
            || file.mean.len() != m
            || file.scale.len() != m
        {
            return Err(bad(format!(
                "statistics of `{}` for {} atoms do not fit `{}` of {} ({n_atoms} atoms); retrain with `train --force`",
                file.kind.name(),
                file.n_atoms,
                kind.name(),
                system.spec()
            )));
        }
        Ok(Some(Self::Aligned(AlignedCoordinates { file })))
    }
}

fn check_width(y: ArrayView2<'_, f64>, dim: usize) -> Result<()> {
    if y.ncols() != dim {
        return Err(Error::shape(
            "representation rows",
            format!("[n, {dim}]"),
            format!("[{}, {}]", y.nrows(), y.ncols()),
        ));
    }
    Ok(())
}

/// The reduced energy of representation rows; see [`Representation::energy`].
pub struct RepresentationEnergy<'a> {
    reduced: Reduced<'a>,
    repr: &'a Representation,
}

impl Energy for RepresentationEnergy<'_> {
    fn dim(&self) -> usize {
        self.repr.dim()
    }

    fn energy_into(&self, y: ArrayView2<f64>, out: ArrayViewMut1<f64>) -> Result<()> {
        match self.repr {
            Representation::Internal(layer) => InternalEnergy {
                inner: &self.reduced,
                layer,
            }
            .energy_into(y, out),
            Representation::Aligned(a) => {
                check_width(y, self.repr.dim())?;
                self.reduced.energy_into(a.unstandardise(y).view(), out)
            }
        }
    }

    /// Forces on the representation's columns: −∂u/∂y (for `cartesian`, scale ⊙ F(x)).
    fn energy_and_forces_into(
        &self,
        y: ArrayView2<f64>,
        energy: ArrayViewMut1<f64>,
        mut forces: ArrayViewMut2<f64>,
    ) -> Result<()> {
        match self.repr {
            Representation::Internal(layer) => InternalEnergy {
                inner: &self.reduced,
                layer,
            }
            .energy_and_forces_into(y, energy, forces),
            Representation::Aligned(a) => {
                check_width(y, self.repr.dim())?;
                let x = a.unstandardise(y);
                let mut fx = Array2::zeros(x.raw_dim());
                self.reduced
                    .energy_and_forces_into(x.view(), energy, fx.view_mut())?;
                for (mut fy, fxr) in forces.outer_iter_mut().zip(fx.outer_iter()) {
                    for ((f, g), s) in fy.iter_mut().zip(fxr).zip(&a.file.scale) {
                        *f = s * g;
                    }
                }
                Ok(())
            }
        }
    }
}

/// φ and ψ (rad) of representation rows `y`, `[n, 2]`, or `None` for a molecule without a
/// residue with both (or a representation without their atoms).
///
/// # Errors
/// [`Error::Shape`] for rows of the wrong width.
pub fn phi_psi(
    repr: &Representation,
    system: &dyn System,
    y: ArrayView2<'_, f64>,
) -> Result<Option<Array2<f64>>> {
    let Some((_, quads)) = system
        .as_openmm()
        .and_then(|m| m.topology())
        .and_then(boltzflow_coords::features::first_phi_psi)
    else {
        return Ok(None);
    };
    let Some(quads) = quads
        .iter()
        .map(|q| {
            let i = q.map(|a| repr.atom_index(a));
            Some([i[0]?, i[1]?, i[2]?, i[3]?])
        })
        .collect::<Option<Vec<[usize; 4]>>>()
    else {
        return Ok(None);
    };
    Ok(Some(boltzflow_coords::features::dihedrals(
        repr.positions(y)?.view(),
        &quads,
    )?))
}
