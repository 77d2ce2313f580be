//! The four decoders p(x|z) of Monroe & Shen (J. Chem. Theory Comput. 2022), in order of power:
//!
//! - `mse`: N(m(z), I), the fixed-variance decoder whose loss is the squared error;
//! - `cond-indep`: N(m(z), diag e^{ℓ(z)}), coordinates independent given z;
//! - `autoregressive`: Π_i N(x_i; m_i(z) + Δm_i(x_<i, z), e^{ℓ_i(z) + Δℓ_i(x_<i, z)}), the base of
//!   `cond-indep` shifted by a conditional MADE over x (fixed order, optionally in groups that
//!   share a degree) with z as context;
//! - `flow`: a Gaussian base u ~ N(m(z), diag e^{ℓ(z)}) pushed through a masked autoregressive
//!   rational-quadratic spline flow, x_i = g(u_i; θ_i(x_<i, z)), with the spline parameters θ
//!   from a conditional MADE over x with z as context (Papamakarios et al. 2017 with the splines
//!   of Durkan et al. 2019). ln p(x|z) = ln N(u; m, e^{ℓ}) + Σ_i ln|∂u_i/∂x_i|, one MADE pass.
//!
//! Periodic coordinates (angles, period 2π) use a von Mises density with log-concentration
//! −ℓ in `autoregressive` and `flow`; in `flow` their spline lives on [−π, π] with unit
//! derivatives at both ends, a diffeomorphism of the circle. In `mse` and `cond-indep` they keep
//! the paper's Gaussian in the training loss; draws are wrapped onto [−π, π) and evaluated with
//! the wrapped-normal density, so that VAE Monte Carlo stays exact on the circle.
//!
//! The base network is an MLP [k, hidden…, d or 2d] with tanh; the MADE has two masked layers,
//! [d + k, h, outputs] with h the first hidden width, also tanh.

use std::f64::consts::PI;

use boltzflow_core::ChainRng;
use boltzflow_nn::flows::{Direction, SplineParams, rq_spline, rq_spline_backward};
use boltzflow_nn::{Activation, Made, Mlp, MlpCache, ParamLayout, Real};
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};

use super::likelihood::{gaussian, gaussian_unit, von_mises};

/// The decoder family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecoderKind {
    /// p(x|z) = N(m(z), I): the "MSE" decoder.
    Mse,
    /// p(x|z) = N(m(z), diag e^{ℓ(z)}): conditionally independent coordinates.
    CondIndep,
    /// The `CondIndep` base shifted autoregressively by a conditional MADE.
    Autoregressive,
    /// A Gaussian base from z through a masked autoregressive spline flow conditioned on z.
    Flow,
}

impl DecoderKind {
    /// All four, in order of power.
    pub const ALL: [DecoderKind; 4] = [
        DecoderKind::Mse,
        DecoderKind::CondIndep,
        DecoderKind::Autoregressive,
        DecoderKind::Flow,
    ];

    /// The name in configurations and `metrics.csv`.
    pub fn name(self) -> &'static str {
        match self {
            DecoderKind::Mse => "mse",
            DecoderKind::CondIndep => "cond-indep",
            DecoderKind::Autoregressive => "autoregressive",
            DecoderKind::Flow => "flow",
        }
    }

    /// The decoder called `name` (as in [`DecoderKind::name`]).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Shape of a decoder.
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderSpec {
    /// The family.
    pub kind: DecoderKind,
    /// Hidden widths of the base network (50, 50 for the 2D systems; 300, 300 for molecules).
    pub hidden: Vec<usize>,
    /// Autoregressive degree of each coordinate (`autoregressive` and `flow`); coordinates
    /// that share a degree are drawn together. Empty: one coordinate per degree, in order.
    pub groups: Vec<usize>,
    /// Spline bins of the `flow` decoder.
    pub flow_bins: usize,
    /// Half-width B of the `flow` decoder's spline interval [−B, B] (identity outside).
    pub flow_bound: f64,
}

