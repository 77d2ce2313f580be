//! Gradient and flow checks against finite differences (f64): what makes hand-written backward
//! passes safe (DECISIONS D1). Used by the tests of every layer and model.

use boltzflow_core::ChainRng;
use rand_distr::{Distribution, StandardNormal};

use crate::flows::{Direction, FlowWorkspace, SequentialFlow};

/// Agreement of an analytic gradient with a numerical one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradientReport {
    /// max |analytic − numeric| over components.
    pub max_abs_error: f64,
    /// max |numeric| (the scale errors are measured against).
    pub scale: f64,
    /// Index of the worst component.
    pub worst: usize,
}

impl GradientReport {
    /// max error / max(scale, 1e-12).
    pub fn relative(&self) -> f64 {
        self.max_abs_error / self.scale.max(1e-12)
    }
}

/// Fourth-order central differences of `f` at `x` with step `h`:
/// f′ ≈ (f(x−2h) − 8f(x−h) + 8f(x+h) − f(x+2h)) / 12h, error O(h⁴).
pub fn numeric_gradient(x: &[f64], h: f64, mut f: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    let mut xp = x.to_vec();
    let mut at = |xp: &mut Vec<f64>, i: usize, dx: f64| {
        xp[i] = x[i] + dx;
        let v = f(xp);
        xp[i] = x[i];
        v
    };
    (0..x.len())
        .map(|i| {
            let (p1, m1) = (at(&mut xp, i, h), at(&mut xp, i, -h));
            let (p2, m2) = (at(&mut xp, i, 2.0 * h), at(&mut xp, i, -2.0 * h));
            (m2 - 8.0 * m1 + 8.0 * p1 - p2) / (12.0 * h)
        })
        .collect()
}

/// Compares two gradients.
pub fn compare(analytic: &[f64], numeric: &[f64]) -> GradientReport {
    let mut rep = GradientReport {
        max_abs_error: 0.0,
        scale: 0.0,
        worst: 0,
    };
    for (i, (a, n)) in analytic.iter().zip(numeric).enumerate() {
        let e = (a - n).abs();
        if e > rep.max_abs_error || e.is_nan() {
            rep.max_abs_error = e;
            rep.worst = i;
        }
        rep.scale = rep.scale.max(n.abs());
    }
    rep
}

/// Everything [`check_flow`] measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowReport {
    /// max |inverse(forward(z)) − z|.
    pub round_trip: f64,
    /// max |log-det forward + log-det inverse| at corresponding points.
    pub log_det_sum: f64,
    /// max |log-det − log|det J|| with J from central differences (forward direction).
    pub jacobian_log_det: f64,
    /// Parameter gradients vs. finite differences, forward direction.
    pub params_forward: GradientReport,
    /// Parameter gradients vs. finite differences, inverse direction.
    pub params_inverse: GradientReport,
    /// Input gradients vs. finite differences, forward direction.
    pub input_forward: GradientReport,
    /// Input gradients vs. finite differences, inverse direction.
    pub input_inverse: GradientReport,
}

impl FlowReport {
    /// The largest relative gradient error.
    pub fn worst_gradient(&self) -> f64 {
        [
            self.params_forward,
            self.params_inverse,
            self.input_forward,
            self.input_inverse,
        ]
        .iter()
        .map(GradientReport::relative)
        .fold(0.0, f64::max)
    }
}

fn random_normal(n: usize, scale: f64, rng: &mut ChainRng) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let e: f64 = StandardNormal.sample(rng);
            scale * e
        })
        .collect()
}

