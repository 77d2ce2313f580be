//! Exact thermodynamics by enumerating all 2ⁿ states (n ≤ 24).
//!
//! States are visited in Gray-code order, so consecutive states differ by one spin and the energy
//! changes by ΔE = 2 s_k h_k with the local field h_k = Σ_j J_kj s_j, which is updated in O(n):
//! the whole sum costs O(2ⁿ n) instead of O(2ⁿ n²). The top bits are fixed per task and the tasks
//! run in parallel; their partial sums are combined in task order, so the result does not depend
//! on the number of threads. Two passes: the first finds E_min, the second sums
//! e^{−β(E − E_min)} ≤ 1 and E·e^{−β(E − E_min)} in f64 for every β at once.

use ndarray::Array2;
use rayon::prelude::*;

use super::SpinThermo;

/// Number of top bits fixed per parallel task (at most).
const TASK_BITS: usize = 6;

/// Visits every state of the spins whose top `n − low` bits are given by `task`, calling
/// `visit(E)` once per state. Bit i of a state is spin i (0 → −1, 1 → +1).
fn visit_task(j: &Array2<f64>, low: usize, task: usize, mut visit: impl FnMut(f64)) {
    let n = j.nrows();
    let mut s: Vec<f64> = (0..n)
        .map(|i| {
            if i >= low && (task >> (i - low)) & 1 == 1 {
                1.0
            } else {
                -1.0
            }
        })
        .collect();
    let mut h: Vec<f64> = (0..n)
        .map(|i| (0..n).map(|k| j[[i, k]] * s[k]).sum())
        .collect();
    // E = −½ Σ_i s_i h_i.
    let mut e = -0.5 * s.iter().zip(&h).map(|(a, b)| a * b).sum::<f64>();
    visit(e);
    for t in 1u64..(1u64 << low) {
        let k = t.trailing_zeros() as usize;
        let old = s[k];
        e += 2.0 * old * h[k];
        s[k] = -old;
        for (hi, &jik) in h.iter_mut().zip(j.column(k)) {
            *hi -= 2.0 * jik * old;
        }
        visit(e);
    }
}

/// ln Z, ⟨E⟩ and the per-spin quantities at each β for couplings `j` `[n, n]` (symmetric, zero
/// diagonal), E(s) = −Σ_{i<j} J_ij s_i s_j.
///
/// # Panics
/// If n > 40 (the enumeration would never finish; callers check [`super::MAX_ENUMERATED_SPINS`]).
pub fn thermo(j: &Array2<f64>, betas: &[f64]) -> Vec<SpinThermo> {
    let n = j.nrows();
    assert!(n <= 40, "enumeration of 2^{n} states is not feasible");
    let high = TASK_BITS.min(n);
    let low = n - high;
    let tasks = 1usize << high;
    let e_min = (0..tasks)
        .into_par_iter()
        .map(|t| {
            let mut m = f64::INFINITY;
            visit_task(j, low, t, |e| m = m.min(e));
            m
        })
        .collect::<Vec<_>>()
        .into_iter()
        .fold(f64::INFINITY, f64::min);
    let partial: Vec<Vec<(f64, f64)>> = (0..tasks)
        .into_par_iter()
        .map(|t| {
            let mut acc = vec![(0.0, 0.0); betas.len()];
            visit_task(j, low, t, |e| {
                for (a, &b) in acc.iter_mut().zip(betas) {
                    let w = (-b * (e - e_min)).exp();
                    a.0 += w;
                    a.1 += w * e;
                }
            });
            acc
        })
        .collect();
    betas
        .iter()
        .enumerate()
        .map(|(k, &b)| {
            let (z, ez) = partial
                .iter()
                .fold((0.0, 0.0), |(z, ez), p| (z + p[k].0, ez + p[k].1));
            SpinThermo::new(b, n, z.ln() - b * e_min, ez / z)
        })
        .collect()
}

