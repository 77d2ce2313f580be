//! The command line as a user drives it: outputs, and exit status 2 with a clear message for
//! bad input (issue 3: unknown system, wrong width, NaN/inf input, unwritable output).

mod common;
use common::*;

use std::path::Path;

use ndarray::array;

fn write(dir: &Path, name: &str, a: ndarray::Array2<f64>) -> String {
    boltzflow_io::write_npy_2d(&dir.join(name), a.view()).unwrap();
    name.to_string()
}

#[test]
fn systems_lists_every_system_with_parameters() {
    let d = tempfile::tempdir().unwrap();
    let o = boltzflow(&["systems"], d.path());
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    for s in boltzflow_systems::catalog() {
        assert!(out.contains(s.name), "{out}");
    }
    assert!(out.contains("slope=-0.5"));
}

#[test]
fn energy_writes_energies_and_forces_equal_to_the_library() {
    let d = tempfile::tempdir().unwrap();
    let x = array![[0.0, 0.0], [-0.558, 1.442]];
    write(d.path(), "x.npy", x.clone());
    let o = boltzflow(
        &[
            "energy", "--system", "mueller", "--coords", "x.npy", "--out", "e.npy", "--forces",
            "f.npy",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let e = boltzflow_io::read_npy_1d(&d.path().join("e.npy")).unwrap();
    let f = boltzflow_io::read_npy_2d(&d.path().join("f.npy")).unwrap();
    let sys = boltzflow_systems::build("mueller").unwrap();
    let (e_ref, f_ref) = sys.energy_and_forces(x.view()).unwrap();
    assert_eq!(e, e_ref);
    assert_eq!(f, f_ref);
}

#[test]
fn bad_input_exits_with_status_2_and_says_what_to_change() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "x3.npy", array![[0.0, 0.0, 1.0]]);
    write(d.path(), "nan.npy", array![[0.0, 0.0], [f64::NAN, 1.0]]);
    write(d.path(), "inf.npy", array![[0.0, f64::INFINITY]]);
    write(d.path(), "ok.npy", array![[0.0, 0.0]]);
    let cases: [(&[&str], &[&str]); 6] = [
        (
            &[
                "energy", "--system", "muller", "--coords", "ok.npy", "--out", "e.npy",
            ],
            &["unknown system `muller`", "mueller"],
        ),
        (
            &[
                "energy",
                "--system",
                "mueller:q=1",
                "--coords",
                "ok.npy",
                "--out",
                "e.npy",
            ],
            &["no parameter `q`", "accepted: k"],
        ),
        (
            &[
                "energy", "--system", "mueller", "--coords", "x3.npy", "--out", "e.npy",
            ],
            &["x3.npy", "expected [n, 2]", "[1, 3]"],
        ),
        (
            &[
                "energy", "--system", "mueller", "--coords", "nan.npy", "--out", "e.npy",
            ],
            &["non-finite", "nan.npy", "row 1, column 0"],
        ),
        (
            &[
                "energy", "--system", "mueller", "--coords", "inf.npy", "--out", "e.npy",
            ],
            &["non-finite", "row 0, column 1"],
        ),
        (
            &[
                "energy",
                "--system",
                "mueller",
                "--coords",
                "ok.npy",
                "--out",
                "no/such/dir/e.npy",
            ],
            &["cannot write", "no/such/dir/e.npy"],
        ),
    ];
    for (args, needles) in cases {
        let o = boltzflow(args, d.path());
        let msg = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {msg}");
        for n in needles {
            assert!(msg.contains(n), "{args:?}: `{n}` not in {msg}");
        }
        assert!(
            msg.starts_with("error: ") && msg.trim_end().lines().count() == 1,
            "one paragraph: {msg}"
        );
    }
    // simulate checks its output path before running.
    let o = boltzflow(
        &[
            "simulate",
            "--system",
            "mueller",
            "--chains",
            "4",
            "--steps",
            "10",
            "--burn-in",
            "0",
            "--stride",
            "5",
            "--out",
            "nope/x.npy",
        ],
        d.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot write"));
    // A protocol that saves nothing.
    let o = boltzflow(
        &[
            "simulate",
            "--system",
            "mueller",
            "--steps",
            "10",
            "--burn-in",
            "10",
            "--out",
            "x.npy",
        ],
        d.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("save no frame"), "{}", stderr(&o));
}

#[test]
fn simulate_is_reproducible_and_writes_what_it_says() {
    let d = tempfile::tempdir().unwrap();
    let args = |out: &str, sum: &str| -> Vec<String> {
        [
            "simulate",
            "--system",
            "double-well",
            "--chains",
            "64",
            "--steps",
            "400",
            "--burn-in",
            "200",
            "--stride",
            "50",
            "--step-size",
            "0.3",
            "--seed",
            "4",
            "--quiet",
            "--out",
            out,
            "--summary",
            sum,
            "--energies",
            "e.npy",
        ]
        .iter()
        .map(ToString::to_string)
        .collect()
    };
    for (out, sum) in [("a.npy", "a.json"), ("b.npy", "b.json")] {
        let a: Vec<String> = args(out, sum);
        let o = boltzflow(&a.iter().map(String::as_str).collect::<Vec<_>>(), d.path());
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let a = boltzflow_io::read_npy_2d(&d.path().join("a.npy")).unwrap();
    let b = boltzflow_io::read_npy_2d(&d.path().join("b.npy")).unwrap();
    assert_eq!(a.dim(), (4 * 64, 2));
    assert_eq!(a, b);
    let summary = std::fs::read_to_string(d.path().join("a.json")).unwrap();
    assert!(
        summary.contains("\"acceptance\"") && summary.contains("\"basins\""),
        "{summary}"
    );
    assert_eq!(
        boltzflow_io::read_npy_1d(&d.path().join("e.npy"))
            .unwrap()
            .len(),
        4 * 64
    );
    // Langevin and the exact initialisation run too.
    let o = boltzflow(
        &[
            "simulate",
            "--system",
            "bimodal2d",
            "--sampler",
            "langevin",
            "--init",
            "exact",
            "--chains",
            "8",
            "--steps",
            "100",
            "--burn-in",
            "0",
            "--stride",
            "50",
            "--step-size",
            "0.05",
            "--quiet",
            "--out",
            "l.npy",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A start file with fewer rows than chains: each row starts chains/m consecutive chains;
/// a count that is not a multiple is refused with the file named.
#[test]
fn simulate_tiles_a_start_file_over_the_chains() {
    let d = tempfile::tempdir().unwrap();
    let x0 = ndarray::array![[-1.0, 0.5], [1.0, -0.5]];
    boltzflow_io::write_npy_2d(&d.path().join("x0.npy"), x0.view()).unwrap();
    let run = |chains: &str| {
        boltzflow(
            &[
                "simulate",
                "--system",
                "double-well",
                "--sampler",
                "metropolis",
                "--init",
                "x0.npy",
                "--chains",
                chains,
                "--steps",
                "1",
                "--burn-in",
                "0",
                "--stride",
                "1",
                "--step-size",
                "1e-9",
                "--quiet",
                "--out",
                "x.npy",
            ],
            d.path(),
        )
    };
    let o = run("6");
    assert!(o.status.success(), "{}", stderr(&o));
    let x = boltzflow_io::read_npy_2d(&d.path().join("x.npy")).unwrap();
    assert_eq!(x.dim(), (6, 2));
    for c in 0..6 {
        let row = x0.row(c / 3);
        assert!((x[[c, 0]] - row[0]).abs() < 1e-6 && (x[[c, 1]] - row[1]).abs() < 1e-6);
    }
    let o = run("5");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("x0.npy") && stderr(&o).contains("multiple"),
        "{}",
        stderr(&o)
    );
}
