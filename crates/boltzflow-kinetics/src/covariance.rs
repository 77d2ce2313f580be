//! Streaming means and time-lagged covariances over many trajectories.
//!
//! For a lag τ every trajectory x₀ … x_{T−1} contributes the T − τ pairs (x_t, x_{t+τ}). The
//! accumulator sees trajectories in chunks of any size (so a trajectory larger than memory can be
//! read piece by piece), keeps only the last τ frames between chunks, and merges per-block centred
//! moments with the pairwise update of Chan, Golub & LeVeque (1979), which stays accurate where the
//! naive `Σxxᵀ/n − x̄x̄ᵀ` loses digits to cancellation.
//!
//! Normalisation is by the number of pairs (no Bessel correction), the convention of deeptime's
//! TICA and VAMP estimators.

use crate::linalg::from_faer;
use boltzflow_core::{Error, Result};
use faer::{Accum, Mat, Par};
use ndarray::{Array1, Array2, ArrayView2, Axis, concatenate, s};

/// Pairs processed per GEMM block: large enough to amortise the call, small enough that the
/// centred copy (`[block, 2·n_features]`) stays in cache-friendly territory.
const BLOCK_PAIRS: usize = 8192;

/// Means and covariances of instantaneous (x_t) and time-lagged (x_{t+τ}) data.
///
/// All matrices are `[n_features, n_features]`, means `[n_features]`.
#[derive(Debug, Clone)]
pub struct Covariances {
    /// The lag time τ in frames.
    pub lagtime: usize,
    /// Number of (x_t, x_{t+τ}) pairs (twice that when [`Covariances::symmetrized`]).
    pub n_pairs: f64,
    /// Mean of x_t.
    pub mean_0: Array1<f64>,
    /// Mean of x_{t+τ}.
    pub mean_t: Array1<f64>,
    /// C₀₀ = E[(x_t − μ₀)(x_t − μ₀)ᵀ].
    pub c00: Array2<f64>,
    /// C₀τ = E[(x_t − μ₀)(x_{t+τ} − μ_τ)ᵀ].
    pub c0t: Array2<f64>,
    /// Cττ = E[(x_{t+τ} − μ_τ)(x_{t+τ} − μ_τ)ᵀ].
    pub ctt: Array2<f64>,
    /// True when the statistics were symmetrised (time-reversal: each pair counted both ways).
    pub symmetric: bool,
}

impl Covariances {
    /// Number of features.
    pub fn n_features(&self) -> usize {
        self.mean_0.len()
    }

    /// The reversible (symmetrised) estimate used by TICA: every pair is also counted reversed, so
    /// both means become (μ₀ + μ_τ)/2, C₀₀ = Cττ = the covariance of all 2N frames about that mean
    /// and C₀τ = (C₀τ + Cτ₀)/2 about it. Pérez-Hernández et al. 2013, Eq. (11) and (12).
    pub fn symmetrized(&self) -> Covariances {
        if self.symmetric {
            return self.clone();
        }
        let m = (&self.mean_0 + &self.mean_t) / 2.0;
        let dx = &self.mean_0 - &m;
        let dy = &self.mean_t - &m;
        let outer = |a: &Array1<f64>, b: &Array1<f64>| {
            a.view()
                .insert_axis(Axis(1))
                .dot(&b.view().insert_axis(Axis(0)))
        };
        let c00 = (&self.c00 + &self.ctt + outer(&dx, &dx) + outer(&dy, &dy)) / 2.0;
        let cxy = &self.c0t + &outer(&dx, &dy);
        let c0t = (&cxy + &cxy.t()) / 2.0;
        Covariances {
            lagtime: self.lagtime,
            n_pairs: 2.0 * self.n_pairs,
            mean_0: m.clone(),
            mean_t: m,
            ctt: c00.clone(),
            c00,
            c0t,
            symmetric: true,
        }
    }
}

/// Centred moments of the stacked vector z = (x_t, x_{t+τ}) over `w` pairs.
#[derive(Debug, Clone)]
struct Moments {
    w: f64,
    mean: Array1<f64>,
    /// Σ (z − z̄)(z − z̄)ᵀ, `[2d, 2d]`.
    m2: Array2<f64>,
}

impl Moments {
    /// Merges another block's moments (Chan, Golub & LeVeque 1979).
    fn merge(&mut self, other: Moments) {
        let w = self.w + other.w;
        let delta = &other.mean - &self.mean;
        let f = self.w * other.w / w;
        let d = delta.view().insert_axis(Axis(1));
        self.m2 += &other.m2;
        self.m2.scaled_add(f, &d.dot(&d.t()));
        self.mean.scaled_add(other.w / w, &delta);
        self.w = w;
    }
}

