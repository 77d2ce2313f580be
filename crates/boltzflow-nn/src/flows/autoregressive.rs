//! A masked autoregressive spline layer (MAF: Papamakarios, Pavlakou & Murray, NeurIPS 2017,
//! with the rational-quadratic splines of Durkan et al. 2019, as in FAB's alanine-dipeptide
//! flows).
//!
//! The layer transforms an ordered set of coordinates t₀, t₁, … (circular splines for periodic
//! ones, bounded splines with identity tails for the others), each with spline parameters that
//! a conditional MADE computes from the transformed coordinates before it and from all the
//! coordinates the layer leaves alone (the context; periodic ones enter as sin/cos, and so do
//! periodic transformed ones, with both features at the variable's degree). The Jacobian is
//! triangular, so log|det| is the sum of the splines' log-derivatives.
//!
//! Costs: density evaluation ([`Direction::Inverse`], x → z) is one MADE pass; generation
//! ([`Direction::Forward`], z → x) is sequential, one pass per transformed coordinate plus one,
//! and its backward pass solves the triangular chain in reverse (one MADE backward pass per
//! coordinate plus one). Use it over few coordinates (a molecule's free torsions) or where
//! density evaluation dominates.

use boltzflow_core::ChainRng;

use super::spline::{SplineParams, rq_spline, rq_spline_backward};
use super::{Direction, FlowLayer, LayerCache};
use crate::linear::Activation;
use crate::made::Made;
use crate::params::ParamLayout;
use crate::real::Real;

/// The autoregressive spline layer; see the module documentation.
#[derive(Debug, Clone)]
pub struct AutoregressiveSpline {
    dim: usize,
    /// The transformed coordinates, in autoregressive order.
    trans: Vec<usize>,
    trans_periodic: Vec<bool>,
    /// Per transformed coordinate, its first MADE input column (its output block offset).
    first_col: Vec<usize>,
    /// MADE input columns of the transformed coordinates (one, or two for sin/cos).
    n_in: usize,
    /// The context coordinates, and whether each is periodic.
    cond: Vec<usize>,
    cond_periodic: Vec<bool>,
    made: Made,
    /// Splines of the periodic (circular) and the other transformed coordinates.
    circular: SplineParams,
    bounded: SplineParams,
    /// Raw numbers per coordinate in the MADE's output (the larger of the two splines').
    per_site: usize,
}

