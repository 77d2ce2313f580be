//! Exact references for 2D systems by quadrature on a grid.
//!
//! The Boltzmann weight exp(−βE) is evaluated at the centres of an `nx × ny` grid of cells over a
//! stated box (the midpoint rule: error O(h²) for smooth integrands, smaller when the weight
//! vanishes at the box edges). From it: ln Z over the box, probabilities of regions (thresholds
//! on a projection, arbitrary predicates, basins of attraction), marginal free-energy profiles
//! along a coordinate or projection direction, and means/covariances. These are the numbers that
//! sampling and `evaluate` are compared against.
//!
//! All probabilities are normalised within the box; choose a box that holds all but a negligible
//! part of the weight (every 2D system's [`crate::System::reference_box`] does).
//!
//! ```
//! use boltzflow_systems::quadrature::GridQuadrature;
//! let g = boltzflow_systems::build("gaussian2d").unwrap();
//! let q = GridQuadrature::new(g.as_ref(), [[-12.0, 6.0], [-12.0, 6.0]], [512, 512], 1.0).unwrap();
//! assert!(q.ln_z().abs() < 1e-10);                                   // normalised density
//! assert!((q.threshold_probability([1.0, 0.0], -3.0) - 0.5).abs() < 1e-3);
//! ```

use boltzflow_core::{Energy, Error, Result};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

/// The Boltzmann weights of a 2D energy on a grid of cell centres.
#[derive(Debug, Clone)]
pub struct GridQuadrature {
    lo: [f64; 2],
    h: [f64; 2],
    n: [usize; 2],
    /// −βE at cell centres, index `i * ny + j` for the i-th x and j-th y cell.
    log_weight: Vec<f64>,
    /// Cell probabilities (normalised within the box), same indexing.
    prob: Vec<f64>,
    ln_z: f64,
}

/// A free-energy profile along a projection s = w · x.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Bin edges, `[n_bins + 1]`.
    pub edges: Vec<f64>,
    /// Probability of each bin, `[n_bins]` (sums to the probability of the covered range).
    pub probabilities: Vec<f64>,
    /// F(s) = −ln(P(bin) / width) in kT, `[n_bins]`; +∞ for empty bins.
    pub free_energy: Vec<f64>,
}

impl Profile {
    /// Bin centres, `[n_bins]`.
    pub fn centres(&self) -> Vec<f64> {
        self.edges.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect()
    }
}

/// Basins of attraction of the local minima of the grid energy, by discrete steepest descent
/// (each cell points to its lowest neighbour among the 8 around it).
///
/// Meaningful for potentials with isolated minima (`mueller`, `double-well`); a flat or
/// rotationally symmetric valley splits into many grid basins. Samples are assigned with
/// [`Basins::assign`], which uses the same grid, so sampled and exact probabilities agree by
/// construction of the states.
#[derive(Debug, Clone)]
pub struct Basins {
    lo: [f64; 2],
    h: [f64; 2],
    n: [usize; 2],
    labels: Vec<u32>,
    /// Position of each basin's minimum (a cell centre), ordered by increasing energy.
    pub minima: Vec<[f64; 2]>,
    /// −ln(weight) = βE at each minimum, same order.
    pub minimum_energies: Vec<f64>,
    /// Probability of each basin within the box, same order.
    pub probabilities: Vec<f64>,
}

fn check_grid(bounds: &[[f64; 2]], n: [usize; 2]) -> Result<()> {
    if bounds.len() != 2 {
        return Err(Error::invalid(
            "bounds",
            format!("need 2 intervals for a 2D system, got {}", bounds.len()),
        ));
    }
    for (k, b) in bounds.iter().enumerate() {
        if !(b[0].is_finite() && b[1].is_finite() && b[0] < b[1]) {
            return Err(Error::invalid(
                "bounds",
                format!(
                    "interval {k} = [{}, {}] must be finite with lo < hi",
                    b[0], b[1]
                ),
            ));
        }
    }
    if n[0] < 2 || n[1] < 2 {
        return Err(Error::invalid(
            "shape",
            format!("need at least 2 × 2 cells, got {n:?}"),
        ));
    }
    Ok(())
}