impl DecoderSpec {
    /// The paper's shape for `kind` with the given hidden widths: no grouping, 32 bins on
    /// [−10, 10] for the flow.
    pub fn new(kind: DecoderKind, hidden: &[usize]) -> Self {
        Self {
            kind,
            hidden: hidden.to_vec(),
            groups: Vec::new(),
            flow_bins: 32,
            flow_bound: 10.0,
        }
    }
}

/// A decoder with its networks (parameters live in the VAE's flat vector).
#[derive(Debug)]
pub struct Decoder {
    kind: DecoderKind,
    dim: usize,
    latent: usize,
    /// Base network [k, hidden…, d] (mse) or [k, hidden…, 2d] (means, log-variances).
    net: Mlp,
    /// Conditional MADE, inputs [x, z]; outputs [Δm, Δℓ] (autoregressive) or the spline
    /// parameters (flow), in blocks of d.
    made: Option<Made>,
    periodic: Vec<bool>,
    /// Coordinates of each autoregressive degree, lowest first.
    order: Vec<Vec<usize>>,
    spline: SplineParams,
    circle: SplineParams,
}

/// Per-batch buffers of a decoder.
#[derive(Debug, Clone, Default)]
pub struct DecoderCache<T> {
    net: MlpCache<T>,
    made: MlpCache<T>,
    input: Vec<T>,
    d_net: Vec<T>,
    d_made: Vec<T>,
    d_input: Vec<T>,
    raw: Vec<f64>,
    g_raw: Vec<f64>,
}

/// θ wrapped onto [−π, π).
pub fn wrap_angle(theta: f64) -> f64 {
    (theta + PI).rem_euclid(2.0 * PI) - PI
}

/// ln of the wrapped normal density on [−π, π): Σ_j N(θ + 2πj; μ, e^{ℓ}), with enough images
/// that the omitted ones are below 10⁻¹⁶ of the total.
pub fn wrapped_gaussian(theta: f64, mu: f64, log_var: f64) -> f64 {
    let sigma = (0.5 * log_var).exp();
    let r = wrap_angle(theta - mu);
    let images = ((9.0 * sigma / (2.0 * PI)).ceil() as i64 + 1).min(1000);
    let terms: Vec<f64> = (-images..=images)
        .map(|j| gaussian(r + 2.0 * PI * j as f64, 0.0, log_var).0)
        .collect();
    let top = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    top + terms.iter().map(|t| (t - top).exp()).sum::<f64>().ln()
}

/// A draw from the von Mises distribution vM(μ, κ) on [−π, π) (Best & Fisher 1979, the
/// wrapped-Cauchy envelope); uniform for κ < 10⁻⁸ and the normal limit N(μ, 1/κ), wrapped,
/// for κ > 10⁶, where the envelope loses precision (NumPy does the same above 10⁵).
pub fn sample_von_mises(mu: f64, kappa: f64, rng: &mut ChainRng) -> f64 {
    if kappa < 1e-8 {
        return PI * (2.0 * rng.random::<f64>() - 1.0);
    }
    if kappa > 1e6 {
        let e: f64 = StandardNormal.sample(rng);
        return wrap_angle(mu + e / kappa.sqrt());
    }
    let tau = 1.0 + (1.0 + 4.0 * kappa * kappa).sqrt();
    let rho = (tau - (2.0 * tau).sqrt()) / (2.0 * kappa);
    let s = (1.0 + rho * rho) / (2.0 * rho);
    loop {
        let z = (PI * rng.random::<f64>()).cos();
        let w = (1.0 + s * z) / (s + z);
        let y = kappa * (s - w);
        let v: f64 = rng.random();
        if y * (2.0 - y) - v >= 0.0 || (y / v).ln() + 1.0 - y >= 0.0 {
            let theta = w.clamp(-1.0, 1.0).acos();
            let theta = if rng.random::<f64>() < 0.5 {
                -theta
            } else {
                theta
            };
            return wrap_angle(mu + theta);
        }
    }
}

