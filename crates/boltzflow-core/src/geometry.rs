//! 3D vector helpers and internal-coordinate geometry (bond length, angle, dihedral) with
//! gradients, shared by the force field and the internal-coordinate transforms.
//!
//! Conventions: the angle i–j–k has its vertex at j; the dihedral is IUPAC's, φ ∈ (−π, π],
//! trans = π, with b₁ = x₂ − x₁, b₂ = x₃ − x₂, b₃ = x₄ − x₃ and
//! φ = atan2(|b₂| b₁·(b₂×b₃), (b₁×b₂)·(b₂×b₃)) (Blondel & Karplus, J. Comput. Chem. 17, 1132
//! (1996)); OpenMM and MDTraj use the same sign.

/// A point or vector in 3D.
pub type Vec3 = [f64; 3];

/// The `i`-th point of a flat `[x₀, y₀, z₀, x₁, …]` array.
#[inline]
pub fn point(x: &[f64], i: usize) -> Vec3 {
    [x[3 * i], x[3 * i + 1], x[3 * i + 2]]
}

/// a − b.
#[inline]
pub fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// a + s·b.
#[inline]
pub fn add_scaled(a: Vec3, s: f64, b: Vec3) -> Vec3 {
    [a[0] + s * b[0], a[1] + s * b[1], a[2] + s * b[2]]
}

/// s·a.
#[inline]
pub fn scale(s: f64, a: Vec3) -> Vec3 {
    [s * a[0], s * a[1], s * a[2]]
}

/// a · b.
#[inline]
pub fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// a × b.
#[inline]
pub fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// |a|.
#[inline]
pub fn norm(a: Vec3) -> f64 {
    dot(a, a).sqrt()
}

/// Adds s·v to point `i` of a flat array.
#[inline]
pub fn add_to_point(f: &mut [f64], i: usize, s: f64, v: Vec3) {
    f[3 * i] += s * v[0];
    f[3 * i + 1] += s * v[1];
    f[3 * i + 2] += s * v[2];
}

/// The angle at `b` between `a − b` and `c − b`, in [0, π] (atan2 form: accurate near 0 and π).
#[inline]
pub fn angle(a: Vec3, b: Vec3, c: Vec3) -> f64 {
    let (u, v) = (sub(a, b), sub(c, b));
    norm(cross(u, v)).atan2(dot(u, v))
}

/// ∂θ/∂a, ∂θ/∂b, ∂θ/∂c of the angle θ at `b` (see [`angle`]); zero where the points are
/// collinear (θ is not differentiable there).
#[inline]
pub fn angle_gradient(a: Vec3, b: Vec3, c: Vec3) -> [Vec3; 3] {
    let (u, v) = (sub(a, b), sub(c, b));
    let n = cross(u, v);
    let nn = norm(n);
    if nn == 0.0 {
        return [[0.0; 3]; 3];
    }
    // ∂θ/∂u = (u × n)/(|u|²|n|), ∂θ/∂v = −(v × n)/(|v|²|n|).
    let gu = scale(1.0 / (dot(u, u) * nn), cross(u, n));
    let gv = scale(-1.0 / (dot(v, v) * nn), cross(v, n));
    let gb = [0, 1, 2].map(|k| -gu[k] - gv[k]);
    [gu, gb, gv]
}

/// cos φ and sin φ of the dihedral of four points, and the vectors the gradient needs. For
/// collinear points φ is undefined and taken as 0 (cos 1, sin 0) with no gradient.
#[derive(Debug, Clone, Copy)]
pub struct Dihedral {
    /// cos φ.
    pub cos: f64,
    /// sin φ.
    pub sin: f64,
    /// ∂φ/∂xᵢ for the four points, `None` when φ is undefined.
    pub gradient: Option<[Vec3; 4]>,
}

impl Dihedral {
    /// φ ∈ (−π, π].
    pub fn angle(&self) -> f64 {
        self.sin.atan2(self.cos)
    }
}

