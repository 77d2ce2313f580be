//! Internal coordinates as the last layer of a molecular Boltzmann generator.
//!
//! A flow generates y `[3·n_atoms − 6]`: the molecule's bonds and angles standardised with the
//! mean and standard deviation of training data, and its torsions as they are, periodic on
//! (−π, π]. [`InternalLayer`] maps y to Cartesian coordinates in a canonical frame (root atom
//! at the origin, root bond along x, root triangle in the xy plane): the six external degrees
//! of freedom are fixed explicitly rather than modelled, since energies do not depend on them.
//! The density the flow must learn is then the Boltzmann density marginalised over rigid
//! motions, μ(y) ∝ exp(−u(x(y))) · |det ∂x/∂y| with the internal block of the Jacobian
//! (r₁² Π rᵢ² sin θᵢ times the standardisation scales), and [`InternalEnergy`] is the energy
//! whose Boltzmann density that is: u(x(y)) − log|det ∂x/∂y|. Its forces are the exact
//! gradient, the Cartesian forces pulled back through the Z-matrix
//! ([`InternalCoordinates::pullback`]), so reverse-KL training needs no other code.

use boltzflow_core::{Energy, Error, Result};
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis};
use rayon::prelude::*;

use crate::internal::{IcKind, InternalCoordinates};

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 64;

/// Internal coordinates with standardised bonds and angles and the external degrees of
/// freedom fixed; see the module documentation.
///
/// # Shapes
/// y `[n, 3·n_atoms − 6]`: for each internal column of [`InternalCoordinates`] in order (the
/// root bond, the third root atom's bond and angle, then bond, angle and torsion per Z-matrix
/// row); x `[n, 3·n_atoms]` in nm.
#[derive(Debug, Clone)]
pub struct InternalLayer {
    ic: InternalCoordinates,
    /// The columns of q that are internal (3·n_atoms − 6 of them).
    columns: Vec<usize>,
    /// q = shift + scale · y per internal column.
    shift: Vec<f64>,
    scale: Vec<f64>,
    kinds: Vec<IcKind>,
}

/// The columns of q that do not move the molecule rigidly: the root bond length (3), the third
/// root atom's bond and angle (6, 7), and every Z-matrix row (9…).
fn internal_columns(ic: &InternalCoordinates) -> Vec<usize> {
    let mut c = vec![3, 6, 7];
    c.extend(9..ic.dim());
    c
}

impl InternalLayer {
    /// The layer with bond and angle statistics of Cartesian data `x` `[n, 3·n_atoms]` (n ≥ 2).
    ///
    /// # Errors
    /// [`Error::Shape`] for data of the wrong width or fewer than 2 rows;
    /// [`Error::Numerical`] for a bond or angle with no spread in the data.
    pub fn fit(ic: InternalCoordinates, x: ArrayView2<f64>) -> Result<Self> {
        if x.nrows() < 2 {
            return Err(Error::shape(
                "data for the internal-coordinate statistics",
                "at least 2 configurations",
                format!("{}", x.nrows()),
            ));
        }
        let (q, _) = ic.forward(x)?;
        let columns = internal_columns(&ic);
        let kinds_all = ic.kinds();
        let mut shift = Vec::with_capacity(columns.len());
        let mut scale = Vec::with_capacity(columns.len());
        for &c in &columns {
            if kinds_all[c] == IcKind::Torsion {
                shift.push(0.0);
                scale.push(1.0);
                continue;
            }
            let col = q.column(c);
            let mean = col.mean().unwrap_or(0.0);
            let sd = col.std(1.0);
            if !(sd > 0.0 && sd.is_finite()) {
                return Err(Error::Numerical {
                    what: "internal-coordinate statistics".into(),
                    reason: format!(
                        "internal coordinate {c} ({:?}) has standard deviation {sd} in the data; the data must vary (use MD frames, not copies of one structure)",
                        kinds_all[c]
                    ),
                });
            }
            shift.push(mean);
            scale.push(sd);
        }
        Self::from_parts(ic, shift, scale)
    }

