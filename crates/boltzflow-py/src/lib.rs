//! The `boltzflow` Python package: systems (energies and forces), MD trajectories, kinetics with
//! deeptime's API shape, and training runs from TOML files, over the Rust crates. Arrays go in
//! and out as NumPy float64 arrays (read without a copy where they are contiguous); compute
//! runs with the GIL released; every Rust error becomes a Python exception with the same
//! message (`ValueError` for bad input, `OSError` for files, `RuntimeError` for numerical
//! failures).

use std::path::PathBuf;

use boltzflow_core::Error;
use boltzflow_kinetics::tica::{Dimension, Tica};
use boltzflow_learn::run::{BgRun, Overrides, PrintProgress, StartMode, TrainOptions, train_file};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2};
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

/// A system: `System("mueller")`, `System("openmm:ala2.xml", pdb="ala2.pdb")`.
#[pyclass(module = "boltzflow", frozen)]
struct System {
    inner: Box<dyn boltzflow_systems::System>,
}

#[pymethods]
impl System {
    #[new]
    #[pyo3(signature = (spec, pdb = None))]
    fn new(spec: &str, pdb: Option<PathBuf>) -> PyResult<Self> {
        let inner = boltzflow_systems::build_with_pdb(spec, pdb.as_deref()).map_err(py_err)?;
        Ok(Self { inner })
    }

    /// Coordinates per configuration.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// The canonical specification.
    #[getter]
    fn spec(&self) -> String {
        self.inner.spec()
    }

    /// Energies `[n]` of configurations `x` `[n, dim]` (the system's unit: kT for the toy
    /// systems, kJ/mol for molecules).
    fn energy<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let x = x.as_array();
        let e = py.detach(|| self.inner.energy(x)).map_err(py_err)?;
        Ok(e.into_pyarray(py))
    }

    /// Energies `[n]` and forces −∇E `[n, dim]`.
    fn energy_and_forces<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
    ) -> Pair<'py, PyArray1<f64>, PyArray2<f64>> {
        let x = x.as_array();
        let (e, f) = py
            .detach(|| self.inner.energy_and_forces(x))
            .map_err(py_err)?;
        Ok((e.into_pyarray(py), f.into_pyarray(py)))
    }

    fn __repr__(&self) -> String {
        format!("System({:?})", self.inner.spec())
    }
}

/// Every frame of a trajectory (`.npy`, `.xtc`, `.trr`, `.dcd`) as `[frames, 3·atoms]` in nm.
#[pyfunction]
fn read_trajectory(py: Python<'_>, path: PathBuf) -> PyResult<Bound<'_, PyArray2<f64>>> {
    let x = py
        .detach(|| boltzflow_io::trajectory::read_coordinates(&path))
        .map_err(py_err)?;
    Ok(x.into_pyarray(py))
}

/// Writes frames `[frames, 3·atoms]` (nm) in the format of the path's extension, atomically.
#[pyfunction]
#[pyo3(signature = (path, x, dt_ps = 1.0))]
fn write_trajectory(
    py: Python<'_>,
    path: PathBuf,
    x: PyReadonlyArray2<'_, f64>,
    dt_ps: f64,
) -> PyResult<()> {
    let x = x.as_array();
    py.detach(|| boltzflow_io::trajectory::write_coordinates(&path, x, dt_ps))
        .map_err(py_err)
}

/// TICA with deeptime's shape: `TICA(lagtime=10, dim=2).fit(trajs).fetch_model()`.
#[pyclass(module = "boltzflow", name = "TICA")]
struct PyTica {
    lagtime: usize,
    dim: Option<usize>,
    var_cutoff: Option<f64>,
    model: Option<Py<PyTicaModel>>,
}

#[pymethods]
impl PyTica {
    #[new]
    #[pyo3(signature = (lagtime, dim = None, var_cutoff = None))]
    fn new(lagtime: usize, dim: Option<usize>, var_cutoff: Option<f64>) -> PyResult<Self> {
        Tica::new(lagtime).map_err(py_err)?;
        Ok(Self {
            lagtime,
            dim,
            var_cutoff,
            model: None,
        })
    }

    /// Fits on one trajectory `[frames, features]` or a list of them; returns the estimator.
    fn fit<'py>(slf: Bound<'py, Self>, data: Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        let arrays: Vec<PyReadonlyArray2<'py, f64>> = match data.extract() {
            Ok(one) => vec![one],
            Err(_) => data.extract()?,
        };
        let views: Vec<_> = arrays.iter().map(|a| a.as_array()).collect();
        let est = {
            let me = slf.borrow();
            let t = Tica::new(me.lagtime).map_err(py_err)?;
            match (me.dim, me.var_cutoff) {
                (Some(n), _) => t.dim(Dimension::Count(n)),
                (None, Some(f)) => t.dim(Dimension::KineticVariance(f)),
                (None, None) => t,
            }
        };
        let model = py.detach(|| est.fit(&views)).map_err(py_err)?;
        slf.borrow_mut().model = Some(Py::new(py, PyTicaModel { inner: model })?);
        Ok(slf)
    }

    /// The fitted model (immutable).
    fn fetch_model(&self, py: Python<'_>) -> PyResult<Py<PyTicaModel>> {
        self.model
            .as_ref()
            .map(|m| m.clone_ref(py))
            .ok_or_else(|| PyValueError::new_err("TICA: call fit(data) before fetch_model()"))
    }
}

