//! The particle dimer in a repulsive solvent bath of the Boltzmann-generator paper
//! (Noé et al., Science 2019), in 2D.

use ndarray::Array1;

use crate::System;
use crate::kernel::{RowKernel, impl_energy_via_rows};

/// Restraint constant of the dimer's centre and y coordinates.
const DIMER_K: f64 = 20.0;
/// Quadratic and quartic coefficients of the dimer's double well in u = 2(d − d_mid).
const DIMER_A: f64 = 25.0;
const DIMER_B: f64 = 10.0;
const DIMER_DMID: f64 = 1.5;
/// Repulsion E = (r_m / r)¹² between every pair except the dimer's own.
const RM: f64 = 1.1;
/// Box walls: 2·k·δ² for each coordinate a distance δ outside [−h, h].
const BOX_HALF: f64 = 3.0;
const BOX_K: f64 = 100.0;

/// `dimer-bath`: 2 dimer particles and `n_solvent` solvent particles in 2D, dim = 2(2 + n_solvent),
/// dimer first, (x, y) interleaved per particle. In kT:
///
/// * u = 2(d − 1.5), d the dimer distance;
///   E_dimer = 20[(x₁ₓ + x₂ₓ)² + x₁ᵧ² + x₂ᵧ²] + c·u − 25u² + 10u⁴, c = `slope` (default −0.5);
/// * E_rep = Σ_{i<j, not the dimer pair} (1.1 / r_ij)¹²;
/// * E_box = Σ over all coordinates outside [−3, 3] of 2·100·δ².
///
/// The dimer is closed at d ≈ 1 and open at d ≈ 2.
#[derive(Debug, Clone, PartialEq)]
pub struct DimerBath {
    n_solvent: usize,
    slope: f64,
}

impl Default for DimerBath {
    fn default() -> Self {
        Self::new(36, -0.5)
    }
}

/// The three terms of the dimer-bath energy of one configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DimerTerms {
    /// Dimer restraint and double well.
    pub dimer: f64,
    /// Pair repulsion.
    pub repulsion: f64,
    /// Box walls.
    pub walls: f64,
}

impl DimerBath {
    /// `n_solvent` solvent particles, dimer slope `slope` (validated by the spec parser).
    pub fn new(n_solvent: usize, slope: f64) -> Self {
        Self { n_solvent, slope }
    }

    /// Number of particles (2 + n_solvent).
    pub fn n_particles(&self) -> usize {
        2 + self.n_solvent
    }

    /// The dimer slope c.
    pub fn slope(&self) -> f64 {
        self.slope
    }

    /// Dimer distances of a batch `[n, dim]` → `[n]`.
    pub fn dimer_distance(x: ndarray::ArrayView2<f64>) -> Array1<f64> {
        x.outer_iter()
            .map(|r| (r[2] - r[0]).hypot(r[3] - r[1]))
            .collect()
    }

    /// A configuration with the dimer at distance `d` on the x axis and the solvent on the 36
    /// sites of a 7×7 lattice (spacing 1) farthest from the origin (for other solvent counts,
    /// the farthest `n_solvent` sites of the smallest square lattice that holds them plus 13).
    pub fn lattice_configuration(&self, d: f64) -> Array1<f64> {
        let side = ((self.n_solvent + 13) as f64).sqrt().ceil() as usize;
        // 1.0 apart (7 sites span the box), closer when more sites are needed; inside the walls.
        let spacing = 1.0f64.min(6.0 / (side.max(2) - 1) as f64);
        let half = (side as f64 - 1.0) / 2.0;
        let mut sites: Vec<[f64; 2]> = (0..side * side)
            .map(|k| {
                [
                    ((k % side) as f64 - half) * spacing,
                    ((k / side) as f64 - half) * spacing,
                ]
            })
            .collect();
        // Farthest from the origin first; ties broken by position so the order is fixed.
        sites.sort_by(|a, b| {
            let (ra, rb) = (a[0].hypot(a[1]), b[0].hypot(b[1]));
            rb.total_cmp(&ra)
                .then(a[0].total_cmp(&b[0]))
                .then(a[1].total_cmp(&b[1]))
        });
        let mut x = Array1::zeros(2 * self.n_particles());
        x[0] = -0.5 * d;
        x[2] = 0.5 * d;
        for (i, s) in sites.iter().take(self.n_solvent).enumerate() {
            x[4 + 2 * i] = s[0];
            x[5 + 2 * i] = s[1];
        }
        x
    }