    /// The layer of given statistics (as saved from [`InternalLayer::shift`] and
    /// [`InternalLayer::scale`]).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for vectors of the wrong length or a non-positive scale.
    pub fn from_parts(ic: InternalCoordinates, shift: Vec<f64>, scale: Vec<f64>) -> Result<Self> {
        let columns = internal_columns(&ic);
        if shift.len() != columns.len() || scale.len() != columns.len() {
            return Err(Error::invalid(
                "internal-coordinate statistics",
                format!(
                    "need {} shifts and scales, got {} and {}",
                    columns.len(),
                    shift.len(),
                    scale.len()
                ),
            ));
        }
        if let Some((c, s)) = scale
            .iter()
            .enumerate()
            .find(|(_, s)| !(**s > 0.0 && s.is_finite()))
        {
            return Err(Error::invalid(
                "internal-coordinate statistics",
                format!("scale {c} is {s}; scales must be positive"),
            ));
        }
        let all = ic.kinds();
        let kinds = columns.iter().map(|&c| all[c]).collect();
        Ok(Self {
            ic,
            columns,
            shift,
            scale,
            kinds,
        })
    }

    /// Coordinates per configuration on the flow's side: 3·n_atoms − 6.
    pub fn dim(&self) -> usize {
        self.columns.len()
    }

    /// Coordinates per configuration on the Cartesian side: 3·n_atoms.
    pub fn cartesian_dim(&self) -> usize {
        self.ic.dim()
    }

    /// The kind of each coordinate of y.
    pub fn kinds(&self) -> &[IcKind] {
        &self.kinds
    }

    /// (−π, π] for the torsions of y, `None` for the others.
    pub fn periods(&self) -> Vec<Option<[f64; 2]>> {
        use std::f64::consts::PI;
        self.kinds
            .iter()
            .map(|k| (*k == IcKind::Torsion).then_some([-PI, PI]))
            .collect()
    }

    /// The shifts (data means of bonds and angles; 0 for torsions).
    pub fn shift(&self) -> &[f64] {
        &self.shift
    }

    /// The scales (data standard deviations of bonds and angles; 1 for torsions).
    pub fn scale(&self) -> &[f64] {
        &self.scale
    }

    /// The internal transform.
    pub fn internal_coordinates(&self) -> &InternalCoordinates {
        &self.ic
    }

    /// q of y in the canonical frame (root at the origin, θ₁ = π/2, φ₁ = 0, no rotation of the
    /// root triangle).
    fn full_q(&self, y: &[f64], q: &mut [f64]) {
        q.fill(0.0);
        q[4] = std::f64::consts::FRAC_PI_2;
        for (k, &c) in self.columns.iter().enumerate() {
            q[c] = self.shift[k] + self.scale[k] * y[k];
        }
    }

    /// Σ log scale: the standardisation's part of log|det ∂q/∂y|.
    fn log_scale(&self) -> f64 {
        self.scale.iter().map(|s| s.ln()).sum()
    }

    /// y → Cartesian coordinates in the canonical frame: `(x [n, 3·n_atoms], log|det ∂x/∂y|
    /// [n])`, the determinant of the internal block (r₁² Π rᵢ² sin θᵢ · Π scales).
    ///
    /// # Errors
    /// [`Error::Shape`] if `y` is not `[n, dim]`.
    pub fn to_cartesian(&self, y: ArrayView2<f64>) -> Result<(Array2<f64>, Array1<f64>)> {
        self.check(&y)?;
        let mut q = Array2::zeros((y.nrows(), self.ic.dim()));
        for (yr, mut qr) in y.outer_iter().zip(q.outer_iter_mut()) {
            self.full_q(
                &yr.to_vec(),
                qr.as_slice_mut().expect("new array rows are contiguous"),
            );
        }
        // With θ₁ = π/2 the full log-det (which has ln sin θ₁ = 0) is the internal block's.
        let (x, ld) = self.ic.inverse(q.view())?;
        let ls = self.log_scale();
        Ok((x, ld.mapv(|v| v + ls)))
    }

    /// Cartesian → y, dropping the external degrees of freedom: `(y [n, dim], log|det ∂y/∂x|
    /// [n])` of the internal block, the negative of [`InternalLayer::to_cartesian`]'s at the
    /// same internal coordinates.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` is not `[n, 3·n_atoms]`.
    pub fn to_internal(&self, x: ArrayView2<f64>) -> Result<(Array2<f64>, Array1<f64>)> {
        let (q, ld) = self.ic.forward(x)?;
        let mut y = Array2::zeros((x.nrows(), self.dim()));
        let ls = self.log_scale();
        let mut out = Array1::zeros(x.nrows());
        for (r, (qr, mut yr)) in q.outer_iter().zip(y.outer_iter_mut()).enumerate() {
            for (k, &c) in self.columns.iter().enumerate() {
                yr[k] = (qr[c] - self.shift[k]) / self.scale[k];
            }
            // The full log|det ∂q/∂x| has −ln sin θ₁ of the external polar angle: remove it.
            out[r] = ld[r] + qr[4].sin().ln() - ls;
        }
        Ok((y, out))
    }

