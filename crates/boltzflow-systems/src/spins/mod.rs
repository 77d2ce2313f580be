//! Lattice and mean-field spin systems for variational autoregressive networks (Wu, Wang & Zhang,
//! PRL 122, 080602, 2019), with exact references.
//!
//! Spins are ±1 and the energy is E(s) = −Σ_{i<j} J_ij s_i s_j, in units where the inverse
//! temperature β multiplies it (reduced, dimensionless). Three kinds (DESIGN §6):
//! - `ising:L=16[,j=1]`: the ferromagnetic Ising model on an L × L square lattice with periodic
//!   boundaries; each nearest-neighbour bond counted once (2L² bonds; for L = 2 the right and
//!   left neighbours coincide and the pair is counted twice, as on the torus of Kaufman's formula).
//!   Sites are numbered row by row, `i = row·L + column`.
//! - `sk:n=20,seed=S`: the Sherrington–Kirkpatrick spin glass, J_ij ~ N(0, 1/n) for i < j, drawn
//!   from the named stream `sk-couplings` of `seed`.
//! - `couplings:PATH.npy`: any symmetric `[n, n]` matrix with a zero diagonal (float64 or float32).
//!
//! Exact references ([`exact`]): enumeration of all 2ⁿ states for n ≤ 24 ([`enumerate`]) and the
//! finite-size partition function of the periodic Ising model for any L ([`kaufman`]); the naive
//! mean-field free energy is the baseline a variational method should beat ([`mean_field`]).

pub mod enumerate;
pub mod kaufman;
pub mod mean_field;

use std::path::{Path, PathBuf};

use boltzflow_core::{Error, RandomStreams, Result};
use ndarray::Array2;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use crate::spec::{ParamInfo, SystemInfo, SystemSpec};

/// The spin systems, for `boltzflow systems` (dim = number of spins with the defaults).
pub const CATALOG: &[SystemInfo] = &[
    SystemInfo {
        name: "ising",
        dim: 256,
        summary: "ferromagnetic Ising model on a periodic L×L lattice, E = −J Σ_<ij> s_i s_j",
        params: &[
            ParamInfo {
                name: "L",
                default: "16",
                doc: "side of the lattice (2 to 64)",
            },
            ParamInfo {
                name: "j",
                default: "1",
                doc: "coupling J (> 0)",
            },
        ],
    },
    SystemInfo {
        name: "sk",
        dim: 20,
        summary: "Sherrington–Kirkpatrick spin glass, E = −Σ_{i<j} J_ij s_i s_j, J_ij ~ N(0, 1/n)",
        params: &[
            ParamInfo {
                name: "n",
                default: "20",
                doc: "number of spins (2 to 4096)",
            },
            ParamInfo {
                name: "seed",
                default: "1",
                doc: "seed of the couplings",
            },
        ],
    },
    SystemInfo {
        name: "couplings",
        dim: 0,
        summary: "E = −Σ_{i<j} J_ij s_i s_j with J from a symmetric [n, n] .npy file: couplings:PATH.npy",
        params: &[],
    },
];

/// Largest number of spins of a system (the dense coupling matrix then takes 134 MB; a VAN on
/// more spins is out of reach on a CPU anyway).
pub const MAX_SPINS: usize = 4096;

/// Largest number of spins whose states are enumerated for exact references (2²⁴ ≈ 1.7·10⁷).
pub const MAX_ENUMERATED_SPINS: usize = 24;

/// What kind of spin system, for references and plots.
#[derive(Debug, Clone, PartialEq)]
pub enum SpinKind {
    /// Periodic L × L Ising ferromagnet with coupling `j`.
    Ising {
        /// Side of the lattice.
        l: usize,
        /// Coupling J > 0.
        j: f64,
    },
    /// SK spin glass with the seed of its couplings.
    Sk {
        /// The seed of the couplings.
        seed: u64,
    },
    /// Couplings read from a file.
    File {
        /// The `.npy` file.
        path: PathBuf,
    },
}

/// A system of n Ising spins with pairwise couplings, E(s) = −Σ_{i<j} J_ij s_i s_j.
#[derive(Debug, Clone)]
pub struct SpinSystem {
    kind: SpinKind,
    n: usize,
    /// Dense symmetric couplings `[n, n]`, zero diagonal (for references and the file).
    couplings: Array2<f64>,
    /// Bonds (i, j, J_ij) with i < j and J_ij ≠ 0, counted with multiplicity.
    bonds: Vec<(u32, u32, f64)>,
}

/// Thermodynamics per spin at one β (energies in the system's units, entropy in units of k_B).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpinThermo {
    /// Inverse temperature.
    pub beta: f64,
    /// ln Z.
    pub ln_z: f64,
    /// Free energy per spin, F/n = −ln Z/(β n).
    pub f_per_spin: f64,
    /// Mean energy per spin, ⟨E⟩/n.
    pub energy_per_spin: f64,
    /// Entropy per spin, S/n = β(⟨E⟩ − F)/n.
    pub entropy_per_spin: f64,
}

