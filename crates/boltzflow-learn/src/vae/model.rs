//! A VAE over configurations x ∈ ℝ^d (Monroe & Shen, J. Chem. Theory Comput. 2022; DESIGN
//! §1): a diagonal-Gaussian encoder q(z|x) = N(μ(x), diag σ²(x)) (MLP with ReLU; periodic
//! coordinates enter as (sin θ, cos θ)), one of the four decoders of [`super::decoder`], a
//! standard-normal or flow prior, and the loss L = −ln p(x|z) + β [ln q(z|x) − ln P(z)] with one
//! reparameterised sample z = μ + σε, whose hand-written gradient is checked against finite
//! differences.
//!
//! The flow prior: P(z) is N(0, I) pushed through 4 rational-quadratic spline couplings
//! (32 bins on [−10, 10], one hidden layer of 20 tanh units); halves alternate for k ≥ 2, and for
//! k = 1 each block's spline parameters come from a constant input.
//! ln P(z) = ln N(F⁻¹(z)) + ln|det ∂F⁻¹/∂z|.
//!
//! Batches run in fixed-size chunks in parallel ([`Vae::batch_loss_and_gradient`]), the per-chunk
//! gradients summed in chunk order, so results do not depend on the thread count.

use boltzflow_core::ChainRng;
use boltzflow_nn::flows::{Coupling, SplineParams, Transformer};
use boltzflow_nn::parallel::{for_each_chunk, sum_in_order};
use boltzflow_nn::{
    Activation, Direction, FlowWorkspace, Mlp, MlpCache, ParamLayout, Real, SequentialFlow,
};

pub use super::decoder::{Decoder, DecoderCache, DecoderKind, DecoderSpec};
use super::likelihood::LN_2PI;

/// The latent prior.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriorKind {
    /// N(0, I).
    Normal,
    /// N(0, I) through 4 spline couplings (Monroe & Shen 2022).
    Flow,
}

/// The shape of a VAE.
#[derive(Debug, Clone, PartialEq)]
pub struct VaeSpec {
    /// Configuration dimension d.
    pub dim: usize,
    /// Latent dimension k (1, 2 and 4 in the paper).
    pub latent: usize,
    /// Hidden widths of the encoder (ReLU).
    pub encoder_hidden: Vec<usize>,
    /// The decoder.
    pub decoder: DecoderSpec,
    /// The prior.
    pub prior: PriorKind,
    /// Indices of periodic coordinates (angles, period 2π).
    pub periodic: Vec<usize>,
}

/// Encoder, decoder, prior and the layout of their parameters (f32 for training, f64 for
/// gradient checks).
#[derive(Debug)]
pub struct Vae<T: Real = f32> {
    spec: VaeSpec,
    encoder: Mlp,
    decoder: Decoder,
    prior: Option<SequentialFlow<T>>,
    /// Per coordinate: whether it is periodic, entering the encoder as (sin, cos).
    periodic: Vec<bool>,
    layout: ParamLayout,
}

/// Per-chunk buffers of [`Vae::loss_and_gradient`].
#[derive(Debug, Clone, Default)]
pub struct VaeCache<T> {
    enc: MlpCache<T>,
    dec: DecoderCache<T>,
    z: Vec<T>,
    d_enc: Vec<T>,
    dz: Vec<T>,
    prior: FlowWorkspace<T>,
    features: Vec<T>,
    d_u: Vec<T>,
    d_ld: Vec<T>,
    grads: Vec<T>,
    sums: (f64, f64),
}

/// The terms of the loss, averaged over the batch (nats per configuration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VaeLoss {
    /// −ln p(x|z).
    pub recon: f64,
    /// ln q(z|x) − ln P(z) (single-sample KL estimate).
    pub kl: f64,
    /// recon + β kl.
    pub total: f64,
}

impl VaeLoss {
    /// The batch means from the sums of −ln p(x|z) and of the KL estimate over `rows` rows.
    fn from_sums(recon: f64, kl: f64, rows: usize, beta: f64) -> Self {
        let (recon, kl) = (recon / rows as f64, kl / rows as f64);
        Self {
            recon,
            kl,
            total: recon + beta * kl,
        }
    }
}

