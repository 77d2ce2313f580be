//! Well-tempered metadynamics against exact references: the double well's free-energy profile
//! and well population by quadrature, the biased forces by finite differences.

use boltzflow_core::{Coordinate, Energy, RandomStreams, SamplerState, ThermodynamicState};
use boltzflow_mcmc::metadynamics::{
    CollectiveVariable, GridAxis, Metadynamics, MetadynamicsParams, run,
};
use boltzflow_mcmc::{Metropolis, Move};
use boltzflow_systems::build;
use ndarray::Array2;
use rayon::prelude::*;

/// The x-marginal free energy of `double-well` (u = x⁴ − 6x² + x + ½y², kT = 1; y separates).
fn exact_f(x: f64) -> f64 {
    x.powi(4) - 6.0 * x * x + x
}

/// Population of x > 0 by quadrature (ΔF = 3.380 kT, p ≈ 0.0329).
fn exact_right_population() -> f64 {
    let (mut left, mut right) = (0.0, 0.0);
    for i in 0..100_000 {
        let x = -5.0 + (i as f64 + 0.5) * 1e-4;
        let p = (-exact_f(x)).exp();
        if x < 0.0 { left += p } else { right += p }
    }
    right / (left + right)
}

fn params() -> MetadynamicsParams {
    MetadynamicsParams {
        height: 0.2,
        sigma: vec![0.1],
        bias_factor: 8.0,
        grid: vec![GridAxis {
            lo: -3.5,
            hi: 3.5,
            bins: 700,
            periodic: false,
        }],
    }
}

