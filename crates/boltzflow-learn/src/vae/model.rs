//! A VAE over configurations x ∈ ℝ^d with a diagonal-Gaussian encoder and a Gaussian decoder
//! (the "MSE" fixed-variance, conditionally independent and autoregressive decoders of Monroe &
//! Shen 2022),
//! a standard-normal or flow prior, and the loss L = −ln p(x|z) + β [ln q(z|x) − ln P(z)] with
//! one reparameterised sample z = μ + σε, whose hand-written gradient is checked against finite
//! differences.
//!
//! The flow prior (Monroe & Shen 2022): P(z) is N(0, I) pushed through 4 rational-quadratic
//! spline couplings (32 bins on [−10, 10], one hidden layer of 20 tanh units); halves alternate
//! for k ≥ 2, and for k = 1 each block's spline parameters come from a constant input.
//! ln P(z) = ln N(F⁻¹(z)) + ln|det ∂F⁻¹/∂z|.
//!
//! Periodic coordinates enter the encoder as (sin θ, cos θ). Not yet here (issue 5): the flow
//! decoder, periodic (von Mises) outputs, grouping in the autoregressive decoder, batch
//! parallelism, training schedules.

use boltzflow_core::ChainRng;
use boltzflow_nn::flows::{Coupling, SplineParams, Transformer};
use boltzflow_nn::{
    Activation, Direction, FlowWorkspace, Made, Mlp, MlpCache, ParamLayout, Real, SequentialFlow,
};

use super::likelihood::{LN_2PI, gaussian, gaussian_unit};

/// The latent prior.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriorKind {
    /// N(0, I).
    Normal,
    /// N(0, I) through 4 spline couplings (Monroe & Shen 2022).
    Flow,
}

/// The decoders built so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecoderKind {
    /// p(x|z) = N(m(z), I): the "MSE" decoder.
    Mse,
    /// p(x|z) = N(m(z), diag e^{ℓ(z)}): conditionally independent coordinates.
    CondIndep,
    /// p(x|z) = Π_i N(x_i; m_i(z) + Δm_i(x_<i, z), e^{ℓ_i(z) + Δℓ_i(x_<i, z)}): the base of
    /// `CondIndep` shifted by a conditional MADE over x (fixed order) with z as context.
    Autoregressive,
}

/// Encoder, decoder, prior and the layout of their parameters (f32 for training, f64 for
/// gradient checks).
#[derive(Debug)]
pub struct Vae<T: Real = f32> {
    dim: usize,
    latent: usize,
    decoder: DecoderKind,
    encoder: Mlp,
    decoder_net: Mlp,
    prior: Option<SequentialFlow<T>>,
    /// The autoregressive decoder's conditional MADE, inputs [x, z], outputs [Δm, Δℓ].
    ar: Option<Made>,
    /// Per coordinate: whether it is periodic (an angle), entering the encoder as (sin, cos).
    periodic: Vec<bool>,
    layout: ParamLayout,
}

/// Per-batch buffers of [`Vae::loss_and_gradient`].
#[derive(Debug, Clone, Default)]
pub struct VaeCache<T> {
    enc: MlpCache<T>,
    dec: MlpCache<T>,
    z: Vec<T>,
    d_enc: Vec<T>,
    d_dec: Vec<T>,
    dz: Vec<T>,
    prior: FlowWorkspace<T>,
    features: Vec<T>,
    ar: MlpCache<T>,
    ar_input: Vec<T>,
    d_u: Vec<T>,
    d_ld: Vec<T>,
}

/// The terms of the loss, averaged over the batch (nats per configuration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VaeLoss {
    /// −ln p(x|z).
    pub recon: f64,
    /// ln q(z|x) − ln p(z) (single-sample KL estimate).
    pub kl: f64,
    /// recon + β kl.
    pub total: f64,
}

