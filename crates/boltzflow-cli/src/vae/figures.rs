//! The panels of the paper's figures for one trained model (Monroe & Shen 2022, Fig. 2):
//! the latent distribution (aggregate posterior and prior, 2b), the data coloured by the
//! encoded latent value (2c) and reconstructions x̃ ~ p(x|z), z ~ q(z|x), coloured by z (2d).

use boltzflow_core::RandomStreams;
use boltzflow_learn::run::{Representation, VaeRun, phi_psi};
use boltzflow_learn::vae::model::Vae;
use rand_distr::{Distribution, StandardNormal};

use crate::plot::{Panel, Series, histogram_points};

/// Points drawn per scatter panel.
const SCATTER_POINTS: usize = 3000;

/// The 1 % and 99 % quantiles of `v`, widened by 10 %.
pub fn robust_range(v: &[f64]) -> (f64, f64) {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return (-1.0, 1.0);
    }
    s.sort_by(f64::total_cmp);
    let q = |p: f64| s[((p * (s.len() - 1) as f64) as usize).min(s.len() - 1)];
    let (lo, hi) = (q(0.01), q(0.99));
    let pad = if hi > lo { 0.1 * (hi - lo) } else { 1.0 };
    (lo - pad, hi + pad)
}

/// Colour values in [0, 1] of `z` over its robust range.
fn colours(z: &[f64]) -> Vec<f64> {
    let (lo, hi) = robust_range(z);
    z.iter().map(|v| (v - lo) / (hi - lo)).collect()
}

/// The plane scatter panels show: a point per row of flat `[n, d]` rows (coordinates 0 and 1
/// of a toy system, φ and ψ of a peptide).
pub type Plane<'a> = &'a dyn Fn(&[f64]) -> Vec<(f64, f64)>;

/// The x and y ranges of a scatter panel.
pub type ScatterBox = ((f64, f64), (f64, f64));

/// Coordinates 0 and 1 of flat rows of width `d` (a 1-D system's second is 0).
pub fn first_two(x: &[f64], d: usize) -> Vec<(f64, f64)> {
    x.chunks_exact(d)
        .map(|r| (r[0], r.get(1).copied().unwrap_or(0.0)))
        .collect()
}

