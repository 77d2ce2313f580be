//! Generalized Born implicit solvent as OpenMM's `GBSAOBCForce` computes it: Born radii by
//! Onufriev–Bashford–Case (OBC type II, α = 1, β = 0.8, γ = 4.85) from the Hawkins–Cramer–Truhlar
//! pairwise descreening integral, Still's GB energy, and the ACE surface-area term, all without
//! cutoff.
//!
//! With offset radii ρᵢ = Rᵢ − 0.009 nm and scaled radii sⱼ = scaleⱼ·ρⱼ:
//!
//! * Iᵢ = ½ Σ_{j≠i} H(rᵢⱼ, ρᵢ, sⱼ), with L = 1/max(ρᵢ, |r − s|), U = 1/(r + s) and
//!   H = L − U + ¼r(U² − L²) + ln(U/L)/(2r) + s²(L² − U²)/(4r) (+ 2(1/ρᵢ − L) when ρᵢ < s − r;
//!   H = 0 when ρᵢ ≥ r + s)
//! * Ψᵢ = ρᵢIᵢ, Bᵢ = 1/(1/ρᵢ − tanh(αΨᵢ − βΨᵢ² + γΨᵢ³)/Rᵢ)
//! * E_GB = −½ k_e (1/ε_solute − 1/ε_solvent) Σᵢ Σⱼ qᵢqⱼ / fᵢⱼ,
//!   fᵢⱼ = √(r² + BᵢBⱼ exp(−r²/(4BᵢBⱼ))) (the i = j terms give qᵢ²/Bᵢ)
//! * E_SA = Σᵢ 4πσ (Rᵢ + 0.14 nm)² (Rᵢ/Bᵢ)⁶ (σ = `surfaceAreaEnergy`)
//!
//! Forces are the exact gradient: the direct r-dependence of E_GB plus, through the Born radii,
//! ∂E/∂Bᵢ · dBᵢ/dΨᵢ · ρᵢ/2 · dH/dr (the derivative of H through L and U vanishes identically).
//!
//! References: Onufriev, Bashford & Case, Proteins 55, 383 (2004); Hawkins, Cramer & Truhlar,
//! J. Phys. Chem. 100, 19824 (1996); Schaefer, Bartels & Karplus, J. Mol. Biol. 284, 835 (1998)
//! (ACE; OpenMM raises the radius ratio to the sixth power); OpenMM's user guide,
//! "GBSAOBCForce".

use boltzflow_io::openmm::{GBSA_DIELECTRIC_OFFSET, GbsaParticleXml};

use crate::openmm::ONE_4PI_EPS0;

/// OBC type II coefficients of the tanh rescaling.
const ALPHA: f64 = 1.0;
const BETA: f64 = 0.8;
const GAMMA: f64 = 4.85;
/// Solvent probe radius of the surface-area term, nm.
const PROBE_RADIUS: f64 = 0.14;

/// The parameters of one `GBSAOBCForce`, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Obc {
    charge: Vec<f64>,
    radius: Vec<f64>,
    /// ρᵢ = Rᵢ − 0.009 nm.
    offset_radius: Vec<f64>,
    /// sᵢ = scaleᵢ ρᵢ.
    scaled_radius: Vec<f64>,
    /// −k_e (1/ε_solute − 1/ε_solvent): E_GB = ½ P Σᵢ Σⱼ qᵢqⱼ / fᵢⱼ.
    prefactor: f64,
    /// 4πσ (Rᵢ + 0.14)², kJ/mol.
    surface: Vec<f64>,
}

impl Obc {
    /// The evaluator of a force's parameters.
    pub(crate) fn new(
        particles: &[GbsaParticleXml],
        solute_dielectric: f64,
        solvent_dielectric: f64,
        surface_area_energy: f64,
    ) -> Self {
        let offset_radius: Vec<f64> = particles
            .iter()
            .map(|p| p.radius - GBSA_DIELECTRIC_OFFSET)
            .collect();
        Self {
            charge: particles.iter().map(|p| p.charge).collect(),
            radius: particles.iter().map(|p| p.radius).collect(),
            scaled_radius: particles
                .iter()
                .zip(&offset_radius)
                .map(|(p, rho)| p.scale * rho)
                .collect(),
            offset_radius,
            prefactor: -ONE_4PI_EPS0 * (1.0 / solute_dielectric - 1.0 / solvent_dielectric),
            surface: particles
                .iter()
                .map(|p| {
                    4.0 * std::f64::consts::PI
                        * surface_area_energy
                        * (p.radius + PROBE_RADIUS).powi(2)
                })
                .collect(),
        }
    }

    fn n(&self) -> usize {
        self.charge.len()
    }

    /// Scratch values for [`Obc::energy`]: n² distances, n² pair derivatives and 3n per-atom
    /// values.
    pub(crate) fn scratch_len(n: usize) -> usize {
        2 * n * n + 3 * n
    }

