//! Helpers shared by the engine's tests.
#![allow(dead_code)] // each test file uses a subset

use boltzflow_core::RandomStreams;
use boltzflow_nn::made::log_prob_row;
use rand_distr::{Distribution, StandardNormal};

/// `n` normal numbers with standard deviation `scale`, from `seed`.
pub fn noise(n: usize, scale: f64, seed: u64) -> Vec<f64> {
    let mut rng = RandomStreams::new(seed).stream("noise");
    (0..n)
        .map(|_| {
            let e: f64 = StandardNormal.sample(&mut rng);
            scale * e
        })
        .collect()
}

/// Σ_r c_r log q(s_r) for spins `s` and logits `l`, both `[rows, n]`.
pub fn weighted_log_prob(s: &[f64], l: &[f64], c: &[f64], n: usize) -> f64 {
    c.iter()
        .enumerate()
        .map(|(r, cr)| cr * log_prob_row(&s[r * n..(r + 1) * n], &l[r * n..(r + 1) * n], None))
        .sum()
}

/// d(Σ_r c_r log q(s_r))/d(logits) `[rows, n]`.
pub fn weighted_log_prob_grad(s: &[f64], l: &[f64], c: &[f64], n: usize) -> Vec<f64> {
    let mut d = vec![0.0; s.len()];
    for (r, cr) in c.iter().enumerate() {
        let rs = r * n..(r + 1) * n;
        log_prob_row(&s[rs.clone()], &l[rs.clone()], Some(&mut d[rs.clone()]));
        d[rs].iter_mut().for_each(|v| *v *= cr);
    }
    d
}
