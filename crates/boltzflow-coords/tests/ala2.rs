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

/// ∂E/∂q by the back-substitution equals central differences of E(x(q)) in q, for the force
/// field's energy, on every internal coordinate; and ∂ log|det ∂x/∂q|/∂q likewise.
#[test]
fn pullback_of_forces_and_log_det_gradient_equal_finite_differences() {
    use boltzflow_core::Energy;
    let ic = ala2_ic();
    let ff = ForceField::from_file(&root().join("data/ala2/ala2_system.xml")).unwrap();
    let x = positions();
    let (q, _) = ic.forward(x.slice(s![..3, ..])).unwrap();
    let dim = ic.dim();
    let mut worst = (0.0f64, 0.0f64);
    for row in q.outer_iter() {
        let q0 = row.to_owned();
        let (x0, _) = ic.inverse(q0.view().insert_axis(ndarray::Axis(0))).unwrap();
        let (_, f) = ff.energy_and_forces(x0.view()).unwrap();
        let grad_x: Vec<f64> = f.iter().map(|v| -v).collect();
        let mut grad_q = vec![0.0; dim];
        let mut scratch = vec![0.0; dim];
        ic.pullback(x0.as_slice().unwrap(), &grad_x, &mut grad_q, &mut scratch);
        let mut ld_grad = vec![0.0; dim];
        ic.log_det_gradient(q0.as_slice().unwrap(), &mut ld_grad);
        let h = 1e-6;
        let mut qs = Array2::zeros((2 * dim, dim));
        for c in 0..dim {
            qs.row_mut(2 * c).assign(&q0);
            qs.row_mut(2 * c + 1).assign(&q0);
            qs[[2 * c, c]] += h;
            qs[[2 * c + 1, c]] -= h;
        }
        let (xs, lds) = ic.inverse(qs.view()).unwrap();
        let e = ff.energy(xs.view()).unwrap();
        for c in 0..dim {
            let fd = (e[2 * c] - e[2 * c + 1]) / (2.0 * h);
            let err = (grad_q[c] - fd).abs();
            assert!(
                err < 1e-3 + 1e-6 * fd.abs(),
                "coordinate {c}: {} vs {fd}",
                grad_q[c]
            );
            worst.0 = worst.0.max(err / (1.0 + fd.abs()));
            let fd_ld = (lds[2 * c] - lds[2 * c + 1]) / (2.0 * h);
            assert!(
                (ld_grad[c] - fd_ld).abs() < 1e-6 * (1.0 + fd_ld.abs()),
                "log-det {c}"
            );
            worst.1 = worst.1.max((ld_grad[c] - fd_ld).abs());
        }
    }
    eprintln!(
        "pullback vs finite differences: {:.2e} (relative), log-det gradient {:.2e}",
        worst.0, worst.1
    );
}

fn ala2_layer() -> (boltzflow_coords::InternalLayer, Array2<f64>) {
    let x = positions();
    (
        boltzflow_coords::InternalLayer::fit(ala2_ic(), x.view()).unwrap(),
        x,
    )
}

