//! A Boltzmann generator for alanine dipeptide in internal coordinates, end to end on a reduced
//! scale: MD data from the project's own Langevin integrator, ML then ML + KL training of a
//! torus flow, Cartesian samples whose log-weights the library recomputes, evaluation, a
//! resumed run that ends with the same parameters, and clear errors for what is not supported.

use std::path::{Path, PathBuf};

use boltzflow_core::Energy;
use boltzflow_learn::config::BgConfig;
use boltzflow_learn::run::{
    BgEvaluateOptions, BgRun, NoProgress, SimulationSpec, StartMode, TrainOptions, simulate,
};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/ala2")
}

/// 2 × 40 ps of 300 K Langevin MD, a frame every 100 fs.
fn md_frames(dir: &Path) -> PathBuf {
    let system = boltzflow_systems::build_with_pdb(
        &format!("openmm:{}", data_dir().join("ala2_system.xml").display()),
        Some(&data_dir().join("ala2.pdb")),
    )
    .unwrap();
    let spec = SimulationSpec::langevin(2, 45_000, 5000, 100, 2);
    let r = simulate(system.as_ref(), &spec, true).unwrap();
    let path = dir.join("md.npy");
    boltzflow_io::write_npy_2d(&path, r.samples.view()).unwrap();
    path
}

fn config(data: &Path, extra: &str) -> BgConfig {
    let text = format!(
        r#"seed = 3
[system]
spec = "openmm:{xml}"
pdb = "{pdb}"
[data]
file = "{data}"
[flow]
coordinates = "internal"
couplings = 4
hidden = [32]
bins = 6
[train]
batch_size = 64
steps_per_epoch = 20
high_energy = 100.0
max_energy = 10000.0
clip_grad_norm = 100.0
ess_samples = 256
[[stage]]
name = "ml"
epochs = 3
lr = 2e-3
w_ml = 1.0
[[stage]]
name = "ml+kl"
epochs = 1
lr = 5e-4
w_ml = 1.0
w_kl = 0.1
[evaluate]
n_samples = 2000
latent_mc_chains = 0
{extra}"#,
        xml = data_dir().join("ala2_system.xml").display(),
        pdb = data_dir().join("ala2.pdb").display(),
        data = data.display(),
    );
    BgConfig::from_toml(&text).unwrap()
}

fn train(dir: PathBuf, cfg: BgConfig, stop_after: Option<usize>, mode: StartMode) -> BgRun {
    let run = BgRun::new(dir, cfg).unwrap();
    run.train(TrainOptions { mode, stop_after }, &mut NoProgress)
        .unwrap();
    run
}

