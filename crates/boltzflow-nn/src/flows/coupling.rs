//! Coupling layers (Dinh et al. 2015, 2017; Durkan et al. 2019): the coordinates are split
//! into a conditioning set A, passed through unchanged, and a transformed set B, each of whose
//! coordinates goes through an invertible elementwise map whose parameters an MLP computes
//! from the A coordinates. Periodic coordinates (torsions) of A enter the conditioner as
//! (sin, cos), so it sees the circle, not the cut at ±π.

use boltzflow_core::ChainRng;

use super::spline::{SharedSpline, SplineParams, SplineRecords, spline_batch};
use super::{Direction, FlowLayer, LayerCache, LocalConditioner};
use crate::Real;
use crate::linear::Activation;
use crate::mlp::Mlp;
use crate::params::ParamLayout;

/// The elementwise map of a coupling layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transformer {
    /// NICE: x_B = z_B + t(z_A); volume preserving.
    Additive,
    /// RealNVP: x_B = z_B·e^{s(z_A)} + t(z_A) with the log-scale bounded as
    /// s = c·tanh(ŝ/c), c = `scale_bound` (the paper's code uses a tanh scale network).
    Affine {
        /// Largest |log-scale| one layer applies.
        scale_bound: f64,
    },
    /// Rational-quadratic spline with linear tails.
    Spline(SplineParams),
}

impl Transformer {
    /// Conditioner outputs per transformed coordinate.
    pub fn n_params(&self) -> usize {
        match self {
            Self::Additive => 1,
            Self::Affine { .. } => 2,
            Self::Spline(sp) => sp.n_raw(),
        }
    }
}

/// A coupling layer over rows of width `dim`.
#[derive(Debug, Clone)]
pub struct Coupling {
    dim: usize,
    cond: Vec<usize>,
    /// Per conditioning coordinate: enters as (sin, cos).
    cond_periodic: Vec<bool>,
    trans: Vec<usize>,
    mlp: Mlp,
    kind: Transformer,
    /// A per-particle conditioner added to the MLP's output ([`Coupling::with_local`]).
    local: Option<LocalConditioner>,
}

impl Coupling {
    /// With nothing to condition on, every row's conditioner output is the same: the splines of
    /// the transformed coordinates, built once from the first row (empty otherwise, and the
    /// spline of each row is looked up per value).
    fn shared_splines<T: Real>(
        &self,
        h: &[T],
        rows: usize,
        sp: &SplineParams,
    ) -> Vec<SharedSpline> {
        if !self.cond.is_empty() || rows == 0 {
            return Vec::new();
        }
        let np = sp.n_raw();
        (0..self.trans.len())
            .map(|j| {
                let raw: Vec<f64> = h[j * np..(j + 1) * np].iter().map(|v| v.as_f64()).collect();
                SharedSpline::new(&raw, sp)
            })
            .collect()
    }
    /// A coupling that transforms the coordinates `transformed` (the others condition), with
    /// conditioner widths `[n_cond, hidden…, n_trans·n_params]`; the conditioner's last layer
    /// starts at zero so the new layer is the identity.
    ///
    /// If `transformed` covers every coordinate (as in 1D), the conditioner's input is the
    /// constant 1.
    ///
    /// # Panics
    /// If `transformed` is empty or has an index ≥ `dim`.
    pub fn new(
        layout: &mut ParamLayout,
        prefix: &str,
        dim: usize,
        transformed: &[usize],
        hidden: &[usize],
        activation: Activation,
        kind: Transformer,
    ) -> Self {
        Self::with_periodic(
            layout,
            prefix,
            dim,
            transformed,
            &[],
            hidden,
            activation,
            kind,
        )
    }

