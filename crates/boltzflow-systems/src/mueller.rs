//! The Müller–Brown potential (Müller & Brown, Theor. Chim. Acta 53, 75 (1979)), scaled by k.

use boltzflow_core::math::exp;
use ndarray::{Array1, array};

use crate::System;
use crate::kernel::{RowKernel, impl_energy_via_rows};

const A: [f64; 4] = [-200.0, -100.0, -170.0, 15.0];
const AA: [f64; 4] = [-1.0, -1.0, -6.5, 0.7];
const BB: [f64; 4] = [0.0, 0.0, 11.0, 0.6];
const CC: [f64; 4] = [-10.0, -10.0, -6.5, 0.7];
const X0: [f64; 4] = [1.0, 0.0, -0.5, -1.0];
const Y0: [f64; 4] = [0.0, 0.5, 1.5, 1.0];

/// E(x, y) = k · Σ_{j=1..4} A_j exp(a_j (x−X_j)² + b_j (x−X_j)(y−Y_j) + c_j (y−Y_j)²), in kT.
///
/// With the default k = 0.1 the three minima lie at ≈ (−0.558, 1.442) (−14.67),
/// (0.623, 0.028) (−10.82) and (−0.050, 0.467) (−8.07).
#[derive(Debug, Clone, PartialEq)]
pub struct MuellerBrown {
    k: f64,
}

impl MuellerBrown {
    /// The potential scaled by `k` (validated by the spec parser: finite and positive).
    pub fn new(k: f64) -> Self {
        Self { k }
    }

    /// The scale factor k.
    pub fn k(&self) -> f64 {
        self.k
    }
}

/// Rows evaluated together so that the four exponentials vectorise across rows.
const LANES: usize = 8;

#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1"))]
fn mueller_energy_rows(k: f64, x: &[f64], e: &mut [f64]) {
    mueller_rows::<false>(k, x, e, None);
}

#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1"))]
fn mueller_force_rows(k: f64, x: &[f64], e: &mut [f64], f: &mut [f64]) {
    mueller_rows::<true>(k, x, e, Some(f));
}

/// The kernel; `FORCES = false` skips the gradient (Metropolis needs energies only). Rows go in
/// chunks of [`LANES`] with constant trip counts (the last one padded), so that the loads
/// de-interleave x and y with shuffles and the four exponentials run across rows.
#[inline(always)]
fn mueller_rows<const FORCES: bool>(k: f64, x: &[f64], e: &mut [f64], mut f: Option<&mut [f64]>) {
    let n = e.len();
    let mut start = 0;
    while start < n {
        let m = LANES.min(n - start);
        let mut px = [0.0; LANES];
        let mut py = [0.0; LANES];
        if m == LANES {
            let c = &x[2 * start..2 * start + 2 * LANES];
            for i in 0..LANES {
                px[i] = c[2 * i];
                py[i] = c[2 * i + 1];
            }
        } else {
            for i in 0..m {
                px[i] = x[2 * (start + i)];
                py[i] = x[2 * (start + i) + 1];
            }
        }
        let mut en = [0.0; LANES];
        let mut gx = [0.0; LANES];
        let mut gy = [0.0; LANES];
        for j in 0..4 {
            for i in 0..LANES {
                let dx = px[i] - X0[j];
                let dy = py[i] - Y0[j];
                // The two terms without a cross term skip it (0·dx·dy is not folded away:
                // it would be NaN for infinite input).
                let cc = (CC[j] * dy) * dy;
                let q = if BB[j] == 0.0 {
                    (AA[j] * dx).mul_add(dx, cc)
                } else {
                    dx.mul_add(AA[j].mul_add(dx, BB[j] * dy), cc)
                };
                let ex = exp(q);
                en[i] = A[j].mul_add(ex, en[i]);
                if FORCES {
                    let t = A[j] * ex;
                    gx[i] += t * (2.0 * AA[j] * dx + BB[j] * dy);
                    gy[i] += t * (BB[j] * dx + 2.0 * CC[j] * dy);
                }
            }
        }
        if m == LANES {
            for (o, v) in e[start..start + LANES].iter_mut().zip(&en) {
                *o = k * v;
            }
        } else {
            for i in 0..m {
                e[start + i] = k * en[i];
            }
        }
        if let Some(f) = f.as_deref_mut() {
            for i in 0..m {
                f[2 * (start + i)] = -k * gx[i];
                f[2 * (start + i) + 1] = -k * gy[i];
            }
        }
        start += m;
    }
}

impl RowKernel for MuellerBrown {
    fn kernel_dim(&self) -> usize {
        2
    }
    fn energy_rows(&self, x: &[f64], e: &mut [f64]) {
        mueller_energy_rows(self.k, x, e);
    }
    fn energy_forces_rows(&self, x: &[f64], e: &mut [f64], f: &mut [f64]) {
        mueller_force_rows(self.k, x, e, f);
    }
}
impl_energy_via_rows!(MuellerBrown);

impl System for MuellerBrown {
    fn spec(&self) -> String {
        format!("mueller:k={}", self.k)
    }
    fn reference_box(&self) -> Option<Vec<[f64; 2]>> {
        Some(vec![[-2.0, 1.5], [-1.0, 2.5]])
    }
    fn initial_configuration(&self) -> Array1<f64> {
        // The deepest minimum.
        array![-0.558_224, 1.441_726]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boltzflow_core::Energy;
    use ndarray::array;

    /// The energy at a point, written out term by term from the definition (DESIGN §6).
    fn by_hand(k: f64, x: f64, y: f64) -> f64 {
        let t1 = -200.0 * (-(x - 1.0).powi(2) - 10.0 * y * y).exp();
        let t2 = -100.0 * (-(x * x) - 10.0 * (y - 0.5).powi(2)).exp();
        let t3 = -170.0
            * (-6.5 * (x + 0.5).powi(2) + 11.0 * (x + 0.5) * (y - 1.5) - 6.5 * (y - 1.5).powi(2))
                .exp();
        let t4 = 15.0
            * (0.7 * (x + 1.0).powi(2) + 0.6 * (x + 1.0) * (y - 1.0) + 0.7 * (y - 1.0).powi(2))
                .exp();
        k * (t1 + t2 + t3 + t4)
    }

    #[test]
    fn energies_equal_the_definition() {
        let pts = array![
            [0.0, 0.0],
            [-0.558, 1.442],
            [0.623, 0.028],
            [1.0, -0.3],
            [-1.5, 2.0]
        ];
        for k in [0.1, 1.0] {
            let e = MuellerBrown::new(k).energy(pts.view()).unwrap();
            for (row, ei) in pts.outer_iter().zip(e.iter()) {
                approx::assert_relative_eq!(*ei, by_hand(k, row[0], row[1]), max_relative = 1e-12);
            }
        }
        // The published minimum energy of the unscaled potential, −146.70 at (−0.558, 1.442).
        let e = MuellerBrown::new(1.0)
            .energy(array![[-0.558_224, 1.441_726]].view())
            .unwrap();
        assert!((e[0] + 146.699_5).abs() < 1e-3, "{}", e[0]);
    }
}
