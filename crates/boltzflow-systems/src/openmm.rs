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
//! * `GBSAOBCForce`, `NoCutoff`: generalized Born implicit solvent with OBC-II Born radii and
//!   the ACE surface-area term (see [`crate::obc`] for the formulas).

use std::path::{Path, PathBuf};

use boltzflow_core::geometry::{add_to_point, cross, dihedral, dot, norm, point, sub};
use boltzflow_core::{Energy, Error, Result};
use boltzflow_io::openmm::{ForceXml, SystemXml};
use boltzflow_io::pdb::{PdbStructure, Topology};
use ndarray::{Array1, Array2, ArrayView2};

use crate::System;
use crate::kernel::{ROWS_PER_TASK, RowKernel, impl_energy_via_rows};
use crate::obc::Obc;

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

/// One Fourier term k(1 + cos(nφ − φ₀)) with cos φ₀ and sin φ₀ precomputed.
#[derive(Debug, Clone, Copy)]
struct TorsionTerm {
    n: u32,
    k: f64,
    cos_phase: f64,
    sin_phase: f64,
}

/// The torsion terms of one atom quadruple: the dihedral is computed once for all of them, and
/// cos nφ, sin nφ follow from cos φ, sin φ by the angle-addition recurrence (no atan2, sin, cos).
#[derive(Debug, Clone)]
struct TorsionGroup {
    atoms: [usize; 4],
    terms: Vec<TorsionTerm>,
}

/// Nonbonded parameters of every pair i < j, row by row (row i holds j = i+1..n, padded with
/// zeros to a multiple of [`LANES`]): c = qᵢqⱼ/(4πε₀), σ², 4ε. Excluded pairs and padding hold
/// zeros, so they contribute exactly nothing. Dense, padded rows let the inner loop run over
/// contiguous j in full SIMD lanes without gathers.
#[derive(Debug, Clone)]
struct PairTable {
    n: usize,
    /// Start of each row, `[n]`.
    row_start: Vec<usize>,
    coulomb: Vec<f64>,
    sigma2: Vec<f64>,
    eps4: Vec<f64>,
}

impl PairTable {
    /// Padded length of row i.
    fn row_len(&self, i: usize) -> usize {
        (self.n - 1 - i).div_ceil(LANES) * LANES
    }
}

