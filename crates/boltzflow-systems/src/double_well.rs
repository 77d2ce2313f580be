//! The double well of the Boltzmann-generator paper's code (Noé et al., Science 2019).

use ndarray::{Array1, array};

use crate::System;
use crate::kernel::{RowKernel, impl_energy_via_rows};

/// E(x₁, x₂) = a4 x₁⁴ − a2 x₁² + a1 x₁ + ½ k x₂², in kT; defaults a4 = 1, a2 = 6, a1 = 1, k = 1
/// give x₁⁴ − 6x₁² + x₁ + ½x₂² (DESIGN §6), with minima near x₁ ≈ −1.77 and x₁ ≈ 1.69.
#[derive(Debug, Clone, PartialEq)]
pub struct DoubleWell {
    /// Quartic coefficient.
    pub a4: f64,
    /// Quadratic coefficient (entering with a minus sign).
    pub a2: f64,
    /// Linear tilt.
    pub a1: f64,
    /// Harmonic constant along x₂.
    pub k: f64,
}

impl Default for DoubleWell {
    fn default() -> Self {
        Self {
            a4: 1.0,
            a2: 6.0,
            a1: 1.0,
            k: 1.0,
        }
    }
}

impl RowKernel for DoubleWell {
    fn kernel_dim(&self) -> usize {
        2
    }
    fn energy_rows(&self, x: &[f64], e: &mut [f64]) {
        for (r, ei) in x.chunks_exact(2).zip(e.iter_mut()) {
            let (x1, x2) = (r[0], r[1]);
            let x1s = x1 * x1;
            *ei = self.a4 * x1s * x1s - self.a2 * x1s + self.a1 * x1 + 0.5 * self.k * x2 * x2;
        }
    }
    fn energy_forces_rows(&self, x: &[f64], e: &mut [f64], f: &mut [f64]) {
        self.energy_rows(x, e);
        for (r, fi) in x.chunks_exact(2).zip(f.chunks_exact_mut(2)) {
            let (x1, x2) = (r[0], r[1]);
            fi[0] = -(4.0 * self.a4 * x1 * x1 * x1 - 2.0 * self.a2 * x1 + self.a1);
            fi[1] = -self.k * x2;
        }
    }
}
impl_energy_via_rows!(DoubleWell);

impl System for DoubleWell {
    fn spec(&self) -> String {
        format!(
            "double-well:a4={},a2={},a1={},k={}",
            self.a4, self.a2, self.a1, self.k
        )
    }
    fn reference_box(&self) -> Option<Vec<[f64; 2]>> {
        Some(vec![[-4.0, 4.0], [-9.0, 9.0]])
    }
    fn initial_configuration(&self) -> Array1<f64> {
        array![-1.7, 0.0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boltzflow_core::Energy;

    #[test]
    fn energies_equal_the_definition() {
        let dw = DoubleWell::default();
        let e = dw
            .energy(array![[0.0, 0.0], [1.0, 2.0], [-2.0, -1.0]].view())
            .unwrap();
        // 1 − 6 + 1 + 2 = −2; 16 − 24 − 2 + 0.5 = −9.5
        assert_eq!(e.to_vec(), vec![0.0, -2.0, -9.5]);
    }
}
