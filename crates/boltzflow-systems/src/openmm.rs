//! Molecules from OpenMM System XML files: a native, f64 evaluation of the AMBER-style force
//! field that `XmlSerializer` writes (bonds, angles, periodic torsions, and Coulomb plus
//! Lennard-Jones without cutoff), with analytic forces, batched over configurations and
//! parallel over the batch.
//!
//! Units are OpenMM's: positions in nm (`[3·n_atoms]` per configuration, x, y, z interleaved),
//! energies in kJ/mol, forces in kJ/(mol nm), masses in amu. The functional forms are OpenMM's
//! (see its user guide, "Standard Forces"):
//!
//! * `HarmonicBondForce`: ½k(r − r₀)²
//! * `HarmonicAngleForce`: ½k(θ − θ₀)²
//! * `PeriodicTorsionForce`: k(1 + cos(nφ − φ₀)), φ the IUPAC dihedral (trans = π)
//! * `NonbondedForce`, `NoCutoff`: Σ_{i<j} qᵢqⱼ/(4πε₀ r) + 4ε(σ¹²/r¹² − σ⁶/r⁶) with
//!   σ = (σᵢ + σⱼ)/2, ε = √(εᵢεⱼ); an exception replaces a pair's qᵢqⱼ, σ, ε (excluding it when
//!   both are zero).

use std::path::{Path, PathBuf};

use boltzflow_core::{Energy, Error, Result};
use boltzflow_io::openmm::{ForceXml, SystemXml};
use boltzflow_io::pdb::{PdbStructure, Topology};
use ndarray::{Array1, Array2, ArrayView2};

use crate::System;
use crate::kernel::{ROWS_PER_TASK, RowKernel, impl_energy_via_rows};

/// Permittivity of vacuum in e²/(kJ mol⁻¹ nm), from OpenMM's constants (CODATA 2018:
/// ε₀ = 8.8541878128·10⁻¹² F/m, e = 1.602176634·10⁻¹⁹ C, N_A = 6.02214076·10²³ /mol).
const EPSILON0: f64 =
    1e-6 * 8.854_187_812_8e-12 / (1.602_176_634e-19 * 1.602_176_634e-19 * 6.022_140_76e23);
/// 1/(4πε₀) in kJ mol⁻¹ nm e⁻² (≈ 138.935 458).
pub const ONE_4PI_EPS0: f64 = 1.0 / (4.0 * std::f64::consts::PI * EPSILON0);

#[derive(Debug, Clone, Copy)]
struct Bond {
    i: usize,
    j: usize,
    r0: f64,
    k: f64,
}

#[derive(Debug, Clone, Copy)]
struct Angle {
    i: usize,
    j: usize,
    k_atom: usize,
    theta0: f64,
    k: f64,
}

#[derive(Debug, Clone, Copy)]
struct Torsion {
    atoms: [usize; 4],
    n: f64,
    phase: f64,
    k: f64,
}

/// A nonbonded pair with combined parameters: c = qᵢqⱼ/(4πε₀), σ², 4ε.
#[derive(Debug, Clone, Copy)]
struct Pair {
    i: usize,
    j: usize,
    coulomb: f64,
    sigma2: f64,
    eps4: f64,
}

#[derive(Debug, Clone)]
enum Terms {
    Bonds(Vec<Bond>),
    Angles(Vec<Angle>),
    Torsions(Vec<Torsion>),
    Pairs(Vec<Pair>),
}

/// One energy-bearing force of the System and the slot of its group.
#[derive(Debug, Clone)]
struct Force {
    slot: usize,
    terms: Terms,
}

/// A force field read from an OpenMM System XML file.
#[derive(Debug, Clone)]
pub struct ForceField {
    path: PathBuf,
    masses: Vec<f64>,
    forces: Vec<Force>,
    /// Force groups that carry energy, ascending; slot s holds groups[s].
    groups: Vec<u32>,
    /// The OpenMM class names of the forces in each group.
    group_names: Vec<Vec<&'static str>>,
    /// Bonded pairs (from the bond force), i < j.
    bonds: Vec<[usize; 2]>,
}