impl<T: Real> Vae<T> {
    /// Encoder MLP [d, hidden…, 2k] with ReLU; decoder base network [k, hidden…, d or 2d] with
    /// tanh (Monroe & Shen 2022); no periodic coordinates, no grouping.
    pub fn new(
        dim: usize,
        latent: usize,
        encoder_hidden: &[usize],
        decoder_hidden: &[usize],
        decoder: DecoderKind,
        prior: PriorKind,
    ) -> Self {
        Self::with_periodic(
            dim,
            latent,
            encoder_hidden,
            decoder_hidden,
            decoder,
            prior,
            &[],
        )
    }

    /// As [`Vae::new`], with the coordinates `periodic` (indices) entering the encoder as
    /// (sin θ, cos θ), so the encoding does not depend on the branch of θ, and decoded as angles.
    pub fn with_periodic(
        dim: usize,
        latent: usize,
        encoder_hidden: &[usize],
        decoder_hidden: &[usize],
        decoder: DecoderKind,
        prior: PriorKind,
        periodic: &[usize],
    ) -> Self {
        Self::from_spec(&VaeSpec {
            dim,
            latent,
            encoder_hidden: encoder_hidden.to_vec(),
            decoder: DecoderSpec::new(decoder, decoder_hidden),
            prior,
            periodic: periodic.to_vec(),
        })
    }

    /// The VAE of `spec`.
    ///
    /// # Panics
    /// On an invalid spec (configurations are validated before): see [`Decoder::new`].
    pub fn from_spec(spec: &VaeSpec) -> Self {
        let (dim, latent) = (spec.dim, spec.latent);
        let periodic: Vec<bool> = (0..dim).map(|i| spec.periodic.contains(&i)).collect();
        let mut layout = ParamLayout::new();
        let features = dim + periodic.iter().filter(|&&p| p).count();
        let mut w = vec![features];
        w.extend_from_slice(&spec.encoder_hidden);
        w.push(2 * latent);
        let encoder = Mlp::new(
            &mut layout,
            "encoder",
            &w,
            Activation::Relu,
            Activation::Identity,
        );
        let decoder = Decoder::new(&mut layout, dim, latent, &spec.decoder, &periodic);
        let prior = (spec.prior == PriorKind::Flow).then(|| {
            let mut flow = SequentialFlow::new(latent);
            let spline = Transformer::Spline(SplineParams::new(32, 10.0));
            let (first, second): (Vec<usize>, Vec<usize>) = if latent == 1 {
                (vec![0], vec![0])
            } else {
                ((0..latent / 2).collect(), (latent / 2..latent).collect())
            };
            for b in 0..4 {
                let trans = if b % 2 == 0 { &second } else { &first };
                flow.push(Coupling::new(
                    &mut layout,
                    &format!("prior.{b}"),
                    latent,
                    trans,
                    &[20],
                    Activation::Tanh,
                    spline,
                ));
            }
            flow
        });
        Self {
            spec: spec.clone(),
            encoder,
            decoder,
            prior,
            periodic,
            layout,
        }
    }

    /// The shape this VAE was built from.
    pub fn spec(&self) -> &VaeSpec {
        &self.spec
    }

    /// The decoder.
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The encoder's input features of `x` `[rows, d]`: x_i, or (sin x_i, cos x_i) for a
    /// periodic coordinate.
    fn features(&self, x: &[T], out: &mut Vec<T>) {
        out.clear();
        for row in x.chunks_exact(self.spec.dim) {
            for (&v, &p) in row.iter().zip(&self.periodic) {
                if p {
                    out.push(v.sin());
                    out.push(v.cos());
                } else {
                    out.push(v);
                }
            }
        }
    }

    /// The encoder MLP: inputs are the coordinates with each periodic one replaced by
    /// (sin θ, cos θ) in place, outputs `[2k]` the means μ then the log-variances.
    pub fn encoder(&self) -> &Mlp {
        &self.encoder
    }

    /// The parameter layout (checkpoint names).
    pub fn layout(&self) -> &ParamLayout {
        &self.layout
    }