    /// As [`Coupling::new`], with the coordinates flagged in `periodic` (`[dim]`, or empty for
    /// none) entering the conditioner as (sin, cos). Transform periodic coordinates with a
    /// circular spline ([`SplineParams::circular`]).
    ///
    /// # Panics
    /// As [`Coupling::new`], and if `periodic` is neither empty nor `[dim]`.
    #[allow(clippy::too_many_arguments)]
    pub fn with_periodic(
        layout: &mut ParamLayout,
        prefix: &str,
        dim: usize,
        transformed: &[usize],
        periodic: &[bool],
        hidden: &[usize],
        activation: Activation,
        kind: Transformer,
    ) -> Self {
        assert!(
            periodic.is_empty() || periodic.len() == dim,
            "periodic flags for {} coordinates in a coupling of dimension {dim}",
            periodic.len()
        );
        let mut is_trans = vec![false; dim];
        for &i in transformed {
            assert!(
                i < dim,
                "coupling index {i} out of range for dimension {dim}"
            );
            is_trans[i] = true;
        }
        let trans: Vec<usize> = (0..dim).filter(|&i| is_trans[i]).collect();
        let cond: Vec<usize> = (0..dim).filter(|&i| !is_trans[i]).collect();
        assert!(
            !trans.is_empty(),
            "a coupling needs a coordinate to transform"
        );
        let cond_periodic: Vec<bool> = cond
            .iter()
            .map(|&c| periodic.get(c).copied().unwrap_or(false))
            .collect();
        let features = cond.len() + cond_periodic.iter().filter(|p| **p).count();
        // With nothing to condition on (a 1D flow), the conditioner sees the constant 1: the
        // transform's parameters are then learned directly (Monroe & Shen's 1D latent prior).
        let mut widths = vec![features.max(1)];
        widths.extend_from_slice(hidden);
        widths.push(trans.len() * kind.n_params());
        let mlp = Mlp::new(
            layout,
            &format!("{prefix}.net"),
            &widths,
            activation,
            Activation::Identity,
        );
        Self {
            dim,
            cond,
            cond_periodic,
            trans,
            mlp,
            kind,
            local: None,
        }
    }

    /// Adds a [`LocalConditioner`] (registered as `{prefix}.local.*`): each transformed
    /// particle also gets transformer parameters from a network shared by all particles that
    /// sees its `neighbours` nearest conditioning particles. `sites` `[n_particles · width]`
    /// are the particles' reference positions.
    ///
    /// # Panics
    /// If the coupling has periodic coordinates or splits a particle between its halves.
    #[allow(clippy::too_many_arguments)]
    #[must_use]
    pub fn with_local(
        mut self,
        layout: &mut ParamLayout,
        prefix: &str,
        sites: &[f64],
        width: usize,
        neighbours: usize,
        hidden: &[usize],
        activation: Activation,
    ) -> Self {
        assert!(
            !self.cond_periodic.iter().any(|p| *p),
            "a local conditioner acts on Cartesian particles, not torsions"
        );
        self.local = Some(LocalConditioner::new(
            layout,
            prefix,
            sites,
            width,
            &self.trans,
            &self.cond,
            neighbours,
            hidden,
            activation,
            self.kind.n_params(),
        ));
        self
    }

    /// Conditioner input features per row: one per conditioning coordinate, two (sin, cos) per
    /// periodic one; at least 1 (the constant input).
    fn n_features(&self) -> usize {
        (self.cond.len() + self.cond_periodic.iter().filter(|p| **p).count()).max(1)
    }

    /// Multiply–adds per row of the conditioner.
    pub fn macs_per_row(&self) -> usize {
        self.mlp.macs_per_row()
            + self
                .local
                .as_ref()
                .map_or(0, LocalConditioner::macs_per_row)
    }

    fn gather_cond<T: Real>(&self, input: &[T], rows: usize, cond: &mut Vec<T>) {
        if self.cond.is_empty() {
            cond.clear();
            cond.resize(rows, T::one());
            return;
        }
        let nf = self.n_features();
        cond.resize(rows * nf, T::zero());
        for (row, c) in input.chunks_exact(self.dim).zip(cond.chunks_exact_mut(nf)) {
            let mut f = 0;
            for (&src, &periodic) in self.cond.iter().zip(&self.cond_periodic) {
                if periodic {
                    c[f] = row[src].sin();
                    c[f + 1] = row[src].cos();
                    f += 2;
                } else {
                    c[f] = row[src];
                    f += 1;
                }
            }
        }
    }
}

impl<T: Real> FlowLayer<T> for Coupling {
    fn dim(&self) -> usize {
        self.dim
    }

