//! Clustering of frames into discrete states: k-means with k-means++ seeding and regular-space
//! clustering, and the nearest-centre assignment both share.
//!
//! Assignment is parallel over fixed-size blocks of frames and every reduction runs in block
//! order, so results do not depend on the number of threads.
//!
//! # References
//! Lloyd, IEEE Trans. Inf. Theory 28, 129 (1982); Arthur & Vassilvitskii, SODA 2007 (k-means++);
//! Prinz et al., J. Chem. Phys. 134, 174105 (2011), §IV.A (regular space).

use boltzflow_core::{Error, Result};
use ndarray::{Array1, Array2, ArrayView2, Axis, concatenate};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

/// Frames per parallel block.
const BLOCK: usize = 4096;

/// Cluster centres, `[k, n_features]`, and nearest-centre assignment.
#[derive(Debug, Clone)]
pub struct ClusterModel {
    /// The centres, one per row.
    pub centers: Array2<f64>,
    /// Sum of squared distances of the training frames to their centres.
    pub inertia: f64,
    /// Lloyd iterations run (0 for regular space).
    pub iterations: usize,
    /// Whether the iteration met its tolerance before the iteration limit.
    pub converged: bool,
}

impl ClusterModel {
    /// A model from given centres (e.g. fixed centres read from a file).
    pub fn from_centers(centers: Array2<f64>) -> Self {
        Self {
            centers,
            inertia: f64::NAN,
            iterations: 0,
            converged: true,
        }
    }

    /// Index of the nearest centre (Euclidean) for every frame of `[n_frames, n_features]`;
    /// ties go to the lower index.
    ///
    /// # Errors
    /// [`Error::Shape`] on a feature-count mismatch.
    pub fn assign(&self, x: ArrayView2<'_, f64>) -> Result<Vec<usize>> {
        if x.ncols() != self.centers.ncols() {
            return Err(Error::shape(
                "data to assign",
                format!("{} features like the centres", self.centers.ncols()),
                format!("{} features", x.ncols()),
            ));
        }
        Ok(nearest(x, self.centers.view()).0)
    }
}

/// Nearest centre and squared distance for every row.
fn nearest(x: ArrayView2<'_, f64>, centers: ArrayView2<'_, f64>) -> (Vec<usize>, Vec<f64>) {
    let n = x.nrows();
    let mut labels = vec![0usize; n];
    let mut d2 = vec![0.0; n];
    let c = centers.as_standard_layout();
    let d = c.ncols();
    let cs = c.as_slice().expect("standard layout");
    labels
        .par_chunks_mut(BLOCK)
        .zip(d2.par_chunks_mut(BLOCK))
        .enumerate()
        .for_each(|(b, (lab, dist))| {
            let mut row = vec![0.0; d];
            for (r, (l, dd)) in lab.iter_mut().zip(dist.iter_mut()).enumerate() {
                let t = b * BLOCK + r;
                for j in 0..d {
                    row[j] = x[[t, j]];
                }
                let mut best = f64::INFINITY;
                let mut arg = 0;
                for (k, cent) in cs.chunks_exact(d).enumerate() {
                    let mut s = 0.0;
                    for j in 0..d {
                        let e = row[j] - cent[j];
                        s += e * e;
                    }
                    if s < best {
                        best = s;
                        arg = k;
                    }
                }
                *l = arg;
                *dd = best;
            }
        });
    (labels, d2)
}

fn check_data(x: ArrayView2<'_, f64>) -> Result<()> {
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(Error::invalid(
            "data",
            format!("cannot cluster an empty array of shape {:?}", x.dim()),
        ));
    }
    if let Some(((t, j), v)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: "data to cluster".into(),
            location: format!("frame {t}, feature {j}"),
            value: *v,
        });
    }
    Ok(())
}

