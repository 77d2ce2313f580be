//! The normalised 2D densities of Monroe & Shen (J. Chem. Theory Comput. 2022), as energies
//! −ln p(x) in kT (so ln Z = 0), with exact direct samplers (each density is a mixture).

use std::f64::consts::{LN_2, PI};

use boltzflow_core::{ChainRng, Result};
use ndarray::{Array1, Array2, array};
use rand::RngExt;
use rand_distr::{Distribution, Gamma, StandardNormal};

use crate::kernel::{RowKernel, impl_energy_via_rows};
use crate::{ExactSampler, System};

/// ½ ln(2π).
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;
const LN_2PI: f64 = 2.0 * HALF_LN_2PI;

/// Weights and means of the 1D mixture 0.6 N(−3, 1) + 0.4 N(3, 1).
const BIMODAL_W: [f64; 2] = [0.6, 0.4];
const BIMODAL_MU: [f64; 2] = [-3.0, 3.0];

/// −ln p and d(−ln p)/dx of the 1D mixture 0.6 N(−3, 1) + 0.4 N(3, 1), by log-sum-exp.
fn bimodal_1d(x: f64) -> (f64, f64) {
    let l0 = BIMODAL_W[0].ln() - 0.5 * (x - BIMODAL_MU[0]).powi(2);
    let l1 = BIMODAL_W[1].ln() - 0.5 * (x - BIMODAL_MU[1]).powi(2);
    let m = l0.max(l1);
    let (a, b) = ((l0 - m).exp(), (l1 - m).exp());
    let lse = m + (a + b).ln();
    let (r0, r1) = (a / (a + b), b / (a + b));
    let grad = r0 * (x - BIMODAL_MU[0]) + r1 * (x - BIMODAL_MU[1]);
    (HALF_LN_2PI - lse, grad)
}

fn sample_bimodal_1d(rng: &mut ChainRng) -> f64 {
    let z: f64 = StandardNormal.sample(rng);
    let mu = if rng.random::<f64>() < BIMODAL_W[0] {
        BIMODAL_MU[0]
    } else {
        BIMODAL_MU[1]
    };
    mu + z
}

fn sample_rows(
    n: usize,
    rng: &mut ChainRng,
    mut draw: impl FnMut(&mut ChainRng) -> [f64; 2],
) -> Array2<f64> {
    let mut out = Array2::zeros((n, 2));
    for mut row in out.outer_iter_mut() {
        let [a, b] = draw(rng);
        row[0] = a;
        row[1] = b;
    }
    out
}

/// `gaussian2d`: N((−3, −3), I); E = ½‖x − μ‖² + ln 2π.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gaussian2d;

impl RowKernel for Gaussian2d {
    fn kernel_dim(&self) -> usize {
        2
    }
    fn energy_rows(&self, x: &[f64], e: &mut [f64]) {
        for (r, ei) in x.chunks_exact(2).zip(e.iter_mut()) {
            *ei = 0.5 * ((r[0] + 3.0).powi(2) + (r[1] + 3.0).powi(2)) + LN_2PI;
        }
    }
    fn energy_forces_rows(&self, x: &[f64], e: &mut [f64], f: &mut [f64]) {
        self.energy_rows(x, e);
        for (r, fi) in x.chunks_exact(2).zip(f.chunks_exact_mut(2)) {
            fi[0] = -(r[0] + 3.0);
            fi[1] = -(r[1] + 3.0);
        }
    }
}
impl_energy_via_rows!(Gaussian2d);

impl ExactSampler for Gaussian2d {
    fn sample(&self, n: usize, rng: &mut ChainRng) -> Result<Array2<f64>> {
        Ok(sample_rows(n, rng, |r| {
            let a: f64 = StandardNormal.sample(r);
            let b: f64 = StandardNormal.sample(r);
            [a - 3.0, b - 3.0]
        }))
    }
}

impl System for Gaussian2d {
    fn spec(&self) -> String {
        "gaussian2d".into()
    }
    fn reference_box(&self) -> Option<Vec<[f64; 2]>> {
        Some(vec![[-12.0, 6.0], [-12.0, 6.0]])
    }
    fn initial_configuration(&self) -> Array1<f64> {
        array![-3.0, -3.0]
    }
    fn exact_ln_z(&self) -> Option<f64> {
        Some(0.0)
    }
    fn exact_sampler(&self) -> Option<&dyn ExactSampler> {
        Some(self)
    }
}

/// `bimodal2d`: each coordinate independently 0.6 N(−3, 1) + 0.4 N(3, 1).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bimodal2d;

