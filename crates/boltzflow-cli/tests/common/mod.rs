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
