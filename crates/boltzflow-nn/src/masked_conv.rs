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
//! `[offsets · c_in, c_out]`, applied as one GEMM on the gathered patches (im2col). The patches
//! of every layer are kept from the forward pass for the weight gradient: rows · L² · K values
//! per layer (≈ 41 MB for 100 rows of a 16 × 16 lattice with 16 channels and 7 × 7 kernels), so
//! the chunk size bounds the memory.
//!
//! Optional dense skip (`skip = true`): logit_p += Σ_{j<p} W_jp s_j, a masked linear map from
//! all earlier spins (a one-layer MADE) added to the convolutional logits. Zero-padded
//! convolutions only see a site's periodic neighbours across the lattice boundary when the
//! receptive field spans the lattice (large kernels, as in the VAN paper); the skip gives every
//! site those couplings for n² multiply–adds per sample, a small fraction of the convolutions.
//! This is our addition, not the paper's architecture.
//!
//! Sampling: a layer's output at site p depends only on the previous layer at sites ≤ p, so
//! site p can be finished through all layers as soon as spin p − 1 is known. Drawing a sample
//! therefore costs one forward pass in total, done site by site, instead of L² passes.

use rand::Rng;

use crate::Real;
use crate::gemm::{Layout, matmul};
use crate::linear::{Activation, add_bias, add_row_sums};
use crate::params::{ParamLayout, init_uniform};

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
    /// The dense skip's weight `[n, n]` (from, to), non-zero only for from < to.
    skip: Option<std::ops::Range<usize>>,
}

