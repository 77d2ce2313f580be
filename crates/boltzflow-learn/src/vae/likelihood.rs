//! Per-coordinate log-likelihoods of the decoders, with their derivatives (for the hand-written
//! backward passes): Gaussian with fixed unit variance (the "MSE" decoder), Gaussian with a
//! predicted log-variance (conditionally independent and autoregressive decoders), and von Mises
//! for periodic coordinates (autoregressive and flow decoders). Reference values in the tests
//! are from scipy.special (1.x).

use std::f64::consts::PI;

/// ln 2π.
pub const LN_2PI: f64 = 1.837_877_066_409_345_3;

/// ln N(x; μ, 1) = −½(x − μ)² − ½ ln 2π, and d/dμ = x − μ.
pub fn gaussian_unit(x: f64, mu: f64) -> (f64, f64) {
    let r = x - mu;
    (-0.5 * r * r - 0.5 * LN_2PI, r)
}

/// ln N(x; μ, e^{ℓ}) with ℓ the log-variance: −½(x − μ)² e^{−ℓ} − ½ℓ − ½ ln 2π; returns the
/// value, d/dμ = (x − μ) e^{−ℓ} and d/dℓ = ½(x − μ)² e^{−ℓ} − ½.
pub fn gaussian(x: f64, mu: f64, log_var: f64) -> (f64, f64, f64) {
    let r = x - mu;
    let inv = (-log_var).exp();
    (
        -0.5 * r * r * inv - 0.5 * log_var - 0.5 * LN_2PI,
        r * inv,
        0.5 * r * r * inv - 0.5,
    )
}

/// Where the power series of I₀ and I₁ hand over to the asymptotic expansion.
const BESSEL_SWITCH: f64 = 50.0;

/// Σ_k (κ/2)^{2k+ν} / (k! (k+ν)!) for ν = 0, 1 (all terms positive: no cancellation).
fn bessel_series(kappa: f64, nu: u32) -> f64 {
    let q = 0.25 * kappa * kappa;
    let mut term = if nu == 0 { 1.0 } else { 0.5 * kappa };
    let mut sum = term;
    for j in 1..400u32 {
        term *= q / f64::from(j * (j + nu));
        sum += term;
        if term < 1e-17 * sum {
            break;
        }
    }
    sum
}

/// The asymptotic factor of I_ν(κ) √(2πκ) e^{−κ}: Σ_k a_k κ^{−k} with a₀ = 1 and
/// a_k = −a_{k−1} (4ν² − (2k − 1)²) / (8k), eight terms (error < 10⁻¹² for κ ≥ 50).
fn bessel_asymptotic(kappa: f64, nu: u32) -> f64 {
    let mu = f64::from(4 * nu * nu);
    let (mut a, mut sum, mut t) = (1.0f64, 1.0f64, 1.0f64);
    for k in 1..8u32 {
        let odd = f64::from(2 * k - 1);
        a *= -(mu - odd * odd) / (8.0 * f64::from(k));
        t /= kappa;
        sum += a * t;
    }
    sum
}

/// ln I₀(κ), the modified Bessel function of the first kind of order zero, for any real κ
/// (even in κ): the power series below κ = 50, the asymptotic expansion above (relative error
/// < 10⁻¹²). Written by hand: no maintained crate we use provides I₀.
pub fn ln_bessel_i0(kappa: f64) -> f64 {
    let k = kappa.abs();
    if k < BESSEL_SWITCH {
        bessel_series(k, 0).ln()
    } else {
        k - 0.5 * (2.0 * PI * k).ln() + bessel_asymptotic(k, 0).ln()
    }
}

/// I₁(κ)/I₀(κ), the derivative of ln I₀ (odd in κ), by the same two expansions.
pub fn bessel_ratio(kappa: f64) -> f64 {
    let k = kappa.abs();
    let r = if k < BESSEL_SWITCH {
        bessel_series(k, 1) / bessel_series(k, 0)
    } else {
        bessel_asymptotic(k, 1) / bessel_asymptotic(k, 0)
    };
    r.copysign(kappa)
}