/// Accumulates [`Covariances`] over trajectories given whole or in chunks.
///
/// ```
/// # use boltzflow_kinetics::covariance::CovarianceAccumulator;
/// let traj = ndarray::Array2::from_shape_fn((100, 2), |(t, j)| ((t * (j + 1)) as f64).sin());
/// let mut acc = CovarianceAccumulator::new(5);
/// acc.add_trajectory(traj.view())?;
/// let cov = acc.finish()?;
/// assert_eq!(cov.n_pairs, 95.0);
/// # Ok::<(), boltzflow_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CovarianceAccumulator {
    lagtime: usize,
    n_features: Option<usize>,
    moments: Option<Moments>,
    /// The last ≤ τ frames of the current trajectory, `[rows, n_features]`.
    tail: Option<Array2<f64>>,
    frames_in_trajectory: usize,
    trajectory: usize,
}

impl CovarianceAccumulator {
    /// An empty accumulator for lag time `lagtime` frames (0 gives plain covariances).
    pub fn new(lagtime: usize) -> Self {
        Self {
            lagtime,
            n_features: None,
            moments: None,
            tail: None,
            frames_in_trajectory: 0,
            trajectory: 0,
        }
    }

    /// Adds one whole trajectory `[n_frames, n_features]`.
    ///
    /// # Errors
    /// As [`Self::add_chunk`] and [`Self::end_trajectory`].
    pub fn add_trajectory(&mut self, traj: ArrayView2<'_, f64>) -> Result<()> {
        self.add_chunk(traj)?;
        self.end_trajectory()
    }

    /// Adds the next consecutive frames of the current trajectory.
    ///
    /// # Errors
    /// [`Error::Shape`] if the feature count changes, [`Error::NonFinite`] naming trajectory,
    /// frame and feature of a NaN/inf value.
    pub fn add_chunk(&mut self, chunk: ArrayView2<'_, f64>) -> Result<()> {
        let d = chunk.ncols();
        match self.n_features {
            None => self.n_features = Some(d),
            Some(n) if n != d => {
                return Err(Error::shape(
                    format!("trajectory {}", self.trajectory),
                    format!("{n} features like the earlier data"),
                    format!("{d} features"),
                ));
            }
            Some(_) => {}
        }
        if d == 0 {
            return Err(Error::invalid(
                "trajectories",
                "the data have no features (0 columns)",
            ));
        }
        if !chunk.iter().all(|v| v.is_finite())
            && let Some(((t, j), &v)) = chunk.indexed_iter().find(|(_, v)| !v.is_finite())
        {
            return Err(Error::NonFinite {
                what: "trajectory data".into(),
                location: format!(
                    "trajectory {}, frame {}, feature {j}",
                    self.trajectory,
                    self.frames_in_trajectory + t
                ),
                value: v,
            });
        }
        let tau = self.lagtime;
        let n = chunk.nrows();
        self.frames_in_trajectory += n;
        let tail = self.tail.take();
        // pairs whose first frame lies in the kept tail of earlier chunks (≤ 2τ rows joined)
        if let Some(tail) = &tail {
            let head = chunk.slice(s![..tau.min(n), ..]);
            let joined = concatenate(Axis(0), &[tail.view(), head]).expect("same width");
            if joined.nrows() > tau {
                let p = joined.nrows() - tau;
                self.add_pairs(
                    joined.slice(s![..p, ..]),
                    joined.slice(s![tau..tau + p, ..]),
                );
            }
        }
        // pairs inside this chunk, straight from the caller's view
        if n > tau {
            let mut start = 0;
            while start < n - tau {
                let end = (start + BLOCK_PAIRS).min(n - tau);
                self.add_pairs(
                    chunk.slice(s![start..end, ..]),
                    chunk.slice(s![start + tau..end + tau, ..]),
                );
                start = end;
            }
        }
        // keep the last τ frames of the trajectory so far
        self.tail = if n >= tau {
            Some(chunk.slice(s![n - tau.., ..]).to_owned())
        } else {
            let joined = match &tail {
                Some(t) => concatenate(Axis(0), &[t.view(), chunk]).expect("same width"),
                None => chunk.to_owned(),
            };
            let r = joined.nrows();
            Some(joined.slice(s![r - tau.min(r).., ..]).to_owned())
        };
        Ok(())
    }