impl SpinThermo {
    /// The per-spin quantities from ln Z and ⟨E⟩ of `n` spins at `beta`.
    pub fn new(beta: f64, n: usize, ln_z: f64, mean_energy: f64) -> Self {
        let n = n as f64;
        Self {
            beta,
            ln_z,
            f_per_spin: -ln_z / (beta * n),
            energy_per_spin: mean_energy / n,
            entropy_per_spin: (ln_z + beta * mean_energy) / n,
        }
    }
}

impl SpinSystem {
    /// The periodic L × L Ising ferromagnet with coupling `j`.
    ///
    /// # Errors
    /// If `l < 2` or `j` is not positive and finite.
    pub fn ising(l: usize, j: f64) -> Result<Self> {
        if !(2..=64).contains(&l) {
            return Err(Error::invalid(
                "L",
                format!("{l}: the lattice side must be from 2 to 64 (at most {MAX_SPINS} spins)"),
            ));
        }
        if !(j.is_finite() && j > 0.0) {
            return Err(Error::invalid(
                "j",
                format!("{j}: the coupling must be positive (a ferromagnet)"),
            ));
        }
        let n = l * l;
        let mut bonds = Vec::with_capacity(2 * n);
        for r in 0..l {
            for c in 0..l {
                let i = r * l + c;
                for k in [r * l + (c + 1) % l, ((r + 1) % l) * l + c] {
                    bonds.push((i.min(k) as u32, i.max(k) as u32, j));
                }
            }
        }
        Ok(Self::from_bonds(SpinKind::Ising { l, j }, n, bonds))
    }

    /// The SK spin glass with `n` spins: J_ij ~ N(0, 1/n) for i < j, from `seed`.
    ///
    /// # Errors
    /// If `n < 2`.
    pub fn sk(n: usize, seed: u64) -> Result<Self> {
        if !(2..=MAX_SPINS).contains(&n) {
            return Err(Error::invalid(
                "n",
                format!("{n}: an SK system needs from 2 to {MAX_SPINS} spins"),
            ));
        }
        let mut rng = RandomStreams::new(seed).stream("sk-couplings");
        let scale = 1.0 / (n as f64).sqrt();
        let mut bonds = Vec::with_capacity(n * (n - 1) / 2);
        for i in 0..n {
            for j in i + 1..n {
                let g: f64 = StandardNormal.sample(&mut rng);
                bonds.push((i as u32, j as u32, g * scale));
            }
        }
        Ok(Self::from_bonds(SpinKind::Sk { seed }, n, bonds))
    }

    /// Couplings from a symmetric `[n, n]` matrix with a zero diagonal.
    ///
    /// # Errors
    /// [`Error::BadFile`] naming `path` if the matrix is not square, not symmetric, has a
    /// non-zero diagonal or non-finite entries.
    pub fn from_matrix(j: &Array2<f64>, path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::BadFile {
            path: path.to_path_buf(),
            reason,
        };
        let n = j.nrows();
        if j.ncols() != n || !(2..=MAX_SPINS).contains(&n) {
            return Err(bad(format!(
                "couplings must be a square [n, n] matrix with 2 ≤ n ≤ {MAX_SPINS}, got {:?}",
                j.shape()
            )));
        }
        let mut bonds = Vec::new();
        for i in 0..n {
            if j[[i, i]] != 0.0 {
                return Err(bad(format!(
                    "diagonal entry J[{i},{i}] = {} must be 0",
                    j[[i, i]]
                )));
            }
            for k in i + 1..n {
                let (a, b) = (j[[i, k]], j[[k, i]]);
                if !a.is_finite() || !b.is_finite() {
                    return Err(bad(format!("J[{i},{k}] is not finite")));
                }
                if (a - b).abs() > 1e-12 * a.abs().max(b.abs()).max(1.0) {
                    return Err(bad(format!(
                        "the matrix is not symmetric: J[{i},{k}] = {a} but J[{k},{i}] = {b}"
                    )));
                }
                if a != 0.0 {
                    bonds.push((i as u32, k as u32, a));
                }
            }
        }
        Ok(Self::from_bonds(
            SpinKind::File {
                path: path.to_path_buf(),
            },
            n,
            bonds,
        ))
    }

    fn from_bonds(kind: SpinKind, n: usize, bonds: Vec<(u32, u32, f64)>) -> Self {
        let mut couplings = Array2::zeros((n, n));
        for &(i, j, v) in &bonds {
            couplings[[i as usize, j as usize]] += v;
            couplings[[j as usize, i as usize]] += v;
        }
        Self {
            kind,
            n,
            couplings,
            bonds,
        }
    }