/// Forward activations and scratch buffers, reused between calls.
#[derive(Debug, Clone, Default)]
pub struct ConvCache<T> {
    /// Per layer: its output `[rows, L², c_out]`.
    outputs: Vec<Vec<T>>,
    pres: Vec<Vec<T>>,
    /// Per layer: the im2col patches of the last forward pass `[rows·L², K]`, kept for the
    /// weight gradient.
    cols: Vec<Vec<T>>,
    dcol: Vec<T>,
    padded: Vec<T>,
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
    /// Dense skip: Σ_{j set so far} W_jp s_j for every row and site p.
    skip: Vec<T>,
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
    /// Registers `{prefix}.{i}.weight` `[offsets·c_in, c_out]` and `.bias` `[c_out]`, and with
    /// `skip` `{prefix}.skip.weight` `[L², L²]`.
    ///
    /// # Panics
    /// If `l < 2`, `depth == 0`, `half_kernel == 0`, or `width == 0` with depth ≥ 2.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        layout: &mut ParamLayout,
        prefix: &str,
        l: usize,
        depth: usize,
        width: usize,
        half_kernel: usize,
        activation: Activation,
        skip: bool,
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
                activation: if last {
                    Activation::Identity
                } else {
                    activation
                },
            });
        }
        let skip = skip.then(|| layout.add(format!("{prefix}.skip.weight"), &[l * l, l * l]));
        Self { l, layers, skip }
    }

    /// Number of sites, L².
    pub fn n(&self) -> usize {
        self.l * self.l
    }

    /// Multiply–adds per row of a forward pass.
    pub fn macs_per_row(&self) -> usize {
        let skip = if self.skip.is_some() {
            self.n() * self.n()
        } else {
            0
        };
        skip + self
            .layers
            .iter()
            .map(|c| self.n() * c.k() * c.c_out)
            .sum::<usize>()
    }

    /// PyTorch-style initialisation, U(±1/√fan_in) with fan_in the stored offsets × c_in.
    pub fn init<T: Real>(&self, params: &mut [T], rng: &mut impl Rng) {
        for c in &self.layers {
            let bound = 1.0 / (c.k() as f64).sqrt();
            init_uniform(&mut params[c.weight.clone()], bound, rng);
            init_uniform(&mut params[c.bias.clone()], bound, rng);
        }
        // The skip starts at zero: a new network is the plain convolutional one.
        if let Some(r) = &self.skip {
            params[r.clone()].fill(T::zero());
        }
    }

    /// Zeroes the gradient (or parameter) entries of the skip that would break the ordering.
    pub fn mask_gradient<T: Real>(&self, values: &mut [T]) {
        self.mask_skip(values);
    }

    /// Zeroes the skip's entries that would break the ordering (from ≥ to).
    fn mask_skip<T: Real>(&self, values: &mut [T]) {
        if let Some(r) = &self.skip {
            let n = self.n();
            for (i, row) in values[r.clone()].chunks_exact_mut(n).enumerate() {
                row[..=i].fill(T::zero());
            }
        }
    }

    /// Whether the skip's masked entries are zero (the convolutions' masks are structural).
    pub fn respects_masks<T: Real>(&self, params: &[T]) -> bool {
        self.skip.as_ref().is_none_or(|r| {
            let n = self.n();
            params[r.clone()]
                .chunks_exact(n)
                .enumerate()
                .all(|(i, row)| row[..=i].iter().all(|v| *v == T::zero()))
        })
    }

    /// Side lengths of the zero-padded grid: k rows above, k columns either side.
    fn padded_dims(&self, c: &ConvLayer) -> (usize, usize) {
        let k = self.half_kernel(c);
        (self.l + k, self.l + 2 * k)
    }

    /// The kernel half-size of a layer (from its offsets).
    fn half_kernel(&self, c: &ConvLayer) -> usize {
        c.offsets[0].0.unsigned_abs()
    }

    /// Copies `input` `[rows, L², ch]` into the zero-padded `[rows, (L+k)(L+2k), ch]`.
    fn pad<T: Real>(&self, c: &ConvLayer, input: &[T], rows: usize, ch: usize, out: &mut Vec<T>) {
        let (hp, wp) = self.padded_dims(c);
        let (k, l) = (self.half_kernel(c), self.l);
        out.clear();
        out.resize(rows * hp * wp * ch, T::zero());
        for r in 0..rows {
            for y in 0..l {
                let src = &input[(r * l * l + y * l) * ch..(r * l * l + (y + 1) * l) * ch];
                let d0 = (r * hp * wp + (y + k) * wp + k) * ch;
                out[d0..d0 + l * ch].copy_from_slice(src);
            }
        }
    }

    /// The runs of a site's patch in the padded grid: for each kernel row dy = −k … 0, the first
    /// padded site and the number of sites (the offsets are stored in this order).
    fn runs(&self, c: &ConvLayer, p: usize) -> impl Iterator<Item = (usize, usize)> {
        let (_, wp) = self.padded_dims(c);
        let k = self.half_kernel(c);
        let (y, x) = (p / self.l, p % self.l);
        let centre = usize::from(c.offsets.last() == Some(&(0, 0)));
        (0..=k).map(move |j| {
            // Kernel row dy = j − k; padded row y + dy + k = y + j; first column x − k ↦ x.
            let len = if j < k { 2 * k + 1 } else { k + centre };
            ((y + j) * wp + x, len)
        })
    }

    /// Gathers the patch of site `p` of every row from the padded `input` into
    /// `patch[r·stride ..][..K]`.
    fn gather_site<T: Real>(
        &self,
        c: &ConvLayer,
        padded: &[T],
        rows: usize,
        p: usize,
        patch: &mut [T],
        stride: usize,
    ) {
        let (hp, wp) = self.padded_dims(c);
        let ch = c.c_in;
        for r in 0..rows {
            let base = r * hp * wp;
            let mut at = r * stride;
            for (start, len) in self.runs(c, p) {
                let src = &padded[(base + start) * ch..(base + start + len) * ch];
                patch[at..at + len * ch].copy_from_slice(src);
                at += len * ch;
            }
        }
    }

    /// im2col of a whole layer from the padded input: `col` `[rows·L², K]`, row (r, p).
    fn im2col<T: Real>(&self, c: &ConvLayer, padded: &[T], rows: usize, col: &mut Vec<T>) {
        let (hp, wp) = self.padded_dims(c);
        let (n, k) = (self.n(), c.k());
        col.resize(rows * n * k, T::zero());
        for r in 0..rows {
            let inp = &padded[r * hp * wp * c.c_in..(r + 1) * hp * wp * c.c_in];
            for p in 0..n {
                let start = (r * n + p) * k;
                self.gather_site(c, inp, 1, p, &mut col[start..start + k], k);
            }
        }
    }

    /// Adds the patch gradients `dcol` `[rows·L², K]` onto the padded `dpadded` (zeroed first),
    /// then writes the interior to `dinput` `[rows, L², c_in]`.
    fn col2im<T: Real>(
        &self,
        c: &ConvLayer,
        dcol: &[T],
        rows: usize,
        dpadded: &mut Vec<T>,
        dinput: &mut [T],
    ) {
        let (hp, wp) = self.padded_dims(c);
        let (n, k, ch, kk, l) = (self.n(), c.k(), c.c_in, self.half_kernel(c), self.l);
        dpadded.clear();
        dpadded.resize(rows * hp * wp * ch, T::zero());
        for r in 0..rows {
            let base = r * hp * wp;
            for p in 0..n {
                let mut at = (r * n + p) * k;
                for (start, len) in self.runs(c, p) {
                    let dst = &mut dpadded[(base + start) * ch..(base + start + len) * ch];
                    for (d, &g) in dst.iter_mut().zip(&dcol[at..at + len * ch]) {
                        *d += g;
                    }
                    at += len * ch;
                }
            }
            for y in 0..l {
                let s0 = (base + (y + kk) * wp + kk) * ch;
                let d0 = (r * n + y * l) * ch;
                dinput[d0..d0 + l * ch].copy_from_slice(&dpadded[s0..s0 + l * ch]);
            }
        }
    }

    /// Logits `[rows, L²]` for spins `s` `[rows, L²]`, kept in `cache`.
    pub fn forward<'c, T: Real>(
        &self,
        params: &[T],
        s: &[T],
        rows: usize,
        cache: &'c mut ConvCache<T>,
    ) -> &'c [T] {
        let n = self.n();
        let depth = self.layers.len();
        cache.outputs.resize_with(depth, Vec::new);
        cache.pres.resize_with(depth, Vec::new);
        cache.cols.resize_with(depth, Vec::new);
        cache.rows = rows;
        for (i, c) in self.layers.iter().enumerate() {
            let (before, after) = cache.outputs.split_at_mut(i);
            let input: &[T] = if i == 0 { s } else { &before[i - 1] };
            self.pad(c, input, rows, c.c_in, &mut cache.padded);
            self.im2col(c, &cache.padded, rows, &mut cache.cols[i]);
            let y = &mut after[0];
            y.resize(rows * n * c.c_out, T::zero());
            matmul(
                y,
                &cache.cols[i],
                Layout::Plain,
                &params[c.weight.clone()],
                Layout::Plain,
                rows * n,
                c.k(),
                c.c_out,
                false,
            );
            add_bias(y, &params[c.bias.clone()]);
            c.activation.apply(y, &mut cache.pres[i]);
        }
        if let Some(r) = &self.skip {
            let n = self.n();
            matmul(
                &mut cache.outputs[depth - 1],
                s,
                Layout::Plain,
                &params[r.clone()],
                Layout::Plain,
                rows,
                n,
                n,
                true,
            );
        }
        &cache.outputs[depth - 1]
    }

    /// Backward pass after [`MaskedConvNet::forward`] on the same `s`: `dlogits` `[rows, L²]`
    /// (overwritten); parameter gradients are added to `grads`.
    pub fn backward<T: Real>(
        &self,
        params: &[T],
        grads: &mut [T],
        s: &[T],
        cache: &mut ConvCache<T>,
        dlogits: &mut [T],
    ) {
        let rows = cache.rows;
        let n = self.n();
        if let Some(r) = &self.skip {
            // dW += sᵀ dlogits, then the mask.
            matmul(
                &mut grads[r.clone()],
                s,
                Layout::Transposed,
                dlogits,
                Layout::Plain,
                n,
                rows,
                n,
                true,
            );
            self.mask_skip(grads);
        }
        let mut dy_buf = std::mem::take(&mut cache.grad_a);
        let mut dx_buf = std::mem::take(&mut cache.grad_b);
        for i in (0..self.layers.len()).rev() {
            let c = &self.layers[i];
            let dy: &mut [T] = if i + 1 == self.layers.len() {
                &mut *dlogits
            } else {
                &mut dy_buf
            };
            c.activation.backward(dy, &cache.outputs[i], &cache.pres[i]);
            add_row_sums(&mut grads[c.bias.clone()], dy);

            matmul(
                &mut grads[c.weight.clone()],
                &cache.cols[i],
                Layout::Transposed,
                dy,
                Layout::Plain,
                c.k(),
                rows * n,
                c.c_out,
                true,
            );
            if i > 0 {
                cache.dcol.resize(rows * n * c.k(), T::zero());
                matmul(
                    &mut cache.dcol,
                    dy,
                    Layout::Plain,
                    &params[c.weight.clone()],
                    Layout::Transposed,
                    rows * n,
                    c.c_out,
                    c.k(),
                    false,
                );
                dx_buf.resize(rows * n * c.c_in, T::zero());
                self.col2im(c, &cache.dcol, rows, &mut cache.padded, &mut dx_buf);
                std::mem::swap(&mut dy_buf, &mut dx_buf);
            }
        }
        cache.grad_a = dy_buf;
        cache.grad_b = dx_buf;
    }

    /// Draws `rows` exact samples into `s` `[rows, L²]` site by site (see the module note);
    /// `uniforms` `[rows, L²]` decide the spins (s_p = +1 iff u < q(+1 | s_<p)).
    pub fn sample<T: Real>(
        &self,
        params: &[T],
        uniforms: &[T],
        rows: usize,
        s: &mut [T],
        ws: &mut ConvSampler<T>,
    ) {
        let n = self.n();
        let depth = self.layers.len();
        s[..rows * n].fill(T::zero());
        // levels[i]: the padded input of layer i (level 0: the spins).
        ws.acts.resize_with(depth, Vec::new);
        for (a, c) in ws.acts.iter_mut().zip(&self.layers) {
            let (hp, wp) = self.padded_dims(c);
            a.clear();
            a.resize(rows * hp * wp * c.c_in, T::zero());
        }
        ws.skip.clear();
        ws.skip
            .resize(if self.skip.is_some() { rows * n } else { 0 }, T::zero());
        for p in 0..n {
            let (y, x) = (p / self.l, p % self.l);
            for (i, c) in self.layers.iter().enumerate() {
                let k = c.k();
                ws.patch.resize(rows * k, T::zero());
                self.gather_site(c, &ws.acts[i], rows, p, &mut ws.patch, k);
                ws.out.resize(rows * c.c_out, T::zero());
                matmul(
                    &mut ws.out,
                    &ws.patch,
                    Layout::Plain,
                    &params[c.weight.clone()],
                    Layout::Plain,
                    rows,
                    k,
                    c.c_out,
                    false,
                );
                add_bias(&mut ws.out, &params[c.bias.clone()]);
                c.activation.apply(&mut ws.out, &mut ws.scratch);
                if i + 1 < depth {
                    // Into the next layer's padded input at site p.
                    let next = &self.layers[i + 1];
                    let (hp, wp) = self.padded_dims(next);
                    let kk = self.half_kernel(next);
                    let at = (y + kk) * wp + x + kk;
                    let lvl = &mut ws.acts[i + 1];
                    for r in 0..rows {
                        let dst = (r * hp * wp + at) * c.c_out;
                        lvl[dst..dst + c.c_out]
                            .copy_from_slice(&ws.out[r * c.c_out..(r + 1) * c.c_out]);
                    }
                }
            }
            // The last layer's single channel is the logit of site p.
            let first = &self.layers[0];
            let (hp, wp) = self.padded_dims(first);
            let kk = self.half_kernel(first);
            let at = (y + kk) * wp + x + kk;
            for r in 0..rows {
                let mut logit = ws.out[r];
                if self.skip.is_some() {
                    logit += ws.skip[r * n + p];
                }
                let q = T::one() / (T::one() + (-logit).exp());
                let v = if uniforms[r * n + p] < q {
                    T::one()
                } else {
                    -T::one()
                };
                s[r * n + p] = v;
                ws.acts[0][r * hp * wp + at] = v;
            }
            if let Some(range) = &self.skip {
                // Rank-one update with the new spins: skip[r, :] += s_p W[p, :].
                let wp_row = &params[range.start + p * n..range.start + (p + 1) * n];
                for r in 0..rows {
                    let v = s[r * n + p];
                    for (a, &w) in ws.skip[r * n..(r + 1) * n].iter_mut().zip(wp_row) {
                        *a += v * w;
                    }
                }
            }
        }
    }
}
