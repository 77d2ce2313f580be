//! How good a latent space is as a collective variable (CV) of a molecule: as kinetics (the
//! VAMP-2 score and slowest implied timescale of the CV on the training trajectories, next to
//! TICA's best linear CV of the same dimension) and as structure (how well the encoder means
//! separate the Ramachandran basins).
//!
//! VAMP-2 of a k-dimensional CV c(x) at lag τ is 1 + Σᵢ σᵢ², σᵢ the singular values of the
//! whitened Koopman matrix of c (Wu & Noé, J. Nonlinear Sci. 30, 23 (2020)): it lies in
//! [1, k + 1], and a CV that resolves the slow processes scores higher. The implied timescale
//! t₁ = −τ / ln λ₁ comes from TICA on the CV's own components; a CV that misses the slowest
//! process gives a shorter t₁ than TICA on all features.

use boltzflow_coords::features::RamachandranBasin;
use boltzflow_core::{Error, Result};
use boltzflow_kinetics::tica::Tica;
use boltzflow_kinetics::vamp::{Vamp, VampScore};
use ndarray::{Array2, ArrayView2, Axis, s};
use serde::{Deserialize, Serialize};

/// The VAMP-2 score and slowest implied timescale of a CV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvKinetics {
    /// Components of the CV.
    pub dim: usize,
    /// VAMP-2 of the CV's components, including the constant function: in [1, dim + 1].
    pub vamp2: f64,
    /// Slowest implied timescale of TICA on the CV, in frames of the data.
    pub timescale: f64,
}

/// Frame-major rows (all chains of frame 0, then frame 1, …) as `chains` trajectories.
///
/// # Errors
/// [`Error::Shape`] if the rows are not a multiple of `chains` (≥ 1).
pub fn split_chains(x: ArrayView2<'_, f64>, chains: usize) -> Result<Vec<Array2<f64>>> {
    if chains == 0 || !x.nrows().is_multiple_of(chains) {
        return Err(Error::shape(
            "trajectory frames",
            format!("a multiple of {chains} chains"),
            x.nrows(),
        ));
    }
    Ok((0..chains)
        .map(|c| x.slice(s![c..;chains, ..]).to_owned())
        .collect())
}

/// The VAMP-2 score and slowest implied timescale of `cv` `[n, k]` (frame-major over
/// `chains`) at `lag` frames.
///
/// # Errors
/// Too few frames per chain for the lag (fewer than 2·lag + 2); a constant component (an
/// inactive latent dimension gives one: drop it first); numerical failures.
pub fn cv_kinetics(cv: ArrayView2<'_, f64>, chains: usize, lag: usize) -> Result<CvKinetics> {
    let trajs = split_chains(cv, chains)?;
    let frames = cv.nrows() / chains;
    if frames < 2 * lag + 2 {
        return Err(Error::invalid(
            "evaluate.lag",
            format!("{frames} frames per trajectory are too few for lag {lag}"),
        ));
    }
    let views: Vec<ArrayView2<'_, f64>> = trajs.iter().map(|t| t.view()).collect();
    let k = cv.ncols();
    let vamp = Vamp::new(lag)?.fit(&views)?;
    let vamp2 = vamp.score(VampScore::Vamp2, None, Some(k), 1e-10)?;
    let tica = Tica::new(lag)?.fit(&views)?;
    let timescale = tica.timescales().first().copied().unwrap_or(f64::NAN);
    Ok(CvKinetics {
        dim: k,
        vamp2,
        timescale,
    })
}

/// Inputs for linear kinetic models of representation rows `x` `[n, d]`: the columns as they
/// are, periodic ones (indices) as their sine and cosine.
pub fn kinetic_features(x: ArrayView2<'_, f64>, periodic: &[usize]) -> Array2<f64> {
    let d = x.ncols();
    let width = d + periodic.len();
    let mut out = Array2::zeros((x.nrows(), width));
    for (mut o, r) in out.outer_iter_mut().zip(x.outer_iter()) {
        let mut c = 0;
        for (j, &v) in r.iter().enumerate() {
            if periodic.contains(&j) {
                o[c] = v.sin();
                o[c + 1] = v.cos();
                c += 2;
            } else {
                o[c] = v;
                c += 1;
            }
        }
    }
    out
}