/// ln of the base density of one coordinate v given (m, ℓ): N(m, e^{ℓ}), or von Mises with
/// log κ = −ℓ for a periodic coordinate. Returns the value and its derivatives by m, ℓ and v.
fn base_density(v: f64, m: f64, l: f64, periodic: bool) -> (f64, f64, f64, f64) {
    if periodic {
        let (lp, dmu, dc) = von_mises(v, m, -l);
        (lp, dmu, -dc, -dmu)
    } else {
        let (lp, dm, dl) = gaussian(v, m, l);
        (lp, dm, dl, -dm)
    }
}

/// A draw from the base density of one coordinate with its log-density.
fn base_draw(m: f64, l: f64, periodic: bool, rng: &mut ChainRng) -> (f64, f64) {
    let v = if periodic {
        sample_von_mises(m, (-l).exp(), rng)
    } else {
        let e: f64 = StandardNormal.sample(rng);
        m + (0.5 * l).exp() * e
    };
    (v, base_density(v, m, l, periodic).0)
}

impl Decoder {
    /// Registers `decoder.*` (base network) and `decoder.made.*` in `layout`.
    ///
    /// # Panics
    /// If `spec.groups` is neither empty nor one degree per coordinate, or the flow's spline
    /// shape is invalid (configurations are validated before).
    pub fn new(
        layout: &mut ParamLayout,
        dim: usize,
        latent: usize,
        spec: &DecoderSpec,
        periodic: &[bool],
    ) -> Self {
        let kind = spec.kind;
        let out = if kind == DecoderKind::Mse {
            dim
        } else {
            2 * dim
        };
        let mut widths = vec![latent];
        widths.extend_from_slice(&spec.hidden);
        widths.push(out);
        let net = Mlp::new(
            layout,
            "decoder",
            &widths,
            Activation::Tanh,
            Activation::Identity,
        );
        let degrees: Vec<usize> = if spec.groups.is_empty() {
            (0..dim).collect()
        } else {
            assert_eq!(spec.groups.len(), dim, "one group per coordinate");
            spec.groups.clone()
        };
        let spline = SplineParams::new(spec.flow_bins, spec.flow_bound);
        let circle = SplineParams::new(spec.flow_bins, PI);
        let per_site = match kind {
            DecoderKind::Autoregressive => 2,
            DecoderKind::Flow => spline.n_raw(),
            _ => 0,
        };
        let made = (per_site > 0).then(|| {
            let width = spec.hidden.first().copied().unwrap_or(50);
            Made::grouped(
                layout,
                "decoder.made",
                &degrees,
                latent,
                per_site,
                2,
                width,
                Activation::Tanh,
            )
        });
        let mut levels: Vec<usize> = degrees.clone();
        levels.sort_unstable();
        levels.dedup();
        let order = levels
            .iter()
            .map(|&g| (0..dim).filter(|&i| degrees[i] == g).collect())
            .collect();
        Self {
            kind,
            dim,
            latent,
            net,
            made,
            periodic: periodic.to_vec(),
            order,
            spline,
            circle,
        }
    }

    /// The family.
    pub fn kind(&self) -> DecoderKind {
        self.kind
    }

    /// PyTorch-style initialisation; the MADE's masked weights are zero.
    pub fn init<T: Real>(&self, params: &mut [T], rng: &mut ChainRng) {
        self.net.init(params, false, rng);
        if let Some(m) = &self.made {
            m.init(params, rng);
        }
    }

    /// Zeroes the MADE's masked weights in `values` (parameters or their gradients).
    pub fn apply_masks<T: Real>(&self, values: &mut [T]) {
        if let Some(m) = &self.made {
            m.apply_masks(values);
        }
    }

    /// Whether the MADE's masked weights are zero in `params` (checked on loading).
    pub fn respects_masks<T: Real>(&self, params: &[T]) -> bool {
        self.made.as_ref().is_none_or(|m| m.respects_masks(params))
    }

