//! Langevin dynamics over many chains: overdamped (Euler–Maruyama, optionally Metropolis-adjusted)
//! and underdamped (BAOAB).
//!
//! Units: time step `dt` and friction γ in the system's time unit (reduced for toy systems, ps
//! for molecules); masses per coordinate (amu for molecules, 1 for toy systems); kT from the
//! [`ThermodynamicState`].

use boltzflow_core::{Energy, Error, Move, MoveStats, Result, SamplerState, ThermodynamicState};
use ndarray::{Array2, ArrayView2, ArrayViewMut1, ArrayViewMut2};
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};

use crate::blocks::{Block, par_blocks};
use crate::constraints::Constraints;
use crate::wrap_periodic;

const CHAINS_PER_BLOCK: usize = 128;

/// Chains per parallel block: up to [`CHAINS_PER_BLOCK`], fewer when there are few chains so
/// that every thread gets work (a molecule's step is costly). The result does not depend on it.
fn block_rows(n_chains: usize) -> usize {
    n_chains
        .div_ceil(rayon::current_num_threads())
        .clamp(1, CHAINS_PER_BLOCK)
}

fn positive(name: &str, v: f64) -> Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(Error::invalid(
            name,
            format!("must be finite and positive, got {v}"),
        ))
    }
}

/// Evaluates energies and forces of a block and checks that they are finite.
fn evaluate(
    energy: &dyn Energy,
    x: &[f64],
    e: &mut [f64],
    f: &mut [f64],
    first_chain: usize,
    step: u64,
) -> Result<()> {
    let n = e.len();
    let dim = x.len() / n.max(1);
    energy.energy_and_forces_into(
        ArrayView2::from_shape((n, dim), x).expect("block shape"),
        ArrayViewMut1::from(&mut *e),
        ArrayViewMut2::from_shape((n, dim), &mut *f).expect("block shape"),
    )?;
    for c in 0..n {
        let bad_force = f[c * dim..(c + 1) * dim].iter().find(|v| !v.is_finite());
        if !e[c].is_finite() || bad_force.is_some() {
            return Err(Error::NonFinite {
                what: if e[c].is_finite() {
                    "force".into()
                } else {
                    "energy".into()
                },
                location: format!(
                    "chain {}, step {step} (reduce the time step)",
                    first_chain + c
                ),
                value: if e[c].is_finite() {
                    *bad_force.expect("checked")
                } else {
                    e[c]
                },
            });
        }
    }
    Ok(())
}

/// Makes sure the state holds forces (evaluated at the current positions).
fn ensure_forces(state: &mut SamplerState, energy: &dyn Energy) -> Result<()> {
    if state.forces.is_none() {
        let (e, f) = energy.energy_and_forces(state.positions.view())?;
        state.energies = e;
        state.forces = Some(f);
    }
    Ok(())
}

/// Overdamped Langevin dynamics, x' = x + (Δt/γ) F(x) + √(2 kT Δt/γ) ξ (Euler–Maruyama).
///
/// With `metropolize`, each step is a MALA proposal accepted with the Metropolis–Hastings ratio
/// of the Gaussian proposal densities, which removes the discretisation bias.
#[derive(Debug, Clone)]
pub struct OverdampedLangevin {
    dt: f64,
    friction: f64,
    metropolize: bool,
    periods: Vec<Option<[f64; 2]>>,
}

impl OverdampedLangevin {
    /// Time step `dt`, friction γ, and whether to Metropolis-adjust (MALA).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] unless `dt` and `friction` are finite and positive.
    pub fn new(dt: f64, friction: f64, metropolize: bool) -> Result<Self> {
        Ok(Self {
            dt: positive("time step", dt)?,
            friction: positive("friction", friction)?,
            metropolize,
            periods: Vec::new(),
        })
    }

    /// Declares periodic coordinates.
    pub fn with_periods(mut self, periods: Vec<Option<[f64; 2]>>) -> Self {
        self.periods = periods;
        self
    }

