//! Variational autoregressive networks from the command line: F against exact enumeration and
//! Kaufman's lattice formula, metrics.json as the issue specifies it, resuming to bit-identical
//! parameters, thread independence, and clear errors for bad input.

mod common;
use common::*;

use std::path::Path;

fn config(system: &str, network: &str, betas: &str, steps: usize) -> String {
    format!(
        "model = \"van\"\nseed = 3\n[system]\nspec = \"{system}\"\n[network]\n{network}\n[train]\nbetas = {betas}\nsteps = {steps}\nbatch_size = 400\nlr = 2e-3\nanneal = 0.99\ncheckpoint_every = 50\nlog_every = 10\nchunk_rows = 64\n[evaluate]\nn_samples = 20000\n"
    )
}

const MADE: &str = "type = \"made\"\ndepth = 2\nwidth = 32\nz2 = true";

fn results(dir: &Path) -> Vec<serde_json::Value> {
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap();
    m["results"].as_array().unwrap().clone()
}

#[test]
fn sk_free_energies_match_exact_enumeration_and_beat_mean_field() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("sk.toml"),
        config("sk:n=14,seed=5", MADE, "[0.5, 1.5]", 600),
    )
    .unwrap();
    let o = boltzflow(&["train", "sk.toml", "--out", "run", "--quiet"], d.path());
    assert!(o.status.success(), "{}", text(&o));
    let o = boltzflow(&["evaluate", "run"], d.path());
    assert!(o.status.success(), "{}", text(&o));
    println!("{}", text(&o));
    assert!(text(&o).contains("exact enumeration of 2^14 states"));
    for r in results(&d.path().join("run")) {
        let get = |k: &str| {
            r[k].as_f64()
                .unwrap_or_else(|| panic!("metrics.json lacks {k}: {r}"))
        };
        let (f, se, exact, rel) = (
            get("f_per_spin"),
            get("f_per_spin_stderr"),
            get("f_exact_per_spin"),
            get("rel_error"),
        );
        for k in [
            "beta",
            "energy_per_spin",
            "entropy_per_spin",
            "energy_exact_per_spin",
            "entropy_exact_per_spin",
        ] {
            get(k);
        }
        // F_q is an upper bound (within sampling error) and close to F; mean field is worse.
        assert!(
            f > exact - 5.0 * se,
            "β={}: F_q {f} below F {exact} by more than 5 s.e. {se}",
            get("beta")
        );
        assert!(rel < 2e-3, "β={}: relative error {rel}", get("beta"));
        assert!(get("rel_error_mean_field") > rel);
        assert!((rel - (f - exact).abs() / exact.abs()).abs() < 1e-12);
    }
    // Couplings are saved; sampling writes ±1 spins and log-weights.
    assert!(d.path().join("run/couplings.npy").exists());
    let o = boltzflow(
        &[
            "sample",
            "run",
            "--n",
            "7",
            "--out",
            "s.npy",
            "--log-weights",
            "w.npy",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let s = boltzflow_io::read_npy_2d(&d.path().join("s.npy")).unwrap();
    assert_eq!(s.shape(), &[7, 14]);
    assert!(s.iter().all(|v| v.abs() == 1.0));
    let o = boltzflow(&["report", "run"], d.path());
    assert!(o.status.success(), "{}", text(&o));
    for f in ["index.html", "free_energy_error.png", "training.png"] {
        assert!(d.path().join("run/report").join(f).exists(), "{f}");
    }
}

#[test]
fn an_ising_lattice_is_compared_with_kaufmans_exact_result() {
    let d = tempfile::tempdir().unwrap();
    let net = "type = \"pixelcnn\"\ndepth = 2\nwidth = 8\nhalf_kernel = 2\nz2 = true";
    std::fs::write(
        d.path().join("is.toml"),
        config("ising:L=4", net, "[0.44]", 300).replace("anneal = 0.99", "anneal = 0.98"),
    )
    .unwrap();
    let o = boltzflow(&["train", "is.toml", "--out", "run", "--quiet"], d.path());
    assert!(o.status.success(), "{}", text(&o));
    let o = boltzflow(&["evaluate", "run", "--n-samples", "5000"], d.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Kaufman"), "{}", text(&o));
    let r = &results(&d.path().join("run"))[0];
    // ln Z of the 4 × 4 torus at β = 0.44 (Kaufman's formula; tested against enumeration).
    let exact = r["f_exact_per_spin"].as_f64().unwrap();
    assert!((exact - -2.202_376).abs() < 1e-5, "{exact}");
    let rel = r["rel_error"].as_f64().unwrap();
    println!("4 × 4 Ising, β = 0.44: relative error of F_q {rel:.2e}");
    assert!(rel < 1e-2, "relative error {rel}");
    let o = boltzflow(&["report", "run"], d.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(d.path().join("run/report/samples.png").exists());
}

#[test]
fn a_resumed_run_ends_with_the_same_parameters_and_threads_do_not_matter() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("sk.toml"),
        config("sk:n=10,seed=1", MADE, "[0.5, 1.0]", 120),
    )
    .unwrap();
    // Killed inside the first β (after a checkpoint at step 50, before the next), and again
    // inside the second one.
    check_resume_and_threads(d.path(), "sk.toml", &["70", "190"]);
    // A changed configuration cannot be resumed into the run, nor a run overwritten.
    let o = boltzflow(
        &[
            "train",
            "sk.toml",
            "--out",
            "cut",
            "--resume",
            "--system",
            "sk:n=10,seed=2",
        ],
        d.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("configuration differs"), "{}", text(&o));
    let o = boltzflow(&["train", "sk.toml", "--out", "cut"], d.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn bad_input_names_what_to_change() {
    let d = tempfile::tempdir().unwrap();
    let cases: Vec<(String, &str)> = vec![
        (
            config(
                "sk:n=10",
                "type = \"pixelcnn\"\ndepth = 2\nwidth = 4",
                "[1.0]",
                10,
            ),
            "network.type",
        ),
        (config("sk:n=10", MADE, "[0.0]", 10), "train.betas"),
        (config("ising:L=1", MADE, "[1.0]", 10), "from 2 to 64"),
        (config("ising:L=1000", MADE, "[1.0]", 10), "from 2 to 64"),
        (
            config("sk:n=10,size=3", MADE, "[1.0]", 10),
            "no parameter `size`",
        ),
        (
            config("potts:q=3", MADE, "[1.0]", 10),
            "unknown spin system",
        ),
        (
            config("couplings:J.npy", MADE, "[1.0]", 10),
            "not symmetric",
        ),
        (
            config("sk:n=10", MADE, "[1.0]", 10)
                .replace("lr = 2e-3", "lr = 2e-3\nlearning_rate = 1"),
            "learning_rate",
        ),
    ];
    let j = ndarray::array![[0.0, 1.0, 0.0], [0.5, 0.0, 1.0], [0.0, 1.0, 0.0]];
    boltzflow_io::write_npy_2d(&d.path().join("J.npy"), j.view()).unwrap();
    for (cfg, expect) in cases {
        std::fs::write(d.path().join("bad.toml"), &cfg).unwrap();
        let o = boltzflow(&["train", "bad.toml", "--out", "bad", "--quiet"], d.path());
        assert_eq!(o.status.code(), Some(2), "{expect}: {}", text(&o));
        assert!(
            text(&o).contains(expect),
            "expected `{expect}` in: {}",
            text(&o)
        );
        assert!(!text(&o).contains("panicked"));
    }
}

#[test]
fn a_van_run_killed_at_random_points_resumes_bit_identically() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("sk.toml"),
        config("sk:n=10,seed=1", MADE, "[0.5, 1.0]", 200),
    )
    .unwrap();
    check_kill_and_resume(d.path(), "sk.toml", 13);
}

#[test]
fn a_diverging_van_stops_with_the_step() {
    // Couplings of 1e308 overflow the energy to +∞ in the first step.
    let d = tempfile::tempdir().unwrap();
    let mut j = ndarray::Array2::from_elem((8, 8), 1e308);
    j.diag_mut().fill(0.0);
    boltzflow_io::write_npy_2d(&d.path().join("J.npy"), j.view()).unwrap();
    std::fs::write(
        d.path().join("j.toml"),
        config("couplings:J.npy", MADE, "[1.0]", 100),
    )
    .unwrap();
    let o = boltzflow(&["train", "j.toml", "--out", "run", "--quiet"], d.path());
    let msg = text(&o);
    assert_eq!(o.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains("non-finite") && msg.contains("training step 0") && msg.contains("inf"),
        "{msg}"
    );
    assert!(msg.contains("last good checkpoint"), "{msg}");
}
