//! The variational approach for Markov processes (VAMP): the Koopman matrix between whitened
//! instantaneous and time-lagged features, its singular decomposition, and the VAMP-1, VAMP-2 and
//! VAMP-E scores, also cross-validated.
//!
//! With C₀₀^{-1/2} and Cττ^{-1/2} from [`crate::linalg`], K̄ = C₀₀^{-1/2} C₀τ Cττ^{-1/2} = U′ S V′ᵀ;
//! left and right singular functions are ψ = (x − μ₀)ᵀ C₀₀^{-1/2} U′, φ = (y − μ_τ)ᵀ Cττ^{-1/2} V′.
//! Scores count the constant singular function (σ₀ = 1) that mean removal takes out, so the
//! VAMP-r score of k components lies in [1, k + 1].
//!
//! # References
//! Wu & Noé, J. Nonlinear Sci. 30, 23 (2020): Eq. (33) (VAMP-r) and Eq. (30) (VAMP-E).

use crate::covariance::{Covariances, covariances};
use crate::linalg::{from_faer, inv_sqrt_split, symmetric_eigen, to_faer};
use crate::tica::{Dimension, check_constant_features, check_epsilon, check_lagtime};
use boltzflow_core::{Error, Result};
use ndarray::{Array1, Array2, ArrayView2, s};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Which VAMP score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VampScore {
    /// Sum of the singular values (+1).
    Vamp1,
    /// Sum of the squared singular values (+1).
    Vamp2,
    /// The approximation-error score of Eq. (30), 2 tr(S Uᵀ C₀τ V) − tr(S Uᵀ C₀₀ U S Vᵀ Cττ V) (+1).
    VampE,
}

impl std::str::FromStr for VampScore {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "vamp1" | "1" => Ok(VampScore::Vamp1),
            "vamp2" | "2" => Ok(VampScore::Vamp2),
            "vampe" | "e" => Ok(VampScore::VampE),
            _ => Err(Error::invalid(
                "score",
                format!("`{s}` is not one of vamp1, vamp2, vampe"),
            )),
        }
    }
}

/// The VAMP estimator.
#[derive(Debug, Clone)]
pub struct Vamp {
    lagtime: usize,
    epsilon: f64,
    dim: Dimension,
    kinetic_map: bool,
}

impl Vamp {
    /// VAMP at lag time `lagtime` ≥ 1 with ε = 1e-6, all dimensions, no scaling.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a zero lag time.
    pub fn new(lagtime: usize) -> Result<Self> {
        check_lagtime(lagtime)?;
        Ok(Self {
            lagtime,
            epsilon: 1e-6,
            dim: Dimension::All,
            kinetic_map: false,
        })
    }

    /// Eigenvalue cutoff of the whitening of C₀₀ and Cττ.
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Output dimension.
    pub fn dim(mut self, dim: Dimension) -> Self {
        self.dim = dim;
        self
    }

    /// Scale singular functions by their singular values.
    pub fn kinetic_map(mut self, on: bool) -> Self {
        self.kinetic_map = on;
        self
    }