    fn run_block(
        &self,
        b: Block<'_>,
        energy: &dyn Energy,
        kt: f64,
        step0: u64,
        n_steps: u64,
    ) -> Result<MoveStats> {
        let n = b.e.len();
        let dim = b.x.len() / n.max(1);
        let f = b.f.expect("forces ensured");
        let mu = self.dt / self.friction;
        let noise = (2.0 * kt * mu).sqrt();
        let mut prop = vec![0.0; n * dim];
        let mut e_new = vec![0.0; n];
        let mut f_new = vec![0.0; n * dim];
        let mut stats = MoveStats::default();
        for step in 0..n_steps {
            for c in 0..n {
                let r = c * dim..(c + 1) * dim;
                for k in r.clone() {
                    let z: f64 = StandardNormal.sample(&mut b.rngs[c]);
                    prop[k] = b.x[k] + mu * f[k] + noise * z;
                }
                wrap_periodic(&mut prop[r], &self.periods);
            }
            evaluate(
                energy,
                &prop,
                &mut e_new,
                &mut f_new,
                b.first_chain,
                step0 + step + 1,
            )?;
            for c in 0..n {
                let r = c * dim..(c + 1) * dim;
                let accept = if self.metropolize {
                    // log q(x | x') − log q(x' | x), q(y | x) = N(x + μ F(x), 2 kT μ).
                    let mut log_ratio = -(e_new[c] - b.e[c]) / kt;
                    let (mut fwd, mut bwd) = (0.0, 0.0);
                    for k in r.clone() {
                        let d_fwd = prop[k] - b.x[k] - mu * f[k];
                        let d_bwd = b.x[k] - prop[k] - mu * f_new[k];
                        fwd += d_fwd * d_fwd;
                        bwd += d_bwd * d_bwd;
                    }
                    log_ratio += (fwd - bwd) / (4.0 * kt * mu);
                    log_ratio >= 0.0 || b.rngs[c].random::<f64>() < log_ratio.exp()
                } else {
                    true
                };
                if accept {
                    b.x[r.clone()].copy_from_slice(&prop[r.clone()]);
                    f[r.clone()].copy_from_slice(&f_new[r]);
                    b.e[c] = e_new[c];
                    stats.accepted += 1;
                }
            }
            stats.proposed += n as u64;
        }
        Ok(stats)
    }
}

impl Move for OverdampedLangevin {
    fn name(&self) -> &'static str {
        if self.metropolize {
            "mala"
        } else {
            "overdamped-langevin"
        }
    }

    fn apply(
        &mut self,
        state: &mut SamplerState,
        energy: &dyn Energy,
        thermo: &ThermodynamicState,
        n_steps: u64,
    ) -> Result<MoveStats> {
        ensure_forces(state, energy)?;
        let (kt, step0) = (thermo.kt(), state.step);
        let stats = par_blocks(state, block_rows(state.n_chains()), |b| {
            self.run_block(b, energy, kt, step0, n_steps)
        })?;
        state.step += n_steps;
        Ok(stats)
    }
}

/// Underdamped Langevin dynamics with the BAOAB splitting (Leimkuhler & Matthews,
/// Appl. Math. Res. Express 2013): half kick, half drift, exact Ornstein–Uhlenbeck velocity
/// update with friction γ, half drift, half kick. Configurational averages have O(Δt²) bias
/// with a small constant; with γ = 0 it is velocity Verlet (energy-conserving up to O(Δt²)).
///
/// For molecules ([`Baoab::with_com_motion_removed`]) the centre-of-mass velocity is removed
/// after every O step, as OpenMM's `CMMotionRemover` does; forces of an isolated molecule sum to
/// zero, so B and A steps keep it zero, and 3 degrees of freedom are removed.
///
/// With distance constraints ([`Baoab::with_constraints`]) every A step is followed by SHAKE
/// (positions back onto the constraint surface, the correction added to the velocities as
/// Δx/h) and every step that changes velocities by RATTLE (velocities projected onto the
/// surface's tangent space): the constrained BAOAB of Leimkuhler & Matthews (Proc. R. Soc. A
/// 472, 20160138 (2016)), which samples the constrained Boltzmann distribution like OpenMM's
/// LangevinMiddleIntegrator. Each constraint removes one degree of freedom.
#[derive(Debug, Clone)]
pub struct Baoab {
    dt: f64,
    friction: f64,
    masses: Vec<f64>,
    periods: Vec<Option<[f64; 2]>>,
    /// Atom masses (3D particles) when the centre-of-mass motion is removed.
    com_masses: Option<Vec<f64>>,
    /// Distance constraints (3D particles).
    constraints: Option<Constraints>,
}

