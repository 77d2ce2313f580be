//! Alanine dipeptide with its bonds to hydrogen constrained (`data/ala2/ala2_hbonds_system.xml`,
//! OpenMM's `constraints=HBonds`): the System reads with its 12 constraints and energies equal
//! the unconstrained force field's less the constrained bonds; boltzflow's constrained BAOAB
//! (SHAKE/RATTLE, 2 fs) keeps the constraints and reproduces OpenMM's LangevinMiddleIntegrator
//! (`scripts/fixtures/ala2/openmm_constrained_reference.json`) in ⟨E⟩ and temperature; and the
//! samplers that cannot keep constraints refuse them.

use std::path::{Path, PathBuf};

use boltzflow_learn::run::{Sampler, SimulationSpec, simulate};
use boltzflow_systems::{ForceField, System};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn system() -> Box<dyn System> {
    boltzflow_systems::build_with_pdb(
        &format!(
            "openmm:{}",
            root().join("data/ala2/ala2_hbonds_system.xml").display()
        ),
        Some(&root().join("data/ala2/ala2.pdb")),
    )
    .unwrap()
}

#[test]
fn the_constrained_system_reads_its_constraints_and_keeps_the_other_energies() {
    let ff = ForceField::from_file(&root().join("data/ala2/ala2_hbonds_system.xml")).unwrap();
    let plain = ForceField::from_file(&root().join("data/ala2/ala2_system.xml")).unwrap();
    assert_eq!(ff.constraints().len(), 12);
    // Every constraint joins a hydrogen to its heavy atom, at the bond force's r₀ of the
    // unconstrained System; the bond graph is the same.
    for &(i, j, d) in ff.constraints() {
        let light = ff.masses()[i].min(ff.masses()[j]);
        assert!(light < 1.5, "constraint {i}-{j} is not to a hydrogen");
        assert!((d - 0.109).abs() < 0.01, "{d}");
    }
    assert_eq!(ff.bonds(), plain.bonds());
    // Group energies: angles, torsions and nonbonded equal; the bond group lacks the 12
    // constrained bonds, whose energy is ½k(r − r₀)² with r = r₀ on the constraint surface.
    let x = boltzflow_io::read_npy_2d(&root().join("data/ala2/positions_nm.npy")).unwrap();
    let (g, gp) = (
        ff.group_energies(x.view()).unwrap(),
        plain.group_energies(x.view()).unwrap(),
    );
    for r in 0..x.nrows() {
        for c in 1..4 {
            assert!((g[[r, c]] - gp[[r, c]]).abs() < 1e-9 * gp[[r, c]].abs().max(1.0));
        }
        assert!(g[[r, 0]] < gp[[r, 0]]);
    }
}

