//! Permutation reduction of identical particles: one labelling out of n!.
//!
//! The energy of a liquid does not change when two solvent particles swap labels, so its
//! Boltzmann distribution has n! copies of every configuration. A flow cannot represent all of
//! them (equilibrated data spread every particle over the whole box, costing ~ln n! nats of
//! likelihood; docs/bg/README.md), but it can learn one: the *reduced domain* D of the
//! configurations whose particles are already labelled as the optimal assignment to fixed
//! reference sites would label them (the labelling that minimises Σᵢ |xᵢ − rᵢ|²). Every
//! configuration has exactly one relabelling in D (up to ties, a set of measure zero), so D is a
//! fundamental domain of the permutation group, and for every quantity f that does not depend
//! on the labels
//!
//! E_p[f] = E_{p_D}[f],   p_D = p·1_D / ∫_D p,   ∫_D e^{−u} = Z / n!.
//!
//! So a generator trained on data relabelled into D ([`PermutationReduction::reduce_rows`])
//! reweights with w = 1_D(x) e^{−u(x)} / q(x) ([`PermutationReduction::is_reduced`]): samples
//! outside D get weight 0, and ln Z = ln Z_D + ln n! ([`PermutationReduction::ln_symmetry`]).
//! The assignment to reference sites is what the 2019 Boltzmann-generator paper used for its
//! solvent ("Hungarian mapping"); the assignment problem is solved with the Kuhn–Munkres
//! algorithm of the `pathfinding` crate.

use boltzflow_core::{Error, Result};
use ndarray::{Array2, ArrayView2, Axis};
use pathfinding::kuhn_munkres::kuhn_munkres_min;
use pathfinding::matrix::Matrix;
use rayon::prelude::*;

/// Squared distances enter the assignment as integers in units of 10⁻⁹ (length²): the
/// Kuhn–Munkres solver needs an exact, totally ordered cost (floating-point costs can make it
/// loop). Distances beyond 10³ are clamped, so 36 particles sum to < 2⁶³.
const COST_UNIT: f64 = 1e-9;
const COST_MAX: f64 = 1e6;

/// Identical particles `first .. first + n` of a configuration laid out particle by particle
/// (`spatial_dim` coordinates each, interleaved), and their reference sites `[n, spatial_dim]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PermutationReduction {
    first: usize,
    spatial_dim: usize,
    /// `[n · spatial_dim]`, site by site.
    sites: Vec<f64>,
}

impl PermutationReduction {
    /// Particles `first ..` (in units of particles) matched to `sites` `[n, spatial_dim]`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for no sites, a zero spatial dimension or non-finite sites.
    pub fn new(first: usize, sites: ArrayView2<'_, f64>) -> Result<Self> {
        let (n, spatial_dim) = sites.dim();
        if n == 0 || spatial_dim == 0 {
            return Err(Error::invalid(
                "sites",
                format!("need at least one site with coordinates, got [{n}, {spatial_dim}]"),
            ));
        }
        if sites.iter().any(|v| !v.is_finite()) {
            return Err(Error::invalid("sites", "reference sites must be finite"));
        }
        Ok(Self {
            first,
            spatial_dim,
            sites: sites.iter().copied().collect(),
        })
    }

    /// The reference sites `[n, spatial_dim]`.
    pub fn sites(&self) -> Array2<f64> {
        Array2::from_shape_vec((self.count(), self.spatial_dim), self.sites.clone())
            .expect("sites are n × spatial_dim")
    }

