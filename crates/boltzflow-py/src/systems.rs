//! Systems (energies and forces), the samplers, and MD trajectory files.

use std::path::PathBuf;

use boltzflow_learn::run::{Sampler, SimulationSpec};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;

use crate::{Pair, compute, py_err, to_python};

/// A system: `System("mueller")`, `System("openmm:ala2.xml", pdb="ala2.pdb")`.
#[pyclass(module = "boltzflow", frozen)]
pub struct System {
    pub(crate) inner: Box<dyn boltzflow_systems::System>,
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
        compute(py, x, |x| self.inner.energy(x))
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

/// Frames, their energies and the summary dict.
type Simulated<'py> = (
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyAny>,
);

/// Samples `system` with one of the project's samplers; returns `(x, energies, summary)`:
/// frames `[frames · chains, dim]` frame-major, their energies `[frames, chains]`, and the
/// summary dict of `boltzflow simulate --summary` (acceptance, autocorrelation, dynamics,
/// basin populations). Unset options take the system's defaults (kT = 1 and step 0.1 for the
/// toy systems; 300 K and 1 fs for molecules). Warnings ("reduce the step size") go to
/// Python's `warnings`.
#[pyfunction]
#[pyo3(signature = (system, sampler = "metropolis", *, chains = 1000, steps = 10_000,
    burn_in = 1000, stride = 100, step_size = None, friction = 1.0, temperature = None, seed = 0,
    init = None))]
#[allow(clippy::too_many_arguments)]
fn simulate<'py>(
    py: Python<'py>,
    system: &System,
    sampler: &str,
    chains: usize,
    steps: u64,
    burn_in: u64,
    stride: u64,
    step_size: Option<f64>,
    friction: f64,
    temperature: Option<f64>,
    seed: u64,
    init: Option<String>,
) -> PyResult<Simulated<'py>> {
    let spec = SimulationSpec {
        sampler: sampler.parse::<Sampler>().map_err(py_err)?,
        chains,
        steps,
        burn_in,
        stride,
        step_size,
        friction,
        temperature,
        seed,
        init,
    };
    let res = py
        .detach(|| boltzflow_learn::run::simulate(system.inner.as_ref(), &spec, true))
        .map_err(py_err)?;
    let warn = py.import("warnings")?;
    for w in &res.warnings {
        warn.call_method1("warn", (w.as_str(),))?;
    }
    let summary = to_python(py, &res.summary)?;
    Ok((
        res.samples.into_pyarray(py),
        res.energies.into_pyarray(py),
        summary,
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<System>()?;
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(read_trajectory, m)?)?;
    m.add_function(wrap_pyfunction!(write_trajectory, m)?)?;
    Ok(())
}
