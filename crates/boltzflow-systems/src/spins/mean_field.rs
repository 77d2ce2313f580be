//! Naive mean-field free energy: the best product distribution q(s) = Π_i (1 + m_i s_i)/2, the
//! baseline a variational autoregressive network must beat (Wu, Wang & Zhang 2019, Fig. 3).
//!
//! F_MF(m) = −Σ_{i<j} J_ij m_i m_j − (1/β) Σ_i H((1 + m_i)/2), with H the binary entropy. It is an
//! upper bound on F (Gibbs–Bogoliubov), minimised by iterating m_i = tanh(β Σ_j J_ij m_j) with
//! damping from several starts.

use boltzflow_core::RandomStreams;
use ndarray::{Array1, Array2};
use rand::RngExt;

/// Binary entropy of a spin with magnetisation m, in nats.
fn spin_entropy(m: f64) -> f64 {
    let h = |p: f64| if p > 0.0 { -p * p.ln() } else { 0.0 };
    h(0.5 * (1.0 + m)) + h(0.5 * (1.0 - m))
}

/// F_MF(m) / n.
fn free_energy(j: &Array2<f64>, beta: f64, m: &Array1<f64>) -> f64 {
    let e = -0.5 * m.dot(&j.dot(m));
    let s: f64 = m.iter().map(|&v| spin_entropy(v)).sum();
    (e - s / beta) / m.len() as f64
}

/// The naive mean-field free energy per spin at `beta`: the lowest of damped fixed-point
/// iterations started from m = ±0.01 and 16 random magnetisations (seeded, deterministic).
pub fn f_per_spin(j: &Array2<f64>, beta: f64) -> f64 {
    let n = j.nrows();
    let mut rng = RandomStreams::new(0).stream("mean-field");
    let mut starts = vec![Array1::from_elem(n, 0.01), Array1::from_elem(n, -0.01)];
    for _ in 0..16 {
        starts.push(Array1::from_shape_fn(n, |_| rng.random_range(-1.0..1.0)));
    }
    starts
        .into_iter()
        .map(|mut m| {
            for _ in 0..5000 {
                let target = (j.dot(&m) * beta).mapv(f64::tanh);
                let change = (&target - &m).mapv(f64::abs).sum();
                m = &m * 0.5 + &target * 0.5;
                if change < 1e-13 * n as f64 {
                    break;
                }
            }
            free_energy(j, beta, &m)
        })
        .fold(f64::INFINITY, f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spins::SpinSystem;

    #[test]
    fn mean_field_is_an_upper_bound_and_exact_for_free_spins() {
        let f = f_per_spin(&Array2::zeros((5, 5)), 0.7);
        assert!((f + 2f64.ln() / 0.7).abs() < 1e-12);
        let sys = SpinSystem::sk(12, 2).unwrap();
        for beta in [0.3, 1.0, 2.0] {
            let exact = sys.exact(&[beta]).unwrap().unwrap()[0].f_per_spin;
            let mf = f_per_spin(sys.couplings(), beta);
            assert!(mf >= exact - 1e-12, "β={beta}: {mf} < {exact}");
        }
    }

    #[test]
    fn the_ising_mean_field_is_ordered_below_its_critical_temperature() {
        // Mean-field Tc of the square lattice is 4J: below it F_MF < −ln 2/β.
        let sys = SpinSystem::ising(4, 1.0).unwrap();
        let f = f_per_spin(sys.couplings(), 0.5);
        assert!(f < -2f64.ln() / 0.5 - 0.1, "{f}");
    }
}