#[test]
fn well_tempered_metadynamics_recovers_the_double_well_profile_and_population() {
    // 8 independent runs of 8 walkers, all started in the left well (barrier ≈ 10.7 kT).
    // Metropolis σ = 0.3, a Gaussian per walker every 20 steps, 3000 rounds; the first 500
    // rounds are discarded before reweighting.
    let s = build("double-well").unwrap();
    let thermo = ThermodynamicState::default();
    let (runs, walkers, rounds, skip) = (8, 8, 3000, 500);
    let cv = CollectiveVariable::Coordinate(Coordinate::Projection(vec![1.0, 0.0]));
    let results: Vec<(f64, Vec<f64>, usize)> = (0..runs)
        .into_par_iter()
        .map(|r| {
            let streams = RandomStreams::new(100 + r as u64);
            let start = Array2::from_shape_fn((walkers, 2), |(_, c)| [-1.7, 0.0][c]);
            let mut state =
                SamplerState::new(start, s.as_ref(), streams.chains("mtd", walkers)).unwrap();
            let mut meta = Metadynamics::new(vec![cv.clone()], params(), &thermo).unwrap();
            let mut mv = Metropolis::new(0.3).unwrap();
            let mut side = vec![false; walkers];
            let mut crossings = 0;
            let trace = run(
                &mut meta,
                &mut state,
                &mut mv,
                s.as_ref(),
                20,
                rounds,
                |_, st| {
                    for (w, row) in st.positions.rows().into_iter().enumerate() {
                        let right = row[0] > 0.0;
                        crossings += usize::from(right != side[w]);
                        side[w] = right;
                    }
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(meta.hills(), (rounds * walkers) as u64);
            let lw = trace.log_weights(thermo.kt(), skip);
            let m = lw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let (mut num, mut den) = (0.0, 0.0);
            for (w, s) in lw.iter().zip(&trace.cv[skip * walkers..]) {
                let w = (w - m).exp();
                den += w;
                if s[0] > 0.0 {
                    num += w;
                }
            }
            (num / den, meta.free_energy(), crossings)
        })
        .collect();
    let p: Vec<f64> = results.iter().map(|r| r.0).collect();
    let mean = p.iter().sum::<f64>() / runs as f64;
    let se =
        (p.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / ((runs - 1) * runs) as f64).sqrt();
    let exact = exact_right_population();
    let crossings: usize = results.iter().map(|r| r.2).sum();
    eprintln!(
        "metadynamics: right-well population {mean:.4} ± {se:.4} (runs {p:.4?}), exact {exact:.4}; {crossings} well changes"
    );
    assert!((exact - 0.0329).abs() < 1e-3);
    assert!(
        (mean - exact).abs() < 4.0 * se + 1e-3,
        "population {mean} ± {se} vs {exact}"
    );
    assert!(se < 0.01, "standard error {se}");
    assert!(crossings > 1000, "{crossings} well changes");

    // F = −γ/(γ − 1)·V against the exact profile, both shifted to their minimum over the grid
    // points where the exact F is below 8 kT; the mean over runs.
    let p = params();
    let ax = p.grid[0];
    let pts: Vec<f64> = (0..=ax.bins)
        .map(|i| ax.lo + i as f64 * (ax.hi - ax.lo) / ax.bins as f64)
        .collect();
    let fmin = pts
        .iter()
        .map(|&x| exact_f(x))
        .fold(f64::INFINITY, f64::min);
    let keep: Vec<usize> = (0..pts.len())
        .filter(|&i| exact_f(pts[i]) - fmin < 8.0)
        .collect();
    let mean_f: Vec<f64> = (0..pts.len())
        .map(|i| results.iter().map(|r| r.1[i]).sum::<f64>() / runs as f64)
        .collect();
    let off = keep
        .iter()
        .map(|&i| mean_f[i] - (exact_f(pts[i]) - fmin))
        .sum::<f64>()
        / keep.len() as f64;
    let rmse = (keep
        .iter()
        .map(|&i| (mean_f[i] - off - (exact_f(pts[i]) - fmin)).powi(2))
        .sum::<f64>()
        / keep.len() as f64)
        .sqrt();
    eprintln!(
        "metadynamics: profile RMSE {rmse:.3} kT over {} points",
        keep.len()
    );
    assert!(rmse < 0.3, "profile RMSE {rmse}");
}

#[test]
fn plain_metropolis_stays_in_the_left_well_where_metadynamics_crosses() {
    // The same walkers without the bias: no well change in the same number of steps.
    let s = build("double-well").unwrap();
    let walkers = 8;
    let start = Array2::from_shape_fn((walkers, 2), |(_, c)| [-1.7, 0.0][c]);
    let streams = RandomStreams::new(100);
    let mut state = SamplerState::new(start, s.as_ref(), streams.chains("mtd", walkers)).unwrap();
    let mut mv = Metropolis::new(0.3).unwrap();
    let mut right = 0;
    for _ in 0..3000 {
        mv.apply(&mut state, s.as_ref(), &ThermodynamicState::default(), 20)
            .unwrap();
        right += state
            .positions
            .column(0)
            .iter()
            .filter(|&&x| x > 0.0)
            .count();
    }
    assert!(right < 100, "{right} frames in the right well");
}

#[test]
fn biased_forces_are_minus_the_gradient_of_the_biased_energy_for_torsions() {
    // Alanine dipeptide with a bias on (φ, ψ) made of hills deposited along a path that crosses
    // ±π; the biased forces against central differences of the biased energy.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/ala2");
    let sys = boltzflow_systems::build_with_pdb(
        &format!("openmm:{}", root.join("ala2_system.xml").display()),
        Some(&root.join("ala2.pdb")),
    )
    .unwrap();
    let x0: Array2<f64> = boltzflow_io::read_npy_2d(&root.join("positions_nm.npy")).unwrap();
    let x = x0.slice(ndarray::s![0..3, ..]).to_owned();
    let thermo = ThermodynamicState::kelvin(300.0).unwrap();
    let (phi, psi) = ([4, 6, 8, 14], [6, 8, 14, 16]);
    let axis = GridAxis {
        lo: -std::f64::consts::PI,
        hi: std::f64::consts::PI,
        bins: 90,
        periodic: true,
    };
    let mut meta = Metadynamics::new(
        vec![
            CollectiveVariable::Dihedral(phi),
            CollectiveVariable::Dihedral(psi),
        ],
        MetadynamicsParams {
            height: 1.2,
            sigma: vec![0.35, 0.35],
            bias_factor: 6.0,
            grid: vec![axis, axis],
        },
        &thermo,
    )
    .unwrap();
    for row in x.rows() {
        let s = meta.cv_values(row);
        for k in 0..12 {
            let t = k as f64 * 0.3;
            meta.deposit(&[s[0] + t, s[1] - 0.5 * t]);
        }
    }
    let biased = meta.biased(sys.as_ref());
    let (e, f) = biased.energy_and_forces(x.view()).unwrap();
    let (e0, _) = sys.energy_and_forces(x.view()).unwrap();
    for i in 0..x.nrows() {
        assert!((e[i] - e0[i]).abs() > 0.1, "the bias acts on row {i}");
        for c in 0..x.ncols() {
            let h = 1e-6;
            let mut xp = x.row(i).to_owned().insert_axis(ndarray::Axis(0));
            let mut xm = xp.clone();
            xp[[0, c]] += h;
            xm[[0, c]] -= h;
            let fd = -(biased.energy(xp.view()).unwrap()[0] - biased.energy(xm.view()).unwrap()[0])
                / (2.0 * h);
            assert!(
                (fd - f[[i, c]]).abs() < 1e-3 * (1.0 + fd.abs()),
                "row {i} coordinate {c}: force {} vs finite difference {fd}",
                f[[i, c]]
            );
        }
    }
}

#[test]
fn bad_settings_name_the_field() {
    let thermo = ThermodynamicState::default();
    let cv = || {
        vec![CollectiveVariable::Coordinate(Coordinate::Projection(
            vec![1.0, 0.0],
        ))]
    };
    let cases: Vec<(MetadynamicsParams, &str)> = vec![
        (
            MetadynamicsParams {
                bias_factor: 1.0,
                ..params()
            },
            "metadynamics.bias_factor",
        ),
        (
            MetadynamicsParams {
                height: -1.0,
                ..params()
            },
            "metadynamics.height",
        ),
        (
            MetadynamicsParams {
                sigma: vec![0.001],
                ..params()
            },
            "metadynamics.grid",
        ),
        (
            MetadynamicsParams {
                sigma: vec![0.1, 0.1],
                ..params()
            },
            "metadynamics.sigma",
        ),
    ];
    for (p, field) in cases {
        let e = Metadynamics::new(cv(), p, &thermo).unwrap_err().to_string();
        assert!(e.contains(field), "{e}");
    }
    // A torsion on a non-periodic axis.
    let e = Metadynamics::new(
        vec![CollectiveVariable::Dihedral([0, 1, 2, 3])],
        params(),
        &thermo,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("periodic"), "{e}");
    let e = CollectiveVariable::Dihedral([0, 1, 2, 30])
        .check(12, "cv")
        .unwrap_err()
        .to_string();
    assert!(e.contains("atom 30"), "{e}");
}