#[derive(Debug, Clone)]
enum Terms {
    Bonds(Vec<Bond>),
    Angles(Vec<Angle>),
    Torsions(Vec<TorsionGroup>),
    Pairs(PairTable),
    Obc(Obc),
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
    /// Bonded pairs (from the bond force and the constraints), i < j.
    bonds: Vec<[usize; 2]>,
    /// Distance constraints (i, j, d in nm).
    constraints: Vec<(usize, usize, f64)>,
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
                ForceXml::PeriodicTorsion { torsions, .. } => {
                    Terms::Torsions(torsion_groups(torsions))
                }
                ForceXml::Nonbonded {
                    particles,
                    exceptions,
                    ..
                } => Terms::Pairs(pair_table(n, particles, exceptions)),
                ForceXml::GbsaObc {
                    particles,
                    solute_dielectric,
                    solvent_dielectric,
                    surface_area_energy,
                    ..
                } => Terms::Obc(Obc::new(
                    particles,
                    *solute_dielectric,
                    *solvent_dielectric,
                    *surface_area_energy,
                )),
                ForceXml::CmMotionRemover { .. } => continue,
            };
            let s = slot(f.group());
            group_names[s].push(f.name());
            forces.push(Force { slot: s, terms });
        }
        // A constrained bond (constraints=HBonds) leaves the bond force but is still a bond.
        bonds.extend(
            xml.constraints
                .iter()
                .map(|&(i, j, _)| [i.min(j), i.max(j)]),
        );
        bonds.sort_unstable();
        bonds.dedup();
        Self {
            path: xml.path.clone(),
            masses: xml.masses.clone(),
            forces,
            groups,
            group_names,
            bonds,
            constraints: xml.constraints.clone(),
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

    /// Bonded atom pairs `[i, j]`, i < j, from the bond forces and the constraints (the
    /// molecule's bond graph).
    pub fn bonds(&self) -> &[[usize; 2]] {
        &self.bonds
    }

    /// Distance constraints `(i, j, d)` of the System (nm): dynamics keep |xᵢ − xⱼ| = d.
    pub fn constraints(&self) -> &[(usize, usize, f64)] {
        &self.constraints
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
                let mut scratch = self.scratch();
                for (row, o) in xc.chunks_exact(dim).zip(oc.chunks_exact_mut(ng)) {
                    self.evaluate(row, o, None, &mut scratch);
                }
            });
        Ok(out)
    }

    /// Adds each force's energy of one configuration to `per_group[slot]` and, if given, its
    /// forces to `f` (`[3·n_atoms]`, zeroed by the caller).
    fn evaluate(
        &self,
        x: &[f64],
        per_group: &mut [f64],
        mut f: Option<&mut [f64]>,
        scratch: &mut [f64],
    ) {
        for force in &self.forces {
            let e = match &force.terms {
                Terms::Bonds(b) => bonds(x, b, f.as_deref_mut()),
                Terms::Angles(a) => angles(x, a, f.as_deref_mut()),
                Terms::Torsions(t) => torsions(x, t, f.as_deref_mut()),
                Terms::Pairs(p) => pairs(x, p, f.as_deref_mut(), scratch),
                Terms::Obc(o) => o.energy(x, f.as_deref_mut(), scratch),
            };
            per_group[force.slot] += e;
        }
    }

    fn total(&self, x: &[f64], f: Option<&mut [f64]>, scratch: &mut [f64]) -> f64 {
        // Small fixed buffer: 32 force groups at most.
        let mut per_group = [0.0; 32];
        self.evaluate(x, &mut per_group[..self.groups.len()], f, scratch);
        per_group.iter().sum()
    }

    /// Scratch space for one block of rows.
    fn scratch(&self) -> Vec<f64> {
        let n = self.n_atoms();
        vec![0.0; pair_scratch_len(n).max(Obc::scratch_len(n))]
    }
}

fn torsion_groups(torsions: &[boltzflow_io::openmm::TorsionXml]) -> Vec<TorsionGroup> {
    let mut groups: Vec<TorsionGroup> = Vec::new();
    for t in torsions {
        let term = TorsionTerm {
            n: t.periodicity,
            k: t.k,
            cos_phase: t.phase.cos(),
            sin_phase: t.phase.sin(),
        };
        match groups.iter_mut().find(|g| g.atoms == t.atoms) {
            Some(g) => g.terms.push(term),
            None => groups.push(TorsionGroup {
                atoms: t.atoms,
                terms: vec![term],
            }),
        }
    }
    groups
}

fn pair_table(
    n: usize,
    particles: &[boltzflow_io::openmm::NonbondedParticleXml],
    exceptions: &[boltzflow_io::openmm::ExceptionXml],
) -> PairTable {
    let mut row_start = Vec::with_capacity(n);
    let mut len = 0;
    for i in 0..n {
        row_start.push(len);
        len += (n - 1 - i).div_ceil(LANES) * LANES;
    }
    let mut t = PairTable {
        n,
        row_start,
        coulomb: vec![0.0; len],
        sigma2: vec![0.0; len],
        eps4: vec![0.0; len],
    };
    let set = |t: &mut PairTable, i: usize, j: usize, qq: f64, sigma: f64, eps: f64| {
        let (i, j) = (i.min(j), i.max(j));
        let k = t.row_start[i] + (j - i - 1);
        t.coulomb[k] = ONE_4PI_EPS0 * qq;
        t.sigma2[k] = sigma * sigma;
        t.eps4[k] = 4.0 * eps;
    };
    for i in 0..n {
        for j in i + 1..n {
            let (a, b) = (particles[i], particles[j]);
            set(
                &mut t,
                i,
                j,
                a.charge * b.charge,
                0.5 * (a.sigma + b.sigma),
                (a.epsilon * b.epsilon).sqrt(),
            );
        }
    }
    // Exceptions replace the combined parameters.
    for e in exceptions {
        set(
            &mut t,
            e.atoms[0],
            e.atoms[1],
            e.charge_product,
            e.sigma,
            e.epsilon,
        );
    }
    t
}