/// TICA's best linear CV of `k` components of `features` (frame-major over `chains`) at
/// `lag`, scored like a latent CV ([`cv_kinetics`] of its projection).
///
/// # Errors
/// As [`cv_kinetics`]; constant features.
pub fn tica_cv_kinetics(
    features: ArrayView2<'_, f64>,
    chains: usize,
    lag: usize,
    k: usize,
) -> Result<CvKinetics> {
    let trajs = split_chains(features, chains)?;
    let views: Vec<ArrayView2<'_, f64>> = trajs.iter().map(|t| t.view()).collect();
    let tica = Tica::new(lag)?.fit(&views)?;
    let proj = tica.transform(features)?;
    let k = k.min(proj.ncols());
    cv_kinetics(proj.slice(s![.., ..k]), chains, lag)
}

/// How well encoder means separate the Ramachandran basins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatentBasins {
    /// Basin names, in [`RamachandranBasin::ALL`] order.
    pub basins: Vec<String>,
    /// Frames per basin.
    pub frames: Vec<usize>,
    /// Mean encoder mean per basin `[basins][k]` (empty for a basin without frames).
    pub centroids: Vec<Vec<f64>>,
    /// Balanced accuracy of the nearest-centroid rule in the latent space (each dimension
    /// scaled by its standard deviation over the data): the mean over basins with at least
    /// [`MIN_BASIN_FRAMES`] frames of the fraction of their frames nearest their own centroid.
    /// Chance is 1 / (basins counted).
    pub balanced_accuracy: f64,
    /// Basins counted in the accuracy.
    pub basins_counted: usize,
}

/// Basins with fewer frames are left out of [`LatentBasins::balanced_accuracy`].
pub const MIN_BASIN_FRAMES: usize = 10;