    fn init(&self, params: &mut [T], rng: &mut ChainRng) {
        self.mlp.init(params, true, rng);
        if let Some(l) = &self.local {
            l.init(params, rng);
        }
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
        self.gather_cond(input, rows, &mut cache.cond);
        let global = self.mlp.forward(params, &cache.cond, rows, &mut cache.mlp);
        let h: &[T] = match &self.local {
            Some(l) => {
                l.forward(params, input, rows, self.dim, global, &mut cache.local);
                &cache.local.h
            }
            None => global,
        };
        output.copy_from_slice(input);
        let nt = self.trans.len();
        let fwd = dir == Direction::Forward;
        match self.kind {
            Transformer::Additive => {
                for (out, hr) in output.chunks_exact_mut(self.dim).zip(h.chunks_exact(nt)) {
                    for (j, &i) in self.trans.iter().enumerate() {
                        out[i] = if fwd { out[i] + hr[j] } else { out[i] - hr[j] };
                    }
                }
            }
            Transformer::Affine { scale_bound } => {
                // cache.aux = [log-scales s | factors e^{±s}] `[rows, nt]` each, both kept
                // for the backward pass; tanh and exp run over whole slices (vectorised).
                let c = T::of(scale_bound);
                let n = rows * nt;
                cache.aux.resize(2 * n, T::zero());
                let (s_all, e_all) = cache.aux.split_at_mut(n);
                let inv_c = T::one() / c;
                for (s_row, hr) in s_all.chunks_exact_mut(nt).zip(h.chunks_exact(2 * nt)) {
                    for (s, &v) in s_row.iter_mut().zip(&hr[..nt]) {
                        *s = v * inv_c;
                    }
                }
                T::tanh_slice(s_all);
                for (s, e) in s_all.iter_mut().zip(e_all.iter_mut()) {
                    *s *= c;
                    *e = if fwd { *s } else { -*s };
                }
                T::exp_slice(e_all);
                for ((((out, hr), s_row), e_row), ld) in output
                    .chunks_exact_mut(self.dim)
                    .zip(h.chunks_exact(2 * nt))
                    .zip(s_all.chunks_exact(nt))
                    .zip(e_all.chunks_exact(nt))
                    .zip(log_det.iter_mut())
                {
                    let mut sum = T::zero();
                    for (j, &i) in self.trans.iter().enumerate() {
                        sum += s_row[j];
                        let t = hr[nt + j];
                        out[i] = if fwd {
                            out[i] * e_row[j] + t
                        } else {
                            (out[i] - t) * e_row[j]
                        };
                    }
                    *ld += if fwd { sum } else { -sum };
                }
            }
            Transformer::Spline(sp) if !self.cond.is_empty() => {
                // Element e = row·nt + j has its raw parameters at h[e·np..(e + 1)·np].
                let mut vals: Vec<f64> = output
                    .chunks_exact(self.dim)
                    .flat_map(|out| self.trans.iter().map(|&i| out[i].as_f64()))
                    .collect();
                let mut lds = vec![0.0; vals.len()];
                spline_batch(h, &mut vals, &mut lds, dir, &sp, &mut cache.aux64);
                for (((out, v), l), ld) in output
                    .chunks_exact_mut(self.dim)
                    .zip(vals.chunks_exact(nt))
                    .zip(lds.chunks_exact(nt))
                    .zip(log_det.iter_mut())
                {
                    for (&i, &y) in self.trans.iter().zip(v) {
                        out[i] = T::of(y);
                    }
                    *ld += T::of(l.iter().sum::<f64>());
                }
            }
            Transformer::Spline(sp) => {
                let mut shared = self.shared_splines(h, rows, &sp);
                for (out, ld) in output.chunks_exact_mut(self.dim).zip(log_det.iter_mut()) {
                    let mut sum = 0.0;
                    for (s, &i) in shared.iter_mut().zip(&self.trans) {
                        let (y, l) = s.apply(out[i].as_f64(), dir);
                        out[i] = T::of(y);
                        sum += l;
                    }
                    *ld += T::of(sum);
                }
            }
        }
    }