impl ForceField {
    /// Reads `path` (see [`boltzflow_io::openmm`] for what is accepted).
    ///
    /// # Errors
    /// As [`boltzflow_io::openmm::read_system_xml`].
    pub fn from_file(path: &Path) -> Result<Self> {
        Ok(Self::from_xml(&boltzflow_io::openmm::read_system_xml(
            path,
        )?))
    }

    /// Builds the evaluation tables of a parsed System.
    pub fn from_xml(xml: &SystemXml) -> Self {
        let n = xml.n_atoms();
        let mut groups: Vec<u32> = xml
            .forces
            .iter()
            .filter(|f| !matches!(f, ForceXml::CmMotionRemover { .. }))
            .map(ForceXml::group)
            .collect();
        groups.sort_unstable();
        groups.dedup();
        let slot = |g: u32| groups.binary_search(&g).expect("collected above");
        let mut group_names = vec![Vec::new(); groups.len()];
        let mut forces = Vec::new();
        let mut bonds = Vec::new();
        for f in &xml.forces {
            let terms = match f {
                ForceXml::HarmonicBond { bonds: b, .. } => {
                    bonds.extend(
                        b.iter()
                            .map(|b| [b.atoms[0].min(b.atoms[1]), b.atoms[0].max(b.atoms[1])]),
                    );
                    Terms::Bonds(
                        b.iter()
                            .map(|b| Bond {
                                i: b.atoms[0],
                                j: b.atoms[1],
                                r0: b.length,
                                k: b.k,
                            })
                            .collect(),
                    )
                }
                ForceXml::HarmonicAngle { angles, .. } => Terms::Angles(
                    angles
                        .iter()
                        .map(|a| Angle {
                            i: a.atoms[0],
                            j: a.atoms[1],
                            k_atom: a.atoms[2],
                            theta0: a.angle,
                            k: a.k,
                        })
                        .collect(),
                ),
                ForceXml::PeriodicTorsion { torsions, .. } => Terms::Torsions(
                    torsions
                        .iter()
                        .map(|t| Torsion {
                            atoms: t.atoms,
                            n: f64::from(t.periodicity),
                            phase: t.phase,
                            k: t.k,
                        })
                        .collect(),
                ),
                ForceXml::Nonbonded {
                    particles,
                    exceptions,
                    ..
                } => Terms::Pairs(nonbonded_pairs(n, particles, exceptions)),
                ForceXml::CmMotionRemover { .. } => continue,
            };
            let s = slot(f.group());
            group_names[s].push(f.name());
            forces.push(Force { slot: s, terms });
        }
        bonds.sort_unstable();
        bonds.dedup();
        Self {
            path: xml.path.clone(),
            masses: xml.masses.clone(),
            forces,
            groups,
            group_names,
            bonds,
        }
    }

    /// Number of atoms.
    pub fn n_atoms(&self) -> usize {
        self.masses.len()
    }

    /// Atom masses (amu), `[n_atoms]`.
    pub fn masses(&self) -> &[f64] {
        &self.masses
    }

    /// The file the force field was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The force groups that carry energy, ascending (the columns of [`ForceField::group_energies`]).
    pub fn groups(&self) -> &[u32] {
        &self.groups
    }

    /// The OpenMM class names of the forces in each group of [`ForceField::groups`].
    pub fn group_names(&self) -> &[Vec<&'static str>] {
        &self.group_names
    }

    /// Bonded atom pairs `[i, j]`, i < j, from the bond forces (the molecule's bond graph).
    pub fn bonds(&self) -> &[[usize; 2]] {
        &self.bonds
    }

    /// Energies per force group, `[n, groups().len()]` (kJ/mol), as OpenMM's
    /// `getState(getEnergy=True, groups={g})`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` is not `[n, 3·n_atoms]`.
    pub fn group_energies(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        use rayon::prelude::*;
        let dim = 3 * self.n_atoms();
        let ng = self.groups.len();
        let mut out = Array2::zeros((x.nrows(), ng));
        boltzflow_core::energy::check_batch_shapes(dim, &x, x.nrows(), None)?;
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("standard layout");
        let os = out.as_slice_mut().expect("new array");
        xs.par_chunks(ROWS_PER_TASK * dim)
            .zip(os.par_chunks_mut(ROWS_PER_TASK * ng))
            .for_each(|(xc, oc)| {
                for (row, o) in xc.chunks_exact(dim).zip(oc.chunks_exact_mut(ng)) {
                    self.evaluate(row, o, None);
                }
            });
        Ok(out)
    }

