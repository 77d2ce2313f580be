//! Helpers shared by the command-line tests: run the binary in a directory, read its output.
#![allow(dead_code)] // each test file uses a subset

use std::path::Path;
use std::process::{Command, Output};

/// Runs `boltzflow ARGS` in `dir`.
pub fn boltzflow(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_boltzflow"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// Standard output and error together.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Standard error.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts that the checkpoints of run directories `a` and `b` under `d` are bit-identical.
pub fn same_tensors(d: &Path, a: &str, b: &str) {
    let read = |p: &str| {
        boltzflow_nn::TensorFile::<f32>::read(&d.join(p).join("checkpoint.safetensors")).unwrap()
    };
    let (a, b) = (read(a), read(b));
    assert_eq!(a.tensors.len(), b.tensors.len());
    for (ta, tb) in a.tensors.iter().zip(&b.tensors) {
        assert_eq!(ta.name, tb.name);
        assert!(
            ta.data
                .iter()
                .zip(&tb.data)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "tensor {} differs",
            ta.name
        );
    }
    assert_eq!(a.metadata, b.metadata);
}

/// Trains `config` (in `d`) into `full`; then into `cut`, stopped after each of `stops` (steps or
/// epochs in total, as a killed run would be; resuming from the second on) and finished with
/// `--resume`; and into `one` on one thread. Asserts that all three end bit-identical.
pub fn check_resume_and_threads(d: &Path, config: &str, stops: &[&str]) {
    let o = boltzflow(&["train", config, "--out", "full", "--quiet"], d);
    assert!(o.status.success(), "{}", text(&o));
    for (i, stop) in stops.iter().enumerate() {
        let mut args = vec![
            "train",
            config,
            "--out",
            "cut",
            "--quiet",
            "--stop-after",
            stop,
        ];
        if i > 0 {
            args.push("--resume");
        }
        let o = boltzflow(&args, d);
        assert!(o.status.success(), "{}", text(&o));
    }
    let o = boltzflow(&["train", config, "--out", "cut", "--resume"], d);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("resuming"), "{}", text(&o));
    same_tensors(d, "full", "cut");
    // metrics.csv too, but for its last column (wall-clock seconds).
    let strip = |p: &str| -> Vec<String> {
        std::fs::read_to_string(d.join(p))
            .unwrap()
            .lines()
            .map(|l| l.rsplit_once(',').map_or(l, |(head, _)| head).to_string())
            .collect()
    };
    assert_eq!(strip("full/metrics.csv"), strip("cut/metrics.csv"));
    let o = Command::new(env!("CARGO_BIN_EXE_boltzflow"))
        .args(["train", config, "--out", "one", "--quiet"])
        .env("RAYON_NUM_THREADS", "1")
        .current_dir(d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    same_tensors(d, "full", "one");
}
