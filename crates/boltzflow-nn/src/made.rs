//! MADE (Germain et al., ICML 2015) over n binary variables: a masked MLP whose output i, the
//! logit of q(s_i = +1 | s_<i), depends only on s_0 … s_{i−1}. The autoregressive network of
//! variational autoregressive networks (Wu, Wang & Zhang, PRL 2019) for spin systems.
//!
//! Degrees: input j has degree j; hidden unit k has degree k mod (n − 1); a connection from a
//! unit of degree a to a hidden unit of degree b exists iff b ≥ a, and from degree a to output i
//! iff i > a. With one layer (`depth = 1`) output i sees exactly the inputs j < i. Masked
//! weights are zero from initialisation on and their gradients are masked, so Adam never moves
//! them (m = v = 0) and the forward pass is a plain GEMM.
//!
//! Exact sampling goes site by site; the first layer's pre-activations are updated by one
//! rank-one step per site and only output i of the last layer is evaluated, so drawing a
//! sample of a `depth = 2` MADE costs O(n·width) instead of n full passes.

use rand::Rng;

use crate::linear::Activation;
use crate::mlp::{Mlp, MlpCache};
use crate::params::ParamLayout;
use crate::{Real, gemm};

/// A MADE over `n` spins with `depth` masked layers (hidden width `width` when depth ≥ 2).
#[derive(Debug, Clone)]
pub struct Made {
    n: usize,
    mlp: Mlp,
    /// Per layer, `[fan_in, fan_out]`: whether the weight is a connection.
    masks: Vec<Vec<bool>>,
}

/// Buffers for [`Made::sample`], reused between calls.
#[derive(Debug, Clone, Default)]
pub struct MadeSampler<T> {
    first: Vec<T>,
    hidden: Vec<T>,
    next: Vec<T>,
    scratch: Vec<T>,
}

impl Made {
    /// Registers `{prefix}.{layer}.weight/.bias`.
    ///
    /// # Panics
    /// If `n < 2`, `depth == 0`, or `depth ≥ 2` with `width == 0` (validated by callers).
    pub fn new(
        layout: &mut ParamLayout,
        prefix: &str,
        n: usize,
        depth: usize,
        width: usize,
        activation: Activation,
    ) -> Self {
        assert!(n >= 2 && depth >= 1 && (depth == 1 || width >= 1));
        let mut widths = vec![n];
        widths.extend(std::iter::repeat_n(width, depth - 1));
        widths.push(n);
        let mlp = Mlp::new(layout, prefix, &widths, activation, Activation::Identity);
        let input_degrees: Vec<usize> = (0..n).collect();
        let hidden_degrees: Vec<usize> = (0..width).map(|k| k % (n - 1)).collect();
        let mut masks = Vec::with_capacity(depth);
        for l in 0..depth {
            let from = if l == 0 {
                &input_degrees
            } else {
                &hidden_degrees
            };
            let last = l + 1 == depth;
            let to = if last {
                &input_degrees
            } else {
                &hidden_degrees
            };
            let mut mask = Vec::with_capacity(from.len() * to.len());
            for &a in from {
                for &b in to {
                    // Hidden units may see their own degree; outputs only strictly lower ones.
                    mask.push(if last { b > a } else { b >= a });
                }
            }
            masks.push(mask);
        }
        Self { n, mlp, masks }
    }

    /// Number of variables.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Multiply–adds per row of a full forward pass, masked weights included.
    pub fn macs_per_row(&self) -> usize {
        self.mlp.macs_per_row()
    }

    /// Initialises like PyTorch's linear layers (U(±1/√fan_in)), then zeroes masked weights.
    pub fn init<T: Real>(&self, params: &mut [T], rng: &mut impl Rng) {
        self.mlp.init(params, false, rng);
        self.apply_masks(params);
    }

    /// Zeroes the masked entries of every weight (of parameters or of gradients).
    pub fn apply_masks<T: Real>(&self, values: &mut [T]) {
        for (layer, mask) in self.mlp.layers().iter().zip(&self.masks) {
            for (w, &m) in values[layer.weight_range()].iter_mut().zip(mask) {
                if !m {
                    *w = T::zero();
                }
            }
        }
    }

    /// Whether every masked weight of `params` is zero (checked when a checkpoint is loaded).
    pub fn respects_masks<T: Real>(&self, params: &[T]) -> bool {
        self.mlp
            .layers()
            .iter()
            .zip(&self.masks)
            .all(|(layer, mask)| {
                params[layer.weight_range()]
                    .iter()
                    .zip(mask)
                    .all(|(w, &m)| m || *w == T::zero())
            })
    }

