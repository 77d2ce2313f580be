//! Kinetics with deeptime's API shape: an estimator holds hyperparameters, `fit(data)` returns
//! the estimator, `fetch_model()` the immutable fitted model (`TICA` → `TICAModel`, `VAMP` →
//! `VAMPModel`, `KMeans` / `RegularSpace` → `ClusterModel`, `MaximumLikelihoodMSM` →
//! `MarkovStateModel`), plus `implied_timescales` over lag times. Lag times and timescales are
//! in frames. The numbers are those of `boltzflow kinetics` on the same data.

use boltzflow_kinetics::tica::{Dimension, Scaling, Tica};
use boltzflow_kinetics::{
    ClusterModel, KMeans, MaximumLikelihoodMsm, Msm, RegularSpace, Vamp, VampModel, VampScore,
};
use ndarray::Array1;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::{compute, py_err};

/// One float trajectory `[frames, features]` or a list of them.
fn float_trajs<'py>(data: &Bound<'py, PyAny>) -> PyResult<Vec<PyReadonlyArray2<'py, f64>>> {
    if let Ok(one) = data.extract::<PyReadonlyArray2<'py, f64>>() {
        return Ok(vec![one]);
    }
    data.extract().map_err(|_| {
        PyTypeError::new_err(
            "trajectories must be a float64 array [frames, features] or a list of them",
        )
    })
}

/// One discrete trajectory (a 1-D integer array of state indices ≥ 0) or a list of them.
fn discrete_trajs(data: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<usize>>> {
    fn one(a: &Bound<'_, PyAny>, k: usize) -> PyResult<Option<Vec<usize>>> {
        let values: Vec<i64> = if let Ok(v) = a.extract::<PyReadonlyArray1<'_, i64>>() {
            v.as_array().to_vec()
        } else if let Ok(v) = a.extract::<PyReadonlyArray1<'_, i32>>() {
            v.as_array().iter().map(|&s| i64::from(s)).collect()
        } else {
            return Ok(None);
        };
        values
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                usize::try_from(s).map_err(|_| {
                    PyValueError::new_err(format!(
                        "discrete trajectory {k}, frame {i}: state {s} is negative; states are indices 0, 1, …"
                    ))
                })
            })
            .collect::<PyResult<_>>()
            .map(Some)
    }
    if let Some(d) = one(data, 0)? {
        return Ok(vec![d]);
    }
    let items: Vec<Bound<'_, PyAny>> = data.extract().map_err(|_| {
        PyTypeError::new_err("dtrajs must be a 1-D integer array or a list of them")
    })?;
    items
        .iter()
        .enumerate()
        .map(|(k, a)| {
            one(a, k)?.ok_or_else(|| {
                PyTypeError::new_err(format!("dtrajs[{k}] is not a 1-D int64 or int32 array"))
            })
        })
        .collect()
}

/// The fitted model of an estimator, or the error deeptime users expect before `fit`.
fn fetched<M: pyo3::PyClass>(py: Python<'_>, model: &Option<Py<M>>, name: &str) -> PyResult<Py<M>> {
    model.as_ref().map(|m| m.clone_ref(py)).ok_or_else(|| {
        PyValueError::new_err(format!("{name}: call fit(data) before fetch_model()"))
    })
}

/// TICA: `TICA(lagtime=10, dim=2).fit(trajs).fetch_model()`.
#[pyclass(module = "boltzflow", name = "TICA")]
struct PyTica {
    estimator: Tica,
    model: Option<Py<PyTicaModel>>,
}

#[pymethods]
impl PyTica {
    /// `dim` keeps that many components, `var_cutoff` those reaching that fraction of kinetic
    /// variance; `epsilon` truncates C₀₀'s spectrum; `scaling` is `"kinetic_map"` (default),
    /// `"commute_map"` or `None`.
    #[new]
    #[pyo3(signature = (lagtime, dim = None, var_cutoff = None, epsilon = 1e-6, scaling = Some("kinetic_map")))]
    fn new(
        lagtime: usize,
        dim: Option<usize>,
        var_cutoff: Option<f64>,
        epsilon: f64,
        scaling: Option<&str>,
    ) -> PyResult<Self> {
        let dim = match (dim, var_cutoff) {
            (Some(_), Some(_)) => {
                return Err(PyValueError::new_err(
                    "TICA: give dim or var_cutoff, not both",
                ));
            }
            (Some(n), None) => Dimension::Count(n),
            (None, Some(f)) => Dimension::KineticVariance(f),
            (None, None) => Dimension::All,
        };
        let scaling = match scaling {
            Some("kinetic_map") => Scaling::KineticMap,
            Some("commute_map") => Scaling::CommuteMap,
            None => Scaling::None,
            Some(other) => {
                return Err(PyValueError::new_err(format!(
                    "TICA: unknown scaling {other:?}; use \"kinetic_map\", \"commute_map\" or None"
                )));
            }
        };
        let estimator = Tica::new(lagtime)
            .map_err(py_err)?
            .epsilon(epsilon)
            .dim(dim)
            .scaling(scaling);
        Ok(Self {
            estimator,
            model: None,
        })
    }

