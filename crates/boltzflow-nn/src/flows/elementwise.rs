//! Elementwise layers: ActNorm (trainable scale and shift) and fixed permutations.

use std::ops::Range;

use boltzflow_core::ChainRng;

use super::{Direction, FlowLayer, LayerCache};
use crate::Real;
use crate::params::ParamLayout;

/// x = z·e^s + b per dimension (Kingma & Dhariwal 2018, "ActNorm"); log|det| = Σ s.
///
/// Initialised to the identity; [`FlowLayer::data_init`] sets b and s from a data batch so that
/// the batch leaves this layer, in the inverse direction, with zero mean and unit variance.
#[derive(Debug, Clone)]
pub struct ActNorm {
    dim: usize,
    log_scale: Range<usize>,
    shift: Range<usize>,
}

impl ActNorm {
    /// Registers `{prefix}.log_scale` and `{prefix}.shift`, both `[dim]`.
    pub fn new(layout: &mut ParamLayout, prefix: &str, dim: usize) -> Self {
        Self {
            dim,
            log_scale: layout.add(format!("{prefix}.log_scale"), &[dim]),
            shift: layout.add(format!("{prefix}.shift"), &[dim]),
        }
    }
}

impl<T: Real> FlowLayer<T> for ActNorm {
    fn dim(&self) -> usize {
        self.dim
    }

    fn init(&self, params: &mut [T], _rng: &mut ChainRng) {
        params[self.log_scale.clone()].fill(T::zero());
        params[self.shift.clone()].fill(T::zero());
    }

    fn transform(
        &self,
        params: &[T],
        input: &[T],
        output: &mut [T],
        log_det: &mut [T],
        _rows: usize,
        dir: Direction,
        _cache: &mut LayerCache<T>,
    ) {
        let s = &params[self.log_scale.clone()];
        let b = &params[self.shift.clone()];
        let sum_s: T = s.iter().copied().sum();
        for (inp, out) in input
            .chunks_exact(self.dim)
            .zip(output.chunks_exact_mut(self.dim))
        {
            for j in 0..self.dim {
                out[j] = match dir {
                    Direction::Forward => inp[j] * s[j].exp() + b[j],
                    Direction::Inverse => (inp[j] - b[j]) * (-s[j]).exp(),
                };
            }
        }
        let ld = if dir == Direction::Forward {
            sum_s
        } else {
            -sum_s
        };
        log_det.iter_mut().for_each(|l| *l += ld);
    }

    fn backward(
        &self,
        params: &[T],
        grads: &mut [T],
        _input: &[T],
        output: &[T],
        grad: &mut [T],
        grad_log_det: &[T],
        _rows: usize,
        dir: Direction,
        _cache: &mut LayerCache<T>,
    ) {
        let s = &params[self.log_scale.clone()];
        let b = &params[self.shift.clone()];
        let gl_sum: T = grad_log_det.iter().copied().sum();
        let (ls, sh) = (self.log_scale.start, self.shift.start);
        for j in 0..self.dim {
            let (mut gs, mut gb) = (T::zero(), T::zero());
            for (g, out) in grad
                .chunks_exact_mut(self.dim)
                .zip(output.chunks_exact(self.dim))
            {
                match dir {
                    Direction::Forward => {
                        // out = in·e^s + b.
                        gb += g[j];
                        gs += g[j] * (out[j] - b[j]);
                        g[j] *= s[j].exp();
                    }
                    Direction::Inverse => {
                        // out = (in − b)·e^{−s}.
                        let e = (-s[j]).exp();
                        gb -= g[j] * e;
                        gs -= g[j] * out[j];
                        g[j] *= e;
                    }
                }
            }
            let sign = if dir == Direction::Forward {
                T::one()
            } else {
                -T::one()
            };
            grads[ls + j] += gs + sign * gl_sum;
            grads[sh + j] += gb;
        }
    }

    fn data_init(&self, params: &mut [T], x: &[T], rows: usize) {
        if rows < 2 {
            return;
        }
        let n = T::of(rows as f64);
        for j in 0..self.dim {
            let mean = x.iter().skip(j).step_by(self.dim).copied().sum::<T>() / n;
            let var = x
                .iter()
                .skip(j)
                .step_by(self.dim)
                .map(|&v| (v - mean) * (v - mean))
                .sum::<T>()
                / n;
            let std = var.sqrt().max(T::of(1e-6));
            params[self.shift.start + j] = mean;
            params[self.log_scale.start + j] = std.ln();
        }
    }
}

/// A fixed permutation of the coordinates: output column i is input column `perm[i]` in the
/// forward direction. Volume preserving.
#[derive(Debug, Clone)]
pub struct Permutation {
    perm: Vec<usize>,
    inverse: Vec<usize>,
}

impl Permutation {
    /// # Panics
    /// If `perm` is not a permutation of `0..perm.len()`.
    pub fn new(perm: Vec<usize>) -> Self {
        let mut inverse = vec![usize::MAX; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            assert!(
                p < perm.len() && inverse[p] == usize::MAX,
                "not a permutation"
            );
            inverse[p] = i;
        }
        Self { perm, inverse }
    }

    /// The reversal of `dim` coordinates.
    pub fn reverse(dim: usize) -> Self {
        Self::new((0..dim).rev().collect())
    }

    fn map(&self, dir: Direction) -> &[usize] {
        match dir {
            Direction::Forward => &self.perm,
            Direction::Inverse => &self.inverse,
        }
    }
}

impl<T: Real> FlowLayer<T> for Permutation {
    fn dim(&self) -> usize {
        self.perm.len()
    }

    fn init(&self, _params: &mut [T], _rng: &mut ChainRng) {}

    fn transform(
        &self,
        _params: &[T],
        input: &[T],
        output: &mut [T],
        _log_det: &mut [T],
        _rows: usize,
        dir: Direction,
        _cache: &mut LayerCache<T>,
    ) {
        let map = self.map(dir);
        let d = map.len();
        for (inp, out) in input.chunks_exact(d).zip(output.chunks_exact_mut(d)) {
            for (o, &src) in out.iter_mut().zip(map) {
                *o = inp[src];
            }
        }
    }

    fn backward(
        &self,
        _params: &[T],
        _grads: &mut [T],
        _input: &[T],
        _output: &[T],
        grad: &mut [T],
        _grad_log_det: &[T],
        _rows: usize,
        dir: Direction,
        cache: &mut LayerCache<T>,
    ) {
        let map = self.map(dir);
        let d = map.len();
        let tmp = &mut cache.aux;
        tmp.resize(d, T::zero());
        for g in grad.chunks_exact_mut(d) {
            tmp.copy_from_slice(g);
            for (i, &src) in map.iter().enumerate() {
                g[src] = tmp[i];
            }
        }
    }
}