    /// Logits `[rows, n]` of q(s_i = +1 | s_<i) for spins `s` `[rows, n]` (±1), kept in `cache`.
    pub fn forward<'c, T: Real>(
        &self,
        params: &[T],
        s: &[T],
        rows: usize,
        cache: &'c mut MlpCache<T>,
    ) -> &'c [T] {
        self.mlp.forward(params, s, rows, cache)
    }

    /// Backward pass after [`Made::forward`] on the same `s`: `dlogits` `[rows, n]` is
    /// dL/d(logits) (overwritten); masked parameter gradients are added to `grads`.
    pub fn backward<T: Real>(
        &self,
        params: &[T],
        grads: &mut [T],
        s: &[T],
        cache: &mut MlpCache<T>,
        dlogits: &mut [T],
    ) {
        self.mlp.backward(params, grads, s, cache, dlogits, None);
        self.apply_masks(grads);
    }

    /// Draws `rows` exact samples into `s` `[rows, n]` (±1) site by site; `uniforms` `[rows, n]`
    /// holds U(0, 1) numbers, the i-th column deciding spin i (s_i = +1 iff u < q(+1 | s_<i)).
    pub fn sample<T: Real>(
        &self,
        params: &[T],
        uniforms: &[T],
        rows: usize,
        s: &mut [T],
        ws: &mut MadeSampler<T>,
    ) {
        let n = self.n;
        let layers = self.mlp.layers();
        let first = &layers[0];
        let h1 = first.fan_out();
        // First-layer pre-activations start at the bias: no spin is set yet.
        ws.first.clear();
        for _ in 0..rows {
            ws.first.extend_from_slice(&params[first.bias_range()]);
        }
        s[..rows * n].fill(T::zero());
        let w1 = &params[first.weight_range()];
        let last = &layers[layers.len() - 1];
        let w_last = &params[last.weight_range()];
        let b_last = &params[last.bias_range()];
        for i in 0..n {
            // Logits of site i for every row.
            if layers.len() == 1 {
                for r in 0..rows {
                    let logit = ws.first[r * h1 + i];
                    s[r * n + i] = spin(uniforms[r * n + i], logit);
                }
            } else {
                ws.hidden.clear();
                ws.hidden.extend_from_slice(&ws.first);
                first.activation().apply(&mut ws.hidden, &mut ws.scratch);
                for layer in &layers[1..layers.len() - 1] {
                    let (fi, fo) = (layer.fan_in(), layer.fan_out());
                    ws.next.resize(rows * fo, T::zero());
                    gemm::matmul(
                        &mut ws.next,
                        &ws.hidden,
                        gemm::Layout::Plain,
                        &params[layer.weight_range()],
                        gemm::Layout::Plain,
                        rows,
                        fi,
                        fo,
                        false,
                    );
                    let b = &params[layer.bias_range()];
                    for row in ws.next.chunks_exact_mut(fo) {
                        for (v, &bb) in row.iter_mut().zip(b) {
                            *v += bb;
                        }
                    }
                    layer.activation().apply(&mut ws.next, &mut ws.scratch);
                    std::mem::swap(&mut ws.hidden, &mut ws.next);
                }
                let fi = last.fan_in();
                for r in 0..rows {
                    let h = &ws.hidden[r * fi..(r + 1) * fi];
                    let mut logit = b_last[i];
                    for (k, &hk) in h.iter().enumerate() {
                        logit += hk * w_last[k * n + i];
                    }
                    s[r * n + i] = spin(uniforms[r * n + i], logit);
                }
            }
            // Rank-one update of the first layer with the new spin: a += s_i · W₁[i, :].
            let wi = &w1[i * h1..(i + 1) * h1];
            for r in 0..rows {
                let si = s[r * n + i];
                for (a, &w) in ws.first[r * h1..(r + 1) * h1].iter_mut().zip(wi) {
                    *a += si * w;
                }
            }
        }
    }
}

/// +1 if u < σ(logit), else −1.
fn spin<T: Real>(u: T, logit: T) -> T {
    let p = T::one() / (T::one() + (-logit).exp());
    if u < p { T::one() } else { -T::one() }
}

/// log q(s) = Σ_i log σ(s_i ℓ_i) of one row, and dlog q/dℓ_i = s_i σ(−s_i ℓ_i) written to `dlogq`.
pub fn log_prob_row<T: Real>(s: &[T], logits: &[T], dlogq: Option<&mut [T]>) -> f64 {
    let mut total = 0.0;
    match dlogq {
        Some(d) => {
            for ((&si, &l), di) in s.iter().zip(logits).zip(d.iter_mut()) {
                let x = (si * l).as_f64();
                total += log_sigmoid(x);
                *di = T::of(si.as_f64() / (1.0 + x.exp()));
            }
        }
        None => {
            for (&si, &l) in s.iter().zip(logits) {
                total += log_sigmoid((si * l).as_f64());
            }
        }
    }
    total
}

/// log σ(x) = −ln(1 + e^{−x}), stable for either sign.
pub fn log_sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        -(-x).exp().ln_1p()
    } else {
        x - x.exp().ln_1p()
    }
}
