//! PCCA+ (Robust Perron Cluster Analysis): fuzzy memberships χ = X A of states in m metastable
//! sets from the m dominant, π-orthonormal right eigenvectors X `[n, m]` (first column ≡ 1).
//!
//! The rotation A starts from the inner simplex algorithm, is made feasible (χ ≥ 0, unit row
//! sums) and is then optimised for crispness, trace(diag(A₀,:)⁻¹ AᵀA), which is at most m, with
//! a Nelder–Mead search over the free block A[1:, 1:] (Röblitz & Weber 2013, §3–4; Deuflhard
//! and Weber 2005). Nelder–Mead is written here (about 60 lines) rather than pulling in an
//! optimisation framework for one derivative-free search over at most (m−1)² variables.

use boltzflow_core::{Error, Result};
use faer::linalg::solvers::Solve;
use ndarray::{Array1, Array2, ArrayView2, s};

/// Membership matrix χ `[n, m]` for eigenvectors `x` `[n, m]`.
///
/// # Errors
/// [`Error::Numerical`] if the simplex vertices are degenerate.
pub(crate) fn memberships(x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
    let (n, m) = x.dim();
    let spread = |k: usize| {
        let c = x.column(k);
        c.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            - c.iter().copied().fold(f64::INFINITY, f64::min)
    };
    if spread(0) > 1e-6 * x.column(0).iter().map(|v| v.abs()).fold(0.0, f64::max) {
        return Err(Error::Numerical {
            what: "PCCA+".into(),
            reason:
                "the first eigenvector is not constant: the transition matrix is not irreducible"
                    .into(),
        });
    }
    let a0 = inner_simplex(x)?;
    let free0: Vec<f64> = a0.slice(s![1.., 1..]).iter().copied().collect();
    let objective = |v: &[f64]| -> f64 {
        let mut a = a0.clone();
        for (slot, &val) in a.slice_mut(s![1.., 1..]).iter_mut().zip(v) {
            *slot = val;
        }
        fill(&mut a, x);
        -crispness(&a)
    };
    let best = if m > 1 && n > m {
        nelder_mead(&objective, &free0, 200 * free0.len().max(1))
    } else {
        free0
    };
    let mut a = a0.clone();
    for (slot, &val) in a.slice_mut(s![1.., 1..]).iter_mut().zip(&best) {
        *slot = val;
    }
    fill(&mut a, x);
    let mut chi = x.dot(&a);
    // round-off can leave −1e-16 entries and row sums 1 ± 1e-15
    chi.mapv_inplace(|v| v.max(0.0));
    for mut row in chi.rows_mut() {
        let t = row.sum();
        row /= t;
    }
    Ok(chi)
}

/// trace(diag(A₀,:)⁻¹ AᵀA): equals m for a perfectly crisp clustering.
fn crispness(a: &Array2<f64>) -> f64 {
    (0..a.ncols())
        .map(|j| a.column(j).iter().map(|v| v * v).sum::<f64>() / a[[0, j]])
        .sum()
}

/// Inner simplex algorithm: picks m rows of X that span the largest simplex and returns
/// A = X[rows]⁻¹.
fn inner_simplex(x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
    let (n, m) = x.dim();
    let norm = |r: ndarray::ArrayView1<'_, f64>| r.dot(&r).sqrt();
    let first = (0..n)
        .max_by(|&a, &b| norm(x.row(a)).total_cmp(&norm(x.row(b))))
        .unwrap_or(0);
    let mut ortho = x.to_owned();
    let base = x.row(first).to_owned();
    for mut r in ortho.rows_mut() {
        r -= &base;
    }
    let mut index = vec![first];
    for _ in 1..m {
        let last = *index.last().expect("nonempty");
        let v = ortho.row(last).to_owned();
        let vn = v.dot(&v).sqrt();
        if vn > 0.0 {
            let u = &v / vn;
            for mut r in ortho.rows_mut() {
                let p = r.dot(&u);
                r.scaled_add(-p, &u);
            }
        }
        let next = (0..n)
            .max_by(|&a, &b| norm(ortho.row(a)).total_cmp(&norm(ortho.row(b))))
            .unwrap_or(0);
        index.push(next);
    }
    let vertices = Array2::from_shape_fn((m, m), |(i, j)| x[[index[i], j]]);
    let lu = crate::linalg::to_faer(vertices.view()).partial_piv_lu();
    let inv = lu.solve(faer::Mat::<f64>::identity(m, m));
    let a = crate::linalg::from_faer(inv.as_ref());
    if a.iter().any(|v| !v.is_finite()) {
        return Err(Error::Numerical {
            what: "PCCA+".into(),
            reason: "degenerate simplex: the eigenvectors do not separate m sets".into(),
        });
    }
    Ok(a)
}