    /// Adds each force's energy of one configuration to `per_group[slot]` and, if given, its
    /// forces to `f` (`[3·n_atoms]`, zeroed by the caller).
    fn evaluate(&self, x: &[f64], per_group: &mut [f64], mut f: Option<&mut [f64]>) {
        for force in &self.forces {
            let e = match &force.terms {
                Terms::Bonds(b) => bonds(x, b, f.as_deref_mut()),
                Terms::Angles(a) => angles(x, a, f.as_deref_mut()),
                Terms::Torsions(t) => torsions(x, t, f.as_deref_mut()),
                Terms::Pairs(p) => pairs(x, p, f.as_deref_mut()),
            };
            per_group[force.slot] += e;
        }
    }

    fn total(&self, x: &[f64], f: Option<&mut [f64]>) -> f64 {
        // Small fixed buffer: 32 force groups at most.
        let mut per_group = [0.0; 32];
        self.evaluate(x, &mut per_group[..self.groups.len()], f);
        per_group.iter().sum()
    }
}

fn nonbonded_pairs(
    n: usize,
    particles: &[boltzflow_io::openmm::NonbondedParticleXml],
    exceptions: &[boltzflow_io::openmm::ExceptionXml],
) -> Vec<Pair> {
    use std::collections::HashMap;
    let exc: HashMap<(usize, usize), _> = exceptions
        .iter()
        .map(|e| ((e.atoms[0].min(e.atoms[1]), e.atoms[0].max(e.atoms[1])), e))
        .collect();
    let mut out = Vec::with_capacity(n * (n - 1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            let (qq, sigma, eps) = match exc.get(&(i, j)) {
                Some(e) => (e.charge_product, e.sigma, e.epsilon),
                None => {
                    let (a, b) = (particles[i], particles[j]);
                    (
                        a.charge * b.charge,
                        0.5 * (a.sigma + b.sigma),
                        (a.epsilon * b.epsilon).sqrt(),
                    )
                }
            };
            if qq != 0.0 || eps != 0.0 {
                out.push(Pair {
                    i,
                    j,
                    coulomb: ONE_4PI_EPS0 * qq,
                    sigma2: sigma * sigma,
                    eps4: 4.0 * eps,
                });
            }
        }
    }
    out
}

#[inline]
fn pos(x: &[f64], i: usize) -> [f64; 3] {
    [x[3 * i], x[3 * i + 1], x[3 * i + 2]]
}
#[inline]
fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
#[inline]
fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
#[inline]
fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
#[inline]
fn add_force(f: &mut [f64], i: usize, s: f64, v: [f64; 3]) {
    f[3 * i] += s * v[0];
    f[3 * i + 1] += s * v[1];
    f[3 * i + 2] += s * v[2];
}

fn bonds(x: &[f64], terms: &[Bond], mut f: Option<&mut [f64]>) -> f64 {
    let mut e = 0.0;
    for b in terms {
        let d = sub(pos(x, b.j), pos(x, b.i));
        let r = dot(d, d).sqrt();
        let dr = r - b.r0;
        e += 0.5 * b.k * dr * dr;
        if let Some(f) = f.as_deref_mut()
            && r > 0.0
        {
            let s = b.k * dr / r;
            add_force(f, b.i, s, d);
            add_force(f, b.j, -s, d);
        }
    }
    e
}

