//! Masked convolutions over an L × L lattice (PixelCNN, van den Oord et al. 2016), the network
//! of variational autoregressive networks on lattices (Wu, Wang & Zhang, PRL 2019).
//!
//! Sites are ordered row by row. A kernel of half-size k only has the offsets (dy, dx) that
//! point to earlier sites: dy < 0 with |dx| ≤ k, or dy = 0 with −k ≤ dx < 0 ("type A", the
//! first layer), plus the centre for later layers ("type B"). Only these offsets are stored, so
//! the mask is structural and no weight can break the autoregressive property. Borders are
//! zero-padded (periodic wrapping would let a site see later ones).
//!
//! Layout: activations are `[rows, L², channels]`; a layer's weight is
//! `[offsets · c_in, c_out]`, applied as one GEMM on the gathered patches (im2col).
//!
//! Sampling: a layer's output at site p depends only on the previous layer at sites ≤ p, so
//! site p can be finished through all layers as soon as spin p − 1 is known. Drawing a sample
//! therefore costs one forward pass in total, done site by site, instead of L² passes.

use rand::Rng;

use crate::gemm::{Layout, matmul};
use crate::linear::Activation;
use crate::params::{ParamLayout, init_uniform};
use crate::Real;

/// One masked convolution.
#[derive(Debug, Clone)]
struct ConvLayer {
    c_in: usize,
    c_out: usize,
    /// (dy, dx) of the stored offsets, in weight order.
    offsets: Vec<(isize, isize)>,
    weight: std::ops::Range<usize>,
    bias: std::ops::Range<usize>,
    activation: Activation,
}

impl ConvLayer {
    fn k(&self) -> usize {
        self.offsets.len() * self.c_in
    }
}

/// A stack of masked convolutions: 1 → C (type A), C → C (type B) …, C → 1 (type B); with
/// `depth = 1` a single 1 → 1 type-A convolution. The output is the logit of q(s_p = +1 | s_<p).
#[derive(Debug, Clone)]
pub struct MaskedConvNet {
    l: usize,
    layers: Vec<ConvLayer>,
}

/// Forward activations and scratch buffers, reused between calls.
#[derive(Debug, Clone, Default)]
pub struct ConvCache<T> {
    /// Per layer: its output `[rows, L², c_out]`.
    outputs: Vec<Vec<T>>,
    pres: Vec<Vec<T>>,
    col: Vec<T>,
    dcol: Vec<T>,
    grad_a: Vec<T>,
    grad_b: Vec<T>,
    rows: usize,
}

/// Buffers for [`MaskedConvNet::sample`].
#[derive(Debug, Clone, Default)]
pub struct ConvSampler<T> {
    acts: Vec<Vec<T>>,
    patch: Vec<T>,
    out: Vec<T>,
    scratch: Vec<T>,
}

fn offsets(k: usize, centre: bool) -> Vec<(isize, isize)> {
    let k = k as isize;
    let mut o = Vec::new();
    for dy in -k..0 {
        for dx in -k..=k {
            o.push((dy, dx));
        }
    }
    for dx in -k..0 {
        o.push((0, dx));
    }
    if centre {
        o.push((0, 0));
    }
    o
}

impl MaskedConvNet {
    /// Registers `{prefix}.{i}.weight` `[offsets·c_in, c_out]` and `.bias` `[c_out]`.
    ///
    /// # Panics
    /// If `l < 2`, `depth == 0`, `half_kernel == 0`, or `width == 0` with depth ≥ 2.
    pub fn new(
        layout: &mut ParamLayout,
        prefix: &str,
        l: usize,
        depth: usize,
        width: usize,
        half_kernel: usize,
        activation: Activation,
    ) -> Self {
        assert!(l >= 2 && depth >= 1 && half_kernel >= 1 && (depth == 1 || width >= 1));
        let mut layers = Vec::with_capacity(depth);
        for i in 0..depth {
            let c_in = if i == 0 { 1 } else { width };
            let last = i + 1 == depth;
            let c_out = if last { 1 } else { width };
            let offs = offsets(half_kernel, i > 0);
            let weight = layout.add(format!("{prefix}.{i}.weight"), &[offs.len() * c_in, c_out]);
            let bias = layout.add(format!("{prefix}.{i}.bias"), &[c_out]);
            layers.push(ConvLayer {
                c_in,
                c_out,
                offsets: offs,
                weight,
                bias,
                activation: if last { Activation::Identity } else { activation },
            });
        }
        Self { l, layers }
    }

    /// Number of sites, L².
    pub fn n(&self) -> usize {
        self.l * self.l
    }