impl GridQuadrature {
    /// Evaluates exp(−β E) on an `n[0] × n[1]` grid of cells over `bounds` (`[[x_lo, x_hi], [y_lo, y_hi]]`).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a bad box, grid or β, or a system that is not 2D;
    /// [`Error::NonFinite`] if an energy is NaN or −∞, or if the box has no weight at all.
    pub fn new(
        energy: &dyn Energy,
        bounds: [[f64; 2]; 2],
        n: [usize; 2],
        beta: f64,
    ) -> Result<Self> {
        check_grid(&bounds, n)?;
        if energy.dim() != 2 {
            return Err(Error::invalid(
                "system",
                format!(
                    "quadrature needs a 2D system, this one has {} coordinates",
                    energy.dim()
                ),
            ));
        }
        if !(beta.is_finite() && beta > 0.0) {
            return Err(Error::invalid(
                "beta",
                format!("must be finite and positive, got {beta}"),
            ));
        }
        let lo = [bounds[0][0], bounds[1][0]];
        let h = [
            (bounds[0][1] - bounds[0][0]) / n[0] as f64,
            (bounds[1][1] - bounds[1][0]) / n[1] as f64,
        ];
        // One row of cells (fixed x) per task.
        let log_weight: Vec<f64> = (0..n[0])
            .into_par_iter()
            .map(|i| -> Result<Vec<f64>> {
                let x = lo[0] + (i as f64 + 0.5) * h[0];
                let pts = Array2::from_shape_fn((n[1], 2), |(j, c)| {
                    if c == 0 {
                        x
                    } else {
                        lo[1] + (j as f64 + 0.5) * h[1]
                    }
                });
                let e = energy.energy(pts.view())?;
                if let Some(j) = e.iter().position(|v| v.is_nan() || *v == f64::NEG_INFINITY) {
                    return Err(Error::NonFinite {
                        what: "energy on the quadrature grid".into(),
                        location: format!("({x}, {})", pts[[j, 1]]),
                        value: e[j],
                    });
                }
                Ok(e.iter().map(|v| -beta * v).collect())
            })
            .collect::<Result<Vec<_>>>()?
            .concat();
        let m = log_weight.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if m == f64::NEG_INFINITY {
            return Err(Error::NonFinite {
                what: "Boltzmann weight".into(),
                location: "every grid cell (the box has no weight)".into(),
                value: 0.0,
            });
        }
        let w: Vec<f64> = log_weight.iter().map(|l| (l - m).exp()).collect();
        let sum: f64 = w.iter().sum();
        let ln_z = m + sum.ln() + (h[0] * h[1]).ln();
        let prob = w.iter().map(|v| v / sum).collect();
        Ok(Self {
            lo,
            h,
            n,
            log_weight,
            prob,
            ln_z,
        })
    }

    /// ln ∫_box exp(−βE) dx.
    pub fn ln_z(&self) -> f64 {
        self.ln_z
    }

    /// Centre of cell (i, j).
    pub fn centre(&self, i: usize, j: usize) -> [f64; 2] {
        [
            self.lo[0] + (i as f64 + 0.5) * self.h[0],
            self.lo[1] + (j as f64 + 0.5) * self.h[1],
        ]
    }