    /// The energy of one configuration split into its terms.
    pub fn terms(&self, x: &[f64]) -> DimerTerms {
        let mut f = vec![0.0; x.len()];
        let (dimer, repulsion, walls) = self.row(x, &mut f, false);
        DimerTerms {
            dimer,
            repulsion,
            walls,
        }
    }

    /// One row: returns (dimer, repulsion, walls) and, if `with_forces`, writes −∇E into `f`.
    fn row(&self, x: &[f64], f: &mut [f64], with_forces: bool) -> (f64, f64, f64) {
        let np = self.n_particles();
        if with_forces {
            f.fill(0.0);
        }
        // Dimer.
        let (x1, y1, x2, y2) = (x[0], x[1], x[2], x[3]);
        let (dx, dy) = (x2 - x1, y2 - y1);
        let d = dx.hypot(dy);
        let u = 2.0 * (d - DIMER_DMID);
        let u2 = u * u;
        let dimer = DIMER_K * ((x1 + x2).powi(2) + y1 * y1 + y2 * y2) + self.slope * u
            - DIMER_A * u2
            + DIMER_B * u2 * u2;
        if with_forces {
            // dE/du · du/dd · dd/dx₂ = dE/du · 2 · (x₂ − x₁)/d.
            let de_dd = 2.0 * (self.slope - 2.0 * DIMER_A * u + 4.0 * DIMER_B * u2 * u);
            let (ux, uy) = if d > 0.0 {
                (dx / d, dy / d)
            } else {
                (0.0, 0.0)
            };
            let cx = 2.0 * DIMER_K * (x1 + x2);
            f[0] -= cx - de_dd * ux;
            f[2] -= cx + de_dd * ux;
            f[1] -= 2.0 * DIMER_K * y1 - de_dd * uy;
            f[3] -= 2.0 * DIMER_K * y2 + de_dd * uy;
        }
        // Walls.
        let mut walls = 0.0;
        for (c, v) in x.iter().enumerate() {
            let excess = if *v > BOX_HALF {
                v - BOX_HALF
            } else if *v < -BOX_HALF {
                v + BOX_HALF
            } else {
                continue;
            };
            walls += 2.0 * BOX_K * excess * excess;
            if with_forces {
                f[c] -= 4.0 * BOX_K * excess;
            }
        }
        // Repulsion: (rm²/r²)⁶; dE/d(r²) = −6 E / r².
        let rm2 = RM * RM;
        let mut rep = 0.0;
        for i in 0..np {
            let (xi, yi) = (x[2 * i], x[2 * i + 1]);
            let (mut fxi, mut fyi) = (0.0, 0.0);
            let first = if i == 0 { 2 } else { i + 1 };
            for j in first..np {
                let (dx, dy) = (xi - x[2 * j], yi - x[2 * j + 1]);
                let inv_r2 = 1.0 / (dx * dx + dy * dy);
                let s = rm2 * inv_r2;
                let s3 = s * s * s;
                let e = s3 * s3;
                rep += e;
                if with_forces {
                    // F_i = −dE/dx_i = 12 E / r² · (x_i − x_j).
                    let g = 12.0 * e * inv_r2;
                    fxi += g * dx;
                    fyi += g * dy;
                    f[2 * j] -= g * dx;
                    f[2 * j + 1] -= g * dy;
                }
            }
            if with_forces {
                f[2 * i] += fxi;
                f[2 * i + 1] += fyi;
            }
        }
        (dimer, rep, walls)
    }
}