    /// Fits trajectories `[n_frames, n_features]`.
    ///
    /// # Errors
    /// As [`crate::tica::Tica::fit`].
    pub fn fit(&self, trajs: &[ArrayView2<'_, f64>]) -> Result<VampModel> {
        let cov = covariances(trajs, self.lagtime)?;
        self.fit_covariances(&cov)
    }

    /// Fits precomputed, non-symmetrised covariances.
    ///
    /// # Errors
    /// As [`Self::fit`]; [`Error::InvalidParameter`] for symmetrised input.
    pub fn fit_covariances(&self, cov: &Covariances) -> Result<VampModel> {
        if cov.symmetric {
            return Err(Error::invalid(
                "covariances",
                "VAMP needs the non-symmetrised covariances",
            ));
        }
        check_epsilon(self.epsilon)?;
        check_constant_features(&cov.c00)?;
        let l0 = inv_sqrt_split(cov.c00.view(), self.epsilon, "VAMP whitening of C00")?;
        let lt = inv_sqrt_split(cov.ctt.view(), self.epsilon, "VAMP whitening of Ctt")?;
        let k = l0.t().dot(&cov.c0t).dot(&lt);
        let svd = to_faer(k.view()).thin_svd().map_err(|e| Error::Numerical {
            what: "VAMP Koopman matrix".into(),
            reason: format!("singular value decomposition did not converge ({e:?})"),
        })?;
        let sv: Array1<f64> = svd.S().column_vector().iter().copied().collect();
        let a = from_faer(svd.U());
        let b = from_faer(svd.V());
        let rank = l0.ncols().min(lt.ncols());
        let dim = self.dim.resolve(sv.as_slice().expect("contiguous"), rank);
        let mut u = l0.dot(&a.slice(s![.., ..dim]));
        let mut v = lt.dot(&b.slice(s![.., ..dim]));
        if self.kinetic_map {
            for j in 0..dim {
                u.column_mut(j).mapv_inplace(|x| x * sv[j]);
                v.column_mut(j).mapv_inplace(|x| x * sv[j]);
            }
        }
        Ok(VampModel {
            lagtime: self.lagtime,
            singular_values: sv,
            u,
            v,
            dim,
            kinetic_map: self.kinetic_map,
            covariances: cov.clone(),
        })
    }
}

/// A fitted VAMP model.
#[derive(Debug, Clone)]
pub struct VampModel {
    /// Lag time τ in frames.
    pub lagtime: usize,
    /// All singular values of the whitened Koopman matrix, descending, `[min(rank₀, rank_τ)]`.
    pub singular_values: Array1<f64>,
    /// Instantaneous (left) coefficients, `[n_features, dim]`.
    pub u: Array2<f64>,
    /// Time-lagged (right) coefficients, `[n_features, dim]`.
    pub v: Array2<f64>,
    /// Number of kept singular functions.
    pub dim: usize,
    kinetic_map: bool,
    /// The covariances the model was fitted on.
    pub covariances: Covariances,
}

impl VampModel {
    /// Left singular functions of `[n_frames, n_features]` data: `(x − μ₀) U`, `[n_frames, dim]`.
    ///
    /// # Errors
    /// [`Error::Shape`] on a feature-count mismatch.
    pub fn transform(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        let d = self.covariances.n_features();
        if x.ncols() != d {
            return Err(Error::shape(
                "VAMP input",
                format!("{d} features"),
                format!("{} features", x.ncols()),
            ));
        }
        Ok((&x - &self.covariances.mean_0).dot(&self.u))
    }