    /// Fits on one trajectory `[frames, features]` or a list of them; returns the estimator.
    fn fit<'py>(slf: Bound<'py, Self>, data: Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        let arrays = float_trajs(&data)?;
        let views: Vec<_> = arrays.iter().map(|a| a.as_array()).collect();
        let est = slf.borrow().estimator.clone();
        let model = py.detach(|| est.fit(&views)).map_err(py_err)?;
        slf.borrow_mut().model = Some(Py::new(py, PyTicaModel { inner: model })?);
        Ok(slf)
    }

    /// The fitted model (immutable).
    fn fetch_model(&self, py: Python<'_>) -> PyResult<Py<PyTicaModel>> {
        fetched(py, &self.model, "TICA")
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
        compute(py, x, |x| self.inner.transform(x))
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

    /// Cumulative kinetic variance of the components.
    #[getter]
    fn cumulative_kinetic_variance<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.cumulative_kinetic_variance().into_pyarray(py)
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

/// VAMP: `VAMP(lagtime=10).fit(trajs).fetch_model().score(r=2)`.
#[pyclass(module = "boltzflow", name = "VAMP")]
struct PyVamp {
    estimator: Vamp,
    epsilon: f64,
    model: Option<Py<PyVampModel>>,
}

#[pymethods]
impl PyVamp {
    /// `dim` keeps that many singular functions; `epsilon` truncates the covariances' spectra.
    #[new]
    #[pyo3(signature = (lagtime, dim = None, epsilon = 1e-6))]
    fn new(lagtime: usize, dim: Option<usize>, epsilon: f64) -> PyResult<Self> {
        let mut estimator = Vamp::new(lagtime).map_err(py_err)?.epsilon(epsilon);
        if let Some(d) = dim {
            estimator = estimator.dim(Dimension::Count(d));
        }
        Ok(Self {
            estimator,
            epsilon,
            model: None,
        })
    }

    /// Fits on one trajectory `[frames, features]` or a list of them; returns the estimator.
    fn fit<'py>(slf: Bound<'py, Self>, data: Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        let arrays = float_trajs(&data)?;
        let views: Vec<_> = arrays.iter().map(|a| a.as_array()).collect();
        let (est, epsilon) = {
            let me = slf.borrow();
            (me.estimator.clone(), me.epsilon)
        };
        let model = py.detach(|| est.fit(&views)).map_err(py_err)?;
        slf.borrow_mut().model = Some(Py::new(
            py,
            PyVampModel {
                inner: model,
                epsilon,
            },
        )?);
        Ok(slf)
    }

    /// The fitted model (immutable).
    fn fetch_model(&self, py: Python<'_>) -> PyResult<Py<PyVampModel>> {
        fetched(py, &self.model, "VAMP")
    }
}

/// A fitted VAMP model.
#[pyclass(module = "boltzflow", frozen, name = "VAMPModel")]
struct PyVampModel {
    inner: VampModel,
    epsilon: f64,
}

#[pymethods]
impl PyVampModel {
    /// The VAMP-r score (r = 1, 2 or "E"), including the constant singular function (+1), as
    /// deeptime's; `dim` scores only the leading singular functions.
    #[pyo3(signature = (r = None, dim = None))]
    fn score(&self, r: Option<Bound<'_, PyAny>>, dim: Option<usize>) -> PyResult<f64> {
        let kind = match r {
            None => VampScore::Vamp2,
            Some(r) => {
                let name = match r.extract::<i64>() {
                    Ok(k) => format!("VAMP{k}"),
                    Err(_) => format!("VAMP{}", r.extract::<String>()?),
                };
                name.parse().map_err(py_err)?
            }
        };
        self.inner
            .score(kind, None, dim, self.epsilon)
            .map_err(py_err)
    }