/// Subtracts the centre-of-mass velocity of 3D particles from `v` (`[3·n_atoms]`).
fn remove_com_velocity(v: &mut [f64], atom_masses: &[f64]) {
    let mut p = [0.0; 3];
    let mut total = 0.0;
    for (va, m) in v.chunks_exact(3).zip(atom_masses) {
        for k in 0..3 {
            p[k] += m * va[k];
        }
        total += m;
    }
    let vc = p.map(|c| c / total);
    for va in v.chunks_exact_mut(3) {
        for k in 0..3 {
            va[k] -= vc[k];
        }
    }
}

/// The constants of a BAOAB step: half step h, OU decay c₁ = e^{−γΔt}, per-coordinate noise
/// √(1 − c₁²)·√(kT/m) and 1/m.
struct Coefficients {
    h: f64,
    c1: f64,
    sd: Vec<f64>,
    inv_m: Vec<f64>,
}

impl Baoab {
    /// Time step `dt`, friction γ ≥ 0 (1/time) and one mass per coordinate (`[dim]`).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a non-positive time step or mass, or a negative friction.
    pub fn new(dt: f64, friction: f64, masses: Vec<f64>) -> Result<Self> {
        if !(friction.is_finite() && friction >= 0.0) {
            return Err(Error::invalid(
                "friction",
                format!("must be finite and ≥ 0, got {friction}"),
            ));
        }
        for (i, m) in masses.iter().enumerate() {
            positive(&format!("mass of coordinate {i}"), *m)?;
        }
        Ok(Self {
            dt: positive("time step", dt)?,
            friction,
            masses,
            periods: Vec::new(),
            com_masses: None,
            constraints: None,
        })
    }

    /// Keeps distance `constraints` between the 3D particles (x, y, z interleaved) with SHAKE
    /// and RATTLE; see the type's documentation. Start configurations are moved onto the
    /// constraint surface on the first step.
    ///
    /// # Errors
    /// [`Error::Shape`] unless the coordinates are 3 per atom of the constraints' masses.
    pub fn with_constraints(mut self, constraints: Constraints) -> Result<Self> {
        if !self.masses.len().is_multiple_of(3) {
            return Err(Error::shape(
                "constrained coordinates",
                "3 per atom",
                self.masses.len(),
            ));
        }
        self.constraints = (!constraints.is_empty()).then_some(constraints);
        Ok(self)
    }

    /// The constraints, if any.
    pub fn constraints(&self) -> Option<&Constraints> {
        self.constraints.as_ref()
    }

    /// For molecules: coordinates are 3D particles (x, y, z interleaved) with these masses
    /// (amu, `[dim / 3]`), and the centre-of-mass velocity is removed every step.
    ///
    /// # Errors
    /// [`Error::Shape`] unless there are dim / 3 atom masses.
    pub fn with_com_motion_removed(mut self, atom_masses: &[f64]) -> Result<Self> {
        if 3 * atom_masses.len() != self.masses.len() {
            return Err(Error::shape(
                "atom masses",
                format!("[{}] (dim / 3)", self.masses.len() / 3),
                format!("[{}]", atom_masses.len()),
            ));
        }
        self.com_masses = Some(atom_masses.to_vec());
        Ok(self)
    }

    /// Degrees of freedom of the kinetic energy: dim, less 3 when the centre-of-mass motion is
    /// removed, less one per constraint. The instantaneous temperature is 2 K / (n_dof k_B).
    pub fn degrees_of_freedom(&self) -> usize {
        self.masses.len()
            - if self.com_masses.is_some() { 3 } else { 0 }
            - self.constraints.as_ref().map_or(0, Constraints::len)
    }

