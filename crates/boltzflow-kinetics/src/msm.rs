//! Markov state models: maximum-likelihood transition matrices (reversible or not), their
//! spectral analysis, implied timescales, mean first passage times, PCCA+ and the
//! Chapman–Kolmogorov test.
//!
//! # References
//! Prinz et al., J. Chem. Phys. 134, 174105 (2011) — reversible MLE (Eq. 26–27), ITS, CK test;
//! Bowman, Beauchamp, Boxer & Pande, J. Chem. Phys. 131, 124101 (2009);
//! Röblitz & Weber, Adv. Data Anal. Classif. 7, 147 (2013) — PCCA+.

use crate::counting::{connected_sets, count_matrix, submatrix};
use crate::linalg::{symmetric_eigen, to_faer};
use crate::tica::implied_timescales;
use boltzflow_core::{Error, Result};
use faer::linalg::solvers::Solve;
use ndarray::{Array1, Array2, Array3, ArrayView2, s};

/// Maximum-likelihood MSM estimator.
#[derive(Debug, Clone)]
pub struct MaximumLikelihoodMsm {
    reversible: bool,
    max_iter: usize,
    tolerance: f64,
}

impl MaximumLikelihoodMsm {
    /// Reversible (detailed balance) or not; the reversible fixed point runs until the largest
    /// change of the stationary vector is below 1e-12, at most 10⁶ iterations.
    pub fn new(reversible: bool) -> Self {
        Self {
            reversible,
            max_iter: 1_000_000,
            tolerance: 1e-12,
        }
    }

    /// Convergence tolerance (max |Δπ_i| between iterations) and iteration limit.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a non-positive tolerance or zero iterations.
    pub fn convergence(mut self, tolerance: f64, max_iter: usize) -> Result<Self> {
        if tolerance.is_nan() || tolerance <= 0.0 {
            return Err(Error::invalid(
                "tolerance",
                format!("{tolerance} is not positive"),
            ));
        }
        if max_iter == 0 {
            return Err(Error::invalid("max_iter", "must be at least 1"));
        }
        self.tolerance = tolerance;
        self.max_iter = max_iter;
        Ok(self)
    }

    /// Counts transitions at `lagtime` in `dtrajs`, restricts to the largest strongly connected
    /// set and estimates the transition matrix there.
    ///
    /// # Errors
    /// Counting errors ([`count_matrix`]).
    pub fn fit(&self, dtrajs: &[&[usize]], lagtime: usize, n_states: Option<usize>) -> Result<Msm> {
        let c = count_matrix(dtrajs, lagtime, n_states)?;
        self.fit_counts(&c, lagtime)
    }

    /// Estimates from a full count matrix `[n, n]`, restricted to its largest strongly connected
    /// set (the other sets are listed in [`Msm::connected_set_sizes`]).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a non-square, negative or empty count matrix.
    pub fn fit_counts(&self, counts: &Array2<f64>, lagtime: usize) -> Result<Msm> {
        if counts.nrows() != counts.ncols() || counts.nrows() == 0 {
            return Err(Error::shape(
                "count matrix",
                "square and non-empty",
                format!("{:?}", counts.dim()),
            ));
        }
        if let Some(v) = counts.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
            return Err(Error::invalid(
                "counts",
                format!("count {v} is not a finite number ≥ 0"),
            ));
        }
        let total = counts.sum();
        if total <= 0.0 {
            return Err(Error::invalid("counts", "no transitions were counted"));
        }
        let sets = connected_sets(counts);
        let active = sets[0].clone();
        let c = submatrix(counts, &active);
        let (t, pi, iterations, change) = if self.reversible {
            reversible_mle(&c, self.tolerance, self.max_iter)
        } else {
            let t = row_normalise(&c);
            let pi = stationary_distribution(&t)?;
            (t, pi, 0, 0.0)
        };
        Ok(Msm {
            lagtime,
            reversible: self.reversible,
            active_count_fraction: c.sum() / total,
            connected_set_sizes: sets.iter().map(Vec::len).collect(),
            n_states_full: counts.nrows(),
            active_set: active,
            count_matrix: c,
            transition_matrix: t,
            stationary_distribution: pi,
            iterations,
            converged: !self.reversible || change < self.tolerance,
            final_change: change,
        })
    }
}