/// The layer: 60 coordinates, standardised bonds and angles, a round trip through the canonical
/// frame that keeps every internal coordinate (and so every energy), log-dets that negate, and
/// log|det ∂x/∂y| equal to the brute-force determinant of the full map at the canonical frame.
#[test]
fn internal_layer_round_trips_and_its_log_det_is_the_internal_block() {
    use boltzflow_core::Energy;
    let (layer, x) = ala2_layer();
    assert_eq!(layer.dim(), 60);
    // Torsions: the relative ones (i–j–k–s with s a sibling of i on j: the methyl hydrogens'
    // ±120° offsets, the carbonyl O's 180°) are rigid and standardised; the methyl rotations
    // and the backbone (φ, ψ type) torsions are free.
    let rows = layer.internal_coordinates().zmatrix().rows().to_vec();
    let ff = ForceField::from_file(&root().join("data/ala2/ala2_system.xml")).unwrap();
    let bonded = |a: usize, b: usize| {
        ff.bonds()
            .iter()
            .any(|&[p, q]| (p, q) == (a, b) || (p, q) == (b, a))
    };
    let mut free = 0;
    for (m, &[i, j, k, l]) in rows.iter().enumerate() {
        let periodic = layer.periodic()[5 + 3 * m];
        free += usize::from(periodic);
        if bonded(l, j) && l != k {
            assert!(
                !periodic,
                "relative torsion {i}-{j}-{k}-{l} should be rigid"
            );
            assert!(
                layer.scale()[5 + 3 * m] < 0.3,
                "{}",
                layer.scale()[5 + 3 * m]
            );
        }
    }
    assert_eq!(layer.periods().iter().filter(|p| p.is_some()).count(), free);
    assert!((3..=8).contains(&free), "{free} free torsions");
    let methyl_h = rows
        .iter()
        .filter(|&&[i, j, k, l]| bonded(l, j) && l != k && ff.masses()[i] < 1.5)
        .count();
    assert!(methyl_h >= 6, "{methyl_h} relative hydrogen torsions");
    let (y, ld_in) = layer.to_internal(x.view()).unwrap();
    for (k, kind) in layer.kinds().iter().enumerate() {
        if *kind != IcKind::Torsion {
            let col = y.column(k);
            assert!(col.mean().unwrap().abs() < 1e-10 && (col.std(1.0) - 1.0).abs() < 1e-10);
        }
    }
    let (xc, ld_out) = layer.to_cartesian(y.view()).unwrap();
    let (y2, _) = layer.to_internal(xc.view()).unwrap();
    let dy = (&y2 - &y).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(dy < 1e-8, "{dy}");
    for (a, b) in ld_in.iter().zip(&ld_out) {
        assert!((a + b).abs() < 1e-9, "{a} {b}");
    }
    // Rigid motions only: the force field gives the same energies.
    let (e0, e1) = (ff.energy(x.view()).unwrap(), ff.energy(xc.view()).unwrap());
    for (a, b) in e0.iter().zip(&e1) {
        assert!((a - b).abs() < 1e-8 * (1.0 + a.abs()), "{a} {b}");
    }
    // Brute force: the 66 × 66 Jacobian of x in (y, external) at the canonical frame.
    let ic = layer.internal_coordinates();
    let (q, _) = ic.forward(xc.slice(s![0..1, ..])).unwrap();
    let d = ic.dim();
    let h = 1e-6;
    let mut qs = Array2::zeros((2 * d, d));
    for c in 0..d {
        qs.row_mut(2 * c).assign(&q.row(0));
        qs.row_mut(2 * c + 1).assign(&q.row(0));
        qs[[2 * c, c]] += h;
        qs[[2 * c + 1, c]] -= h;
    }
    let (xs, _) = ic.inverse(qs.view()).unwrap();
    let jac = faer::Mat::from_fn(d, d, |r, c| {
        (xs[[2 * c, r]] - xs[[2 * c + 1, r]]) / (2.0 * h)
    });
    let brute = jac.determinant().abs().ln() + layer.scale().iter().map(|s| s.ln()).sum::<f64>();
    assert!((brute - ld_out[0]).abs() < 1e-6, "{brute} vs {}", ld_out[0]);
}