fn angles(x: &[f64], terms: &[Angle], mut f: Option<&mut [f64]>) -> f64 {
    let mut e = 0.0;
    for a in terms {
        let xj = pos(x, a.j);
        let (u, v) = (sub(pos(x, a.i), xj), sub(pos(x, a.k_atom), xj));
        let n = cross(u, v);
        let nn = dot(n, n).sqrt();
        // atan2 keeps full precision near 0 and π, where acos of the cosine does not.
        let theta = nn.atan2(dot(u, v));
        let dtheta = theta - a.theta0;
        e += 0.5 * a.k * dtheta * dtheta;
        if let Some(f) = f.as_deref_mut()
            && nn > 0.0
        {
            // ∂θ/∂u = (u × n)/(|u|²|n|), ∂θ/∂v = −(v × n)/(|v|²|n|).
            let de = a.k * dtheta;
            let fu = cross(u, n);
            let fv = cross(v, n);
            let su = -de / (dot(u, u) * nn);
            let sv = de / (dot(v, v) * nn);
            add_force(f, a.i, su, fu);
            add_force(f, a.k_atom, sv, fv);
            add_force(f, a.j, -su, fu);
            add_force(f, a.j, -sv, fv);
        }
    }
    e
}

/// The IUPAC dihedral φ ∈ (−π, π] of four points and its gradient, with b₁ = x₂ − x₁,
/// b₂ = x₃ − x₂, b₃ = x₄ − x₃: φ = atan2(|b₂| b₁·(b₂×b₃), (b₁×b₂)·(b₂×b₃)) (Blondel & Karplus,
/// J. Comput. Chem. 1996). `None` for the gradient when three points are collinear.
#[inline]
pub fn dihedral_and_gradient(p: [[f64; 3]; 4]) -> (f64, Option<[[f64; 3]; 4]>) {
    let b1 = sub(p[1], p[0]);
    let b2 = sub(p[2], p[1]);
    let b3 = sub(p[3], p[2]);
    let m = cross(b1, b2);
    let n = cross(b2, b3);
    let b2n = dot(b2, b2).sqrt();
    let phi = (b2n * dot(b1, n)).atan2(dot(m, n));
    let (mm, nn) = (dot(m, m), dot(n, n));
    if mm == 0.0 || nn == 0.0 || b2n == 0.0 {
        return (phi, None);
    }
    let g1 = m.map(|c| -b2n / mm * c);
    let g4 = n.map(|c| b2n / nn * c);
    let (p1, p3) = (dot(b1, b2) / (b2n * b2n), dot(b3, b2) / (b2n * b2n));
    let g2 = [0, 1, 2].map(|c| (-p1 - 1.0) * g1[c] + p3 * g4[c]);
    let g3 = [0, 1, 2].map(|c| (-p3 - 1.0) * g4[c] + p1 * g1[c]);
    (phi, Some([g1, g2, g3, g4]))
}

fn torsions(x: &[f64], terms: &[Torsion], mut f: Option<&mut [f64]>) -> f64 {
    let mut e = 0.0;
    for t in terms {
        let p = t.atoms.map(|a| pos(x, a));
        match f.as_deref_mut() {
            None => {
                let (phi, _) = dihedral_and_gradient(p);
                e += t.k * (1.0 + (t.n * phi - t.phase).cos());
            }
            Some(f) => {
                let (phi, grad) = dihedral_and_gradient(p);
                let arg = t.n * phi - t.phase;
                let (s, c) = arg.sin_cos();
                e += t.k * (1.0 + c);
                if let Some(g) = grad {
                    // F = −dE/dφ ∇φ, dE/dφ = −k n sin(nφ − φ₀).
                    let scale = t.k * t.n * s;
                    for (a, gk) in t.atoms.iter().zip(g) {
                        add_force(f, *a, scale, gk);
                    }
                }
            }
        }
    }
    e
}

fn pairs(x: &[f64], terms: &[Pair], mut f: Option<&mut [f64]>) -> f64 {
    let mut e = 0.0;
    for p in terms {
        let d = sub(pos(x, p.j), pos(x, p.i));
        let r2 = dot(d, d);
        let inv_r2 = 1.0 / r2;
        let inv_r = inv_r2.sqrt();
        let s6 = (p.sigma2 * inv_r2).powi(3);
        let lj = p.eps4 * (s6 * s6 - s6);
        let coulomb = p.coulomb * inv_r;
        e += lj + coulomb;
        if let Some(f) = f.as_deref_mut() {
            // −(1/r) dE/dr = (12·4ε s¹² − 6·4ε s⁶ + c/r) / r².
            let s = (p.eps4 * (12.0 * s6 * s6 - 6.0 * s6) + coulomb) * inv_r2;
            add_force(f, p.i, -s, d);
            add_force(f, p.j, s, d);
        }
    }
    e
}

