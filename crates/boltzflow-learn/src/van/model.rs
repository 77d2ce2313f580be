//! The variational autoregressive network: q(s) = Π_i q(s_i | s_<i) over ±1 spins, exact
//! sampling, exact log-probabilities, optional Z2 symmetrisation, and the score-function
//! gradient, batched in fixed chunks that run in parallel (results independent of the thread
//! count).

use boltzflow_core::{ChainRng, Error, Result};
use boltzflow_nn::made::log_prob_row;
use boltzflow_nn::masked_conv::{ConvCache, ConvSampler, MaskedConvNet};
use boltzflow_nn::parallel::{for_each_chunk, sum_in_order};
use boltzflow_nn::{Made, MadeSampler, MlpCache, ParamLayout, Real};
use rand::{Rng, RngExt, SeedableRng};

use super::config::{NetworkKind, NetworkSpec};

/// The autoregressive network behind q.
#[derive(Debug, Clone)]
pub enum SpinNetwork {
    /// Masked dense network.
    Made(Made),
    /// Masked convolutions on an L × L lattice.
    PixelCnn(MaskedConvNet),
}

/// One chunk's buffers: its samples, the forward cache kept for the gradient, and gradients.
#[derive(Debug, Default)]
struct Chunk<T: Real> {
    rows: usize,
    /// `[rows, n]` the samples, followed (Z2) by `[rows, n]` their global flips.
    s: Vec<T>,
    uniforms: Vec<T>,
    mlp: MlpCache<T>,
    made: MadeSampler<T>,
    conv: ConvCache<T>,
    conv_sampler: ConvSampler<T>,
    /// log q of each sample (symmetrised under Z2).
    log_q: Vec<f64>,
    /// Z2: the share q̃(s)/(q̃(s) + q̃(−s)) of each sample's own orientation.
    share: Vec<f64>,
    /// d log q̃/d logits of every forward row, unscaled.
    dlogq: Vec<T>,
    /// log q̃ of every forward row.
    lq: Vec<f64>,
    grads: Vec<T>,
}

/// A VAN with its parameters, in f32 for training; [`Van::cast`] gives the same network in
/// f64 (for gradient checks).
#[derive(Debug)]
pub struct Van<T: Real = f32> {
    net: SpinNetwork,
    layout: ParamLayout,
    n: usize,
    z2: bool,
    chunk_rows: usize,
    /// The parameters (flat, named by [`Van::layout`]).
    pub params: Vec<T>,
    chunks: Vec<Chunk<T>>,
    /// Rows sampled by the last [`Van::sample`].
    rows: usize,
}

impl Van<f32> {
    /// A network for `n` spins (`lattice`: the side L for PixelCNN), initialised from `rng`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if a PixelCNN is asked for a system that is not a lattice.
    pub fn new(
        n: usize,
        lattice: Option<usize>,
        spec: &NetworkSpec,
        chunk_rows: usize,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        let mut layout = ParamLayout::new();
        let net = match spec.kind {
            NetworkKind::Made => SpinNetwork::Made(Made::new(
                &mut layout,
                "made",
                n,
                spec.depth,
                spec.width,
                spec.activation,
            )),
            NetworkKind::Pixelcnn => {
                let l = lattice.ok_or_else(|| {
                    Error::invalid(
                        "network.type",
                        "pixelcnn needs a lattice system (ising:L=…); use made for this system",
                    )
                })?;
                SpinNetwork::PixelCnn(MaskedConvNet::new(
                    &mut layout,
                    "pixelcnn",
                    l,
                    spec.depth,
                    spec.width,
                    spec.half_kernel,
                    spec.activation,
                    spec.skip,
                ))
            }
        };
        let mut params = vec![0.0f32; layout.len()];
        match &net {
            SpinNetwork::Made(m) => m.init(&mut params, rng),
            SpinNetwork::PixelCnn(c) => c.init(&mut params, rng),
        }
        Ok(Self {
            net,
            layout,
            n,
            z2: spec.z2,
            chunk_rows: chunk_rows.max(1),
            params,
            chunks: Vec::new(),
            rows: 0,
        })
    }
}

