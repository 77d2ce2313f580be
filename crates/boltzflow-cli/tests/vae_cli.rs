//! VAEs from the command line: the β protocol and its metrics on `gaussian2d` (at β = 0 the
//! model memorises and VAE moves are almost never accepted, at β ≥ 1 the latent goes unused and
//! f_acc is high), a sweep's metrics.csv and figures, resuming to bit-identical parameters, and
//! clear errors for bad input.

mod common;
use common::*;

use std::path::Path;

fn config(system: &str, decoder: &str, betas: &str, epochs: usize) -> String {
    format!(
        "model = \"vae\"\nseed = 2\n[system]\nspec = \"{system}\"\n[data]\nexact = 6000\n[vae]\ndecoder = \"{decoder}\"\n[train]\nbetas = {betas}\nepochs = {epochs}\nanneal_epochs = 2\nlr = 2e-3\n[evaluate]\nn_encode = 3000\nmc_walkers = 400\nmc_steps = 40\n"
    )
}

fn stages(dir: &Path) -> Vec<serde_json::Value> {
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap();
    m["stages"].as_array().unwrap().clone()
}

#[test]
fn gaussian2d_memorises_at_beta_zero_and_leaves_the_latent_unused_at_beta_one() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("g.toml"),
        config("gaussian2d", "cond-indep", "[0, 1, 2]", 12),
    )
    .unwrap();
    let o = boltzflow(&["train", "g.toml", "--out", "run", "--quiet"], d.path());
    assert!(o.status.success(), "{}", text(&o));
    let o = boltzflow(&["evaluate", "run"], d.path());
    assert!(o.status.success(), "{}", text(&o));
    println!("{}", text(&o));
    let s = stages(&d.path().join("run"));
    assert_eq!(s.len(), 3);
    for key in [
        "loss_recon",
        "loss_kl",
        "jd_encode",
        "jd_encode_per_dim",
        "jd_prior",
        "total_correlation",
        "active_dims",
        "f_acc",
    ] {
        assert!(s[0].get(key).is_some(), "metrics.json lacks {key}");
    }
    let f = |i: usize, k: &str| s[i][k].as_f64().unwrap();
    // β = 0: memorised (huge JD_encode), VAE proposals almost never accepted.
    assert!(f(0, "jd_encode") > 100.0, "{}", f(0, "jd_encode"));
    assert!(f(0, "f_acc") < 0.2, "{}", f(0, "f_acc"));
    // β ≥ 1: the optimum ignores z, reconstruction ≈ the entropy ln(2πe) = 2.838, f_acc high.
    let entropy = (2.0 * std::f64::consts::PI * std::f64::consts::E).ln();
    for i in 1..3 {
        assert!(f(i, "f_acc") > 0.6, "stage {i}: f_acc {}", f(i, "f_acc"));
        assert!(f(i, "jd_encode") < 1.0, "stage {i}: {}", f(i, "jd_encode"));
        assert!(
            (f(i, "loss_recon") + f(i, "loss_kl") - entropy).abs() < 0.1,
            "stage {i}: ELBO {} vs {entropy}",
            f(i, "loss_recon") + f(i, "loss_kl")
        );
    }
    assert_eq!(s[2]["active_dims"].as_u64(), Some(0));
    let o = boltzflow(&["report", "run"], d.path());
    assert!(o.status.success(), "{}", text(&o));
    for fig in [
        "training.png",
        "latent.png",
        "data_by_latent.png",
        "reconstructions.png",
    ] {
        assert!(d.path().join("run/report").join(fig).exists(), "{fig}");
    }
    let o = boltzflow(&["sample", "run", "--n", "500", "--out", "x.npy"], d.path());
    assert!(o.status.success(), "{}", text(&o));
    let x = boltzflow_io::read_npy_2d(&d.path().join("x.npy")).unwrap();
    assert_eq!(x.shape(), &[500, 2]);
}

