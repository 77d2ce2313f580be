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
//! Exact sampling goes site by site, computing each unit once, as soon as the spins it depends
//! on are known ([`Made::sample`]): a draw costs one forward pass instead of n.

use rand::Rng;

use crate::Real;
use crate::linear::Activation;
use crate::mlp::{Mlp, MlpCache};
use crate::params::ParamLayout;

/// A MADE over `n` spins with `depth` masked layers (hidden width `width` when depth ≥ 2).
#[derive(Debug, Clone)]
pub struct Made {
    n: usize,
    /// Context inputs after the n variables (0 for the spin MADE).
    context: usize,
    /// Outputs per variable (1 for the spin MADE).
    per_site: usize,
    mlp: Mlp,
    /// Per layer, `[fan_in, fan_out]`: whether the weight is a connection.
    masks: Vec<Vec<bool>>,
    /// For each degree d, the hidden units (same in every hidden layer) of degree d.
    hidden_by_degree: Vec<Vec<usize>>,
}

/// Buffers for [`Made::sample`], reused between calls.
#[derive(Debug, Clone, Default)]
pub struct MadeSampler<T> {
    /// Per layer: pre-activation accumulators `[rows, fan_out]`.
    acc: Vec<Vec<T>>,
    column: Vec<T>,
    scratch: Vec<T>,
}

