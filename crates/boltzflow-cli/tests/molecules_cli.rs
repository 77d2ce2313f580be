//! Molecules from the command line: `energy`, `simulate` and `dihedrals` on alanine dipeptide
//! (OpenMM System XML + PDB), and clear errors for bad molecular input (issue 6).

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Output;

/// `name` in the repository's `dir`, as a string argument.
fn repo_file(dir: &str, name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(dir)
        .join(name)
        .display()
        .to_string()
}

fn data(name: &str) -> String {
    repo_file("data/ala2", name)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts/fixtures/ala2")
        .join(name)
}

fn system() -> String {
    format!("openmm:{}", data("ala2_system.xml"))
}

#[test]
fn energy_matches_the_openmm_reference_data() {
    let d = tempfile::tempdir().unwrap();
    let o = boltzflow(
        &[
            "energy",
            "--system",
            &system(),
            "--pdb",
            &data("ala2.pdb"),
            "--coords",
            &data("positions_nm.npy"),
            "--out",
            "e.npy",
            "--forces",
            "f.npy",
            "--group-energies",
            "g.npy",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("3 (NonbondedForce)"), "{}", stderr(&o));
    let e = boltzflow_io::read_npy_1d(&d.path().join("e.npy")).unwrap();
    let e_ref = boltzflow_io::read_npy_1d(Path::new(&data("energies_kJmol.npy"))).unwrap();
    let g = boltzflow_io::read_npy_2d(&d.path().join("g.npy")).unwrap();
    let g_ref = boltzflow_io::read_npy_2d(Path::new(&data("group_energies_kJmol.npy"))).unwrap();
    let f = boltzflow_io::read_npy_2d(&d.path().join("f.npy")).unwrap();
    let f_ref = boltzflow_io::read_npy_2d(Path::new(&data("forces_kJmol_nm.npy"))).unwrap();
    for i in 0..50 {
        assert!((e[i] - e_ref[i]).abs() < 1e-9, "{} {}", e[i], e_ref[i]);
        for k in 0..4 {
            assert!((g[[i, k]] - g_ref[[i, k]]).abs() <= 1e-6 * g_ref[[i, k]].abs());
        }
    }
    let df = (&f - &f_ref).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(df < 1e-4, "{df}");
}

fn simulate(dir: &Path, extra: &[&str]) -> Output {
    simulate_system(dir, &system(), extra)
}

/// `boltzflow simulate` of `system` (ala2's PDB), 2 Langevin chains, seed 3.
fn simulate_system(dir: &Path, system: &str, extra: &[&str]) -> Output {
    let pdb = data("ala2.pdb");
    let mut args = vec![
        "simulate",
        "--system",
        system,
        "--pdb",
        &pdb,
        "--sampler",
        "langevin",
        "--chains",
        "2",
        "--seed",
        "3",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    boltzflow(&args, dir)
}

fn summary(dir: &Path, name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
}

#[test]
fn langevin_md_holds_300_k_and_is_reproducible() {
    let d = tempfile::tempdir().unwrap();
    let args = [
        "--steps",
        "40000",
        "--burn-in",
        "10000",
        "--stride",
        "10",
        "--friction",
        "5",
        "--out",
        "x.npy",
        "--trajectory",
        "x.pdb",
        "--summary",
        "s.json",
    ];
    let o = simulate(d.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(d.path(), "s.json");
    assert_eq!(s["units"], "openmm");
    assert_eq!(s["temperature"], 300.0);
    assert_eq!(s["step_size"], 0.001);
    let dyn_ = &s["dynamics"];
    assert_eq!(dyn_["degrees_of_freedom"], 63);
    // 2 chains × 30 ps after 10 ps at γ = 5/ps, a frame every 10 fs: σ_T ≈ 300 K · √(2/63) /
    // √N_eff ≈ 2 K (N_eff ≈ 800; seeds 1–4 gave 298.2, 300.1, 301.8, 303.0 K); 9 K is ≈ 4.5σ.
    let t = dyn_["temperature_mean"].as_f64().unwrap();
    assert!((t - 300.0).abs() < 9.0, "temperature {t}");
    // The end-of-step velocities are biased low by the stiff X–H modes (Leimkuhler & Matthews).
    assert!(dyn_["temperature_end_of_step"].as_f64().unwrap() < t);
    let x = boltzflow_io::read_npy_2d(&d.path().join("x.npy")).unwrap();
    assert_eq!(x.dim(), (2 * 3000, 66));
    let text = std::fs::read_to_string(d.path().join("x.pdb")).unwrap();
    assert_eq!(text.matches("MODEL").count(), 6000);
    // The same seed gives the same trajectory.
    let d2 = tempfile::tempdir().unwrap();
    let o = simulate(d2.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        x,
        boltzflow_io::read_npy_2d(&d2.path().join("x.npy")).unwrap()
    );
}

#[test]
fn without_friction_the_total_energy_is_conserved() {
    let d = tempfile::tempdir().unwrap();
    let o = simulate(
        d.path(),
        &[
            "--friction",
            "0",
            "--steps",
            "20000",
            "--burn-in",
            "0",
            "--stride",
            "20",
            "--step-size",
            "0.0005",
            "--out",
            "x.npy",
            "--summary",
            "s.json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let dyn_ = &summary(d.path(), "s.json")["dynamics"];
    // Velocity Verlet with 0.5 fs: the total energy fluctuates by ~0.1 kJ/mol around a constant
    // (kinetic energy alone fluctuates by ~15 kJ/mol).
    let std = dyn_["total_energy_std"].as_f64().unwrap();
    assert!(std < 0.5, "total-energy std {std}");
    let drift = dyn_["total_energy_drift"].as_f64().unwrap();
    assert!(drift.abs() < 20.0, "drift {drift} kJ/mol/ns over 10 ps");
}

#[test]
fn constrained_dynamics_conserve_energy_at_2_fs_and_other_samplers_refuse_them() {
    let d = tempfile::tempdir().unwrap();
    let nve = |system: &str, name: &str| -> serde_json::Value {
        let file = format!("{name}.json");
        let o = simulate_system(
            d.path(),
            system,
            &[
                "--friction",
                "0",
                "--steps",
                "20000",
                "--burn-in",
                "0",
                "--stride",
                "20",
                "--step-size",
                "0.002",
                "--out",
                "x.npy",
                "--summary",
                &file,
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        summary(d.path(), &file)["dynamics"].clone()
    };
    // Velocity Verlet + RATTLE at 2 fs with the bonds to hydrogen constrained: the total
    // energy fluctuates by 0.3 kJ/mol, against 1.2 kJ/mol for the flexible molecule at 2 fs.
    let constrained = nve(&format!("openmm:{}", data("ala2_hbonds_system.xml")), "c");
    let flexible = nve(&system(), "f");
    assert_eq!(constrained["degrees_of_freedom"], 51);
    let (c, f) = (
        constrained["total_energy_std"].as_f64().unwrap(),
        flexible["total_energy_std"].as_f64().unwrap(),
    );
    assert!(c < 0.6 && c < 0.5 * f, "constrained {c}, flexible {f}");
    // Monte Carlo cannot keep constraints: exit status 2 and what to use instead.
    let (sys, pdb) = (
        format!("openmm:{}", data("ala2_hbonds_system.xml")),
        data("ala2.pdb"),
    );
    let o = boltzflow(
        &[
            "simulate",
            "--system",
            &sys,
            "--pdb",
            &pdb,
            "--sampler",
            "metropolis",
            "--chains",
            "1",
            "--steps",
            "10",
            "--burn-in",
            "0",
            "--stride",
            "1",
            "--step-size",
            "0.001",
            "--out",
            "m.npy",
        ],
        d.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        stderr(&o).contains("only `langevin` keeps"),
        "{}",
        stderr(&o)
    );
    assert!(!d.path().join("m.npy").exists());
}

#[test]
fn dihedrals_equal_openmm_and_the_plot_is_written() {
    let d = tempfile::tempdir().unwrap();
    let o = boltzflow(
        &[
            "dihedrals",
            "--pdb",
            &data("ala2.pdb"),
            "--coords",
            &data("positions_nm.npy"),
            "--out",
            "a.npy",
            "--sincos",
            "sc.npy",
            "--plot",
            "rama.png",
            "--summary",
            "d.json",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let a = boltzflow_io::read_npy_2d(&d.path().join("a.npy")).unwrap();
    let r = boltzflow_io::read_npy_2d(&fixture("phi_psi_openmm.npy")).unwrap();
    for (v, w) in a.iter().zip(r.iter()) {
        let diff =
            (v - w + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU) - std::f64::consts::PI;
        assert!(diff.abs() < 1e-10, "{v} {w}");
    }
    assert_eq!(
        boltzflow_io::read_npy_2d(&d.path().join("sc.npy"))
            .unwrap()
            .ncols(),
        4
    );
    assert!(std::fs::metadata(d.path().join("rama.png")).unwrap().len() > 1000);
    let s = summary(d.path(), "d.json");
    let pops = s["basin_populations"]["2"].as_object().unwrap();
    let total: f64 = pops.values().map(|v| v.as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-12);
}

#[test]
fn bad_molecular_input_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let xml = std::fs::read_to_string(data("ala2_system.xml")).unwrap();
    std::fs::write(
        d.path().join("pme.xml"),
        xml.replace(r#"method="0""#, r#"method="4""#),
    )
    .unwrap();
    std::fs::write(d.path().join("cut.xml"), &xml[..xml.len() / 3]).unwrap();
    let pdb = std::fs::read_to_string(data("ala2.pdb")).unwrap();
    let short: String = pdb
        .lines()
        .filter(|l| !l.contains(" H3  NME") && !l.starts_with("CONECT"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(d.path().join("short.pdb"), short).unwrap();
    let coords = data("positions_nm.npy");
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            vec![
                "energy".into(),
                "--system".into(),
                "openmm:pme.xml".into(),
                "--coords".into(),
                coords.clone(),
                "--out".into(),
                "e.npy".into(),
            ],
            vec!["pme.xml", "PME", "NoCutoff", "line"],
        ),
        (
            vec![
                "energy".into(),
                "--system".into(),
                "openmm:cut.xml".into(),
                "--coords".into(),
                coords.clone(),
                "--out".into(),
                "e.npy".into(),
            ],
            vec!["cut.xml", "not well-formed", "truncated"],
        ),
        (
            vec![
                "energy".into(),
                "--system".into(),
                system(),
                "--pdb".into(),
                "short.pdb".into(),
                "--coords".into(),
                coords.clone(),
                "--out".into(),
                "e.npy".into(),
            ],
            vec!["short.pdb", "21 atoms", "22"],
        ),
        (
            vec![
                "simulate".into(),
                "--system".into(),
                system(),
                "--sampler".into(),
                "langevin".into(),
                "--chains".into(),
                "1".into(),
                "--steps".into(),
                "10".into(),
                "--burn-in".into(),
                "0".into(),
                "--stride".into(),
                "1".into(),
                "--out".into(),
                "x.npy".into(),
            ],
            vec!["--pdb"],
        ),
        (
            vec![
                "energy".into(),
                "--system".into(),
                "openmm:".into(),
                "--coords".into(),
                coords.clone(),
                "--out".into(),
                "e.npy".into(),
            ],
            vec!["openmm:PATH.xml"],
        ),
    ];
    for (args, needles) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = boltzflow(&args, d.path());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let m = stderr(&o);
        for n in needles {
            assert!(m.contains(n), "{args:?}: `{n}` not in {m}");
        }
        assert!(!m.contains("panicked"), "{m}");
    }
}

fn trajectory(name: &str) -> String {
    repo_file("scripts/fixtures/trajectories", name)
}

/// XTC, TRR and DCD files (written by mdtraj) are accepted where `.npy` coordinates are:
/// `energy`, `dihedrals` and `kinetics` give the numbers of the same frames as `.npy`.
#[test]
fn trajectories_are_accepted_wherever_npy_coordinates_are() {
    let d = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let o = boltzflow(args, d.path());
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    };
    let (sys, pdb) = (system(), data("ala2.pdb"));
    for ext in ["xtc", "trr", "dcd"] {
        let traj = trajectory(&format!("ala2.{ext}"));
        let npy = trajectory(&format!("ala2_{ext}_mdtraj.npy"));
        for (coords, out) in [(&traj, "e_traj.npy"), (&npy, "e_npy.npy")] {
            run(&[
                "energy", "--system", &sys, "--pdb", &pdb, "--coords", coords, "--out", out,
            ]);
        }
        let e_traj = boltzflow_io::read_npy_1d(&d.path().join("e_traj.npy")).unwrap();
        let e_npy = boltzflow_io::read_npy_1d(&d.path().join("e_npy.npy")).unwrap();
        assert_eq!(e_traj.len(), 7);
        // mdtraj's DCD reading divides Å by 10 in f32, boltzflow in f64 (≤ 1.5·10⁻⁷ nm).
        let tol = if ext == "dcd" { 1e-3 } else { 1e-9 };
        for (a, b) in e_traj.iter().zip(&e_npy) {
            assert!((a - b).abs() <= tol * b.abs().max(1.0), "{ext}: {a} vs {b}");
        }
        run(&[
            "dihedrals",
            "--pdb",
            &pdb,
            "--coords",
            &traj,
            "--out",
            "phi_psi.npy",
        ]);
        assert_eq!(
            boltzflow_io::read_npy_2d(&d.path().join("phi_psi.npy"))
                .unwrap()
                .dim(),
            (7, 2)
        );
        for (t, out) in [(&traj, "k_traj"), (&npy, "k_npy")] {
            run(&[
                "kinetics",
                "tica",
                "--trajs",
                t,
                "--lagtime",
                "1",
                "--dim",
                "2",
                "--out",
                out,
            ]);
        }
        let ev = |dir: &str| {
            boltzflow_io::read_npy_1d(&d.path().join(dir).join("eigenvalues.npy")).unwrap()
        };
        // Seven frames of 66 coordinates make a rank-deficient TICA problem, which amplifies
        // any difference in the input: identical inputs (XTC, TRR) must give identical
        // numbers; DCD's differ by f32 rounding, so only the projection's shape is checked.
        if ext != "dcd" {
            assert_eq!(ev("k_traj"), ev("k_npy"), "{ext}");
        }
        let proj = d.path().join("k_traj/projection.npy");
        assert_eq!(boltzflow_io::read_npy_2d(&proj).unwrap().nrows(), 7);
    }
}

/// A molecular Boltzmann generator from the command line: the project's own MD as data,
/// `train` in internal coordinates, `sample` to .npy and a multi-model PDB, and the samples
/// read back by `energy`, `dihedrals` and `evaluate` (Ramachandran populations).
#[test]
fn an_internal_coordinate_generator_samples_molecules_the_other_commands_read() {
    let d = tempfile::tempdir().unwrap();
    let o = boltzflow(
        &[
            "simulate",
            "--system",
            &system(),
            "--pdb",
            &data("ala2.pdb"),
            "--sampler",
            "langevin",
            "--chains",
            "2",
            "--steps",
            "45000",
            "--burn-in",
            "5000",
            "--stride",
            "100",
            "--out",
            "md.npy",
            "--quiet",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let cfg = format!(
        "seed = 3\n[system]\nspec = \"{}\"\npdb = \"{}\"\n[data]\nfile = \"md.npy\"\n[flow]\ncoordinates = \"internal\"\ncouplings = 4\nhidden = [32]\nbins = 6\n[train]\nbatch_size = 64\nsteps_per_epoch = 20\nhigh_energy = 100.0\nmax_energy = 10000.0\n[[stage]]\nname = \"ml\"\nepochs = 2\nlr = 2e-3\nw_ml = 1.0\n[evaluate]\nn_samples = 2000\nlatent_mc_chains = 0\n",
        system(),
        data("ala2.pdb")
    );
    std::fs::write(d.path().join("ala2.toml"), cfg).unwrap();
    let o = boltzflow(&["train", "ala2.toml", "--out", "run", "--quiet"], d.path());
    assert!(o.status.success(), "{}", text(&o));
    let o = boltzflow(
        &[
            "sample",
            "run",
            "--n",
            "50",
            "--out",
            "x.npy",
            "--trajectory",
            "x.pdb",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let pdb = std::fs::read_to_string(d.path().join("x.pdb")).unwrap();
    assert_eq!(pdb.matches("MODEL").count(), 50);
    let o = boltzflow(
        &[
            "energy",
            "--system",
            &system(),
            "--pdb",
            &data("ala2.pdb"),
            "--coords",
            "x.npy",
            "--out",
            "e.npy",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = boltzflow(
        &[
            "dihedrals",
            "--pdb",
            &data("ala2.pdb"),
            "--coords",
            "x.npy",
            "--out",
            "phipsi.npy",
        ],
        d.path(),
    );
    assert!(
        o.status.success() && text(&o).contains("residue 2"),
        "{}",
        text(&o)
    );
    let o = boltzflow(&["evaluate", "run"], d.path());
    assert!(
        o.status.success() && text(&o).contains("population_c7eq"),
        "{}",
        text(&o)
    );
    // A trajectory is .pdb or .xyz; anything else is an error saying so.
    let o = boltzflow(
        &[
            "sample",
            "run",
            "--n",
            "5",
            "--out",
            "y.npy",
            "--trajectory",
            "y.txt",
        ],
        d.path(),
    );
    assert!(
        !o.status.success() && stderr(&o).contains(".pdb"),
        "{}",
        stderr(&o)
    );
}

/// `simulate --metad`: on the double well (barrier ≈ 10.7 kT) the reweighted frames give the
/// exact right-well population (quadrature 0.0329) and the free-energy surface the exact
/// profile; on alanine dipeptide a short (φ, ψ) run writes consistent outputs and the
/// reweighted Ramachandran populations; bad options name themselves.
#[test]
fn simulate_with_metadynamics_reweights_to_the_exact_population() {
    let d = tempfile::tempdir().unwrap();
    let run = |seed: &str| {
        boltzflow(
            &[
                "simulate",
                "--system",
                "double-well",
                "--step-size",
                "0.3",
                "--chains",
                "8",
                "--steps",
                "60000",
                "--burn-in",
                "10000",
                "--stride",
                "20",
                "--init",
                "default",
                "--seed",
                seed,
                "--metad",
                "projection:1,0",
                "--metad-height",
                "0.2",
                "--metad-sigma",
                "0.1",
                "--metad-bias-factor",
                "8",
                "--metad-pace",
                "20",
                "--metad-bins",
                "700",
                "--metad-range=-3.5,3.5",
                "--out",
                "x.npy",
                "--weights",
                "w.npy",
                "--fes",
                "fes.npy",
                "--summary",
                "s.json",
                "--quiet",
            ],
            d.path(),
        )
    };
    // Eight independent runs (seeds) for the standard error.
    let mut p = Vec::new();
    for seed in 0..8 {
        let o = run(&seed.to_string());
        assert!(o.status.success(), "{}", text(&o));
        let x = boltzflow_io::read_npy_2d(&d.path().join("x.npy")).unwrap();
        let lw = boltzflow_io::read_npy_1d(&d.path().join("w.npy")).unwrap();
        assert_eq!((x.nrows(), lw.len()), (8 * 2500, 8 * 2500));
        let m = lw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (mut num, mut den) = (0.0, 0.0);
        for (row, l) in x.rows().into_iter().zip(&lw) {
            let w = (l - m).exp();
            den += w;
            if row[0] > 0.0 {
                num += w;
            }
        }
        p.push(num / den);
    }
    let mean = p.iter().sum::<f64>() / 8.0;
    let se = (p.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 56.0).sqrt();
    assert!(
        (mean - 0.0329).abs() < 4.0 * se + 2e-3,
        "population {mean} ± {se} ({p:?})"
    );
    // The surface of the last run at x = ±1.5 against x⁴ − 6x² + x (minimum −10.75 at −1.77).
    let fes = boltzflow_io::read_npy_2d(&d.path().join("fes.npy")).unwrap();
    assert_eq!(fes.ncols(), 2);
    let exact = |x: f64| x.powi(4) - 6.0 * x * x + x;
    let fmin = (0..fes.nrows())
        .map(|i| exact(fes[[i, 0]]))
        .fold(f64::INFINITY, f64::min);
    for x in [-1.5, 1.5] {
        let i = (0..fes.nrows())
            .min_by(|&a, &b| (fes[[a, 0]] - x).abs().total_cmp(&(fes[[b, 0]] - x).abs()))
            .unwrap();
        assert!(
            (fes[[i, 1]] - (exact(x) - fmin)).abs() < 0.6,
            "F({x}) = {} vs {}",
            fes[[i, 1]],
            exact(x) - fmin
        );
    }

    // Alanine dipeptide, 2 walkers × 2 ps: the outputs agree and the populations sum to 1.
    let o = boltzflow(
        &[
            "simulate",
            "--system",
            &format!("openmm:{}", data("ala2_system.xml")),
            "--pdb",
            &data("ala2.pdb"),
            "--sampler",
            "langevin",
            "--chains",
            "2",
            "--steps",
            "2000",
            "--burn-in",
            "500",
            "--stride",
            "100",
            "--metad",
            "phi;psi",
            "--metad-pace",
            "100",
            "--out",
            "a.npy",
            "--weights",
            "aw.npy",
            "--energies",
            "ae.npy",
            "--summary",
            "as.json",
            "--quiet",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("AlphaLC7ax"), "{}", text(&o));
    let a = boltzflow_io::read_npy_2d(&d.path().join("a.npy")).unwrap();
    let aw = boltzflow_io::read_npy_1d(&d.path().join("aw.npy")).unwrap();
    let ae = boltzflow_io::read_npy_1d(&d.path().join("ae.npy")).unwrap();
    assert_eq!((a.nrows(), a.ncols(), aw.len(), ae.len()), (30, 66, 30, 30));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("as.json")).unwrap()).unwrap();
    assert_eq!(s["hills"], 40);
    let total: f64 = s["ramachandran"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[1].as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-9, "{total}");

    // Bad options.
    for (args, needle) in [
        (vec!["--metad", "projection:1,0"], "--metad-range"),
        (vec!["--metad", "phi"], "topology"),
        (vec!["--metad", "dihedral:0,1,2"], "4 atoms"),
        (
            vec![
                "--metad",
                "projection:1,0",
                "--metad-range=-3,3",
                "--metad-pace",
                "7",
            ],
            "--metad-pace",
        ),
        (vec!["--weights", "w.npy"], "--metad"),
    ] {
        let mut all = vec![
            "simulate",
            "--system",
            "double-well",
            "--steps",
            "1000",
            "--burn-in",
            "500",
            "--stride",
            "500",
            "--chains",
            "2",
            "--out",
            "y.npy",
        ];
        all.extend(args);
        let o = boltzflow(&all, d.path());
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(
            text(&o).contains(needle),
            "expected `{needle}` in: {}",
            text(&o)
        );
    }
}
