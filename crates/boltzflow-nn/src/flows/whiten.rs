//! A fixed linear layer that whitens the data: x = μ + M z with M = V Λ^{1/2} from the
//! eigendecomposition of the data covariance C = V Λ Vᵀ, so that the data leave it (in the
//! inverse direction) with zero mean and identity covariance. The Boltzmann-generator paper
//! whitens Cartesian coordinates this way before its couplings (Noé et al., Science 2019,
//! supplement); in many dimensions it removes the large linear correlations the couplings would
//! otherwise have to learn.
//!
//! The mean, M, M⁻¹ and log|det M| are stored as parameters (so checkpoints carry them) but are
//! frozen: the layer adds no parameter gradients, and Adam leaves a parameter with a zero
//! gradient unchanged. A new layer is the identity until [`FlowLayer::data_init`] fits it.

use std::ops::Range;

use boltzflow_core::ChainRng;
use faer::Side;

use super::{Direction, FlowLayer, LayerCache};
use crate::Real;
use crate::gemm::{Layout, matmul};
use crate::params::ParamLayout;

/// The whitening layer; see the module documentation.
#[derive(Debug, Clone)]
pub struct Whiten {
    dim: usize,
    mean: Range<usize>,
    /// Mᵀ `[dim, dim]`: rows map as x = μ + z Mᵀ.
    forward: Range<usize>,
    /// (M⁻¹)ᵀ `[dim, dim]`: z = (x − μ)(M⁻¹)ᵀ.
    inverse: Range<usize>,
    /// log|det M| `[1]`.
    log_det: Range<usize>,
}

impl Whiten {
    /// Registers `{prefix}.mean`, `{prefix}.forward`, `{prefix}.inverse` and `{prefix}.log_det`.
    pub fn new(layout: &mut ParamLayout, prefix: &str, dim: usize) -> Self {
        Self {
            dim,
            mean: layout.add(format!("{prefix}.mean"), &[dim]),
            forward: layout.add(format!("{prefix}.forward"), &[dim, dim]),
            inverse: layout.add(format!("{prefix}.inverse"), &[dim, dim]),
            log_det: layout.add(format!("{prefix}.log_det"), &[1]),
        }
    }

    /// Sets the layer from a mean and a covariance `[dim, dim]` (row-major, f64); variances
    /// below 10⁻¹² of the largest are raised to that floor so that M stays invertible.
    pub fn set<T: Real>(&self, params: &mut [T], mean: &[f64], cov: &[f64]) {
        let d = self.dim;
        let m = faer::Mat::from_fn(d, d, |i, j| 0.5 * (cov[i * d + j] + cov[j * d + i]));
        let Ok(evd) = m.self_adjoint_eigen(Side::Lower) else {
            return; // leave the identity: the data had no usable covariance
        };
        let s = evd.S().column_vector();
        let u = evd.U();
        let largest = (0..d).map(|i| s[i]).fold(0.0f64, f64::max);
        if !(largest > 0.0 && largest.is_finite()) {
            return;
        }
        let lam: Vec<f64> = (0..d).map(|i| s[i].max(1e-12 * largest)).collect();
        for (p, &v) in params[self.mean.clone()].iter_mut().zip(mean) {
            *p = T::of(v);
        }
        let (fwd, inv) = (self.forward.start, self.inverse.start);
        for a in 0..d {
            for b in 0..d {
                // M[b, a] = V[b, a] √λ_a, so Mᵀ[a, b] = V[b, a] √λ_a;
                // M⁻¹ = Λ^{-1/2} Vᵀ, so (M⁻¹)ᵀ[b, a] = V[b, a] / √λ_a.
                params[fwd + a * d + b] = T::of(u[(b, a)] * lam[a].sqrt());
                params[inv + b * d + a] = T::of(u[(b, a)] / lam[a].sqrt());
            }
        }
        params[self.log_det.start] = T::of(0.5 * lam.iter().map(|l| l.ln()).sum::<f64>());
    }
}

impl<T: Real> FlowLayer<T> for Whiten {
    fn dim(&self) -> usize {
        self.dim
    }

    fn init(&self, params: &mut [T], _rng: &mut ChainRng) {
        let d = self.dim;
        params[self.mean.clone()].fill(T::zero());
        for r in [self.forward.clone(), self.inverse.clone()] {
            let m = &mut params[r];
            m.fill(T::zero());
            for i in 0..d {
                m[i * d + i] = T::one();
            }
        }
        params[self.log_det.clone()].fill(T::zero());
    }

    fn transform(
        &self,
        params: &[T],
        input: &[T],
        output: &mut [T],
        log_det: &mut [T],
        rows: usize,
        dir: Direction,
        cache: &mut LayerCache<T>,
    ) {
        let d = self.dim;
        let mu = &params[self.mean.clone()];
        let ld = params[self.log_det.start];
        match dir {
            Direction::Forward => {
                matmul(
                    output,
                    input,
                    Layout::Plain,
                    &params[self.forward.clone()],
                    Layout::Plain,
                    rows,
                    d,
                    d,
                    false,
                );
                for row in output.chunks_exact_mut(d) {
                    row.iter_mut().zip(mu).for_each(|(v, &m)| *v += m);
                }
                log_det.iter_mut().for_each(|l| *l += ld);
            }
            Direction::Inverse => {
                cache.aux.clear();
                for row in input.chunks_exact(d) {
                    cache.aux.extend(row.iter().zip(mu).map(|(&v, &m)| v - m));
                }
                matmul(
                    output,
                    &cache.aux,
                    Layout::Plain,
                    &params[self.inverse.clone()],
                    Layout::Plain,
                    rows,
                    d,
                    d,
                    false,
                );
                log_det.iter_mut().for_each(|l| *l -= ld);
            }
        }
    }

    fn backward(
        &self,
        params: &[T],
        _grads: &mut [T],
        _input: &[T],
        _output: &[T],
        grad: &mut [T],
        _grad_log_det: &[T],
        rows: usize,
        dir: Direction,
        cache: &mut LayerCache<T>,
    ) {
        // dL/d(input) = dL/d(output) · Aᵀ for output = input · A; the log-det is constant.
        let d = self.dim;
        let a = match dir {
            Direction::Forward => &params[self.forward.clone()],
            Direction::Inverse => &params[self.inverse.clone()],
        };
        cache.grad_h.clear();
        cache.grad_h.extend_from_slice(&grad[..rows * d]);
        matmul(
            grad,
            &cache.grad_h,
            Layout::Plain,
            a,
            Layout::Transposed,
            rows,
            d,
            d,
            false,
        );
    }

    fn data_init(&self, params: &mut [T], x: &[T], rows: usize) {
        let d = self.dim;
        if rows < 2 {
            return;
        }
        let mut mean = vec![0.0f64; d];
        for row in x.chunks_exact(d).take(rows) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v.as_f64();
            }
        }
        mean.iter_mut().for_each(|m| *m /= rows as f64);
        let mut cov = vec![0.0f64; d * d];
        let mut c = vec![0.0f64; d];
        for row in x.chunks_exact(d).take(rows) {
            for (ci, (v, m)) in c.iter_mut().zip(row.iter().zip(&mean)) {
                *ci = v.as_f64() - m;
            }
            for i in 0..d {
                for j in 0..d {
                    cov[i * d + j] += c[i] * c[j];
                }
            }
        }
        cov.iter_mut().for_each(|v| *v /= (rows - 1) as f64);
        self.set(params, &mean, &cov);
    }
}