/// Stacks trajectories into one `[n_frames, n_features]` array.
///
/// # Errors
/// [`Error::Shape`] when the trajectories have different feature counts.
pub fn stack(trajs: &[ArrayView2<'_, f64>]) -> Result<Array2<f64>> {
    if let Some(first) = trajs.first()
        && let Some((k, t)) = trajs
            .iter()
            .enumerate()
            .find(|(_, t)| t.ncols() != first.ncols())
    {
        return Err(Error::shape(
            format!("trajectory {k}"),
            format!("{} features", first.ncols()),
            format!("{} features", t.ncols()),
        ));
    }
    concatenate(Axis(0), trajs).map_err(|e| Error::invalid("trajectories", e.to_string()))
}

/// The k-means estimator (Lloyd iterations).
#[derive(Debug, Clone)]
pub struct KMeans {
    k: usize,
    max_iter: usize,
    tolerance: f64,
    seed: u64,
    initial: Option<Array2<f64>>,
}

impl KMeans {
    /// k clusters, at most 500 iterations, relative inertia tolerance 1e-5, seed 0.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for k = 0.
    pub fn new(k: usize) -> Result<Self> {
        if k == 0 {
            return Err(Error::invalid("k", "need at least one cluster"));
        }
        Ok(Self {
            k,
            max_iter: 500,
            tolerance: 1e-5,
            seed: 0,
            initial: None,
        })
    }

    /// Iteration limit.
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }

    /// Stop when the inertia changes by less than this fraction between iterations (0: iterate
    /// until the assignment no longer changes).
    pub fn tolerance(mut self, tol: f64) -> Self {
        self.tolerance = tol;
        self
    }

    /// Seed of the k-means++ initialisation.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Start from these centres `[k, n_features]` instead of k-means++.
    ///
    /// # Errors
    /// [`Error::Shape`] if there are not k rows.
    pub fn initial_centers(mut self, centers: Array2<f64>) -> Result<Self> {
        if centers.nrows() != self.k {
            return Err(Error::shape(
                "initial centres",
                format!("{} rows (k)", self.k),
                format!("{} rows", centers.nrows()),
            ));
        }
        self.initial = Some(centers);
        Ok(self)
    }

    /// Clusters the frames of `[n_frames, n_features]`.
    ///
    /// # Errors
    /// Empty or non-finite data; fewer frames than clusters.
    pub fn fit(&self, x: ArrayView2<'_, f64>) -> Result<ClusterModel> {
        check_data(x)?;
        if x.nrows() < self.k {
            return Err(Error::invalid(
                "k",
                format!(
                    "{} clusters need at least as many frames, got {}",
                    self.k,
                    x.nrows()
                ),
            ));
        }
        let mut centers = match &self.initial {
            Some(c) if c.ncols() != x.ncols() => {
                return Err(Error::shape(
                    "initial centres",
                    format!("{} features", x.ncols()),
                    format!("{} features", c.ncols()),
                ));
            }
            Some(c) => c.clone(),
            None => kmeans_plus_plus(x, self.k, self.seed),
        };
        let (n, d) = x.dim();
        let mut prev_inertia = f64::INFINITY;
        let mut prev_labels: Option<Vec<usize>> = None;
        let mut iterations = 0;
        let mut converged = false;
        while iterations < self.max_iter {
            let (labels, d2) = nearest(x, centers.view());
            let inertia: f64 = d2.iter().sum();
            iterations += 1;
            // per-block partial sums, reduced in block order (thread-count independent)
            let partial: Vec<(Array2<f64>, Vec<usize>)> = (0..n.div_ceil(BLOCK))
                .into_par_iter()
                .map(|b| {
                    let mut s = Array2::<f64>::zeros((self.k, d));
                    let mut c = vec![0usize; self.k];
                    for t in b * BLOCK..((b + 1) * BLOCK).min(n) {
                        let l = labels[t];
                        c[l] += 1;
                        for j in 0..d {
                            s[[l, j]] += x[[t, j]];
                        }
                    }
                    (s, c)
                })
                .collect();
            let mut sums = Array2::<f64>::zeros((self.k, d));
            let mut counts = vec![0usize; self.k];
            for (s, c) in partial {
                sums += &s;
                for (a, b) in counts.iter_mut().zip(c) {
                    *a += b;
                }
            }
            for k in 0..self.k {
                // an empty cluster keeps its centre
                if counts[k] > 0 {
                    let m = sums.row(k).mapv(|v| v / counts[k] as f64);
                    centers.row_mut(k).assign(&m);
                }
            }
            let same = prev_labels.as_ref().is_some_and(|p| *p == labels);
            let rel = (prev_inertia - inertia).abs() / inertia.max(f64::MIN_POSITIVE);
            if same || (self.tolerance > 0.0 && rel < self.tolerance) {
                converged = true;
                break;
            }
            prev_inertia = inertia;
            prev_labels = Some(labels);
        }
        let (_, d2) = nearest(x, centers.view());
        Ok(ClusterModel {
            centers,
            inertia: d2.iter().sum(),
            iterations,
            converged,
        })
    }
}

/// k-means++ seeding: the first centre uniformly, each next one with probability ∝ D², the
/// squared distance to the nearest centre chosen so far.
fn kmeans_plus_plus(x: ArrayView2<'_, f64>, k: usize, seed: u64) -> Array2<f64> {
    let (n, d) = x.dim();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut centers = Array2::<f64>::zeros((k, d));
    let first = rng.random_range(0..n);
    centers.row_mut(0).assign(&x.row(first));
    let mut d2 = Array1::from_elem(n, f64::INFINITY);
    for c in 1..k {
        let prev = centers.row(c - 1).to_owned();
        d2.as_slice_mut()
            .expect("contiguous")
            .par_chunks_mut(BLOCK)
            .enumerate()
            .for_each(|(b, chunk)| {
                for (r, v) in chunk.iter_mut().enumerate() {
                    let t = b * BLOCK + r;
                    let mut s = 0.0;
                    for j in 0..d {
                        let e = x[[t, j]] - prev[j];
                        s += e * e;
                    }
                    if s < *v {
                        *v = s;
                    }
                }
            });
        let total: f64 = d2.iter().sum();
        let pick = if total > 0.0 {
            let target = rng.random::<f64>() * total;
            let mut acc = 0.0;
            let mut idx = n - 1;
            for (t, &v) in d2.iter().enumerate() {
                acc += v;
                if acc > target {
                    idx = t;
                    break;
                }
            }
            idx
        } else {
            rng.random_range(0..n)
        };
        centers.row_mut(c).assign(&x.row(pick));
    }
    centers
}