/// The energy of y and its forces: u = E(x(y)) − log|det ∂x/∂y|, forces equal to central
/// differences of u in every coordinate of y.
#[test]
fn internal_energy_forces_are_minus_its_gradient() {
    use boltzflow_core::Energy;
    let (layer, x) = ala2_layer();
    let ff = ForceField::from_file(&root().join("data/ala2/ala2_system.xml")).unwrap();
    let u = boltzflow_coords::InternalEnergy {
        inner: &ff,
        layer: &layer,
    };
    assert_eq!(u.dim(), 60);
    let (y, _) = layer.to_internal(x.slice(s![..4, ..])).unwrap();
    let (e, f) = u.energy_and_forces(y.view()).unwrap();
    let (xc, ld) = layer.to_cartesian(y.view()).unwrap();
    let ex = ff.energy(xc.view()).unwrap();
    for r in 0..4 {
        assert!((e[r] - (ex[r] - ld[r])).abs() < 1e-9);
    }
    let h = 1e-6;
    let mut worst = 0.0f64;
    for r in 0..4 {
        let mut ys = Array2::zeros((120, 60));
        for c in 0..60 {
            ys.row_mut(2 * c).assign(&y.row(r));
            ys.row_mut(2 * c + 1).assign(&y.row(r));
            ys[[2 * c, c]] += h;
            ys[[2 * c + 1, c]] -= h;
        }
        let es = u.energy(ys.view()).unwrap();
        for c in 0..60 {
            let fd = -(es[2 * c] - es[2 * c + 1]) / (2.0 * h);
            let err = (f[[r, c]] - fd).abs();
            assert!(
                err < 1e-3 + 1e-6 * fd.abs(),
                "row {r} coordinate {c}: {} vs {fd}",
                f[[r, c]]
            );
            worst = worst.max(err / (1.0 + fd.abs()));
        }
    }
    eprintln!("internal energy forces vs finite differences: {worst:.2e} (relative)");
}

/// Outside the domain (a bond ≤ 0, an angle beyond π) the energy is the wall E₀ exp(Σ |v|/scale),
/// never NaN, with forces pointing back into the domain that equal finite differences.
#[test]
fn outside_the_domain_the_internal_energy_is_a_wall_with_exact_forces() {
    use boltzflow_coords::layer::OUTSIDE_ENERGY;
    use boltzflow_core::Energy;
    let (layer, x) = ala2_layer();
    let ff = ForceField::from_file(&root().join("data/ala2/ala2_system.xml")).unwrap();
    let u = boltzflow_coords::InternalEnergy {
        inner: &ff,
        layer: &layer,
    };
    let (mut y, _) = layer.to_internal(x.slice(s![..2, ..])).unwrap();
    // Row 0: the first Z-matrix row's angle beyond π by 0.3 rad; row 1: its bond at −0.01 nm.
    let (bond, angle) = (3, 4);
    y[[0, angle]] = (std::f64::consts::PI + 0.3 - layer.shift()[angle]) / layer.scale()[angle];
    y[[1, bond]] = (-0.01 - layer.shift()[bond]) / layer.scale()[bond];
    assert!(!layer.in_domain(y.row(0)) && !layer.in_domain(y.row(1)));
    let (e, f) = u.energy_and_forces(y.view()).unwrap();
    let t0 = 0.3 / layer.scale()[angle];
    let t1 = -0.01 / layer.scale()[bond];
    assert!((e[0] / (OUTSIDE_ENERGY * t0.abs().exp()) - 1.0).abs() < 1e-12);
    assert!((e[1] / (OUTSIDE_ENERGY * t1.abs().exp()) - 1.0).abs() < 1e-12);
    // Back into the domain: the angle down, the bond up.
    assert!(f[[0, angle]] < 0.0 && f[[1, bond]] > 0.0);
    let h = 1e-5;
    for (r, c) in [(0, angle), (1, bond), (0, 10)] {
        let mut ys = Array2::zeros((2, 60));
        ys.row_mut(0).assign(&y.row(r));
        ys.row_mut(1).assign(&y.row(r));
        ys[[0, c]] += h;
        ys[[1, c]] -= h;
        let es = u.energy(ys.view()).unwrap();
        let fd = -(es[0] - es[1]) / (2.0 * h);
        assert!(
            (f[[r, c]] - fd).abs() < 1e-6 * (1.0 + fd.abs()),
            "{} vs {fd}",
            f[[r, c]]
        );
    }
    // Far outside, the wall is linear and finite.
    let mut far = y.row(0).to_owned().insert_axis(ndarray::Axis(0));
    far[[0, angle]] = 1e6;
    let (e, f) = u.energy_and_forces(far.view()).unwrap();
    assert!(e[0].is_finite() && f.iter().all(|v| v.is_finite()) && f[[0, angle]] < 0.0);
}