fn row_normalise(c: &Array2<f64>) -> Array2<f64> {
    let mut t = c.clone();
    for mut row in t.rows_mut() {
        let s = row.sum();
        if s > 0.0 {
            row /= s;
        }
    }
    // a single-state set may have no self-counts: it stays put
    if t.nrows() == 1 {
        t[[0, 0]] = 1.0;
    }
    t
}

/// The reversible maximum-likelihood fixed point of Prinz et al. (2011), Eq. (26–27), iterated
/// on the unnormalised stationary vector x:
/// x_i ← Σ_j (c_ij + c_ji) / (c_i/x_i + c_j/x_j), with c_i = Σ_j c_ij, normalised each step,
/// until max_i |Δx_i| < tol. Works on the nonzero entries of C + Cᵀ only.
///
/// Returns (T, π, iterations, last change).
fn reversible_mle(
    c: &Array2<f64>,
    tol: f64,
    max_iter: usize,
) -> (Array2<f64>, Array1<f64>, usize, f64) {
    let n = c.nrows();
    if n == 1 {
        return (Array2::ones((1, 1)), Array1::ones(1), 0, 0.0);
    }
    let ci: Vec<f64> = c.rows().into_iter().map(|r| r.sum()).collect();
    // sparse rows of the symmetric count matrix S = C + Cᵀ
    let mut rows: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
    for i in 0..n {
        for j in 0..n {
            let v = c[[i, j]] + c[[j, i]];
            if v > 0.0 {
                rows[i].push((j, v));
            }
        }
    }
    let ssum: f64 = rows.iter().flatten().map(|e| e.1).sum();
    let mut x: Vec<f64> = rows
        .iter()
        .map(|r| r.iter().map(|e| e.1).sum::<f64>() / ssum)
        .collect();
    let mut next = vec![0.0; n];
    let mut iterations = 0;
    let mut change = f64::INFINITY;
    while iterations < max_iter {
        iterations += 1;
        let q: Vec<f64> = (0..n).map(|i| ci[i] / x[i]).collect();
        for i in 0..n {
            next[i] = rows[i].iter().map(|&(j, v)| v / (q[i] + q[j])).sum();
        }
        let norm: f64 = next.iter().sum();
        change = 0.0;
        for i in 0..n {
            let v = next[i] / norm;
            change = change.max((v - x[i]).abs());
            x[i] = v;
        }
        if change < tol {
            break;
        }
    }
    let q: Vec<f64> = (0..n).map(|i| ci[i] / x[i]).collect();
    let mut xm = Array2::<f64>::zeros((n, n));
    for i in 0..n {
        for &(j, v) in &rows[i] {
            xm[[i, j]] = v / (q[i] + q[j]);
        }
    }
    let rowsum: Array1<f64> = xm.rows().into_iter().map(|r| r.sum()).collect();
    let pi = &rowsum / rowsum.sum();
    let t = &xm / &rowsum.view().insert_axis(ndarray::Axis(1));
    (t, pi, iterations, change)
}