impl AutoregressiveSpline {
    /// The layer over `dim` coordinates transforming `transformed` in that order (periodic as
    /// flagged in `periodic`, empty for none), with `bins` spline bins, bound `bound` for the
    /// non-periodic splines, and a MADE of `hidden.len()` masked hidden layers of width
    /// `hidden[0]`.
    ///
    /// # Panics
    /// If `transformed` is empty, has an index ≥ `dim` or a repeat, `hidden` is empty, or
    /// there is one transformed coordinate and no context.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        layout: &mut ParamLayout,
        prefix: &str,
        dim: usize,
        transformed: &[usize],
        periodic: &[bool],
        hidden: &[usize],
        activation: Activation,
        bins: usize,
        bound: f64,
    ) -> Self {
        let is_periodic = |i: usize| periodic.get(i).copied().unwrap_or(false);
        let mut seen = vec![false; dim];
        for &i in transformed {
            assert!(
                i < dim && !seen[i],
                "transformed index {i} out of range or repeated"
            );
            seen[i] = true;
        }
        assert!(!transformed.is_empty() && !hidden.is_empty());
        let cond: Vec<usize> = (0..dim).filter(|&i| !seen[i]).collect();
        let cond_periodic: Vec<bool> = cond.iter().map(|&i| is_periodic(i)).collect();
        let trans_periodic: Vec<bool> = transformed.iter().map(|&i| is_periodic(i)).collect();
        let mut degrees = Vec::new();
        let mut first_col = Vec::new();
        for (k, &p) in trans_periodic.iter().enumerate() {
            first_col.push(degrees.len());
            degrees.extend(std::iter::repeat_n(k, if p { 2 } else { 1 }));
        }
        let context = cond.len() + cond_periodic.iter().filter(|p| **p).count();
        let circular = SplineParams::circular(bins);
        let bounded = SplineParams::new(bins, bound);
        let per_site = circular.n_raw().max(bounded.n_raw());
        let made = Made::grouped(
            layout,
            &format!("{prefix}.made"),
            &degrees,
            context,
            per_site,
            hidden.len() + 1,
            hidden[0],
            activation,
        );
        Self {
            dim,
            trans: transformed.to_vec(),
            trans_periodic,
            first_col,
            n_in: degrees.len(),
            cond,
            cond_periodic,
            made,
            circular,
            bounded,
            per_site,
        }
    }

    /// Zeroes the masked MADE weights of `values` (parameters or gradients): parameters that
    /// did not come from [`FlowLayer::init`] must be masked before use.
    pub fn apply_masks<T: Real>(&self, values: &mut [T]) {
        self.made.apply_masks(values);
    }

    fn spline(&self, k: usize) -> &SplineParams {
        if self.trans_periodic[k] {
            &self.circular
        } else {
            &self.bounded
        }
    }

    /// MADE input columns per row: the transformed coordinates' features, then the context's.
    fn n_features(&self) -> usize {
        self.n_in + self.cond.len() + self.cond_periodic.iter().filter(|p| **p).count()
    }

    /// The MADE input of rows `x` `[rows, dim]` into `feat`.
    fn features<T: Real>(&self, x: &[T], rows: usize, feat: &mut Vec<T>) {
        let nf = self.n_features();
        feat.resize(rows * nf, T::zero());
        for (row, f) in x.chunks_exact(self.dim).zip(feat.chunks_exact_mut(nf)) {
            let mut c = 0;
            let coords = self
                .trans
                .iter()
                .zip(&self.trans_periodic)
                .chain(self.cond.iter().zip(&self.cond_periodic));
            for (&i, &p) in coords {
                if p {
                    f[c] = row[i].sin();
                    f[c + 1] = row[i].cos();
                    c += 2;
                } else {
                    f[c] = row[i];
                    c += 1;
                }
            }
        }
    }

    /// The raw spline numbers of transformed coordinate k from one row of MADE output.
    fn raw_of<T: Real>(&self, h_row: &[T], k: usize, raw: &mut [f64]) {
        let n_out = self.n_in;
        for (j, r) in raw.iter_mut().enumerate() {
            *r = h_row[j * n_out + self.first_col[k]].as_f64();
        }
    }

    /// Adds the MADE's input gradient `dfeat` `[rows, n_features]` to `grad` `[rows, dim]`
    /// through the features' chain rule (d/dθ of (sin θ, cos θ) is (cos θ, −sin θ)), for the
    /// transformed coordinates before position `trans_before` and, with `context`, for the
    /// context coordinates.
    fn add_feature_grads<T: Real>(
        &self,
        x: &[T],
        dfeat: &[T],
        grad: &mut [T],
        trans_before: usize,
        context: bool,
    ) {
        let nf = self.n_features();
        for ((g, df), row) in grad
            .chunks_exact_mut(self.dim)
            .zip(dfeat.chunks_exact(nf))
            .zip(x.chunks_exact(self.dim))
        {
            let mut c = 0;
            let coords = self
                .trans
                .iter()
                .zip(&self.trans_periodic)
                .enumerate()
                .map(|(k, (i, p))| (k < trans_before, i, p))
                .chain(
                    self.cond
                        .iter()
                        .zip(&self.cond_periodic)
                        .map(|(i, p)| (context, i, p)),
                );
            for (wanted, &i, &p) in coords {
                if wanted {
                    g[i] += if p {
                        df[c] * row[i].cos() - df[c + 1] * row[i].sin()
                    } else {
                        df[c]
                    };
                }
                c += if p { 2 } else { 1 };
            }
        }
    }
}

impl<T: Real> FlowLayer<T> for AutoregressiveSpline {
    fn dim(&self) -> usize {
        self.dim
    }

    fn init(&self, params: &mut [T], rng: &mut ChainRng) {
        self.made.init_zero_output(params, rng);
    }

