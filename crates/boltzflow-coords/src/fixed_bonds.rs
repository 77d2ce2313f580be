//! Bonds held at fixed lengths (holonomic constraints, OpenMM's `constraints=HBonds`) and the
//! density that constrained dynamics sample in the remaining coordinates.
//!
//! Constrained Langevin dynamics (SHAKE/RATTLE, momenta tangent to the constraint surface M)
//! sample exp(−βU) times the surface measure of M in mass-weighted coordinates, not
//! exp(−βU) δ(ξ) dx (the limit of infinitely stiff springs). With ξ_c = |x_i − x_j| − d_c
//! and the mass-metric Gram matrix
//!
//!   G_cd = Σ_a (1/m_a) ∇_a ξ_c · ∇_a ξ_d,
//!
//! the two differ by the Fixman factor √det G: the dynamics' density is
//! exp(−βU) √det G δ(ξ) dx. In internal coordinates that hold the constrained bonds as
//! coordinates, δ(ξ) dx becomes the Jacobian of the free coordinates, so a generator or a
//! VAE working in the free coordinates must add −½ ln det G (in kT) to the reduced energy
//! ([`crate::InternalEnergy`] does when its layer has fixed bonds).
//!
//! G is block diagonal over the connected components of the constraint graph. For bonds to
//! hydrogen the blocks are stars around one heavy atom: a lone X–H gives the constant
//! 1/m_X + 1/m_H, while the three C–H of a methyl group couple through cos(H–C–H)/m_C, so
//! det G depends on the H–C–H angles.
//!
//! # References
//! Fixman, Proc. Natl. Acad. Sci. 71, 3050 (1974); Ciccotti, Lelièvre & Vanden-Eijnden,
//! Commun. Pure Appl. Math. 61, 371 (2008); Lelièvre, Rousset & Stoltz, *Free Energy
//! Computations* (2010), §3.3.

use boltzflow_core::{Error, Result};
use faer::linalg::solvers::DenseSolveCore;

/// Distance constraints |x_i − x_j| = d between atoms of given masses, with the log-determinant
/// of their mass-metric Gram matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedBonds {
    /// (i, j, d), d in nm.
    pairs: Vec<(usize, usize, f64)>,
    /// 1/m per atom (1/amu).
    inv_mass: Vec<f64>,
    /// Constraint indices of each connected component of the constraint graph.
    components: Vec<Vec<usize>>,
}

