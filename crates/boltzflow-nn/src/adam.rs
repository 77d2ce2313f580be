//! The Adam optimizer (Kingma & Ba 2015) with bias correction, and global-norm gradient
//! clipping.

use serde::{Deserialize, Serialize};

use crate::Real;
use crate::params::squared_norm;

/// Adam's hyperparameters (PyTorch's defaults apart from the learning rate).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator offset.
    pub eps: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// Adam state: first and second moments (laid out as the parameters) and the step count.
#[derive(Debug, Clone, PartialEq)]
pub struct Adam<T> {
    /// First moments.
    pub m: Vec<T>,
    /// Second moments.
    pub v: Vec<T>,
    /// Steps taken.
    pub t: u64,
}

impl<T: Real> Adam<T> {
    /// Zero state for `n` parameters.
    pub fn new(n: usize) -> Self {
        Self {
            m: vec![T::zero(); n],
            v: vec![T::zero(); n],
            t: 0,
        }
    }

    /// One update of `params` with `grads` at learning rate `lr` (the schedule's current value).
    pub fn step(&mut self, cfg: &AdamConfig, lr: f64, params: &mut [T], grads: &[T]) {
        self.t += 1;
        let (b1, b2) = (T::of(cfg.beta1), T::of(cfg.beta2));
        let t = self.t as i32;
        let c1 = 1.0 - cfg.beta1.powi(t);
        let c2 = 1.0 - cfg.beta2.powi(t);
        // p −= lr·m̂/(√v̂ + ε) with m̂ = m/c1, v̂ = v/c2.
        let step = T::of(lr / c1);
        let inv_sqrt_c2 = T::of(1.0 / c2.sqrt());
        let eps = T::of(cfg.eps);
        let one = T::one();
        for (((p, &g), m), v) in params
            .iter_mut()
            .zip(grads)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            *m = b1 * *m + (one - b1) * g;
            *v = b2 * *v + (one - b2) * g * g;
            *p -= step * *m / (v.sqrt() * inv_sqrt_c2 + eps);
        }
    }
}

/// Scales `grads` so that their Euclidean norm is at most `max_norm`; returns the norm before
/// clipping.
pub fn clip_grad_norm<T: Real>(grads: &mut [T], max_norm: f64) -> f64 {
    let norm = squared_norm(grads).sqrt();
    if norm > max_norm && norm.is_finite() {
        let s = T::of(max_norm / norm);
        grads.iter_mut().for_each(|g| *g *= s);
    }
    norm
}