    /// Multiply–adds per row of one forward pass (encoder and decoder; the prior is small).
    pub fn macs_per_row(&self) -> usize {
        self.encoder.macs_per_row() + self.decoder.macs_per_row()
    }

    /// PyTorch-style initialisation; the flow prior starts as the identity (P = N(0, I)).
    pub fn init(&self, params: &mut [T], rng: &mut ChainRng) {
        self.encoder.init(params, false, rng);
        self.decoder.init(params, rng);
        if let Some(f) = &self.prior {
            f.init(params, rng);
        }
    }

    /// Zeroes the masked weights of the decoder's MADE in `values` (parameters or gradients
    /// laid out as the parameters).
    pub fn apply_masks(&self, values: &mut [T]) {
        self.decoder.apply_masks(values);
    }

    /// Whether the decoder's masked weights are zero (checked when a checkpoint is loaded).
    pub fn respects_masks(&self, params: &[T]) -> bool {
        self.decoder.respects_masks(params)
    }

    /// ln P(z) of each row of `z` `[rows, k]` (the forward pass stays in `ws` for
    /// [`SequentialFlow::backward`]).
    fn log_prior(&self, params: &[T], z: &[T], rows: usize, ws: &mut FlowWorkspace<T>) -> Vec<f64> {
        let k = self.spec.latent;
        let normal = |u: &[T]| {
            u.iter()
                .map(|v| -0.5 * v.as_f64() * v.as_f64() - 0.5 * LN_2PI)
                .sum::<f64>()
        };
        match &self.prior {
            None => z.chunks_exact(k).map(normal).collect(),
            Some(f) => {
                f.run(params, z, rows, Direction::Inverse, ws);
                ws.output()
                    .chunks_exact(k)
                    .zip(ws.log_det())
                    .map(|(u, ld)| normal(u) + ld.as_f64())
                    .collect()
            }
        }
    }

    /// ln P(z) of each row of `z` `[rows, k]`.
    pub fn log_prior_density(&self, params: &[T], z: &[T], rows: usize) -> Vec<f64> {
        self.log_prior(params, z, rows, &mut FlowWorkspace::new())
    }

    /// Maps standard-normal draws `u` `[rows, k]` to samples of P(z).
    pub fn prior_sample(&self, params: &[T], u: &[T], rows: usize) -> Vec<T> {
        self.prior_sample_with_density(params, u, rows).0
    }

    /// As [`Vae::prior_sample`], with ln P(z) of each draw from the same pass:
    /// ln N(u) − ln|det ∂z/∂u|.
    pub fn prior_sample_with_density(
        &self,
        params: &[T],
        u: &[T],
        rows: usize,
    ) -> (Vec<T>, Vec<f64>) {
        let k = self.spec.latent;
        let normal: Vec<f64> = u
            .chunks_exact(k)
            .map(|u| {
                u.iter()
                    .map(|v| -0.5 * v.as_f64() * v.as_f64() - 0.5 * LN_2PI)
                    .sum::<f64>()
            })
            .collect();
        match &self.prior {
            None => (u.to_vec(), normal),
            Some(f) => {
                let mut ws = FlowWorkspace::new();
                f.run(params, u, rows, Direction::Forward, &mut ws);
                let lp = normal
                    .iter()
                    .zip(ws.log_det())
                    .map(|(n, ld)| n - ld.as_f64())
                    .collect();
                (ws.output().to_vec(), lp)
            }
        }
    }

    /// The encodings of `x` `[rows, d]`: means and variances, each `[rows, k]`.
    pub fn encode(&self, params: &[T], x: &[T], rows: usize) -> (Vec<f64>, Vec<f64>) {
        let k = self.spec.latent;
        let mut cache = MlpCache::default();
        let mut feats = Vec::new();
        self.features(x, &mut feats);
        let out = self.encoder.forward(params, &feats, rows, &mut cache);
        let mut mu = Vec::with_capacity(rows * k);
        let mut var = Vec::with_capacity(rows * k);
        for row in out.chunks_exact(2 * k) {
            mu.extend(row[..k].iter().map(|v| v.as_f64()));
            var.extend(row[k..].iter().map(|v| v.as_f64().exp()));
        }
        (mu, var)
    }

