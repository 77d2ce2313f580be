//! Internal coordinates as the last layer of a molecular Boltzmann generator.
//!
//! A flow generates y `[3·n_atoms − 6]`: the molecule's bonds and angles standardised with the
//! mean and standard deviation of training data; its free torsions as they are, periodic on
//! (−π, π]; and its *rigid* torsions (those the data keep within a narrow band: peptide bonds,
//! the fixed offsets between substituents of one atom that the Z-matrix's relative torsions
//! give) standardised like bonds about their circular mean. A rigid torsion is one whose
//! circular standard deviation √(−2 ln R̄) in the data is at most
//! [`RIGID_TORSION_SD`] and whose every frame lies within [`RIGID_TORSION_MAX_DEV`] of the
//! mean; the flow then models it with a Gaussian base instead of a circular spline, which
//! would put a little density on the whole circle (and with it, clashing molecules). Its
//! y = wrap(θ − μ)/σ covers (−π/σ, π/σ]; the base density beyond that (|y| > π/20° ≈ 9) is
//! below e⁻⁴⁰ and ignored. [`InternalLayer`] maps y to Cartesian coordinates in a canonical frame (root atom
//! at the origin, root bond along x, root triangle in the xy plane): the six external degrees
//! of freedom are fixed explicitly rather than modelled, since energies do not depend on them.
//! The density the flow must learn is then the Boltzmann density marginalised over rigid
//! motions, μ(y) ∝ exp(−u(x(y))) · |det ∂x/∂y| with the internal block of the Jacobian
//! (r₁² Π rᵢ² sin θᵢ times the standardisation scales), and [`InternalEnergy`] is the energy
//! whose Boltzmann density that is: u(x(y)) − log|det ∂x/∂y|. Its forces are the exact
//! gradient, the Cartesian forces pulled back through the Z-matrix
//! ([`InternalCoordinates::pullback`]), so reverse-KL training needs no other code.
//!
//! A layer may hold bonds fixed ([`InternalLayer::fit_constrained`]): the constrained bonds of
//! a System (bonds to hydrogen under `constraints=HBonds`) are then not coordinates of y
//! (48 instead of 60 for alanine dipeptide) but set to their constraint lengths, and
//! [`InternalEnergy`] adds −½ ln det G, the Fixman factor of the density constrained dynamics
//! sample (see [`crate::fixed_bonds`]).

use boltzflow_core::{Energy, Error, Result};
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis};
use rayon::prelude::*;

use crate::fixed_bonds::FixedBonds;
use crate::internal::{IcKind, InternalCoordinates};

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 64;

/// Internal coordinates with standardised bonds and angles and the external degrees of
/// freedom fixed; see the module documentation.
///
/// # Shapes
/// y `[n, 3·n_atoms − 6 − n_fixed]`: for each internal column of [`InternalCoordinates`] in
/// order (the root bond, the third root atom's bond and angle, then bond, angle and torsion
/// per Z-matrix row) that is not a fixed bond; x `[n, 3·n_atoms]` in nm.
#[derive(Debug, Clone)]
pub struct InternalLayer {
    ic: InternalCoordinates,
    /// The columns of q that are internal and free (3·n_atoms − 6 − n_fixed of them).
    columns: Vec<usize>,
    /// Fixed bonds: (column of q, length) and the constraints with their masses.
    fixed: Option<(Vec<(usize, f64)>, FixedBonds)>,
    /// q = shift + scale · y per internal column.
    shift: Vec<f64>,
    scale: Vec<f64>,
    kinds: Vec<IcKind>,
    /// Per coordinate of y: a free torsion, periodic on (−π, π].
    periodic: Vec<bool>,
}

/// The energy (in the unit of [`InternalEnergy`]'s inner energy, kT for Boltzmann
/// generators) at the edge of the internal coordinates' domain, growing exponentially with the
/// violation in units of the coordinates' scales (see [`InternalLayer::in_domain`]): a weight
/// of e⁻¹⁰⁰⁰⁰⁰⁰ for reweighting, and in training (through the log branch of a linlogcut) a
/// force back into the domain.
pub const OUTSIDE_ENERGY: f64 = 1e6;

/// The violation (in scales) beyond which the wall grows linearly instead of exponentially
/// (to stay finite in f64).
pub const WALL_EXP_LIMIT: f64 = 600.0;