/// A fitted TICA model.
#[pyclass(module = "boltzflow", frozen, name = "TICAModel")]
struct PyTicaModel {
    inner: boltzflow_kinetics::tica::TicaModel,
}

#[pymethods]
impl PyTicaModel {
    /// Projects `[frames, features]` onto the model's components.
    fn transform<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let x = x.as_array();
        let y = py.detach(|| self.inner.transform(x)).map_err(py_err)?;
        Ok(y.into_pyarray(py))
    }

    /// Eigenvalues λ, by descending magnitude.
    #[getter]
    fn singular_values<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.eigenvalues.clone().into_pyarray(py)
    }

    /// Implied timescales −τ / ln|λ| (frames).
    #[getter]
    fn timescales<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.timescales().into_pyarray(py)
    }

    /// Lag time in frames.
    #[getter]
    fn lagtime(&self) -> usize {
        self.inner.lagtime
    }

    /// Components `transform` returns.
    #[getter]
    fn output_dimension(&self) -> usize {
        self.inner.dim
    }
}

/// Trains the run of a TOML configuration (`model = "bg" | "vae" | "van"`) into `out`; returns
/// `out`. `resume` continues a killed run, `force` starts one over; `quiet` drops the
/// per-epoch lines.
#[pyfunction]
#[pyo3(signature = (config, out, resume = false, force = false, quiet = true))]
fn train(
    py: Python<'_>,
    config: PathBuf,
    out: PathBuf,
    resume: bool,
    force: bool,
    quiet: bool,
) -> PyResult<PathBuf> {
    let opts = TrainOptions {
        mode: StartMode::from_flags(resume, force),
        stop_after: None,
    };
    py.detach(|| {
        train_file(
            &config,
            out.clone(),
            &Overrides::default(),
            opts,
            &mut PrintProgress { quiet },
        )
    })
    .map_err(py_err)?;
    Ok(out)
}

/// A trained Boltzmann generator loaded from its run directory.
#[pyclass(module = "boltzflow", frozen)]
struct BoltzmannGenerator {
    run: BgRun,
}

#[pymethods]
impl BoltzmannGenerator {
    /// Opens a run directory written by `train` (or `boltzflow train`).
    #[new]
    fn new(run_dir: PathBuf) -> PyResult<Self> {
        let run = BgRun::open(&run_dir).map_err(py_err)?;
        run.load_generator().map_err(py_err)?;
        Ok(Self { run })
    }

    /// `n` configurations `[n, dim]` and their log importance weights `[n]`
    /// (log w = −u(x) − log q(x)), at latent temperature τ, from the stream of `seed`.
    #[pyo3(signature = (n, seed = 0, temperature = 1.0))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        seed: u64,
        temperature: f64,
    ) -> Pair<'py, PyArray2<f64>, PyArray1<f64>> {
        let s = py
            .detach(|| self.run.sample(n, temperature, seed))
            .map_err(py_err)?;
        Ok((s.x.into_pyarray(py), s.log_weights.into_pyarray(py)))
    }

    /// The run directory.
    #[getter]
    fn run_dir(&self) -> PathBuf {
        self.run.dir.clone()
    }
}

#[pymodule]
fn _boltzflow(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<System>()?;
    m.add_class::<PyTica>()?;
    m.add_class::<PyTicaModel>()?;
    m.add_class::<BoltzmannGenerator>()?;
    m.add_function(wrap_pyfunction!(read_trajectory, m)?)?;
    m.add_function(wrap_pyfunction!(write_trajectory, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    Ok(())
}