impl RowKernel for Bimodal2d {
    fn kernel_dim(&self) -> usize {
        2
    }
    fn energy_rows(&self, x: &[f64], e: &mut [f64]) {
        for (r, ei) in x.chunks_exact(2).zip(e.iter_mut()) {
            *ei = bimodal_1d(r[0]).0 + bimodal_1d(r[1]).0;
        }
    }
    fn energy_forces_rows(&self, x: &[f64], e: &mut [f64], f: &mut [f64]) {
        for ((r, ei), fi) in x
            .chunks_exact(2)
            .zip(e.iter_mut())
            .zip(f.chunks_exact_mut(2))
        {
            let (e0, g0) = bimodal_1d(r[0]);
            let (e1, g1) = bimodal_1d(r[1]);
            *ei = e0 + e1;
            fi[0] = -g0;
            fi[1] = -g1;
        }
    }
}
impl_energy_via_rows!(Bimodal2d);

impl ExactSampler for Bimodal2d {
    fn sample(&self, n: usize, rng: &mut ChainRng) -> Result<Array2<f64>> {
        Ok(sample_rows(n, rng, |r| {
            [sample_bimodal_1d(r), sample_bimodal_1d(r)]
        }))
    }
}

impl System for Bimodal2d {
    fn spec(&self) -> String {
        "bimodal2d".into()
    }
    fn reference_box(&self) -> Option<Vec<[f64; 2]>> {
        Some(vec![[-12.0, 12.0], [-12.0, 12.0]])
    }
    fn initial_configuration(&self) -> Array1<f64> {
        array![-3.0, -3.0]
    }
    fn exact_ln_z(&self) -> Option<f64> {
        Some(0.0)
    }
    fn exact_sampler(&self) -> Option<&dyn ExactSampler> {
        Some(self)
    }
}

/// `corr-bimodal2d`: x₁ ~ 0.6 N(−3, 1) + 0.4 N(3, 1); x₂ ~ N(−3, 1) if x₁ < 0, else N(3, 1).
///
/// The density jumps across x₁ = 0; the forces are those of the smooth pieces (the jump carries
/// weight ≈ 10⁻³ of the maximum and has no force).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CorrBimodal2d;

fn x2_mode(x1: f64) -> f64 {
    if x1 < 0.0 { -3.0 } else { 3.0 }
}

impl RowKernel for CorrBimodal2d {
    fn kernel_dim(&self) -> usize {
        2
    }
    fn energy_rows(&self, x: &[f64], e: &mut [f64]) {
        for (r, ei) in x.chunks_exact(2).zip(e.iter_mut()) {
            *ei = bimodal_1d(r[0]).0 + 0.5 * (r[1] - x2_mode(r[0])).powi(2) + HALF_LN_2PI;
        }
    }
    fn energy_forces_rows(&self, x: &[f64], e: &mut [f64], f: &mut [f64]) {
        for ((r, ei), fi) in x
            .chunks_exact(2)
            .zip(e.iter_mut())
            .zip(f.chunks_exact_mut(2))
        {
            let (e0, g0) = bimodal_1d(r[0]);
            let d = r[1] - x2_mode(r[0]);
            *ei = e0 + 0.5 * d * d + HALF_LN_2PI;
            fi[0] = -g0;
            fi[1] = -d;
        }
    }
}
impl_energy_via_rows!(CorrBimodal2d);

impl ExactSampler for CorrBimodal2d {
    fn sample(&self, n: usize, rng: &mut ChainRng) -> Result<Array2<f64>> {
        Ok(sample_rows(n, rng, |r| {
            let x1 = sample_bimodal_1d(r);
            let z: f64 = StandardNormal.sample(r);
            [x1, x2_mode(x1) + z]
        }))
    }
}

impl System for CorrBimodal2d {
    fn spec(&self) -> String {
        "corr-bimodal2d".into()
    }
    fn reference_box(&self) -> Option<Vec<[f64; 2]>> {
        Some(vec![[-12.0, 12.0], [-12.0, 12.0]])
    }
    fn initial_configuration(&self) -> Array1<f64> {
        array![-3.0, -3.0]
    }
    fn exact_ln_z(&self) -> Option<f64> {
        Some(0.0)
    }
    fn exact_sampler(&self) -> Option<&dyn ExactSampler> {
        Some(self)
    }
}

/// The radial density of the beltway: ½ Gamma(α=40, rate 40) + ½ Gamma(α=160, rate 80),
/// rings of radius ≈ 1 and ≈ 2 (standard deviation 0.158 each).
#[derive(Debug, Clone, PartialEq)]
struct BeltwayRadius {
    /// ln(weight · rate^α / Γ(α)) of each component.
    log_norm: [f64; 2],
}