impl RowKernel for DimerBath {
    fn kernel_dim(&self) -> usize {
        2 * self.n_particles()
    }
    fn energy_rows(&self, x: &[f64], e: &mut [f64]) {
        let dim = self.kernel_dim();
        let mut scratch = vec![0.0; dim];
        for (r, ei) in x.chunks_exact(dim).zip(e.iter_mut()) {
            let (a, b, c) = self.row(r, &mut scratch, false);
            *ei = a + b + c;
        }
    }
    fn energy_forces_rows(&self, x: &[f64], e: &mut [f64], f: &mut [f64]) {
        let dim = self.kernel_dim();
        for ((r, ei), fi) in x
            .chunks_exact(dim)
            .zip(e.iter_mut())
            .zip(f.chunks_exact_mut(dim))
        {
            let (a, b, c) = self.row(r, fi, true);
            *ei = a + b + c;
        }
    }
}
impl_energy_via_rows!(DimerBath);

impl System for DimerBath {
    fn spec(&self) -> String {
        format!(
            "dimer-bath:slope={},nsolvent={}",
            self.slope, self.n_solvent
        )
    }
    fn reference_box(&self) -> Option<Vec<[f64; 2]>> {
        None
    }
    fn initial_configuration(&self) -> Array1<f64> {
        self.lattice_configuration(1.0)
    }

    /// The solvent, matched to its lattice sites ([`DimerBath::lattice_configuration`]).
    fn identical_particles(&self) -> Option<crate::IdenticalParticles> {
        let x = self.lattice_configuration(1.0);
        let sites = ndarray::Array2::from_shape_fn((self.n_solvent, 2), |(i, k)| x[4 + 2 * i + k]);
        Some(crate::IdenticalParticles { first: 2, sites })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boltzflow_core::Energy;

    #[test]
    fn three_particles_by_hand() {
        // Dimer at (−0.5, 0.1), (0.5, 0.0); one solvent particle at (0.5, 1.1) and x = 3.5 outside the wall.
        let dimer = DimerBath::new(1, -0.5);
        let x = [-0.5, 0.1, 0.5, 0.0, 3.5, 1.1];
        let d = (1.0f64 + 0.01).sqrt();
        let u = 2.0 * (d - 1.5);
        let e_dimer = 20.0 * (0.0 + 0.01 + 0.0) - 0.5 * u - 25.0 * u * u + 10.0 * u.powi(4);
        let r0 = (4.0f64.powi(2) + 1.0f64.powi(2)).sqrt();
        let r1 = (3.0f64.powi(2) + 1.1f64.powi(2)).sqrt();
        let e_rep = (1.1 / r0).powi(12) + (1.1 / r1).powi(12);
        let e_box = 2.0 * 100.0 * 0.25;
        let t = dimer.terms(&x);
        approx::assert_relative_eq!(t.dimer, e_dimer, max_relative = 1e-12);
        approx::assert_relative_eq!(t.repulsion, e_rep, max_relative = 1e-12);
        approx::assert_relative_eq!(t.walls, e_box, max_relative = 1e-12);
        let e = dimer
            .energy(ndarray::ArrayView2::from_shape((1, 6), &x).unwrap())
            .unwrap();
        approx::assert_relative_eq!(e[0], e_dimer + e_rep + e_box, max_relative = 1e-12);
    }

    #[test]
    fn lattice_start_has_moderate_energy() {
        for d in [1.0, 2.0] {
            let s = DimerBath::default();
            let x = s.lattice_configuration(d);
            assert_eq!(x.len(), 76);
            let e = s.energy(x.view().insert_axis(ndarray::Axis(0))).unwrap()[0];
            assert!(e.is_finite(), "d = {d}: E = {e}");
            assert_eq!(s.terms(x.as_slice().unwrap()).walls, 0.0);
            let p: Vec<[f64; 2]> = x
                .as_slice()
                .unwrap()
                .chunks(2)
                .map(|c| [c[0], c[1]])
                .collect();
            for i in 0..p.len() {
                for j in i + 1..p.len() {
                    let r = (p[i][0] - p[j][0]).hypot(p[i][1] - p[j][1]);
                    assert!(
                        r > 0.99 || (i, j) == (0, 1),
                        "particles {i} and {j} overlap: r = {r}"
                    );
                }
            }
        }
    }
}