impl<T: Real> Vae<T> {
    /// Encoder MLP [d, hidden…, 2k] with ReLU; decoder MLP [k, hidden…, d or 2d] with tanh
    /// (Monroe & Shen 2022).
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
    /// (sin θ, cos θ) (Monroe & Shen 2022), so the encoding does not depend on the branch of θ.
    pub fn with_periodic(
        dim: usize,
        latent: usize,
        encoder_hidden: &[usize],
        decoder_hidden: &[usize],
        decoder: DecoderKind,
        prior: PriorKind,
        periodic: &[usize],
    ) -> Self {
        let periodic: Vec<bool> = (0..dim).map(|i| periodic.contains(&i)).collect();
        let mut layout = ParamLayout::new();
        let features = dim + periodic.iter().filter(|&&p| p).count();
        let mut w = vec![features];
        w.extend_from_slice(encoder_hidden);
        w.push(2 * latent);
        let encoder = Mlp::new(
            &mut layout,
            "encoder",
            &w,
            Activation::Relu,
            Activation::Identity,
        );
        let out = match decoder {
            DecoderKind::Mse => dim,
            DecoderKind::CondIndep | DecoderKind::Autoregressive => 2 * dim,
        };
        let mut w = vec![latent];
        w.extend_from_slice(decoder_hidden);
        w.push(out);
        let decoder_net = Mlp::new(
            &mut layout,
            "decoder",
            &w,
            Activation::Tanh,
            Activation::Identity,
        );
        let ar = (decoder == DecoderKind::Autoregressive).then(|| {
            let width = decoder_hidden.first().copied().unwrap_or(50);
            Made::conditional(
                &mut layout,
                "decoder.made",
                dim,
                latent,
                2,
                2,
                width,
                Activation::Tanh,
            )
        });
        let prior = (prior == PriorKind::Flow).then(|| {
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
            dim,
            latent,
            decoder,
            encoder,
            decoder_net,
            prior,
            ar,
            periodic,
            layout,
        }
    }

    /// The encoder's input features of `x` `[rows, d]`: x_i, or (sin x_i, cos x_i) for a
    /// periodic coordinate.
    fn features(&self, x: &[T], out: &mut Vec<T>) {
        out.clear();
        for row in x.chunks_exact(self.dim) {
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

    /// The parameter layout (checkpoint names).
    pub fn layout(&self) -> &ParamLayout {
        &self.layout
    }

    /// PyTorch-style initialisation; the flow prior starts as the identity (P = N(0, I)).
    pub fn init(&self, params: &mut [T], rng: &mut ChainRng) {
        self.encoder.init(params, false, rng);
        self.decoder_net.init(params, false, rng);
        if let Some(m) = &self.ar {
            m.init(params, rng);
        }
        if let Some(f) = &self.prior {
            f.init(params, rng);
        }
    }

    /// Zeroes the masked weights of the autoregressive decoder in `values` (parameters or
    /// gradients laid out as the parameters).
    pub fn apply_masks(&self, values: &mut [T]) {
        if let Some(m) = &self.ar {
            m.apply_masks(values);
        }
    }

    /// ln P(z) of each row of `z` `[rows, k]` (the forward pass stays in `ws` for
    /// [`SequentialFlow::backward`]).
    fn log_prior(&self, params: &[T], z: &[T], rows: usize, ws: &mut FlowWorkspace<T>) -> Vec<f64> {
        let k = self.latent;
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
        match &self.prior {
            None => u.to_vec(),
            Some(f) => {
                let mut ws = FlowWorkspace::new();
                f.run(params, u, rows, Direction::Forward, &mut ws);
                ws.output().to_vec()
            }
        }
    }

    /// The encodings of `x` `[rows, d]`: means and variances, each `[rows, k]`.
    pub fn encode(&self, params: &[T], x: &[T], rows: usize) -> (Vec<f64>, Vec<f64>) {
        let k = self.latent;
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

    /// The decoder's means and log-variances of x given `z` `[rows, k]`, each `[rows, d]`
    /// (log-variance 0 for the MSE decoder; for the autoregressive decoder, the base before the
    /// shifts, which depend on x: use [`Vae::log_likelihood`] and [`Vae::sample_x`]).
    pub fn decode(&self, params: &[T], z: &[T], rows: usize) -> (Vec<f64>, Vec<f64>) {
        let d = self.dim;
        let mut cache = MlpCache::default();
        let out = self.decoder_net.forward(params, z, rows, &mut cache);
        let width = out.len() / rows.max(1);
        let mut mean = Vec::with_capacity(rows * d);
        let mut log_var = Vec::with_capacity(rows * d);
        for row in out.chunks_exact(width) {
            mean.extend(row[..d].iter().map(|v| v.as_f64()));
            match self.decoder {
                DecoderKind::Mse => log_var.extend(std::iter::repeat_n(0.0, d)),
                _ => log_var.extend(row[d..].iter().map(|v| v.as_f64())),
            }
        }
        (mean, log_var)
    }

    /// The autoregressive shifts [Δm, Δℓ] `[rows, 2d]` of x `[rows, d]` given z `[rows, k]`
    /// (zeros for the other decoders), with the MADE's input [x, z] left in `input`.
    fn shifts(
        &self,
        params: &[T],
        x: &[T],
        z: &[T],
        rows: usize,
        input: &mut Vec<T>,
        cache: &mut MlpCache<T>,
    ) -> Vec<f64> {
        let (d, k) = (self.dim, self.latent);
        let Some(m) = &self.ar else {
            return vec![0.0; rows * 2 * d];
        };
        input.clear();
        for r in 0..rows {
            input.extend_from_slice(&x[r * d..(r + 1) * d]);
            input.extend_from_slice(&z[r * k..(r + 1) * k]);
        }
        m.forward(params, input, rows, cache)
            .iter()
            .map(|v| v.as_f64())
            .collect()
    }

    /// ln p(x|z) of each row.
    pub fn log_likelihood(&self, params: &[T], x: &[T], z: &[T], rows: usize) -> Vec<f64> {
        let d = self.dim;
        let (mean, log_var) = self.decode(params, z, rows);
        let shifts = self.shifts(
            params,
            x,
            z,
            rows,
            &mut Vec::new(),
            &mut MlpCache::default(),
        );
        (0..rows)
            .map(|r| {
                (0..d)
                    .map(|i| {
                        let xi = x[r * d + i].as_f64();
                        let m = mean[r * d + i] + shifts[r * 2 * d + i];
                        let l = log_var[r * d + i] + shifts[r * 2 * d + d + i];
                        gaussian(xi, m, l).0
                    })
                    .sum()
            })
            .collect()
    }

    /// Draws x ~ p(x|z) for each row of `z` `[rows, k]` with standard-normal `noise` `[rows, d]`
    /// (coordinate by coordinate for the autoregressive decoder); returns x `[rows, d]` and
    /// ln p(x|z) `[rows]`, from the same means and variances the draw used.
    pub fn sample_x(
        &self,
        params: &[T],
        z: &[T],
        noise: &[f64],
        rows: usize,
    ) -> (Vec<f64>, Vec<f64>) {
        let d = self.dim;
        let (mean, log_var) = self.decode(params, z, rows);
        let mut x = vec![0.0; rows * d];
        let mut log_p = vec![0.0; rows];
        // One coordinate: the value and its log-density.
        let draw = |m: f64, l: f64, e: f64| {
            let v = m + (0.5 * l).exp() * e;
            (v, gaussian(v, m, l).0)
        };
        if self.ar.is_none() {
            for (j, xj) in x.iter_mut().enumerate() {
                let (v, lp) = draw(mean[j], log_var[j], noise[j]);
                *xj = v;
                log_p[j / d] += lp;
            }
            return (x, log_p);
        }
        // The shifts of coordinate i need x_<i: one MADE pass per coordinate.
        let mut xt = vec![T::zero(); rows * d];
        let (mut input, mut cache) = (Vec::new(), MlpCache::default());
        for i in 0..d {
            let sh = self.shifts(params, &xt, z, rows, &mut input, &mut cache);
            for r in 0..rows {
                let m = mean[r * d + i] + sh[r * 2 * d + i];
                let l = log_var[r * d + i] + sh[r * 2 * d + d + i];
                let (v, lp) = draw(m, l, noise[r * d + i]);
                x[r * d + i] = v;
                log_p[r] += lp;
                xt[r * d + i] = T::of(v);
            }
        }
        (x, log_p)
    }

    /// Latent dimension.
    pub fn latent_dim(&self) -> usize {
        self.latent
    }

    /// Configuration dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The loss of a batch `x` `[rows, d]` with noise `eps` `[rows, k]` (z = μ + σ ε) at `beta`;
    /// parameter gradients of the batch-mean loss are added to `grads`.
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
        let (d, k) = (self.dim, self.latent);
        let scale = 1.0 / rows as f64;
        let mut feats = std::mem::take(&mut cache.features);
        self.features(x, &mut feats);
        let enc = self
            .encoder
            .forward(params, &feats, rows, &mut cache.enc)
            .to_vec();
        cache.z.resize(rows * k, T::zero());
        cache.d_enc.resize(rows * 2 * k, T::zero());
        let (mut recon, mut kl) = (0.0, 0.0);
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
        let out = self
            .decoder_net
            .forward(params, &cache.z, rows, &mut cache.dec)
            .to_vec();
        let width = out.len() / rows;
        cache.d_dec.resize(rows * width, T::zero());
        let mut ar_in = std::mem::take(&mut cache.ar_input);
        let shifts = self.shifts(params, x, &cache.z, rows, &mut ar_in, &mut cache.ar);
        for r in 0..rows {
            for i in 0..d {
                let xi = x[r * d + i].as_f64();
                let m = out[r * width + i].as_f64();
                match self.decoder {
                    DecoderKind::Autoregressive => {
                        let lv = out[r * width + d + i].as_f64() + shifts[r * 2 * d + d + i];
                        let (lp, dm, dl) = gaussian(xi, m + shifts[r * 2 * d + i], lv);
                        recon -= lp;
                        // The base and the shift enter as sums: the same gradient for both.
                        cache.d_dec[r * width + i] = T::of(-dm * scale);
                        cache.d_dec[r * width + d + i] = T::of(-dl * scale);
                    }
                    DecoderKind::Mse => {
                        let (lp, dm) = gaussian_unit(xi, m);
                        recon -= lp;
                        cache.d_dec[r * width + i] = T::of(-dm * scale);
                    }
                    DecoderKind::CondIndep => {
                        let lv = out[r * width + d + i].as_f64();
                        let (lp, dm, dl) = gaussian(xi, m, lv);
                        recon -= lp;
                        cache.d_dec[r * width + i] = T::of(-dm * scale);
                        cache.d_dec[r * width + d + i] = T::of(-dl * scale);
                    }
                }
            }
        }
        let mut ar_grad = Vec::new();
        if let Some(m) = &self.ar {
            // d_dec is [rows, 2d] = [dL/dm, dL/dℓ], the MADE's output layout too.
            let mut d_ar = cache.d_dec.clone();
            m.backward_with_input(
                params,
                grads,
                &ar_in,
                &mut cache.ar,
                &mut d_ar,
                &mut ar_grad,
            );
        }
        cache.ar_input = ar_in;
        let mut dz = std::mem::take(&mut cache.dz);
        self.decoder_net.backward(
            params,
            grads,
            &cache.z,
            &mut cache.dec,
            &mut cache.d_dec,
            Some(&mut dz),
        );
        if !ar_grad.is_empty() {
            // The MADE's input gradient: [dL/dx, dL/dz] per row; z's part joins the decoder's.
            for r in 0..rows {
                for j in 0..k {
                    dz[r * k + j] += ar_grad[r * (d + k) + d + j];
                }
            }
        }
        // −β ln P(z): N(0, I) gives +β z/rows; the flow prior backpropagates
        // dL/du = β u/rows and dL/d(log-det) = −β/rows through the inverse pass.
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
        // dL/dℓ = dL/dz · ½σε − β/(2 rows) (ln q contributes −½ per dimension at fixed ε).
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
        let (recon, kl) = (recon * scale, kl * scale);
        VaeLoss {
            recon,
            kl,
            total: recon + beta * kl,
        }
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

    #[test]
    fn the_loss_gradient_equals_finite_differences() {
        for (decoder, prior, k) in [
            (DecoderKind::Mse, PriorKind::Normal, 2),
            (DecoderKind::CondIndep, PriorKind::Normal, 2),
            (DecoderKind::Mse, PriorKind::Flow, 2),
            (DecoderKind::CondIndep, PriorKind::Flow, 1),
            (DecoderKind::Autoregressive, PriorKind::Normal, 2),
            (DecoderKind::Autoregressive, PriorKind::Flow, 1),
        ] {
            let vae = Vae::<f64>::with_periodic(3, k, &[7, 5], &[6], decoder, prior, &[1]);
            let mut params = vec![0.0; vae.layout().len()];
            vae.init(&mut params, &mut RandomStreams::new(1).stream("init"));
            // Move the flow prior away from the identity.
            for e in vae
                .layout()
                .entries()
                .iter()
                .filter(|e| e.name.starts_with("prior"))
            {
                for (i, p) in params[e.range.clone()].iter_mut().enumerate() {
                    *p = 0.2 * ((i as f64) * 0.37).sin();
                }
            }
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

    #[test]
    fn every_decoder_density_integrates_to_one_and_the_sampler_follows_it() {
        for decoder in [
            DecoderKind::Mse,
            DecoderKind::CondIndep,
            DecoderKind::Autoregressive,
        ] {
            let vae = Vae::<f64>::new(2, 1, &[6], &[6], decoder, PriorKind::Normal);
            let mut params = vec![0.0; vae.layout().len()];
            vae.init(&mut params, &mut RandomStreams::new(5).stream("init"));
            let z = [0.8];
            // ∫∫ p(x|z) dx by the midpoint rule on [−12, 12]².
            let (n, lo, h) = (480, -12.0, 24.0 / 480.0);
            let mut x = Vec::with_capacity(2 * n * n);
            for a in 0..n {
                for b in 0..n {
                    x.push(lo + (a as f64 + 0.5) * h);
                    x.push(lo + (b as f64 + 0.5) * h);
                }
            }
            let zs = vec![z[0]; n * n];
            let total: f64 = vae
                .log_likelihood(&params, &x, &zs, n * n)
                .iter()
                .map(|l| l.exp() * h * h)
                .sum();
            assert!((total - 1.0).abs() < 1e-6, "{decoder:?}: ∫ p = {total}");
            // The sampler's mean of x₁ equals ∫ x₁ p(x|z) dx.
            let mean_q: f64 = vae
                .log_likelihood(&params, &x, &zs, n * n)
                .iter()
                .zip(x.chunks_exact(2))
                .map(|(l, p)| l.exp() * p[1] * h * h)
                .sum();
            let m = 100_000;
            let noise = normals(2 * m, 7);
            let (xs, _) = vae.sample_x(&params, &vec![z[0]; m], &noise, m);
            let mean_s: f64 = xs.chunks_exact(2).map(|p| p[1]).sum::<f64>() / m as f64;
            assert!(
                (mean_s - mean_q).abs() < 0.02,
                "{decoder:?}: sampled {mean_s} vs {mean_q}"
            );
        }
    }
}