/// Regular-space clustering: frames are visited in order and a frame becomes a new centre when it
/// is farther than `dmin` from every existing centre.
#[derive(Debug, Clone)]
pub struct RegularSpace {
    dmin: f64,
    max_centers: usize,
}

impl RegularSpace {
    /// Minimum distance `dmin` > 0 between centres and a cap on their number.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for dmin ≤ 0 or a zero cap.
    pub fn new(dmin: f64, max_centers: usize) -> Result<Self> {
        if !(dmin > 0.0 && dmin.is_finite()) {
            return Err(Error::invalid(
                "dmin",
                format!("{dmin} is not a positive distance"),
            ));
        }
        if max_centers == 0 {
            return Err(Error::invalid("max_centers", "must be at least 1"));
        }
        Ok(Self { dmin, max_centers })
    }

    /// Clusters the frames of `[n_frames, n_features]`.
    ///
    /// # Errors
    /// Empty or non-finite data; [`Error::InvalidParameter`] (`dmin`) when more than
    /// `max_centers` centres would be needed.
    pub fn fit(&self, x: ArrayView2<'_, f64>) -> Result<ClusterModel> {
        check_data(x)?;
        let d = x.ncols();
        let dmin2 = self.dmin * self.dmin;
        let mut centers: Vec<f64> = x.row(0).to_vec();
        for row in x.rows().into_iter().skip(1) {
            let far = centers.chunks_exact(d).all(|c| {
                let mut s = 0.0;
                for j in 0..d {
                    let e = row[j] - c[j];
                    s += e * e;
                }
                s > dmin2
            });
            if far {
                if centers.len() / d == self.max_centers {
                    return Err(Error::invalid(
                        "dmin",
                        format!(
                            "{} needs more than max_centers = {} centres; increase dmin or max_centers",
                            self.dmin, self.max_centers
                        ),
                    ));
                }
                centers.extend(row.iter());
            }
        }
        let k = centers.len() / d;
        let centers = Array2::from_shape_vec((k, d), centers).expect("k·d values");
        let (_, d2) = nearest(x, centers.view());
        Ok(ClusterModel {
            centers,
            inertia: d2.iter().sum(),
            iterations: 0,
            converged: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, StandardNormal};

    fn blobs() -> (Array2<f64>, Array2<f64>) {
        let truth = ndarray::array![[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let x = Array2::from_shape_fn((8000, 2), |(t, j)| {
            let z: f64 = StandardNormal.sample(&mut rng);
            truth[[t % 4, j]] + 0.5 * z
        });
        (x, truth)
    }

    #[test]
    fn kmeans_finds_separated_blobs() {
        let (x, truth) = blobs();
        let m = KMeans::new(4).unwrap().seed(1).fit(x.view()).unwrap();
        assert!(m.converged);
        for t in truth.rows() {
            let best = m
                .centers
                .rows()
                .into_iter()
                .map(|c| ((c[0] - t[0]).powi(2) + (c[1] - t[1]).powi(2)).sqrt())
                .fold(f64::INFINITY, f64::min);
            // standard error of a blob mean: 0.5/√2000 ≈ 0.011
            assert!(best < 0.06, "centre near {t} missed by {best}");
        }
        let labels = m.assign(x.view()).unwrap();
        for t in 4..8000 {
            assert_eq!(labels[t], labels[t % 4]);
        }
    }

    #[test]
    fn kmeans_is_a_fixed_point_of_lloyd() {
        let (x, _) = blobs();
        let m = KMeans::new(7)
            .unwrap()
            .tolerance(0.0)
            .seed(5)
            .fit(x.view())
            .unwrap();
        let labels = m.assign(x.view()).unwrap();
        for k in 0..7 {
            let members: Vec<usize> = (0..x.nrows()).filter(|&t| labels[t] == k).collect();
            for j in 0..2 {
                let mean = members.iter().map(|&t| x[[t, j]]).sum::<f64>() / members.len() as f64;
                assert!((mean - m.centers[[k, j]]).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn regular_space_spacing() {
        let (x, _) = blobs();
        let m = RegularSpace::new(2.0, 1000).unwrap().fit(x.view()).unwrap();
        let c = &m.centers;
        for a in 0..c.nrows() {
            for b in 0..a {
                let d = ((c[[a, 0]] - c[[b, 0]]).powi(2) + (c[[a, 1]] - c[[b, 1]]).powi(2)).sqrt();
                assert!(d > 2.0);
            }
        }
        // every frame lies within dmin of its centre
        let (_, d2) = nearest(x.view(), c.view());
        assert!(d2.iter().all(|&v| v <= 4.0));
        assert!(
            RegularSpace::new(0.01, 10)
                .unwrap()
                .fit(x.view())
                .unwrap_err()
                .to_string()
                .contains("max_centers")
        );
    }
}