    /// The decoder's base means and log-variances of x given `z` `[rows, k]`, each `[rows, d]`
    /// (log-variance 0 for `mse`; for the autoregressive decoders the shifts and the flow
    /// depend on x: use [`Vae::log_likelihood`] and [`Vae::sample_x`]).
    pub fn decode(&self, params: &[T], z: &[T], rows: usize) -> (Vec<f64>, Vec<f64>) {
        self.decoder.base(params, z, rows)
    }

    /// ln p(x|z) of each row: the exact density of the decoder's draws (periodic coordinates
    /// on [−π, π)).
    pub fn log_likelihood(&self, params: &[T], x: &[T], z: &[T], rows: usize) -> Vec<f64> {
        self.decoder.log_likelihood(
            params,
            x,
            z,
            rows,
            None,
            &mut Vec::new(),
            &mut DecoderCache::default(),
        )
    }

    /// Draws x ~ p(x|z) for each row of `z` `[rows, k]`; returns x `[rows, d]` and ln p(x|z)
    /// `[rows]` of the draw.
    pub fn sample_x(
        &self,
        params: &[T],
        z: &[T],
        rows: usize,
        rng: &mut ChainRng,
    ) -> (Vec<f64>, Vec<f64>) {
        self.decoder.sample(params, z, rows, rng)
    }

    /// Latent dimension.
    pub fn latent_dim(&self) -> usize {
        self.spec.latent
    }

    /// Configuration dimension.
    pub fn dim(&self) -> usize {
        self.spec.dim
    }

    /// The loss of a batch `x` `[rows, d]` with noise `eps` `[rows, k]` (z = μ + σ ε) at `beta`,
    /// on this thread; parameter gradients of the batch-mean loss are added to `grads`.
    #[allow(clippy::too_many_arguments)]
    pub fn loss_and_gradient(
        &self,
        params: &[T],
        grads: &mut [T],
        x: &[T],
        eps: &[T],
        rows: usize,
        beta: f64,
        cache: &mut VaeCache<T>,
    ) -> VaeLoss {
        let scale = 1.0 / rows as f64;
        let (recon, kl) = self.chunk_loss(params, grads, x, eps, rows, beta, scale, cache);
        VaeLoss::from_sums(recon, kl, rows, beta)
    }

    /// As [`Vae::loss_and_gradient`], with the batch cut into chunks of `chunk_rows` rows that
    /// run in parallel (one workspace each in `ws`); the gradient is the sum of the chunks' in
    /// chunk order, so it does not depend on the number of threads.
    #[allow(clippy::too_many_arguments)]
    pub fn batch_loss_and_gradient(
        &self,
        params: &[T],
        grads: &mut [T],
        x: &[T],
        eps: &[T],
        rows: usize,
        beta: f64,
        chunk_rows: usize,
        ws: &mut Vec<VaeCache<T>>,
    ) -> VaeLoss
    where
        T: Send + Sync,
        Self: Sync,
    {
        let (d, k) = (self.spec.dim, self.spec.latent);
        let scale = 1.0 / rows as f64;
        let n = params.len();
        for_each_chunk(rows, chunk_rows, ws, |range, cache| {
            let mut g = std::mem::take(&mut cache.grads);
            g.clear();
            g.resize(n, T::zero());
            cache.sums = self.chunk_loss(
                params,
                &mut g,
                &x[range.start * d..range.end * d],
                &eps[range.start * k..range.end * k],
                range.len(),
                beta,
                scale,
                cache,
            );
            cache.grads = g;
        });
        let chunks = rows.div_ceil(chunk_rows.max(1));
        let parts: Vec<&[T]> = ws[..chunks].iter().map(|c| c.grads.as_slice()).collect();
        let mut total = vec![T::zero(); n];
        sum_in_order(&mut total, &parts);
        for (g, t) in grads.iter_mut().zip(&total) {
            *g += *t;
        }
        let (recon, kl) = ws[..chunks]
            .iter()
            .fold((0.0, 0.0), |(a, b), c| (a + c.sums.0, b + c.sums.1));
        VaeLoss::from_sums(recon, kl, rows, beta)
    }