/// The dihedral of four points with its gradient (Blondel & Karplus 1996):
/// ∂φ/∂x₁ = −|b₂| m/|m|², ∂φ/∂x₄ = |b₂| n/|n|² with m = b₁×b₂, n = b₂×b₃, and the middle two
/// from translation and rotation invariance.
#[inline]
pub fn dihedral(p: [Vec3; 4]) -> Dihedral {
    let b1 = sub(p[1], p[0]);
    let b2 = sub(p[2], p[1]);
    let b3 = sub(p[3], p[2]);
    let m = cross(b1, b2);
    let n = cross(b2, b3);
    let b2n = norm(b2);
    let (mm, nn) = (dot(m, m), dot(n, n));
    let denom = (mm * nn).sqrt();
    if denom == 0.0 || b2n == 0.0 {
        return Dihedral {
            cos: 1.0,
            sin: 0.0,
            gradient: None,
        };
    }
    let cos = dot(m, n) / denom;
    let sin = b2n * dot(b1, n) / denom;
    let g1 = scale(-b2n / mm, m);
    let g4 = scale(b2n / nn, n);
    let (p1, p3) = (dot(b1, b2) / (b2n * b2n), dot(b3, b2) / (b2n * b2n));
    let g2 = [0, 1, 2].map(|c| (-p1 - 1.0) * g1[c] + p3 * g4[c]);
    let g3 = [0, 1, 2].map(|c| (-p3 - 1.0) * g4[c] + p1 * g1[c]);
    Dihedral {
        cos,
        sin,
        gradient: Some([g1, g2, g3, g4]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dihedral_values_and_gradient_match_finite_differences() {
        // trans and cis butane-like chains, and +90°.
        let trans = [
            [1.0, 1.0, 0.0],
            [0.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
            [0.0, -1.0, 0.0],
        ];
        let cis = [
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
            [1.0, 1.0, 0.0],
        ];
        let plus90 = [
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
            [1.0, 0.0, 1.0],
        ];
        assert!((dihedral(trans).angle().abs() - std::f64::consts::PI).abs() < 1e-12);
        assert!(dihedral(cis).angle().abs() < 1e-12);
        // IUPAC sign: looking along b₂, clockwise rotation of the far bond is positive.
        assert!((dihedral(plus90).angle() - std::f64::consts::FRAC_PI_2).abs() < 1e-12);
        let p = [
            [0.3, -1.1, 0.2],
            [0.0, 0.1, -0.4],
            [1.2, 0.3, 0.1],
            [1.5, 1.4, 0.9],
        ];
        let g = dihedral(p).gradient.unwrap();
        let h = 1e-6;
        for a in 0..4 {
            for c in 0..3 {
                let (mut q, mut r) = (p, p);
                q[a][c] += h;
                r[a][c] -= h;
                let fd = (dihedral(q).angle() - dihedral(r).angle()) / (2.0 * h);
                assert!(
                    (g[a][c] - fd).abs() < 1e-8,
                    "atom {a} coord {c}: {} vs {fd}",
                    g[a][c]
                );
            }
        }
        let collinear = [[0.0; 3], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [3.0, 1.0, 0.0]];
        assert!(dihedral(collinear).gradient.is_none());
        assert!(
            (angle([1.0, 0.0, 0.0], [0.0; 3], [0.0, 2.0, 0.0]) - std::f64::consts::FRAC_PI_2).abs()
                < 1e-15
        );
    }

    #[test]
    fn angle_gradient_matches_finite_differences() {
        let p = [[0.3, -1.1, 0.2], [0.0, 0.1, -0.4], [1.2, 0.3, 0.1]];
        let g = angle_gradient(p[0], p[1], p[2]);
        let h = 1e-6;
        for a in 0..3 {
            for c in 0..3 {
                let (mut q, mut r) = (p, p);
                q[a][c] += h;
                r[a][c] -= h;
                let fd = (angle(q[0], q[1], q[2]) - angle(r[0], r[1], r[2])) / (2.0 * h);
                assert!(
                    (g[a][c] - fd).abs() < 1e-8,
                    "point {a} coord {c}: {} vs {fd}",
                    g[a][c]
                );
            }
        }
    }
}