    /// Multiply–adds per row of one density evaluation.
    pub fn macs_per_row(&self) -> usize {
        self.net.macs_per_row() + self.made.as_ref().map_or(0, |m| m.macs_per_row())
    }

    /// The base network's means and log-variances `[rows, d]` each (log-variance 0 for `mse`).
    pub fn base<T: Real>(&self, params: &[T], z: &[T], rows: usize) -> (Vec<f64>, Vec<f64>) {
        let d = self.dim;
        let mut cache = MlpCache::default();
        let out = self.net.forward(params, z, rows, &mut cache);
        let w = out.len() / rows.max(1);
        let mut mean = Vec::with_capacity(rows * d);
        let mut log_var = Vec::with_capacity(rows * d);
        for row in out.chunks_exact(w) {
            mean.extend(row[..d].iter().map(|v| v.as_f64()));
            if self.kind == DecoderKind::Mse {
                log_var.extend(std::iter::repeat_n(0.0, d));
            } else {
                log_var.extend(row[d..].iter().map(|v| v.as_f64()));
            }
        }
        (mean, log_var)
    }

    /// The MADE's outputs `[rows, per_site · d]` for x `[rows, d]` and z `[rows, k]` (periodic
    /// inputs wrapped onto [−π, π)), with its input kept in `cache.input`.
    fn made_forward<T: Real>(
        &self,
        made: &Made,
        params: &[T],
        x: &[T],
        z: &[T],
        rows: usize,
        cache: &mut DecoderCache<T>,
    ) -> Vec<f64> {
        let (d, k) = (self.dim, self.latent);
        cache.input.clear();
        for r in 0..rows {
            for (i, &v) in x[r * d..(r + 1) * d].iter().enumerate() {
                cache.input.push(if self.periodic[i] {
                    T::of(wrap_angle(v.as_f64()))
                } else {
                    v
                });
            }
            cache.input.extend_from_slice(&z[r * k..(r + 1) * k]);
        }
        made.forward(params, &cache.input, rows, &mut cache.made)
            .iter()
            .map(|v| v.as_f64())
            .collect()
    }

    /// The spline of coordinate i and the value it acts on (periodic ones wrapped).
    fn spline_of(&self, i: usize, v: f64) -> (&SplineParams, f64) {
        if self.periodic[i] {
            (&self.circle, wrap_angle(v))
        } else {
            (&self.spline, v)
        }
    }

