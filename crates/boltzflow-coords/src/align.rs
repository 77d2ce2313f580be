//! Kabsch superposition: the rotation and translation that best fit configurations onto a
//! reference (Kabsch, Acta Cryst. A32, 922 (1976)).

use boltzflow_core::{Error, Result};
use faer::Mat;
use ndarray::{Array2, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;

/// Weighted centroid of the points of a flat `[3·n]` row.
fn centroid(x: &[f64], w: &[f64]) -> [f64; 3] {
    let mut c = [0.0; 3];
    let total: f64 = w.iter().sum();
    for (p, wi) in x.chunks_exact(3).zip(w) {
        for k in 0..3 {
            c[k] += wi * p[k];
        }
    }
    c.map(|v| v / total)
}

/// The proper rotation R (row-major 3×3, det +1) minimising Σ wᵢ |R(xᵢ − x̄) − (yᵢ − ȳ)|², and the
/// two weighted centroids x̄, ȳ. `x` and `y` are flat `[3·n]` rows.
pub fn kabsch_rotation(x: &[f64], y: &[f64], w: &[f64]) -> ([[f64; 3]; 3], [f64; 3], [f64; 3]) {
    let (cx, cy) = (centroid(x, w), centroid(y, w));
    // H = Σ w (x − x̄)(y − ȳ)ᵀ
    let mut h = Mat::<f64>::zeros(3, 3);
    for ((p, q), wi) in x.chunks_exact(3).zip(y.chunks_exact(3)).zip(w) {
        for a in 0..3 {
            for b in 0..3 {
                h[(a, b)] += wi * (p[a] - cx[a]) * (q[b] - cy[b]);
            }
        }
    }
    let Ok(svd) = h.svd() else {
        return ([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], cx, cy);
    };
    let (u, v) = (svd.U(), svd.V());
    // R = V diag(1, 1, d) Uᵀ with d = sign det(V Uᵀ) (no reflections).
    let mut r = [[0.0; 3]; 3];
    for a in 0..3 {
        for b in 0..3 {
            r[a][b] = (0..3).map(|k| v[(a, k)] * u[(b, k)]).sum();
        }
    }
    let det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1])
        - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
        + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
    if det < 0.0 {
        for a in 0..3 {
            for b in 0..3 {
                r[a][b] -= 2.0 * v[(a, 2)] * u[(b, 2)];
            }
        }
    }
    (r, cx, cy)
}

/// Superposes every row of `x` (`[n, 3·n_atoms]`) onto `reference` (`[3·n_atoms]`): centroids
/// matched and the optimal proper rotation applied. `weights` (`[n_atoms]`, for example masses)
/// default to 1. Returns the aligned configurations.
///
/// # Errors
/// [`Error::Shape`] if the widths disagree or are not a multiple of 3;
/// [`Error::InvalidParameter`] for negative or all-zero weights.
pub fn align(
    x: ArrayView2<f64>,
    reference: ArrayView1<f64>,
    weights: Option<&[f64]>,
) -> Result<Array2<f64>> {
    let dim = reference.len();
    if !dim.is_multiple_of(3) || x.ncols() != dim {
        return Err(Error::shape(
            "configurations to align",
            format!("[n, {dim}] with 3 coordinates per atom"),
            format!("[{}, {}]", x.nrows(), x.ncols()),
        ));
    }
    let ones = vec![1.0; dim / 3];
    let w = weights.unwrap_or(&ones);
    if w.len() != dim / 3 {
        return Err(Error::shape("alignment weights", dim / 3, w.len()));
    }
    if w.iter().any(|v| !(v.is_finite() && *v >= 0.0)) || w.iter().sum::<f64>() <= 0.0 {
        return Err(Error::invalid(
            "alignment weights",
            "must be finite, non-negative and not all zero",
        ));
    }
    let reference = reference.to_vec();
    let mut out = x.to_owned();
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .for_each(|mut row| {
            let xr = row.to_vec();
            let (r, cx, cy) = kabsch_rotation(&xr, &reference, w);
            for (dst, p) in row
                .as_slice_mut()
                .expect("owned rows are contiguous")
                .chunks_exact_mut(3)
                .zip(xr.chunks_exact(3))
            {
                let d = [p[0] - cx[0], p[1] - cx[1], p[2] - cx[2]];
                for a in 0..3 {
                    dst[a] = cy[a] + r[a][0] * d[0] + r[a][1] * d[1] + r[a][2] * d[2];
                }
            }
        });
    Ok(out)
}