    /// Declares periodic coordinates.
    pub fn with_periods(mut self, periods: Vec<Option<[f64; 2]>>) -> Self {
        self.periods = periods;
        self
    }

    /// Instantaneous kinetic energy per chain, Σ ½ m v², `[n_chains]`.
    pub fn kinetic_energy(&self, state: &SamplerState) -> Option<ndarray::Array1<f64>> {
        let v = state.velocities.as_ref()?;
        Some(crate::reporters::kinetic_energies(v, &self.masses, None))
    }

    /// The step's constants at `kt`.
    fn coefficients(&self, kt: f64) -> Coefficients {
        let c1 = (-self.friction * self.dt).exp();
        let c2 = (1.0 - c1 * c1).sqrt();
        Coefficients {
            h: 0.5 * self.dt,
            c1,
            sd: self.masses.iter().map(|m| c2 * (kt / m).sqrt()).collect(),
            inv_m: self.masses.iter().map(|m| 1.0 / m).collect(),
        }
    }

    /// [`Baoab::run_block`] with SHAKE after every drift and RATTLE after every velocity change.
    fn run_constrained_block(
        &self,
        b: Block<'_>,
        energy: &dyn Energy,
        kt: f64,
        step0: u64,
        n_steps: u64,
        cons: &Constraints,
    ) -> Result<MoveStats> {
        let n = b.e.len();
        let dim = b.x.len() / n.max(1);
        let (f, v) = (
            b.f.expect("forces ensured"),
            b.v.expect("velocities ensured"),
        );
        let Coefficients { h, c1, sd, inv_m } = self.coefficients(kt);
        let mut x_old = vec![0.0; dim];
        let at = |c: usize, step: u64, e: Error| {
            e.context(format!("chain {}, step {step}", b.first_chain + c))
        };
        // A: drift, SHAKE, velocity from the constrained displacement, RATTLE.
        let drift = |x: &mut [f64], v: &mut [f64], x_old: &mut [f64]| -> Result<()> {
            x_old.copy_from_slice(x);
            for (xk, vk) in x.iter_mut().zip(v.iter()) {
                *xk += h * vk;
            }
            cons.shake(x, x_old)?;
            for ((vk, xk), ok) in v.iter_mut().zip(x.iter()).zip(x_old.iter()) {
                *vk = (xk - ok) / h;
            }
            cons.project_velocities(x, v)?;
            Ok(())
        };
        for step in 0..n_steps {
            let s = step0 + step + 1;
            for c in 0..n {
                let r = c * dim..(c + 1) * dim;
                let (x, vc, fc) = (&mut b.x[r.clone()], &mut v[r.clone()], &f[r.clone()]);
                for ((vk, fk), im) in vc.iter_mut().zip(fc).zip(&inv_m) {
                    *vk += h * fk * im; // B
                }
                cons.project_velocities(x, vc).map_err(|e| at(c, s, e))?;
                drift(x, vc, &mut x_old).map_err(|e| at(c, s, e))?; // A
                for (vk, sdk) in vc.iter_mut().zip(&sd) {
                    let z: f64 = StandardNormal.sample(&mut b.rngs[c]);
                    *vk = c1 * *vk + sdk * z; // O
                }
                if let Some(m) = &self.com_masses {
                    remove_com_velocity(vc, m);
                }
                cons.project_velocities(x, vc).map_err(|e| at(c, s, e))?;
                drift(x, vc, &mut x_old).map_err(|e| at(c, s, e))?; // A
                wrap_periodic(x, &self.periods);
            }
            evaluate(energy, b.x, b.e, f, b.first_chain, s)?;
            for c in 0..n {
                let r = c * dim..(c + 1) * dim;
                let (x, vc, fc) = (&b.x[r.clone()], &mut v[r.clone()], &f[r.clone()]);
                for ((vk, fk), im) in vc.iter_mut().zip(fc).zip(&inv_m) {
                    *vk += h * fk * im; // B
                }
                cons.project_velocities(x, vc).map_err(|e| at(c, s, e))?;
            }
        }
        Ok(MoveStats {
            proposed: n as u64 * n_steps,
            accepted: n as u64 * n_steps,
        })
    }