/// Every state's energy, indexed by the bit pattern (bit i = 1 ↔ s_i = +1); for tests and tiny
/// systems (n ≤ 20).
///
/// # Panics
/// If n > 20.
pub fn all_energies(j: &Array2<f64>) -> Vec<f64> {
    let n = j.nrows();
    assert!(n <= 20, "listing 2^{n} energies is not sensible");
    (0..1usize << n)
        .map(|state| {
            let s: Vec<f64> = (0..n)
                .map(|i| if (state >> i) & 1 == 1 { 1.0 } else { -1.0 })
                .collect();
            let mut e = 0.0;
            for a in 0..n {
                for b in a + 1..n {
                    e -= j[[a, b]] * s[a] * s[b];
                }
            }
            e
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(n: usize, coupling: f64) -> Array2<f64> {
        let mut j = Array2::zeros((n, n));
        for i in 0..n {
            let k = (i + 1) % n;
            j[[i, k]] = coupling;
            j[[k, i]] = coupling;
        }
        j
    }

    #[test]
    fn gray_code_energies_equal_direct_sums() {
        let j = crate::spins::SpinSystem::sk(9, 4)
            .unwrap()
            .couplings()
            .clone();
        let direct = all_energies(&j);
        let mut seen = Vec::new();
        let low = 9 - TASK_BITS;
        for t in 0..1 << TASK_BITS {
            visit_task(&j, low, t, |e| seen.push(e));
        }
        let mut a = direct.clone();
        a.sort_by(f64::total_cmp);
        seen.sort_by(f64::total_cmp);
        for (x, y) in a.iter().zip(&seen) {
            assert!((x - y).abs() < 1e-12, "{x} vs {y}");
        }
        assert_eq!(seen.len(), 512);
    }

    #[test]
    fn a_ring_matches_the_transfer_matrix() {
        // 1D periodic chain: Z = (2 cosh βJ)ⁿ + (2 sinh βJ)ⁿ.
        for &(n, b) in &[(10, 0.3), (12, 1.0), (16, 2.5)] {
            let t = thermo(&ring(n, 1.0), &[b])[0];
            let exact = ((2.0 * b.cosh()).powi(n as i32) + (2.0 * b.sinh()).powi(n as i32)).ln();
            assert!(
                (t.ln_z - exact).abs() < 1e-11,
                "n={n} β={b}: {} vs {exact}",
                t.ln_z
            );
            // ⟨E⟩ = −d ln Z/dβ.
            let (c, s) = (b.cosh(), b.sinh());
            let (a, d) = ((2.0 * c).powi(n as i32), (2.0 * s).powi(n as i32));
            let mean_e = -(n as f64) * (a * s / c + d * c / s) / (a + d);
            assert!((t.energy_per_spin * n as f64 - mean_e).abs() < 1e-10);
        }
    }

    #[test]
    fn free_spins_and_a_pair_match_closed_forms() {
        let t = thermo(&Array2::zeros((7, 7)), &[0.5])[0];
        assert!((t.ln_z - 7.0 * 2f64.ln()).abs() < 1e-12);
        assert!((t.entropy_per_spin - 2f64.ln()).abs() < 1e-12);
        // Two spins: Z = 4 cosh βJ.
        let mut j = Array2::zeros((2, 2));
        j[[0, 1]] = -0.7;
        j[[1, 0]] = -0.7;
        let t = thermo(&j, &[1.3])[0];
        assert!((t.ln_z - (4.0 * (1.3f64 * 0.7).cosh()).ln()).abs() < 1e-13);
    }

    #[test]
    fn curie_weiss_matches_the_binomial_sum() {
        // All-to-all J/n: E = −(J/2n)(M² − n), Z = Σ_k C(n,k) e^{−βE(M = n − 2k)}.
        let n = 14;
        let mut j = Array2::from_elem((n, n), 1.0 / n as f64);
        j.diag_mut().fill(0.0);
        let b = 1.4;
        let mut z = 0.0;
        let mut binom = 1.0;
        for k in 0..=n {
            let m = n as f64 - 2.0 * k as f64;
            z += binom * (b * (m * m - n as f64) / (2.0 * n as f64)).exp();
            binom *= (n - k) as f64 / (k + 1) as f64;
        }
        let t = thermo(&j, &[b])[0];
        assert!((t.ln_z - z.ln()).abs() < 1e-12, "{} vs {}", t.ln_z, z.ln());
    }
}