    fn cells(&self) -> impl Iterator<Item = ([f64; 2], f64)> + '_ {
        let ny = self.n[1];
        self.prob
            .iter()
            .enumerate()
            .map(move |(k, p)| (self.centre(k / ny, k % ny), *p))
    }

    /// Probability of the region where `inside(x)` holds.
    pub fn probability_where(&self, inside: impl Fn([f64; 2]) -> bool) -> f64 {
        self.cells()
            .filter(|(x, _)| inside(*x))
            .map(|(_, p)| p)
            .sum()
    }

    /// P(w · x > threshold) for a direction `w` (used as given, not normalised).
    ///
    /// Each cell's probability is spread uniformly over the cell, so a threshold that cuts a cell
    /// takes the exact fraction of it (the projection of a uniform rectangle has a trapezoidal
    /// density); the error is O(h²) for every direction, including grid-aligned diagonals.
    pub fn threshold_probability(&self, w: [f64; 2], threshold: f64) -> f64 {
        let (a, b) = self.footprint(w);
        self.cells()
            .map(|(x, p)| p * (1.0 - trapezoid_cdf(threshold - (w[0] * x[0] + w[1] * x[1]), a, b)))
            .sum()
    }

    /// Widths of the projection of one cell onto w: |w₀|h₀ and |w₁|h₁, larger first.
    fn footprint(&self, w: [f64; 2]) -> (f64, f64) {
        let (a, b) = ((w[0] * self.h[0]).abs(), (w[1] * self.h[1]).abs());
        if a >= b { (a, b) } else { (b, a) }
    }

    /// Expectation of `f` under the normalised Boltzmann distribution in the box.
    pub fn expectation(&self, f: impl Fn([f64; 2]) -> f64) -> f64 {
        self.cells().map(|(x, p)| p * f(x)).sum()
    }

    /// Mean `[2]` and covariance `[[2; 2]]` of x.
    pub fn mean_and_covariance(&self) -> ([f64; 2], [[f64; 2]; 2]) {
        let m = [self.expectation(|x| x[0]), self.expectation(|x| x[1])];
        let c = |a: usize, b: usize| self.expectation(|x| (x[a] - m[a]) * (x[b] - m[b]));
        (m, [[c(0, 0), c(0, 1)], [c(1, 0), c(1, 1)]])
    }

    /// Marginal free-energy profile along s = w · x on the given bin edges (increasing), with
    /// cells cut by bin edges split exactly as in [`GridQuadrature::threshold_probability`].
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if there are fewer than 2 edges or they do not increase.
    pub fn profile(&self, w: [f64; 2], edges: &[f64]) -> Result<Profile> {
        if edges.len() < 2
            || edges
                .windows(2)
                .any(|e| e[1].partial_cmp(&e[0]) != Some(std::cmp::Ordering::Greater))
        {
            return Err(Error::invalid(
                "edges",
                "need at least 2 strictly increasing, finite bin edges",
            ));
        }
        let nb = edges.len() - 1;
        let (a, b) = self.footprint(w);
        let half = 0.5 * (a + b);
        let mut probabilities = vec![0.0; nb];
        for (x, p) in self.cells() {
            let s = w[0] * x[0] + w[1] * x[1];
            if s + half <= edges[0] || s - half >= edges[nb] {
                continue;
            }
            // Bins overlapping the cell's footprint [s − half, s + half].
            let first = edges.partition_point(|e| *e <= s - half).saturating_sub(1);
            let last = edges.partition_point(|e| *e < s + half).min(nb);
            for k in first..last {
                let frac =
                    trapezoid_cdf(edges[k + 1] - s, a, b) - trapezoid_cdf(edges[k] - s, a, b);
                probabilities[k] += p * frac;
            }
        }
        let free_energy = probabilities
            .iter()
            .zip(edges.windows(2))
            .map(|(p, e)| -(p / (e[1] - e[0])).ln())
            .collect();
        Ok(Profile {
            edges: edges.to_vec(),
            probabilities,
            free_energy,
        })
    }

    /// Basins of attraction of the grid's local minima, with their probabilities.
    pub fn basins(&self) -> Basins {
        let [nx, ny] = self.n;
        let idx = |i: usize, j: usize| i * ny + j;
        // Each cell's steepest-descent successor (itself at a local minimum of E, i.e. maximum of weight).
        let next: Vec<usize> = (0..nx * ny)
            .map(|k| {
                let (i, j) = (k / ny, k % ny);
                let mut best = k;
                for di in -1i64..=1 {
                    for dj in -1i64..=1 {
                        let (a, b) = (i as i64 + di, j as i64 + dj);
                        if a < 0 || b < 0 || a >= nx as i64 || b >= ny as i64 {
                            continue;
                        }
                        let c = idx(a as usize, b as usize);
                        // Ties (a minimum on a grid line or corner) go to the lower index, so
                        // equal cells join one basin and every path still ends.
                        let (wc, wb) = (self.log_weight[c], self.log_weight[best]);
                        if wc > wb || (wc == wb && c < best) {
                            best = c;
                        }
                    }
                }
                best
            })
            .collect();
        // Follow to the root; cells are processed in order, so memoise roots.
        let mut root = vec![usize::MAX; nx * ny];
        let mut path = Vec::new();
        for k in 0..nx * ny {
            let mut c = k;
            while root[c] == usize::MAX && next[c] != c {
                path.push(c);
                c = next[c];
            }
            let r = if root[c] == usize::MAX { c } else { root[c] };
            root[c] = r;
            for p in path.drain(..) {
                root[p] = r;
            }
        }
        let mut minima_cells: Vec<usize> = (0..nx * ny).filter(|&k| next[k] == k).collect();
        minima_cells.sort_by(|a, b| self.log_weight[*b].total_cmp(&self.log_weight[*a]));
        let mut label_of = std::collections::HashMap::new();
        for (l, &c) in minima_cells.iter().enumerate() {
            label_of.insert(c, l as u32);
        }
        let labels: Vec<u32> = root.iter().map(|r| label_of[r]).collect();
        let mut probabilities = vec![0.0; minima_cells.len()];
        for (l, p) in labels.iter().zip(&self.prob) {
            probabilities[*l as usize] += p;
        }
        Basins {
            lo: self.lo,
            h: self.h,
            n: self.n,
            labels,
            minima: minima_cells
                .iter()
                .map(|&c| self.centre(c / ny, c % ny))
                .collect(),
            minimum_energies: minima_cells.iter().map(|&c| -self.log_weight[c]).collect(),
            probabilities,
        }
    }
}

