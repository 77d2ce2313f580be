//! Every reference system against its definition: finite-difference forces, batch consistency,
//! net force, normalisation by quadrature, quadrature against closed forms, and exact samplers.

use boltzflow_core::{Energy, RandomStreams};
use boltzflow_systems::quadrature::GridQuadrature;
use boltzflow_systems::{DimerBath, System, build, catalog};
use ndarray::{Array2, Axis, array};
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};

/// Test points for a system: uniform in its reference box, or the perturbed initial
/// configuration for particle systems.
fn test_points(s: &dyn System, n: usize) -> Array2<f64> {
    let mut rng = RandomStreams::new(11).stream(&s.spec());
    let mut x = Array2::zeros((n, s.dim()));
    let x0 = s.initial_configuration();
    for mut row in x.outer_iter_mut() {
        match s.reference_box() {
            // Stay where the energy is moderate: the middle half of the box.
            Some(b) => row.iter_mut().zip(&b).for_each(|(v, [lo, hi])| {
                let (c, w) = (0.5 * (lo + hi), 0.5 * (hi - lo));
                *v = c + w * (rng.random::<f64>() - 0.5);
            }),
            None => row.iter_mut().zip(x0.iter()).for_each(|(v, c)| {
                let z: f64 = StandardNormal.sample(&mut rng);
                *v = c + 0.05 * z;
            }),
        }
    }
    x
}

#[test]
fn forces_equal_central_finite_differences_for_every_system() {
    // `openmm:` needs a file; it is tested in openmm_ala2.rs.
    for info in catalog().iter().filter(|i| i.name != "openmm") {
        let s = build(info.name).unwrap();
        let x = test_points(s.as_ref(), 8);
        let (e, f) = s.energy_and_forces(x.view()).unwrap();
        for (r, row) in x.outer_iter().enumerate() {
            let h = 1e-6;
            for c in 0..s.dim() {
                let mut xp = row.to_owned().insert_axis(Axis(0));
                let mut xm = xp.clone();
                xp[[0, c]] += h;
                xm[[0, c]] -= h;
                let fd = -(s.energy(xp.view()).unwrap()[0] - s.energy(xm.view()).unwrap()[0])
                    / (2.0 * h);
                let scale = 1.0 + f[[r, c]].abs() + e[r].abs() * 1e-3;
                assert!(
                    (fd - f[[r, c]]).abs() < 1e-5 * scale,
                    "{}: row {r} coordinate {c}: analytic {} vs finite difference {fd}",
                    info.name,
                    f[[r, c]]
                );
            }
        }
    }
}

#[test]
fn batched_parallel_evaluation_equals_row_by_row() {
    // `openmm:` needs a file; it is tested in openmm_ala2.rs.
    for info in catalog().iter().filter(|i| i.name != "openmm") {
        let s = build(info.name).unwrap();
        let x = test_points(s.as_ref(), 1500); // > one parallel block
        let e = s.energy(x.view()).unwrap();
        let (e2, f) = s.energy_and_forces(x.view()).unwrap();
        for r in [0, 511, 512, 1024, 1499] {
            let single = x.row(r).to_owned().insert_axis(Axis(0));
            let (e1, f1) = s.energy_and_forces(single.view()).unwrap();
            assert_eq!(e[r], e1[0], "{}", info.name);
            assert_eq!(e2[r], e1[0], "{}", info.name);
            assert_eq!(f.row(r), f1.row(0), "{}", info.name);
        }
        // Non-contiguous input (a column-major copy) gives the same numbers.
        let xt = x.t().to_owned();
        assert_eq!(s.energy(xt.t()).unwrap(), e, "{}", info.name);
    }
}

#[test]
fn wrong_widths_are_shape_errors() {
    let s = build("mueller").unwrap();
    let err = s
        .energy(Array2::zeros((3, 4)).view())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("expected [n, 2]") && err.contains("[3, 4]"),
        "{err}"
    );
}

