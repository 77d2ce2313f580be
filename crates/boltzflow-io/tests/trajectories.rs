//! XTC, TRR and DCD against mdtraj: the fixtures in `scripts/fixtures/trajectories/` are seven
//! alanine-dipeptide frames written by mdtraj 1.11 and what mdtraj reads back from each file
//! (script and versions beside them).

use std::path::{Path, PathBuf};

use boltzflow_io::trajectory::{TrajectoryReader, read_coordinates, write_coordinates};
use ndarray::Array2;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fixtures/trajectories")
}

fn max_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn xtc_trr_and_dcd_read_as_mdtraj_reads_them() {
    let d = fixtures();
    for ext in ["xtc", "trr", "dcd"] {
        let ours = read_coordinates(&d.join(format!("ala2.{ext}"))).unwrap();
        let theirs = boltzflow_io::read_npy_2d(&d.join(format!("ala2_{ext}_mdtraj.npy"))).unwrap();
        let diff = max_diff(&ours, &theirs);
        println!("{ext}: max |boltzflow − mdtraj| = {diff:.2e} nm");
        // Both read f32 values; DCD's Å → nm division is done in f32 by mdtraj, in f64 here.
        assert!(diff < 1e-6, "{ext}: {diff}");
        // Streamed in blocks of three frames: the same frames.
        let mut r = TrajectoryReader::open(&d.join(format!("ala2.{ext}"))).unwrap();
        assert_eq!(r.n_columns(), 66);
        let mut rows = Vec::new();
        while let Some(b) = r.next_block(3).unwrap() {
            assert!(b.nrows() <= 3);
            rows.extend(b.iter().copied());
        }
        assert_eq!(Array2::from_shape_vec((7, 66), rows).unwrap(), ours);
    }
}

#[test]
fn written_trajectories_read_back() {
    let frames = boltzflow_io::read_npy_2d(&fixtures().join("frames_nm.npy")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // XTC keeps 10⁻³ nm; TRR and DCD keep f32.
    for (ext, tol) in [("xtc", 5.01e-4), ("trr", 1e-6), ("dcd", 1e-6), ("npy", 0.0)] {
        let path = dir.path().join(format!("t.{ext}"));
        write_coordinates(&path, frames.view(), 0.5).unwrap();
        let back = read_coordinates(&path).unwrap();
        let diff = max_diff(&back, &frames);
        assert!(diff <= tol, "{ext}: {diff}");
    }
    // Nothing but the four files: the temporaries were renamed.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
}

fn message(path: &Path) -> String {
    match read_coordinates(path) {
        Ok(_) => panic!("{} was accepted", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_trajectories_are_errors_that_name_the_file() {
    let d = fixtures();
    let dir = tempfile::tempdir().unwrap();
    for ext in ["xtc", "trr", "dcd"] {
        let bytes = std::fs::read(d.join(format!("ala2.{ext}"))).unwrap();
        // Cut mid-frame, garbage, empty.
        for (k, content) in [
            bytes[..bytes.len() - 37].to_vec(),
            b"not a trajectory at all, just text".repeat(9),
            Vec::new(),
        ]
        .into_iter()
        .enumerate()
        {
            let path = dir.path().join(format!("bad{k}.{ext}"));
            std::fs::write(&path, &content).unwrap();
            let m = message(&path);
            assert!(m.contains(&format!("bad{k}.{ext}")), "{ext} case {k}: {m}");
        }
    }
    let m = message(&dir.path().join("missing.xtc"));
    assert!(
        m.contains("missing.xtc") && m.contains("cannot read"),
        "{m}"
    );
    let m = message(&dir.path().join("x.gro"));
    assert!(m.contains(".xtc"), "{m}");
}

#[test]
fn a_dcd_claiming_more_atoms_than_it_holds_is_refused_before_allocating() {
    // Found by the fuzz target: an atom count of 2·10⁹ was allocated (48 GB) before reading.
    let mut bytes = std::fs::read(fixtures().join("ala2.dcd")).unwrap();
    let title_len = i32::from_le_bytes(bytes[92..96].try_into().unwrap()) as usize;
    let at = 92 + 4 + title_len + 4 + 4;
    bytes[at..at + 4].copy_from_slice(&2_063_597_590i32.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.dcd");
    std::fs::write(&path, &bytes).unwrap();
    let m = message(&path);
    assert!(
        m.contains("huge.dcd") && m.contains("2063597590 atoms"),
        "{m}"
    );
}
