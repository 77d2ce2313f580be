//! Latent distributions.

use rand::{Rng, RngExt};
use rand_distr::{Distribution, StandardNormal};

use crate::Real;

/// The Boltzmann generator's latent prior: N(0, σ²) on each ordinary coordinate and, where the
/// configuration space has periodic coordinates (torsions), the uniform distribution on
/// (−π, π] on those — a Gaussian × torus prior. Sampling at temperature τ uses σ√τ on the
/// Gaussian part (Noé et al. 2019: the latent temperature steers the generated ensemble).
#[derive(Debug, Clone, PartialEq)]
pub struct LatentPrior {
    dim: usize,
    sigma: f64,
    /// Per coordinate: uniform on the circle (empty: none).
    periodic: std::sync::Arc<[bool]>,
    n_periodic: usize,
}

impl LatentPrior {
    /// N(0, σ²I).
    ///
    /// # Panics
    /// If σ is not positive and finite (validated by the configuration layer before).
    pub fn new(dim: usize, sigma: f64) -> Self {
        Self::with_periodic(dim, sigma, &[])
    }

    /// N(0, σ²) on the coordinates not flagged in `periodic` (`[dim]`, or empty for none),
    /// uniform on (−π, π] on the flagged ones.
    ///
    /// # Panics
    /// If σ is not positive and finite, or `periodic` has another length.
    pub fn with_periodic(dim: usize, sigma: f64, periodic: &[bool]) -> Self {
        assert!(sigma > 0.0 && sigma.is_finite(), "σ must be positive");
        assert!(
            periodic.is_empty() || periodic.len() == dim,
            "periodic flags for {} of {dim} coordinates",
            periodic.len()
        );
        Self {
            dim,
            sigma,
            n_periodic: periodic.iter().filter(|p| **p).count(),
            periodic: periodic.into(),
        }
    }

    /// Dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The interval (−π, π] of each periodic coordinate, `None` for the Gaussian ones.
    pub fn periods(&self) -> Vec<Option<[f64; 2]>> {
        use std::f64::consts::PI;
        (0..self.dim)
            .map(|k| {
                self.periodic
                    .get(k)
                    .copied()
                    .unwrap_or(false)
                    .then_some([-PI, PI])
            })
            .collect()
    }

    /// σ.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// Whether coordinate `i` is uniform on the circle.
    pub fn is_periodic(&self, i: usize) -> bool {
        self.periodic.get(i).copied().unwrap_or(false)
    }

    /// The same prior at latent temperature τ: σ√τ on the Gaussian part.
    pub fn at_temperature(&self, tau: f64) -> Self {
        Self {
            sigma: self.sigma * tau.sqrt(),
            ..self.clone()
        }
    }

    /// Fills `out` (`[rows, dim]`) with samples.
    pub fn sample_into<T: Real>(&self, rng: &mut impl Rng, out: &mut [T]) {
        use std::f64::consts::PI;
        for (k, v) in out.iter_mut().enumerate() {
            *v = if self.is_periodic(k % self.dim) {
                T::of(PI * (2.0 * rng.random::<f64>() - 1.0))
            } else {
                let e: f64 = StandardNormal.sample(rng);
                T::of(self.sigma * e)
            };
        }
    }

    /// Energy −log p(z) of one row, in f64: ½Σ z²/σ² over the Gaussian coordinates plus the
    /// log-normaliser.
    pub fn energy<T: Real>(&self, z: &[T]) -> f64 {
        let r2: f64 = z
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.is_periodic(*i))
            .map(|(_, v)| v.as_f64() * v.as_f64())
            .sum();
        0.5 * r2 / (self.sigma * self.sigma) + self.log_normaliser()
    }

    /// (d_G/2) ln(2πσ²) + d_P ln(2π) for d_G Gaussian and d_P periodic coordinates.
    pub fn log_normaliser(&self) -> f64 {
        let two_pi = 2.0 * std::f64::consts::PI;
        let gaussian = (self.dim - self.n_periodic) as f64;
        0.5 * gaussian * (two_pi * self.sigma * self.sigma).ln()
            + self.n_periodic as f64 * two_pi.ln()
    }

    /// ∂(−log p)/∂zᵢ per unit zᵢ: 1/σ² on the Gaussian coordinates, 0 on the periodic ones.
    pub fn precision_of(&self, i: usize) -> f64 {
        if self.is_periodic(i) {
            0.0
        } else {
            1.0 / (self.sigma * self.sigma)
        }
    }
}
