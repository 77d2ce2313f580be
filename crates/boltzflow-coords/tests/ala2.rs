//! Internal coordinates, alignment, whitening and dihedral features on alanine dipeptide.

use std::path::{Path, PathBuf};

use boltzflow_coords::features::{backbone_torsions, dihedrals, sin_cos};
use boltzflow_coords::{IcKind, InternalCoordinates, Whitening, ZMatrix, align};
use boltzflow_systems::ForceField;
use ndarray::{Array2, s};
use ndarray_npy::ReadNpyExt;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn positions() -> Array2<f64> {
    Array2::read_npy(std::fs::File::open(root().join("data/ala2/positions_nm.npy")).unwrap())
        .unwrap()
}

fn ala2_ic() -> InternalCoordinates {
    let ff = ForceField::from_file(&root().join("data/ala2/ala2_system.xml")).unwrap();
    let heavy: Vec<bool> = ff.masses().iter().map(|&m| m > 1.5).collect();
    InternalCoordinates::new(ZMatrix::from_bonds(22, ff.bonds(), &heavy).unwrap())
}

#[test]
fn round_trip_to_1e10_nm_and_torsions_in_range() {
    let ic = ala2_ic();
    let x = positions();
    let (q, ld_fwd) = ic.forward(x.view()).unwrap();
    let (back, ld_inv) = ic.inverse(q.view()).unwrap();
    let err = (&back - &x).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    eprintln!("ala2 round trip: max |Δx| = {err:.2e} nm");
    assert!(err < 1e-10, "{err}");
    for (a, b) in ld_fwd.iter().zip(&ld_inv) {
        assert!((a + b).abs() < 1e-10, "{a} {b}");
    }
    let kinds = ic.kinds();
    assert_eq!(kinds.iter().filter(|k| **k == IcKind::Torsion).count(), 21);
    for row in q.outer_iter() {
        for (v, k) in row.iter().zip(&kinds) {
            match k {
                IcKind::Torsion => {
                    assert!(*v > -std::f64::consts::PI && *v <= std::f64::consts::PI)
                }
                IcKind::Angle => assert!(*v >= 0.0 && *v <= std::f64::consts::PI),
                IcKind::Bond => assert!(*v > 0.09 && *v < 0.17, "bond {v}"),
                IcKind::Position => {}
            }
        }
    }
    // And internal → Cartesian → internal.
    let (q2, _) = ic.forward(back.view()).unwrap();
    let dq = (&q2 - &q).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(dq < 1e-9, "{dq}");
}

/// log|det ∂x/∂q| against the determinant of a central-difference Jacobian (66 × 66).
#[test]
fn log_det_equals_a_brute_force_jacobian() {
    let ic = ala2_ic();
    let x = positions();
    let (q, _) = ic.forward(x.slice(s![0..3, ..])).unwrap();
    let h = 1e-6;
    for row in q.outer_iter() {
        let d = row.len();
        let mut qs = Array2::zeros((2 * d, d));
        for c in 0..d {
            qs.row_mut(2 * c).assign(&row);
            qs.row_mut(2 * c + 1).assign(&row);
            qs[[2 * c, c]] += h;
            qs[[2 * c + 1, c]] -= h;
        }
        let (xs, _) = ic.inverse(qs.view()).unwrap();
        let jac = faer::Mat::from_fn(d, d, |r, c| {
            (xs[[2 * c, r]] - xs[[2 * c + 1, r]]) / (2.0 * h)
        });
        let det = jac.determinant();
        let (_, ld) = ic.inverse(row.insert_axis(ndarray::Axis(0))).unwrap();
        eprintln!(
            "log|det J| analytic {:.10} vs finite differences {:.10}",
            ld[0],
            det.abs().ln()
        );
        assert!(
            (ld[0] - det.abs().ln()).abs() < 1e-6,
            "{} vs {}",
            ld[0],
            det.abs().ln()
        );
    }
}