impl Made {
    /// Registers `{prefix}.{layer}.weight/.bias`: a MADE over `n` binary variables with one
    /// logit per variable.
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
        assert!(n >= 2);
        Self::conditional(layout, prefix, n, 0, 1, depth, width, activation)
    }

    /// A conditional MADE: inputs `[rows, n + context]` (the n ordered variables, then a context
    /// such as a latent z that every unit may see), outputs `[rows, per_site · n]` in blocks of n
    /// (output `j·n + i` belongs to variable i and sees only variables < i and the context).
    ///
    /// # Panics
    /// If `n == 0`, `per_site == 0`, `depth == 0`, or `depth ≥ 2` with `width == 0`.
    #[allow(clippy::too_many_arguments)]
    pub fn conditional(
        layout: &mut ParamLayout,
        prefix: &str,
        n: usize,
        context: usize,
        per_site: usize,
        depth: usize,
        width: usize,
        activation: Activation,
    ) -> Self {
        let degrees: Vec<usize> = (0..n).collect();
        Self::grouped(
            layout, prefix, &degrees, context, per_site, depth, width, activation,
        )
    }

    /// As [`Made::conditional`] with the variables in groups: variable i has degree
    /// `degrees[i]`, and its outputs see only the variables of lower degree (and the context).
    /// Variables that share a degree form a group that is drawn together; with distinct degrees
    /// 0 … n − 1 this is the plain ordering.
    ///
    /// # Panics
    /// If `degrees` is empty, `per_site == 0`, `depth == 0`, `depth ≥ 2` with `width == 0`, or
    /// there is no context and fewer than two distinct degrees.
    #[allow(clippy::too_many_arguments)]
    pub fn grouped(
        layout: &mut ParamLayout,
        prefix: &str,
        degrees: &[usize],
        context: usize,
        per_site: usize,
        depth: usize,
        width: usize,
        activation: Activation,
    ) -> Self {
        let n = degrees.len();
        let groups = degrees.iter().max().map_or(0, |m| m + 1);
        assert!(n >= 1 && per_site >= 1 && depth >= 1 && (depth == 1 || width >= 1));
        assert!(
            context > 0 || groups >= 2,
            "an unconditional MADE needs two degrees"
        );
        let mut widths = vec![n + context];
        widths.extend(std::iter::repeat_n(width, depth - 1));
        widths.push(per_site * n);
        let mlp = Mlp::new(layout, prefix, &widths, activation, Activation::Identity);
        // Degrees as i64: the context has −1 (seen by everything). With a context, hidden degrees
        // run over −1 … n − 2, so that variable 0 also gets hidden units (seeing only the
        // context); without one, over 0 … n − 2.
        let input_degrees: Vec<i64> = degrees
            .iter()
            .map(|&g| g as i64)
            .chain(std::iter::repeat_n(-1, context))
            .collect();
        let hidden_degrees: Vec<i64> = (0..width)
            .map(|k| {
                if context > 0 {
                    (k % groups) as i64 - 1
                } else {
                    (k % (groups - 1)) as i64
                }
            })
            .collect();
        let output_degrees: Vec<i64> = (0..per_site * n).map(|o| degrees[o % n] as i64).collect();
        let mut masks = Vec::with_capacity(depth);
        for l in 0..depth {
            let from = if l == 0 {
                &input_degrees
            } else {
                &hidden_degrees
            };
            let last = l + 1 == depth;
            let to = if last {
                &output_degrees
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
        let mut hidden_by_degree = vec![Vec::new(); n];
        if depth > 1 && context == 0 && per_site == 1 && groups == n {
            for (k, &d) in hidden_degrees.iter().enumerate() {
                hidden_by_degree[d as usize].push(k);
            }
        }
        Self {
            n,
            context,
            per_site,
            mlp,
            masks,
            hidden_by_degree,
        }
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

    /// As [`Made::init`] with the output layer at zero (all outputs 0 whatever the input: an
    /// autoregressive flow layer then starts as the identity).
    pub fn init_zero_output<T: Real>(&self, params: &mut [T], rng: &mut impl Rng) {
        self.mlp.init(params, true, rng);
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

    /// As [`Made::backward`], also writing dL/d(input) `[rows, n + context]` to `dx`.
    pub fn backward_with_input<T: Real>(
        &self,
        params: &[T],
        grads: &mut [T],
        input: &[T],
        cache: &mut MlpCache<T>,
        dout: &mut [T],
        dx: &mut Vec<T>,
    ) {
        self.mlp
            .backward(params, grads, input, cache, dout, Some(dx));
        self.apply_masks(grads);
    }

    /// Draws `rows` exact samples into `s` `[rows, n]` (±1) site by site; `uniforms` `[rows, n]`
    /// holds U(0, 1) numbers, the i-th column deciding spin i (s_i = +1 iff u < q(+1 | s_<i)).
    ///
    /// Every unit's value is computed once: each layer keeps pre-activation accumulators
    /// (starting at its bias); a unit of degree d is final as soon as spin d is known, and is
    /// then activated and added, times its weight row, to the next layer's accumulators. Output
    /// i is final after degree i − 1. The whole draw costs one forward pass.
    pub fn sample<T: Real>(
        &self,
        params: &[T],
        uniforms: &[T],
        rows: usize,
        s: &mut [T],
        ws: &mut MadeSampler<T>,
    ) {
        assert!(
            self.context == 0 && self.per_site == 1,
            "site-by-site sampling is for the spin MADE"
        );
        let n = self.n;
        let layers = self.mlp.layers();
        let depth = layers.len();
        if ws.acc.len() < depth {
            ws.acc.resize_with(depth, Vec::new);
        }
        for (acc, layer) in ws.acc.iter_mut().zip(layers) {
            acc.clear();
            for _ in 0..rows {
                acc.extend_from_slice(&params[layer.bias_range()]);
            }
        }
        s[..rows * n].fill(T::zero());
        let degrees = &self.hidden_by_degree;
        for i in 0..n {
            // Output i is final: draw spin i.
            let out = &ws.acc[depth - 1];
            for r in 0..rows {
                s[r * n + i] = spin(uniforms[r * n + i], out[r * n + i]);
            }
            if i + 1 == n {
                break;
            }
            // Spin i enters the first layer: acc₀ += s_i · W₀[i, :].
            let (f0, w0) = (layers[0].fan_out(), &params[layers[0].weight_range()]);
            let wi = &w0[i * f0..(i + 1) * f0];
            for r in 0..rows {
                let si = s[r * n + i];
                for (a, &w) in ws.acc[0][r * f0..(r + 1) * f0].iter_mut().zip(wi) {
                    *a += si * w;
                }
            }
            // Hidden units of degree i are final in every layer, first to last.
            for l in 0..depth - 1 {
                let (fo, next) = (layers[l].fan_out(), &layers[l + 1]);
                let (fn_, wn) = (next.fan_out(), &params[next.weight_range()]);
                let (cur, rest) = ws.acc.split_at_mut(l + 1);
                let (cur, nxt) = (&cur[l], &mut rest[0]);
                for &k in &degrees[i] {
                    ws.column.clear();
                    ws.column.extend((0..rows).map(|r| cur[r * fo + k]));
                    layers[l]
                        .activation()
                        .apply(&mut ws.column, &mut ws.scratch);
                    let wk = &wn[k * fn_..(k + 1) * fn_];
                    for (r, &h) in ws.column.iter().enumerate() {
                        for (a, &w) in nxt[r * fn_..(r + 1) * fn_].iter_mut().zip(wk) {
                            *a += h * w;
                        }
                    }
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