    /// The VAMP score of this model's first `dim` (default: the model's) singular functions, on
    /// its own data or on `test` covariances (cross-validation), including the constant function.
    ///
    /// # Errors
    /// [`Error::Shape`] when `test` has another feature count; [`Error::Numerical`] if a
    /// projection of the test data has no variance.
    pub fn score(
        &self,
        score: VampScore,
        test: Option<&Covariances>,
        dim: Option<usize>,
        epsilon: f64,
    ) -> Result<f64> {
        let test = test.unwrap_or(&self.covariances);
        if test.n_features() != self.covariances.n_features() || test.symmetric {
            return Err(Error::shape(
                "VAMP test covariances",
                format!(
                    "non-symmetrised, {} features",
                    self.covariances.n_features()
                ),
                format!(
                    "{} features (symmetric: {})",
                    test.n_features(),
                    test.symmetric
                ),
            ));
        }
        let k = dim.unwrap_or(self.dim).min(self.dim);
        let (mut u, mut v) = (
            self.u.slice(s![.., ..k]).to_owned(),
            self.v.slice(s![.., ..k]).to_owned(),
        );
        if self.kinetic_map {
            // undo the scaling: the scores are defined on the normalised singular functions
            for j in 0..k {
                let sj = self.singular_values[j];
                if sj > 0.0 {
                    u.column_mut(j).mapv_inplace(|x| x / sj);
                    v.column_mut(j).mapv_inplace(|x| x / sj);
                }
            }
        }
        let value = match score {
            VampScore::VampE => {
                let sdiag = Array2::from_diag(&self.singular_values.slice(s![..k]));
                let a = sdiag.dot(&u.t()).dot(&test.c0t).dot(&v);
                let b = sdiag
                    .dot(&u.t())
                    .dot(&test.c00)
                    .dot(&u)
                    .dot(&sdiag)
                    .dot(&v.t())
                    .dot(&test.ctt)
                    .dot(&v);
                2.0 * a.diag().sum() - b.diag().sum()
            }
            VampScore::Vamp1 | VampScore::Vamp2 => {
                let a = inv_sqrt_square(&u.t().dot(&test.c00).dot(&u), epsilon)?;
                let b = u.t().dot(&test.c0t).dot(&v);
                let c = inv_sqrt_square(&v.t().dot(&test.ctt).dot(&v), epsilon)?;
                let m = a.dot(&b).dot(&c);
                let svd = to_faer(m.view()).thin_svd().map_err(|e| Error::Numerical {
                    what: "VAMP score".into(),
                    reason: format!("singular value decomposition did not converge ({e:?})"),
                })?;
                let s = svd.S().column_vector();
                let r = if score == VampScore::Vamp1 { 1 } else { 2 };
                s.iter().map(|x| x.powi(r)).sum()
            }
        };
        Ok(value + 1.0)
    }
}

/// The symmetric inverse square root V diag(s^{-1/2}) Vᵀ restricted to eigenvalues ≥ ε.
fn inv_sqrt_square(m: &Array2<f64>, epsilon: f64) -> Result<Array2<f64>> {
    let (s, v) = symmetric_eigen(m.view(), "VAMP score whitening")?;
    let keep: Vec<usize> = (0..s.len()).filter(|&i| s[i] >= epsilon).collect();
    if keep.is_empty() {
        return Err(Error::Numerical {
            what: "VAMP score".into(),
            reason: "the test data have no variance along the model's singular functions".into(),
        });
    }
    // V diag(s^{-1/2}) Vᵀ = (V diag(s^{-1/4}))(V diag(s^{-1/4}))ᵀ
    let vk = Array2::from_shape_fn((v.nrows(), keep.len()), |(a, c)| {
        v[[a, keep[c]]] / s[keep[c]].sqrt().sqrt()
    });
    Ok(vk.dot(&vk.t()))
}

/// Cross-validated VAMP scores: trajectories are cut into blocks of `block` frames (≥ τ + 1),
/// the blocks shuffled (seeded) and split in half, the model fitted on one half and scored on
/// the other, `n_splits` times. Returns one score per split.
///
/// # Errors
/// [`Error::InvalidParameter`] if there are fewer than two blocks; fit errors.
pub fn cross_validated_score(
    vamp: &Vamp,
    trajs: &[ArrayView2<'_, f64>],
    score: VampScore,
    dim: Option<usize>,
    block: usize,
    n_splits: usize,
    seed: u64,
) -> Result<Vec<f64>> {
    if block <= vamp.lagtime {
        return Err(Error::invalid(
            "block",
            format!(
                "blocks of {block} frames hold no pair at lag {}",
                vamp.lagtime
            ),
        ));
    }
    let blocks: Vec<ArrayView2<'_, f64>> = trajs
        .iter()
        .flat_map(|t| {
            let n = t.nrows() / block;
            (0..n).map(move |b| t.slice_move(s![b * block..(b + 1) * block, ..]))
        })
        .collect();
    if blocks.len() < 2 {
        return Err(Error::invalid(
            "block",
            format!("{block} frames per block leaves fewer than two blocks to split"),
        ));
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n_splits);
    for _ in 0..n_splits {
        let mut order: Vec<usize> = (0..blocks.len()).collect();
        for i in (1..order.len()).rev() {
            let j = rng.random_range(0..=i);
            order.swap(i, j);
        }
        let half = blocks.len() / 2;
        let train: Vec<_> = order[..half].iter().map(|&i| blocks[i]).collect();
        let test: Vec<_> = order[half..].iter().map(|&i| blocks[i]).collect();
        let model = vamp.fit(&train)?;
        let test_cov = covariances(&test, vamp.lagtime)?;
        out.push(model.score(score, Some(&test_cov), dim, vamp.epsilon)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traj() -> Array2<f64> {
        Array2::from_shape_fn((4000, 3), |(t, j)| {
            let t = t as f64;
            (t * 0.01 * (j + 1) as f64).sin() + 0.3 * (t * 1.3 + j as f64).cos()
        })
    }

    #[test]
    fn training_scores_are_sums_of_singular_values() {
        let t = traj();
        let m = Vamp::new(5).unwrap().fit(&[t.view()]).unwrap();
        let s = &m.singular_values;
        let v1 = m.score(VampScore::Vamp1, None, None, 1e-10).unwrap();
        let v2 = m.score(VampScore::Vamp2, None, None, 1e-10).unwrap();
        let ve = m.score(VampScore::VampE, None, None, 1e-10).unwrap();
        assert!((v1 - 1.0 - s.sum()).abs() < 1e-9);
        assert!((v2 - 1.0 - s.mapv(|x| x * x).sum()).abs() < 1e-9);
        assert!(
            (ve - v2).abs() < 1e-9,
            "on training data VAMP-E equals VAMP-2"
        );
        // singular functions are whitened: Uᵀ C00 U = I
        let g = m.u.t().dot(&m.covariances.c00).dot(&m.u);
        for i in 0..g.nrows() {
            assert!((g[[i, i]] - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn cross_validation_runs_and_is_seeded() {
        let t = traj();
        let v = Vamp::new(5).unwrap();
        let a =
            cross_validated_score(&v, &[t.view()], VampScore::Vamp2, Some(2), 200, 3, 7).unwrap();
        let b =
            cross_validated_score(&v, &[t.view()], VampScore::Vamp2, Some(2), 200, 3, 7).unwrap();
        assert_eq!(a, b);
        assert!(a.iter().all(|x| *x > 1.0 && *x <= 3.0 + 1e-9), "{a:?}");
    }
}
