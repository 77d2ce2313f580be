//! Time-lagged independent component analysis (TICA).
//!
//! Keeps the linear feature combinations with the largest autocorrelation at lag τ by solving the
//! generalised symmetric eigenproblem C₀τ r = λ C₀₀ r on the reversibly symmetrised covariances;
//! implied timescales are −τ / ln|λ|.
//!
//! # References
//! Molgedey & Schuster, Phys. Rev. Lett. 72, 3634 (1994); Pérez-Hernández et al., J. Chem. Phys.
//! 139, 015102 (2013); kinetic map: Noé & Clementi, J. Chem. Theory Comput. 11, 5002 (2015).

use crate::covariance::{Covariances, covariances};
use crate::linalg::{canonical_signs, inv_sqrt_split, symmetric_eigen};
use boltzflow_core::{Error, Result};
use ndarray::{Array1, Array2, ArrayView2, s};

/// How many components a TICA or VAMP model keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dimension {
    /// Every component the numerical rank allows.
    All,
    /// At most this many components.
    Count(usize),
    /// The fewest leading components whose cumulative kinetic variance Σλ²/Σλ²_all reaches this
    /// fraction, in (0, 1].
    KineticVariance(f64),
}

impl Dimension {
    fn validate(self) -> Result<()> {
        match self {
            Dimension::Count(0) => Err(Error::invalid("dim", "keep at least one component")),
            Dimension::KineticVariance(f) if !(f > 0.0 && f <= 1.0) => Err(Error::invalid(
                "var_cutoff",
                format!("{f} is not a fraction in (0, 1]"),
            )),
            _ => Ok(()),
        }
    }

    /// Number of components kept from `values` (sorted by descending magnitude) with `rank`
    /// numerically available.
    pub(crate) fn resolve(self, values: &[f64], rank: usize) -> usize {
        match self {
            Dimension::All => rank,
            Dimension::Count(n) => n.min(rank),
            Dimension::KineticVariance(f) if f >= 1.0 => rank,
            Dimension::KineticVariance(f) => {
                let c = cumulative_kinetic_variance(values);
                (c.iter().take_while(|&&v| v < f).count() + 1).min(rank)
            }
        }
    }
}

/// Cumulative fraction Σ_{j≤i} λ_j² / Σ_j λ_j².
pub fn cumulative_kinetic_variance(values: &[f64]) -> Array1<f64> {
    let mut acc = 0.0;
    let mut c: Array1<f64> = values
        .iter()
        .map(|v| {
            acc += v * v;
            acc
        })
        .collect();
    if acc > 0.0 {
        c /= acc;
    }
    c
}

/// How the TICA coordinates are scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scaling {
    /// Unit variance along each component.
    None,
    /// Each component multiplied by its eigenvalue, so Euclidean distances approximate kinetic
    /// distances (Noé & Clementi 2015).
    KineticMap,
    /// Each component multiplied by √(t_i/2) with regularised timescales t_i
    /// (commute map, Noé, Banisch & Clementi 2016).
    CommuteMap,
}

/// The TICA estimator: hyperparameters, validated when built.
///
/// ```
/// # use boltzflow_kinetics::tica::{Tica, Dimension};
/// let traj = ndarray::Array2::from_shape_fn((500, 2), |(t, j)| ((t as f64) * 0.05 * (j + 1) as f64).sin());
/// let model = Tica::new(2)?.dim(Dimension::Count(1)).fit(&[traj.view()])?;
/// assert_eq!(model.transform(traj.view())?.ncols(), 1);
/// # Ok::<(), boltzflow_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Tica {
    lagtime: usize,
    epsilon: f64,
    dim: Dimension,
    scaling: Scaling,
}

impl Tica {
    /// TICA at lag time `lagtime` ≥ 1 frames with ε = 1e-6, all dimensions, kinetic-map scaling
    /// (deeptime's defaults).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a zero lag time.
    pub fn new(lagtime: usize) -> Result<Self> {
        check_lagtime(lagtime)?;
        Ok(Self {
            lagtime,
            epsilon: 1e-6,
            dim: Dimension::All,
            scaling: Scaling::KineticMap,
        })
    }