    /// Moves the sites to the mean positions of the particles that data `x` `[n, dim]` assign
    /// to them, and repeats (at most `iterations` times, until no site moves by more than
    /// 10⁻⁶): k-means with the assignment constraint. The sites a system offers (a lattice) are
    /// a start; a liquid's own mean arrangement makes a more compact domain, whose boundary —
    /// where the reduced density jumps, which a flow cannot follow — holds fewer
    /// configurations. Uses at most `max_rows` rows (every k-th). Returns the mean squared
    /// displacement of a particle from its site, before and after.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` is narrower than [`PermutationReduction::min_dim`];
    /// [`Error::InvalidParameter`] for no rows.
    pub fn refine_sites(
        &mut self,
        x: ArrayView2<'_, f64>,
        iterations: usize,
        max_rows: usize,
    ) -> Result<(f64, f64)> {
        self.check_width(x.ncols(), "data for the reference sites")?;
        if x.nrows() == 0 || max_rows == 0 {
            return Err(Error::invalid(
                "data",
                "reference sites need at least one row",
            ));
        }
        let stride = x.nrows().div_ceil(max_rows);
        let rows: Vec<Vec<f64>> = x
            .axis_iter(Axis(0))
            .step_by(stride)
            .map(|r| r.to_vec())
            .collect();
        let msd = |p: &Self, reduced: &[Vec<f64>]| -> f64 {
            let n = p.count();
            let total: f64 = reduced
                .iter()
                .map(|r| {
                    (0..n)
                        .map(|i| p.cost(r, i, i) as f64 * COST_UNIT)
                        .sum::<f64>()
                })
                .sum();
            total / (reduced.len() * n) as f64
        };
        let mut before = f64::NAN;
        let mut after = f64::NAN;
        for it in 0..=iterations {
            let reduced: Vec<Vec<f64>> = rows
                .par_iter()
                .map(|r| {
                    let mut r = r.clone();
                    self.reduce(&mut r);
                    r
                })
                .collect();
            after = msd(self, &reduced);
            if it == 0 {
                before = after;
            }
            if it == iterations {
                break;
            }
            let s = self.spatial_dim;
            let mut mean = vec![0.0; self.sites.len()];
            for r in &reduced {
                let start = self.first * s;
                for (m, v) in mean.iter_mut().zip(&r[start..start + self.sites.len()]) {
                    *m += v;
                }
            }
            let k = reduced.len() as f64;
            let moved = mean
                .iter_mut()
                .zip(&self.sites)
                .map(|(m, old)| {
                    *m /= k;
                    (*m - old).abs()
                })
                .fold(0.0, f64::max);
            if mean.iter().any(|v| !v.is_finite()) {
                return Err(Error::invalid("data", "non-finite coordinates"));
            }
            self.sites = mean;
            if moved < 1e-6 {
                break;
            }
        }
        Ok((before, after))
    }

    /// Number of identical particles n.
    pub fn count(&self) -> usize {
        self.sites.len() / self.spatial_dim
    }

    /// The coordinates a configuration must have at least: (first + n) · spatial_dim.
    pub fn min_dim(&self) -> usize {
        (self.first + self.count()) * self.spatial_dim
    }

    /// ln n!: the log of the number of copies of the reduced domain (ln Z − ln Z_D).
    pub fn ln_symmetry(&self) -> f64 {
        (2..=self.count()).map(|k| (k as f64).ln()).sum()
    }