/// The basin separation of encoder means `mu` `[n, k]` of frames with torsions `phi_psi`
/// `[n, 2]` (rad).
pub fn latent_basins(mu: ArrayView2<'_, f64>, phi_psi: ArrayView2<'_, f64>) -> LatentBasins {
    let k = mu.ncols();
    let labels: Vec<usize> = phi_psi
        .outer_iter()
        .map(|r| RamachandranBasin::of(r[0], r[1]).index())
        .collect();
    let nb = RamachandranBasin::ALL.len();
    let sd: Vec<f64> = mu
        .std_axis(Axis(0), 0.0)
        .iter()
        .map(|&v| if v > 0.0 { v } else { 1.0 })
        .collect();
    let mut frames = vec![0usize; nb];
    let mut sums = vec![vec![0.0; k]; nb];
    for (r, &b) in mu.outer_iter().zip(&labels) {
        frames[b] += 1;
        for (s, v) in sums[b].iter_mut().zip(r) {
            *s += v;
        }
    }
    let centroids: Vec<Vec<f64>> = sums
        .iter()
        .zip(&frames)
        .map(|(s, &n)| {
            if n == 0 {
                Vec::new()
            } else {
                s.iter().map(|v| v / n as f64).collect()
            }
        })
        .collect();
    let counted: Vec<usize> = (0..nb).filter(|&b| frames[b] >= MIN_BASIN_FRAMES).collect();
    let mut correct = vec![0usize; nb];
    for (r, &b) in mu.outer_iter().zip(&labels) {
        if !counted.contains(&b) {
            continue;
        }
        let nearest = counted
            .iter()
            .copied()
            .min_by(|&a, &c| {
                let d = |q: usize| -> f64 {
                    r.iter()
                        .zip(&centroids[q])
                        .zip(&sd)
                        .map(|((v, m), s)| ((v - m) / s).powi(2))
                        .sum()
                };
                d(a).total_cmp(&d(c))
            })
            .expect("b is counted");
        correct[b] += usize::from(nearest == b);
    }
    let balanced_accuracy = if counted.is_empty() {
        f64::NAN
    } else {
        counted
            .iter()
            .map(|&b| correct[b] as f64 / frames[b] as f64)
            .sum::<f64>()
            / counted.len() as f64
    };
    LatentBasins {
        basins: RamachandranBasin::ALL
            .iter()
            .map(|b| b.name().to_string())
            .collect(),
        frames,
        centroids,
        balanced_accuracy,
        basins_counted: counted.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, StandardNormal};

    /// Two independent AR(1) processes x_{t+1} = a x_t + noise, frame-major over chains.
    fn ar1(a: [f64; 2], chains: usize, frames: usize) -> Array2<f64> {
        let mut rng = boltzflow_core::RandomStreams::new(7).stream("ar1");
        let mut x = Array2::zeros((chains * frames, 2));
        for c in 0..chains {
            let mut v = [0.0f64; 2];
            for t in 0..frames {
                for j in 0..2 {
                    let e: f64 = StandardNormal.sample(&mut rng);
                    v[j] = a[j] * v[j] + (1.0 - a[j] * a[j]).sqrt() * e;
                    x[[t * chains + c, j]] = v[j];
                }
            }
        }
        x
    }

    #[test]
    fn an_ar1_cv_has_vamp2_one_plus_a_squared_and_timescale_minus_one_over_ln_a() {
        // Exact: for one AR(1) component at lag τ, σ = a^τ, so VAMP-2 = 1 + a^{2τ} and
        // t = −τ/ln a^τ = −1/ln a frames.
        let (a, lag) = ([0.95, 0.5], 2);
        let x = ar1(a, 4, 50_000);
        let slow = cv_kinetics(x.slice(s![.., 0..1]), 4, lag).unwrap();
        let want = 1.0 + a[0].powi(2 * lag as i32);
        assert!((slow.vamp2 - want).abs() < 0.01, "{} vs {want}", slow.vamp2);
        let t = -1.0 / a[0].ln();
        assert!(
            (slow.timescale / t - 1.0).abs() < 0.05,
            "{} vs {t}",
            slow.timescale
        );
        // The fast component alone scores lower; TICA's 1-D CV finds the slow one.
        let fast = cv_kinetics(x.slice(s![.., 1..2]), 4, lag).unwrap();
        assert!(
            (fast.vamp2 - (1.0 + a[1].powi(4))).abs() < 0.01,
            "{}",
            fast.vamp2
        );
        let tica = tica_cv_kinetics(x.view(), 4, lag, 1).unwrap();
        assert!((tica.vamp2 - slow.vamp2).abs() < 1e-3);
        // Both components: 1 + a₁^{2τ} + a₂^{2τ}.
        let both = cv_kinetics(x.view(), 4, lag).unwrap();
        let want = 1.0 + a[0].powi(4) + a[1].powi(4);
        assert!((both.vamp2 - want).abs() < 0.01, "{} vs {want}", both.vamp2);
        // Bad input is named.
        assert!(cv_kinetics(x.view(), 3, lag).is_err());
        let e = cv_kinetics(x.slice(s![..16, ..]), 4, lag).unwrap_err();
        assert!(e.to_string().contains("evaluate.lag"), "{e}");
    }

    #[test]
    fn latent_basins_count_nearest_centroids_per_basin() {
        // C7eq (φ = −80°, ψ = 70°) at z = 0, C5 (−150°, 150°) at z = 1 except one frame in
        // five at 0, αL (60°, 40°) at z = 3; no αR frame.
        let d = f64::to_radians;
        let rows = [(-80.0, 70.0, 0.0), (-150.0, 150.0, 1.0), (60.0, 40.0, 3.0)];
        let mut mu = Vec::new();
        let mut pp = Vec::new();
        for (i, (phi, psi, z)) in rows.iter().enumerate() {
            for j in 0..20 {
                // One C5 frame in five lies at C7eq's value.
                let z = if i == 1 && j % 5 == 0 { 0.0 } else { *z };
                mu.push(z);
                pp.extend([d(*phi), d(*psi)]);
            }
        }
        let mu = Array2::from_shape_vec((60, 1), mu).unwrap();
        let pp = Array2::from_shape_vec((60, 2), pp).unwrap();
        let b = latent_basins(mu.view(), pp.view());
        assert_eq!(b.frames, vec![20, 20, 0, 20]);
        assert_eq!(b.basins_counted, 3);
        // C7eq 20/20, C5 16/20, αL 20/20.
        assert!((b.balanced_accuracy - (1.0 + 0.8 + 1.0) / 3.0).abs() < 1e-12);
        assert!((b.centroids[1][0] - 0.8).abs() < 1e-12);
        assert!(b.centroids[2].is_empty());
    }
}