/// The largest circular standard deviation (radians, 20°) of a torsion the layer standardises
/// as rigid instead of treating as periodic.
pub const RIGID_TORSION_SD: f64 = 20.0 * std::f64::consts::PI / 180.0;

/// The largest deviation from its circular mean (radians, 90°) any frame of a rigid torsion
/// may have.
pub const RIGID_TORSION_MAX_DEV: f64 = std::f64::consts::FRAC_PI_2;

/// The standardisation widths of a layer set up from one reference structure
/// ([`InternalLayer::from_reference`]); the defaults are those of FAB's alanine-dipeptide
/// transform (bonds 0.005 nm, angles 0.15 rad, torsions 0.2 rad).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReferenceWidths {
    /// nm.
    pub bond: f64,
    /// rad.
    pub angle: f64,
    /// rad, for the relative (rigid) torsions.
    pub torsion: f64,
}

impl Default for ReferenceWidths {
    fn default() -> Self {
        Self {
            bond: 0.005,
            angle: 0.15,
            torsion: 0.2,
        }
    }
}

/// `a` wrapped into (−π, π].
fn wrap(a: f64) -> f64 {
    use std::f64::consts::{PI, TAU};
    let w = a - TAU * ((a + PI) / TAU).floor();
    if w <= -PI { w + TAU } else { w }
}

/// Circular mean μ and the root-mean-square of wrap(θ − μ) of a rigid torsion, or `None` for
/// a free one (see the module documentation).
fn rigid_torsion(theta: ndarray::ArrayView1<f64>) -> Option<(f64, f64)> {
    let n = theta.len() as f64;
    let (s, c) = theta
        .iter()
        .fold((0.0, 0.0), |(s, c), t| (s + t.sin(), c + t.cos()));
    let r = (s * s + c * c).sqrt() / n;
    if r.is_nan() || r <= 0.0 || (-2.0 * r.ln()).sqrt() > RIGID_TORSION_SD {
        return None;
    }
    let mu = s.atan2(c);
    let mut sq = 0.0;
    for &t in theta {
        let d = wrap(t - mu);
        if d.abs() > RIGID_TORSION_MAX_DEV {
            return None;
        }
        sq += d * d;
    }
    let sd = (sq / (n - 1.0)).sqrt();
    (sd > 0.0).then_some((mu, sd))
}

/// The columns of q that do not move the molecule rigidly: the root bond length (3), the third
/// root atom's bond and angle (6, 7), and every Z-matrix row (9…), less the `fixed` ones.
fn internal_columns(ic: &InternalCoordinates, fixed: &[(usize, f64)]) -> Vec<usize> {
    let mut c = vec![3, 6, 7];
    c.extend(9..ic.dim());
    c.retain(|c| fixed.iter().all(|(f, _)| f != c));
    c
}

/// The atoms internal column `c` of q measures (see [`InternalLayer::column_atoms`]).
fn column_atoms(ic: &InternalCoordinates, c: usize) -> Vec<usize> {
    let [a0, a1, a2] = ic.zmatrix().roots();
    let (j, k) = ic.root_partner();
    match c {
        3 => vec![a0, a1],
        6 => vec![a2, j],
        7 => vec![a2, j, k],
        _ => {
            let [i, j, k, l] = ic.zmatrix().rows()[(c - 9) / 3];
            match (c - 9) % 3 {
                0 => vec![i, j],
                1 => vec![i, j, k],
                _ => vec![i, j, k, l],
            }
        }
    }
}

/// The bond column of q and the length of each constraint of `fixed`.
///
/// # Errors
/// [`Error::InvalidParameter`] (`constraints`) for a constraint that is not a bond of the
/// Z-matrix, or constraints for a molecule of another size.
fn fixed_columns(ic: &InternalCoordinates, fixed: &FixedBonds) -> Result<Vec<(usize, f64)>> {
    let n_atoms = ic.zmatrix().n_atoms();
    if fixed.n_atoms() != n_atoms {
        return Err(Error::invalid(
            "constraints",
            format!(
                "the constraints are for {} atoms, the molecule has {n_atoms}",
                fixed.n_atoms()
            ),
        ));
    }
    let bonds: Vec<(usize, Vec<usize>)> = internal_columns(ic, &[])
        .into_iter()
        .map(|c| (c, column_atoms(ic, c)))
        .filter(|(_, a)| a.len() == 2)
        .collect();
    fixed
        .pairs()
        .iter()
        .enumerate()
        .map(|(n, &(i, j, d))| {
            bonds
                .iter()
                .find(|(_, a)| (a[0] == i && a[1] == j) || (a[0] == j && a[1] == i))
                .map(|(c, _)| (*c, d))
                .ok_or_else(|| {
                    Error::invalid(
                        "constraints",
                        format!(
                            "constraint {n} between atoms {i} and {j} is not a bond of the Z-matrix; internal coordinates can hold bonds fixed (constraints=HBonds; AllBonds without rings), not distances across angles (HAngles, rigid water) or ring closures"
                        ),
                    )
                })
        })
        .collect()
}