impl<T: Real> Van<T> {
    /// The same network and parameters in another precision.
    pub fn cast<U: Real>(&self) -> Van<U> {
        Van {
            net: self.net.clone(),
            layout: self.layout.clone(),
            n: self.n,
            z2: self.z2,
            chunk_rows: self.chunk_rows,
            params: self.params.iter().map(|&v| U::of(v.as_f64())).collect(),
            chunks: Vec::new(),
            rows: 0,
        }
    }

    /// Number of spins.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The names and shapes of the parameters.
    pub fn layout(&self) -> &ParamLayout {
        &self.layout
    }

    /// Whether q is symmetrised under the global flip.
    pub fn z2(&self) -> bool {
        self.z2
    }

    /// Checks that loaded parameters keep the masks' zeros (so q stays autoregressive).
    ///
    /// # Errors
    /// [`Error::Numerical`] if a masked weight is non-zero.
    pub fn check_masks(&self) -> Result<()> {
        let ok = match &self.net {
            SpinNetwork::Made(m) => m.respects_masks(&self.params),
            SpinNetwork::PixelCnn(c) => c.respects_masks(&self.params),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Numerical {
                what: "autoregressive network".into(),
                reason: "a masked weight is non-zero: the parameters do not belong to this network"
                    .into(),
            })
        }
    }

    /// Draws `rows` exact samples of q; `s` receives `[rows, n]` (±1) and `log_q` `[rows]`.
    /// The forward pass stays cached for [`Van::score_gradient`]. Each chunk draws from its own
    /// generator, seeded in chunk order from `rng`.
    pub fn sample(
        &mut self,
        rows: usize,
        rng: &mut ChainRng,
        s: &mut Vec<T>,
        log_q: &mut Vec<f64>,
    ) {
        let n = self.n;
        let chunk_rows = self.chunk_rows;
        let n_chunks = rows.div_ceil(chunk_rows);
        let seeds: Vec<u64> = (0..n_chunks).map(|_| rng.next_u64()).collect();
        let (net, params, z2) = (&self.net, &self.params, self.z2);
        for_each_chunk(rows, chunk_rows, &mut self.chunks, |range, c| {
            let mut crng = ChainRng::seed_from_u64(seeds[range.start / chunk_rows]);
            let r = range.len();
            c.rows = r;
            c.uniforms.clear();
            c.uniforms
                .extend((0..r * n).map(|_| T::of(f64::from(crng.random::<f32>()))));
            let fwd_rows = if z2 { 2 * r } else { r };
            c.s.resize(fwd_rows * n, T::zero());
            match net {
                SpinNetwork::Made(m) => m.sample(params, &c.uniforms, r, &mut c.s, &mut c.made),
                SpinNetwork::PixelCnn(p) => {
                    p.sample(params, &c.uniforms, r, &mut c.s, &mut c.conv_sampler);
                }
            }
            if z2 {
                // Flip each sample with probability ½, then append the flips.
                for row in c.s[..r * n].chunks_exact_mut(n) {
                    if crng.random::<bool>() {
                        row.iter_mut().for_each(|v| *v = -*v);
                    }
                }
                let (a, b) = c.s.split_at_mut(r * n);
                for (y, &x) in b.iter_mut().zip(a.iter()) {
                    *y = -x;
                }
            }
            forward_log_q(net, params, n, z2, c);
        });
        self.rows = rows;
        s.clear();
        log_q.clear();
        for c in &self.chunks[..n_chunks] {
            s.extend_from_slice(&c.s[..c.rows * n]);
            log_q.extend_from_slice(&c.log_q);
        }
    }

    /// log q of given configurations `s` `[rows, n]` (±1) into `log_q`; the forward pass stays
    /// cached for [`Van::score_gradient`].
    pub fn log_prob(&mut self, s: &[T], log_q: &mut Vec<f64>) {
        let n = self.n;
        let rows = s.len() / n;
        let (net, params, z2) = (&self.net, &self.params, self.z2);
        for_each_chunk(rows, self.chunk_rows, &mut self.chunks, |range, c| {
            let r = range.len();
            c.rows = r;
            c.s.clear();
            c.s.extend_from_slice(&s[range.start * n..range.end * n]);
            if z2 {
                c.s.extend(s[range.start * n..range.end * n].iter().map(|&v| -v));
            }
            forward_log_q(net, params, n, z2, c);
        });
        self.rows = rows;
        log_q.clear();
        for c in &self.chunks[..rows.div_ceil(self.chunk_rows)] {
            log_q.extend_from_slice(&c.log_q);
        }
    }

    /// The gradient Σ_r coeff_r ∇ log q(s_r) over the rows of the last [`Van::sample`] or
    /// [`Van::log_prob`], written to `grads` (laid out as the parameters). For the variational
    /// free energy, coeff_r = (f_r − f̄)/B with f = βE + log q (REINFORCE with the batch-mean
    /// baseline).
    ///
    /// # Panics
    /// If `coeffs` does not have one entry per row of the last pass.
    pub fn score_gradient(&mut self, coeffs: &[f64], grads: &mut Vec<T>) {
        assert_eq!(coeffs.len(), self.rows, "one coefficient per sampled row");
        let n = self.n;
        let rows = self.rows;
        let p = self.params.len();
        let (net, params, z2) = (&self.net, &self.params, self.z2);
        for_each_chunk(rows, self.chunk_rows, &mut self.chunks, |range, c| {
            let r = c.rows;
            for (k, row) in c.dlogq[..r * n].chunks_exact_mut(n).enumerate() {
                let w = if z2 { c.share[k] } else { 1.0 };
                let scale = T::of(coeffs[range.start + k] * w);
                row.iter_mut().for_each(|v| *v *= scale);
            }
            if z2 {
                for (k, row) in c.dlogq[r * n..2 * r * n].chunks_exact_mut(n).enumerate() {
                    let scale = T::of(coeffs[range.start + k] * (1.0 - c.share[k]));
                    row.iter_mut().for_each(|v| *v *= scale);
                }
            }
            c.grads.clear();
            c.grads.resize(p, T::zero());
            match net {
                SpinNetwork::Made(m) => {
                    m.backward(params, &mut c.grads, &c.s, &mut c.mlp, &mut c.dlogq)
                }
                SpinNetwork::PixelCnn(q) => {
                    q.backward(params, &mut c.grads, &c.s, &mut c.conv, &mut c.dlogq)
                }
            }
        });
        grads.resize(p, T::zero());
        let parts: Vec<&[T]> = self.chunks[..rows.div_ceil(self.chunk_rows)]
            .iter()
            .map(|c| c.grads.as_slice())
            .collect();
        sum_in_order(grads, &parts);
    }

    /// Multiply–adds of one full forward pass per row (for throughput figures).
    pub fn macs_per_row(&self) -> usize {
        match &self.net {
            SpinNetwork::Made(m) => m.macs_per_row(),
            SpinNetwork::PixelCnn(c) => c.macs_per_row(),
        }
    }
}