#[test]
fn dimer_net_force_is_that_of_the_external_restraint() {
    // Inside the walls, repulsion and the dimer's double well are pair forces (net zero); only the
    // restraint 20[(x₁ₓ+x₂ₓ)² + x₁ᵧ² + x₂ᵧ²] acts on the whole.
    let s = DimerBath::default();
    let mut rng = RandomStreams::new(3).stream("net-force");
    let x0 = s.lattice_configuration(1.5) * 0.9; // every coordinate inside the walls
    let x = Array2::from_shape_fn((4, s.dim()), |(_, c)| {
        let z: f64 = StandardNormal.sample(&mut rng);
        x0[c] + 0.02 * z
    });
    let (_, f) = s.energy_and_forces(x.view()).unwrap();
    for (row, fr) in x.outer_iter().zip(f.outer_iter()) {
        let fx: f64 = fr.iter().step_by(2).sum();
        let fy: f64 = fr.iter().skip(1).step_by(2).sum();
        let ex = -2.0 * 20.0 * (row[0] + row[2]) * 2.0;
        let ey = -2.0 * 20.0 * (row[1] + row[3]);
        assert!(
            (fx - ex).abs() < 1e-9 * (1.0 + fr.iter().map(|v| v.abs()).sum::<f64>()),
            "{fx} vs {ex}"
        );
        assert!(
            (fy - ey).abs() < 1e-9 * (1.0 + fr.iter().map(|v| v.abs()).sum::<f64>()),
            "{fy} vs {ey}"
        );
    }
}

fn quadrature(spec: &str, n: usize) -> GridQuadrature {
    let s = build(spec).unwrap();
    let b = s.reference_box().unwrap();
    GridQuadrature::new(s.as_ref(), [b[0], b[1]], [n, n], 1.0).unwrap()
}

#[test]
fn monroe_shen_densities_integrate_to_one() {
    for name in [
        "gaussian2d",
        "bimodal2d",
        "corr-bimodal2d",
        "beltway",
        "beltway-polar",
    ] {
        let q = quadrature(name, 2048);
        assert_eq!(build(name).unwrap().exact_ln_z(), Some(0.0));
        assert!(q.ln_z().abs() < 1e-8, "{name}: ln Z = {}", q.ln_z());
    }
}

#[test]
fn quadrature_equals_closed_forms() {
    // Φ via erfc.
    let phi = |z: f64| 0.5 * libm::erfc(-z / std::f64::consts::SQRT_2);
    let q = quadrature("gaussian2d", 1024);
    // x₁ − x₂ ~ N(0, 2).
    let p = q.threshold_probability([1.0, -1.0], 1.0);
    assert!((p - (1.0 - phi(1.0 / 2f64.sqrt()))).abs() < 1e-4, "{p}");
    let (m, c) = q.mean_and_covariance();
    assert!(
        (m[0] + 3.0).abs() < 1e-9 && (m[1] + 3.0).abs() < 1e-9,
        "{m:?}"
    );
    assert!(
        (c[0][0] - 1.0).abs() < 1e-4 && c[0][1].abs() < 1e-9,
        "{c:?}"
    );
    // Profile along (0.7, −0.7): s ~ N(0, 0.98), F(s) = s²/(2·0.98) + ½ ln(2π·0.98).
    let edges: Vec<f64> = (0..=40).map(|i| -2.0 + 0.1 * i as f64).collect();
    let prof = q.profile([0.7, -0.7], &edges).unwrap();
    for (s, (f, pr)) in prof
        .centres()
        .iter()
        .zip(prof.free_energy.iter().zip(&prof.probabilities))
    {
        let sd = 0.98f64.sqrt();
        let exact_p = phi((s + 0.05) / sd) - phi((s - 0.05) / sd);
        assert!((pr - exact_p).abs() < 2e-4, "s = {s}: {pr} vs {exact_p}");
        assert!((f + (exact_p / 0.1).ln()).abs() < 5e-3, "s = {s}: {f}");
    }
    // bimodal2d: P(x₁ > 0) = 0.6 Φ(−3) + 0.4 Φ(3).
    let q = quadrature("bimodal2d", 1024);
    let exact = 0.6 * phi(-3.0) + 0.4 * phi(3.0);
    assert!((q.threshold_probability([1.0, 0.0], 0.0) - exact).abs() < 1e-6);
    // corr-bimodal2d: P(x₂ > 0 | x₁ > 0) = Φ(3).
    let q = quadrature("corr-bimodal2d", 1024);
    let both = q.probability_where(|x| x[0] > 0.0 && x[1] > 0.0);
    assert!((both / q.threshold_probability([1.0, 0.0], 0.0) - phi(3.0)).abs() < 1e-6);
}