    fn check(&self, y: &ArrayView2<f64>) -> Result<()> {
        if y.ncols() != self.dim() {
            return Err(Error::shape(
                "internal coordinates",
                format!("[n, {}] (3·atoms − 6)", self.dim()),
                format!("[{}, {}]", y.nrows(), y.ncols()),
            ));
        }
        Ok(())
    }
}

/// The energy of y whose Boltzmann density is the molecule's marginal over rigid motions:
/// u(y) = inner(x(y)) − log|det ∂x/∂y| (see the module documentation), with forces
/// −∂u/∂y = scale ⊙ [(∂x/∂q)ᵀ F(x) + ∂ log|det ∂x/∂q|/∂q] on the internal columns.
///
/// `inner` is in the unit the caller trains with (reduced, kT = 1, for Boltzmann generators).
pub struct InternalEnergy<'a> {
    /// The Cartesian energy.
    pub inner: &'a dyn Energy,
    /// The layer.
    pub layer: &'a InternalLayer,
}

impl InternalEnergy<'_> {
    fn evaluate(
        &self,
        y: ArrayView2<f64>,
        mut energy: ArrayViewMut1<f64>,
        forces: Option<ArrayViewMut2<f64>>,
    ) -> Result<()> {
        let layer = self.layer;
        boltzflow_core::energy::check_batch_shapes(
            layer.dim(),
            &y,
            energy.len(),
            forces.as_ref().map(|f| f.dim()),
        )?;
        let (x, log_det) = layer.to_cartesian(y)?;
        let Some(mut forces) = forces else {
            self.inner.energy_into(x.view(), energy.view_mut())?;
            energy.zip_mut_with(&log_det, |e, l| *e -= l);
            return Ok(());
        };
        let mut fx = Array2::zeros(x.raw_dim());
        self.inner
            .energy_and_forces_into(x.view(), energy.view_mut(), fx.view_mut())?;
        energy.zip_mut_with(&log_det, |e, l| *e -= l);
        let ic = &layer.ic;
        let d = ic.dim();
        forces
            .axis_chunks_iter_mut(Axis(0), ROWS_PER_TASK)
            .into_par_iter()
            .zip(x.axis_chunks_iter(Axis(0), ROWS_PER_TASK).into_par_iter())
            .zip(fx.axis_chunks_iter(Axis(0), ROWS_PER_TASK).into_par_iter())
            .zip(y.axis_chunks_iter(Axis(0), ROWS_PER_TASK).into_par_iter())
            .for_each(|(((mut fy, xc), fxc), yc)| {
                let (mut grad_x, mut grad_q, mut ld_grad, mut q, mut scratch) = (
                    vec![0.0; d],
                    vec![0.0; d],
                    vec![0.0; d],
                    vec![0.0; d],
                    vec![0.0; d],
                );
                for r in 0..xc.nrows() {
                    for (g, f) in grad_x.iter_mut().zip(fxc.row(r)) {
                        *g = -f;
                    }
                    let xr = xc.row(r).to_vec();
                    ic.pullback(&xr, &grad_x, &mut grad_q, &mut scratch);
                    layer.full_q(&yc.row(r).to_vec(), &mut q);
                    ic.log_det_gradient(&q, &mut ld_grad);
                    for (k, &c) in layer.columns.iter().enumerate() {
                        // −∂u/∂y = −scale · (∂E/∂q − ∂ log J/∂q).
                        fy[[r, k]] = -layer.scale[k] * (grad_q[c] - ld_grad[c]);
                    }
                }
            });
        Ok(())
    }
}

impl Energy for InternalEnergy<'_> {
    fn dim(&self) -> usize {
        self.layer.dim()
    }

    fn energy_into(&self, y: ArrayView2<f64>, out: ArrayViewMut1<f64>) -> Result<()> {
        self.evaluate(y, out, None)
    }

    fn energy_and_forces_into(
        &self,
        y: ArrayView2<f64>,
        energy: ArrayViewMut1<f64>,
        forces: ArrayViewMut2<f64>,
    ) -> Result<()> {
        self.evaluate(y, energy, Some(forces))
    }
}