fn bonds(x: &[f64], terms: &[Bond], mut f: Option<&mut [f64]>) -> f64 {
    let mut e = 0.0;
    for b in terms {
        let d = sub(point(x, b.j), point(x, b.i));
        let r = norm(d);
        let dr = r - b.r0;
        e += 0.5 * b.k * dr * dr;
        if let Some(f) = f.as_deref_mut()
            && r > 0.0
        {
            let s = b.k * dr / r;
            add_to_point(f, b.i, s, d);
            add_to_point(f, b.j, -s, d);
        }
    }
    e
}

fn angles(x: &[f64], terms: &[Angle], mut f: Option<&mut [f64]>) -> f64 {
    let mut e = 0.0;
    for a in terms {
        let xj = point(x, a.j);
        let (u, v) = (sub(point(x, a.i), xj), sub(point(x, a.k_atom), xj));
        let n = cross(u, v);
        let nn = norm(n);
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
            add_to_point(f, a.i, su, fu);
            add_to_point(f, a.k_atom, sv, fv);
            add_to_point(f, a.j, -su, fu);
            add_to_point(f, a.j, -sv, fv);
        }
    }
    e
}

fn torsions(x: &[f64], groups: &[TorsionGroup], mut f: Option<&mut [f64]>) -> f64 {
    let mut e = 0.0;
    for g in groups {
        let d = dihedral(g.atoms.map(|a| point(x, a)));
        // dE/dφ accumulated over the group's terms.
        let mut de = 0.0;
        for t in &g.terms {
            // cos nφ, sin nφ by the recurrence from (cos φ, sin φ).
            let (mut c, mut s) = (d.cos, d.sin);
            for _ in 1..t.n {
                (c, s) = (c * d.cos - s * d.sin, s * d.cos + c * d.sin);
            }
            // cos(nφ − φ₀) and its φ-derivative −n sin(nφ − φ₀).
            let cos_arg = c * t.cos_phase + s * t.sin_phase;
            let sin_arg = s * t.cos_phase - c * t.sin_phase;
            e += t.k * (1.0 + cos_arg);
            de -= t.k * f64::from(t.n) * sin_arg;
        }
        if let (Some(f), Some(grad)) = (f.as_deref_mut(), d.gradient) {
            for (a, ga) in g.atoms.iter().zip(grad) {
                add_to_point(f, *a, -de, ga);
            }
        }
    }
    e
}

/// SIMD lanes of the pair loop.
const LANES: usize = 4;

