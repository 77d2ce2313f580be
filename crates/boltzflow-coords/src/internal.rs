//! The bijection between Cartesian and internal coordinates, with its log-determinant.

use boltzflow_core::geometry::{Vec3, add_scaled, angle, cross, dihedral, norm, point, scale, sub};
use boltzflow_core::{Error, Result};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rayon::prelude::*;

use crate::ZMatrix;

/// What a column of the internal coordinates is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcKind {
    /// A Cartesian coordinate of the first root atom (nm).
    Position,
    /// A bond length (nm), > 0.
    Bond,
    /// A bond angle or the polar angle of the first root bond (rad), in [0, π].
    Angle,
    /// A torsion, the azimuth of the first root bond or the rotation of the root triangle
    /// (rad), periodic on (−π, π].
    Torsion,
}

/// Cartesian ↔ internal coordinates for one molecule.
///
/// # Layout
/// Cartesian rows are `[3·n_atoms]` (x, y, z per atom, nm). Internal rows are `[3·n_atoms]`:
///
/// | columns | meaning |
/// |---|---|
/// | 0–2 | position of root a₀ |
/// | 3–5 | r = \|a₁ − a₀\|, polar angle θ and azimuth φ of a₁ − a₀ (the lab z axis is the pole) |
/// | 6–8 | bond of a₂ to its root partner j, the angle a₂–j–k at j, and the torsion a₂–j–k–(k + ẑ): the rotation of the root triangle about the root bond |
/// | 9 + 3m … | bond i–j, angle i–j–k, torsion i–j–k–l of Z-matrix row m |
///
/// The three orientation angles are Euler angles: like them, they are singular on the
/// measure-zero set where the root bond a₁ − a₀ is parallel to z.
///
/// # Jacobian
/// Each atom after a₀ is placed in spherical coordinates about its bond partner, so
/// log|det ∂x/∂q| = Σ_atoms≠a₀ (2 ln rᵢ + ln sin θᵢ) with θᵢ the atom's (polar or bond) angle;
/// the forward direction returns its negative.
#[derive(Debug, Clone)]
pub struct InternalCoordinates {
    z: ZMatrix,
}

/// The unit z vector: the pole of the root orientation.
const POLE: Vec3 = [0.0, 0.0, 1.0];

impl InternalCoordinates {
    /// The transform of a Z-matrix.
    pub fn new(z: ZMatrix) -> Self {
        Self { z }
    }

    /// The Z-matrix.
    pub fn zmatrix(&self) -> &ZMatrix {
        &self.z
    }

    /// Number of coordinates per configuration (3·n_atoms) on both sides.
    pub fn dim(&self) -> usize {
        3 * self.z.n_atoms()
    }

    /// The kind of every internal coordinate, `[dim]`.
    pub fn kinds(&self) -> Vec<IcKind> {
        let mut k = vec![IcKind::Position; 3];
        for _ in 0..self.z.n_atoms() - 1 {
            k.extend([IcKind::Bond, IcKind::Angle, IcKind::Torsion]);
        }
        k
    }

    /// The interval of each periodic (torsion) coordinate, `None` for the others — the same
    /// convention as [`boltzflow_systems`]' periods, for flows on internal coordinates.
    pub fn periods(&self) -> Vec<Option<[f64; 2]>> {
        use std::f64::consts::PI;
        self.kinds()
            .into_iter()
            .map(|k| (k == IcKind::Torsion).then_some([-PI, PI]))
            .collect()
    }

    fn root_partner(&self) -> (usize, usize) {
        let [a0, a1, _] = self.z.roots();
        let j = self.z.root_bond();
        (j, if j == a1 { a0 } else { a1 })
    }

    fn check(&self, what: &str, x: &ArrayView2<f64>) -> Result<()> {
        if x.ncols() != self.dim() {
            return Err(Error::shape(
                what,
                format!("[n, {}] (3 × {} atoms)", self.dim(), self.z.n_atoms()),
                format!("[{}, {}]", x.nrows(), x.ncols()),
            ));
        }
        Ok(())
    }

    /// Cartesian → internal: `(q [n, dim], log|det ∂q/∂x| [n])`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` is not `[n, 3·n_atoms]`.
    pub fn forward(&self, x: ArrayView2<f64>) -> Result<(Array2<f64>, Array1<f64>)> {
        self.check("Cartesian coordinates", &x)?;
        Ok(map_rows(x, |xr, qr| -self.to_internal(xr, qr)))
    }

    /// Internal → Cartesian: `(x [n, dim], log|det ∂x/∂q| [n])`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `q` is not `[n, 3·n_atoms]`.
    pub fn inverse(&self, q: ArrayView2<f64>) -> Result<(Array2<f64>, Array1<f64>)> {
        self.check("internal coordinates", &q)?;
        Ok(map_rows(q, |qr, xr| self.to_cartesian(qr, xr)))
    }