    /// Projects `[frames, features]` onto the left singular functions.
    fn transform<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        compute(py, x, |x| self.inner.transform(x))
    }

    /// Singular values of the Koopman operator, descending.
    #[getter]
    fn singular_values<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.singular_values.clone().into_pyarray(py)
    }

    /// Lag time in frames.
    #[getter]
    fn lagtime(&self) -> usize {
        self.inner.lagtime
    }

    /// Singular functions `transform` returns.
    #[getter]
    fn output_dimension(&self) -> usize {
        self.inner.dim
    }
}

/// The clustering estimators.
#[derive(Clone)]
enum Clustering {
    KMeans(KMeans),
    RegularSpace(RegularSpace),
}

/// Fits a clustering estimator on one or more trajectories (stacked).
fn fit_clustering<'py>(
    py: Python<'py>,
    est: &Clustering,
    data: &Bound<'py, PyAny>,
) -> PyResult<Py<PyClusterModel>> {
    let arrays = float_trajs(data)?;
    let views: Vec<_> = arrays.iter().map(|a| a.as_array()).collect();
    let model = py
        .detach(|| {
            let x = boltzflow_kinetics::cluster::stack(&views)?;
            match est {
                Clustering::KMeans(k) => k.fit(x.view()),
                Clustering::RegularSpace(r) => r.fit(x.view()),
            }
        })
        .map_err(py_err)?;
    Py::new(py, PyClusterModel { inner: model })
}

/// k-means (k-means++ seeding, Lloyd iterations): `KMeans(n_clusters=100).fit(x).fetch_model()`.
#[pyclass(module = "boltzflow", name = "KMeans")]
struct PyKMeans {
    estimator: Clustering,
    model: Option<Py<PyClusterModel>>,
}

#[pymethods]
impl PyKMeans {
    /// `tolerance` is on the relative change of the inertia; `fixed_seed` seeds k-means++;
    /// `initial_centers` `[n_clusters, features]` replaces k-means++.
    #[new]
    #[pyo3(signature = (n_clusters, max_iter = 500, tolerance = 1e-5, fixed_seed = 0, initial_centers = None))]
    fn new(
        n_clusters: usize,
        max_iter: usize,
        tolerance: f64,
        fixed_seed: u64,
        initial_centers: Option<PyReadonlyArray2<'_, f64>>,
    ) -> PyResult<Self> {
        let mut k = KMeans::new(n_clusters)
            .map_err(py_err)?
            .max_iter(max_iter)
            .tolerance(tolerance)
            .seed(fixed_seed);
        if let Some(c) = initial_centers {
            k = k.initial_centers(c.as_array().to_owned()).map_err(py_err)?;
        }
        Ok(Self {
            estimator: Clustering::KMeans(k),
            model: None,
        })
    }

    /// Clusters one trajectory `[frames, features]` or a list of them (stacked).
    fn fit<'py>(slf: Bound<'py, Self>, data: Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        let model = fit_clustering(slf.py(), &slf.borrow().estimator, &data)?;
        slf.borrow_mut().model = Some(model);
        Ok(slf)
    }

    /// The fitted model (immutable).
    fn fetch_model(&self, py: Python<'_>) -> PyResult<Py<PyClusterModel>> {
        fetched(py, &self.model, "KMeans")
    }
}

/// Regular-space clustering: `RegularSpace(dmin=0.1).fit(x).fetch_model()`.
#[pyclass(module = "boltzflow", name = "RegularSpace")]
struct PyRegularSpace {
    estimator: Clustering,
    model: Option<Py<PyClusterModel>>,
}

#[pymethods]
impl PyRegularSpace {
    /// Centres at least `dmin` apart, at most `max_centers` of them.
    #[new]
    #[pyo3(signature = (dmin, max_centers = 1000))]
    fn new(dmin: f64, max_centers: usize) -> PyResult<Self> {
        let r = RegularSpace::new(dmin, max_centers).map_err(py_err)?;
        Ok(Self {
            estimator: Clustering::RegularSpace(r),
            model: None,
        })
    }