/// Stationary distribution of an irreducible row-stochastic matrix: solves πᵀ(T − I) = 0 with
/// Σπ = 1 by LU (one balance equation replaced by the normalisation).
///
/// # Errors
/// [`Error::Numerical`] if the system is singular (T reducible).
pub fn stationary_distribution(t: &Array2<f64>) -> Result<Array1<f64>> {
    let n = t.nrows();
    let mut a = Array2::from_shape_fn((n, n), |(i, j)| t[[j, i]] - if i == j { 1.0 } else { 0.0 });
    a.row_mut(n - 1).fill(1.0);
    let mut b = faer::Mat::<f64>::zeros(n, 1);
    b[(n - 1, 0)] = 1.0;
    let lu = to_faer(a.view()).partial_piv_lu();
    let x = lu.solve(&b);
    let pi: Array1<f64> = (0..n).map(|i| x[(i, 0)]).collect();
    if pi.iter().any(|v| !v.is_finite()) {
        return Err(Error::Numerical {
            what: "stationary distribution".into(),
            reason: "singular system: the transition matrix is reducible".into(),
        });
    }
    // round-off can leave −1e-17 entries
    let pi = pi.mapv(|v| v.max(0.0));
    let total = pi.sum();
    Ok(pi / total)
}

/// A Markov state model on its active set.
#[derive(Debug, Clone)]
pub struct Msm {
    /// Lag time τ in frames.
    pub lagtime: usize,
    /// Estimated with detailed balance.
    pub reversible: bool,
    /// Row-stochastic transition matrix on the active set, `[n_active, n_active]`.
    pub transition_matrix: Array2<f64>,
    /// Stationary distribution on the active set, `[n_active]`.
    pub stationary_distribution: Array1<f64>,
    /// Counts on the active set, `[n_active, n_active]`.
    pub count_matrix: Array2<f64>,
    /// Original state indices of the active set (ascending).
    pub active_set: Vec<usize>,
    /// Number of states before restriction.
    pub n_states_full: usize,
    /// Sizes of all strongly connected sets, largest (the active set) first.
    pub connected_set_sizes: Vec<usize>,
    /// Fraction of all counts inside the active set.
    pub active_count_fraction: f64,
    /// Iterations of the reversible fixed point (0 for non-reversible).
    pub iterations: usize,
    /// Whether the fixed point met its tolerance.
    pub converged: bool,
    /// Last max |Δπ| of the fixed point.
    pub final_change: f64,
}

/// Eigenvalues, right and left eigenvectors of a transition matrix, by descending |λ|.
#[derive(Debug, Clone)]
pub struct Spectrum {
    /// Eigenvalues (real parts; imaginary parts are dropped for non-reversible matrices).
    pub values: Array1<f64>,
    /// Imaginary parts (all zero for reversible models).
    pub imaginary: Array1<f64>,
    /// Right eigenvectors in columns; for reversible models π-orthonormal (Rᵀ diag(π) R = I)
    /// with the first column ≡ 1.
    pub right: Array2<f64>,
}

impl Msm {
    /// Number of active states.
    pub fn n_states(&self) -> usize {
        self.active_set.len()
    }