#[test]
fn a_minimum_on_a_grid_corner_is_one_basin() {
    // gaussian2d's minimum (−3, −3) lies on the corner of four cells of this grid.
    let q = quadrature("gaussian2d", 1000);
    let b = q.basins();
    assert_eq!(
        b.significant(1e-12).len(),
        1,
        "{:?} {:?}",
        b.minima,
        b.probabilities
    );
}

#[test]
fn mueller_has_three_basins_at_the_known_minima() {
    let q = quadrature("mueller", 1024);
    let basins = q.basins();
    let big = basins.significant(1e-6);
    assert_eq!(
        big.len(),
        3,
        "{:?} {:?}",
        basins.minima,
        basins.probabilities
    );
    let known = [[-0.558, 1.442], [0.623, 0.028], [-0.050, 0.467]];
    for (b, k) in big.iter().zip(known) {
        let m = basins.minima[*b];
        assert!(
            (m[0] - k[0]).abs() < 0.01 && (m[1] - k[1]).abs() < 0.01,
            "{m:?} vs {k:?}"
        );
    }
    let total: f64 = basins.probabilities.iter().sum();
    assert!((total - 1.0).abs() < 1e-12);
    // Assignment of the minima themselves.
    let a = basins.assign(array![[-0.558, 1.442], [0.623, 0.028], [9.0, 9.0]].view());
    assert_eq!(a, vec![Some(big[0]), Some(big[1]), None]);
    // The grid is converged: a finer grid moves the populations by < 1e-4.
    let fine = quadrature("mueller", 2048).basins();
    for (b, pf) in big.iter().zip(fine.significant(1e-6)) {
        assert!((basins.probabilities[*b] - fine.probabilities[pf]).abs() < 1e-4);
    }
}

/// A named region of the plane.
type Region = Box<dyn Fn([f64; 2]) -> bool>;

#[test]
fn exact_samplers_reproduce_their_densities() {
    let n = 200_000;
    let mut rng = RandomStreams::new(5).stream("exact");
    for name in [
        "gaussian2d",
        "bimodal2d",
        "corr-bimodal2d",
        "beltway",
        "beltway-polar",
    ] {
        let s = build(name).unwrap();
        let x = s.exact_sampler().unwrap().sample(n, &mut rng).unwrap();
        let q = quadrature(name, 1024);
        // Probabilities of a few regions, within 4 standard errors of the quadrature values.
        let regions: [(&str, Region); 3] = [
            ("x1 > 0", Box::new(|p: [f64; 2]| p[0] > 0.0)),
            ("x2 > 0.5", Box::new(|p: [f64; 2]| p[1] > 0.5)),
            ("x1 + x2 < -1", Box::new(|p: [f64; 2]| p[0] + p[1] < -1.0)),
        ];
        for (what, inside) in regions {
            let exact = q.probability_where(&inside);
            let hits = x.outer_iter().filter(|r| inside([r[0], r[1]])).count() as f64 / n as f64;
            let se = (exact * (1.0 - exact) / n as f64).sqrt().max(1e-6);
            assert!(
                (hits - exact).abs() < 4.0 * se,
                "{name} {what}: sampled {hits} vs exact {exact} (se {se})"
            );
        }
    }
}
