//! Holonomic distance constraints |xᵢ − xⱼ| = d for molecular dynamics (bonds to hydrogen,
//! `constraints=HBonds` in OpenMM): SHAKE for positions (Ryckaert, Ciccotti & Berendsen,
//! J. Comput. Phys. 23, 327 (1977)) and RATTLE for velocities (Andersen, J. Comput. Phys. 52,
//! 24 (1983)), iterated constraint by constraint to a relative tolerance. [`crate::Baoab`]
//! uses them to keep the dynamics on the constraint surface, which removes one degree of
//! freedom per constraint. Written by hand: the iterations are a few lines per constraint and
//! no maintained crate provides them.

use boltzflow_core::{Error, Result};

/// Iterations after which SHAKE or RATTLE gives up (they converge in tens for bonds to
/// hydrogen at 2 fs).
const MAX_ITERATIONS: usize = 1000;

/// Distance constraints between 3D particles.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraints {
    /// (i, j, d²).
    pairs: Vec<(usize, usize, f64)>,
    /// 1/m per atom.
    inv_mass: Vec<f64>,
    /// Relative tolerance: |r² − d²| / d² for positions, |r·v| / (d·v_scale) for velocities.
    tolerance: f64,
}

fn sub(x: &[f64], i: usize, j: usize) -> [f64; 3] {
    [
        x[3 * i] - x[3 * j],
        x[3 * i + 1] - x[3 * j + 1],
        x[3 * i + 2] - x[3 * j + 2],
    ]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

impl Constraints {
    /// Constraints `(i, j, d)` (distance d > 0) between atoms of masses `atom_masses`, kept to
    /// the relative `tolerance`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an atom beyond the masses, i = j, d ≤ 0 or a tolerance
    /// outside (0, 10⁻²].
    pub fn new(pairs: &[(usize, usize, f64)], atom_masses: &[f64], tolerance: f64) -> Result<Self> {
        let n = atom_masses.len();
        if let Some((c, &(i, j, d))) = pairs
            .iter()
            .enumerate()
            .find(|(_, (i, j, d))| *i >= n || *j >= n || i == j || !(d.is_finite() && *d > 0.0))
        {
            return Err(Error::invalid(
                "constraints",
                format!(
                    "constraint {c} ({i}, {j}, {d}) does not join two of the {n} atoms at a positive distance"
                ),
            ));
        }
        if !(tolerance > 0.0 && tolerance <= 1e-2) {
            return Err(Error::invalid(
                "constraint tolerance",
                format!("must be in (0, 0.01], got {tolerance}"),
            ));
        }
        Ok(Self {
            pairs: pairs.iter().map(|&(i, j, d)| (i, j, d * d)).collect(),
            inv_mass: atom_masses.iter().map(|m| 1.0 / m).collect(),
            tolerance,
        })
    }

    /// Number of constraints (degrees of freedom they remove).
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The largest relative violation |r² − d²| / d² of configuration `x` `[3·atoms]`.
    pub fn violation(&self, x: &[f64]) -> f64 {
        self.pairs
            .iter()
            .map(|&(i, j, d2)| {
                let r = sub(x, i, j);
                (dot(r, r) - d2).abs() / d2
            })
            .fold(0.0, f64::max)
    }

    /// SHAKE: moves `x` `[3·atoms]` onto the constraint surface along the constraint vectors of
    /// `reference` (a configuration on it, e.g. before the drift), each atom in proportion to
    /// 1/m, so the correction is a constraint force. Returns the iterations taken.
    ///
    /// # Errors
    /// [`Error::Numerical`] if it does not converge (a time step too large for the
    /// constraints, or an exploding configuration).
    pub fn shake(&self, x: &mut [f64], reference: &[f64]) -> Result<usize> {
        for it in 0..MAX_ITERATIONS {
            let mut done = true;
            for &(i, j, d2) in &self.pairs {
                let r = sub(x, i, j);
                let diff = d2 - dot(r, r);
                if diff.abs() <= self.tolerance * d2 {
                    continue;
                }
                done = false;
                let r0 = sub(reference, i, j);
                let (wi, wj) = (self.inv_mass[i], self.inv_mass[j]);
                let denom = 2.0 * dot(r, r0) * (wi + wj);
                if denom.abs() < 1e-300 * d2 {
                    return Err(self.failed(
                        "SHAKE",
                        "a constraint turned perpendicular to its reference",
                    ));
                }
                let g = diff / denom;
                for k in 0..3 {
                    x[3 * i + k] += g * wi * r0[k];
                    x[3 * j + k] -= g * wj * r0[k];
                }
            }
            if done {
                return Ok(it);
            }
        }
        Err(self.failed("SHAKE", "no convergence"))
    }

    /// Moves `x` onto the constraint surface along its own constraint vectors (for a start
    /// configuration that is only near it, as OpenMM's `applyConstraints`).
    ///
    /// # Errors
    /// As [`Constraints::shake`].
    pub fn apply(&self, x: &mut [f64]) -> Result<usize> {
        let reference = x.to_vec();
        self.shake(x, &reference)
    }

    /// RATTLE: removes from velocities `v` the components along the constraints at `x` (on the
    /// surface), so that d/dt |xᵢ − xⱼ|² = 0; the correction is a constraint impulse.
    ///
    /// # Errors
    /// [`Error::Numerical`] if it does not converge.
    pub fn project_velocities(&self, x: &[f64], v: &mut [f64]) -> Result<usize> {
        for it in 0..MAX_ITERATIONS {
            let mut done = true;
            for &(i, j, d2) in &self.pairs {
                let r = sub(x, i, j);
                let rv = dot(r, sub(v, i, j));
                let (wi, wj) = (self.inv_mass[i], self.inv_mass[j]);
                // |r·v|/d² is a rate (1/time); compare it with the tolerance times the
                // constraint's thermal-scale rate, here bounded below by 1/time unit.
                let scale = (dot(sub(v, i, j), sub(v, i, j)) / d2).sqrt().max(1.0);
                if rv.abs() <= self.tolerance * d2 * scale {
                    continue;
                }
                done = false;
                let k = rv / (dot(r, r) * (wi + wj));
                for c in 0..3 {
                    v[3 * i + c] -= k * wi * r[c];
                    v[3 * j + c] += k * wj * r[c];
                }
            }
            if done {
                return Ok(it);
            }
        }
        Err(self.failed("RATTLE", "no convergence"))
    }

    fn failed(&self, what: &str, why: &str) -> Error {
        Error::Numerical {
            what: format!("{what} ({} constraints)", self.pairs.len()),
            reason: format!("{why}; use a smaller time step"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shake_and_rattle_keep_a_rigid_triatomic_rigid() {
        // O at the origin with two H at 0.1 nm, drifted off the surface.
        let masses = [16.0, 1.0, 1.0];
        let c = Constraints::new(&[(0, 1, 0.1), (0, 2, 0.1)], &masses, 1e-12).unwrap();
        let reference = [0.0, 0.0, 0.0, 0.1, 0.0, 0.0, 0.0, 0.1, 0.0];
        let mut x = reference;
        let drift = [
            0.001, -0.002, 0.0, 0.004, 0.003, -0.001, -0.002, 0.005, 0.002,
        ];
        for (a, d) in x.iter_mut().zip(drift) {
            *a += d;
        }
        let before = x;
        c.shake(&mut x, &reference).unwrap();
        assert!(c.violation(&x) < 1e-12);
        // The correction is a constraint force: it conserves the centre of mass.
        for k in 0..3 {
            let moved: f64 = (0..3)
                .map(|a| masses[a] * (x[3 * a + k] - before[3 * a + k]))
                .sum();
            assert!(moved.abs() < 1e-15, "{moved}");
        }
        // RATTLE: no velocity along either bond afterwards, momentum unchanged.
        let mut v = [0.3, -0.2, 0.1, 2.0, 1.0, -1.0, -1.5, 0.5, 2.5];
        let p0: Vec<f64> = (0..3)
            .map(|k| (0..3).map(|a| masses[a] * v[3 * a + k]).sum())
            .collect();
        c.project_velocities(&x, &mut v).unwrap();
        for (i, j) in [(0, 1), (0, 2)] {
            let r = sub(&x, i, j);
            assert!(dot(r, sub(&v, i, j)).abs() < 1e-12);
        }
        for k in 0..3 {
            let p: f64 = (0..3).map(|a| masses[a] * v[3 * a + k]).sum();
            assert!((p - p0[k]).abs() < 1e-12);
        }
        assert!(Constraints::new(&[(0, 3, 0.1)], &masses, 1e-8).is_err());
        assert!(Constraints::new(&[(0, 1, 0.1)], &masses, 0.5).is_err());
    }
}