    /// Clusters one trajectory `[frames, features]` or a list of them (stacked).
    fn fit<'py>(slf: Bound<'py, Self>, data: Bound<'py, PyAny>) -> PyResult<Bound<'py, Self>> {
        let model = fit_clustering(slf.py(), &slf.borrow().estimator, &data)?;
        slf.borrow_mut().model = Some(model);
        Ok(slf)
    }

    /// The fitted model (immutable).
    fn fetch_model(&self, py: Python<'_>) -> PyResult<Py<PyClusterModel>> {
        fetched(py, &self.model, "RegularSpace")
    }
}

/// Cluster centres; `transform` assigns frames to the nearest one.
#[pyclass(module = "boltzflow", frozen, name = "ClusterModel")]
struct PyClusterModel {
    inner: ClusterModel,
}

#[pymethods]
impl PyClusterModel {
    /// A model of given centres `[k, features]` (assignment only).
    #[staticmethod]
    fn from_centers(centers: PyReadonlyArray2<'_, f64>) -> Self {
        Self {
            inner: ClusterModel::from_centers(centers.as_array().to_owned()),
        }
    }

    /// The discrete trajectory (int64 `[frames]`) of `[frames, features]`.
    fn transform<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let x = x.as_array();
        let labels = py.detach(|| self.inner.assign(x)).map_err(py_err)?;
        Ok(labels
            .into_iter()
            .map(|l| l as i64)
            .collect::<Array1<i64>>()
            .into_pyarray(py))
    }

    /// Centres `[k, features]`.
    #[getter]
    fn cluster_centers<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        self.inner.centers.clone().into_pyarray(py)
    }

    /// Number of centres.
    #[getter]
    fn n_clusters(&self) -> usize {
        self.inner.centers.nrows()
    }

    /// Sum of squared distances to the assigned centres.
    #[getter]
    fn inertia(&self) -> f64 {
        self.inner.inertia
    }

    /// Whether the iterations met the tolerance (k-means).
    #[getter]
    fn converged(&self) -> bool {
        self.inner.converged
    }
}

/// Maximum-likelihood MSM: `MaximumLikelihoodMSM(reversible=True).fit(dtrajs, lagtime=10)`.
#[pyclass(module = "boltzflow", name = "MaximumLikelihoodMSM")]
struct PyMlMsm {
    estimator: MaximumLikelihoodMsm,
    lagtime: Option<usize>,
    model: Option<Py<PyMsm>>,
}

#[pymethods]
impl PyMlMsm {
    /// `maxerr` bounds the change of the stationary vector at the reversible fixed point,
    /// `maxiter` its iterations.
    #[new]
    #[pyo3(signature = (reversible = true, lagtime = None, maxiter = 1_000_000, maxerr = 1e-12))]
    fn new(
        reversible: bool,
        lagtime: Option<usize>,
        maxiter: usize,
        maxerr: f64,
    ) -> PyResult<Self> {
        let estimator = MaximumLikelihoodMsm::new(reversible)
            .convergence(maxerr, maxiter)
            .map_err(py_err)?;
        Ok(Self {
            estimator,
            lagtime,
            model: None,
        })
    }

    /// Counts transitions at `lagtime` (default: the constructor's) in one discrete trajectory
    /// or a list of them and estimates the MSM on the largest connected set.
    #[pyo3(signature = (dtrajs, lagtime = None))]
    fn fit<'py>(
        slf: Bound<'py, Self>,
        dtrajs: Bound<'py, PyAny>,
        lagtime: Option<usize>,
    ) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        let d = discrete_trajs(&dtrajs)?;
        let (est, lag) = {
            let me = slf.borrow();
            (me.estimator.clone(), lagtime.or(me.lagtime))
        };
        let lag = lag.ok_or_else(|| {
            PyValueError::new_err(
                "MaximumLikelihoodMSM: give the lag time, in the constructor or fit(dtrajs, lagtime=…)",
            )
        })?;
        let views: Vec<&[usize]> = d.iter().map(Vec::as_slice).collect();
        let msm = py.detach(|| est.fit(&views, lag, None)).map_err(py_err)?;
        slf.borrow_mut().model = Some(Py::new(py, PyMsm { inner: msm })?);
        Ok(slf)
    }

    /// The fitted model (immutable).
    fn fetch_model(&self, py: Python<'_>) -> PyResult<Py<PyMsm>> {
        fetched(py, &self.model, "MaximumLikelihoodMSM")
    }
}