/// The three panels of one model, captioned `caption`: (latent distribution, data coloured by
/// μ₁(x), reconstructions coloured by z₁). Scatter panels show `plane` of the rows on `box_`.
pub fn model_panels(
    vae: &Vae,
    params: &[f32],
    points: &[f32],
    caption: &str,
    (plane, box_): (Plane<'_>, ScatterBox),
    seed: u64,
) -> (Panel, Panel, Panel) {
    let (d, k) = (vae.dim(), vae.latent_dim());
    let n = (points.len() / d).min(SCATTER_POINTS);
    let pts = &points[..n * d];
    let mut rng = RandomStreams::new(seed).stream("vae.figures");
    let (mu, var) = vae.encode(params, pts, n);
    let eps: Vec<f64> = (0..n * k)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let z: Vec<f64> = mu
        .iter()
        .zip(&var)
        .zip(&eps)
        .map(|((m, v), e)| m + v.sqrt() * e)
        .collect();
    let z1: Vec<f64> = z.iter().step_by(k).copied().collect();
    let mu1: Vec<f64> = mu.iter().step_by(k).copied().collect();
    // Latent distribution: aggregate posterior and prior, first latent dimension.
    let u: Vec<f32> = (0..n * k)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let prior: Vec<f64> = vae
        .prior_sample(params, &u, n)
        .iter()
        .step_by(k)
        .map(|&v| f64::from(v))
        .collect();
    let both: Vec<f64> = z1.iter().chain(&prior).copied().collect();
    let (lo, hi) = robust_range(&both);
    let latent = Panel::lines(
        caption,
        vec![
            Series::line(
                "q(z) (encoded data)",
                histogram_points(&z1, None, lo, hi, 40),
            ),
            Series::reference("P(z) (prior)", histogram_points(&prior, None, lo, hi, 40)),
        ],
    );
    let xy = |x: &[f64], c: &[f64]| -> Vec<(f64, f64, f64)> {
        plane(x)
            .into_iter()
            .zip(c)
            .map(|((a, b), &c)| (a, b, c))
            .collect()
    };
    let data64: Vec<f64> = pts.iter().map(|&v| f64::from(v)).collect();
    let by_latent = Panel::scatter(caption, xy(&data64, &colours(&mu1)), box_.0, box_.1);
    let z32: Vec<f32> = z.iter().map(|&v| v as f32).collect();
    let (recon, _) = vae.sample_x(params, &z32, n, &mut rng);
    let recon = Panel::scatter(caption, xy(&recon, &colours(&z1)), box_.0, box_.1);
    (latent, by_latent, recon)
}

/// The scatter box of a data set: robust ranges of coordinates 0 and 1.
pub fn data_box(points: &[f32], d: usize) -> ScatterBox {
    let col = |j: usize| -> Vec<f64> {
        points
            .chunks_exact(d)
            .map(|r| r.get(j).map_or(0.0, |&v| f64::from(v)))
            .collect()
    };
    (robust_range(&col(0)), robust_range(&col(1)))
}

/// The latent space of a peptide model coloured by its torsions: encoder means of `points`
/// (μ₁ against μ₂, or against φ for one latent dimension) coloured by φ and by ψ
/// (`torsions`, degrees, one (φ, ψ) per point), captioned `caption`.
pub fn latent_by_torsion(
    vae: &Vae,
    params: &[f32],
    points: &[f32],
    torsions: &[(f64, f64)],
    caption: &str,
) -> (Panel, Panel) {
    let (d, k) = (vae.dim(), vae.latent_dim());
    let n = (points.len() / d).min(SCATTER_POINTS).min(torsions.len());
    let (mu, _) = vae.encode(params, &points[..n * d], n);
    let plane: Vec<(f64, f64)> = mu
        .chunks_exact(k)
        .zip(torsions)
        .map(|(m, t)| (m[0], if k > 1 { m[1] } else { t.0 }))
        .collect();
    let x: Vec<f64> = plane.iter().map(|p| p.0).collect();
    let y: Vec<f64> = plane.iter().map(|p| p.1).collect();
    let (xr, yr) = (
        robust_range(&x),
        if k > 1 {
            robust_range(&y)
        } else {
            (-180.0, 180.0)
        },
    );
    let by = |f: fn(&(f64, f64)) -> f64| -> Vec<(f64, f64, f64)> {
        plane
            .iter()
            .zip(torsions)
            .map(|(p, t)| (p.0, p.1, (f(t) + 180.0) / 360.0))
            .collect()
    };
    (
        Panel::scatter(format!("{caption}, by φ"), by(|t| t.0), xr, yr),
        Panel::scatter(format!("{caption}, by ψ"), by(|t| t.1), xr, yr),
    )
}

/// How a run's rows are drawn in the plane of the scatter panels: φ and ψ (degrees) of a
/// peptide, coordinates 0 and 1 otherwise.
pub struct RunPlane<'a> {
    run: &'a VaeRun,
    repr: Option<Representation>,
    peptide: bool,
}

impl<'a> RunPlane<'a> {
    /// The plane of `run` (a peptide's needs its fitted representation).
    ///
    /// # Errors
    /// A molecular run without its representation.
    pub fn new(run: &'a VaeRun) -> boltzflow_core::Result<Self> {
        let repr = run.fitted_representation()?;
        let peptide = match &repr {
            Some(r) => phi_psi(
                r,
                run.system.as_ref(),
                ndarray::Array2::zeros((0, r.dim())).view(),
            )?
            .is_some(),
            None => false,
        };
        Ok(Self { run, repr, peptide })
    }

    /// Whether the plane is φ/ψ.
    pub fn is_peptide(&self) -> bool {
        self.peptide
    }

    /// The points of flat rows `x` `[n, d]`.
    pub fn points(&self, x: &[f64], d: usize) -> Vec<(f64, f64)> {
        let Some(r) = self.repr.as_ref().filter(|_| self.peptide) else {
            return first_two(x, d);
        };
        let rows = ndarray::ArrayView2::from_shape((x.len() / d, d), x).expect("[n, d] rows");
        match phi_psi(r, self.run.system.as_ref(), rows) {
            Ok(Some(t)) => t
                .outer_iter()
                .map(|a| (a[0].to_degrees(), a[1].to_degrees()))
                .collect(),
            _ => first_two(x, d),
        }
    }

    /// The scatter box of data `points` `[n, d]`.
    pub fn scatter_box(&self, points: &[f32], d: usize) -> ScatterBox {
        if self.peptide {
            ((-180.0, 180.0), (-180.0, 180.0))
        } else {
            data_box(points, d)
        }
    }

    /// The axis labels of the plane.
    pub fn labels(&self) -> (&'static str, &'static str) {
        if self.peptide {
            ("φ (°)", "ψ (°)")
        } else {
            ("x₁", "x₂")
        }
    }
}
