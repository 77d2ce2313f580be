//! Monotone rational-quadratic splines with linear tails (Durkan, Bekasov, Murray, Papamakarios,
//! "Neural Spline Flows", NeurIPS 2019), as an elementwise transformer of coupling layers.
//!
//! Each transformed coordinate gets 3K − 1 unconstrained numbers from the conditioner: K bin
//! widths and K bin heights (softmax, with a minimum size), and K − 1 interior knot derivatives
//! (softplus, with a minimum, shifted so that zero gives derivative 1). On [−B, B] the map is
//! the spline, outside it is the identity (the boundary derivatives are 1, so the map is C¹).
//! All-zero parameters give the identity.
//!
//! A *circular* spline (Rezende et al., "Normalizing Flows on Tori and Spheres", ICML 2020) is
//! a diffeomorphism of the circle [−π, π): the same spline on [−π, π] with its two end
//! derivatives equal to each other and learned (one more raw number, 3K in all), so that the
//! map and its derivative match across ±π. Torsions go through circular splines.
//!
//! Gradients: the spline value and its log-derivative are evaluated once in forward-mode dual
//! numbers over the seven local quantities (x, x_k, W, y_k, H, δ_k, δ_{k+1}); the inverse
//! direction's gradients follow from the implicit function theorem at the solved point, and the
//! local gradients are chained back through the cumulative softmax and softplus. Evaluated in
//! f64 whatever the network's type (the cost is per element, small next to the conditioner).

use std::cell::RefCell;
use std::ops::{Add, Div, Mul, Sub};

use super::Direction;

/// Shape of the spline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplineParams {
    /// Number of bins K.
    pub bins: usize,
    /// Half-width B of the spline interval [−B, B].
    pub bound: f64,
    /// Minimum bin width and height, as a fraction of 2B.
    pub min_bin: f64,
    /// Minimum knot derivative.
    pub min_derivative: f64,
    /// A circular spline on [−π, π] (end derivatives equal and learned) instead of one with
    /// identity tails.
    pub circular: bool,
}

impl SplineParams {
    /// K bins on [−B, B] with the usual minima (10⁻³).
    ///
    /// # Panics
    /// Unless 2 ≤ K ≤ [`MAX_BINS`] and B > 0 (configurations are validated before).
    pub fn new(bins: usize, bound: f64) -> Self {
        assert!(
            (2..=MAX_BINS).contains(&bins) && bound > 0.0,
            "spline needs 2..={MAX_BINS} bins and a positive bound"
        );
        Self {
            bins,
            bound,
            min_bin: 1e-3,
            min_derivative: 1e-3,
            circular: false,
        }
    }

    /// A circular spline with K bins on [−π, π] (see the module documentation).
    ///
    /// # Panics
    /// Unless 2 ≤ K ≤ [`MAX_BINS`].
    pub fn circular(bins: usize) -> Self {
        Self {
            circular: true,
            ..Self::new(bins, std::f64::consts::PI)
        }
    }

    /// Unconstrained numbers per transformed coordinate: 3K − 1 (3K for a circular spline,
    /// whose last number is the shared end derivative).
    pub fn n_raw(&self) -> usize {
        3 * self.bins - 1 + usize::from(self.circular)
    }
}

const NV: usize = 7;

#[derive(Debug, Clone, Copy)]
struct Dual {
    v: f64,
    d: [f64; NV],
}

impl Dual {
    fn var(v: f64, i: usize) -> Self {
        let mut d = [0.0; NV];
        d[i] = 1.0;
        Self { v, d }
    }
    fn ln(self) -> Self {
        let inv = 1.0 / self.v;
        Self {
            v: self.v.ln(),
            d: self.d.map(|x| x * inv),
        }
    }
    fn scale(self, c: f64) -> Self {
        Self {
            v: self.v * c,
            d: self.d.map(|x| x * c),
        }
    }
    fn plus(self, c: f64) -> Self {
        Self {
            v: self.v + c,
            d: self.d,
        }
    }
}