    /// Writes the internal coordinates of one configuration; returns log|det ∂x/∂q|.
    fn to_internal(&self, x: &[f64], q: &mut [f64]) -> f64 {
        let [a0, a1, a2] = self.z.roots();
        let p0 = point(x, a0);
        q[..3].copy_from_slice(&p0);
        let d1 = sub(point(x, a1), p0);
        let r1 = norm(d1);
        let theta1 = d1[0].hypot(d1[1]).atan2(d1[2]);
        q[3] = r1;
        q[4] = theta1;
        q[5] = d1[1].atan2(d1[0]);
        let mut log_det = 2.0 * r1.ln() + theta1.sin().ln();
        let (j, k) = self.root_partner();
        let (pj, pk) = (point(x, j), point(x, k));
        let p2 = point(x, a2);
        let r2 = norm(sub(p2, pj));
        let ang2 = angle(p2, pj, pk);
        q[6] = r2;
        q[7] = ang2;
        q[8] = dihedral([p2, pj, pk, add_scaled(pk, 1.0, POLE)]).angle();
        log_det += 2.0 * r2.ln() + ang2.sin().ln();
        for (m, &[i, j, k, l]) in self.z.rows().iter().enumerate() {
            let (pi, pj) = (point(x, i), point(x, j));
            let (pk, pl) = (point(x, k), point(x, l));
            let r = norm(sub(pi, pj));
            let a = angle(pi, pj, pk);
            let c = 9 + 3 * m;
            q[c] = r;
            q[c + 1] = a;
            q[c + 2] = dihedral([pi, pj, pk, pl]).angle();
            log_det += 2.0 * r.ln() + a.sin().ln();
        }
        log_det
    }

    /// Writes the Cartesian coordinates of one configuration; returns log|det ∂x/∂q|.
    fn to_cartesian(&self, q: &[f64], x: &mut [f64]) -> f64 {
        let set = |x: &mut [f64], i: usize, p: Vec3| x[3 * i..3 * i + 3].copy_from_slice(&p);
        let [a0, a1, a2] = self.z.roots();
        let p0 = [q[0], q[1], q[2]];
        set(x, a0, p0);
        let (r1, theta1, phi1) = (q[3], q[4], q[5]);
        let (st, ct) = theta1.sin_cos();
        let (sp, cp) = phi1.sin_cos();
        set(x, a1, add_scaled(p0, r1, [st * cp, st * sp, ct]));
        let mut log_det = 2.0 * r1.ln() + st.ln();
        let (j, k) = self.root_partner();
        let (pj, pk) = (point(x, j), point(x, k));
        set(
            x,
            a2,
            place(add_scaled(pk, 1.0, POLE), pk, pj, q[6], q[7], q[8]),
        );
        log_det += 2.0 * q[6].ln() + q[7].sin().ln();
        for (m, &[i, j, k, l]) in self.z.rows().iter().enumerate() {
            let c = 9 + 3 * m;
            let p = place(
                point(x, l),
                point(x, k),
                point(x, j),
                q[c],
                q[c + 1],
                q[c + 2],
            );
            set(x, i, p);
            log_det += 2.0 * q[c].ln() + q[c + 1].sin().ln();
        }
        log_det
    }
}

/// Applies a row map `f(input row, output row) -> log-det` to every row in parallel.
fn map_rows(
    input: ArrayView2<f64>,
    f: impl Fn(&[f64], &mut [f64]) -> f64 + Sync,
) -> (Array2<f64>, Array1<f64>) {
    let mut out = Array2::zeros(input.raw_dim());
    let mut log_det = Array1::zeros(input.nrows());
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(log_det.axis_iter_mut(Axis(0)).into_par_iter())
        .zip(input.axis_iter(Axis(0)).into_par_iter())
        .for_each(|((mut o, mut l), row)| {
            let row = row.to_vec();
            l[()] = f(
                &row,
                o.as_slice_mut().expect("new array rows are contiguous"),
            );
        });
    (out, log_det)
}

/// The point D with |D − C| = r, angle B–C–D = a and dihedral D–C–B–A = t (natural extension
/// reference frame, Parsons et al., J. Comput. Chem. 26, 1063 (2005)).
fn place(a_pt: Vec3, b: Vec3, c: Vec3, r: f64, a: f64, t: f64) -> Vec3 {
    let bc = sub(c, b);
    let bc = scale(1.0 / norm(bc), bc);
    let n = cross(sub(b, a_pt), bc);
    let n = scale(1.0 / norm(n), n);
    let m = cross(n, bc);
    let (sa, ca) = a.sin_cos();
    let (st, ct) = t.sin_cos();
    let d = [-r * ca, r * sa * ct, r * sa * st];
    let mut p = c;
    p = add_scaled(p, d[0], bc);
    p = add_scaled(p, d[1], m);
    add_scaled(p, d[2], n)
}
