//! Latent distributions.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::Real;

/// Isotropic normal N(0, σ²I) in `dim` dimensions: the Boltzmann generator's latent prior.
/// Sampling at temperature τ uses σ√τ (Noé et al. 2019: the latent temperature steers the
/// generated ensemble).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormalPrior {
    dim: usize,
    sigma: f64,
}

impl NormalPrior {
    /// N(0, σ²I).
    ///
    /// # Panics
    /// If σ is not positive and finite (validated by the configuration layer before).
    pub fn new(dim: usize, sigma: f64) -> Self {
        assert!(sigma > 0.0 && sigma.is_finite(), "σ must be positive");
        Self { dim, sigma }
    }

    /// Dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// σ.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// The same prior at latent temperature τ: σ√τ.
    pub fn at_temperature(&self, tau: f64) -> Self {
        Self::new(self.dim, self.sigma * tau.sqrt())
    }

    /// Fills `out` (`[rows, dim]`) with samples.
    pub fn sample_into<T: Real>(&self, rng: &mut impl Rng, out: &mut [T]) {
        for v in out {
            let e: f64 = StandardNormal.sample(rng);
            *v = T::of(self.sigma * e);
        }
    }

    /// Energy −log p(z) of one row, in f64: ½‖z‖²/σ² + (d/2) ln(2πσ²).
    pub fn energy<T: Real>(&self, z: &[T]) -> f64 {
        let r2: f64 = z.iter().map(|v| v.as_f64() * v.as_f64()).sum();
        0.5 * r2 / (self.sigma * self.sigma) + self.log_normaliser()
    }

    /// (d/2) ln(2πσ²).
    pub fn log_normaliser(&self) -> f64 {
        0.5 * self.dim as f64 * (2.0 * std::f64::consts::PI * self.sigma * self.sigma).ln()
    }

    /// 1/σ², the factor in ∂(−log p)/∂z = z/σ².
    pub fn precision(&self) -> f64 {
        1.0 / (self.sigma * self.sigma)
    }
}