impl FixedBonds {
    /// The constraints `pairs` `(i, j, d)` between atoms of masses `masses` (amu).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (`constraints`) for an atom beyond the masses, i = j, a
    /// non-positive distance or mass, or a pair constrained twice.
    pub fn new(pairs: &[(usize, usize, f64)], masses: &[f64]) -> Result<Self> {
        let n = masses.len();
        if let Some(a) = masses.iter().position(|m| !(m.is_finite() && *m > 0.0)) {
            return Err(Error::invalid(
                "constraints",
                format!(
                    "atom {a} has mass {}; constrained atoms need positive masses (virtual sites cannot be constrained)",
                    masses[a]
                ),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (c, &(i, j, d)) in pairs.iter().enumerate() {
            if i >= n || j >= n || i == j || !(d.is_finite() && d > 0.0) {
                return Err(Error::invalid(
                    "constraints",
                    format!(
                        "constraint {c} ({i}, {j}, {d}) does not join two of the {n} atoms at a positive distance"
                    ),
                ));
            }
            if !seen.insert((i.min(j), i.max(j))) {
                return Err(Error::invalid(
                    "constraints",
                    format!("atoms {i} and {j} are constrained twice (constraint {c})"),
                ));
            }
        }
        Ok(Self {
            pairs: pairs.to_vec(),
            inv_mass: masses.iter().map(|m| 1.0 / m).collect(),
            components: components(pairs, n),
        })
    }

    /// The constraints `(i, j, d)`.
    pub fn pairs(&self) -> &[(usize, usize, f64)] {
        &self.pairs
    }

    /// Number of constraints.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Atoms of the molecule (those the masses were given for).
    pub fn n_atoms(&self) -> usize {
        self.inv_mass.len()
    }

    /// ln det G at Cartesian coordinates `x` `[3·n_atoms]` (nm), G in 1/amu (see the module
    /// documentation); with `grad` `[3·n_atoms]`, adds ∂ ln det G/∂x into it (1/nm).
    ///
    /// G is evaluated with the bond directions of `x`, whatever the bond lengths: on the
    /// constraint surface this is the constrained dynamics' metric, and off it a smooth
    /// extension.
    ///
    /// Per component of k constraints: d ln det G = Σ_cd (G⁻¹)_cd dG_cd, and with the unit
    /// vectors u_c = (x_i − x_j)/r_c (∇_i ξ_c = u_c, ∇_j ξ_c = −u_c) this is 2 Σ_c v_c · du_c,
    /// v_c = Σ_d (G⁻¹)_cd (∇_{i_c} ξ_d / m_{i_c} − ∇_{j_c} ξ_d / m_{j_c}) and
    /// du_c = (I − u_c u_cᵀ)(dx_i − dx_j)/r_c.
    ///
    /// # Panics
    /// If `x` (or `grad`) is shorter than 3 × the number of atoms (callers check shapes).
    pub fn log_det_metric(&self, x: &[f64], mut grad: Option<&mut [f64]>) -> f64 {
        let mut total = 0.0;
        for comp in &self.components {
            let k = comp.len();
            // Unit vectors and lengths of the component's bonds.
            let (u, r): (Vec<[f64; 3]>, Vec<f64>) = comp
                .iter()
                .map(|&c| {
                    let (i, j, _) = self.pairs[c];
                    let d = [
                        x[3 * i] - x[3 * j],
                        x[3 * i + 1] - x[3 * j + 1],
                        x[3 * i + 2] - x[3 * j + 2],
                    ];
                    let r = dot(d, d).sqrt();
                    ([d[0] / r, d[1] / r, d[2] / r], r)
                })
                .unzip();
            // ∇_a ξ_c = s u_c with s = +1 at i_c, −1 at j_c, 0 elsewhere.
            let sign = |c: usize, a: usize| {
                let (i, j, _) = self.pairs[comp[c]];
                if a == i {
                    1.0
                } else if a == j {
                    -1.0
                } else {
                    0.0
                }
            };
            let mut g = faer::Mat::<f64>::zeros(k, k);
            for c in 0..k {
                let (i, j, _) = self.pairs[comp[c]];
                for d in 0..k {
                    let w: f64 = [i, j]
                        .iter()
                        .map(|&a| self.inv_mass[a] * sign(c, a) * sign(d, a))
                        .sum();
                    g[(c, d)] = w * dot(u[c], u[d]);
                }
            }
            // G is symmetric positive definite (a Gram matrix of independent gradients).
            let Ok(llt) = g.llt(faer::Side::Lower) else {
                return f64::NAN;
            };
            let l = llt.L();
            total += 2.0 * (0..k).map(|c| l[(c, c)].ln()).sum::<f64>();
            let Some(grad) = grad.as_deref_mut() else {
                continue;
            };
            let ginv = llt.inverse();
            for c in 0..k {
                let (i, j, _) = self.pairs[comp[c]];
                let mut v = [0.0; 3];
                for d in 0..k {
                    let w = ginv[(c, d)]
                        * (self.inv_mass[i] * sign(d, i) - self.inv_mass[j] * sign(d, j));
                    for (vk, uk) in v.iter_mut().zip(u[d]) {
                        *vk += w * uk;
                    }
                }
                let along = dot(v, u[c]);
                for ax in 0..3 {
                    let t = 2.0 * (v[ax] - along * u[c][ax]) / r[c];
                    grad[3 * i + ax] += t;
                    grad[3 * j + ax] -= t;
                }
            }
        }
        total
    }
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// The constraint indices of each connected component of the graph whose edges are `pairs`
/// (union–find over the atoms).
fn components(pairs: &[(usize, usize, f64)], n_atoms: usize) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..n_atoms).collect();
    fn find(parent: &mut [usize], a: usize) -> usize {
        let mut r = a;
        while parent[r] != r {
            r = parent[r];
        }
        let mut a = a;
        while parent[a] != r {
            let next = parent[a];
            parent[a] = r;
            a = next;
        }
        r
    }
    for &(i, j, _) in pairs {
        let (ri, rj) = (find(&mut parent, i), find(&mut parent, j));
        parent[ri] = rj;
    }
    let mut by_root: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (c, &(i, _, _)) in pairs.iter().enumerate() {
        by_root.entry(find(&mut parent, i)).or_default().push(c);
    }
    by_root.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bent X–H₂ and a lone Y–H: two components.
    fn molecule() -> (FixedBonds, Vec<f64>) {
        let masses = [12.0, 1.008, 1.008, 14.0, 1.008];
        let pairs = [(1, 0, 0.109), (0, 2, 0.109), (4, 3, 0.101)];
        let x = vec![
            0.0, 0.0, 0.0, 0.11, 0.01, -0.02, -0.03, 0.105, 0.01, 0.5, 0.2, 0.1, 0.56, 0.27, 0.13,
        ];
        (FixedBonds::new(&pairs, &masses).unwrap(), x)
    }

    #[test]
    fn the_metric_determinant_is_the_analytic_one() {
        let (fb, x) = molecule();
        assert_eq!(fb.components.len(), 2);
        // H–X–H: G = [[a, ±b cos θ], [±b cos θ, a]], a = 1/m_X + 1/m_H, b = 1/m_X (the sign
        // depends on the bonds' directions and drops out of det G); the lone Y–H bond:
        // 1/m_Y + 1/m_H.
        let v = |a: usize, b: usize| {
            let d: Vec<f64> = (0..3).map(|k| x[3 * a + k] - x[3 * b + k]).collect();
            let r = d.iter().map(|t| t * t).sum::<f64>().sqrt();
            d.into_iter().map(move |t| t / r)
        };
        let cos: f64 = v(1, 0).zip(v(2, 0)).map(|(p, q)| p * q).sum();
        let (a, b) = (1.0 / 12.0 + 1.0 / 1.008, 1.0 / 12.0);
        let expected = (a * a - b * b * cos * cos).ln() + (1.0 / 14.0 + 1.0 / 1.008f64).ln();
        let got = fb.log_det_metric(&x, None);
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    }

    #[test]
    fn the_gradient_equals_central_differences_and_has_no_net_force() {
        let (fb, x) = molecule();
        let mut grad = vec![0.0; x.len()];
        fb.log_det_metric(&x, Some(&mut grad));
        let h = 1e-6;
        for k in 0..x.len() {
            let (mut p, mut m) = (x.clone(), x.clone());
            p[k] += h;
            m[k] -= h;
            let fd = (fb.log_det_metric(&p, None) - fb.log_det_metric(&m, None)) / (2.0 * h);
            assert!(
                (fd - grad[k]).abs() < 1e-6 * (1.0 + fd.abs()),
                "{k}: {fd} vs {}",
                grad[k]
            );
        }
        for ax in 0..3 {
            let net: f64 = (0..5).map(|a| grad[3 * a + ax]).sum();
            assert!(net.abs() < 1e-9, "{net}");
        }
    }

    #[test]
    fn bad_constraints_are_named() {
        let m = [1.0, 1.0];
        for (pairs, what) in [
            (vec![(0, 2, 0.1)], "constraint 0 (0, 2, 0.1)"),
            (vec![(0, 0, 0.1)], "constraint 0"),
            (vec![(0, 1, -0.1)], "constraint 0"),
            (vec![(0, 1, 0.1), (1, 0, 0.1)], "constrained twice"),
        ] {
            let e = FixedBonds::new(&pairs, &m).unwrap_err().to_string();
            assert!(e.contains(what), "{e}");
        }
        let e = FixedBonds::new(&[(0, 1, 0.1)], &[1.0, 0.0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("atom 1 has mass 0"), "{e}");
    }
}