/// CDF at `u` of a·U₁ + b·U₂ with U₁, U₂ ~ Uniform(−½, ½) independent and a ≥ b ≥ 0: the
/// projection of a uniform a × b rectangle, whose density is a trapezoid.
fn trapezoid_cdf(u: f64, a: f64, b: f64) -> f64 {
    let half = 0.5 * (a + b);
    if u <= -half {
        0.0
    } else if u >= half {
        1.0
    } else if b <= 1e-12 * a {
        (u + 0.5 * a) / a
    } else if u < -0.5 * (a - b) {
        (u + half).powi(2) / (2.0 * a * b)
    } else if u <= 0.5 * (a - b) {
        b / (2.0 * a) + (u + 0.5 * (a - b)) / a
    } else {
        1.0 - (half - u).powi(2) / (2.0 * a * b)
    }
}

impl Basins {
    /// The basin of each row of `x` (`[n, 2]`), `None` outside the box.
    pub fn assign(&self, x: ArrayView2<f64>) -> Vec<Option<usize>> {
        x.outer_iter()
            .map(|r| {
                let i = ((r[0] - self.lo[0]) / self.h[0]).floor();
                let j = ((r[1] - self.lo[1]) / self.h[1]).floor();
                if i >= 0.0 && j >= 0.0 && (i as usize) < self.n[0] && (j as usize) < self.n[1] {
                    Some(self.labels[i as usize * self.n[1] + j as usize] as usize)
                } else {
                    None
                }
            })
            .collect()
    }

    /// The basins holding at least `min_probability`, as indices into the fields.
    pub fn significant(&self, min_probability: f64) -> Vec<usize> {
        (0..self.probabilities.len())
            .filter(|&b| self.probabilities[b] >= min_probability)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::trapezoid_cdf;

    #[test]
    fn trapezoid_cdf_is_the_convolution_of_two_uniforms() {
        // Midpoint-rule integral of the indicator over a fine grid of the rectangle.
        let (a, b) = (0.3, 0.1);
        let n = 600;
        for u in [-0.25, -0.15, -0.05, 0.0, 0.07, 0.12, 0.19, 0.3] {
            let mut below = 0usize;
            for i in 0..n {
                for j in 0..n {
                    let s = a * ((i as f64 + 0.5) / n as f64 - 0.5)
                        + b * ((j as f64 + 0.5) / n as f64 - 0.5);
                    below += usize::from(s <= u);
                }
            }
            let mc = below as f64 / (n * n) as f64;
            assert!(
                (trapezoid_cdf(u, a, b) - mc).abs() < 3e-3,
                "u = {u}: {} vs {mc}",
                trapezoid_cdf(u, a, b)
            );
        }
        assert_eq!(trapezoid_cdf(0.0, 0.2, 0.0), 0.5);
    }
}