#[test]
fn alanine_dipeptide_in_internal_coordinates_trains_samples_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = md_frames(tmp.path());
    // Evaluated with AIS too: HMC in latent space through the internal-coordinate layer.
    let run = train(
        tmp.path().join("run"),
        config(&data, "ais_samples = 200\nais_levels = 5\n"),
        None,
        StartMode::default(),
    );
    assert!(tmp.path().join("run/internal_coordinates.json").exists());
    // Maximum likelihood learns: the NLL falls in every ML epoch, by 2 nats over three (the
    // standardised coordinates start it close: bonds, angles and rigid torsions are already
    // unit Gaussians to first order).
    let csv = std::fs::read_to_string(tmp.path().join("run/metrics.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "nll").unwrap();
    let nll: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
        .collect();
    assert!(
        nll[1] < nll[0] && nll[2] < nll[1] && nll[2] < nll[0] - 2.0,
        "nll {nll:?}"
    );

    // Samples are molecules in Cartesian coordinates; the library scores them again.
    let s = run.sample(500, 1.0, 7).unwrap();
    assert_eq!(s.x.ncols(), 66);
    let ff = boltzflow_systems::ForceField::from_file(&data_dir().join("ala2_system.xml")).unwrap();
    let e = ff.energy(s.x.view()).unwrap();
    assert!(e.iter().all(|v| v.is_finite()));
    let lw = run.log_weights(s.x.view()).unwrap();
    let worst = lw
        .iter()
        .zip(&s.log_weights)
        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
        .fold(0.0f64, f64::max);
    // The forward pass drew in f32, the inverse pass scores in f32: they agree to f32 accuracy.
    assert!(worst < 1e-3, "{worst}");
    // Bond lengths of generated molecules stay physical (0.09–0.17 nm for every bond).
    for row in s.x.outer_iter() {
        for &[i, j] in ff.bonds() {
            let d: f64 = (0..3)
                .map(|k| (row[3 * i + k] - row[3 * j + k]).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(d > 0.08 && d < 0.18, "bond {i}-{j}: {d} nm");
        }
    }
    let ev = run.evaluate(&BgEvaluateOptions::default()).unwrap();
    let ess = ev.number("ess_fraction").unwrap();
    assert!(ess > 0.0 && ess <= 1.0, "{ess}");
    assert!(ev.number("nll").unwrap().is_finite());
    assert_eq!(ev.x.ncols(), 66);
    // Ramachandran basins of residue 2: reweighted (with errors), raw, and of the MD data, each
    // summing to one; the short MD stays in C7eq and C5.
    let basins = ["c7eq", "c5", "alphar", "alphal_c7ax"];
    for suffix in ["", "_unweighted", "_data"] {
        let total: f64 = basins
            .iter()
            .map(|b| ev.number(&format!("population_{b}{suffix}")).unwrap())
            .sum();
        assert!((total - 1.0).abs() < 1e-9, "{suffix}: {total}");
    }
    let ais_total: f64 = basins
        .iter()
        .map(|b| ev.number(&format!("ais_population_{b}")).unwrap())
        .sum();
    assert!(
        (ais_total - 1.0).abs() < 1e-9,
        "AIS populations: {ais_total}"
    );
    let ais_ess = ev.number("ais_ess_fraction").unwrap();
    assert!(ais_ess > 0.0 && ais_ess <= 1.0, "{ais_ess}");
    assert!(ev.number("ais_ln_z").unwrap().is_finite());
    assert_eq!(
        ev.number("ais_energy_evaluations").unwrap(),
        200.0 * (1.0 + 5.0 * 5.0)
    );
    let md = |b: &str| ev.number(&format!("population_{b}_data")).unwrap();
    assert!(md("c7eq") + md("c5") > 0.95, "{}", md("c7eq") + md("c5"));
    assert!(ev.number("population_c7eq_std_error").unwrap() >= 0.0);
    // Distances from the MD: the φ/ψ histogram's KL and the energies' 2-Wasserstein distance;
    // the held-out NLL per internal degree of freedom.
    for key in [
        "phi_psi_kl",
        "phi_psi_kl_unweighted",
        "phi_psi_w2",
        "phi_psi_w2_unweighted",
        "energy_w2",
    ] {
        let v = ev.number(key).unwrap();
        assert!(v.is_finite() && v >= 0.0, "{key} {v}");
    }
    let per_dof = ev.number("nll_per_dof").unwrap();
    assert!((per_dof * 60.0 - ev.number("nll").unwrap()).abs() < 1e-9);
    // Mirror images of the α carbon are counted (and left out of the populations).
    let d = ev.number("d_fraction").unwrap();
    assert!((0.0..=1.0).contains(&d), "{d}");

    // Killed after 2 epochs and resumed: the same parameters as the uninterrupted run.
    let cut = tmp.path().join("cut");
    train(
        cut.clone(),
        config(&data, ""),
        Some(2),
        StartMode::default(),
    );
    train(cut.clone(), config(&data, ""), None, StartMode::Resume);
    // Parameters and Adam moments: the tensor data after the safetensors header (the header's
    // metadata map has no fixed key order).
    let tensors = |d: &Path| {
        let b = std::fs::read(d.join("checkpoint.safetensors")).unwrap();
        let header = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
        b[8 + header..].to_vec()
    };
    assert!(
        tensors(&cut) == tensors(&tmp.path().join("run")),
        "the resumed parameters differ from the uninterrupted run's"
    );

    // --force over a finished run with other data refits the statistics to the new data.
    let stats = |d: &Path| std::fs::read_to_string(d.join("internal_coordinates.json")).unwrap();
    let before = stats(&cut);
    let half = tmp.path().join("half.npy");
    let x = boltzflow_io::read_npy_2d(&data).unwrap();
    boltzflow_io::write_npy_2d(&half, x.slice(ndarray::s![..x.nrows() / 2, ..])).unwrap();
    let mut cfg = config(&half, "");
    cfg.train.steps_per_epoch = 1;
    train(cut.clone(), cfg, Some(1), StartMode::Force);
    assert_ne!(stats(&cut), before, "stale statistics after --force");
}

#[test]
fn internal_coordinates_name_what_they_need() {
    let err = |text: &str| match BgConfig::from_toml(text).and_then(|c| BgRun::new("r".into(), c)) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    let toy = "[system]\nspec = \"mueller\"\n[data]\nfile = \"x.npy\"\n[flow]\ncoordinates = \"internal\"\n[[stage]]\nname = \"ml\"\nepochs = 1\nlr = 1e-3\nw_ml = 1.0\n";
    let e = err(toy);
    assert!(
        e.contains("flow.coordinates") && e.contains("molecule"),
        "{e}"
    );
    let no_data = format!(
        "[system]\nspec = \"openmm:{}\"\n[flow]\ncoordinates = \"internal\"\n[[stage]]\nname = \"kl\"\nepochs = 1\nlr = 1e-3\nw_kl = 1.0\n",
        data_dir().join("ala2_system.xml").display()
    );
    let e = err(&no_data);
    assert!(
        e.contains("flow.coordinates") && e.contains("[data]"),
        "{e}"
    );
    let e = err(&toy.replace("internal", "polar"));
    assert!(e.contains("coordinates") && e.contains("polar"), "{e}");
}

#[test]
fn every_bg_example_is_a_valid_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut seen = 0;
    for entry in std::fs::read_dir(root.join("examples")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with("_bg.toml") {
            continue;
        }
        // Paths in the examples are relative to the repository root.
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"data/", &format!("\"{}/data/", root.display()))
            .replace(
                "\"openmm:data/",
                &format!("\"openmm:{}/data/", root.display()),
            )
            .replace("\"examples/", &format!("\"{}/examples/", root.display()));
        let cfg = BgConfig::from_toml(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        BgRun::new("unused".into(), cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
        seen += 1;
    }
    assert!(seen >= 5, "{seen} examples");
}
