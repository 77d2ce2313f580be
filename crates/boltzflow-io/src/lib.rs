//! File formats of boltzflow: `.npy` arrays (float64, float32 accepted on input) and atomic writes
//! (a temporary file in the target directory, renamed into place, so a reader never sees a
//! half-written result and a killed run never leaves one).

use std::io::Write;
use std::path::Path;

use boltzflow_core::{Error, Result};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewD};

mod npy_rows;
pub mod openmm;
pub mod pdb;
pub mod run_dir;
pub mod trajectory;
use ndarray_npy::{ReadNpyError, ReadNpyExt, WriteNpyExt};
pub use npy_rows::NpyRowReader;

/// The error names the user's path; the underlying error keeps only its OS error or kind
/// (tempfile's own message would name the hidden temporary file instead).
fn io_err(action: &'static str, path: &Path, source: std::io::Error) -> Error {
    use std::io::ErrorKind as K;
    let source = match (action, source.kind()) {
        ("cannot write", K::NotFound) => std::io::Error::new(
            K::NotFound,
            "its directory does not exist; create it or choose another path",
        ),
        ("cannot write", K::PermissionDenied) => std::io::Error::new(
            K::PermissionDenied,
            "permission denied; choose a writable directory",
        ),
        (_, kind) => match source.raw_os_error() {
            Some(code) => std::io::Error::from_raw_os_error(code),
            // An error wrapped by an encoder (npy, PNG) carries the OS error in its text.
            None if kind == K::Other => std::io::Error::new(kind, source.to_string()),
            None => std::io::Error::from(kind),
        },
    };
    Error::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a file atomically: `write` fills a temporary file next to `path`, which is then
/// flushed, synced and renamed over `path`.
///
/// # Errors
/// [`Error::Io`] naming `path` if the directory is missing or not writable, or a write fails.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".boltzflow-").suffix(".tmp");
    // tempfile creates 0600 files; results are ordinary files others may read
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(|e| io_err("cannot write", path, e))?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        write(&mut w).map_err(|e| io_err("cannot write", path, e))?;
        w.flush().map_err(|e| io_err("cannot write", path, e))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| io_err("cannot write", path, e))?;
    tmp.persist(path)
        .map_err(|e| io_err("cannot write", path, e.error))?;
    Ok(())
}

/// Removes the temporary files that [`write_atomic`] leaves in `dir` when its process is killed
/// mid-write (`.boltzflow-*.tmp`, and the figures' `.boltzflow-*.tmp.png`); returns how many it
/// removed. A missing `dir` has none.
///
/// # Errors
/// [`Error::Io`] if `dir` cannot be read or a temporary cannot be removed.
pub fn remove_stale_temporaries(dir: &Path) -> Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err("cannot read", dir, e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| io_err("cannot read", dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // `.tmp.png`, `.tmp.xtc`, …: figures and trajectories, written to temporaries that
        // keep their extension (the writers choose the format by it).
        if name.starts_with(".boltzflow-") && (name.ends_with(".tmp") || name.contains(".tmp.")) {
            std::fs::remove_file(entry.path())
                .map_err(|e| io_err("cannot remove", &entry.path(), e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Reads a 2D array `[n, dim]` from a `.npy` file holding float64 or float32 (converted).
///
/// # Errors
/// [`Error::Io`] if the file cannot be opened; [`Error::BadFile`] if it is not a 2D float
/// array (the message says what it holds).
pub fn read_npy_2d(path: &Path) -> Result<Array2<f64>> {
    read_float(
        path,
        Array2::<f64>::read_npy,
        |f| Array2::<f32>::read_npy(f).map(|a| a.mapv(f64::from)),
        "a 2D array [n, dim]",
    )
}

/// Reads a 1D array `[n]` from a `.npy` file holding float64 or float32 (converted).
///
/// # Errors
/// As [`read_npy_2d`].
pub fn read_npy_1d(path: &Path) -> Result<Array1<f64>> {
    read_float(
        path,
        Array1::<f64>::read_npy,
        |f| Array1::<f32>::read_npy(f).map(|a| a.mapv(f64::from)),
        "a 1D array [n]",
    )
}

fn read_float<A>(
    path: &Path,
    as_f64: impl Fn(std::fs::File) -> std::result::Result<A, ReadNpyError>,
    as_f32: impl Fn(std::fs::File) -> std::result::Result<A, ReadNpyError>,
    expected: &str,
) -> Result<A> {
    let open = || std::fs::File::open(path).map_err(|e| io_err("cannot read", path, e));
    match as_f64(open()?) {
        Ok(a) => Ok(a),
        Err(first) => match as_f32(open()?) {
            Ok(a) => Ok(a),
            Err(_) => Err(Error::BadFile {
                path: path.to_path_buf(),
                reason: format!(
                    "expected a .npy file holding {expected} of float64 or float32: {first}"
                ),
            }),
        },
    }
}

/// Writes a float64 `.npy` file atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_npy_2d(path: &Path, a: ArrayView2<f64>) -> Result<()> {
    write_atomic(path, |w| a.write_npy(w).map_err(std::io::Error::other))
}

/// Writes a float64 `.npy` file `[n]` atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_npy_1d(path: &Path, a: ArrayView1<f64>) -> Result<()> {
    write_atomic(path, |w| a.write_npy(w).map_err(std::io::Error::other))
}

/// Writes a value as pretty JSON atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, |w| {
        serde_json::to_writer_pretty(&mut *w, value).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    })
}