    /// The energy (kJ/mol) of one configuration `x` `[3n]` (nm), adding the forces to `f` when
    /// given; `scratch` holds [`Obc::scratch_len`] values.
    pub(crate) fn energy(&self, x: &[f64], f: Option<&mut [f64]>, scratch: &mut [f64]) -> f64 {
        let n = self.n();
        let (dist, rest) = scratch[..Self::scratch_len(n)].split_at_mut(n * n);
        let (dh_dr, rest) = rest.split_at_mut(n * n);
        let (born, rest) = rest.split_at_mut(n);
        let (db_dpsi, de_db) = rest.split_at_mut(n);
        // x_j − x_i.
        let delta = |i: usize, j: usize| {
            [
                x[3 * j] - x[3 * i],
                x[3 * j + 1] - x[3 * i + 1],
                x[3 * j + 2] - x[3 * i + 2],
            ]
        };
        // Every distance once: the three passes below need them all.
        for i in 0..n {
            for j in i + 1..n {
                let d = delta(i, j);
                let r = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
                dist[i * n + j] = r;
                dist[j * n + i] = r;
            }
        }
        // Born radii, and dH/dr of every ordered pair for the forces.
        for i in 0..n {
            let rho = self.offset_radius[i];
            let mut integral = 0.0;
            for j in 0..n {
                let (h, dh) = if j == i {
                    (0.0, 0.0)
                } else {
                    descreening(dist[i * n + j], rho, self.scaled_radius[j])
                };
                integral += h;
                dh_dr[i * n + j] = dh;
            }
            let psi = 0.5 * rho * integral;
            let t = (ALPHA * psi - BETA * psi * psi + GAMMA * psi * psi * psi).tanh();
            let b = 1.0 / (1.0 / rho - t / self.radius[i]);
            born[i] = b;
            // dB/dΨ times dΨ/dH = ρ/2.
            db_dpsi[i] =
                b * b * (1.0 - t * t) * (ALPHA - 2.0 * BETA * psi + 3.0 * GAMMA * psi * psi)
                    / self.radius[i]
                    * 0.5
                    * rho;
        }
        let mut f = f;
        let mut energy = 0.0;
        de_db.fill(0.0);
        for i in 0..n {
            let qi = self.prefactor * self.charge[i];
            let b = born[i];
            // The self term ½P qᵢ²/Bᵢ and the surface term.
            energy += 0.5 * qi * self.charge[i] / b;
            de_db[i] -= 0.5 * qi * self.charge[i] / (b * b);
            let sa = self.surface[i] * (self.radius[i] / b).powi(6);
            energy += sa;
            de_db[i] -= 6.0 * sa / b;
            for j in i + 1..n {
                let r = dist[i * n + j];
                let r2 = r * r;
                let bb = born[i] * born[j];
                let dd = r2 / (4.0 * bb);
                let ex = (-dd).exp();
                let f2 = r2 + bb * ex;
                let g = qi * self.charge[j] / f2.sqrt();
                energy += g;
                let dg_dbb = -0.5 * g * ex * (1.0 + dd) / f2;
                de_db[i] += dg_dbb * born[j];
                de_db[j] += dg_dbb * born[i];
                if let Some(f) = f.as_deref_mut() {
                    // (1/r) ∂g/∂r at fixed Born radii.
                    add_pair_force(f, i, j, delta(i, j), -g * (1.0 - 0.25 * ex) / f2);
                }
            }
        }
        // Through the Born radii: dE/drᵢⱼ = ∂E/∂Bᵢ · dBᵢ/dΨᵢ · ρᵢ/2 · dH(rᵢⱼ)/dr.
        if let Some(f) = f {
            for i in 0..n {
                let c = de_db[i] * db_dpsi[i];
                for j in 0..n {
                    let dh = dh_dr[i * n + j];
                    if dh != 0.0 {
                        add_pair_force(f, i, j, delta(i, j), c * dh / dist[i * n + j]);
                    }
                }
            }
        }
        energy
    }
}

/// Forces of a pair term whose (1/r) dE/dr is `s`, with `d` = x_j − x_i.
fn add_pair_force(f: &mut [f64], i: usize, j: usize, d: [f64; 3], s: f64) {
    for k in 0..3 {
        f[3 * i + k] += s * d[k];
        f[3 * j + k] -= s * d[k];
    }
}

/// The HCT descreening term H(r, ρᵢ, sⱼ) of atom j on atom i, and dH/dr.
fn descreening(r: f64, rho: f64, s: f64) -> (f64, f64) {
    if rho >= r + s {
        return (0.0, 0.0); // i's offset sphere swallows j's scaled sphere
    }
    let l = 1.0 / rho.max((r - s).abs());
    let u = 1.0 / (r + s);
    let (l2, u2) = (l * l, u * u);
    let log_ratio = (u / l).ln();
    let inv_r = 1.0 / r;
    let mut h =
        l - u + 0.25 * r * (u2 - l2) + 0.5 * inv_r * log_ratio + 0.25 * s * s * inv_r * (l2 - u2);
    if rho < s - r {
        h += 2.0 * (1.0 / rho - l);
    }
    let dh = 0.25 * (u2 - l2)
        - 0.5 * inv_r * inv_r * log_ratio
        - 0.25 * s * s * inv_r * inv_r * (l2 - u2);
    (h, dh)
}