const BELT_SHAPE: [f64; 2] = [40.0, 160.0];
const BELT_RATE: [f64; 2] = [40.0, 80.0];

impl BeltwayRadius {
    fn new() -> Self {
        let c = |k: usize| -LN_2 + BELT_SHAPE[k] * BELT_RATE[k].ln() - libm::lgamma(BELT_SHAPE[k]);
        Self {
            log_norm: [c(0), c(1)],
        }
    }

    /// (−ln p_r(r), d(−ln p_r)/dr) for r > 0; (+∞, 0) otherwise.
    fn neg_log(&self, r: f64) -> (f64, f64) {
        if r <= 0.0 || r.is_nan() {
            return (f64::INFINITY, 0.0);
        }
        let lr = r.ln();
        let l: [f64; 2] = std::array::from_fn(|k| {
            self.log_norm[k] + (BELT_SHAPE[k] - 1.0) * lr - BELT_RATE[k] * r
        });
        let m = l[0].max(l[1]);
        let (a, b) = ((l[0] - m).exp(), (l[1] - m).exp());
        let (w0, w1) = (a / (a + b), b / (a + b));
        let dlogp = w0 * ((BELT_SHAPE[0] - 1.0) / r - BELT_RATE[0])
            + w1 * ((BELT_SHAPE[1] - 1.0) / r - BELT_RATE[1]);
        (-(m + (a + b).ln()), -dlogp)
    }

    fn sample(&self, rng: &mut ChainRng) -> f64 {
        let k = usize::from(rng.random::<f64>() >= 0.5);
        Gamma::new(BELT_SHAPE[k], 1.0 / BELT_RATE[k])
            .expect("constant, valid parameters")
            .sample(rng)
    }
}

/// `beltway`: uniform angle, radius from [`BeltwayRadius`]; E = −ln p(x, y) in Cartesian
/// coordinates = −ln p_r(r) + ln 2π + ln r (the 1/r is the Jacobian of polar coordinates).
#[derive(Debug, Clone, PartialEq)]
pub struct Beltway {
    radius: BeltwayRadius,
}

impl Default for Beltway {
    fn default() -> Self {
        Self {
            radius: BeltwayRadius::new(),
        }
    }
}

impl RowKernel for Beltway {
    fn kernel_dim(&self) -> usize {
        2
    }
    fn energy_rows(&self, x: &[f64], e: &mut [f64]) {
        for (p, ei) in x.chunks_exact(2).zip(e.iter_mut()) {
            let r = p[0].hypot(p[1]);
            *ei = self.radius.neg_log(r).0 + LN_2PI + r.ln();
        }
    }
    fn energy_forces_rows(&self, x: &[f64], e: &mut [f64], f: &mut [f64]) {
        for ((p, ei), fi) in x
            .chunks_exact(2)
            .zip(e.iter_mut())
            .zip(f.chunks_exact_mut(2))
        {
            let r = p[0].hypot(p[1]);
            let (nl, dnl) = self.radius.neg_log(r);
            *ei = nl + LN_2PI + r.ln();
            if r > 0.0 {
                let de_dr = dnl + 1.0 / r;
                fi[0] = -de_dr * p[0] / r;
                fi[1] = -de_dr * p[1] / r;
            } else {
                fi[0] = 0.0;
                fi[1] = 0.0;
            }
        }
    }
}
impl_energy_via_rows!(Beltway);

impl ExactSampler for Beltway {
    fn sample(&self, n: usize, rng: &mut ChainRng) -> Result<Array2<f64>> {
        Ok(sample_rows(n, rng, |g| {
            let r = self.radius.sample(g);
            let theta = PI * (2.0 * g.random::<f64>() - 1.0);
            [r * theta.cos(), r * theta.sin()]
        }))
    }
}

impl System for Beltway {
    fn spec(&self) -> String {
        "beltway".into()
    }
    fn reference_box(&self) -> Option<Vec<[f64; 2]>> {
        Some(vec![[-4.5, 4.5], [-4.5, 4.5]])
    }
    fn initial_configuration(&self) -> Array1<f64> {
        array![1.0, 0.0]
    }
    fn exact_ln_z(&self) -> Option<f64> {
        Some(0.0)
    }
    fn exact_sampler(&self) -> Option<&dyn ExactSampler> {
        Some(self)
    }
}

/// `beltway-polar`: the beltway in coordinates (r, θ), θ periodic on [−π, π);
/// E = −ln p(r, θ) = −ln p_r(r) + ln 2π (+∞ for r ≤ 0).
#[derive(Debug, Clone, PartialEq)]
pub struct BeltwayPolar {
    radius: BeltwayRadius,
}