    fn particle<'a>(&self, row: &'a [f64], i: usize) -> &'a [f64] {
        let s = (self.first + i) * self.spatial_dim;
        &row[s..s + self.spatial_dim]
    }

    fn site(&self, j: usize) -> &[f64] {
        &self.sites[j * self.spatial_dim..(j + 1) * self.spatial_dim]
    }

    fn cost(&self, row: &[f64], particle: usize, site: usize) -> i64 {
        let d2: f64 = self
            .particle(row, particle)
            .iter()
            .zip(self.site(site))
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        // NaN → the clamp: such rows are never reduced (their energy is an error anyway).
        let d2 = if d2.is_nan() {
            COST_MAX
        } else {
            d2.min(COST_MAX)
        };
        (d2 / COST_UNIT).round() as i64
    }

    /// The optimal assignment of one configuration `[dim]`: `a[j]` is the particle (0-based
    /// among the identical ones) that site j takes; the identity when the row is reduced.
    ///
    /// # Panics
    /// If `row` is shorter than [`PermutationReduction::min_dim`] (callers check widths).
    pub fn assignment(&self, row: &[f64]) -> Vec<usize> {
        if self.nearest_sites_are_own(row) {
            return (0..self.count()).collect();
        }
        self.solve(row)
    }

    /// The Kuhn–Munkres assignment of one row (the identity on ties with it).
    fn solve(&self, row: &[f64]) -> Vec<usize> {
        let n = self.count();
        let costs = Matrix::from_fn(n, n, |(site, particle)| self.cost(row, particle, site));
        let (best, a) = kuhn_munkres_min(&costs);
        // Ties: keep the labels when they are already optimal, so that D is well defined.
        let identity: i64 = (0..n).map(|i| costs[(i, i)]).sum();
        if identity == best {
            (0..n).collect()
        } else {
            a
        }
    }

    /// A sufficient test that the identity is optimal: every particle's nearest site is its
    /// own (then each term of Σ |xᵢ − r_a(i)|² is at its minimum). Most reduced rows pass it,
    /// which skips the O(n³) assignment.
    fn nearest_sites_are_own(&self, row: &[f64]) -> bool {
        let n = self.count();
        (0..n).all(|i| {
            let own = self.cost(row, i, i);
            (0..n).all(|j| j == i || self.cost(row, i, j) > own)
        })
    }

    /// Whether a configuration `[dim]` lies in the reduced domain D.
    pub fn is_reduced(&self, row: &[f64]) -> bool {
        self.nearest_sites_are_own(row) || self.solve(row).iter().enumerate().all(|(j, &p)| j == p)
    }

    /// Relabels one configuration into D; returns whether any label changed.
    pub fn reduce(&self, row: &mut [f64]) -> bool {
        let a = self.assignment(row);
        if a.iter().enumerate().all(|(j, &p)| j == p) {
            return false;
        }
        let old: Vec<f64> = row.to_vec();
        let s = self.spatial_dim;
        for (j, &p) in a.iter().enumerate() {
            let to = (self.first + j) * s;
            let from = (self.first + p) * s;
            row[to..to + s].copy_from_slice(&old[from..from + s]);
        }
        true
    }

    fn check_width(&self, ncols: usize, what: &str) -> Result<()> {
        if ncols < self.min_dim() {
            return Err(Error::Shape {
                what: what.to_string(),
                expected: format!(
                    "at least {} columns ({} identical particles from particle {})",
                    self.min_dim(),
                    self.count(),
                    self.first
                ),
                got: format!("{ncols} columns"),
            });
        }
        Ok(())
    }

    /// Relabels every row of `x` `[n, dim]` into D (in parallel over rows); returns how many
    /// rows changed.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` is narrower than [`PermutationReduction::min_dim`].
    pub fn reduce_rows(&self, x: &mut Array2<f64>) -> Result<usize> {
        self.check_width(x.ncols(), "configurations to relabel")?;
        let dim = x.ncols();
        let data = x
            .as_slice_mut()
            .ok_or_else(|| Error::invalid("configurations", "need a standard-layout array"))?;
        Ok(data
            .par_chunks_mut(dim)
            .map(|row| usize::from(self.reduce(row)))
            .sum())
    }

    /// Whether each row of `x` `[n, dim]` lies in D, `[n]`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` is narrower than [`PermutationReduction::min_dim`].
    pub fn reduced_mask(&self, x: ArrayView2<'_, f64>) -> Result<Vec<bool>> {
        self.check_width(x.ncols(), "configurations")?;
        let dim = x.ncols();
        let x = x.as_standard_layout();
        let rows = x.as_slice().expect("a standard-layout array is one slice");
        Ok(rows
            .par_chunks(dim.max(1))
            .map(|r| self.is_reduced(r))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Exhaustive minimum over all permutations of a small set.
    fn brute_force(p: &PermutationReduction, row: &[f64]) -> i64 {
        fn perms(k: usize) -> Vec<Vec<usize>> {
            if k == 0 {
                return vec![vec![]];
            }
            let mut out = Vec::new();
            for p in perms(k - 1) {
                for pos in 0..=p.len() {
                    let mut q = p.clone();
                    q.insert(pos, k - 1);
                    out.push(q);
                }
            }
            out
        }
        perms(p.count())
            .iter()
            .map(|a| (0..a.len()).map(|j| p.cost(row, a[j], j)).sum())
            .min()
            .unwrap()
    }

    fn reduction() -> PermutationReduction {
        // Two distinct particles first (untouched), then five identical ones.
        let sites = array![[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.5]];
        PermutationReduction::new(2, sites.view()).unwrap()
    }

    #[test]
    fn relabelling_reaches_the_optimal_assignment_and_keeps_the_other_particles() {
        let p = reduction();
        assert!((p.ln_symmetry() - 120f64.ln()).abs() < 1e-12);
        let mut state = 12345u64;
        let mut uniform = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut changed = 0;
        for _ in 0..200 {
            let row: Vec<f64> = (0..14).map(|_| 3.0 * uniform() - 1.0).collect();
            let mut r = row.clone();
            changed += usize::from(p.reduce(&mut r));
            // The first two particles are not identical: never moved.
            assert_eq!(&r[..4], &row[..4]);
            // A permutation of the identical particles.
            let mut a: Vec<[u64; 2]> = row[4..]
                .chunks(2)
                .map(|c| [c[0].to_bits(), c[1].to_bits()])
                .collect();
            let mut b: Vec<[u64; 2]> = r[4..]
                .chunks(2)
                .map(|c| [c[0].to_bits(), c[1].to_bits()])
                .collect();
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b);
            // Optimal: the identity cost of the relabelled row is the brute-force minimum.
            let own: i64 = (0..5).map(|i| p.cost(&r, i, i)).sum();
            assert_eq!(own, brute_force(&p, &row));
            assert!(p.is_reduced(&r));
            // Idempotent.
            let mut again = r.clone();
            assert!(!p.reduce(&mut again));
            assert_eq!(again, r);
        }
        assert!(changed > 150, "random rows are rarely reduced: {changed}");
    }

    #[test]
    fn rows_and_masks_agree_and_widths_are_checked() {
        let p = reduction();
        // Particle 2 sits on site 1 and particle 3 on site 0: one swap away from reduced.
        let mut x = array![
            [
                9.0, 9.0, 8.0, 8.0, 1.0, 0.1, 0.1, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 0.5
            ],
            [
                9.0, 9.0, 8.0, 8.0, 0.1, 0.0, 1.0, 0.1, 0.0, 1.0, 1.0, 1.0, 2.0, 0.5
            ],
        ];
        assert_eq!(p.reduced_mask(x.view()).unwrap(), vec![false, true]);
        assert_eq!(p.reduce_rows(&mut x).unwrap(), 1);
        assert_eq!(x.row(0).to_vec()[4..8], [0.1, 0.0, 1.0, 0.1]);
        assert_eq!(p.reduced_mask(x.view()).unwrap(), vec![true, true]);
        let narrow = Array2::<f64>::zeros((1, 10));
        assert!(matches!(
            p.reduced_mask(narrow.view()),
            Err(Error::Shape { .. })
        ));
        // Non-finite coordinates are never reduced, and do not hang the solver.
        let nan = [
            0.0,
            0.0,
            0.0,
            0.0,
            f64::NAN,
            0.0,
            1.0,
            0.0,
            0.0,
            1.0,
            1.0,
            1.0,
            2.0,
            0.5,
        ];
        let _ = p.is_reduced(&nan);
        assert!(PermutationReduction::new(0, Array2::<f64>::zeros((0, 2)).view()).is_err());
    }

    #[test]
    fn refined_sites_are_the_mean_arrangement_of_the_data() {
        // Data: particles scattered around true sites; the start sites are shuffled and
        // shifted. Refinement finds the true sites (in some order) and shrinks the
        // displacement to the scatter's variance.
        let truth = array![[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]];
        let start = array![[1.9, 0.4], [0.3, 1.6], [2.4, 2.3], [-0.4, 0.2]];
        let mut p = PermutationReduction::new(0, start.view()).unwrap();
        let mut state = 7u64;
        let mut uniform = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let x = Array2::from_shape_fn((2000, 8), |(r, c)| {
            // Rows list the particles in a rotating order, so labels are scrambled.
            let particle = (c / 2 + r) % 4;
            truth[[particle, c % 2]] + 0.4 * uniform()
        });
        let (before, after) = p.refine_sites(x.view(), 20, 1000).unwrap();
        // Uniform on [−0.2, 0.2] per coordinate: E|δ|² = 2 · 0.4² / 12.
        let expected = 2.0 * 0.16 / 12.0;
        assert!(
            before > 0.1 && (after - expected).abs() < 0.005,
            "{before} → {after}"
        );
        let sites = p.sites();
        for t in truth.rows() {
            let nearest = sites
                .rows()
                .into_iter()
                .map(|s| (s[0] - t[0]).hypot(s[1] - t[1]))
                .fold(f64::INFINITY, f64::min);
            assert!(
                nearest < 0.03,
                "true site {t} is {nearest} from the refined ones"
            );
        }
    }

    #[test]
    fn the_reduced_domain_holds_one_in_n_factorial_of_any_symmetric_distribution() {
        // Four identical particles, i.i.d. N(0, I) in 2D: a distribution symmetric under
        // relabelling whose mass the sites do not follow. D must hold exactly 1/4! of it
        // (a fundamental domain), whatever the sites.
        let sites = array![[0.3, -0.2], [1.0, 0.4], [-0.7, 0.9], [0.1, 1.6]];
        let p = PermutationReduction::new(0, sites.view()).unwrap();
        let mut state = 99u64;
        let mut uniform = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let n = 240_000;
        let mut inside = 0usize;
        let mut row = [0.0; 8];
        for _ in 0..n {
            for pair in row.chunks_mut(2) {
                // Box–Muller.
                let (u1, u2) = (uniform(), uniform());
                let r = (-2.0 * u1.ln()).sqrt();
                pair[0] = r * (std::f64::consts::TAU * u2).cos();
                pair[1] = r * (std::f64::consts::TAU * u2).sin();
            }
            inside += usize::from(p.is_reduced(&row));
        }
        let f = inside as f64 / n as f64;
        let expected = (-p.ln_symmetry()).exp();
        let se = (expected * (1.0 - expected) / n as f64).sqrt();
        assert!(
            (f - expected).abs() < 4.0 * se,
            "fraction in D {f} against 1/4! = {expected} (SE {se})"
        );
    }
}