/// Runs the network on the chunk's rows (and their flips), fills `log_q`, `share` and `dlogq`.
fn forward_log_q<T: Real>(net: &SpinNetwork, params: &[T], n: usize, z2: bool, c: &mut Chunk<T>) {
    let r = c.rows;
    let fwd_rows = if z2 { 2 * r } else { r };
    let logits: &[T] = match net {
        SpinNetwork::Made(m) => m.forward(params, &c.s, fwd_rows, &mut c.mlp),
        SpinNetwork::PixelCnn(p) => p.forward(params, &c.s, fwd_rows, &mut c.conv),
    };
    c.dlogq.resize(fwd_rows * n, T::zero());
    c.lq.resize(fwd_rows, 0.0);
    for (k, l) in c.lq.iter_mut().enumerate() {
        let rs = k * n..(k + 1) * n;
        *l = log_prob_row(
            &c.s[rs.clone()],
            &logits[rs.clone()],
            Some(&mut c.dlogq[rs]),
        );
    }
    c.log_q.clear();
    c.share.clear();
    if z2 {
        for k in 0..r {
            let (a, b) = (c.lq[k], c.lq[r + k]);
            let top = a.max(b);
            let sum = (a - top).exp() + (b - top).exp();
            c.log_q.push(top + sum.ln() - std::f64::consts::LN_2);
            c.share.push((a - top).exp() / sum);
        }
    } else {
        c.log_q.extend_from_slice(&c.lq);
    }
}