/// Alanine's α carbon is the one chiral centre; mirror images flip it, rigid motions and MD
/// frames keep it.
#[test]
fn chirality_of_the_alpha_carbon_flips_under_a_mirror_only() {
    use boltzflow_coords::features::{chiral_centers, same_chirality};
    let pdb = boltzflow_io::pdb::read_pdb(&root().join("data/ala2/ala2.pdb")).unwrap();
    let centers = chiral_centers(&pdb.topology);
    assert_eq!(centers.len(), 1);
    let reference = pdb.positions.as_slice().unwrap();
    let x = positions();
    assert!(
        same_chirality(x.view(), reference, &centers)
            .iter()
            .all(|s| *s)
    );
    let mirror = ndarray::Array1::from_shape_fn(66, |c| if c % 3 == 0 { -1.0 } else { 1.0 });
    let mirrored = &x * &mirror;
    assert!(
        same_chirality(mirrored.view(), reference, &centers)
            .iter()
            .all(|s| !*s)
    );
}

/// A layer from one structure (training without data): the reference maps to y = 0 in every
/// bond, angle and relative torsion, the free torsions are exactly those that are not relative
/// (the backbone, the two peptide bonds and one hydrogen per methyl: 7), and the scales are
/// the widths.
#[test]
fn a_layer_from_one_reference_structure_centres_it() {
    use boltzflow_coords::{InternalLayer, ReferenceWidths};
    let x = positions();
    let widths = ReferenceWidths::default();
    let layer = InternalLayer::from_reference(ala2_ic(), x.row(0), widths).unwrap();
    let free = layer.periodic().iter().filter(|p| **p).count();
    assert_eq!(free, 7);
    let (y, _) = layer.to_internal(x.slice(s![0..1, ..])).unwrap();
    for (k, kind) in layer.kinds().iter().enumerate() {
        if layer.periodic()[k] {
            assert_eq!(*kind, IcKind::Torsion);
            continue;
        }
        assert!(y[[0, k]].abs() < 1e-9, "{k}: {}", y[[0, k]]);
        let w = match kind {
            IcKind::Bond => widths.bond,
            IcKind::Angle => widths.angle,
            _ => widths.torsion,
        };
        assert_eq!(layer.scale()[k], w);
    }
    let bad = ReferenceWidths {
        bond: 0.0,
        ..widths
    };
    assert!(InternalLayer::from_reference(ala2_ic(), x.row(0), bad).is_err());
    assert!(InternalLayer::from_reference(ala2_ic(), x.slice(s![0, ..5]), widths).is_err());
}

#[test]
fn fixed_bonds_must_be_bonds_of_the_zmatrix() {
    use boltzflow_coords::{FixedBonds, InternalLayer};
    let ff = ForceField::from_file(&root().join("data/ala2/ala2_hbonds_system.xml")).unwrap();
    let x = positions();
    // Noisy copies of the reference: the layer needs spread in every free coordinate.
    let noisy = Array2::from_shape_fn((8, x.ncols()), |(r, c)| {
        x[[0, c]] + 1e-3 * ((r * 31 + c * 17) % 13) as f64 / 13.0
    });
    let layer = InternalLayer::fit_constrained(
        ala2_ic(),
        noisy.view(),
        Some(FixedBonds::new(ff.constraints(), ff.masses()).unwrap()),
    )
    .unwrap();
    assert_eq!(layer.dim(), 48);
    assert_eq!(layer.fixed_bonds().unwrap().len(), 12);
    // The methyl's three hydrogens constrained to each other: distances across angles.
    let (h1, h2) = (0, 2);
    let mut pairs = ff.constraints().to_vec();
    pairs.push((h1, h2, 0.178));
    let e = InternalLayer::fit_constrained(
        ala2_ic(),
        noisy.view(),
        Some(FixedBonds::new(&pairs, ff.masses()).unwrap()),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("constraint 12 between atoms 0 and 2 is not a bond"),
        "{e}"
    );
}