/// A Markov state model on the active (largest strongly connected) set.
#[pyclass(module = "boltzflow", frozen, name = "MarkovStateModel")]
struct PyMsm {
    inner: Msm,
}

#[pymethods]
impl PyMsm {
    /// Transition matrix `[n, n]` on the active set.
    #[getter]
    fn transition_matrix<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        self.inner.transition_matrix.clone().into_pyarray(py)
    }

    /// Stationary distribution `[n]`.
    #[getter]
    fn stationary_distribution<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.stationary_distribution.clone().into_pyarray(py)
    }

    /// Transition counts `[n, n]` on the active set.
    #[getter]
    fn count_matrix<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        self.inner.count_matrix.clone().into_pyarray(py)
    }

    /// The original state indices of the active set.
    #[getter]
    fn active_set<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        self.inner
            .active_set
            .iter()
            .map(|&s| s as i64)
            .collect::<Array1<i64>>()
            .into_pyarray(py)
    }

    /// Active states.
    #[getter]
    fn n_states(&self) -> usize {
        self.inner.n_states()
    }

    /// Lag time in frames.
    #[getter]
    fn lagtime(&self) -> usize {
        self.inner.lagtime
    }

    /// Detailed balance enforced.
    #[getter]
    fn reversible(&self) -> bool {
        self.inner.reversible
    }

    /// Whether the reversible fixed point met `maxerr`.
    #[getter]
    fn converged(&self) -> bool {
        self.inner.converged
    }

    /// The `k` (default: all) leading implied timescales −τ/ln|λ_i| (frames).
    #[pyo3(signature = (k = None))]
    fn timescales<'py>(
        &self,
        py: Python<'py>,
        k: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let k = k.unwrap_or(self.inner.n_states().saturating_sub(1));
        let ts = self.inner.timescales(k).map_err(py_err)?;
        Ok(ts.into_pyarray(py))
    }

    /// PCCA+ into `n_metastable_sets`: a dict with `memberships` `[n, m]`, `assignments` `[n]`,
    /// `sets` (original state indices), `populations` `[m]` and `mfpt` `[m, m]` (frames).
    fn pcca<'py>(&self, py: Python<'py>, n_metastable_sets: usize) -> PyResult<Bound<'py, PyAny>> {
        let ms = self
            .inner
            .metastable_sets(n_metastable_sets)
            .map_err(py_err)?;
        let d = pyo3::types::PyDict::new(py);
        d.set_item("memberships", ms.pcca.memberships.into_pyarray(py))?;
        d.set_item("assignments", ms.pcca.assignments)?;
        d.set_item("sets", ms.pcca.sets)?;
        d.set_item("populations", ms.populations)?;
        d.set_item("mfpt", ms.mfpt.into_pyarray(py))?;
        Ok(d.into_any())
    }

    /// Mean first passage time (frames) from the states `a` to the states `b` (original
    /// indices).
    fn mfpt(&self, a: Vec<usize>, b: Vec<usize>) -> PyResult<f64> {
        self.inner.mfpt(&a, &b).map_err(py_err)
    }
}

/// Implied timescales `[len(lagtimes), k]` (frames) of MSMs estimated at each lag time.
#[pyfunction]
#[pyo3(signature = (dtrajs, lagtimes, k = 5, reversible = true))]
fn implied_timescales<'py>(
    py: Python<'py>,
    dtrajs: Bound<'py, PyAny>,
    lagtimes: Vec<usize>,
    k: usize,
    reversible: bool,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let d = discrete_trajs(&dtrajs)?;
    let views: Vec<&[usize]> = d.iter().map(Vec::as_slice).collect();
    let est = MaximumLikelihoodMsm::new(reversible);
    let table = py
        .detach(|| boltzflow_kinetics::implied_timescales_over_lags(&views, &lagtimes, k, &est))
        .map_err(py_err)?;
    Ok(table.into_pyarray(py))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTica>()?;
    m.add_class::<PyTicaModel>()?;
    m.add_class::<PyVamp>()?;
    m.add_class::<PyVampModel>()?;
    m.add_class::<PyKMeans>()?;
    m.add_class::<PyRegularSpace>()?;
    m.add_class::<PyClusterModel>()?;
    m.add_class::<PyMlMsm>()?;
    m.add_class::<PyMsm>()?;
    m.add_function(wrap_pyfunction!(implied_timescales, m)?)?;
    Ok(())
}