/// Coulomb + Lennard-Jones over all pairs. `pos` holds the configuration as structure of arrays
/// with [`LANES`] padding points after each coordinate block (`[x₀…x_{n−1}, pad, y₀…, pad, z₀…,
/// pad]`, stride n + LANES), `f` likewise. Per-lane partial sums keep the loop vectorisable with a
/// fixed summation order.
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1"))]
fn pairs_soa(pos: &[f64], t: &PairTable, mut f: Option<&mut [f64]>) -> f64 {
    let n = t.n;
    let stride = n + LANES;
    let (xs, rest) = pos.split_at(stride);
    let (ys, zs) = rest.split_at(stride);
    let mut e = [0.0; LANES];
    for i in 0..n.saturating_sub(1) {
        let (xi, yi, zi) = (xs[i], ys[i], zs[i]);
        let (start, len) = (t.row_start[i], t.row_len(i));
        let (c, s2, e4) = (
            &t.coulomb[start..start + len],
            &t.sigma2[start..start + len],
            &t.eps4[start..start + len],
        );
        let (xj, yj, zj) = (&xs[i + 1..], &ys[i + 1..], &zs[i + 1..]);
        let mut fi = [[0.0; LANES]; 3];
        for k in (0..len).step_by(LANES) {
            let mut sc = [0.0; LANES];
            let mut d = [[0.0; LANES]; 3];
            for l in 0..LANES {
                let j = k + l;
                d[0][l] = xj[j] - xi;
                d[1][l] = yj[j] - yi;
                d[2][l] = zj[j] - zi;
                let inv_r2 = 1.0 / (d[0][l] * d[0][l] + d[1][l] * d[1][l] + d[2][l] * d[2][l]);
                let inv_r = inv_r2.sqrt();
                let s = s2[j] * inv_r2;
                let s6 = s * s * s;
                let coulomb = c[j] * inv_r;
                e[l] += e4[j] * (s6 * s6 - s6) + coulomb;
                // −(1/r) dE/dr = (12·4ε s¹² − 6·4ε s⁶ + c/r) / r².
                sc[l] = (e4[j] * (12.0 * s6 * s6 - 6.0 * s6) + coulomb) * inv_r2;
            }
            if let Some(f) = f.as_deref_mut() {
                let (fx, rest) = f.split_at_mut(stride);
                let (fy, fz) = rest.split_at_mut(stride);
                let j0 = i + 1 + k;
                for l in 0..LANES {
                    fx[j0 + l] += sc[l] * d[0][l];
                    fy[j0 + l] += sc[l] * d[1][l];
                    fz[j0 + l] += sc[l] * d[2][l];
                    for a in 0..3 {
                        fi[a][l] -= sc[l] * d[a][l];
                    }
                }
            }
        }
        if let Some(f) = f.as_deref_mut() {
            for a in 0..3 {
                f[a * stride + i] += fi[a].iter().sum::<f64>();
            }
        }
    }
    e.iter().sum()
}

/// Scratch values per atom for [`pairs`] (positions and forces as padded structure of arrays).
fn pair_scratch_len(n: usize) -> usize {
    6 * (n + LANES)
}

/// Nonbonded energy (and forces added to the interleaved `f`) of one configuration, through the
/// structure-of-arrays kernel; `scratch` holds [`pair_scratch_len`] values.
fn pairs(x: &[f64], t: &PairTable, f: Option<&mut [f64]>, scratch: &mut [f64]) -> f64 {
    let n = t.n;
    let stride = n + LANES;
    let (pos, fsoa) = scratch[..pair_scratch_len(n)].split_at_mut(3 * stride);
    for a in 0..3 {
        for i in 0..n {
            pos[a * stride + i] = x[3 * i + a];
        }
        // Padding points far apart from each other and from the molecule (their parameters are
        // zero; a finite distance keeps 0 · (1/r) at 0).
        for l in 0..LANES {
            pos[a * stride + n + l] = 1e3 * (l + 1) as f64;
        }
    }
    match f {
        None => pairs_soa(pos, t, None),
        Some(f) => {
            fsoa.fill(0.0);
            let e = pairs_soa(pos, t, Some(fsoa));
            for i in 0..n {
                for a in 0..3 {
                    f[3 * i + a] += fsoa[a * stride + i];
                }
            }
            e
        }
    }
}

impl RowKernel for ForceField {
    fn kernel_dim(&self) -> usize {
        3 * self.n_atoms()
    }
    fn energy_rows(&self, x: &[f64], e: &mut [f64]) {
        let dim = self.kernel_dim();
        let mut scratch = self.scratch();
        for (row, ei) in x.chunks_exact(dim).zip(e.iter_mut()) {
            *ei = self.total(row, None, &mut scratch);
        }
    }
    fn energy_forces_rows(&self, x: &[f64], e: &mut [f64], f: &mut [f64]) {
        let dim = self.kernel_dim();
        let mut scratch = self.scratch();
        f.fill(0.0);
        for ((row, ei), fr) in x
            .chunks_exact(dim)
            .zip(e.iter_mut())
            .zip(f.chunks_exact_mut(dim))
        {
            *ei = self.total(row, Some(fr), &mut scratch);
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
