//! `boltzflow kinetics …` end to end on the deeptime fixture trajectory, and its bad-input
//! messages (issue 7): constant features, disconnected states, lag times longer than a
//! trajectory.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn boltzflow(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_boltzflow"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts/fixtures/kinetics/double_well_traj.npy")
}

fn split_trajs(dir: &Path) {
    let raw = boltzflow_io::read_npy_2d(&fixture()).unwrap();
    for c in 0..2 {
        let t = raw.slice(ndarray::s![c..;2, ..]).to_owned();
        boltzflow_io::write_npy_2d(&dir.join(format!("t{c}.npy")), t.view()).unwrap();
    }
}

#[test]
fn pipeline_writes_the_contracted_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    split_trajs(d);
    let ok = |args: &[&str]| {
        let o = boltzflow(args, d);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    };
    ok(&[
        "kinetics",
        "tica",
        "--trajs",
        "t0.npy",
        "t1.npy",
        "--lagtime",
        "5",
        "--out",
        "tica",
    ]);
    for f in [
        "eigenvalues.npy",
        "timescales.npy",
        "projection.npy",
        "summary.json",
        "tica_density.png",
    ] {
        assert!(d.join("tica").join(f).exists(), "tica/{f}");
    }
    let proj = boltzflow_io::read_npy_2d(&d.join("tica/projection.npy")).unwrap();
    assert_eq!(proj.dim(), (60_000, 2));
    ok(&[
        "kinetics",
        "vamp",
        "--trajs",
        "t0.npy",
        "t1.npy",
        "--lagtime",
        "5",
        "--out",
        "vamp",
    ]);
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("vamp/summary.json")).unwrap())
            .unwrap();
    for k in ["vamp1", "vamp2", "vampe"] {
        assert!(s[k].as_f64().unwrap() > 1.0, "{k}");
    }
    ok(&[
        "kinetics", "cluster", "--trajs", "t0.npy", "t1.npy", "--method", "kmeans", "--k", "20",
        "--out", "km",
    ]);
    ok(&[
        "kinetics", "cluster", "--trajs", "t0.npy", "--method", "regspace", "--dmin", "0.8",
        "--out", "rs",
    ]);
    for f in [
        "km/centers.npy",
        "km/dtrajs.npy",
        "km/dtrajs_0.npy",
        "km/dtrajs_1.npy",
        "rs/centers.npy",
        "rs/dtrajs.npy",
    ] {
        assert!(d.join(f).exists(), "{f}");
    }
    ok(&[
        "kinetics",
        "msm",
        "--dtrajs",
        "km/dtrajs_0.npy",
        "km/dtrajs_1.npy",
        "--lagtime",
        "10",
        "--reversible",
        "--n-metastable",
        "2",
        "--out",
        "msm",
    ]);
    for f in [
        "transition_matrix.npy",
        "count_matrix.npy",
        "stationary_distribution.npy",
        "timescales.npy",
        "active_set.npy",
        "memberships.npy",
    ] {
        assert!(d.join("msm").join(f).exists(), "msm/{f}");
    }
    let t = boltzflow_io::read_npy_2d(&d.join("msm/transition_matrix.npy")).unwrap();
    for row in t.rows() {
        assert!((row.sum() - 1.0).abs() < 1e-12);
    }
    ok(&[
        "kinetics",
        "its",
        "--dtrajs",
        "km/dtrajs_0.npy",
        "km/dtrajs_1.npy",
        "--lagtimes",
        "1,2,5",
        "--reversible",
        "--out",
        "its",
    ]);
    let its = boltzflow_io::read_npy_2d(&d.join("its/implied_timescales.npy")).unwrap();
    assert_eq!(its.nrows(), 3, "one row per lag time");
    ok(&[
        "kinetics",
        "ck",
        "--dtrajs",
        "km/dtrajs_0.npy",
        "km/dtrajs_1.npy",
        "--lagtime",
        "10",
        "--reversible",
        "--out",
        "ck",
    ]);
    assert!(d.join("ck/ck.png").exists());
}

#[test]
fn bad_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // a constant feature
    let x = ndarray::Array2::from_shape_fn((300, 3), |(t, j)| {
        if j == 2 {
            1.0
        } else {
            ((t * (j + 1)) as f64 * 0.1).sin()
        }
    });
    boltzflow_io::write_npy_2d(&d.join("c.npy"), x.view()).unwrap();
    let o = boltzflow(
        &[
            "kinetics",
            "tica",
            "--trajs",
            "c.npy",
            "--lagtime",
            "2",
            "--out",
            "o",
        ],
        d,
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("feature column(s) 2 are constant"),
        "{}",
        stderr(&o)
    );
    // a lag time longer than a trajectory
    let o = boltzflow(
        &[
            "kinetics",
            "tica",
            "--trajs",
            "c.npy",
            "--lagtime",
            "400",
            "--out",
            "o",
        ],
        d,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("trajectory 0 has 300 frames") && stderr(&o).contains("c.npy"),
        "{}",
        stderr(&o)
    );
    // disconnected states: {0,1} and {2,3} never exchange
    let dt: Vec<usize> = (0..200)
        .map(|t| if t < 100 { t % 2 } else { 2 + t % 2 })
        .collect();
    boltzflow_io::write_npy_indices(&d.join("d.npy"), &dt).unwrap();
    let o = boltzflow(
        &[
            "kinetics",
            "msm",
            "--dtrajs",
            "d.npy",
            "--lagtime",
            "1",
            "--out",
            "m",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("2 strongly connected sets (sizes 2, 2)"),
        "{}",
        stderr(&o)
    );
    let o = boltzflow(
        &[
            "kinetics",
            "msm",
            "--dtrajs",
            "d.npy",
            "--lagtime",
            "500",
            "--out",
            "m",
        ],
        d,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("has 200 frames"), "{}", stderr(&o));
    // a float file given as a discrete trajectory
    let o = boltzflow(
        &[
            "kinetics",
            "msm",
            "--dtrajs",
            "c.npy",
            "--lagtime",
            "1",
            "--out",
            "m",
        ],
        d,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("integer state indices"),
        "{}",
        stderr(&o)
    );
}