    /// Eigenvalue cutoff on C₀₀: directions with variance below ε are dropped (rank truncation).
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Output dimension.
    pub fn dim(mut self, dim: Dimension) -> Self {
        self.dim = dim;
        self
    }

    /// Output scaling.
    pub fn scaling(mut self, scaling: Scaling) -> Self {
        self.scaling = scaling;
        self
    }

    fn validate(&self) -> Result<()> {
        self.dim.validate()?;
        check_epsilon(self.epsilon)
    }

    /// Fits trajectories, each `[n_frames, n_features]`.
    ///
    /// # Errors
    /// Bad data (see [`crate::covariance::CovarianceAccumulator`]); [`Error::Numerical`] naming
    /// the constant features when a feature never changes, or when no direction is left.
    pub fn fit(&self, trajs: &[ArrayView2<'_, f64>]) -> Result<TicaModel> {
        let cov = covariances(trajs, self.lagtime)?;
        self.fit_covariances(&cov)
    }

    /// Fits precomputed covariances (symmetrised here if they are not already).
    ///
    /// # Errors
    /// As [`Self::fit`].
    pub fn fit_covariances(&self, cov: &Covariances) -> Result<TicaModel> {
        self.validate()?;
        let cov = cov.symmetrized();
        check_constant_features(&cov.c00)?;
        let l = inv_sqrt_split(cov.c00.view(), self.epsilon, "TICA whitening of C00")?;
        let rank = l.ncols();
        let ct = l.t().dot(&cov.c0t).dot(&l);
        let (values, w) = symmetric_eigen(ct.view(), "TICA eigenproblem")?;
        let mut vectors = l.dot(&w);
        canonical_signs(&mut vectors);
        let dim = self
            .dim
            .resolve(values.as_slice().expect("contiguous"), rank);
        let tau = self.lagtime as f64;
        match self.scaling {
            Scaling::None => {}
            Scaling::KineticMap => {
                for (mut c, &v) in vectors.columns_mut().into_iter().zip(values.iter()) {
                    c *= v;
                }
            }
            Scaling::CommuteMap => {
                for (mut c, &v) in vectors.columns_mut().into_iter().zip(values.iter()) {
                    // timescales 1 − τ/ln|λ| damped below the lag time (Noé et al. 2016, §2.5)
                    let t = 1.0 - tau / v.abs().ln();
                    let reg =
                        0.5 * t * ((std::f64::consts::PI * (t - tau) / tau + 1.0).tanh()).max(0.0);
                    c *= (reg / 2.0).sqrt();
                }
            }
        }
        Ok(TicaModel {
            lagtime: self.lagtime,
            mean: cov.mean_0.clone(),
            eigenvalues: values,
            eigenvectors: vectors,
            dim,
            rank,
            covariances: cov,
        })
    }
}

/// Rejects a zero lag time (shared by every lagged estimator).
pub(crate) fn check_lagtime(lagtime: usize) -> Result<()> {
    if lagtime == 0 {
        return Err(Error::invalid("lagtime", "must be at least 1 frame"));
    }
    Ok(())
}

/// Rejects a negative or non-finite eigenvalue cutoff.
pub(crate) fn check_epsilon(epsilon: f64) -> Result<()> {
    if !(epsilon >= 0.0 && epsilon.is_finite()) {
        return Err(Error::invalid(
            "epsilon",
            format!("{epsilon} is not a finite number ≥ 0"),
        ));
    }
    Ok(())
}

/// Rejects features with zero variance, naming them: such a column carries no information and
/// makes C₀₀ singular. (deeptime drops them silently through the ε cutoff; we ask the user.)
pub(crate) fn check_constant_features(c00: &Array2<f64>) -> Result<()> {
    let scale = c00.diag().iter().fold(0.0_f64, |m, &v| m.max(v.abs()));
    let constant: Vec<usize> = c00
        .diag()
        .iter()
        .enumerate()
        .filter(|(_, v)| **v <= 1e-14 * scale.max(f64::MIN_POSITIVE))
        .map(|(i, _)| i)
        .collect();
    if constant.is_empty() {
        return Ok(());
    }
    let list = constant
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let reason = if constant.len() == c00.nrows() {
        "all input features are constant in every frame (zero rank): nothing varies to analyse"
            .to_string()
    } else {
        format!(
            "feature column(s) {list} are constant in every frame (zero variance); \
             remove them from the input, they carry no kinetic information"
        )
    };
    Err(Error::Numerical {
        what: "covariance of the input features".into(),
        reason,
    })
}

/// A fitted TICA model: the mean, the generalised eigenpairs and the kept dimension.
#[derive(Debug, Clone)]
pub struct TicaModel {
    /// Lag time τ in frames.
    pub lagtime: usize,
    /// Mean removed before projection, `[n_features]`.
    pub mean: Array1<f64>,
    /// Eigenvalues λ, by descending magnitude, `[rank]`.
    pub eigenvalues: Array1<f64>,
    /// Eigenvectors (scaled as configured) in columns, `[n_features, rank]`.
    pub eigenvectors: Array2<f64>,
    /// Number of components `transform` returns.
    pub dim: usize,
    /// Numerical rank of C₀₀ after the ε cutoff.
    pub rank: usize,
    /// The symmetrised covariances the model was fitted on.
    pub covariances: Covariances,
}

impl TicaModel {
    /// Projects `[n_frames, n_features]` onto the first `dim` components: `(x − μ) R`.
    ///
    /// # Errors
    /// [`Error::Shape`] if the feature count differs from the training data.
    pub fn transform(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        if x.ncols() != self.mean.len() {
            return Err(Error::shape(
                "TICA input",
                format!("{} features", self.mean.len()),
                format!("{} features", x.ncols()),
            ));
        }
        Ok((&x - &self.mean).dot(&self.eigenvectors.slice(s![.., ..self.dim])))
    }