    /// The eigendecomposition. Reversible models use the symmetric matrix D^{1/2} T D^{-1/2}
    /// (D = diag π), so eigenvalues are real and accurate; others use a general eigensolver.
    ///
    /// # Errors
    /// [`Error::Numerical`] if the eigensolver fails.
    pub fn spectrum(&self) -> Result<Spectrum> {
        let n = self.n_states();
        let pi = &self.stationary_distribution;
        if self.reversible {
            let sq = pi.mapv(f64::sqrt);
            let mut sym = Array2::from_shape_fn((n, n), |(i, j)| {
                sq[i] * self.transition_matrix[[i, j]] / sq[j]
            });
            let symt = sym.t().to_owned();
            sym = (&sym + &symt) / 2.0;
            let (values, v) = symmetric_eigen(sym.view(), "MSM eigenvalues")?;
            let mut right = Array2::from_shape_fn((n, n), |(i, k)| v[[i, k]] / sq[i]);
            // sign: first right eigenvector positive (≡ 1), the others with a positive largest entry
            for mut col in right.columns_mut() {
                let imax = (0..n)
                    .max_by(|&a, &b| col[a].abs().total_cmp(&col[b].abs()))
                    .unwrap_or(0);
                if col[imax] < 0.0 {
                    col.mapv_inplace(|x| -x);
                }
            }
            Ok(Spectrum {
                imaginary: Array1::zeros(n),
                values,
                right,
            })
        } else {
            let evd = to_faer(self.transition_matrix.view())
                .eigen()
                .map_err(|e| Error::Numerical {
                    what: "MSM eigenvalues".into(),
                    reason: format!("eigendecomposition did not converge ({e:?})"),
                })?;
            let s = evd.S().column_vector();
            let u = evd.U();
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| s[b].norm().total_cmp(&s[a].norm()));
            Ok(Spectrum {
                values: order.iter().map(|&k| s[k].re).collect(),
                imaginary: order.iter().map(|&k| s[k].im).collect(),
                right: Array2::from_shape_fn((n, n), |(i, c)| u[(i, order[c])].re),
            })
        }
    }

    /// The k leading implied timescales −τ/ln|λ_i|, i = 1..=k, in frames (NaN where there are fewer
    /// eigenvalues). For complex eigenvalues |λ| is the modulus.
    ///
    /// # Errors
    /// As [`Self::spectrum`].
    pub fn timescales(&self, k: usize) -> Result<Array1<f64>> {
        let sp = self.spectrum()?;
        let moduli: Vec<f64> = sp
            .values
            .iter()
            .zip(sp.imaginary.iter())
            .skip(1)
            .map(|(r, i)| r.hypot(*i))
            .collect();
        let ts = implied_timescales(&moduli, self.lagtime as f64);
        Ok((0..k)
            .map(|i| ts.get(i).copied().unwrap_or(f64::NAN))
            .collect())
    }

    /// Maps original state indices to active-set positions.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming a state that is not in the active set.
    pub fn active_indices(&self, states: &[usize]) -> Result<Vec<usize>> {
        states
            .iter()
            .map(|&s| {
                self.active_set.binary_search(&s).map_err(|_| {
                    Error::invalid(
                        "states",
                        format!(
                            "state {s} is not in the active (largest connected) set of {} states",
                            self.n_states()
                        ),
                    )
                })
            })
            .collect()
    }

    /// Mean first passage time from the set `from` to the set `to` (original state indices), in
    /// frames: m_i = 0 on `to`, m_i = τ + Σ_j T_ij m_j elsewhere, averaged over `from` with
    /// stationary weights.
    ///
    /// # Errors
    /// States outside the active set; empty sets.
    pub fn mfpt(&self, from: &[usize], to: &[usize]) -> Result<f64> {
        if from.is_empty() || to.is_empty() {
            return Err(Error::invalid(
                "states",
                "both state sets must be non-empty",
            ));
        }
        let a = self.active_indices(from)?;
        let b = self.active_indices(to)?;
        let n = self.n_states();
        let mut in_b = vec![false; n];
        for &i in &b {
            in_b[i] = true;
        }
        let rest: Vec<usize> = (0..n).filter(|&i| !in_b[i]).collect();
        let mut m = Array1::<f64>::zeros(n);
        if !rest.is_empty() {
            let r = rest.len();
            let mat = Array2::from_shape_fn((r, r), |(p, q)| {
                (if p == q { 1.0 } else { 0.0 }) - self.transition_matrix[[rest[p], rest[q]]]
            });
            let rhs = faer::Mat::<f64>::from_fn(r, 1, |_, _| self.lagtime as f64);
            let sol = to_faer(mat.view()).partial_piv_lu().solve(&rhs);
            for (p, &i) in rest.iter().enumerate() {
                m[i] = sol[(p, 0)];
            }
        }
        let w: f64 = a.iter().map(|&i| self.stationary_distribution[i]).sum();
        Ok(a.iter()
            .map(|&i| self.stationary_distribution[i] * m[i])
            .sum::<f64>()
            / w)
    }

    /// PCCA+ fuzzy memberships into `m` metastable sets.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when m < 2 or m exceeds the number of states; eigensolver
    /// failures.
    pub fn pcca(&self, m: usize) -> Result<Pcca> {
        let n = self.n_states();
        if m < 2 || m > n {
            return Err(Error::invalid(
                "n_metastable",
                format!("{m} sets: need 2 ≤ m ≤ {n} active states"),
            ));
        }
        let sp = self.spectrum()?;
        let mut x = sp.right.slice(s![.., ..m]).to_owned();
        if !self.reversible {
            // π-orthonormalise the (real parts of the) right eigenvectors by Gram–Schmidt
            let pi = &self.stationary_distribution;
            for k in 0..m {
                for l in 0..k {
                    let proj: f64 = (0..n).map(|i| pi[i] * x[[i, k]] * x[[i, l]]).sum();
                    for i in 0..n {
                        x[[i, k]] -= proj * x[[i, l]];
                    }
                }
                let norm: f64 = (0..n)
                    .map(|i| pi[i] * x[[i, k]] * x[[i, k]])
                    .sum::<f64>()
                    .sqrt();
                x.column_mut(k).mapv_inplace(|v| v / norm);
            }
            if x[[0, 0]] < 0.0 {
                x.column_mut(0).mapv_inplace(|v| -v);
            }
        }
        let memberships = crate::pcca::memberships(x.view())?;
        let assignments: Vec<usize> = memberships
            .rows()
            .into_iter()
            .map(|r| (0..m).max_by(|&a, &b| r[a].total_cmp(&r[b])).unwrap_or(0))
            .collect();
        let sets = (0..m)
            .map(|k| {
                (0..n)
                    .filter(|&i| assignments[i] == k)
                    .map(|i| self.active_set[i])
                    .collect()
            })
            .collect();
        Ok(Pcca {
            memberships,
            assignments,
            sets,
        })
    }

    /// PCCA+ into `m` metastable sets, with each set's stationary population and the mean
    /// first passage times between the sets (`mfpt[[a, b]]` from a to b, frames; 0 on the
    /// diagonal and where a set is empty).
    ///
    /// # Errors
    /// As [`Self::pcca`] and [`Self::mfpt`].
    pub fn metastable_sets(&self, m: usize) -> Result<MetastableSets> {
        let pcca = self.pcca(m)?;
        let populations = (0..m)
            .map(|k| {
                (0..self.n_states())
                    .filter(|&i| pcca.assignments[i] == k)
                    .map(|i| self.stationary_distribution[i])
                    .sum()
            })
            .collect();
        let mut mfpt = Array2::<f64>::zeros((m, m));
        for a in 0..m {
            for b in 0..m {
                if a != b && !pcca.sets[a].is_empty() && !pcca.sets[b].is_empty() {
                    mfpt[[a, b]] = self.mfpt(&pcca.sets[a], &pcca.sets[b])?;
                }
            }
        }
        Ok(MetastableSets {
            pcca,
            populations,
            mfpt,
        })
    }

    /// k-step propagation of set distributions for the CK test: for memberships M `[n, m]`,
    /// P_k = diag(Mᵀπ)⁻¹ Mᵀ diag(π) Tᵏ M, `[m, m]` (row a: where mass starting in set a is after k
    /// lag steps).
    pub fn coarse_propagator(&self, memberships: ArrayView2<'_, f64>, k: usize) -> Array2<f64> {
        let pi = &self.stationary_distribution;
        let mut tk_m = memberships.to_owned();
        for _ in 0..k {
            tk_m = self.transition_matrix.dot(&tk_m);
        }
        let weighted =
            Array2::from_shape_fn(memberships.dim(), |(i, a)| pi[i] * memberships[[i, a]]);
        let mut p = weighted.t().dot(&tk_m);
        for (a, mut row) in p.rows_mut().into_iter().enumerate() {
            let w = weighted.column(a).sum();
            row /= w;
        }
        p
    }
}