    /// Multiply–adds per row of a forward pass.
    pub fn macs_per_row(&self) -> usize {
        self.layers.iter().map(|c| self.n() * c.k() * c.c_out).sum()
    }

    /// PyTorch-style initialisation, U(±1/√fan_in) with fan_in the stored offsets × c_in.
    pub fn init<T: Real>(&self, params: &mut [T], rng: &mut impl Rng) {
        for c in &self.layers {
            let bound = 1.0 / (c.k() as f64).sqrt();
            init_uniform(&mut params[c.weight.clone()], bound, rng);
            init_uniform(&mut params[c.bias.clone()], bound, rng);
        }
    }

    /// Always true: the mask is structural (only allowed offsets have weights).
    pub fn respects_masks<T: Real>(&self, _params: &[T]) -> bool {
        true
    }

    /// Gathers the patch of site `p` of every row from `input` `[rows, L², c_in]` into
    /// `patch[r·K ..]` (`K` = offsets · c_in), zeros outside the lattice.
    fn gather_site<T: Real>(&self, c: &ConvLayer, input: &[T], rows: usize, p: usize, patch: &mut [T], stride: usize) {
        let (l, n) = (self.l as isize, self.n());
        let (y, x) = ((p / self.l) as isize, (p % self.l) as isize);
        for r in 0..rows {
            let dst = &mut patch[r * stride..r * stride + c.k()];
            let src = &input[r * n * c.c_in..(r + 1) * n * c.c_in];
            for (o, &(dy, dx)) in c.offsets.iter().enumerate() {
                let (yy, xx) = (y + dy, x + dx);
                let d = &mut dst[o * c.c_in..(o + 1) * c.c_in];
                if yy < 0 || xx < 0 || xx >= l {
                    d.fill(T::zero());
                } else {
                    let q = (yy * l + xx) as usize;
                    d.copy_from_slice(&src[q * c.c_in..(q + 1) * c.c_in]);
                }
            }
        }
    }

    /// im2col of a whole layer: `col` `[rows·L², K]`, row (r, p).
    fn im2col<T: Real>(&self, c: &ConvLayer, input: &[T], rows: usize, col: &mut Vec<T>) {
        let (n, k) = (self.n(), c.k());
        col.resize(rows * n * k, T::zero());
        for r in 0..rows {
            let inp = &input[r * n * c.c_in..(r + 1) * n * c.c_in];
            for p in 0..n {
                let start = (r * n + p) * k;
                self.gather_site(c, inp, 1, p, &mut col[start..start + k], k);
            }
        }
    }

    /// Adds the patch gradients `dcol` `[rows·L², K]` back onto `dinput` `[rows, L², c_in]`.
    fn col2im<T: Real>(&self, c: &ConvLayer, dcol: &[T], rows: usize, dinput: &mut [T]) {
        let (l, n, k) = (self.l as isize, self.n(), c.k());
        dinput[..rows * n * c.c_in].fill(T::zero());
        for r in 0..rows {
            let din = &mut dinput[r * n * c.c_in..(r + 1) * n * c.c_in];
            for p in 0..n {
                let (y, x) = ((p / self.l) as isize, (p % self.l) as isize);
                let src = &dcol[(r * n + p) * k..(r * n + p + 1) * k];
                for (o, &(dy, dx)) in c.offsets.iter().enumerate() {
                    let (yy, xx) = (y + dy, x + dx);
                    if yy < 0 || xx < 0 || xx >= l {
                        continue;
                    }
                    let q = (yy * l + xx) as usize;
                    for (d, &g) in din[q * c.c_in..(q + 1) * c.c_in]
                        .iter_mut()
                        .zip(&src[o * c.c_in..(o + 1) * c.c_in])
                    {
                        *d += g;
                    }
                }
            }
        }
    }