    /// Implied timescales −τ/ln|λ_i| in frames for the kept components, `[dim]`.
    pub fn timescales(&self) -> Array1<f64> {
        implied_timescales(
            self.eigenvalues
                .slice(s![..self.dim])
                .as_slice()
                .expect("contiguous"),
            self.lagtime as f64,
        )
    }

    /// Cumulative kinetic variance over all `rank` components.
    pub fn cumulative_kinetic_variance(&self) -> Array1<f64> {
        cumulative_kinetic_variance(self.eigenvalues.as_slice().expect("contiguous"))
    }
}

/// Implied timescales t_i = −τ / ln|λ_i| (in the units of τ). |λ| ≥ 1 gives +∞.
pub fn implied_timescales(eigenvalues: &[f64], lagtime: f64) -> Array1<f64> {
    eigenvalues
        .iter()
        .map(|&l| {
            let a = l.abs();
            if a >= 1.0 {
                f64::INFINITY
            } else {
                -lagtime / a.ln()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_feature_is_named() {
        let traj = Array2::from_shape_fn((200, 3), |(t, j)| {
            if j == 1 {
                4.0
            } else {
                ((t * (j + 1)) as f64 * 0.1).sin()
            }
        });
        let e = Tica::new(1)
            .unwrap()
            .fit(&[traj.view()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("feature column(s) 1 are constant"), "{e}");
        let flat = Array2::from_elem((50, 2), 1.5);
        let e = Tica::new(1)
            .unwrap()
            .fit(&[flat.view()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("zero rank"), "{e}");
    }

    #[test]
    fn bad_parameters_are_rejected_at_build() {
        assert!(Tica::new(0).is_err());
        let t = Array2::from_shape_fn((50, 1), |(t, _)| (t as f64).sin());
        assert!(
            Tica::new(1)
                .unwrap()
                .dim(Dimension::KineticVariance(1.5))
                .fit(&[t.view()])
                .is_err()
        );
    }
}