/// Metastable sets of an MSM ([`Msm::metastable_sets`]).
#[derive(Debug, Clone)]
pub struct MetastableSets {
    /// The PCCA+ memberships and crisp sets.
    pub pcca: Pcca,
    /// Stationary probability of each crisp set, `[m]`.
    pub populations: Vec<f64>,
    /// Mean first passage times between the sets, frames, `[m, m]`.
    pub mfpt: Array2<f64>,
}

/// PCCA+ result on the active set.
#[derive(Debug, Clone)]
pub struct Pcca {
    /// χ `[n_active, m]`: membership of each state in each metastable set; rows sum to 1.
    pub memberships: Array2<f64>,
    /// Crisp assignment (argmax of the memberships), per active state.
    pub assignments: Vec<usize>,
    /// The crisp sets as original state indices.
    pub sets: Vec<Vec<usize>>,
}

/// Implied timescales `[n_lags, k]` (frames) of MSMs estimated at each lag time.
///
/// # Errors
/// Counting errors (a lag longer than a trajectory is an error naming the trajectory).
pub fn implied_timescales_over_lags(
    dtrajs: &[&[usize]],
    lagtimes: &[usize],
    k: usize,
    estimator: &MaximumLikelihoodMsm,
) -> Result<Array2<f64>> {
    let mut out = Array2::<f64>::from_elem((lagtimes.len(), k), f64::NAN);
    for (r, &lag) in lagtimes.iter().enumerate() {
        let msm = estimator.fit(dtrajs, lag, None)?;
        out.row_mut(r).assign(&msm.timescales(k)?);
    }
    Ok(out)
}