    fn backward(
        &self,
        params: &[T],
        grads: &mut [T],
        input: &[T],
        output: &[T],
        grad: &mut [T],
        grad_log_det: &[T],
        rows: usize,
        dir: Direction,
        cache: &mut LayerCache<T>,
    ) {
        let nt = self.trans.len();
        let np = self.kind.n_params();
        let fwd = dir == Direction::Forward;
        let mut gh = std::mem::take(&mut cache.grad_h);
        gh.resize(rows * nt * np, T::zero());
        let h = if self.local.is_some() {
            &cache.local.h
        } else {
            cache.mlp.output()
        };
        match self.kind {
            Transformer::Additive => {
                for (g, ghr) in grad.chunks_exact(self.dim).zip(gh.chunks_exact_mut(nt)) {
                    for (j, &i) in self.trans.iter().enumerate() {
                        ghr[j] = if fwd { g[i] } else { -g[i] };
                    }
                }
            }
            Transformer::Affine { scale_bound } => {
                let c = T::of(scale_bound);
                let (s_all, e_all) = cache.aux.split_at(rows * nt);
                for ((((g, ghr), (s_row, e_row)), (inp, out)), &gl) in grad
                    .chunks_exact_mut(self.dim)
                    .zip(gh.chunks_exact_mut(2 * nt))
                    .zip(s_all.chunks_exact(nt).zip(e_all.chunks_exact(nt)))
                    .zip(
                        input
                            .chunks_exact(self.dim)
                            .zip(output.chunks_exact(self.dim)),
                    )
                    .zip(grad_log_det)
                {
                    for (j, &i) in self.trans.iter().enumerate() {
                        let (s, e) = (s_row[j], e_row[j]);
                        let (gt, gs) = if fwd {
                            // out = in·e^s + t, log-det +s.
                            let gs = g[i] * inp[i] * e + gl;
                            let gt = g[i];
                            g[i] *= e;
                            (gt, gs)
                        } else {
                            // out = (in − t)·e^{−s}, log-det −s.
                            let gs = -g[i] * out[i] - gl;
                            let gt = -g[i] * e;
                            g[i] *= e;
                            (gt, gs)
                        };
                        let r = s / c;
                        ghr[j] = gs * (T::one() - r * r);
                        ghr[nt + j] = gt;
                    }
                }
            }
            Transformer::Spline(sp) => {
                let mut g_raw = vec![0.0; np];
                // Rows with a conditioner input use the knots their forward pass kept.
                let mut shared = self.shared_splines(h, rows, &sp);
                let records = SplineRecords::new(&cache.aux64, &sp);
                for (r, ((g, ghr), (inp, &gl))) in grad
                    .chunks_exact_mut(self.dim)
                    .zip(gh.chunks_exact_mut(nt * np))
                    .zip(input.chunks_exact(self.dim).zip(grad_log_det))
                    .enumerate()
                {
                    for (j, &i) in self.trans.iter().enumerate() {
                        g_raw.fill(0.0);
                        let (v, go, gld) = (inp[i].as_f64(), g[i].as_f64(), gl.as_f64());
                        let gi = if let Some(s) = shared.get_mut(j) {
                            s.backward(v, dir, go, gld, &mut g_raw)
                        } else {
                            records.backward(r * nt + j, dir, go, gld, &mut g_raw)
                        };
                        g[i] = T::of(gi);
                        for (d, &v) in ghr[j * np..(j + 1) * np].iter_mut().zip(&g_raw) {
                            *d = T::of(v);
                        }
                    }
                }
            }
        }
        if let Some(l) = &self.local {
            l.backward(params, grads, &gh, grad, rows, self.dim, &mut cache.local);
        }
        let mut gc = std::mem::take(&mut cache.grad_cond);
        let constant_input = self.cond.is_empty();
        self.mlp.backward(
            params,
            grads,
            &cache.cond,
            &mut cache.mlp,
            &mut gh,
            (!constant_input).then_some(&mut gc),
        );
        let nf = self.n_features();
        for ((g, gcr), inp) in grad
            .chunks_exact_mut(self.dim)
            .zip(gc.chunks_exact(nf))
            .zip(input.chunks_exact(self.dim))
        {
            let mut f = 0;
            for (&i, &periodic) in self.cond.iter().zip(&self.cond_periodic) {
                if periodic {
                    // d/dθ of (sin θ, cos θ) is (cos θ, −sin θ).
                    g[i] += gcr[f] * inp[i].cos() - gcr[f + 1] * inp[i].sin();
                    f += 2;
                } else {
                    g[i] += gcr[f];
                    f += 1;
                }
            }
        }
        cache.grad_h = gh;
        cache.grad_cond = gc;
    }
}