/// ln vM(θ; μ, κ = e^{c}) = κ cos(θ − μ) − ln 2π − ln I₀(κ) with c the log-concentration;
/// returns the value, d/dμ = κ sin(θ − μ) and d/dc = κ(cos(θ − μ) − I₁(κ)/I₀(κ)).
pub fn von_mises(theta: f64, mu: f64, log_kappa: f64) -> (f64, f64, f64) {
    let kappa = log_kappa.exp();
    let (s, c) = (theta - mu).sin_cos();
    (
        kappa * c - LN_2PI - ln_bessel_i0(kappa),
        kappa * s,
        kappa * (c - bessel_ratio(kappa)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bessel_i0_matches_reference_values() {
        // Reference values of I₀ (Abramowitz & Stegun, Table 9.8; scipy.special.i0).
        for (k, i0) in [
            (0.0, 1.0),
            (1.0, 1.266_065_877_752_008_4),
            (5.0, 27.239_871_823_604_45),
            (10.0, 2_815.716_628_466_254),
            (25.0, 5_774_560_606.466_310_5),
        ] {
            let got = ln_bessel_i0(k);
            assert!(
                (got - f64::ln(i0)).abs() < 1e-10,
                "κ={k}: {} vs {}",
                got.exp(),
                i0
            );
        }
        // Both expansions agree where they meet (power series evaluated past the switch).
        for k in [50.0, 80.0] {
            let series = bessel_series(k, 0).ln();
            assert!((series - ln_bessel_i0(k)).abs() < 1e-11, "κ={k}");
            let ratio = bessel_series(k, 1) / bessel_series(k, 0);
            assert!((ratio - bessel_ratio(k)).abs() < 1e-11, "κ={k}");
        }
    }

    #[test]
    fn von_mises_normalises_and_its_derivatives_match_finite_differences() {
        for (mu, lk) in [(0.3, -1.0), (-2.0, 1.5), (1.0, 3.5)] {
            // ∫ vM dθ = 1 by the midpoint rule (periodic integrand: spectrally accurate).
            let n = 4000;
            let h = 2.0 * PI / n as f64;
            let total: f64 = (0..n)
                .map(|i| von_mises(-PI + (i as f64 + 0.5) * h, mu, lk).0.exp() * h)
                .sum();
            assert!((total - 1.0).abs() < 1e-10, "∫ = {total}");
            let th = 0.7;
            let (_, dmu, dlk) = von_mises(th, mu, lk);
            let e = 1e-6;
            let fd_mu = (von_mises(th, mu + e, lk).0 - von_mises(th, mu - e, lk).0) / (2.0 * e);
            let fd_lk = (von_mises(th, mu, lk + e).0 - von_mises(th, mu, lk - e).0) / (2.0 * e);
            assert!(
                (dmu - fd_mu).abs() < 1e-6 && (dlk - fd_lk).abs() < 1e-6,
                "{dmu} {fd_mu} {dlk} {fd_lk}"
            );
        }
    }

    #[test]
    fn gaussians_equal_the_hand_computation() {
        // ln N(1.5; 0.5, 1) = −½ − ½ ln 2π.
        let (v, d) = gaussian_unit(1.5, 0.5);
        assert!((v - (-0.5 - 0.5 * (2.0 * PI).ln())).abs() < 1e-15 && d == 1.0);
        // ln N(2; 1, σ² = 4) = −1/8 − ln 2 − ½ ln 2π.
        let (v, dmu, dlv) = gaussian(2.0, 1.0, 4f64.ln());
        assert!((v - (-0.125 - 2f64.ln() - 0.5 * (2.0 * PI).ln())).abs() < 1e-15);
        assert!((dmu - 0.25).abs() < 1e-15 && (dlv - (0.125 - 0.5)).abs() < 1e-15);
    }
}