    /// Builds a spin system from its spec: `ising:L=..,j=..`, `sk:n=..,seed=..` or
    /// `couplings:PATH.npy`.
    ///
    /// # Errors
    /// [`Error::InvalidSpec`] naming the spec and what is accepted; file errors for `couplings:`.
    pub fn build(spec: &str) -> Result<Self> {
        let parsed: SystemSpec = spec.parse()?;
        let bad = |reason: String| Error::InvalidSpec {
            spec: spec.to_string(),
            reason,
        };
        let Some(info) = CATALOG.iter().find(|i| i.name == parsed.name) else {
            return Err(bad(format!(
                "unknown spin system `{}`; known: ising:L=16,j=1, sk:n=20,seed=1, couplings:PATH.npy",
                parsed.name
            )));
        };
        if info.name == "couplings" {
            let path = parsed
                .params
                .get(crate::spec::FILE_KEY)
                .map_or("", String::as_str);
            let path = Path::new(path);
            let j = boltzflow_io::read_npy_2d(path)?;
            return Self::from_matrix(&j, path);
        }
        if let Some(k) = parsed
            .params
            .keys()
            .find(|k| !info.params.iter().any(|p| p.name == *k))
        {
            let accepted: Vec<_> = info.params.iter().map(|p| p.name).collect();
            return Err(bad(format!(
                "`{}` has no parameter `{k}`; accepted: {}",
                info.name,
                accepted.join(", ")
            )));
        }
        let get = |key: &str| -> &str {
            parsed.params.get(key).map_or_else(
                || {
                    info.params
                        .iter()
                        .find(|p| p.name == key)
                        .map_or("", |p| p.default)
                },
                String::as_str,
            )
        };
        let integer = |key: &str| -> Result<u64> {
            get(key).parse::<u64>().map_err(|_| {
                bad(format!(
                    "`{key}` must be a non-negative integer, got `{}`",
                    get(key)
                ))
            })
        };
        match info.name {
            "ising" => {
                let j: f64 = get("j")
                    .parse()
                    .map_err(|_| bad(format!("`j` is not a number: `{}`", get("j"))))?;
                Self::ising(integer("L")? as usize, j).map_err(|e| bad(e.to_string()))
            }
            _ => Self::sk(integer("n")? as usize, integer("seed")?).map_err(|e| bad(e.to_string())),
        }
    }

    /// The canonical spec (`ising:L=16,j=1`, `sk:n=20,seed=3`, `couplings:PATH`).
    pub fn spec(&self) -> String {
        match &self.kind {
            SpinKind::Ising { l, j } => format!("ising:L={l},j={j}"),
            SpinKind::Sk { seed } => format!("sk:n={},seed={seed}", self.n),
            SpinKind::File { path } => format!("couplings:{}", path.display()),
        }
    }

    /// What kind of system.
    pub fn kind(&self) -> &SpinKind {
        &self.kind
    }

    /// Number of spins.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The lattice side for lattice systems.
    pub fn lattice_side(&self) -> Option<usize> {
        match self.kind {
            SpinKind::Ising { l, .. } => Some(l),
            _ => None,
        }
    }

    /// The symmetric coupling matrix `[n, n]` (zero diagonal; for L = 2 lattices the doubled
    /// bonds are summed).
    pub fn couplings(&self) -> &Array2<f64> {
        &self.couplings
    }

    /// The bonds (i, j, J_ij), i < j, with multiplicity.
    pub fn bonds(&self) -> &[(u32, u32, f64)] {
        &self.bonds
    }

    /// Energy of one configuration `[n]` of ±1 values (any real type that converts to f64).
    pub fn energy<T: Copy + Into<f64>>(&self, s: &[T]) -> f64 {
        debug_assert_eq!(s.len(), self.n);
        -self
            .bonds
            .iter()
            .map(|&(i, j, v)| v * s[i as usize].into() * s[j as usize].into())
            .sum::<f64>()
    }

    /// Energies of a batch of configurations, row-major `[rows, n]`, into `out` `[rows]`, in
    /// parallel over rows.
    ///
    /// # Errors
    /// [`Error::Shape`] when the lengths disagree.
    pub fn energies<T: Copy + Into<f64> + Sync>(&self, spins: &[T], out: &mut [f64]) -> Result<()> {
        if spins.len() != out.len() * self.n {
            return Err(Error::shape(
                "spin configurations",
                format!("[{}, {}]", out.len(), self.n),
                format!("{} values", spins.len()),
            ));
        }
        out.par_iter_mut()
            .zip(spins.par_chunks_exact(self.n))
            .for_each(|(e, s)| *e = self.energy(s));
        Ok(())
    }

    /// The exact thermodynamics at each β: Kaufman's formula for Ising lattices of any size,
    /// enumeration for other systems with at most [`MAX_ENUMERATED_SPINS`] spins, `None` otherwise.
    ///
    /// # Errors
    /// If a β is not positive and finite.
    pub fn exact(&self, betas: &[f64]) -> Result<Option<Vec<SpinThermo>>> {
        if let Some(&b) = betas.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
            return Err(Error::invalid("beta", format!("{b}: β must be positive")));
        }
        Ok(match self.kind {
            SpinKind::Ising { l, j } => {
                Some(betas.iter().map(|&b| kaufman::thermo(l, j, b)).collect())
            }
            _ if self.n <= MAX_ENUMERATED_SPINS => Some(enumerate::thermo(&self.couplings, betas)),
            _ => None,
        })
    }
}
