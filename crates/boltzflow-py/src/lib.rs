//! The `boltzflow` Python package over the Rust crates: systems (energies and forces, OpenMM
//! XML), samplers, MD trajectories, kinetics with deeptime's API shape (estimator → `fit` →
//! `fetch_model`), and training runs from a TOML file or a dict, loaded back as model objects
//! that sample, score and encode.
//!
//! Arrays go in and out as NumPy float64 arrays (read without a copy where they are contiguous;
//! the Python shim casts other dtypes); compute runs with the GIL released; every Rust error
//! becomes a Python exception with the same message (`ValueError` for bad input, `OSError`
//! for files, `RuntimeError` for numerical failures, `KeyboardInterrupt` for a training stopped
//! by Ctrl-C after its checkpoint).

mod kinetics;
mod progress;
mod runs;
mod systems;

use boltzflow_core::Error;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

/// Two arrays returned together (energies and forces; samples and log-weights).
type Pair<'py, A, B> = PyResult<(Bound<'py, A>, Bound<'py, B>)>;

/// A Rust error as the Python exception of its kind, with the same message.
fn py_err(e: Error) -> PyErr {
    let msg = e.to_string();
    match e.root() {
        Error::Io { .. } => PyOSError::new_err(msg),
        Error::Numerical { .. } => PyRuntimeError::new_err(msg),
        _ => PyValueError::new_err(msg),
    }
}

/// `f` of a NumPy array, run with the GIL released; its result comes back as a NumPy array and
/// its error as the Python exception of its kind.
fn compute<'py, D: ndarray::Dimension>(
    py: Python<'py>,
    x: numpy::PyReadonlyArray2<'py, f64>,
    f: impl FnOnce(ndarray::ArrayView2<'_, f64>) -> boltzflow_core::Result<ndarray::Array<f64, D>>
    + Send,
) -> PyResult<Bound<'py, numpy::PyArray<f64, D>>> {
    use numpy::IntoPyArray;
    let x = x.as_array();
    let y = py.detach(|| f(x)).map_err(py_err)?;
    Ok(y.into_pyarray(py))
}

/// A serialisable Rust value as the Python object `json.loads` makes of it (dicts, lists,
/// floats; NaN becomes `None`).
fn to_python<'py, T: serde::Serialize>(py: Python<'py>, value: &T) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|e| PyRuntimeError::new_err(format!("cannot convert a result: {e}")))?;
    py.import("json")?.call_method1("loads", (text,))
}

#[pymodule]
fn _boltzflow(m: &Bound<'_, PyModule>) -> PyResult<()> {
    systems::register(m)?;
    kinetics::register(m)?;
    runs::register(m)?;
    Ok(())
}