impl RowKernel for ForceField {
    fn kernel_dim(&self) -> usize {
        3 * self.n_atoms()
    }
    fn energy_rows(&self, x: &[f64], e: &mut [f64]) {
        let dim = self.kernel_dim();
        for (row, ei) in x.chunks_exact(dim).zip(e.iter_mut()) {
            *ei = self.total(row, None);
        }
    }
    fn energy_forces_rows(&self, x: &[f64], e: &mut [f64], f: &mut [f64]) {
        let dim = self.kernel_dim();
        f.fill(0.0);
        for ((row, ei), fr) in x
            .chunks_exact(dim)
            .zip(e.iter_mut())
            .zip(f.chunks_exact_mut(dim))
        {
            *ei = self.total(row, Some(fr));
        }
    }
}
impl_energy_via_rows!(ForceField);

/// `openmm:FILE.xml`: a molecule's force field with, optionally, the topology and positions of a
/// PDB file (the starting configuration of simulations, and what trajectories are written with).
#[derive(Debug, Clone)]
pub struct OpenMmSystem {
    /// The force field.
    pub force_field: ForceField,
    structure: Option<PdbStructure>,
}

impl OpenMmSystem {
    /// Reads the System XML at `path`.
    ///
    /// # Errors
    /// As [`ForceField::from_file`].
    pub fn from_file(path: &Path) -> Result<Self> {
        Ok(Self {
            force_field: ForceField::from_file(path)?,
            structure: None,
        })
    }

    /// Attaches a PDB structure (topology and starting positions).
    ///
    /// # Errors
    /// [`Error::BadFile`] naming both files if the atom counts differ.
    pub fn with_structure(mut self, structure: PdbStructure, pdb_path: &Path) -> Result<Self> {
        let (n_pdb, n_xml) = (structure.topology.n_atoms(), self.force_field.n_atoms());
        if n_pdb != n_xml {
            return Err(Error::BadFile {
                path: pdb_path.to_path_buf(),
                reason: format!(
                    "it has {n_pdb} atoms, but the System `{}` has {n_xml}; give the PDB the System was built from",
                    self.force_field.path().display()
                ),
            });
        }
        self.structure = Some(structure);
        Ok(self)
    }

    /// The topology of the attached PDB, if any.
    pub fn topology(&self) -> Option<&Topology> {
        self.structure.as_ref().map(|s| &s.topology)
    }

    /// The positions of the attached PDB (nm, `[3·n_atoms]`), if any.
    pub fn positions(&self) -> Option<&Array1<f64>> {
        self.structure.as_ref().map(|s| &s.positions)
    }
}

impl Energy for OpenMmSystem {
    fn dim(&self) -> usize {
        self.force_field.dim()
    }
    fn energy_into(
        &self,
        x: ndarray::ArrayView2<f64>,
        out: ndarray::ArrayViewMut1<f64>,
    ) -> Result<()> {
        self.force_field.energy_into(x, out)
    }
    fn energy_and_forces_into(
        &self,
        x: ndarray::ArrayView2<f64>,
        energy: ndarray::ArrayViewMut1<f64>,
        forces: ndarray::ArrayViewMut2<f64>,
    ) -> Result<()> {
        self.force_field.energy_and_forces_into(x, energy, forces)
    }
}

impl System for OpenMmSystem {
    fn spec(&self) -> String {
        format!("openmm:{}", self.force_field.path().display())
    }
    fn reference_box(&self) -> Option<Vec<[f64; 2]>> {
        None
    }
    /// The PDB positions; zeros (infinite energy) without a PDB.
    fn initial_configuration(&self) -> Array1<f64> {
        self.positions()
            .cloned()
            .unwrap_or_else(|| Array1::zeros(self.force_field.dim()))
    }
    fn atom_masses(&self) -> Option<&[f64]> {
        Some(self.force_field.masses())
    }
    fn as_openmm(&self) -> Option<&OpenMmSystem> {
        Some(self)
    }
}