    /// Sums over the rows of −ln p(x|z) and ln q(z|x) − ln P(z); gradients of
    /// `scale` × (recon + β kl) are added to `grads`.
    #[allow(clippy::too_many_arguments)]
    fn chunk_loss(
        &self,
        params: &[T],
        grads: &mut [T],
        x: &[T],
        eps: &[T],
        rows: usize,
        beta: f64,
        scale: f64,
        cache: &mut VaeCache<T>,
    ) -> (f64, f64) {
        let k = self.spec.latent;
        let mut feats = std::mem::take(&mut cache.features);
        self.features(x, &mut feats);
        let enc = self
            .encoder
            .forward(params, &feats, rows, &mut cache.enc)
            .to_vec();
        cache.z.resize(rows * k, T::zero());
        cache.d_enc.resize(rows * 2 * k, T::zero());
        let mut kl = 0.0;
        for r in 0..rows {
            for j in 0..k {
                let (mu, lv) = (enc[r * 2 * k + j].as_f64(), enc[r * 2 * k + k + j].as_f64());
                let e = eps[r * k + j].as_f64();
                let z = mu + (0.5 * lv).exp() * e;
                cache.z[r * k + j] = T::of(z);
                // ln q(z|x) = −½ε² − ½ℓ − ½ln 2π.
                kl += -0.5 * e * e - 0.5 * lv - 0.5 * LN_2PI;
            }
        }
        let mut prior_ws = std::mem::take(&mut cache.prior);
        kl -= self
            .log_prior(params, &cache.z, rows, &mut prior_ws)
            .iter()
            .sum::<f64>();
        let mut dz = std::mem::take(&mut cache.dz);
        let recon = -self
            .decoder
            .log_likelihood(
                params,
                x,
                &cache.z,
                rows,
                Some((&mut *grads, scale)),
                &mut dz,
                &mut cache.dec,
            )
            .iter()
            .sum::<f64>();
        // −β ln P(z): N(0, I) gives +β z·scale; the flow prior backpropagates
        // dL/du = β u·scale and dL/d(log-det) = −β·scale through the inverse pass.
        let prior_grad: Vec<f64> = match &self.prior {
            None => cache.z.iter().map(|z| beta * z.as_f64() * scale).collect(),
            Some(f) => {
                cache.d_u.clear();
                cache.d_u.extend(
                    prior_ws
                        .output()
                        .iter()
                        .map(|u| T::of(beta * u.as_f64() * scale)),
                );
                cache.d_ld.clear();
                cache.d_ld.resize(rows, T::of(-beta * scale));
                f.backward(params, grads, &mut prior_ws, &cache.d_u, &cache.d_ld)
                    .iter()
                    .map(|g| g.as_f64())
                    .collect()
            }
        };
        cache.prior = prior_ws;
        // dL/dz = (decoder part) + (prior part); then dL/dμ = dL/dz and
        // dL/dℓ = dL/dz · ½σε − β·scale/2 (ln q contributes −½ per dimension at fixed ε).
        for r in 0..rows {
            for j in 0..k {
                let lv = enc[r * 2 * k + k + j].as_f64();
                let e = eps[r * k + j].as_f64();
                let g = dz[r * k + j].as_f64() + prior_grad[r * k + j];
                cache.d_enc[r * 2 * k + j] = T::of(g);
                cache.d_enc[r * 2 * k + k + j] =
                    T::of(g * 0.5 * (0.5 * lv).exp() * e - 0.5 * beta * scale);
            }
        }
        cache.dz = dz;
        self.encoder.backward(
            params,
            grads,
            &feats,
            &mut cache.enc,
            &mut cache.d_enc,
            None,
        );
        cache.features = feats;
        (recon, kl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boltzflow_core::RandomStreams;
    use boltzflow_nn::gradcheck::{compare, numeric_gradient};
    use rand_distr::{Distribution, StandardNormal};

    fn normals(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = RandomStreams::new(seed).stream("n");
        (0..n).map(|_| StandardNormal.sample(&mut rng)).collect()
    }

    /// Sets the flow prior's parameters to a·sin(ω i), away from the identity it starts as.
    fn move_prior_off_identity(vae: &Vae<f64>, params: &mut [f64], a: f64, omega: f64) {
        for e in vae
            .layout()
            .entries()
            .iter()
            .filter(|e| e.name.starts_with("prior"))
        {
            for (i, p) in params[e.range.clone()].iter_mut().enumerate() {
                *p = a * ((i as f64) * omega).sin();
            }
        }
    }

    #[test]
    fn the_loss_gradient_equals_finite_differences() {
        for (decoder, prior, k) in [
            (DecoderKind::Mse, PriorKind::Normal, 2),
            (DecoderKind::CondIndep, PriorKind::Normal, 2),
            (DecoderKind::Mse, PriorKind::Flow, 2),
            (DecoderKind::CondIndep, PriorKind::Flow, 1),
            (DecoderKind::Autoregressive, PriorKind::Normal, 2),
            (DecoderKind::Autoregressive, PriorKind::Flow, 1),
            (DecoderKind::Flow, PriorKind::Normal, 2),
            (DecoderKind::Flow, PriorKind::Flow, 1),
        ] {
            let vae = Vae::<f64>::with_periodic(3, k, &[7, 5], &[6], decoder, prior, &[1]);
            let mut params = vec![0.0; vae.layout().len()];
            vae.init(&mut params, &mut RandomStreams::new(1).stream("init"));
            move_prior_off_identity(&vae, &mut params, 0.2, 0.37);
            let rows = 4;
            let x = normals(rows * 3, 2);
            let eps = normals(rows * k, 3);
            let beta = 2.5;
            let mut grads = vec![0.0; params.len()];
            let mut cache = VaeCache::default();
            vae.loss_and_gradient(&params, &mut grads, &x, &eps, rows, beta, &mut cache);
            let mut num = numeric_gradient(&params, 1e-5, |p| {
                let mut g = vec![0.0; p.len()];
                vae.loss_and_gradient(p, &mut g, &x, &eps, rows, beta, &mut VaeCache::default())
                    .total
            });
            // Masked MADE weights stay zero (their gradient is masked).
            vae.apply_masks(&mut num);
            let rep = compare(&grads, &num);
            assert!(
                rep.relative() < 1e-6,
                "{decoder:?} {prior:?} k={k}: {rep:?}"
            );
        }
    }

    #[test]
    fn periodic_inputs_make_the_encoding_independent_of_the_branch() {
        let vae =
            Vae::<f64>::with_periodic(2, 1, &[8], &[8], DecoderKind::Mse, PriorKind::Normal, &[1]);
        let mut params = vec![0.0; vae.layout().len()];
        vae.init(&mut params, &mut RandomStreams::new(4).stream("init"));
        let x = [
            0.3,
            1.0,
            0.3,
            1.0 + 2.0 * std::f64::consts::PI,
            0.3,
            1.0 - 4.0 * std::f64::consts::PI,
        ];
        let (mu, var) = vae.encode(&params, &x, 3);
        for r in 1..3 {
            assert!((mu[r] - mu[0]).abs() < 1e-12 && (var[r] - var[0]).abs() < 1e-12);
        }
    }

    /// Midpoint grid over x₀ ∈ [−12, 12] and x₁ ∈ [−12, 12] or, periodic, [−π, π).
    fn grid(n: usize, periodic: bool) -> (Vec<f64>, f64) {
        let (lo1, w1) = if periodic {
            (-std::f64::consts::PI, 2.0 * std::f64::consts::PI)
        } else {
            (-12.0, 24.0)
        };
        let (h0, h1) = (24.0 / n as f64, w1 / n as f64);
        let mut x = Vec::with_capacity(2 * n * n);
        for a in 0..n {
            for b in 0..n {
                x.push(-12.0 + (a as f64 + 0.5) * h0);
                x.push(lo1 + (b as f64 + 0.5) * h1);
            }
        }
        (x, h0 * h1)
    }

    #[test]
    fn every_decoder_density_integrates_to_one_and_the_sampler_follows_it() {
        for periodic in [false, true] {
            for decoder in DecoderKind::ALL {
                let per: &[usize] = if periodic { &[1] } else { &[] };
                let vae =
                    Vae::<f64>::with_periodic(2, 1, &[6], &[6], decoder, PriorKind::Normal, per);
                let mut params = vec![0.0; vae.layout().len()];
                vae.init(&mut params, &mut RandomStreams::new(5).stream("init"));
                let z = 0.8;
                // The spline's second derivative jumps at its knots, so the midpoint rule
                // converges as h² there (measured: 1.2e-4 at n = 480, 1.6e-5 at n = 1500).
                let n = if decoder == DecoderKind::Flow {
                    720
                } else {
                    480
                };
                let tol = if decoder == DecoderKind::Flow {
                    1.5e-4
                } else {
                    1e-6
                };
                let (x, area) = grid(n, periodic);
                let zs = vec![z; n * n];
                let lp = vae.log_likelihood(&params, &x, &zs, n * n);
                let total: f64 = lp.iter().map(|l| l.exp() * area).sum();
                let label = format!("{} periodic={periodic}", decoder.name());
                assert!((total - 1.0).abs() < tol, "{label}: ∫ p = {total}");
                // The sampler's mean of f(x₁) (x₁, or cos x₁ for an angle) equals ∫ f p dx.
                let f = |v: f64| if periodic { v.cos() } else { v };
                let mean_q: f64 = lp
                    .iter()
                    .zip(x.chunks_exact(2))
                    .map(|(l, p)| l.exp() * f(p[1]) * area)
                    .sum();
                let m = 100_000;
                let mut rng = RandomStreams::new(7).stream("draw");
                let (xs, lps) = vae.sample_x(&params, &vec![z; m], m, &mut rng);
                let mean_s: f64 = xs.chunks_exact(2).map(|p| f(p[1])).sum::<f64>() / m as f64;
                assert!(
                    (mean_s - mean_q).abs() < 0.02,
                    "{label}: sampled {mean_s} vs {mean_q}"
                );
                // The draw's ln p is the density's.
                let again = vae.log_likelihood(&params, &xs[..200], &vec![z; 100], 100);
                for (a, b) in again.iter().zip(&lps) {
                    assert!((a - b).abs() < 1e-9, "{label}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn coordinates_in_one_group_are_independent_given_z() {
        // Degrees [0, 0]: p(x|z) = p(x₀|z) p(x₁|z), so the mixed difference of ln p in (x₀, x₁)
        // vanishes; with the plain order [0, 1] x₁'s density depends on x₀.
        for (decoder, groups, independent) in [
            (DecoderKind::Autoregressive, vec![0, 0], true),
            (DecoderKind::Autoregressive, vec![], false),
            (DecoderKind::Flow, vec![0, 0], true),
            (DecoderKind::Flow, vec![], false),
        ] {
            let mut spec = VaeSpec {
                dim: 2,
                latent: 1,
                encoder_hidden: vec![6],
                decoder: DecoderSpec::new(decoder, &[8]),
                prior: PriorKind::Normal,
                periodic: vec![],
            };
            spec.decoder.groups = groups;
            let vae = Vae::<f64>::from_spec(&spec);
            let mut params = vec![0.0; vae.layout().len()];
            vae.init(&mut params, &mut RandomStreams::new(6).stream("init"));
            let lp =
                |a: f64, b: f64| vae.log_likelihood(&params, &[0.1 + a, -0.4 + b], &[0.3], 1)[0];
            let mixed = lp(0.5, 0.5) - lp(0.5, 0.0) - lp(0.0, 0.5) + lp(0.0, 0.0);
            assert_eq!(mixed.abs() < 1e-12, independent, "{decoder:?}: {mixed}");
        }
    }

    #[test]
    fn each_decoder_log_likelihood_equals_a_hand_computation() {
        use crate::vae::likelihood::gaussian;
        use boltzflow_nn::flows::{SplineParams, rq_spline};
        let ln2pi = LN_2PI;
        let (x, z) = ([1.0, 0.0], [0.7]);
        for decoder in DecoderKind::ALL {
            let vae = Vae::<f64>::new(2, 1, &[3], &[4], decoder, PriorKind::Normal);
            let mut params = vec![0.0; vae.layout().len()];
            let set = |params: &mut Vec<f64>, name: &str, values: &[f64]| {
                let e = vae.layout().entries().iter().find(|e| e.name == name);
                let r = e.unwrap_or_else(|| panic!("{name}")).range.clone();
                params[r.start..r.start + values.len()].copy_from_slice(values);
            };
            // Zero weights: the base network outputs its last bias, m = (0.5, −1), ℓ = (0.2, −0.3).
            let base = [0.5, -1.0, 0.2, -0.3];
            let width = if decoder == DecoderKind::Mse { 2 } else { 4 };
            set(&mut params, "decoder.1.bias", &base[..width]);
            let got = vae.log_likelihood(&params, &x, &z, 1)[0];
            let want = match decoder {
                // −½(0.5² + 1²) − ln 2π.
                DecoderKind::Mse => -0.5 * (0.25 + 1.0) - ln2pi,
                // Σ −½(x − m)²/σ² − ½ ln σ² − ½ ln 2π.
                DecoderKind::CondIndep => {
                    -0.5 * 0.25 / 0.2f64.exp() - 0.1 - 0.5 * 1.0 / (-0.3f64).exp() + 0.15 - ln2pi
                }
                DecoderKind::Autoregressive => {
                    // The MADE's last bias shifts coordinate 1: Δm₁ = 0.25, Δℓ₁ = −0.1.
                    set(&mut params, "decoder.made.1.bias", &[0.0, 0.25, 0.0, -0.1]);
                    let got = vae.log_likelihood(&params, &x, &z, 1)[0];
                    let want =
                        -0.5 * 0.25 / 0.2f64.exp() - 0.1 - 0.5 * 0.75 * 0.75 / (-0.4f64).exp()
                            + 0.2
                            - ln2pi;
                    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
                    continue;
                }
                DecoderKind::Flow => {
                    // Spline parameters of coordinate 0 (outputs j·2 + 0) set to a pattern; u₀
                    // by bisection of the forward spline, ∂u/∂x by central differences.
                    let sp = SplineParams::new(32, 10.0);
                    let raw: Vec<f64> = (0..sp.n_raw()).map(|j| (0.37 * j as f64).sin()).collect();
                    let mut bias = vec![0.0; 2 * sp.n_raw()];
                    for (j, r) in raw.iter().enumerate() {
                        bias[2 * j] = *r;
                    }
                    set(&mut params, "decoder.made.1.bias", &bias);
                    let fwd = |u: f64| rq_spline(&raw, u, Direction::Forward, &sp).0;
                    let (mut lo, mut hi) = (-10.0, 10.0);
                    for _ in 0..200 {
                        let mid = 0.5 * (lo + hi);
                        if fwd(mid) < x[0] { lo = mid } else { hi = mid }
                    }
                    let u0 = 0.5 * (lo + hi);
                    let h = 1e-6;
                    let dxdu = (fwd(u0 + h) - fwd(u0 - h)) / (2.0 * h);
                    let got = vae.log_likelihood(&params, &x, &z, 1)[0];
                    let want = gaussian(u0, 0.5, 0.2).0 - dxdu.ln() + gaussian(0.0, -1.0, -0.3).0;
                    assert!((got - want).abs() < 1e-8, "{got} vs {want}");
                    assert!((u0 - x[0]).abs() > 1e-2, "the spline is not the identity");
                    continue;
                }
            };
            assert!((got - want).abs() < 1e-12, "{decoder:?}: {got} vs {want}");
        }
    }

    #[test]
    fn the_prior_density_of_a_draw_equals_the_density_by_the_inverse_pass() {
        for k in [1, 2] {
            let vae = Vae::<f64>::new(2, k, &[4], &[4], DecoderKind::Mse, PriorKind::Flow);
            let mut params = vec![0.0; vae.layout().len()];
            vae.init(&mut params, &mut RandomStreams::new(8).stream("init"));
            move_prior_off_identity(&vae, &mut params, 0.3, 0.71);
            let u = normals(50 * k, 9);
            let (z, lp) = vae.prior_sample_with_density(&params, &u, 50);
            let again = vae.log_prior_density(&params, &z, 50);
            for (a, b) in lp.iter().zip(&again) {
                assert!((a - b).abs() < 1e-9, "k={k}: {a} vs {b}");
            }
        }
    }
}