#[test]
fn constrained_langevin_keeps_the_constraints_and_matches_openmm() {
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            root().join("scripts/fixtures/ala2/openmm_constrained_reference.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let sys = system();
    let chains = 8;
    let spec = SimulationSpec::langevin(chains, 150_000, 25_000, 250, 11);
    let r = simulate(sys.as_ref(), &spec, true).unwrap();
    // 2 fs by default with constraints; no warning about the step size.
    assert!(
        r.warnings.iter().all(|w| !w.contains("step size")),
        "{:?}",
        r.warnings
    );
    let d = r.summary.dynamics.as_ref().unwrap();
    assert_eq!(d.degrees_of_freedom, 66 - 3 - 12);
    // Every saved frame is on the constraint surface.
    let ff = ForceField::from_file(&root().join("data/ala2/ala2_hbonds_system.xml")).unwrap();
    let mut worst = 0.0f64;
    for x in r.samples.outer_iter() {
        for &(i, j, dist) in ff.constraints() {
            let dd: f64 = (0..3)
                .map(|k| (x[3 * i + k] - x[3 * j + k]).powi(2))
                .sum::<f64>()
                .sqrt();
            worst = worst.max((dd - dist).abs() / dist);
        }
    }
    assert!(worst < 1e-9, "constraint violated by {worst}");
    // ⟨E⟩ per chain, compared with OpenMM within 3 combined standard errors.
    let per_chain: Vec<f64> = (0..chains)
        .map(|c| r.energies.column(c).mean().unwrap())
        .collect();
    let mean = per_chain.iter().sum::<f64>() / chains as f64;
    let se = (per_chain.iter().map(|e| (e - mean).powi(2)).sum::<f64>()
        / (chains as f64 - 1.0)
        / chains as f64)
        .sqrt();
    let (e_ref, e_se) = (
        reference["potential_energy_mean"].as_f64().unwrap(),
        reference["potential_energy_stderr_chains"]
            .as_f64()
            .unwrap(),
    );
    let z = (mean - e_ref) / (se * se + e_se * e_se).sqrt();
    println!("<E> {mean:.3} ± {se:.3} vs OpenMM {e_ref:.3} ± {e_se:.3} ({z:+.2} SE)");
    assert!(z.abs() < 3.0, "{z}");
    // The temperature of the 51 degrees of freedom: 300 K, and OpenMM's within 1 %.
    let t_ref = reference["temperature_mean"].as_f64().unwrap();
    println!("T {:.2} K vs OpenMM {t_ref:.2} K", d.temperature_mean);
    assert!(
        (d.temperature_mean - 300.0).abs() < 3.0,
        "{}",
        d.temperature_mean
    );
    assert!((d.temperature_mean / t_ref - 1.0).abs() < 0.01);
}

#[test]
fn samplers_that_cannot_keep_constraints_refuse_them() {
    let sys = system();
    for sampler in [Sampler::Metropolis, Sampler::Mala, Sampler::Overdamped] {
        let spec = SimulationSpec {
            sampler,
            step_size: Some(0.001),
            ..SimulationSpec::langevin(1, 10, 0, 1, 1)
        };
        let e = simulate(sys.as_ref(), &spec, true).unwrap_err().to_string();
        assert!(e.contains("--sampler") && e.contains("langevin"), "{e}");
    }
}

#[test]
fn the_internal_representation_holds_the_constrained_bonds_fixed() {
    use boltzflow_learn::run::{Representation, RepresentationKind};
    let sys = system();
    let spec = SimulationSpec::langevin(4, 5_000, 1_000, 100, 2);
    let x = simulate(sys.as_ref(), &spec, true).unwrap().samples;
    // 3·22 − 6 − 12 = 48 coordinates: the paper's BAT of the constrained molecule.
    let repr = Representation::fit(RepresentationKind::Internal, sys.as_ref(), x.view()).unwrap();
    assert_eq!(repr.dim(), 48);
    // Rows back to molecules: the constrained bonds at their lengths, the rest as in the frames
    // (internal distances equal, the frame is the layer's canonical one).
    let y = repr.features(x.view()).unwrap();
    let back = repr.positions(y.view()).unwrap();
    let ff = ForceField::from_file(&root().join("data/ala2/ala2_hbonds_system.xml")).unwrap();
    let dist = |r: ndarray::ArrayView1<f64>, i: usize, j: usize| {
        (0..3)
            .map(|k| (r[3 * i + k] - r[3 * j + k]).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    for (a, b) in x.outer_iter().zip(back.outer_iter()) {
        for &(i, j, d) in ff.constraints() {
            assert!((dist(b, i, j) - d).abs() < 1e-12);
        }
        for i in 0..22 {
            for j in 0..i {
                assert!((dist(a, i, j) - dist(b, i, j)).abs() < 1e-8);
            }
        }
    }
    // The energy of the rows (with the Fixman term) and its forces −∂u/∂y: central
    // differences on a few rows and columns.
    let beta = 1.0 / (boltzflow_core::KB_KJ_PER_MOL_K * 300.0);
    let u = repr
        .energy(boltzflow_learn::Reduced {
            inner: sys.as_ref(),
            beta,
        })
        .unwrap();
    let rows = y.slice(ndarray::s![..3, ..]).to_owned();
    let (_, f) = boltzflow_core::Energy::energy_and_forces(&u, rows.view()).unwrap();
    for r in 0..3 {
        for c in [0, 5, 20, 47] {
            let h = 1e-5;
            let (mut a, mut b) = (rows.clone(), rows.clone());
            a[[r, c]] += h;
            b[[r, c]] -= h;
            let e =
                |m: &ndarray::Array2<f64>| boltzflow_core::Energy::energy(&u, m.view()).unwrap()[r];
            let fd = -(e(&a) - e(&b)) / (2.0 * h);
            assert!(
                (f[[r, c]] - fd).abs() < 1e-4 * fd.abs().max(1.0),
                "row {r} column {c}: {} vs {fd}",
                f[[r, c]]
            );
        }
    }
    // Saved and loaded with the System's constraints; another System is refused.
    let dir = tempfile::tempdir().unwrap();
    repr.save(dir.path()).unwrap();
    let loaded = Representation::load(RepresentationKind::Internal, sys.as_ref(), dir.path())
        .unwrap()
        .unwrap();
    let diff = (&loaded.features(x.view()).unwrap() - &y).mapv(f64::abs);
    let worst = diff.iter().fold(0.0f64, |m, v| m.max(*v));
    assert!(worst < 1e-12, "{worst}");
    let flexible = boltzflow_systems::build_with_pdb(
        &format!(
            "openmm:{}",
            root().join("data/ala2/ala2_system.xml").display()
        ),
        Some(&root().join("data/ala2/ala2.pdb")),
    )
    .unwrap();
    let e = Representation::load(RepresentationKind::Internal, flexible.as_ref(), dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds 12 bonds fixed, the System has 0"), "{e}");
}

/// A bent triatomic A–C–B whose two bonds are constrained, with a light centre (1 amu between
/// two of 16 amu) and a soft harmonic angle: the Fixman factor √det G, with
/// det G = (1/m_C + 1/m_A)² − cos²θ/m_C², changes the angle's density by a factor 4 across its
/// range.
const TRIATOMIC: &str = r#"<?xml version="1.0" ?>
<System openmmVersion="8.6.1" type="System" version="1">
	<Particles><Particle mass="16"/><Particle mass="1"/><Particle mass="16"/></Particles>
	<Constraints><Constraint d=".1" p1="0" p2="1"/><Constraint d=".12" p1="1" p2="2"/></Constraints>
	<Forces>
		<Force forceGroup="0" name="HarmonicAngleForce" type="HarmonicAngleForce" usesPeriodic="0" version="2">
			<Angles><Angle a="1.9" k="5" p1="0" p2="1" p3="2"/></Angles>
		</Force>
	</Forces>
</System>"#;

/// The angle A–C–B of each row of Cartesian frames `[n, 9]`.
fn triatomic_angles(x: ndarray::ArrayView2<f64>) -> Vec<f64> {
    x.outer_iter()
        .map(|r| {
            let a: Vec<f64> = (0..3).map(|k| r[k] - r[3 + k]).collect();
            let b: Vec<f64> = (0..3).map(|k| r[6 + k] - r[3 + k]).collect();
            let dot: f64 = a.iter().zip(&b).map(|(p, q)| p * q).sum();
            let norm = |v: &[f64]| v.iter().map(|t| t * t).sum::<f64>().sqrt();
            (dot / (norm(&a) * norm(&b))).clamp(-1.0, 1.0).acos()
        })
        .collect()
}

#[test]
fn internal_coordinates_with_fixed_bonds_give_the_density_constrained_dynamics_sample() {
    use boltzflow_coords::{
        FixedBonds, InternalCoordinates, InternalEnergy, InternalLayer, ZMatrix,
    };
    use boltzflow_core::Energy;

    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("triatomic.xml");
    std::fs::write(&xml, TRIATOMIC).unwrap();
    let start = dir.path().join("start.npy");
    let chains = 64;
    let x0 = ndarray::Array2::from_shape_fn((chains, 9), |(_, k)| {
        [0.1, 0.0, 0.0, 0.0, 0.0, 0.0, -0.04, 0.11, 0.0][k]
    });
    boltzflow_io::write_npy_2d(&start, x0.view()).unwrap();
    let sys = boltzflow_systems::build(&format!("openmm:{}", xml.display())).unwrap();
    let spec = SimulationSpec {
        friction: 10.0,
        init: Some(start.display().to_string()),
        ..SimulationSpec::langevin(chains, 60_000, 2_000, 50, 5)
    };
    let r = simulate(sys.as_ref(), &spec, true).unwrap();
    let theta = triatomic_angles(r.samples.view());

    // The layer holds both bonds fixed: y is the angle alone, and its density exp(−u(y)) from
    // InternalEnergy (βU − ln J − ½ ln det G) is tabulated on a grid.
    let ff = ForceField::from_file(&xml).unwrap();
    let fixed = FixedBonds::new(ff.constraints(), ff.masses()).unwrap();
    let ic =
        InternalCoordinates::new(ZMatrix::from_bonds(3, ff.bonds(), &[true, false, true]).unwrap());
    let layer = InternalLayer::fit_constrained(ic, r.samples.view(), Some(fixed)).unwrap();
    assert_eq!(layer.dim(), 1);
    let beta = 1.0 / (boltzflow_core::units::KB_KJ_PER_MOL_K * 300.0);
    let reduced = boltzflow_learn::Reduced {
        inner: sys.as_ref(),
        beta,
    };
    let energy = InternalEnergy {
        inner: &reduced,
        layer: &layer,
    };
    let (lo, hi, bins) = (0.3, std::f64::consts::PI, 20);
    let width = (hi - lo) / bins as f64;
    let fine = 200;
    let (shift, scale) = (layer.shift()[0], layer.scale()[0]);
    let grid = ndarray::Array2::from_shape_fn((bins * fine, 1), |(g, _)| {
        (lo + (g as f64 + 0.5) * width / fine as f64 - shift) / scale
    });
    let u = energy.energy(grid.view()).unwrap();
    // The same without the Fixman factor: exp(−βU) sin θ, the density of infinitely stiff
    // bonds, which constrained dynamics do not sample.
    let stiff: Vec<f64> = (0..bins * fine)
        .map(|g| {
            let t = lo + (g as f64 + 0.5) * width / fine as f64;
            -beta * 0.5 * 5.0 * (t - 1.9f64).powi(2) + t.sin().ln()
        })
        .collect();
    let bin_probabilities = |log_density: &dyn Fn(usize) -> f64| {
        let w: Vec<f64> = (0..bins * fine).map(|g| log_density(g).exp()).collect();
        let total: f64 = w.iter().sum();
        (0..bins)
            .map(|b| w[b * fine..(b + 1) * fine].iter().sum::<f64>() / total)
            .collect::<Vec<f64>>()
    };
    let predicted = bin_probabilities(&|g| -u[g]);
    let predicted_stiff = bin_probabilities(&|g| stiff[g]);
    // MD's bin fractions per chain; the mean and its standard error over the 64 chains.
    let n_frames = theta.len() / chains;
    let mut per_chain = vec![vec![0.0; bins]; chains];
    for (n, t) in theta.iter().enumerate() {
        let b = ((t - lo) / width).floor();
        if b >= 0.0 && (b as usize) < bins {
            per_chain[n % chains][b as usize] += 1.0 / n_frames as f64;
        }
    }
    let (mut worst, mut worst_stiff) = (0.0f64, 0.0f64);
    for b in 0..bins {
        let mean = per_chain.iter().map(|c| c[b]).sum::<f64>() / chains as f64;
        let var =
            per_chain.iter().map(|c| (c[b] - mean).powi(2)).sum::<f64>() / (chains as f64 - 1.0);
        let se = (var / chains as f64).sqrt().max(1e-4);
        worst = worst.max((mean - predicted[b]).abs() / se);
        worst_stiff = worst_stiff.max((mean - predicted_stiff[b]).abs() / se);
    }
    println!("worst bin: {worst:.2} SE with the Fixman factor, {worst_stiff:.1} SE without");
    assert!(worst < 4.0, "{worst}");
    assert!(worst_stiff > 10.0, "{worst_stiff}");
}