    fn mask_params(&self, values: &mut [T]) {
        self.made.apply_masks(values);
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
        output.copy_from_slice(input);
        let mut raw = vec![0.0; self.per_site];
        let m = self.trans.len();
        // Forward: coordinate k's parameters need the final values of those before it.
        let steps: Vec<Option<usize>> = match dir {
            Direction::Inverse => vec![None],
            Direction::Forward => (0..m).map(Some).collect(),
        };
        let mut sums = vec![0.0f64; rows];
        for step in steps {
            self.features(output, rows, &mut cache.cond);
            let h = self.made.forward(params, &cache.cond, rows, &mut cache.mlp);
            let ks: Vec<usize> = step.map_or_else(|| (0..m).collect(), |k| vec![k]);
            for ((out, h_row), sum) in output
                .chunks_exact_mut(self.dim)
                .zip(h.chunks_exact(self.per_site * self.n_in))
                .zip(sums.iter_mut())
            {
                for &k in &ks {
                    let sp = self.spline(k);
                    self.raw_of(h_row, k, &mut raw);
                    let i = self.trans[k];
                    let (y, l) = rq_spline(&raw[..sp.n_raw()], out[i].as_f64(), dir, sp);
                    out[i] = T::of(y);
                    *sum += l;
                }
            }
        }
        if dir == Direction::Forward {
            // The pass the backward uses: the MADE on the final configuration.
            self.features(output, rows, &mut cache.cond);
            self.made.forward(params, &cache.cond, rows, &mut cache.mlp);
        }
        for (ld, s) in log_det.iter_mut().zip(&sums) {
            *ld += T::of(*s);
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
        let m = self.trans.len();
        let n_out = self.per_site * self.n_in;
        let mut raw = vec![0.0; self.per_site];
        let mut g_raw = vec![0.0; self.per_site];
        // dL/d(MADE output) of every coordinate, filled as the splines are differentiated.
        let mut gh_all = vec![T::zero(); rows * n_out];
        let h: Vec<T> = cache.mlp.output().to_vec();
        // The configuration side (MADE input) is the input for Inverse, the output for Forward.
        let x = if dir == Direction::Inverse {
            input
        } else {
            output
        };
        let spline_backward =
            |k: usize, grad: &mut [T], gh_all: &mut [T], raw: &mut [f64], g_raw: &mut [f64]| {
                let sp = self.spline(k);
                let i = self.trans[k];
                for r in 0..rows {
                    let h_row = &h[r * n_out..(r + 1) * n_out];
                    self.raw_of(h_row, k, raw);
                    g_raw.fill(0.0);
                    let v = input[r * self.dim + i].as_f64();
                    let go = grad[r * self.dim + i].as_f64();
                    let gl = grad_log_det[r].as_f64();
                    let gi = rq_spline_backward(
                        &raw[..sp.n_raw()],
                        v,
                        dir,
                        sp,
                        go,
                        gl,
                        &mut g_raw[..sp.n_raw()],
                    );
                    grad[r * self.dim + i] = T::of(gi);
                    for (j, &gv) in g_raw[..sp.n_raw()].iter().enumerate() {
                        gh_all[r * n_out + j * self.n_in + self.first_col[k]] = T::of(gv);
                    }
                }
            };
        let mut dfeat: Vec<T> = Vec::new();
        match dir {
            Direction::Inverse => {
                for k in 0..m {
                    spline_backward(k, grad, &mut gh_all, &mut raw, &mut g_raw);
                }
            }
            Direction::Forward => {
                // x_k = g(z_k; θ_k(x_<k)): dL/dx_k in full (direct, plus through the parameters
                // of every later coordinate) is known once the later ones are done.
                let mut scratch = std::mem::take(&mut cache.aux);
                scratch.resize(grads.len(), T::zero());
                let mut gh_k = vec![T::zero(); rows * n_out];
                for k in (0..m).rev() {
                    spline_backward(k, grad, &mut gh_all, &mut raw, &mut g_raw);
                    if k == 0 {
                        break;
                    }
                    // dL/dθ_k back to x_<k: a MADE backward with only block k, whose parameter
                    // gradients are dropped (the full pass below adds them once).
                    gh_k.fill(T::zero());
                    for r in 0..rows {
                        for j in 0..self.per_site {
                            let c = r * n_out + j * self.n_in + self.first_col[k];
                            gh_k[c] = gh_all[c];
                        }
                    }
                    self.made.backward_with_input(
                        params,
                        &mut scratch,
                        &cache.cond,
                        &mut cache.mlp,
                        &mut gh_k,
                        &mut dfeat,
                    );
                    self.add_feature_grads(x, &dfeat, grad, k, false);
                }
                cache.aux = scratch;
            }
        }
        // Parameter gradients (and the context's) from all coordinates at once.
        self.made.backward_with_input(
            params,
            grads,
            &cache.cond,
            &mut cache.mlp,
            &mut gh_all,
            &mut dfeat,
        );
        match dir {
            // x → z: every coordinate's parameters depend on x; all input gradients count.
            Direction::Inverse => self.add_feature_grads(x, &dfeat, grad, m, true),
            // z → x: the transformed coordinates were done above; the context coordinates pass
            // through unchanged (x_c = z_c), so their MADE gradient adds to dL/dz_c.
            Direction::Forward => self.add_feature_grads(x, &dfeat, grad, 0, true),
        }
    }
}