    fn add_pairs(&mut self, x: ArrayView2<'_, f64>, y: ArrayView2<'_, f64>) {
        let block = block_moments(x, y);
        match &mut self.moments {
            Some(m) => m.merge(block),
            None => self.moments = Some(block),
        }
    }

    /// Marks the end of the current trajectory; the next chunk starts a new one.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (`lagtime`) if the trajectory had no more than τ frames, so it
    /// holds no pair at this lag.
    pub fn end_trajectory(&mut self) -> Result<()> {
        let n = self.frames_in_trajectory;
        let k = self.trajectory;
        self.tail = None;
        self.frames_in_trajectory = 0;
        self.trajectory += 1;
        if n <= self.lagtime {
            return Err(Error::invalid(
                "lagtime",
                format!(
                    "trajectory {k} has {n} frames, but lag time {} needs at least {} frames; \
                     use a shorter lag time or drop that trajectory",
                    self.lagtime,
                    self.lagtime + 1
                ),
            ));
        }
        Ok(())
    }

    /// The covariances of all pairs seen so far (not symmetrised).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if no pair was seen.
    pub fn finish(&self) -> Result<Covariances> {
        let (Some(m), Some(d)) = (&self.moments, self.n_features) else {
            return Err(Error::invalid(
                "trajectories",
                "no data: give at least one trajectory",
            ));
        };
        let c = &m.m2 / m.w;
        Ok(Covariances {
            lagtime: self.lagtime,
            n_pairs: m.w,
            mean_0: m.mean.slice(s![..d]).to_owned(),
            mean_t: m.mean.slice(s![d..]).to_owned(),
            c00: c.slice(s![..d, ..d]).to_owned(),
            c0t: c.slice(s![..d, d..]).to_owned(),
            ctt: c.slice(s![d.., d..]).to_owned(),
            symmetric: false,
        })
    }
}