impl Default for BeltwayPolar {
    fn default() -> Self {
        Self {
            radius: BeltwayRadius::new(),
        }
    }
}

impl RowKernel for BeltwayPolar {
    fn kernel_dim(&self) -> usize {
        2
    }
    fn energy_rows(&self, x: &[f64], e: &mut [f64]) {
        for (p, ei) in x.chunks_exact(2).zip(e.iter_mut()) {
            *ei = self.radius.neg_log(p[0]).0 + LN_2PI;
        }
    }
    fn energy_forces_rows(&self, x: &[f64], e: &mut [f64], f: &mut [f64]) {
        for ((p, ei), fi) in x
            .chunks_exact(2)
            .zip(e.iter_mut())
            .zip(f.chunks_exact_mut(2))
        {
            let (nl, dnl) = self.radius.neg_log(p[0]);
            *ei = nl + LN_2PI;
            fi[0] = -dnl;
            fi[1] = 0.0;
        }
    }
}
impl_energy_via_rows!(BeltwayPolar);

impl ExactSampler for BeltwayPolar {
    fn sample(&self, n: usize, rng: &mut ChainRng) -> Result<Array2<f64>> {
        Ok(sample_rows(n, rng, |g| {
            [self.radius.sample(g), PI * (2.0 * g.random::<f64>() - 1.0)]
        }))
    }
}

impl System for BeltwayPolar {
    fn spec(&self) -> String {
        "beltway-polar".into()
    }
    fn reference_box(&self) -> Option<Vec<[f64; 2]>> {
        Some(vec![[0.0, 4.5], [-PI, PI]])
    }
    fn periods(&self) -> Vec<Option<[f64; 2]>> {
        vec![None, Some([-PI, PI])]
    }
    fn initial_configuration(&self) -> Array1<f64> {
        array![1.0, 0.0]
    }
    fn exact_ln_z(&self) -> Option<f64> {
        Some(0.0)
    }
    fn exact_sampler(&self) -> Option<&dyn ExactSampler> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boltzflow_core::Energy;

    fn normal_pdf(x: f64, mu: f64) -> f64 {
        (-(x - mu).powi(2) / 2.0).exp() / (2.0 * PI).sqrt()
    }

    #[test]
    fn densities_equal_their_definitions() {
        let pts = array![[-3.0, -3.0], [0.5, -1.0], [2.0, 3.5], [-0.1, 0.2]];
        let g = Gaussian2d.energy(pts.view()).unwrap();
        let b = Bimodal2d.energy(pts.view()).unwrap();
        let c = CorrBimodal2d.energy(pts.view()).unwrap();
        for (i, p) in pts.outer_iter().enumerate() {
            let (x, y) = (p[0], p[1]);
            let pg = normal_pdf(x, -3.0) * normal_pdf(y, -3.0);
            let m = |v: f64| 0.6 * normal_pdf(v, -3.0) + 0.4 * normal_pdf(v, 3.0);
            let pc = m(x) * normal_pdf(y, if x < 0.0 { -3.0 } else { 3.0 });
            approx::assert_relative_eq!(g[i], -pg.ln(), max_relative = 1e-12);
            approx::assert_relative_eq!(b[i], -(m(x) * m(y)).ln(), max_relative = 1e-12);
            approx::assert_relative_eq!(c[i], -pc.ln(), max_relative = 1e-12);
        }
    }

    #[test]
    fn beltway_equals_its_definition() {
        // Gamma(α, rate β) density written out with the standard library's gamma function.
        let gamma_pdf = |r: f64, a: f64, b: f64| {
            (a * b.ln() - libm::lgamma(a) + (a - 1.0) * r.ln() - b * r).exp()
        };
        for (x, y) in [(1.0, 0.0), (0.3, -0.9), (-1.5, 1.2), (0.0, 2.1)] {
            let r = f64::hypot(x, y);
            let pr = 0.5 * gamma_pdf(r, 40.0, 40.0) + 0.5 * gamma_pdf(r, 160.0, 80.0);
            let e = Beltway::default().energy(array![[x, y]].view()).unwrap()[0];
            approx::assert_relative_eq!(e, -(pr / (2.0 * PI * r)).ln(), max_relative = 1e-12);
            let ep = BeltwayPolar::default()
                .energy(array![[r, 0.3]].view())
                .unwrap()[0];
            approx::assert_relative_eq!(ep, -(pr / (2.0 * PI)).ln(), max_relative = 1e-12);
        }
        let e = BeltwayPolar::default()
            .energy(array![[-0.1, 0.0], [0.0, 1.0]].view())
            .unwrap();
        assert!(e.iter().all(|v| *v == f64::INFINITY));
    }
}
