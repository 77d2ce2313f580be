//! Integrated autocorrelation times.

use boltzflow_core::{Error, Result};
use ndarray::ArrayView2;
use rustfft::{FftPlanner, num_complex::Complex};

/// Normalised autocorrelation function ρ(t) of a scalar observable, averaged over chains.
///
/// `series` is `[n_steps, n_chains]`; each chain's mean is removed, autocovariances are
/// computed by FFT (zero-padded, so they are not circular) and averaged over chains, then
/// divided by the lag-0 value. Returns `[n_steps]`.
///
/// # Errors
/// [`Error::InvalidParameter`] for fewer than 2 steps; [`Error::Numerical`] for a series that
/// never changes (ρ undefined) or holds non-finite values.
pub fn autocorrelation(series: ArrayView2<f64>) -> Result<Vec<f64>> {
    let (n, chains) = series.dim();
    if n < 2 || chains == 0 {
        return Err(Error::invalid(
            "series",
            format!("need at least 2 steps and 1 chain, got [{n}, {chains}]"),
        ));
    }
    if series.iter().any(|v| !v.is_finite()) {
        return Err(Error::Numerical {
            what: "autocorrelation".into(),
            reason: "the series holds NaN or inf".into(),
        });
    }
    let m = (2 * n).next_power_of_two();
    let mut planner = FftPlanner::<f64>::new();
    let (fwd, inv) = (planner.plan_fft_forward(m), planner.plan_fft_inverse(m));
    let mut acov = vec![0.0; n];
    let mut buf = vec![Complex::new(0.0, 0.0); m];
    for col in series.columns() {
        let mean = col.mean().expect("n ≥ 2");
        buf.iter_mut().for_each(|c| *c = Complex::new(0.0, 0.0));
        for (b, v) in buf.iter_mut().zip(col.iter()) {
            b.re = v - mean;
        }
        fwd.process(&mut buf);
        buf.iter_mut()
            .for_each(|c| *c = Complex::new(c.norm_sqr(), 0.0));
        inv.process(&mut buf);
        for (a, b) in acov.iter_mut().zip(&buf) {
            *a += b.re / (m as f64 * n as f64);
        }
    }
    if acov[0] <= 0.0 {
        return Err(Error::Numerical {
            what: "autocorrelation".into(),
            reason: "the observable never changes (zero variance)".into(),
        });
    }
    let a0 = acov[0];
    Ok(acov.into_iter().map(|a| a / a0).collect())
}

/// Integrated autocorrelation time τ = 1 + 2 Σ_{t=1}^{M} ρ(t), in steps of the series, with
/// Sokal's automatic window: the smallest M with M ≥ `window_factor` · τ(M) (5 is customary).
///
/// The variance of a mean over N correlated samples is τ times that over N independent ones.
///
/// # Errors
/// As [`autocorrelation`].
pub fn integrated_time(series: ArrayView2<f64>, window_factor: f64) -> Result<f64> {
    let rho = autocorrelation(series)?;
    let mut tau = 1.0;
    for (m, r) in rho.iter().enumerate().skip(1) {
        tau += 2.0 * r;
        if m as f64 >= window_factor * tau {
            return Ok(tau);
        }
    }
    Ok(tau)
}

#[cfg(test)]
mod tests {
    use super::*;
    use boltzflow_core::RandomStreams;
    use ndarray::Array2;
    use rand_distr::{Distribution, StandardNormal};

    #[test]
    fn ar1_process_has_tau_one_plus_phi_over_one_minus_phi() {
        let phi: f64 = 0.9;
        let (n, chains) = (20_000, 16);
        let mut rng = RandomStreams::new(2).stream("ar1");
        let mut x = Array2::zeros((n, chains));
        for c in 0..chains {
            let mut v = 0.0;
            for t in 0..n {
                let z: f64 = StandardNormal.sample(&mut rng);
                v = phi * v + z;
                x[[t, c]] = v;
            }
        }
        let tau = integrated_time(x.view(), 5.0).unwrap();
        let exact = (1.0 + phi) / (1.0 - phi);
        assert!((tau / exact - 1.0).abs() < 0.1, "τ = {tau}, exact {exact}");
        let rho = autocorrelation(x.view()).unwrap();
        assert!((rho[1] - phi).abs() < 0.02 && (rho[2] - phi * phi).abs() < 0.03);
    }

    #[test]
    fn constant_series_is_an_error() {
        assert!(integrated_time(Array2::ones((10, 2)).view(), 5.0).is_err());
    }
}