    /// Logits `[rows, L²]` for spins `s` `[rows, L²]`, kept in `cache`.
    pub fn forward<'c, T: Real>(&self, params: &[T], s: &[T], rows: usize, cache: &'c mut ConvCache<T>) -> &'c [T] {
        let n = self.n();
        let depth = self.layers.len();
        cache.outputs.resize_with(depth, Vec::new);
        cache.pres.resize_with(depth, Vec::new);
        cache.rows = rows;
        for (i, c) in self.layers.iter().enumerate() {
            let (before, after) = cache.outputs.split_at_mut(i);
            let input: &[T] = if i == 0 { s } else { &before[i - 1] };
            self.im2col(c, input, rows, &mut cache.col);
            let y = &mut after[0];
            y.resize(rows * n * c.c_out, T::zero());
            matmul(y, &cache.col, Layout::Plain, &params[c.weight.clone()], Layout::Plain, rows * n, c.k(), c.c_out, false);
            let b = &params[c.bias.clone()];
            for row in y.chunks_exact_mut(c.c_out) {
                for (v, &bb) in row.iter_mut().zip(b) {
                    *v += bb;
                }
            }
            c.activation.apply(y, &mut cache.pres[i]);
        }
        &cache.outputs[depth - 1]
    }

    /// Backward pass after [`MaskedConvNet::forward`] on the same `s`: `dlogits` `[rows, L²]`
    /// (overwritten); parameter gradients are added to `grads`.
    pub fn backward<T: Real>(&self, params: &[T], grads: &mut [T], s: &[T], cache: &mut ConvCache<T>, dlogits: &mut [T]) {
        let rows = cache.rows;
        let n = self.n();
        let mut dy_buf = std::mem::take(&mut cache.grad_a);
        let mut dx_buf = std::mem::take(&mut cache.grad_b);
        for i in (0..self.layers.len()).rev() {
            let c = &self.layers[i];
            let dy: &mut [T] = if i + 1 == self.layers.len() { &mut *dlogits } else { &mut dy_buf };
            c.activation.backward(dy, &cache.outputs[i], &cache.pres[i]);
            {
                let gb = &mut grads[c.bias.clone()];
                for row in dy.chunks_exact(c.c_out) {
                    for (g, &d) in gb.iter_mut().zip(row) {
                        *g += d;
                    }
                }
            }
            let input: &[T] = if i == 0 { s } else { &cache.outputs[i - 1] };
            self.im2col(c, input, rows, &mut cache.col);
            matmul(&mut grads[c.weight.clone()], &cache.col, Layout::Transposed, dy, Layout::Plain, c.k(), rows * n, c.c_out, true);
            if i > 0 {
                cache.dcol.resize(rows * n * c.k(), T::zero());
                matmul(&mut cache.dcol, dy, Layout::Plain, &params[c.weight.clone()], Layout::Transposed, rows * n, c.c_out, c.k(), false);
                dx_buf.resize(rows * n * c.c_in, T::zero());
                self.col2im(c, &cache.dcol, rows, &mut dx_buf);
                std::mem::swap(&mut dy_buf, &mut dx_buf);
            }
        }
        cache.grad_a = dy_buf;
        cache.grad_b = dx_buf;
    }

    /// Draws `rows` exact samples into `s` `[rows, L²]` site by site (see the module note);
    /// `uniforms` `[rows, L²]` decide the spins (s_p = +1 iff u < q(+1 | s_<p)).
    pub fn sample<T: Real>(&self, params: &[T], uniforms: &[T], rows: usize, s: &mut [T], ws: &mut ConvSampler<T>) {
        let n = self.n();
        let depth = self.layers.len();
        s[..rows * n].fill(T::zero());
        ws.acts.resize_with(depth, Vec::new);
        for (a, c) in ws.acts.iter_mut().zip(&self.layers) {
            a.clear();
            a.resize(rows * n * c.c_out, T::zero());
        }
        for p in 0..n {
            for (i, c) in self.layers.iter().enumerate() {
                let k = c.k();
                ws.patch.resize(rows * k, T::zero());
                {
                    let (before, _) = ws.acts.split_at(i);
                    let input: &[T] = if i == 0 { &s[..rows * n] } else { &before[i - 1] };
                    self.gather_site(c, input, rows, p, &mut ws.patch, k);
                }
                ws.out.resize(rows * c.c_out, T::zero());
                matmul(&mut ws.out, &ws.patch, Layout::Plain, &params[c.weight.clone()], Layout::Plain, rows, k, c.c_out, false);
                let b = &params[c.bias.clone()];
                for row in ws.out.chunks_exact_mut(c.c_out) {
                    for (v, &bb) in row.iter_mut().zip(b) {
                        *v += bb;
                    }
                }
                c.activation.apply(&mut ws.out, &mut ws.scratch);
                let act = &mut ws.acts[i];
                for r in 0..rows {
                    let dst = (r * n + p) * c.c_out;
                    act[dst..dst + c.c_out].copy_from_slice(&ws.out[r * c.c_out..(r + 1) * c.c_out]);
                }
            }
            let logits = &ws.acts[depth - 1];
            for r in 0..rows {
                let logit = logits[r * n + p];
                let q = T::one() / (T::one() + (-logit).exp());
                s[r * n + p] = if uniforms[r * n + p] < q { T::one() } else { -T::one() };
            }
        }
    }
}