#[test]
fn a_sweep_writes_one_row_per_model_and_the_figures() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config("bimodal2d", "mse", "[0, 1]", 3)
        + "[sweep]\ndecoders = [\"mse\", \"flow\"]\nreplicates = 2\nlatent_dims = [1]\n";
    std::fs::write(d.path().join("s.toml"), cfg).unwrap();
    let o = boltzflow(&["sweep", "s.toml", "--out", "sw"], d.path());
    assert!(o.status.success(), "{}", text(&o));
    let csv = std::fs::read_to_string(d.path().join("sw/metrics.csv")).unwrap();
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with(
        "decoder,beta,replicate,latent_dim,loss_recon,loss_kl,jd_encode,jd_prior,total_correlation,active_dims,f_acc"
    ));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    // 2 decoders × 2 replicates × 2 β.
    assert_eq!(rows.len(), 8, "{csv}");
    for dec in ["mse", "flow"] {
        for beta in ["0", "1"] {
            assert_eq!(
                rows.iter().filter(|r| r[0] == dec && r[1] == beta).count(),
                2,
                "{dec} β={beta}"
            );
        }
    }
    for fig in [
        "fig2b_latent_k1.png",
        "fig2c_data_by_latent_k1.png",
        "fig2d_reconstructions_k1.png",
        "fig3_metrics_k1.png",
        "index.html",
    ] {
        assert!(d.path().join("sw").join(fig).exists(), "{fig}");
    }
    // Each model is a run directory of its own.
    assert!(d.path().join("sw/runs/flow-k1-r1/metrics.json").exists());
    // A finished sweep is not overwritten; --resume keeps the finished runs.
    let o = boltzflow(&["sweep", "s.toml", "--out", "sw"], d.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = boltzflow(&["sweep", "s.toml", "--out", "sw", "--resume"], d.path());
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(d.path().join("sw/metrics.csv")).unwrap(),
        csv
    );
}

#[test]
fn a_resumed_vae_run_ends_with_the_same_parameters() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("v.toml"),
        config("bimodal2d", "autoregressive", "[0, 1, 2]", 3),
    )
    .unwrap();
    // Killed inside the first stage, then inside the third.
    check_resume_and_threads(d.path(), "v.toml", &["2", "7"]);
}

#[test]
fn bad_vae_input_names_what_to_change() {
    let d = tempfile::tempdir().unwrap();
    let good = config("gaussian2d", "flow", "[0, 1]", 2);
    let cases: Vec<(String, &str)> = vec![
        (good.replace("\"flow\"", "\"maf\""), "vae.decoder"),
        (good.replace("exact = 6000", "exact = 1"), "data.exact"),
        (
            good.replace("exact = 6000", "exact = 6000\nfile = \"x.npy\""),
            "exactly one",
        ),
        (good.replace("[0, 1]", "[0, -1]"), "train.betas"),
        (
            good.replace("anneal_epochs = 2", "anneal_epochs = 9"),
            "anneal_epochs",
        ),
        (
            good.replace("gaussian2d", "double-well"),
            "no exact sampler",
        ),
        (good.replace("lr = 2e-3", "lr = 0"), "train.lr"),
    ];
    for (i, (cfg, needle)) in cases.iter().enumerate() {
        let name = format!("bad{i}.toml");
        std::fs::write(d.path().join(&name), cfg).unwrap();
        let o = boltzflow(&["train", &name, "--out", &format!("r{i}")], d.path());
        assert_eq!(o.status.code(), Some(2), "case {i}: {}", text(&o));
        assert!(stderr(&o).contains(needle), "case {i}: {}", stderr(&o));
    }
    // A sweep needs a [sweep] table.
    std::fs::write(d.path().join("nosweep.toml"), &good).unwrap();
    let o = boltzflow(&["sweep", "nosweep.toml", "--out", "sw"], d.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(stderr(&o).contains("[sweep]"), "{}", stderr(&o));
}

#[test]
fn export_plumed_names_what_it_needs() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("g.toml"),
        config("gaussian2d", "mse", "[1]", 2),
    )
    .unwrap();
    let o = boltzflow(&["train", "g.toml", "--out", "run", "--quiet"], d.path());
    assert!(o.status.success(), "{}", text(&o));
    // A toy system's VAE has no molecule to write PLUMED actions for.
    let o = boltzflow(&["export-plumed", "run", "--out", "p.dat"], d.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        stderr(&o).contains("internal coordinates"),
        "{}",
        stderr(&o)
    );
    assert!(!d.path().join("p.dat").exists());
    // Not a VAE run at all.
    let o = boltzflow(&["export-plumed", ".", "--out", "p.dat"], d.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(stderr(&o).contains("not a VAE run"), "{}", stderr(&o));
}