/// Makes A feasible: rows 1.. sum to 0 (so χ rows sum to 1), the first row lifts each column's
/// minimum to 0, and A is scaled so that the first row sums to 1.
fn fill(a: &mut Array2<f64>, x: ArrayView2<'_, f64>) {
    let m = a.nrows();
    for i in 1..m {
        let s: f64 = (1..m).map(|j| a[[i, j]]).sum();
        a[[i, 0]] = -s;
    }
    let inner = x.slice(s![.., 1..]).dot(&a.slice(s![1.., ..]));
    for j in 0..m {
        let min = inner
            .column(j)
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        a[[0, j]] = -min;
    }
    // scaling the whole of A keeps rows 1.. summing to 0 and makes the first row sum to 1
    let total: f64 = a.row(0).sum();
    a.mapv_inplace(|v| v / total);
}

/// Nelder–Mead minimisation with the usual coefficients (1, 2, ½, ½), an initial simplex of 5%
/// steps (0.00025 for zero coordinates), stopping when both the simplex's spread in x and in f
/// fall below 1e-4 or after `max_iter` iterations.
fn nelder_mead(f: &dyn Fn(&[f64]) -> f64, x0: &[f64], max_iter: usize) -> Vec<f64> {
    let n = x0.len();
    let mut simplex: Vec<Array1<f64>> = vec![Array1::from(x0.to_vec())];
    for i in 0..n {
        let mut v = Array1::from(x0.to_vec());
        v[i] = if v[i] != 0.0 { 1.05 * v[i] } else { 0.00025 };
        simplex.push(v);
    }
    let mut fv: Vec<f64> = simplex
        .iter()
        .map(|v| f(v.as_slice().expect("contiguous")))
        .collect();
    let eval = |v: &Array1<f64>| f(v.as_slice().expect("contiguous"));
    for _ in 0..max_iter {
        let mut order: Vec<usize> = (0..=n).collect();
        order.sort_by(|&a, &b| fv[a].total_cmp(&fv[b]));
        simplex = order.iter().map(|&i| simplex[i].clone()).collect();
        fv = order.iter().map(|&i| fv[i]).collect();
        let xspread = simplex[1..]
            .iter()
            .map(|v| {
                (v - &simplex[0])
                    .iter()
                    .fold(0.0_f64, |m, d| m.max(d.abs()))
            })
            .fold(0.0, f64::max);
        let fspread = fv[1..]
            .iter()
            .map(|v| (v - fv[0]).abs())
            .fold(0.0, f64::max);
        if xspread <= 1e-4 && fspread <= 1e-4 {
            break;
        }
        let centroid = simplex[..n].iter().fold(Array1::zeros(n), |acc, v| acc + v) / n as f64;
        let worst = simplex[n].clone();
        let xr = &centroid * 2.0 - &worst;
        let fr = eval(&xr);
        if fr < fv[0] {
            let xe = &centroid * 3.0 - &worst * 2.0;
            let fe = eval(&xe);
            if fe < fr {
                simplex[n] = xe;
                fv[n] = fe;
            } else {
                simplex[n] = xr;
                fv[n] = fr;
            }
            continue;
        }
        if fr < fv[n - 1] {
            simplex[n] = xr;
            fv[n] = fr;
            continue;
        }
        let (xc, fc) = if fr < fv[n] {
            let xc = &centroid * 1.5 - &worst * 0.5;
            let fc = eval(&xc);
            (xc, fc)
        } else {
            let xc = &centroid * 0.5 + &worst * 0.5;
            let fc = eval(&xc);
            (xc, fc)
        };
        if fc < fv[n].min(fr) {
            simplex[n] = xc;
            fv[n] = fc;
            continue;
        }
        for i in 1..=n {
            simplex[i] = &simplex[0] + &((&simplex[i] - &simplex[0]) * 0.5);
            fv[i] = eval(&simplex[i]);
        }
    }
    let best = (0..=n)
        .min_by(|&a, &b| fv[a].total_cmp(&fv[b]))
        .unwrap_or(0);
    simplex[best].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nelder_mead_finds_a_quadratic_minimum() {
        let f = |v: &[f64]| (v[0] - 1.0).powi(2) + 10.0 * (v[1] + 2.0).powi(2);
        let x = nelder_mead(&f, &[0.3, 0.4], 2000);
        assert!(
            (x[0] - 1.0).abs() < 1e-2 && (x[1] + 2.0).abs() < 1e-2,
            "{x:?}"
        );
    }
}