/// The generic flow test (DESIGN §8) on `rows` random inputs of scale `input_scale`:
/// round trip, log-dets of the two directions summing to zero, log-det equal to a brute-force
/// Jacobian, and parameter and input gradients of L = Σ a·output + Σ b·log-det equal to
/// central differences with step `h`, in both directions.
///
/// Splines are C¹ but not C² at their knots, so their log-det's gradient jumps there; a
/// difference stencil that straddles a knot is wrong by O(jump·h). Use h ≈ 1e-6 for spline
/// flows (1e-4 is more accurate for smooth ones).
pub fn check_flow(
    flow: &SequentialFlow<f64>,
    params: &[f64],
    rows: usize,
    input_scale: f64,
    h: f64,
    rng: &mut ChainRng,
) -> FlowReport {
    check_flow_with_fixed(flow, params, &[], rows, input_scale, h, rng)
}

/// As [`check_flow`] for a flow with structurally fixed parameters (`fixed[i]`: parameter i
/// is held at zero, as a MADE's masked weights are, and its gradient must be 0 whatever
/// finite differences of the unmasked network would say).
pub fn check_flow_with_fixed(
    flow: &SequentialFlow<f64>,
    params: &[f64],
    fixed: &[bool],
    rows: usize,
    input_scale: f64,
    h: f64,
    rng: &mut ChainRng,
) -> FlowReport {
    let d = flow.dim();
    let z = random_normal(rows * d, input_scale, rng);
    let mut ws = FlowWorkspace::new();
    flow.run(params, &z, rows, Direction::Forward, &mut ws);
    let x = ws.output().to_vec();
    let ld_f = ws.log_det().to_vec();
    flow.run(params, &x, rows, Direction::Inverse, &mut ws);
    let round_trip = ws
        .output()
        .iter()
        .zip(&z)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let log_det_sum = ws
        .log_det()
        .iter()
        .zip(&ld_f)
        .map(|(a, b)| (a + b).abs())
        .fold(0.0, f64::max);

    // Brute-force Jacobian of the forward map, row by row.
    let mut jacobian_log_det: f64 = 0.0;
    let mut one = FlowWorkspace::new();
    for r in 0..rows {
        let zr = &z[r * d..(r + 1) * d];
        let jac = faer::Mat::<f64>::from_fn(d, d, |i, j| {
            let mut zp = zr.to_vec();
            let mut at = |dx: f64| {
                zp[j] = zr[j] + dx;
                flow.run(params, &zp, 1, Direction::Forward, &mut one);
                one.output()[i]
            };
            (at(-2.0 * h) - 8.0 * at(-h) + 8.0 * at(h) - at(2.0 * h)) / (12.0 * h)
        });
        let det = jac.determinant();
        jacobian_log_det = jacobian_log_det.max((det.abs().ln() - ld_f[r]).abs());
    }

    let mut grads = |dir: Direction, input: &[f64]| {
        let a = random_normal(rows * d, 1.0, rng);
        let b = random_normal(rows, 1.0, rng);
        let loss = |p: &[f64], inp: &[f64], ws: &mut FlowWorkspace<f64>| {
            flow.run(p, inp, rows, dir, ws);
            let lo: f64 = ws.output().iter().zip(&a).map(|(o, a)| o * a).sum();
            lo + ws.log_det().iter().zip(&b).map(|(l, b)| l * b).sum::<f64>()
        };
        let mut ws = FlowWorkspace::new();
        loss(params, input, &mut ws);
        let mut g = vec![0.0; params.len()];
        let gin = flow.backward(params, &mut g, &mut ws, &a, &b).to_vec();
        let mut np = numeric_gradient(params, h, |p| loss(p, input, &mut FlowWorkspace::new()));
        for (n, _) in np.iter_mut().zip(fixed).filter(|(_, f)| **f) {
            *n = 0.0;
        }
        let ni = numeric_gradient(input, h, |i| loss(params, i, &mut FlowWorkspace::new()));
        (compare(&g, &np), compare(&gin, &ni))
    };
    let (params_forward, input_forward) = grads(Direction::Forward, &z);
    let (params_inverse, input_inverse) = grads(Direction::Inverse, &x);
    FlowReport {
        round_trip,
        log_det_sum,
        jacobian_log_det,
        params_forward,
        params_inverse,
        input_forward,
        input_inverse,
    }
}