impl Add for Dual {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            v: self.v + o.v,
            d: std::array::from_fn(|i| self.d[i] + o.d[i]),
        }
    }
}
impl Sub for Dual {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self {
            v: self.v - o.v,
            d: std::array::from_fn(|i| self.d[i] - o.d[i]),
        }
    }
}
impl Mul for Dual {
    type Output = Self;
    // The product rule: the tangent of a·b is a′b + ab′.
    #[allow(clippy::suspicious_arithmetic_impl)]
    fn mul(self, o: Self) -> Self {
        Self {
            v: self.v * o.v,
            d: std::array::from_fn(|i| self.d[i] * o.v + self.v * o.d[i]),
        }
    }
}
impl Div for Dual {
    type Output = Self;
    // The quotient rule.
    #[allow(clippy::suspicious_arithmetic_impl)]
    fn div(self, o: Self) -> Self {
        let inv = 1.0 / o.v;
        let q = self.v * inv;
        Self {
            v: q,
            d: std::array::from_fn(|i| (self.d[i] - q * o.d[i]) * inv),
        }
    }
}

/// Largest number of bins (knots live on the stack: no allocation per element).
pub const MAX_BINS: usize = 64;

/// Knots of one spline from its raw parameters (the first K + 1 / K entries are used).
struct Knots {
    xs: [f64; MAX_BINS + 1],
    ys: [f64; MAX_BINS + 1],
    ds: [f64; MAX_BINS + 1],
    pw: [f64; MAX_BINS],
    ph: [f64; MAX_BINS],
    k: usize,
    /// [`derivative_shift`] of the spline's minimum derivative.
    shift: f64,
    /// Bit j set: `ds[j]` is computed.
    known: u128,
}