/// The Chapman–Kolmogorov test: `predicted[k] = P_model(kτ)` from powers of the model's T and
/// `estimated[k]` from MSMs estimated at lag kτ, both coarse-grained onto the membership sets
/// (`[n_steps + 1, m, m]`, index 0 the identity).
#[derive(Debug, Clone)]
pub struct CkTest {
    /// Lag times kτ in frames, `[n_steps + 1]`.
    pub lagtimes: Vec<usize>,
    /// Model predictions, `[n_steps + 1, m, m]`.
    pub predicted: Array3<f64>,
    /// Re-estimations, `[n_steps + 1, m, m]`.
    pub estimated: Array3<f64>,
}

/// Runs the CK test for `msm` with memberships `[n_active, m]` over `n_steps` multiples of τ.
/// Memberships are carried to the active set at lag kτ by state index; states not active at τ get
/// membership 0 (and are thus left out).
///
/// # Errors
/// Estimation errors at the longer lags.
pub fn ck_test(
    msm: &Msm,
    memberships: ArrayView2<'_, f64>,
    dtrajs: &[&[usize]],
    n_steps: usize,
    estimator: &MaximumLikelihoodMsm,
) -> Result<CkTest> {
    let m = memberships.ncols();
    let mut predicted = Array3::<f64>::zeros((n_steps + 1, m, m));
    let mut estimated = Array3::<f64>::zeros((n_steps + 1, m, m));
    let mut lags = Vec::with_capacity(n_steps + 1);
    for k in 0..=n_steps {
        lags.push(k * msm.lagtime);
        predicted
            .slice_mut(s![k, .., ..])
            .assign(&msm.coarse_propagator(memberships, k));
        if k == 0 {
            // lag 0: both are the overlap of the fuzzy sets (the identity for crisp sets)
            estimated
                .slice_mut(s![0, .., ..])
                .assign(&msm.coarse_propagator(memberships, 0));
            continue;
        }
        let other = estimator.fit(dtrajs, k * msm.lagtime, Some(msm.n_states_full))?;
        let mo = Array2::from_shape_fn((other.n_states(), m), |(i, a)| {
            msm.active_set
                .binary_search(&other.active_set[i])
                .map(|p| memberships[[p, a]])
                .unwrap_or(0.0)
        });
        estimated
            .slice_mut(s![k, .., ..])
            .assign(&other.coarse_propagator(mo.view(), 1));
    }
    Ok(CkTest {
        lagtimes: lags,
        predicted,
        estimated,
    })
}