/// Covariances at lag τ of a set of whole trajectories.
///
/// # Errors
/// As [`CovarianceAccumulator`].
pub fn covariances(trajs: &[ArrayView2<'_, f64>], lagtime: usize) -> Result<Covariances> {
    if trajs.is_empty() {
        return Err(Error::invalid(
            "trajectories",
            "no data: give at least one trajectory",
        ));
    }
    let mut acc = CovarianceAccumulator::new(lagtime);
    for t in trajs {
        acc.add_trajectory(*t)?;
    }
    acc.finish()
}

/// Centred moments of one block of pairs: row-major centred copies of X and Y, then the three
/// GEMMs XᵀX, XᵀY and YᵀY (YᵀX is the transpose of XᵀY and is not computed).
fn block_moments(x: ArrayView2<'_, f64>, y: ArrayView2<'_, f64>) -> Moments {
    let (n, d) = x.dim();
    let mx = x.mean_axis(Axis(0)).expect("n > 0");
    let my = y.mean_axis(Axis(0)).expect("n > 0");
    let centred = |a: ArrayView2<'_, f64>, m: &Array1<f64>| {
        let mut out = Vec::with_capacity(n * d);
        for row in a.outer_iter() {
            out.extend(row.iter().zip(m.iter()).map(|(v, mu)| v - mu));
        }
        out
    };
    let (xc, yc) = (centred(x, &mx), centred(y, &my));
    let xr = faer::MatRef::from_row_major_slice(&xc, n, d);
    let yr = faer::MatRef::from_row_major_slice(&yc, n, d);
    let gemm = |a: faer::MatRef<'_, f64>, b: faer::MatRef<'_, f64>| {
        let mut g = Mat::<f64>::zeros(d, d);
        faer::linalg::matmul::matmul(
            g.as_mut(),
            Accum::Replace,
            a.transpose(),
            b,
            1.0,
            Par::rayon(0),
        );
        from_faer(g.as_ref())
    };
    let (gxx, gxy, gyy) = (gemm(xr, xr), gemm(xr, yr), gemm(yr, yr));
    let mut m2 = Array2::<f64>::zeros((2 * d, 2 * d));
    m2.slice_mut(s![..d, ..d]).assign(&gxx);
    m2.slice_mut(s![..d, d..]).assign(&gxy);
    m2.slice_mut(s![d.., ..d]).assign(&gxy.t());
    m2.slice_mut(s![d.., d..]).assign(&gyy);
    let mean = concatenate(Axis(0), &[mx.view(), my.view()]).expect("same axis");
    Moments {
        w: n as f64,
        mean,
        m2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::type_complexity)]
    fn naive(
        trajs: &[Array2<f64>],
        tau: usize,
    ) -> (
        Array1<f64>,
        Array1<f64>,
        Array2<f64>,
        Array2<f64>,
        Array2<f64>,
    ) {
        let x: Vec<_> = trajs
            .iter()
            .map(|t| t.slice(s![..t.nrows() - tau, ..]))
            .collect();
        let y: Vec<_> = trajs.iter().map(|t| t.slice(s![tau.., ..])).collect();
        let x = concatenate(Axis(0), &x).unwrap();
        let y = concatenate(Axis(0), &y).unwrap();
        let n = x.nrows() as f64;
        let mx = x.mean_axis(Axis(0)).unwrap();
        let my = y.mean_axis(Axis(0)).unwrap();
        let xc = &x - &mx;
        let yc = &y - &my;
        (
            mx,
            my,
            xc.t().dot(&xc) / n,
            xc.t().dot(&yc) / n,
            yc.t().dot(&yc) / n,
        )
    }

    fn trajs() -> Vec<Array2<f64>> {
        vec![
            Array2::from_shape_fn((20_000, 3), |(t, j)| {
                1e3 + ((t as f64) * 0.01 * (j + 1) as f64).sin() + (t % 7) as f64 * 0.1
            }),
            Array2::from_shape_fn((137, 3), |(t, j)| {
                1e3 + ((t * t) as f64 * 1e-3).cos() * (j as f64 - 1.0)
            }),
        ]
    }

    #[test]
    fn chunked_equals_whole_equals_naive() {
        let trajs = trajs();
        let tau = 7;
        let whole = covariances(&trajs.iter().map(|t| t.view()).collect::<Vec<_>>(), tau).unwrap();
        let mut acc = CovarianceAccumulator::new(tau);
        for t in &trajs {
            // chunks of 3 frames: smaller than the lag, so pairs straddle several chunks
            for c in t.axis_chunks_iter(Axis(0), 3) {
                acc.add_chunk(c).unwrap();
            }
            acc.end_trajectory().unwrap();
        }
        let chunked = acc.finish().unwrap();
        let (mx, my, cxx, cxy, cyy) = naive(&trajs, tau);
        for (a, b) in [
            (&whole.c00, &cxx),
            (&whole.c0t, &cxy),
            (&whole.ctt, &cyy),
            (&chunked.c00, &cxx),
            (&chunked.c0t, &cxy),
            (&chunked.ctt, &cyy),
        ] {
            for (u, v) in a.iter().zip(b.iter()) {
                assert!((u - v).abs() < 1e-10, "{u} vs {v}");
            }
        }
        for (u, v) in whole
            .mean_0
            .iter()
            .chain(whole.mean_t.iter())
            .zip(mx.iter().chain(my.iter()))
        {
            assert!((u - v).abs() < 1e-10);
        }
        assert_eq!(whole.n_pairs, (20_000 - 7 + 137 - 7) as f64);
        assert_eq!(chunked.n_pairs, whole.n_pairs);
    }

    #[test]
    fn symmetrized_counts_each_pair_both_ways() {
        let trajs = trajs();
        let tau = 3;
        let cov = covariances(&trajs.iter().map(|t| t.view()).collect::<Vec<_>>(), tau)
            .unwrap()
            .symmetrized();
        // reference: append the reversed trajectories and take the plain statistics
        let both: Vec<Array2<f64>> = trajs
            .iter()
            .flat_map(|t| [t.clone(), t.slice(s![..;-1, ..]).to_owned()])
            .collect();
        let (mx, _, cxx, cxy, _) = naive(&both, tau);
        for (u, v) in cov
            .c00
            .iter()
            .zip(cxx.iter())
            .chain(cov.c0t.iter().zip(cxy.iter()))
        {
            assert!((u - v).abs() < 1e-10, "{u} vs {v}");
        }
        for (u, v) in cov.mean_0.iter().zip(mx.iter()) {
            assert!((u - v).abs() < 1e-10);
        }
    }

    #[test]
    fn short_trajectory_and_bad_values_are_errors() {
        let short = Array2::<f64>::zeros((5, 2));
        let e = covariances(&[short.view()], 5).unwrap_err().to_string();
        assert!(
            e.contains("trajectory 0 has 5 frames") && e.contains("lag time 5"),
            "{e}"
        );
        let mut bad = Array2::<f64>::zeros((10, 2));
        bad[[4, 1]] = f64::NAN;
        let e = covariances(&[bad.view()], 1).unwrap_err().to_string();
        assert!(e.contains("frame 4, feature 1"), "{e}");
    }
}