fn softmax_into(raw: &[f64], out: &mut [f64]) {
    let m = raw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut s = 0.0;
    for (o, &r) in out.iter_mut().zip(raw) {
        *o = (r - m).exp();
        s += *o;
    }
    out[..raw.len()].iter_mut().for_each(|p| *p /= s);
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Knot positions −B = t_0 < … < t_K = B from the K normalised bin sizes `p` (each at least
/// `min_bin` of the interval).
fn cumulative_knots(p: &[f64], sp: &SplineParams, out: &mut [f64]) {
    let k = sp.bins;
    let span = 2.0 * sp.bound;
    let a = 1.0 - sp.min_bin * k as f64;
    let mut acc = -sp.bound;
    out[0] = acc;
    for i in 0..k - 1 {
        acc += span * (sp.min_bin + a * p[i]);
        out[i + 1] = acc;
    }
    out[k] = sp.bound;
}

/// The quantities of one bin that the spline on it depends on: x_k, W, y_k, H, δ_k, δ_{k+1}
/// (left knot, width, bottom knot, height, the two knot derivatives).
type Locals = [f64; 6];

impl Knots {
    fn new(raw: &[f64], sp: &SplineParams) -> Self {
        let k = sp.bins;
        debug_assert!(k <= MAX_BINS);
        let mut kn = Self {
            xs: [0.0; MAX_BINS + 1],
            ys: [0.0; MAX_BINS + 1],
            ds: [1.0; MAX_BINS + 1],
            pw: [0.0; MAX_BINS],
            ph: [0.0; MAX_BINS],
            k,
            shift: derivative_shift(sp.min_derivative),
            known: 0,
        };
        softmax_into(&raw[..k], &mut kn.pw);
        softmax_into(&raw[k..2 * k], &mut kn.ph);
        cumulative_knots(&kn.pw, sp, &mut kn.xs);
        cumulative_knots(&kn.ph, sp, &mut kn.ys);
        kn
    }

    /// The quantities a point in bin b needs (after [`Knots::set_bin`]).
    fn locals(&self, b: usize) -> Locals {
        [
            self.xs[b],
            self.xs[b + 1] - self.xs[b],
            self.ys[b],
            self.ys[b + 1] - self.ys[b],
            self.ds[b],
            self.ds[b + 1],
        ]
    }

    /// Fills the knot derivatives δ_b and δ_{b+1} of bin b, the only ones a point in bin b
    /// needs (the other K − 3 softplus evaluations are skipped; the end derivatives are 1, or
    /// for a circular spline both the learned raw[3K − 1]).
    /// Each derivative is computed once per set of knots (`known` marks them), so rows that
    /// share the knots share the softplus evaluations too.
    fn set_bin(&mut self, raw: &[f64], sp: &SplineParams, b: usize) {
        let (k, shift) = (self.k, self.shift);
        for j in [b, b + 1] {
            if self.known & (1u128 << j) != 0 {
                continue;
            }
            self.ds[j] = match derivative_index(j, k, sp) {
                Some(r) => sp.min_derivative + softplus(raw[r] + shift),
                None => 1.0,
            };
            self.known |= 1u128 << j;
        }
    }

    fn bin_of(&self, knots: &[f64], v: f64) -> usize {
        bin_of(&knots[..=self.k], v)
    }
}

/// The bin of `v` among the K + 1 `knots`.
fn bin_of(knots: &[f64], v: f64) -> usize {
    knots[1..knots.len() - 1]
        .iter()
        .take_while(|&&t| t <= v)
        .count()
}

thread_local! {
    /// The last knots built on this thread and the raw parameters they came from: rows that
    /// share their spline parameters (a conditioner with a constant input, as in a 1D flow
    /// prior) reuse them instead of recomputing 2K exponentials per element.
    static LAST_KNOTS: RefCell<Option<Box<CachedKnots>>> = const { RefCell::new(None) };
}

/// The knots of one parameter vector (fixed size: a cache miss allocates nothing).
struct CachedKnots {
    raw: [f64; 3 * MAX_BINS],
    sp: SplineParams,
    knots: Knots,
}

/// Runs `f` on the knots of `raw` (from the per-thread cache when `raw` repeats).
fn with_knots<R>(raw: &[f64], sp: &SplineParams, f: impl FnOnce(&mut Knots) -> R) -> R {
    LAST_KNOTS.with(|cell| {
        let mut slot = cell.borrow_mut();
        let n = sp.n_raw();
        let raw = &raw[..n];
        let entry = slot.get_or_insert_with(|| {
            Box::new(CachedKnots {
                raw: [f64::NAN; 3 * MAX_BINS],
                sp: *sp,
                knots: Knots::new(raw, sp),
            })
        });
        // NaN never compares equal, so a fresh entry is rebuilt below.
        if entry.sp != *sp || entry.raw[..n] != *raw {
            entry.raw[..n].copy_from_slice(raw);
            entry.sp = *sp;
            entry.knots = Knots::new(raw, sp);
        }
        f(&mut entry.knots)
    })
}

/// The raw parameter of knot derivative j of a K-bin spline: interior j (1 ≤ j ≤ K − 1) is
/// raw[2K + j − 1]; the ends are fixed at 1 (`None`), or share raw[3K − 1] when circular.
fn derivative_index(j: usize, k: usize, sp: &SplineParams) -> Option<usize> {
    if j >= 1 && j < k {
        Some(2 * k + j - 1)
    } else {
        sp.circular.then_some(3 * k - 1)
    }
}

/// The shift c in δ = δ_min + softplus(raw + c) that makes raw = 0 give δ = 1.
fn derivative_shift(min_derivative: f64) -> f64 {
    (1.0 - min_derivative).exp_m1().ln()
}

/// Spline value and log-derivative at x in the bin of `loc`, as duals over x and the local
/// quantities.
fn eval_local(x: f64, loc: &Locals) -> (Dual, Dual) {
    let xv = Dual::var(x, 0);
    let [xk, w, yk, h, dk, dk1] = std::array::from_fn(|i| Dual::var(loc[i], i + 1));
    let xi = (xv - xk) / w;
    let s = h / w;
    let one_m = xi.scale(-1.0).plus(1.0);
    let om = xi * one_m;
    let den = s + (dk1 + dk - s.scale(2.0)) * om;
    let g = yk + h * (s * xi * xi + dk * om) / den;
    let inner = dk1 * xi * xi + (s * om).scale(2.0) + dk * one_m * one_m;
    let log_dg = s.ln().scale(2.0) + inner.ln() - den.ln().scale(2.0);
    (g, log_dg)
}

/// Spline value and log-derivative at x in bin k in plain f64 (the forward-only path of
/// [`rq_spline`]; [`eval_local`] carries the derivatives for the backward pass).
fn eval_plain(x: f64, loc: &Locals) -> (f64, f64) {
    let [xk, w, yk, h, dk, dk1] = *loc;
    let xi = (x - xk) / w;
    let s = h / w;
    let om = xi * (1.0 - xi);
    let den = s + (dk1 + dk - 2.0 * s) * om;
    let g = yk + h * (s * xi * xi + dk * om) / den;
    let inner = dk1 * xi * xi + 2.0 * s * om + dk * (1.0 - xi) * (1.0 - xi);
    (g, 2.0 * s.ln() + inner.ln() - 2.0 * den.ln())
}

/// Solves the spline for x given y in bin k (the root of the quadratic in ξ that lies in [0, 1]).
fn solve_bin(y: f64, loc: &Locals) -> f64 {
    let [xk, w, yk, h, dk, dk1] = *loc;
    let s = h / w;
    let dy = y - yk;
    let t = dk1 + dk - 2.0 * s;
    let a = h * (s - dk) + dy * t;
    let b = h * dk - dy * t;
    let c = -s * dy;
    let disc = (b * b - 4.0 * a * c).max(0.0);
    let xi = (2.0 * c) / (-b - disc.sqrt());
    xk + xi.clamp(0.0, 1.0) * w
}

/// Applies the spline with raw parameters `raw` (3K − 1) to `v` in direction `dir`: the
/// forward map sends x to y = g(x), the inverse sends y to x = g⁻¹(y). Returns the output and
/// the log-derivative of the map that ran.
pub fn rq_spline(raw: &[f64], v: f64, dir: Direction, sp: &SplineParams) -> (f64, f64) {
    if !(v > -sp.bound && v < sp.bound) {
        return (v, 0.0);
    }
    with_knots(raw, sp, |kn| spline_apply(kn, raw, v, dir, sp))
}

/// [`rq_spline`] on built knots (`v` inside the interval).
fn spline_apply(
    kn: &mut Knots,
    raw: &[f64],
    v: f64,
    dir: Direction,
    sp: &SplineParams,
) -> (f64, f64) {
    match dir {
        Direction::Forward => {
            let k = kn.bin_of(&kn.xs, v);
            kn.set_bin(raw, sp, k);
            eval_plain(v, &kn.locals(k))
        }
        Direction::Inverse => {
            let k = kn.bin_of(&kn.ys, v);
            kn.set_bin(raw, sp, k);
            let loc = kn.locals(k);
            let x = solve_bin(v, &loc);
            (x, -eval_plain(x, &loc).1)
        }
    }
}

/// One spline applied to many values: the knots are built once, for rows that share their
/// parameters (a coupling whose conditioner sees only a constant, as in a 1D flow prior), with
/// no per-value lookup in the per-thread cache.
pub struct SharedSpline {
    raw: Vec<f64>,
    sp: SplineParams,
    knots: Knots,
}

impl SharedSpline {
    /// The spline of raw parameters `raw` (3K − 1).
    pub fn new(raw: &[f64], sp: &SplineParams) -> Self {
        let raw = raw[..sp.n_raw()].to_vec();
        let knots = Knots::new(&raw, sp);
        Self {
            raw,
            sp: *sp,
            knots,
        }
    }

    /// As [`rq_spline`].
    pub fn apply(&mut self, v: f64, dir: Direction) -> (f64, f64) {
        if !(v > -self.sp.bound && v < self.sp.bound) {
            return (v, 0.0);
        }
        spline_apply(&mut self.knots, &self.raw, v, dir, &self.sp)
    }

    /// As [`rq_spline_backward`].
    pub fn backward(
        &mut self,
        v: f64,
        dir: Direction,
        g_out: f64,
        g_ld: f64,
        g_raw: &mut [f64],
    ) -> f64 {
        if !(v > -self.sp.bound && v < self.sp.bound) {
            return g_out;
        }
        spline_backward(
            &mut self.knots,
            &self.raw,
            v,
            dir,
            &self.sp,
            g_out,
            g_ld,
            g_raw,
        )
    }
}

/// Backward pass of [`rq_spline`] at input `v`: given dL/d(output) `g_out` and dL/d(log-det)
/// `g_ld`, adds dL/d(raw) to `g_raw` and returns dL/d(input).
pub fn rq_spline_backward(
    raw: &[f64],
    v: f64,
    dir: Direction,
    sp: &SplineParams,
    g_out: f64,
    g_ld: f64,
    g_raw: &mut [f64],
) -> f64 {
    if !(v > -sp.bound && v < sp.bound) {
        return g_out;
    }
    with_knots(raw, sp, |kn| {
        spline_backward(kn, raw, v, dir, sp, g_out, g_ld, g_raw)
    })
}

#[allow(clippy::too_many_arguments)]
fn spline_backward(
    kn: &mut Knots,
    raw: &[f64],
    v: f64,
    dir: Direction,
    sp: &SplineParams,
    g_out: f64,
    g_ld: f64,
    g_raw: &mut [f64],
) -> f64 {
    let knots = match dir {
        Direction::Forward => &kn.xs,
        Direction::Inverse => &kn.ys,
    };
    let k = kn.bin_of(knots, v);
    kn.set_bin(raw, sp, k);
    let loc = kn.locals(k);
    let x = match dir {
        Direction::Forward => v,
        Direction::Inverse => solve_bin(v, &loc),
    };
    let (gl, g_in) = local_backward(x, &loc, dir, g_out, g_ld);
    let slopes = [k, k + 1]
        .map(|j| derivative_index(j, sp.bins, sp).map_or(0.0, |r| sigmoid(raw[r] + kn.shift)));
    chain_to_raw(&kn.pw, &kn.ph, k, &gl, slopes, sp, g_raw);
    g_in
}

/// Gradients of one spline element at its spline input x (the solved point in the inverse
/// direction) with respect to the local quantities (indices 1..7 of the result) and to the
/// element's input (the second value), given dL/d(output) and dL/d(log-det).
fn local_backward(x: f64, loc: &Locals, dir: Direction, g_out: f64, g_ld: f64) -> ([f64; NV], f64) {
    let mut gl = [0.0; NV];
    let (g, ld) = eval_local(x, loc);
    let g_in = match dir {
        Direction::Forward => {
            for i in 1..NV {
                gl[i] = g_out * g.d[i] + g_ld * ld.d[i];
            }
            g_out * g.d[0] + g_ld * ld.d[0]
        }
        Direction::Inverse => {
            let gx = g.d[0];
            // x(y, θ): dx/dy = 1/g', dx/dθ = −g_θ/g'. Log-det −ln g'(x(y, θ), θ).
            for i in 1..NV {
                let dx = -g.d[i] / gx;
                gl[i] = g_out * dx + g_ld * (-ld.d[i] - ld.d[0] * dx);
            }
            g_out / gx - g_ld * ld.d[0] / gx
        }
    };
    (gl, g_in)
}

/// Chains local gradients (x_k, W, y_k, H, δ_k, δ_{k+1}) back to the raw parameters, through
/// the normalised bin sizes `pw`, `ph` and the slopes dδ/d(raw) of the bin's two knot
/// derivatives (0 for a fixed one).
fn chain_to_raw(
    pw: &[f64],
    ph: &[f64],
    k: usize,
    gl: &[f64; NV],
    slopes: [f64; 2],
    sp: &SplineParams,
    g_raw: &mut [f64],
) {
    let bins = sp.bins;
    let span = 2.0 * sp.bound;
    let a = 1.0 - sp.min_bin * bins as f64;
    // x_k = −B + 2B Σ_{i<k} w_i and W = 2B w_k (for the last bin too, since Σ w = 1).
    let softmax_back = |p: &[f64], g_pos: f64, g_size: f64, out: &mut [f64]| {
        // dL/dw_i for the normalised widths, then through w = m + a·softmax(raw).
        let gw =
            |i: usize| span * (if i < k { g_pos } else { 0.0 } + if i == k { g_size } else { 0.0 });
        let dot: f64 = (0..bins).map(|i| p[i] * gw(i)).sum();
        for i in 0..bins {
            out[i] += a * p[i] * (gw(i) - dot);
        }
    };
    softmax_back(pw, gl[1], gl[2], &mut g_raw[..bins]);
    softmax_back(ph, gl[3], gl[4], &mut g_raw[bins..2 * bins]);
    for ((j, g), slope) in [(k, gl[5]), (k + 1, gl[6])].into_iter().zip(slopes) {
        if let Some(r) = derivative_index(j, bins, sp) {
            g_raw[r] += g * slope;
        }
    }
}

/// Values per element after the 2K normalised bin sizes in a [`spline_batch`] record: the bin
/// (negative: the value was outside the interval and passed through), the spline input x, the
/// six [`Locals`] and the slopes dδ/d(raw) of the bin's two knot derivatives.
const RECORD_TAIL: usize = 10;

/// Length of the f64 buffer [`spline_batch`] fills for `n` elements.
pub fn spline_batch_len(n: usize, sp: &SplineParams) -> usize {
    n * (2 * sp.bins + RECORD_TAIL)
}

/// Applies n splines at once, element e with raw parameters `raw[e·P..(e+1)·P]`
/// (P = [`SplineParams::n_raw`]) to `values[e]` in place, and writes its log-derivative to
/// `log_derivs[e]`; the same map as [`rq_spline`] element by element.
///
/// The softmax exponentials of all n knot sets go through one vectorised
/// [`boltzflow_core::math::exp_slice`], and each element's bin sizes, bin and local
/// quantities are left in `records` (length [`spline_batch_len`]) so that
/// [`SplineRecords::backward`] rebuilds nothing: the knots of a coupling layer are built once
/// per training step instead of once in each pass.
pub fn spline_batch<T: crate::Real>(
    raw: &[T],
    values: &mut [f64],
    log_derivs: &mut [f64],
    dir: Direction,
    sp: &SplineParams,
    records: &mut Vec<f64>,
) {
    let (k, np, n) = (sp.bins, sp.n_raw(), values.len());
    debug_assert!(raw.len() >= n * np && log_derivs.len() == n);
    records.resize(spline_batch_len(n, sp), 0.0);
    let (probs, tails) = records.split_at_mut(n * 2 * k);
    // Stable softmax numerators of widths and heights: raw − max, then e^· in one pass.
    for (p, r) in probs.chunks_exact_mut(k).zip(
        raw.chunks_exact(np)
            .flat_map(|r| [&r[..k], &r[k..2 * k]])
            .take(2 * n),
    ) {
        let m = r
            .iter()
            .map(|v| v.as_f64())
            .fold(f64::NEG_INFINITY, f64::max);
        for (o, v) in p.iter_mut().zip(r) {
            *o = v.as_f64() - m;
        }
    }
    boltzflow_core::math::exp_slice(probs);
    let shift = derivative_shift(sp.min_derivative);
    let (mut xs, mut ys) = ([0.0; MAX_BINS + 1], [0.0; MAX_BINS + 1]);
    for (e, ((p, tail), r)) in probs
        .chunks_exact_mut(2 * k)
        .zip(tails.chunks_exact_mut(RECORD_TAIL))
        .zip(raw.chunks_exact(np))
        .enumerate()
    {
        let v = values[e];
        if !(v > -sp.bound && v < sp.bound) {
            tail[0] = -1.0;
            log_derivs[e] = 0.0;
            continue;
        }
        for half in p.chunks_exact_mut(k) {
            let inv = 1.0 / half.iter().sum::<f64>();
            half.iter_mut().for_each(|q| *q *= inv);
        }
        cumulative_knots(&p[..k], sp, &mut xs);
        cumulative_knots(&p[k..], sp, &mut ys);
        let b = match dir {
            Direction::Forward => bin_of(&xs[..=k], v),
            Direction::Inverse => bin_of(&ys[..=k], v),
        };
        let mut ds = [1.0; 2];
        let mut slopes = [0.0; 2];
        for (i, j) in [b, b + 1].into_iter().enumerate() {
            if let Some(ri) = derivative_index(j, k, sp) {
                // softplus(z) and its slope σ(z) from one exponential.
                let z = r[ri].as_f64() + shift;
                let t = (-z.abs()).exp();
                ds[i] = sp.min_derivative + z.max(0.0) + t.ln_1p();
                slopes[i] = if z >= 0.0 { 1.0 } else { t } / (1.0 + t);
            }
        }
        let loc = [
            xs[b],
            xs[b + 1] - xs[b],
            ys[b],
            ys[b + 1] - ys[b],
            ds[0],
            ds[1],
        ];
        let (x, out, ld) = match dir {
            Direction::Forward => {
                let (y, ld) = eval_plain(v, &loc);
                (v, y, ld)
            }
            Direction::Inverse => {
                let x = solve_bin(v, &loc);
                (x, x, -eval_plain(x, &loc).1)
            }
        };
        values[e] = out;
        log_derivs[e] = ld;
        tail[0] = b as f64;
        tail[1] = x;
        tail[2..8].copy_from_slice(&loc);
        tail[8..].copy_from_slice(&slopes);
    }
}

/// The per-element records of one [`spline_batch`] call, read by its backward pass.
pub struct SplineRecords<'a> {
    records: &'a [f64],
    n: usize,
    sp: SplineParams,
}

impl<'a> SplineRecords<'a> {
    /// The records `records` that [`spline_batch`] filled with spline shape `sp`.
    pub fn new(records: &'a [f64], sp: &SplineParams) -> Self {
        Self {
            records,
            n: records.len() / (2 * sp.bins + RECORD_TAIL),
            sp: *sp,
        }
    }

    /// Backward pass of element `e` (same direction as the forward call): given dL/d(output)
    /// `g_out` and dL/d(log-det) `g_ld`, adds dL/d(raw) to `g_raw` (length P) and returns
    /// dL/d(input).
    pub fn backward(
        &self,
        e: usize,
        dir: Direction,
        g_out: f64,
        g_ld: f64,
        g_raw: &mut [f64],
    ) -> f64 {
        let (k2, n) = (2 * self.sp.bins, self.n);
        let tail = &self.records[n * k2 + e * RECORD_TAIL..n * k2 + (e + 1) * RECORD_TAIL];
        if tail[0] < 0.0 {
            return g_out;
        }
        let b = tail[0] as usize;
        let loc: Locals = std::array::from_fn(|i| tail[2 + i]);
        let (gl, g_in) = local_backward(tail[1], &loc, dir, g_out, g_ld);
        let (pw, ph) = self.records[e * k2..(e + 1) * k2].split_at(self.sp.bins);
        chain_to_raw(pw, ph, b, &gl, [tail[8], tail[9]], &self.sp, g_raw);
        g_in
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batched path is the element-by-element one: values, log-derivatives and gradients,
    /// for ordinary and circular splines, both directions, values inside and outside the
    /// interval, from raw parameters in f32 and f64.
    #[test]
    fn batched_splines_equal_the_element_by_element_ones() {
        for sp in [SplineParams::new(6, 2.0), SplineParams::circular(5)] {
            let (np, n) = (sp.n_raw(), 40);
            // Deterministic, uneven raw parameters and values (some beyond ±bound).
            let raw: Vec<f64> = (0..n * np)
                .map(|i| 1.7 * ((i as f64) * 0.77).sin() + 0.3 * ((i * i) as f64 * 0.013).cos())
                .collect();
            let raw32: Vec<f32> = raw.iter().map(|&v| v as f32).collect();
            let values: Vec<f64> = (0..n).map(|e| -3.3 + 6.6 * e as f64 / n as f64).collect();
            for dir in [Direction::Forward, Direction::Inverse] {
                let (mut v, mut ld, mut rec) = (values.clone(), vec![0.0; n], Vec::new());
                spline_batch(&raw, &mut v, &mut ld, dir, &sp, &mut rec);
                let mut v32 = values.clone();
                let mut rec32 = Vec::new();
                spline_batch(&raw32, &mut v32, &mut vec![0.0; n], dir, &sp, &mut rec32);
                for e in 0..n {
                    let r = &raw[e * np..(e + 1) * np];
                    let (y, l) = rq_spline(r, values[e], dir, &sp);
                    assert!((v[e] - y).abs() < 1e-12 && (ld[e] - l).abs() < 1e-12, "{e}");
                    let r32: Vec<f64> = raw32[e * np..(e + 1) * np]
                        .iter()
                        .map(|&x| f64::from(x))
                        .collect();
                    assert!((v32[e] - rq_spline(&r32, values[e], dir, &sp).0).abs() < 1e-12);
                    let (mut g1, mut g2) = (vec![0.0; np], vec![0.0; np]);
                    let a = rq_spline_backward(r, values[e], dir, &sp, 0.7, -1.3, &mut g1);
                    let b = SplineRecords::new(&rec, &sp).backward(e, dir, 0.7, -1.3, &mut g2);
                    assert!((a - b).abs() < 1e-10, "{e}: {a} vs {b}");
                    for (x, y) in g1.iter().zip(&g2) {
                        assert!((x - y).abs() < 1e-10, "{e}: {g1:?} vs {g2:?}");
                    }
                }
            }
        }
    }
}