#[test]
fn every_vae_example_is_a_valid_configuration() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("vae_") && name.ends_with(".toml") {
            let cfg = boltzflow_learn::vae::config::VaeConfig::from_file(&path)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(cfg.sweep.is_some(), name.ends_with("_sweep.toml"), "{name}");
            n += 1;
        }
    }
    // mueller (single run and sweep), the five exact-sample sweeps, the three alanine
    // dipeptide representations in vacuum and in OBC, and the constrained molecule's BAT.
    assert_eq!(n, 14);
}

#[test]
fn a_vae_run_killed_at_random_points_resumes_bit_identically() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("v.toml"),
        config("bimodal2d", "autoregressive", "[0, 1, 2]", 4),
    )
    .unwrap();
    check_kill_and_resume(d.path(), "v.toml", 5);
}

#[test]
fn a_sweep_killed_at_random_points_resumes_to_the_same_models() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config("bimodal2d", "mse", "[0, 1]", 3)
        + "[sweep]\ndecoders = [\"mse\", \"cond-indep\"]\nreplicates = 2\nlatent_dims = [1]\n";
    std::fs::write(d.path().join("s.toml"), cfg).unwrap();
    let t = std::time::Instant::now();
    let o = boltzflow(&["sweep", "s.toml", "--out", "full", "--quiet"], d.path());
    assert!(o.status.success(), "{}", text(&o));
    let ms = t.elapsed().as_millis() as u64;
    let killed = kill_and_finish(&["sweep", "s.toml", "--out", "killed"], d.path(), ms, 6, 9);
    assert!(
        killed > 0,
        "no sweep was killed (the full one took {ms} ms)"
    );
    assert_eq!(
        std::fs::read_to_string(d.path().join("full/metrics.csv")).unwrap(),
        std::fs::read_to_string(d.path().join("killed/metrics.csv")).unwrap()
    );
    for unit in [
        "mse-k1-r0",
        "mse-k1-r1",
        "cond-indep-k1-r0",
        "cond-indep-k1-r1",
    ] {
        same_tensors(
            d.path(),
            &format!("full/runs/{unit}"),
            &format!("killed/runs/{unit}"),
        );
    }
    no_temporaries(&d.path().join("killed"));
    // A finished sweep is refused without --resume or --force; --force starts it over.
    let o = boltzflow(&["sweep", "s.toml", "--out", "killed", "--quiet"], d.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--force"), "{}", text(&o));
}

#[test]
fn a_diverging_vae_stops_with_the_stage_epoch_and_step() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config("gaussian2d", "cond-indep", "[0, 1]", 3).replace("lr = 2e-3", "lr = 1e30");
    std::fs::write(d.path().join("v.toml"), cfg).unwrap();
    let o = boltzflow(&["train", "v.toml", "--out", "run", "--quiet"], d.path());
    let msg = text(&o);
    assert_eq!(o.status.code(), Some(2), "{msg}");
    assert!(msg.contains("non-finite") && msg.contains("step"), "{msg}");
    assert!(msg.contains("last good checkpoint"), "{msg}");
}
