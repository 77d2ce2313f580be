//! Safe matrix products on row-major slices, through the `gemm` crate (DECISIONS D1).
//!
//! This module is the engine's only `unsafe`: `gemm::gemm` takes raw pointers and strides. Every
//! call checks the slice lengths against the shapes first, so the pointers it passes cover
//! exactly the memory the product reads and writes.
#![allow(unsafe_code)]

use crate::Real;

/// How a matrix operand is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// As written: `[rows, cols]` row-major.
    Plain,
    /// Transposed: the operand is `Mᵀ` where `M` is stored `[cols, rows]` row-major.
    Transposed,
}

/// `c = a · b` (or `c += a · b` when `accumulate`), all row-major, with `a` `[m, k]` and `b`
/// `[k, n]` after applying their [`Layout`]s, and `c` `[m, n]`. Single-threaded: the engine
/// parallelises over the batch instead (DECISIONS D1).
///
/// # Panics
/// If a slice's length disagrees with the shape (a programming error inside the engine; user
/// shapes are validated before they reach here).
#[allow(clippy::too_many_arguments)]
pub fn matmul<T: Real>(
    c: &mut [T],
    a: &[T],
    a_layout: Layout,
    b: &[T],
    b_layout: Layout,
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
) {
    assert_eq!(c.len(), m * n, "gemm: c is not [{m}, {n}]");
    assert_eq!(a.len(), m * k, "gemm: a is not [{m}, {k}]");
    assert_eq!(b.len(), k * n, "gemm: b is not [{k}, {n}]");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(T::zero());
        }
        return;
    }
    let (a_rs, a_cs) = match a_layout {
        Layout::Plain => (k as isize, 1),
        Layout::Transposed => (1, m as isize),
    };
    let (b_rs, b_cs) = match b_layout {
        Layout::Plain => (n as isize, 1),
        Layout::Transposed => (1, k as isize),
    };
    // SAFETY: the lengths were checked above, so with these strides every element index
    // (i·rs + j·cs) the product touches lies inside its slice; `c` is borrowed mutably and does
    // not alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            T::one(),
            T::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    fn transpose(a: &[f64], rows: usize, cols: usize) -> Vec<f64> {
        let mut t = vec![0.0; rows * cols];
        for i in 0..rows {
            for j in 0..cols {
                t[j * rows + i] = a[i * cols + j];
            }
        }
        t
    }

    #[test]
    fn all_layouts_match_the_naive_product() {
        let (m, k, n) = (7, 5, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.71).cos()).collect();
        let want = naive(&a, &b, m, k, n);
        let at = transpose(&a, m, k);
        let bt = transpose(&b, k, n);
        for (aa, al) in [(&a, Layout::Plain), (&at, Layout::Transposed)] {
            for (bb, bl) in [(&b, Layout::Plain), (&bt, Layout::Transposed)] {
                let mut c = vec![1.0; m * n];
                matmul(&mut c, aa, al, bb, bl, m, k, n, false);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-12);
                }
                matmul(&mut c, aa, al, bb, bl, m, k, n, true);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - 2.0 * y).abs() < 1e-12);
                }
            }
        }
    }
}
