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

/// Starts `boltzflow ARGS --resume --quiet` in `dir` again and again, killing it with SIGKILL
/// after a seeded random delay in [`max_ms`/10, `max_ms`/10 + `max_ms`/2) ms (`max_ms`: the time
/// of an uninterrupted run), up to `kills` times or until it finishes, then runs it to the end. Returns how many runs were killed. Where a kill lands (in a
/// step, between two writes, inside an atomic write) depends on the machine's speed; the final
/// result must not.
pub fn kill_and_finish(args: &[&str], dir: &Path, max_ms: u64, kills: usize, seed: u64) -> usize {
    use std::process::Stdio;
    let mut state = seed | 1;
    let mut killed = 0;
    for _ in 0..kills {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // Within the first half of what an uninterrupted run takes: the first attempt (a
        // fresh run) is always killed, later ones (resumed, with less left) may finish.
        let delay = max_ms / 10 + state % (max_ms / 2).max(1);
        let mut child = Command::new(env!("CARGO_BIN_EXE_boltzflow"))
            .args(args)
            .args(["--resume", "--quiet"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "{args:?} failed on its own: {status}");
                break;
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                killed += 1;
            }
        }
    }
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["--resume", "--quiet"]);
    let o = boltzflow(&full, dir);
    assert!(o.status.success(), "{}", text(&o));
    killed
}

/// The lines of a metrics.csv without the last column (wall-clock seconds).
pub fn csv_without_seconds(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').map_or(l, |(head, _)| head).to_string())
        .collect()
}

/// Asserts that no temporary file of an atomic write is left anywhere under `dir`.
pub fn no_temporaries(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            !(name.starts_with(".boltzflow-")
                && (name.ends_with(".tmp") || name.ends_with(".tmp.png"))),
            "temporary left behind: {}",
            entry.path().display()
        );
        if entry.file_type().unwrap().is_dir() {
            no_temporaries(&entry.path());
        }
    }
}

/// Trains `config` uninterrupted into `full` (timing it), then into `killed` through
/// [`kill_and_finish`]; asserts bit-identical checkpoints, the same metrics.csv but for its
/// seconds column, and no temporaries left. Returns the number of kills.
pub fn check_kill_and_resume(d: &Path, config: &str, seed: u64) -> usize {
    let t = std::time::Instant::now();
    let o = boltzflow(&["train", config, "--out", "full", "--quiet"], d);
    assert!(o.status.success(), "{}", text(&o));
    let ms = t.elapsed().as_millis() as u64;
    let killed = kill_and_finish(&["train", config, "--out", "killed"], d, ms, 6, seed);
    assert!(killed > 0, "no run was killed (the full run took {ms} ms)");
    same_tensors(d, "full", "killed");
    assert_eq!(
        csv_without_seconds(&d.join("full/metrics.csv")),
        csv_without_seconds(&d.join("killed/metrics.csv"))
    );
    no_temporaries(&d.join("killed"));
    killed
}
