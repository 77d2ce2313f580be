//! PCA whitening of (aligned) Cartesian coordinates, as the Cartesian part of the Boltzmann
//! generator's mixed coordinate transform (Noé et al., Science 2019, supplement).

use boltzflow_core::{Error, Result};
use faer::Side;
use ndarray::{Array1, Array2, ArrayView2, Axis};

/// z = Λ^{-1/2} Vᵀ (x − μ) over the principal components whose variance exceeds a cutoff
/// (aligned molecules have six near-zero rigid-body modes, which are dropped), and its inverse
/// x = μ + V Λ^{1/2} z.
///
/// The transform restricted to the kept subspace has the constant
/// log|det ∂z/∂x| = −½ Σ ln λ_kept ([`Whitening::log_det`]).
#[derive(Debug, Clone)]
pub struct Whitening {
    /// Mean `[dim]`.
    pub mean: Array1<f64>,
    /// Kept eigenvectors as columns, `[dim, k]`, by descending variance.
    pub components: Array2<f64>,
    /// Their variances `[k]`.
    pub variances: Array1<f64>,
}

impl Whitening {
    /// Fits the mean and covariance of `x` (`[n, dim]`), keeping components with variance above
    /// `cutoff` × the largest variance (1e-10 drops the numerically zero rigid-body modes).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for fewer than 2 rows or a cutoff outside [0, 1);
    /// [`Error::Numerical`] if the eigendecomposition fails.
    pub fn fit(x: ArrayView2<f64>, cutoff: f64) -> Result<Self> {
        if x.nrows() < 2 {
            return Err(Error::invalid(
                "whitening data",
                format!("needs at least 2 configurations, got {}", x.nrows()),
            ));
        }
        if !(0.0..1.0).contains(&cutoff) {
            return Err(Error::invalid(
                "whitening cutoff",
                format!("must be in [0, 1), got {cutoff}"),
            ));
        }
        let mean = x.mean_axis(Axis(0)).expect("rows");
        let xc = &x - &mean;
        let cov = xc.t().dot(&xc) / (x.nrows() - 1) as f64;
        let d = cov.nrows();
        let m = faer::Mat::from_fn(d, d, |i, j| cov[[i, j]]);
        let evd = m
            .self_adjoint_eigen(Side::Lower)
            .map_err(|e| Error::Numerical {
                what: "whitening".into(),
                reason: format!("eigendecomposition failed ({e:?})"),
            })?;
        let s = evd.S().column_vector();
        let u = evd.U();
        let largest = (0..d).map(|i| s[i]).fold(0.0f64, f64::max);
        let mut keep: Vec<usize> = (0..d)
            .filter(|&i| s[i] > cutoff * largest && s[i] > 0.0)
            .collect();
        keep.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
        let components = Array2::from_shape_fn((d, keep.len()), |(r, c)| u[(r, keep[c])]);
        let variances = keep.iter().map(|&i| s[i]).collect();
        Ok(Self {
            mean,
            components,
            variances,
        })
    }

    /// Number of kept components.
    pub fn dim_out(&self) -> usize {
        self.variances.len()
    }

    /// log|det ∂z/∂x| on the kept subspace, −½ Σ ln λ.
    pub fn log_det(&self) -> f64 {
        -0.5 * self.variances.iter().map(|v| v.ln()).sum::<f64>()
    }

    /// x `[n, dim]` → z `[n, k]`.
    ///
    /// # Errors
    /// [`Error::Shape`] for the wrong width.
    pub fn transform(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        if x.ncols() != self.mean.len() {
            return Err(Error::shape("whitening input", self.mean.len(), x.ncols()));
        }
        let scale = self.variances.mapv(|v| 1.0 / v.sqrt());
        Ok((&x - &self.mean).dot(&self.components) * &scale)
    }

    /// z `[n, k]` → x `[n, dim]` (in the kept subspace).
    ///
    /// # Errors
    /// [`Error::Shape`] for the wrong width.
    pub fn inverse(&self, z: ArrayView2<f64>) -> Result<Array2<f64>> {
        if z.ncols() != self.dim_out() {
            return Err(Error::shape("whitened input", self.dim_out(), z.ncols()));
        }
        let scale = self.variances.mapv(f64::sqrt);
        Ok((&z * &scale).dot(&self.components.t()) + &self.mean)
    }
}
