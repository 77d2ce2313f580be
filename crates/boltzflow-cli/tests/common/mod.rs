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