/// Reads a JSON file into `T`; `hint` is appended to the parse error (what to do about it).
///
/// # Errors
/// [`Error::Io`] if it cannot be read; [`Error::BadFile`] naming it if it does not parse.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path, hint: &str) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| io_err("cannot read", path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::BadFile {
        path: path.to_path_buf(),
        reason: format!("{e}{hint}"),
    })
}

/// Reads a discrete trajectory (state indices ≥ 0) from a 1D `.npy` file of int64, int32,
/// uint64 or uint32.
///
/// # Errors
/// [`Error::Io`] if it cannot be opened; [`Error::BadFile`] for another dtype or shape, or a
/// negative index (named with its frame).
pub fn read_npy_dtraj(path: &Path) -> Result<Vec<usize>> {
    let open = || std::fs::File::open(path).map_err(|e| io_err("cannot read", path, e));
    let bad = |reason: String| Error::BadFile {
        path: path.to_path_buf(),
        reason,
    };
    let signed: Option<Vec<i64>> = Array1::<i64>::read_npy(open()?)
        .ok()
        .or_else(|| {
            Array1::<i32>::read_npy(open().ok()?)
                .ok()
                .map(|a| a.mapv(i64::from))
        })
        .map(|a| a.to_vec());
    if let Some(v) = signed {
        return v
            .iter()
            .enumerate()
            .map(|(t, &s)| {
                usize::try_from(s)
                    .map_err(|_| bad(format!("frame {t} has the negative state index {s}")))
            })
            .collect();
    }
    if let Ok(a) = Array1::<u64>::read_npy(open()?) {
        return Ok(a.iter().map(|&v| v as usize).collect());
    }
    if let Ok(a) = Array1::<u32>::read_npy(open()?) {
        return Ok(a.iter().map(|&v| v as usize).collect());
    }
    Err(bad(
        "expected a discrete trajectory: a 1D .npy array of integer state indices (int64 or int32)"
            .into(),
    ))
}

/// Writes state indices as a 1D int64 `.npy` file atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_npy_indices(path: &Path, states: &[usize]) -> Result<()> {
    let a: Array1<i64> = states.iter().map(|&s| s as i64).collect();
    write_atomic(path, |w| a.write_npy(w).map_err(std::io::Error::other))
}

/// Writes a float64 array of any dimension atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_npy_nd(path: &Path, a: ArrayViewD<f64>) -> Result<()> {
    write_atomic(path, |w| a.write_npy(w).map_err(std::io::Error::other))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn npy_round_trip_and_f32_input() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        let a = array![[1.0, 2.5], [-3.0, 1e-300]];
        write_npy_2d(&p, a.view()).unwrap();
        assert_eq!(read_npy_2d(&p).unwrap(), a);
        let p32 = dir.path().join("x32.npy");
        let f = std::fs::File::create(&p32).unwrap();
        array![[1.5f32, 2.0]].write_npy(f).unwrap();
        assert_eq!(read_npy_2d(&p32).unwrap(), array![[1.5, 2.0]]);
        // Only the final file exists: no temporary left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.npy");
        assert!(
            read_npy_2d(&missing)
                .unwrap_err()
                .to_string()
                .contains("nope.npy")
        );
        let one_d = dir.path().join("v.npy");
        write_npy_1d(&one_d, array![1.0, 2.0].view()).unwrap();
        let e = read_npy_2d(&one_d).unwrap_err().to_string();
        assert!(e.contains("v.npy") && e.contains("2D"), "{e}");
        let bad_dir = dir.path().join("no/such/dir/out.npy");
        let e = write_npy_2d(&bad_dir, array![[1.0]].view())
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot write") && e.contains("out.npy"), "{e}");
    }
}