    fn run_block(
        &self,
        b: Block<'_>,
        energy: &dyn Energy,
        kt: f64,
        step0: u64,
        n_steps: u64,
    ) -> Result<MoveStats> {
        if let Some(cons) = &self.constraints {
            return self.run_constrained_block(b, energy, kt, step0, n_steps, cons);
        }
        let n = b.e.len();
        let dim = b.x.len() / n.max(1);
        let (f, v) = (
            b.f.expect("forces ensured"),
            b.v.expect("velocities ensured"),
        );
        let Coefficients { h, c1, sd, inv_m } = self.coefficients(kt);
        for step in 0..n_steps {
            for c in 0..n {
                let r = c * dim..(c + 1) * dim;
                for (k, d) in r.clone().zip(0..dim) {
                    v[k] += h * f[k] * inv_m[d]; // B
                    b.x[k] += h * v[k]; // A
                    let z: f64 = StandardNormal.sample(&mut b.rngs[c]);
                    v[k] = c1 * v[k] + sd[d] * z; // O
                }
                if let Some(m) = &self.com_masses {
                    remove_com_velocity(&mut v[r.clone()], m);
                }
                for k in r.clone() {
                    b.x[k] += h * v[k]; // A
                }
                wrap_periodic(&mut b.x[r], &self.periods);
            }
            evaluate(energy, b.x, b.e, f, b.first_chain, step0 + step + 1)?;
            for (k, (vk, fk)) in v.iter_mut().zip(f.iter()).enumerate() {
                *vk += h * fk * inv_m[k % dim]; // B
            }
        }
        Ok(MoveStats {
            proposed: n as u64 * n_steps,
            accepted: n as u64 * n_steps,
        })
    }
}

impl Move for Baoab {
    fn name(&self) -> &'static str {
        "baoab"
    }

    fn apply(
        &mut self,
        state: &mut SamplerState,
        energy: &dyn Energy,
        thermo: &ThermodynamicState,
        n_steps: u64,
    ) -> Result<MoveStats> {
        if self.masses.len() != state.dim() {
            return Err(Error::shape(
                "masses",
                format!("[{}]", state.dim()),
                format!("[{}]", self.masses.len()),
            ));
        }
        if let Some(cons) = &self.constraints
            && state.velocities.is_none()
        {
            // Start on the constraint surface (as OpenMM's applyConstraints), with energies and
            // forces of the moved configurations.
            let mut moved = false;
            for (c, mut row) in state.positions.outer_iter_mut().enumerate() {
                let x = row.as_slice_mut().expect("standard layout");
                if cons.violation(x) > 0.0 {
                    cons.apply(x)
                        .map_err(|e| e.context(format!("constraining the start of chain {c}")))?;
                    moved = true;
                }
            }
            if moved {
                state.forces = None;
            }
        }
        ensure_forces(state, energy)?;
        let kt = thermo.kt();
        if state.velocities.is_none() {
            // Maxwell–Boltzmann velocities from each chain's own generator.
            let mut v = Array2::zeros(state.positions.raw_dim());
            for (mut row, rng) in v.outer_iter_mut().zip(state.rngs.iter_mut()) {
                for (vk, m) in row.iter_mut().zip(&self.masses) {
                    let z: f64 = StandardNormal.sample(rng);
                    *vk = z * (kt / m).sqrt();
                }
                if let Some(m) = &self.com_masses {
                    remove_com_velocity(row.as_slice_mut().expect("standard layout"), m);
                }
            }
            if let Some(cons) = &self.constraints {
                for (x, mut row) in state.positions.outer_iter().zip(v.outer_iter_mut()) {
                    cons.project_velocities(
                        x.as_slice().expect("standard layout"),
                        row.as_slice_mut().expect("standard layout"),
                    )?;
                }
            }
            state.velocities = Some(v);
        }
        let step0 = state.step;
        let stats = par_blocks(state, block_rows(state.n_chains()), |b| {
            self.run_block(b, energy, kt, step0, n_steps)
        })?;
        state.step += n_steps;
        Ok(stats)
    }
}
