//! The bijection between Cartesian and internal coordinates, with its log-determinant.

use boltzflow_core::geometry::{
    Vec3, add_scaled, angle, angle_gradient, cross, dihedral, dot, norm, point, scale, sub,
};
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

    /// The atom a₂ is bonded to among the first two roots, and the other root: a₂'s bond and
    /// angle are a₂–j and a₂–j–k.
    pub(crate) fn root_partner(&self) -> (usize, usize) {
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
        // |r| and |sin θ|: finite also outside the domain (r < 0, θ ∉ (0, π)), where the map
        // folds onto a mirror configuration (InternalLayer::in_domain).
        let mut log_det = 2.0 * r1.abs().ln() + st.abs().ln();
        let (j, k) = self.root_partner();
        let (pj, pk) = (point(x, j), point(x, k));
        set(
            x,
            a2,
            place(add_scaled(pk, 1.0, POLE), pk, pj, q[6], q[7], q[8]),
        );
        log_det += 2.0 * q[6].abs().ln() + q[7].sin().abs().ln();
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
            log_det += 2.0 * q[c].abs().ln() + q[c + 1].sin().abs().ln();
        }
        log_det
    }
}

impl InternalCoordinates {
    /// The internal coordinates' gradient of a function of the Cartesian ones: given one
    /// configuration `x` `[3·n_atoms]` and ∂E/∂x there, writes ∂E/∂q = (∂x/∂q)ᵀ ∂E/∂x into
    /// `grad_q` `[3·n_atoms]` (layout as [`InternalCoordinates`]).
    ///
    /// ∂q/∂x is block lower-triangular in placement order (each atom's bond, angle and torsion
    /// depend on it and on atoms placed before it), so (∂q/∂x)ᵀ ∂E/∂q = ∂E/∂x is solved by
    /// back-substitution from the last atom placed: one 3 × 3 solve per atom, no Jacobian
    /// matrix. This is how forces become the gradient of a flow that generates internal
    /// coordinates. `scratch` holds 3·n_atoms values.
    pub fn pullback(&self, x: &[f64], grad_x: &[f64], grad_q: &mut [f64], scratch: &mut [f64]) {
        let n = self.z.n_atoms();
        // Residual adjoints per atom: ∂E/∂x minus what later atoms' coordinates account for.
        let res = &mut scratch[..3 * n];
        res.copy_from_slice(&grad_x[..3 * n]);
        let get = |res: &[f64], i: usize| [res[3 * i], res[3 * i + 1], res[3 * i + 2]];
        let sub_from = |res: &mut [f64], i: usize, v: Vec3| {
            for k in 0..3 {
                res[3 * i + k] -= v[k];
            }
        };
        // One atom placed by (bond to j, angle at j with k, torsion with l), l given as a point
        // whose adjoint goes to `l_atom`; returns ∂E/∂(r, a, t).
        let place_row =
            |res: &mut [f64], i: usize, j: usize, k: usize, l: Option<usize>, pl: Vec3| {
                let (pi, pj, pk) = (point(x, i), point(x, j), point(x, k));
                let d = sub(pi, pj);
                let r = norm(d);
                let gr = scale(1.0 / r, d);
                let ga = angle_gradient(pi, pj, pk);
                let gt = dihedral([pi, pj, pk, pl]).gradient.unwrap_or([[0.0; 3]; 4]);
                let g = solve_transposed([gr, ga[0], gt[0]], get(res, i));
                // Atom j: ∂r/∂x_j = −∂r/∂x_i.
                let lin = |c: [f64; 3], vs: [Vec3; 3]| -> Vec3 {
                    [0, 1, 2].map(|m| c[0] * vs[0][m] + c[1] * vs[1][m] + c[2] * vs[2][m])
                };
                sub_from(res, j, lin(g, [scale(-1.0, gr), ga[1], gt[1]]));
                sub_from(res, k, lin(g, [[0.0; 3], ga[2], gt[2]]));
                // The pole point of the root triangle is k + ẑ: its adjoint goes to k.
                sub_from(res, l.unwrap_or(k), scale(g[2], gt[3]));
                g
            };
        for (m, &[i, j, k, l]) in self.z.rows().iter().enumerate().rev() {
            let g = place_row(res, i, j, k, Some(l), point(x, l));
            grad_q[9 + 3 * m..12 + 3 * m].copy_from_slice(&g);
        }
        let [a0, a1, a2] = self.z.roots();
        let (j, k) = self.root_partner();
        let g = place_row(res, a2, j, k, None, add_scaled(point(x, k), 1.0, POLE));
        grad_q[6..9].copy_from_slice(&g);
        // a1 in spherical coordinates (r, θ, φ) about a0.
        let d = sub(point(x, a1), point(x, a0));
        let r2 = dot(d, d);
        let r = r2.sqrt();
        let rho2 = d[0] * d[0] + d[1] * d[1];
        let rho = rho2.sqrt();
        let g_r = scale(1.0 / r, d);
        let g_theta = [
            d[2] * d[0] / (r2 * rho),
            d[2] * d[1] / (r2 * rho),
            -rho / r2,
        ];
        let g_phi = [-d[1] / rho2, d[0] / rho2, 0.0];
        let r1 = get(res, a1);
        let g = solve_transposed([g_r, g_theta, g_phi], r1);
        grad_q[3..6].copy_from_slice(&g);
        // ∂(r, θ, φ)/∂x₀ = −∂/∂x₁: the root position takes a1's residual too.
        for c in 0..3 {
            grad_q[c] = res[3 * a0 + c] + r1[c];
        }
    }

    /// ∂ log|det ∂x/∂q| / ∂q of internal coordinates `q` `[3·n_atoms]`, written to `grad`:
    /// 2/r for every bond and cot θ for every angle (including the root bond's polar angle).
    pub fn log_det_gradient(&self, q: &[f64], grad: &mut [f64]) {
        grad[..self.dim()].fill(0.0);
        let mut bond_angle = |c: usize| {
            grad[c] = 2.0 / q[c];
            grad[c + 1] = 1.0 / q[c + 1].tan();
        };
        bond_angle(3);
        bond_angle(6);
        for m in 0..self.z.rows().len() {
            bond_angle(9 + 3 * m);
        }
    }
}

/// g with Jᵀ g = v, where the rows of `j` are the gradients of three coordinates with respect to
/// one point (Cramer's rule; the 3 × 3 is the Jacobian of spherical-like coordinates, regular
/// away from collinear atoms).
fn solve_transposed(j: [Vec3; 3], v: Vec3) -> Vec3 {
    // Jᵀ has the gradients as columns: Jᵀ g = Σ_c g_c j[c] = v.
    let det = dot(j[0], cross(j[1], j[2]));
    [
        dot(v, cross(j[1], j[2])) / det,
        dot(j[0], cross(v, j[2])) / det,
        dot(j[0], cross(j[1], v)) / det,
    ]
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
