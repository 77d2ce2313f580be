//! Thin dense linear-algebra layer over `faer` (DECISIONS D2): conversions to and from `ndarray`,
//! sorted symmetric eigendecompositions and the truncated inverse square root used by TICA and VAMP.
//!
//! faer has no symmetric-definite generalised eigensolver, so C_τ r = λ C₀ r is solved by
//! whitening with C₀'s eigenvectors and an eigenvalue cutoff (Pérez-Hernández et al. 2013, §II.C);
//! [`inv_sqrt_split`] is that whitening.

use boltzflow_core::{Error, Result};
use faer::{Mat, MatRef, Side};
use ndarray::{Array1, Array2, ArrayView2};

/// Copies an `ndarray` matrix into a (column-major) faer matrix.
pub(crate) fn to_faer(a: ArrayView2<'_, f64>) -> Mat<f64> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[[i, j]])
}

/// Copies a faer matrix into a row-major `ndarray` matrix.
pub(crate) fn from_faer(m: MatRef<'_, f64>) -> Array2<f64> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| m[(i, j)])
}

/// Eigendecomposition of a symmetric matrix, eigenpairs sorted by descending |λ|
/// (ties keep faer's order). Only the lower triangle is read.
///
/// Returns `(λ [n], V [n, n])` with eigenvectors in columns.
pub(crate) fn symmetric_eigen(
    a: ArrayView2<'_, f64>,
    what: &str,
) -> Result<(Array1<f64>, Array2<f64>)> {
    let m = to_faer(a);
    let evd = m
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| Error::Numerical {
            what: what.to_string(),
            reason: format!("symmetric eigendecomposition did not converge ({e:?})"),
        })?;
    let n = a.nrows();
    let s = evd.S().column_vector();
    let u = evd.U();
    let mut order: Vec<usize> = (0..n).collect();
    // faer returns ascending eigenvalues; a stable sort on descending magnitude keeps the
    // larger signed value first among equal magnitudes.
    order.reverse();
    order.sort_by(|&i, &j| s[j].abs().total_cmp(&s[i].abs()));
    let values = Array1::from_iter(order.iter().map(|&k| s[k]));
    let vectors = Array2::from_shape_fn((n, n), |(i, c)| u[(i, order[c])]);
    Ok((values, vectors))
}

/// Flips each column so that its entry of largest magnitude is positive (a sign convention that
/// makes eigenvectors reproducible between libraries).
pub(crate) fn canonical_signs(v: &mut Array2<f64>) {
    for mut col in v.columns_mut() {
        let imax = col
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .map(|(i, _)| i);
        if let Some(imax) = imax
            && col[imax] < 0.0
        {
            col.mapv_inplace(|x| -x);
        }
    }
}

/// The truncated inverse square root of a symmetric positive semi-definite matrix:
/// `L [n, m]` with `L Lᵀ = W⁺` restricted to the eigenvalues |s| ≥ ε (and above any negative
/// eigenvalue's magnitude, which is numerical noise), so `Lᵀ W L = I_m`.
///
/// # Errors
/// [`Error::Numerical`] when no eigenvalue survives (every direction has variance below ε).
pub(crate) fn inv_sqrt_split(
    w: ArrayView2<'_, f64>,
    epsilon: f64,
    what: &str,
) -> Result<Array2<f64>> {
    let (s, mut v) = symmetric_eigen(w, what)?;
    let smin = s.iter().copied().fold(f64::INFINITY, f64::min);
    let cutoff = if smin < 0.0 {
        epsilon.max(-smin + 1e-16)
    } else {
        epsilon
    };
    let rank = s.iter().take_while(|x| x.abs() >= cutoff).count();
    if rank == 0 {
        return Err(Error::Numerical {
            what: what.to_string(),
            reason: format!(
                "every eigenvalue of the covariance matrix is below the cutoff {cutoff:e}: \
                 all input features are constant (zero rank)"
            ),
        });
    }
    canonical_signs(&mut v);
    let mut l = v.slice(ndarray::s![.., ..rank]).to_owned();
    for (mut col, &sk) in l.columns_mut().into_iter().zip(s.iter()) {
        col.mapv_inplace(|x| x / sk.sqrt());
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn inverse_square_root_whitens() {
        let w = array![[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]];
        let l = inv_sqrt_split(w.view(), 1e-10, "test").unwrap();
        let id = l.t().dot(&w).dot(&l);
        for i in 0..3 {
            for j in 0..3 {
                let e = if i == j { 1.0 } else { 0.0 };
                assert!((id[[i, j]] - e).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn rank_is_truncated_and_zero_rank_is_an_error() {
        let w = array![[1.0, 0.0], [0.0, 1e-9]];
        assert_eq!(inv_sqrt_split(w.view(), 1e-6, "t").unwrap().ncols(), 1);
        let z = Array2::<f64>::zeros((2, 2));
        let e = inv_sqrt_split(z.view(), 1e-6, "t").unwrap_err().to_string();
        assert!(e.contains("constant"), "{e}");
    }

    #[test]
    fn eigenpairs_are_sorted_by_magnitude() {
        let a = array![[0.1, 0.0, 0.0], [0.0, -2.0, 0.0], [0.0, 0.0, 1.0]];
        let (s, v) = symmetric_eigen(a.view(), "t").unwrap();
        assert_eq!(s.to_vec(), vec![-2.0, 1.0, 0.1]);
        assert!((v[[1, 0]].abs() - 1.0).abs() < 1e-14);
    }
}