    /// ln p(x|z) of each row of x `[rows, d]` given z `[rows, k]`.
    ///
    /// With `grads = Some((grads, weight))` the loss is taken to be −weight · Σ_rows ln p (the
    /// training loss, with the paper's plain Gaussian for periodic coordinates of `mse` and
    /// `cond-indep`): parameter gradients are added to `grads` and dL/dz `[rows, k]` is written
    /// to `dz`. Without, periodic coordinates of `mse` and `cond-indep` use the wrapped normal,
    /// the exact density of their draws on the circle.
    #[allow(clippy::too_many_arguments)]
    pub fn log_likelihood<T: Real>(
        &self,
        params: &[T],
        x: &[T],
        z: &[T],
        rows: usize,
        grads: Option<(&mut [T], f64)>,
        dz: &mut Vec<T>,
        cache: &mut DecoderCache<T>,
    ) -> Vec<f64> {
        let (d, k) = (self.dim, self.latent);
        let training = grads.is_some();
        let weight = grads.as_ref().map_or(0.0, |g| g.1);
        let out: Vec<f64> = self
            .net
            .forward(params, z, rows, &mut cache.net)
            .iter()
            .map(|v| v.as_f64())
            .collect();
        let w = out.len() / rows.max(1);
        let extra = match &self.made {
            Some(m) => self.made_forward(m, params, x, z, rows, cache),
            None => Vec::new(),
        };
        let pm = extra.len() / rows.max(1);
        cache.d_net.clear();
        cache.d_net.resize(rows * w, T::zero());
        cache.d_made.clear();
        cache.d_made.resize(rows * pm, T::zero());
        let n_raw = self.spline.n_raw();
        cache.raw.resize(n_raw, 0.0);
        cache.g_raw.resize(n_raw, 0.0);
        let mut log_p = vec![0.0; rows];
        for r in 0..rows {
            for i in 0..d {
                let xi = x[r * d + i].as_f64();
                let m = out[r * w + i];
                let periodic = self.periodic[i];
                let (lp, dm, dl) = match self.kind {
                    DecoderKind::Mse if periodic && !training => {
                        (wrapped_gaussian(xi, m, 0.0), 0.0, 0.0)
                    }
                    DecoderKind::Mse => {
                        let (lp, dm) = gaussian_unit(xi, m);
                        (lp, dm, 0.0)
                    }
                    DecoderKind::CondIndep if periodic && !training => {
                        (wrapped_gaussian(xi, m, out[r * w + d + i]), 0.0, 0.0)
                    }
                    DecoderKind::CondIndep => gaussian(xi, m, out[r * w + d + i]),
                    DecoderKind::Autoregressive => {
                        let (sm, sl) = (extra[r * pm + i], extra[r * pm + d + i]);
                        let l = out[r * w + d + i] + sl;
                        let (lp, dm, dl, _) = base_density(xi, m + sm, l, periodic);
                        // Base and shift enter as sums: the same gradient for both.
                        cache.d_made[r * pm + i] = T::of(-weight * dm);
                        cache.d_made[r * pm + d + i] = T::of(-weight * dl);
                        (lp, dm, dl)
                    }
                    DecoderKind::Flow => {
                        // Spline parameter j of coordinate i is MADE output j·d + i.
                        for (j, raw) in cache.raw.iter_mut().enumerate() {
                            *raw = extra[r * pm + j * d + i];
                        }
                        let (sp, v) = self.spline_of(i, xi);
                        let (u, ld) = rq_spline(&cache.raw, v, Direction::Inverse, sp);
                        let l = out[r * w + d + i];
                        let (lb, dm, dl, du) = base_density(u, m, l, periodic);
                        if training {
                            cache.g_raw.fill(0.0);
                            rq_spline_backward(
                                &cache.raw,
                                v,
                                Direction::Inverse,
                                sp,
                                -weight * du,
                                -weight,
                                &mut cache.g_raw,
                            );
                            for (j, g) in cache.g_raw.iter().enumerate() {
                                cache.d_made[r * pm + j * d + i] = T::of(*g);
                            }
                        }
                        (lb + ld, dm, dl)
                    }
                };
                log_p[r] += lp;
                if training {
                    cache.d_net[r * w + i] = T::of(-weight * dm);
                    if self.kind != DecoderKind::Mse {
                        cache.d_net[r * w + d + i] = T::of(-weight * dl);
                    }
                }
            }
        }
        let Some((grads, _)) = grads else {
            return log_p;
        };
        self.net
            .backward(params, grads, z, &mut cache.net, &mut cache.d_net, Some(dz));
        if let Some(m) = &self.made {
            m.backward_with_input(
                params,
                grads,
                &cache.input,
                &mut cache.made,
                &mut cache.d_made,
                &mut cache.d_input,
            );
            // The MADE's input gradient is [dL/dx, dL/dz] per row; z's part joins the base's.
            for r in 0..rows {
                for j in 0..k {
                    dz[r * k + j] += cache.d_input[r * (d + k) + d + j];
                }
            }
        }
        log_p
    }