#[test]
fn backbone_dihedrals_equal_openmm() {
    let pdb = boltzflow_io::pdb::read_pdb(&root().join("data/ala2/ala2.pdb")).unwrap();
    let torsions = backbone_torsions(&pdb.topology);
    let names: Vec<&str> = torsions.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["phi 2", "psi 2"]);
    assert_eq!(torsions[0].atoms, [4, 6, 8, 14]);
    assert_eq!(torsions[1].atoms, [6, 8, 14, 16]);
    let quads: Vec<[usize; 4]> = torsions.iter().map(|t| t.atoms).collect();
    let a = dihedrals(positions().view(), &quads).unwrap();
    let reference = Array2::<f64>::read_npy(
        std::fs::File::open(root().join("scripts/fixtures/ala2/phi_psi_openmm.npy")).unwrap(),
    )
    .unwrap();
    for (v, r) in a.iter().zip(reference.iter()) {
        // OpenMM reports θ on [−π, π]; compare on the circle.
        let d =
            (v - r + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU) - std::f64::consts::PI;
        assert!(d.abs() < 1e-10, "{v} vs {r}");
    }
    let sc = sin_cos(a.view());
    assert_eq!(sc.ncols(), 4);
    assert!((sc[[0, 0]] - a[[0, 0]].sin()).abs() < 1e-15);
    assert!((sc[[0, 1]] - a[[0, 0]].cos()).abs() < 1e-15);
}

/// A proper rotation about a random axis (Rodrigues), row-major.
fn rotation(axis: [f64; 3], angle: f64) -> [[f64; 3]; 3] {
    let n = (axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]).sqrt();
    let [x, y, z] = axis.map(|v| v / n);
    let (s, c) = angle.sin_cos();
    let t = 1.0 - c;
    [
        [t * x * x + c, t * x * y - s * z, t * x * z + s * y],
        [t * x * y + s * z, t * y * y + c, t * y * z - s * x],
        [t * x * z - s * y, t * y * z + s * x, t * z * z + c],
    ]
}

#[test]
fn kabsch_undoes_rigid_motions_and_whitening_drops_them() {
    let x = positions();
    let reference = x.row(0).to_owned();
    let mut moved = x.clone();
    for (i, mut row) in moved.outer_iter_mut().enumerate() {
        let r = rotation([1.0, 0.3 * i as f64, -0.5], 0.1 + 0.37 * i as f64);
        let shift = [0.5 * i as f64, -1.0, 0.25];
        for p in row.as_slice_mut().unwrap().chunks_exact_mut(3) {
            let q = [p[0], p[1], p[2]];
            for a in 0..3 {
                p[a] = r[a][0] * q[0] + r[a][1] * q[1] + r[a][2] * q[2] + shift[a];
            }
        }
    }
    let masses: Vec<f64> = ForceField::from_file(&root().join("data/ala2/ala2_system.xml"))
        .unwrap()
        .masses()
        .to_vec();
    let a = align(moved.view(), reference.view(), Some(&masses)).unwrap();
    let b = align(x.view(), reference.view(), Some(&masses)).unwrap();
    let err = (&a - &b).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(err < 1e-10, "{err}");
    // Row 0 aligned onto itself is unchanged.
    let d0 = (&b.row(0) - &reference)
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(d0 < 1e-12, "{d0}");

    // Whitening: unit covariance on the kept subspace, exact inverse there, and the rigid-body
    // modes (plus what 50 samples cannot span) dropped.
    let w = Whitening::fit(b.view(), 1e-10).unwrap();
    assert!(w.dim_out() <= 66 - 6, "{}", w.dim_out());
    let z = w.transform(b.view()).unwrap();
    let cov = z.t().dot(&z) / (z.nrows() - 1) as f64;
    for i in 0..cov.nrows() {
        for j in 0..cov.ncols() {
            let target = if i == j { 1.0 } else { 0.0 };
            assert!(
                (cov[[i, j]] - target).abs() < 1e-8,
                "cov[{i},{j}] = {}",
                cov[[i, j]]
            );
        }
    }
    let back = w.inverse(z.view()).unwrap();
    let err = (&back - &b).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(err < 1e-10, "{err}");
    let expected: f64 = -0.5 * w.variances.iter().map(|v| v.ln()).sum::<f64>();
    assert_eq!(w.log_det(), expected);
}
