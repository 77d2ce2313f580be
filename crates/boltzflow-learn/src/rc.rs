//! The reaction-coordinate loss J_RC (Noé et al., Science 2019): minus the entropy of the
//! distribution of a reaction coordinate R(x) over a generated batch. Each sample spreads over a
//! grid of Gaussian kernels on the configured bounds (normalised per sample), the batch mean of
//! these memberships is a histogram h, and J_RC = Σ_j h_j ln h_j. Minimising it spreads the
//! generator along R, so that transition regions are sampled.

use boltzflow_core::{Coordinate, Error, Result};
use ndarray::Array2;

/// J_RC on a grid of kernels.
#[derive(Debug, Clone, PartialEq)]
pub struct RcEntropy {
    /// The reaction coordinate R(x).
    pub coordinate: Coordinate,
    /// Kernel centres (uniform on the bounds).
    pub grid: Vec<f64>,
    /// Kernel standard deviation.
    pub width: f64,
}

impl RcEntropy {
    /// `n_grid` kernels on [lo, hi] with width `width` (default: the grid spacing).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for empty bounds or fewer than 2 grid points.
    pub fn new(
        coordinate: Coordinate,
        lo: f64,
        hi: f64,
        n_grid: usize,
        width: Option<f64>,
    ) -> Result<Self> {
        if lo.is_nan() || hi.is_nan() || hi <= lo || n_grid < 2 {
            return Err(Error::invalid(
                "train.rc_bounds",
                format!("need lo < hi and ≥ 2 grid points, got [{lo}, {hi}] with {n_grid}"),
            ));
        }
        let spacing = (hi - lo) / (n_grid - 1) as f64;
        let width = width.unwrap_or(spacing);
        if !(width > 0.0 && width.is_finite()) {
            return Err(Error::invalid(
                "train.rc_width",
                format!("must be positive, got {width}"),
            ));
        }
        Ok(Self {
            coordinate,
            grid: (0..n_grid).map(|j| lo + spacing * j as f64).collect(),
            width,
        })
    }

    /// Draw weights of `rows` (`[n, dim]` row-major, f32 as training data are kept) that
    /// balance them along the coordinate: each row falls into the bin of its nearest grid point,
    /// h is the rows' histogram over the bins, and a row weighs min(h_max/h, `max_ratio`), so
    /// bins within a factor `max_ratio` of the fullest one are drawn equally often.
    pub fn balance_weights(&self, rows: &[f32], dim: usize, max_ratio: f64) -> Vec<f64> {
        let (lo, m) = (self.grid[0], self.grid.len());
        let spacing = self.grid[1] - lo;
        let x = ndarray::ArrayView2::from_shape((rows.len() / dim, dim), rows)
            .expect("rows of dim values");
        let bins: Vec<usize> = x
            .rows()
            .into_iter()
            .map(|r| {
                let s = self.coordinate.value(r.mapv(f64::from).view());
                ((s - lo) / spacing).round().clamp(0.0, (m - 1) as f64) as usize
            })
            .collect();
        let mut h = vec![0usize; m];
        bins.iter().for_each(|&b| h[b] += 1);
        let h_max = h.iter().copied().max().unwrap_or(0) as f64;
        bins.iter()
            .map(|&b| (h_max / h[b] as f64).min(max_ratio))
            .collect()
    }

    /// J_RC of the batch `x` `[n, dim]`; adds w·∂J_RC/∂x to `grad` `[n, dim]`.
    pub fn loss_and_gradient(&self, x: &Array2<f64>, w: f64, grad: &mut Array2<f64>) -> f64 {
        let n = x.nrows();
        let m = self.grid.len();
        let inv_var = 1.0 / (self.width * self.width);
        let r: Vec<f64> = self.coordinate.values(x);
        // Memberships K[n, j] = softmax_j(−(r_n − g_j)²/2σ²).
        let mut k = vec![0.0; n * m];
        for (row, &rn) in k.chunks_exact_mut(m).zip(&r) {
            let a: Vec<f64> = self
                .grid
                .iter()
                .map(|g| -0.5 * (rn - g).powi(2) * inv_var)
                .collect();
            let amax = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut s = 0.0;
            for (o, ai) in row.iter_mut().zip(&a) {
                *o = (ai - amax).exp();
                s += *o;
            }
            row.iter_mut().for_each(|o| *o /= s);
        }
        let mut h = vec![0.0; m];
        for row in k.chunks_exact(m) {
            for (hj, kj) in h.iter_mut().zip(row) {
                *hj += kj / n as f64;
            }
        }
        let tiny = 1e-300;
        let loss: f64 = h.iter().map(|&hj| hj * (hj + tiny).ln()).sum();
        // ∂J/∂K[n, j] = (ln h_j + 1)/N; through the softmax to a[n, j], then to r_n and x_n.
        let c: Vec<f64> = h
            .iter()
            .map(|&hj| ((hj + tiny).ln() + 1.0) / n as f64)
            .collect();
        let mut g_row = vec![0.0; x.ncols()];
        for ((row, &rn), (xr, mut gr)) in k
            .chunks_exact(m)
            .zip(&r)
            .zip(x.rows().into_iter().zip(grad.rows_mut()))
        {
            let mean: f64 = row.iter().zip(&c).map(|(kj, cj)| kj * cj).sum();
            let d_r: f64 = row
                .iter()
                .zip(&c)
                .zip(&self.grid)
                .map(|((kj, cj), g)| kj * (cj - mean) * (-(rn - g) * inv_var))
                .sum();
            self.coordinate.gradient(xr, &mut g_row);
            for (o, gi) in gr.iter_mut().zip(&g_row) {
                *o += w * d_r * gi;
            }
        }
        loss
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_weights_equalise_the_bins_up_to_the_ratio() {
        // s = x₀ on a grid 0, 1, 2: eight rows near 0, two near 2, one far beyond 2 (its bin is
        // the last one), none near 1.
        let rc = RcEntropy::new(Coordinate::Projection(vec![1.0, 0.0]), 0.0, 2.0, 3, None).unwrap();
        let mut rows: Vec<f32> = Vec::new();
        for s in [0.1, -0.2, 0.3, 0.0, 0.4, -0.4, 0.2, 0.1, 1.9, 2.2, 7.0] {
            rows.extend([s, 5.0]);
        }
        let w = rc.balance_weights(&rows, 2, 10.0);
        assert_eq!(&w[..8], &[1.0; 8]);
        // 3 rows in the last bin: 8/3 each, so both bins are drawn equally often.
        for v in &w[8..] {
            assert!((v - 8.0 / 3.0).abs() < 1e-12);
        }
        let w = rc.balance_weights(&rows, 2, 2.0);
        assert_eq!(&w[8..], &[2.0; 3]);
    }
}