    /// Draws x ~ p(x|z) for each row of `z` `[rows, k]`, group by group for the autoregressive
    /// decoders; returns x `[rows, d]` and ln p(x|z) `[rows]` of the draw.
    pub fn sample<T: Real>(
        &self,
        params: &[T],
        z: &[T],
        rows: usize,
        rng: &mut ChainRng,
    ) -> (Vec<f64>, Vec<f64>) {
        let d = self.dim;
        let (mean, log_var) = self.base(params, z, rows);
        let mut x = vec![0.0; rows * d];
        let mut log_p = vec![0.0; rows];
        let Some(made) = &self.made else {
            for (j, xj) in x.iter_mut().enumerate() {
                let (m, l) = (mean[j], log_var[j]);
                let e: f64 = StandardNormal.sample(rng);
                let v = m + (0.5 * l).exp() * e;
                *xj = if self.periodic[j % d] {
                    let v = wrap_angle(v);
                    log_p[j / d] += wrapped_gaussian(v, m, l);
                    v
                } else {
                    log_p[j / d] += gaussian(v, m, l).0;
                    v
                };
            }
            return (x, log_p);
        };
        let mut xt = vec![T::zero(); rows * d];
        let mut cache = DecoderCache::default();
        let mut raw = vec![0.0; self.spline.n_raw()];
        for group in &self.order {
            let extra = self.made_forward(made, params, &xt, z, rows, &mut cache);
            let pm = extra.len() / rows.max(1);
            for r in 0..rows {
                for &i in group {
                    let (m, l) = (mean[r * d + i], log_var[r * d + i]);
                    let periodic = self.periodic[i];
                    let (v, lp) = match self.kind {
                        DecoderKind::Autoregressive => base_draw(
                            m + extra[r * pm + i],
                            l + extra[r * pm + d + i],
                            periodic,
                            rng,
                        ),
                        _ => {
                            for (j, rw) in raw.iter_mut().enumerate() {
                                *rw = extra[r * pm + j * d + i];
                            }
                            let (u, lb) = base_draw(m, l, periodic, rng);
                            let (sp, u) = self.spline_of(i, u);
                            let (v, ld) = rq_spline(&raw, u, Direction::Forward, sp);
                            (v, lb - ld)
                        }
                    };
                    x[r * d + i] = v;
                    xt[r * d + i] = T::of(v);
                    log_p[r] += lp;
                }
            }
        }
        (x, log_p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vae::likelihood::{LN_2PI, bessel_ratio};
    use boltzflow_core::RandomStreams;

    #[test]
    fn von_mises_draws_have_the_exact_circular_moments() {
        let mut rng = RandomStreams::new(3).stream("vm");
        for (mu, kappa) in [(0.5, 0.3), (-2.5, 4.0), (3.0, 200.0), (1.0, 1e7)] {
            let n = 200_000;
            let (mut c, mut s) = (0.0, 0.0);
            for _ in 0..n {
                let t = sample_von_mises(mu, kappa, &mut rng);
                assert!((-PI..PI).contains(&t));
                c += (t - mu).cos();
                s += (t - mu).sin();
            }
            // E cos(θ − μ) = I₁(κ)/I₀(κ), E sin(θ − μ) = 0; s.e. ≤ 1/√n.
            let tol = 5.0 / (n as f64).sqrt();
            let r = bessel_ratio(kappa);
            assert!(
                (c / n as f64 - r).abs() < tol.max(1e-6),
                "κ={kappa}: {} vs {r}",
                c / n as f64
            );
            assert!((s / n as f64).abs() < tol, "κ={kappa}");
        }
    }

    #[test]
    fn the_wrapped_normal_integrates_to_one_and_equals_the_normal_when_narrow() {
        for (mu, lv) in [(0.4, -1.0), (3.0, 1.0), (-1.0, 4.0)] {
            let n = 4000;
            let h = 2.0 * PI / n as f64;
            let total: f64 = (0..n)
                .map(|i| wrapped_gaussian(-PI + (i as f64 + 0.5) * h, mu, lv).exp() * h)
                .sum();
            assert!((total - 1.0).abs() < 1e-10, "∫ = {total}");
        }
        let narrow = wrapped_gaussian(0.3, 0.2, -6.0);
        let plain = -0.5 * 0.01 * 6f64.exp() + 3.0 - 0.5 * LN_2PI;
        assert!((narrow - plain).abs() < 1e-12);
    }
}