impl InternalLayer {
    /// The layer with bond, angle and rigid-torsion statistics of Cartesian data `x`
    /// `[n, 3·n_atoms]` (n ≥ 2); the torsions that are not rigid in `x` are periodic.
    ///
    /// # Errors
    /// [`Error::Shape`] for data of the wrong width or fewer than 2 rows;
    /// [`Error::Numerical`] for a bond or angle with no spread in the data.
    pub fn fit(ic: InternalCoordinates, x: ArrayView2<f64>) -> Result<Self> {
        Self::fit_constrained(ic, x, None)
    }

    /// [`InternalLayer::fit`] with the bonds of `fixed` held at their constraint lengths (not
    /// coordinates of y; the data's lengths of them are not used).
    ///
    /// # Errors
    /// Those of [`InternalLayer::fit`]; [`Error::InvalidParameter`] (`constraints`) for a
    /// constraint that is not a bond of the Z-matrix.
    pub fn fit_constrained(
        ic: InternalCoordinates,
        x: ArrayView2<f64>,
        fixed: Option<FixedBonds>,
    ) -> Result<Self> {
        if x.nrows() < 2 {
            return Err(Error::shape(
                "data for the internal-coordinate statistics",
                "at least 2 configurations",
                format!("{}", x.nrows()),
            ));
        }
        let (q, _) = ic.forward(x)?;
        let fixed_cols = match &fixed {
            Some(f) => fixed_columns(&ic, f)?,
            None => Vec::new(),
        };
        let columns = internal_columns(&ic, &fixed_cols);
        let kinds_all = ic.kinds();
        let mut shift = Vec::with_capacity(columns.len());
        let mut scale = Vec::with_capacity(columns.len());
        let mut periodic = Vec::with_capacity(columns.len());
        for &c in &columns {
            let torsion = kinds_all[c] == IcKind::Torsion;
            periodic.push(false);
            if torsion {
                if let Some((mu, sd)) = rigid_torsion(q.column(c)) {
                    shift.push(mu);
                    scale.push(sd);
                } else {
                    *periodic.last_mut().expect("just pushed") = true;
                    shift.push(0.0);
                    scale.push(1.0);
                }
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
        Self::from_parts_constrained(ic, shift, scale, periodic, fixed)
    }

    /// The layer of one reference structure `x` `[3·n_atoms]` (nm), for training without data
    /// (as FAB and TA-BG set up alanine dipeptide): bonds, angles and relative torsions (see
    /// [`crate::ZMatrix::from_bonds`]) are centred on the reference's values with the fixed
    /// `widths`; every other torsion is free (periodic).
    ///
    /// # Errors
    /// [`Error::Shape`] for `x` of the wrong length; [`Error::InvalidParameter`] for a
    /// non-positive width.
    pub fn from_reference(
        ic: InternalCoordinates,
        x: ndarray::ArrayView1<f64>,
        widths: ReferenceWidths,
    ) -> Result<Self> {
        if x.len() != ic.dim() {
            return Err(Error::shape(
                "reference structure",
                format!("{} coordinates", ic.dim()),
                format!("{}", x.len()),
            ));
        }
        let (q, _) = ic.forward(x.insert_axis(Axis(0)))?;
        let z = ic.zmatrix();
        let relative = z.relative_torsions();
        let kinds_all = ic.kinds();
        let columns = internal_columns(&ic, &[]);
        let (mut shift, mut scale, mut periodic) = (Vec::new(), Vec::new(), Vec::new());
        for &c in &columns {
            let (width, free) = match kinds_all[c] {
                IcKind::Bond => (widths.bond, false),
                IcKind::Angle => (widths.angle, false),
                // Column 9 + 3m + 2 is the torsion of Z-matrix row m.
                _ => (widths.torsion, !relative[(c - 11) / 3]),
            };
            if !(width > 0.0 && width.is_finite()) {
                return Err(Error::invalid(
                    "reference widths",
                    format!("{:?} width {width} must be positive", kinds_all[c]),
                ));
            }
            periodic.push(free);
            shift.push(if free { 0.0 } else { q[[0, c]] });
            scale.push(if free { 1.0 } else { width });
        }
        Self::from_parts(ic, shift, scale, periodic)
    }

    /// The layer of given statistics (as saved from [`InternalLayer::shift`],
    /// [`InternalLayer::scale`] and [`InternalLayer::periodic`]).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for vectors of the wrong length, a non-positive scale, or a
    /// periodic coordinate that is not a torsion or is shifted or scaled.
    pub fn from_parts(
        ic: InternalCoordinates,
        shift: Vec<f64>,
        scale: Vec<f64>,
        periodic: Vec<bool>,
    ) -> Result<Self> {
        Self::from_parts_constrained(ic, shift, scale, periodic, None)
    }

    /// [`InternalLayer::from_parts`] of a layer with the bonds of `fixed` held fixed (as
    /// saved from [`InternalLayer::fixed_bonds`]); the statistics are those of the free
    /// coordinates.
    ///
    /// # Errors
    /// Those of [`InternalLayer::from_parts`] and [`InternalLayer::fit_constrained`].
    pub fn from_parts_constrained(
        ic: InternalCoordinates,
        shift: Vec<f64>,
        scale: Vec<f64>,
        periodic: Vec<bool>,
        fixed: Option<FixedBonds>,
    ) -> Result<Self> {
        let fixed = match fixed {
            Some(f) => Some((fixed_columns(&ic, &f)?, f)),
            None => None,
        };
        let columns = internal_columns(&ic, fixed.as_ref().map_or(&[], |(c, _)| c));
        if shift.len() != columns.len()
            || scale.len() != columns.len()
            || periodic.len() != columns.len()
        {
            return Err(Error::invalid(
                "internal-coordinate statistics",
                format!(
                    "need {} shifts, scales and periodic flags, got {}, {} and {}",
                    columns.len(),
                    shift.len(),
                    scale.len(),
                    periodic.len()
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
        let kinds: Vec<IcKind> = columns.iter().map(|&c| all[c]).collect();
        if let Some(k) = (0..columns.len()).find(|&k| {
            periodic[k] && (kinds[k] != IcKind::Torsion || shift[k] != 0.0 || scale[k] != 1.0)
        }) {
            return Err(Error::invalid(
                "internal-coordinate statistics",
                format!(
                    "coordinate {k} ({:?}, shift {}, scale {}) is marked periodic; only unshifted, unscaled torsions can be",
                    kinds[k], shift[k], scale[k]
                ),
            ));
        }
        Ok(Self {
            ic,
            columns,
            fixed,
            shift,
            scale,
            kinds,
            periodic,
        })
    }

    /// The bonds held fixed, if any.
    pub fn fixed_bonds(&self) -> Option<&FixedBonds> {
        self.fixed.as_ref().map(|(_, f)| f)
    }

    /// Coordinates per configuration on the flow's side: 3·n_atoms − 6 less the fixed bonds.
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

    /// (−π, π] for the free torsions of y, `None` for the others.
    pub fn periods(&self) -> Vec<Option<[f64; 2]>> {
        use std::f64::consts::PI;
        self.periodic
            .iter()
            .map(|p| p.then_some([-PI, PI]))
            .collect()
    }

    /// Per coordinate of y, whether it is a free (periodic) torsion.
    pub fn periodic(&self) -> &[bool] {
        &self.periodic
    }

    /// The shifts (data means of bonds and angles, circular means of rigid torsions; 0 for
    /// free torsions).
    pub fn shift(&self) -> &[f64] {
        &self.shift
    }

    /// The scales (data standard deviations of bonds, angles and rigid torsions; 1 for free
    /// torsions).
    pub fn scale(&self) -> &[f64] {
        &self.scale
    }

    /// The atoms each coordinate of y measures, in the conventions of PLUMED's DISTANCE, ANGLE
    /// and TORSION: a bond's two atoms, an angle's three (the vertex in the middle), a
    /// torsion's four (i–j–k–l, the rotation about j–k).
    pub fn column_atoms(&self) -> Vec<Vec<usize>> {
        self.columns
            .iter()
            .map(|&c| column_atoms(&self.ic, c))
            .collect()
    }

    /// The internal transform.
    pub fn internal_coordinates(&self) -> &InternalCoordinates {
        &self.ic
    }

    /// q of y in the canonical frame (root at the origin, θ₁ = π/2, φ₁ = 0, no rotation of the
    /// root triangle), the fixed bonds at their lengths.
    fn full_q(&self, y: &[f64], q: &mut [f64]) {
        q.fill(0.0);
        q[4] = std::f64::consts::FRAC_PI_2;
        for (k, &c) in self.columns.iter().enumerate() {
            q[c] = self.shift[k] + self.scale[k] * y[k];
        }
        if let Some((cols, _)) = &self.fixed {
            for &(c, d) in cols {
                q[c] = d;
            }
        }
    }

    /// Σ log scale: the standardisation's part of log|det ∂q/∂y|.
    pub fn log_scale(&self) -> f64 {
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
                let d = qr[c] - self.shift[k];
                let d = if self.kinds[k] == IcKind::Torsion {
                    wrap(d)
                } else {
                    d
                };
                yr[k] = d / self.scale[k];
            }
            // The full log|det ∂q/∂x| has −ln sin θ₁ of the external polar angle: remove it.
            out[r] = ld[r] + qr[4].sin().ln() - ls;
        }
        Ok((y, out))
    }

    /// Whether y `[dim]` lies in the domain of the internal coordinates: every bond positive,
    /// every angle in (0, π). Outside it the map to Cartesian coordinates is not one-to-one
    /// (a negative bond or an angle beyond π places an atom where another y would), so
    /// [`InternalEnergy`] gives such rows the wall energy of [`OUTSIDE_ENERGY`] instead of the
    /// molecule's.
    pub fn in_domain(&self, y: ndarray::ArrayView1<f64>) -> bool {
        self.kinds
            .iter()
            .enumerate()
            .all(|(k, kind)| self.violation(*kind, self.shift[k] + self.scale[k] * y[k]) == 0.0)
    }

    /// How far q lies outside its kind's domain, signed as ∂/∂q of the distance: negative
    /// below the lower bound, positive above the upper one; 0 inside.
    fn violation(&self, kind: IcKind, q: f64) -> f64 {
        match kind {
            IcKind::Bond if q <= 0.0 => q,
            IcKind::Angle if q <= 0.0 => q,
            IcKind::Angle if q >= std::f64::consts::PI => q - std::f64::consts::PI,
            _ => 0.0,
        }
    }

    /// The wall outside the domain: with s = Σ |vₖ|/scaleₖ (vₖ each coordinate's violation),
    /// u = E₀ eˢ up to s = [`WALL_EXP_LIMIT`] and linear beyond (C¹), E₀ = [`OUTSIDE_ENERGY`];
    /// writes its force −∂u/∂y into `force`. Exponential, so that log u grows linearly: a
    /// trainer's linlogcut takes the log of high energies, and a wall whose log grew only
    /// logarithmically would lose against the entropy a flow gains by spreading out.
    fn wall(&self, y: ndarray::ArrayView1<f64>, force: Option<ArrayViewMut1<f64>>) -> f64 {
        let t: Vec<f64> = self
            .kinds
            .iter()
            .enumerate()
            .map(|(k, kind)| {
                self.violation(*kind, self.shift[k] + self.scale[k] * y[k]) / self.scale[k]
            })
            .collect();
        let s: f64 = t.iter().map(|v| v.abs()).sum();
        let (u, du_ds) = if s <= WALL_EXP_LIMIT {
            let u = OUTSIDE_ENERGY * s.exp();
            (u, u)
        } else {
            let top = OUTSIDE_ENERGY * WALL_EXP_LIMIT.exp();
            (top * (1.0 + s - WALL_EXP_LIMIT), top)
        };
        if let Some(mut f) = force {
            // ∂|tₖ|/∂yₖ = sign(vₖ) (∂q/∂y = scale cancels the 1/scale).
            for (fk, tk) in f.iter_mut().zip(&t) {
                *fk = if *tk == 0.0 {
                    0.0
                } else {
                    -du_ds * tk.signum()
                };
            }
        }
        u
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
/// −∂u/∂y = scale ⊙ [(∂x/∂q)ᵀ F(x) + ∂ log|det ∂x/∂q|/∂q] on the internal columns. With fixed
/// bonds, u also has −½ ln det G(x(y)) (the constrained dynamics' Fixman factor, see
/// [`crate::fixed_bonds`]; in kT, so `inner` must be reduced) and F its force ½ ∇ ln det G.
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
        // ln J, and with fixed bonds + ½ ln det G: the Fixman factor enters the density like
        // the Jacobian (added below, with its gradient when forces are asked for).
        let (x, mut log_det) = layer.to_cartesian(y)?;
        // Rows outside the internal coordinates' domain: the wall instead of the molecule.
        let outside: Vec<bool> = y.outer_iter().map(|r| !layer.in_domain(r)).collect();
        let mark = |mut energy: ArrayViewMut1<f64>| {
            for ((e, &o), yr) in energy.iter_mut().zip(&outside).zip(y.outer_iter()) {
                if o {
                    *e = layer.wall(yr, None);
                }
            }
        };
        let Some(mut forces) = forces else {
            self.inner.energy_into(x.view(), energy.view_mut())?;
            if let Some((_, fixed)) = &layer.fixed {
                log_det
                    .as_slice_mut()
                    .expect("new arrays are contiguous")
                    .par_iter_mut()
                    .zip(x.axis_iter(Axis(0)).into_par_iter())
                    .for_each(|(l, xr)| {
                        *l += 0.5
                            * fixed.log_det_metric(xr.as_slice().expect("contiguous row"), None);
                    });
            }
            energy.zip_mut_with(&log_det, |e, l| *e -= l);
            mark(energy);
            return Ok(());
        };
        let mut fx = Array2::zeros(x.raw_dim());
        self.inner
            .energy_and_forces_into(x.view(), energy.view_mut(), fx.view_mut())?;
        let ic = &layer.ic;
        let d = ic.dim();
        forces
            .axis_chunks_iter_mut(Axis(0), ROWS_PER_TASK)
            .into_par_iter()
            .zip(x.axis_chunks_iter(Axis(0), ROWS_PER_TASK).into_par_iter())
            .zip(fx.axis_chunks_iter(Axis(0), ROWS_PER_TASK).into_par_iter())
            .zip(y.axis_chunks_iter(Axis(0), ROWS_PER_TASK).into_par_iter())
            .zip(
                log_det
                    .axis_chunks_iter_mut(Axis(0), ROWS_PER_TASK)
                    .into_par_iter(),
            )
            .for_each(|((((mut fy, xc), fxc), yc), mut ldc)| {
                let (mut grad_x, mut grad_q, mut ld_grad, mut q, mut scratch) = (
                    vec![0.0; d],
                    vec![0.0; d],
                    vec![0.0; d],
                    vec![0.0; d],
                    vec![0.0; d],
                );
                for r in 0..xc.nrows() {
                    if !layer.in_domain(yc.row(r)) {
                        layer.wall(yc.row(r), Some(fy.row_mut(r)));
                        continue;
                    }
                    for (g, f) in grad_x.iter_mut().zip(fxc.row(r)) {
                        *g = -f;
                    }
                    let xr = xc.row(r).to_vec();
                    if let Some((_, fixed)) = &layer.fixed {
                        // −½ ln det G and its gradient.
                        scratch.fill(0.0);
                        ldc[r] += 0.5 * fixed.log_det_metric(&xr, Some(&mut scratch));
                        for (g, m) in grad_x.iter_mut().zip(&scratch) {
                            *g -= 0.5 * m;
                        }
                    }
                    ic.pullback(&xr, &grad_x, &mut grad_q, &mut scratch);
                    layer.full_q(&yc.row(r).to_vec(), &mut q);
                    ic.log_det_gradient(&q, &mut ld_grad);
                    for (k, &c) in layer.columns.iter().enumerate() {
                        // −∂u/∂y = −scale · (∂E/∂q − ∂ log J/∂q).
                        fy[[r, k]] = -layer.scale[k] * (grad_q[c] - ld_grad[c]);
                    }
                }
            });
        energy.zip_mut_with(&log_det, |e, l| *e -= l);
        mark(energy);
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
