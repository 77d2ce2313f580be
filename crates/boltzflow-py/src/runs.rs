//! Training runs from a TOML file or a dict, and run directories loaded as model objects:
//! `BoltzmannGenerator` (sample, log_prob, log_weights, evaluate), `VAE` (sample, encode,
//! evaluate) and `VAN` (sample, log_prob, evaluate).

use std::path::PathBuf;

use boltzflow_learn::run::{
    BgEvaluateOptions, BgRun, ModelKind, Overrides, RunConfig, StartMode, TrainOptions, VaeRun,
    VanRun,
};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::progress::{PyProgress, Sink};
use crate::{Pair, compute, py_err, to_python};

/// A Python value of a configuration dict as TOML (`at` names it in errors: `train.lr`).
fn to_toml(v: &Bound<'_, PyAny>, at: &str) -> PyResult<toml::Value> {
    // bool before int: Python's bool is an int.
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(toml::Value::Boolean(b.is_true()));
    }
    if v.is_instance_of::<PyInt>() {
        return Ok(toml::Value::Integer(v.extract().map_err(|_| {
            PyTypeError::new_err(format!("config `{at}`: integer out of range"))
        })?));
    }
    if v.is_instance_of::<PyFloat>() {
        return Ok(toml::Value::Float(v.extract()?));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(toml::Value::String(s.to_cow()?.into_owned()));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        return Ok(toml::Value::Table(to_table(d, at)?));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let items: Vec<Bound<'_, PyAny>> = v.extract()?;
        return items
            .iter()
            .enumerate()
            .map(|(i, x)| to_toml(x, &format!("{at}[{i}]")))
            .collect::<PyResult<Vec<_>>>()
            .map(toml::Value::Array);
    }
    // os.PathLike (pathlib.Path) as its string; NumPy scalars as Python numbers.
    let py = v.py();
    if v.hasattr("__fspath__")? {
        let s: String = py.import("os")?.call_method1("fspath", (v,))?.extract()?;
        return Ok(toml::Value::String(s));
    }
    if v.hasattr("item")? && v.hasattr("dtype")? {
        return to_toml(&v.call_method0("item")?, at);
    }
    Err(PyTypeError::new_err(format!(
        "config `{at}`: {} is not a TOML value (use dict, list, str, int, float, bool or a path)",
        v.get_type().name()?
    )))
}

/// A configuration dict as a TOML table.
fn to_table(d: &Bound<'_, PyDict>, at: &str) -> PyResult<toml::Table> {
    let mut t = toml::Table::new();
    for (k, v) in d.iter() {
        let key: String = k.extract().map_err(|_| {
            PyTypeError::new_err(format!("config `{at}`: keys must be strings, got {k}"))
        })?;
        let here = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        if v.is_none() {
            continue; // an unset option, as if the key were absent
        }
        t.insert(key, to_toml(&v, &here)?);
    }
    Ok(t)
}

/// Trains the run of a configuration — a TOML file, or a dict of the same tables — into
/// `out` (`model = "bg" | "vae" | "van"`); returns `out`. `resume` continues a killed or
/// interrupted run, `force` starts one over; `seed` and `system` override the configuration's.
/// `progress` is `True` (print each epoch's line), `False` (nothing) or a callable taking
/// each line. Ctrl-C stops training at the next checkpoint with `KeyboardInterrupt`; continue
/// with `resume=True`.
#[pyfunction]
#[pyo3(signature = (config, out, *, resume = false, force = false, seed = None, system = None, progress = None))]
#[allow(clippy::too_many_arguments)]
fn train(
    py: Python<'_>,
    config: Bound<'_, PyAny>,
    out: PathBuf,
    resume: bool,
    force: bool,
    seed: Option<u64>,
    system: Option<String>,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<PathBuf> {
    let mut cfg = if let Ok(d) = config.cast::<PyDict>() {
        RunConfig::from_table(to_table(d, "")?, "<dict>").map_err(py_err)?
    } else {
        let path: PathBuf = config
            .extract()
            .map_err(|_| PyTypeError::new_err("config must be a path to a TOML file or a dict"))?;
        py.detach(|| RunConfig::from_file(&path)).map_err(py_err)?
    };
    cfg.resolve(&Overrides { seed, system }).map_err(py_err)?;
    let sink = match progress {
        None => Sink::Print,
        Some(p) if p.is_callable() => Sink::Callback(p.unbind()),
        Some(p) => {
            if p.is_truthy()? {
                Sink::Print
            } else {
                Sink::Silent
            }
        }
    };
    let opts = TrainOptions {
        mode: StartMode::from_flags(resume, force),
        stop_after: None,
    };
    let mut prog = PyProgress::new(sink);
    let result = py.detach(|| cfg.train(out.clone(), opts, &mut prog));
    prog.finish(result)?;
    Ok(out)
}

/// The model of a run directory: `"bg"`, `"vae"` or `"van"`.
#[pyfunction]
fn run_model(run_dir: PathBuf) -> PyResult<&'static str> {
    let kind = ModelKind::of_run(&run_dir).map_err(py_err)?;
    Ok(match kind {
        ModelKind::Bg => "bg",
        ModelKind::Vae => "vae",
        ModelKind::Van => "van",
    })
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

    /// log q(x) `[n]` of configurations `[n, dim]` under the generator.
    fn log_prob<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        compute(py, x, |x| self.run.log_prob(x))
    }

    /// log w = −u(x) − log q(x) `[n]` of configurations `[n, dim]` (reduced units).
    fn log_weights<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        compute(py, x, |x| self.run.log_weights(x))
    }

    /// `boltzflow evaluate`: writes metrics.json (and profile.json) into the run directory and
    /// returns the metrics dict (ESS, ΔF with errors next to the exact value, profile RMSE …).
    /// `data` is a file of held-out configurations; `n_samples` overrides `[evaluate]`.
    #[pyo3(signature = (n_samples = None, data = None))]
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        n_samples: Option<usize>,
        data: Option<PathBuf>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ev = py
            .detach(|| {
                let ev = self.run.evaluate(&BgEvaluateOptions { data, n_samples })?;
                ev.save(&self.run.dir)?;
                Ok(ev)
            })
            .map_err(py_err)?;
        to_python(py, &ev.metrics)
    }

    /// Coordinates per configuration.
    #[getter]
    fn dim(&self) -> usize {
        self.run.system.dim()
    }

    /// The run directory.
    #[getter]
    fn run_dir(&self) -> PathBuf {
        self.run.dir.clone()
    }
}

/// A trained VAE (its finished β stages) loaded from its run directory.
#[pyclass(module = "boltzflow", frozen, name = "VAE")]
struct PyVae {
    run: VaeRun,
}

#[pymethods]
impl PyVae {
    /// Opens a run directory with at least one finished stage.
    #[new]
    fn new(run_dir: PathBuf) -> PyResult<Self> {
        let run = VaeRun::open(&run_dir).map_err(py_err)?;
        run.trained().map_err(py_err)?;
        Ok(Self { run })
    }

    /// `n` configurations `[n, dim]` from the last finished stage: z ~ P(z), x ~ p(x|z). For a
    /// molecule, positions in nm (whole molecules; the heavy atoms only for `heavy-atoms`).
    #[pyo3(signature = (n, seed = 0))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        seed: u64,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let x = py.detach(|| self.run.sample(n, seed)).map_err(py_err)?;
        Ok(x.into_pyarray(py))
    }

    /// The encoder's means and variances `[n, latent_dim]` of `[n, dim]` under `stage`
    /// (default: the last finished) — the learned collective variable. For a molecule, `x` are
    /// Cartesian positions in nm, represented as in training.
    #[pyo3(signature = (x, stage = None))]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
        stage: Option<usize>,
    ) -> Pair<'py, PyArray2<f64>, PyArray2<f64>> {
        let x = x.as_array();
        let (mu, var) = py.detach(|| self.run.encode(x, stage)).map_err(py_err)?;
        Ok((mu.into_pyarray(py), var.into_pyarray(py)))
    }

    /// `boltzflow evaluate`: per stage the losses, JD_encode, JD_prior, total correlation,
    /// active dimensions and f_acc; written to metrics.json and returned as a dict.
    fn evaluate<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = py
            .detach(|| {
                let m = self.run.evaluate()?;
                m.save(&self.run.dir)?;
                Ok(m)
            })
            .map_err(py_err)?;
        to_python(py, &m)
    }

    /// Latent dimensions.
    #[getter]
    fn latent_dim(&self) -> usize {
        self.run.cfg.vae.latent_dim
    }

    /// Coordinates per configuration.
    #[getter]
    fn dim(&self) -> usize {
        self.run.system.dim()
    }

    /// The run directory.
    #[getter]
    fn run_dir(&self) -> PathBuf {
        self.run.dir.clone()
    }
}

/// A trained variational autoregressive network (the last trained β) loaded from its run
/// directory.
#[pyclass(module = "boltzflow", frozen, name = "VAN")]
struct PyVan {
    run: VanRun,
}

#[pymethods]
impl PyVan {
    /// Opens a run directory with at least one trained β.
    #[new]
    fn new(run_dir: PathBuf) -> PyResult<Self> {
        let run = VanRun::open(&run_dir).map_err(py_err)?;
        run.trained().map_err(py_err)?;
        Ok(Self { run })
    }

    /// `n` exact samples: spins `[n, n_spins]` (±1), ln q `[n]` and log w = −βE − ln q `[n]`.
    #[pyo3(signature = (n, seed = 0))]
    #[allow(clippy::type_complexity)]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        seed: u64,
    ) -> PyResult<(
        Bound<'py, PyArray2<f64>>,
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray1<f64>>,
    )> {
        let s = py.detach(|| self.run.sample(n, seed)).map_err(py_err)?;
        Ok((
            s.spins.into_pyarray(py),
            s.log_q.into_pyarray(py),
            s.log_weights.into_pyarray(py),
        ))
    }

    /// ln q `[n]` of spin configurations `[n, n_spins]` (entries ±1).
    fn log_prob<'py>(
        &self,
        py: Python<'py>,
        s: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        compute(py, s, |s| self.run.log_prob(s))
    }

    /// `boltzflow evaluate`: per β the variational F per spin ± its error, energy, entropy,
    /// the exact F where it exists and naive mean field; written to metrics.json and returned.
    #[pyo3(signature = (n_samples = None))]
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        n_samples: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let m = py
            .detach(|| {
                let m = self.run.evaluate(n_samples)?;
                m.save(&self.run.dir)?;
                Ok(m)
            })
            .map_err(py_err)?;
        to_python(py, &m)
    }

    /// Spins.
    #[getter]
    fn n_spins(&self) -> usize {
        self.run.system.n()
    }

    /// The run directory.
    #[getter]
    fn run_dir(&self) -> PathBuf {
        self.run.dir.clone()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<BoltzmannGenerator>()?;
    m.add_class::<PyVae>()?;
    m.add_class::<PyVan>()?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(run_model, m)?)?;
    Ok(())
}
