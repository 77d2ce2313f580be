//! Well-tempered metadynamics (Laio & Parrinello, PNAS 99, 12562, 2002; Barducci, Bussi &
//! Parrinello, PRL 100, 020603, 2008) on one or two collective variables, with several walkers
//! sharing one bias (Raiteri et al., J. Phys. Chem. B 110, 3533, 2006), and the time-dependent
//! reweighting of Tiwary & Parrinello (J. Phys. Chem. B 119, 736, 2015).
//!
//! Every `pace` steps each walker adds a Gaussian of height w·e^{−V(s)/(kT(γ−1))} and widths σ at
//! its CV value s to the bias V; with bias factor γ the bias converges to
//! V(s) → −(1 − 1/γ) F(s) (up to a constant), so F(s) = −γ/(γ − 1) V(s), and a frame sampled at
//! time t under V(·, t) has the weight e^{β(V(s, t) − c(t))} with
//! c(t) = kT ln [∫ e^{γβV/(γ−1)} ds / ∫ e^{βV/(γ−1)} ds].
//!
//! The bias lives on a grid (values, gradients and for two CVs the mixed derivative, all
//! accumulated analytically from the Gaussians; (bi)cubic Hermite interpolation between the
//! points, so the force is the exact gradient of the bias): evaluating it costs the same
//! whatever the number of hills. Written by hand: no Rust crate implements metadynamics (PLUMED is C++ and would need
//! its own build and a driver).
//!
//! The bias is frozen while the walkers move (`pace` steps of any [`Move`]), then the walkers
//! deposit in chain order: the run is deterministic and independent of the thread count.

use ndarray::{Array2, ArrayView1};

use boltzflow_core::{
    Coordinate, Energy, Error, Move, Result, SamplerState, ThermodynamicState, geometry,
};

use crate::bias::RowBias;

/// A collective variable defined outside this crate, such as a learned one (the encoder mean
/// of a VAE), with its exact gradient.
pub trait LearnedCv: Send + Sync + std::fmt::Debug {
    /// s(x) of one configuration `x` `[dim]`, and ∂s/∂x added to `grad` times `scale` when
    /// given. Called for every configuration at every step: it should not allocate.
    fn value(&self, x: ArrayView1<f64>, grad: Option<(&mut [f64], f64)>) -> f64;
    /// Coordinates per configuration it reads.
    fn dim(&self) -> usize;
    /// The grid range to use when none is given (for example, where the CV's training data
    /// lie), or `None`.
    fn default_range(&self) -> Option<[f64; 2]> {
        None
    }
}

/// A collective variable s(x) with its gradient.
#[derive(Debug, Clone)]
pub enum CollectiveVariable {
    /// A reaction coordinate of the toy systems (projection or distance).
    Coordinate(Coordinate),
    /// The dihedral angle (radians, periodic on [−π, π)) of four atoms of a molecule whose
    /// rows hold x, y, z per atom.
    Dihedral([usize; 4]),
    /// A CV from outside the crate (not periodic).
    Learned(std::sync::Arc<dyn LearnedCv>),
}

impl PartialEq for CollectiveVariable {
    /// Learned CVs are equal when they are the same object.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Coordinate(a), Self::Coordinate(b)) => a == b,
            (Self::Dihedral(a), Self::Dihedral(b)) => a == b,
            (Self::Learned(a), Self::Learned(b)) => std::sync::Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl CollectiveVariable {
    /// Whether s is an angle on [−π, π).
    pub fn periodic(&self) -> bool {
        matches!(self, Self::Dihedral(_))
    }

    /// The grid range of a learned CV when none is given.
    pub fn default_range(&self) -> Option<[f64; 2]> {
        match self {
            Self::Learned(cv) => cv.default_range(),
            _ => None,
        }
    }

    /// s(x), and ∂s/∂x added to `grad` times `scale` (when given).
    pub fn value(&self, x: ArrayView1<f64>, grad: Option<(&mut [f64], f64)>) -> f64 {
        match self {
            Self::Coordinate(c) => {
                if let Some((g, scale)) = grad {
                    c.add_gradient(x, scale, g);
                }
                c.value(x)
            }
            Self::Dihedral(atoms) => {
                let p = atoms.map(|a| [x[3 * a], x[3 * a + 1], x[3 * a + 2]]);
                let d = geometry::dihedral(p);
                if let (Some((g, scale)), Some(dg)) = (grad, d.gradient) {
                    for (a, ga) in atoms.iter().zip(dg) {
                        for c in 0..3 {
                            g[3 * a + c] += scale * ga[c];
                        }
                    }
                }
                d.angle()
            }
            Self::Learned(cv) => cv.value(x, grad),
        }
    }

    /// Checks that the CV fits configurations of `dim` coordinates.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming `field` for atoms beyond the system.
    pub fn check(&self, dim: usize, field: &str) -> Result<()> {
        if let Self::Learned(cv) = self
            && cv.dim() != dim
        {
            return Err(Error::invalid(
                field,
                format!(
                    "the CV reads {} coordinates per configuration, the system has {dim}",
                    cv.dim()
                ),
            ));
        }
        if let Self::Dihedral(atoms) = self
            && let Some(a) = atoms.iter().find(|&&a| 3 * a + 3 > dim)
        {
            return Err(Error::invalid(
                field,
                format!(
                    "atom {a} is beyond the system's {} atoms (atoms count from 0)",
                    dim / 3
                ),
            ));
        }
        Ok(())
    }
}

/// One grid axis of the bias.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridAxis {
    /// Lower end (−π for a periodic CV).
    pub lo: f64,
    /// Upper end (π for a periodic CV).
    pub hi: f64,
    /// Grid points (periodic: points at lo + i·(hi − lo)/bins, i < bins; otherwise bins + 1
    /// points including both ends).
    pub bins: usize,
    /// The axis wraps around (a torsion).
    pub periodic: bool,
}

impl GridAxis {
    fn spacing(&self) -> f64 {
        (self.hi - self.lo) / self.bins as f64
    }
    fn points(&self) -> usize {
        self.bins + usize::from(!self.periodic)
    }
    fn point(&self, i: usize) -> f64 {
        self.lo + i as f64 * self.spacing()
    }
    /// Signed difference a − b, the shortest way round for a periodic axis.
    fn diff(&self, a: f64, b: f64) -> f64 {
        let d = a - b;
        if self.periodic {
            let p = self.hi - self.lo;
            d - p * (d / p).round()
        } else {
            d
        }
    }
    /// The cell of s and the fraction across it; `None` outside a non-periodic axis.
    fn locate(&self, s: f64) -> Option<(usize, usize, f64)> {
        let t = (s - self.lo) / self.spacing();
        if self.periodic {
            let t = t.rem_euclid(self.bins as f64);
            let i = (t.floor() as usize).min(self.bins - 1);
            Some((i, (i + 1) % self.bins, t - i as f64))
        } else if (0.0..=self.bins as f64).contains(&t) {
            let i = (t.floor() as usize).min(self.bins - 1);
            Some((i, i + 1, t - i as f64))
        } else {
            None
        }
    }
}

/// Cubic Hermite basis at t ∈ [0, 1] and its t-derivatives: weights of the value at the left
/// and right point, then of the (spacing-scaled) derivative at the left and right point.
fn hermite(t: f64) -> ([f64; 4], [f64; 4]) {
    let (t2, t3) = (t * t, t * t * t);
    (
        [
            2.0 * t3 - 3.0 * t2 + 1.0,
            -2.0 * t3 + 3.0 * t2,
            t3 - 2.0 * t2 + t,
            t3 - t2,
        ],
        [
            6.0 * t2 - 6.0 * t,
            -6.0 * t2 + 6.0 * t,
            3.0 * t2 - 4.0 * t + 1.0,
            3.0 * t2 - 2.0 * t,
        ],
    )
}

/// The position in the flat grid of point (i) or (i, j), `n1` points on axis 1.
fn flat_index(idx: &[usize], n1: usize) -> usize {
    match idx {
        [i] => *i,
        [i, j] => i * n1 + j,
        _ => unreachable!("1 or 2 CVs"),
    }
}

/// The settings of a well-tempered metadynamics run.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadynamicsParams {
    /// Initial Gaussian height w (energy units of the system).
    pub height: f64,
    /// Gaussian widths σ, one per CV (CV units; radians for torsions).
    pub sigma: Vec<f64>,
    /// Bias factor γ = (T + ΔT)/T > 1.
    pub bias_factor: f64,
    /// The grid, one axis per CV. Outside a non-periodic axis the bias is 0 and exerts no force.
    pub grid: Vec<GridAxis>,
}

/// The shared bias of a metadynamics run on one or two CVs.
#[derive(Debug, Clone)]
pub struct Metadynamics {
    cvs: Vec<CollectiveVariable>,
    params: MetadynamicsParams,
    thermo: ThermodynamicState,
    kt: f64,
    /// Bias values on the grid `[points of axis 0 × points of axis 1]` (axis 0 slowest).
    values: Vec<f64>,
    /// ∂V/∂s per grid point and CV.
    gradients: Vec<f64>,
    /// ∂²V/∂s₁∂s₂ per grid point (two CVs; empty for one).
    cross: Vec<f64>,
    hills: u64,
}

impl Metadynamics {
    /// An empty bias on `cvs` at temperature `thermo`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming `metadynamics.*` for a bad height, width, bias
    /// factor or grid (periodic CVs need a periodic axis on [−π, π)), or anything but 1 or 2 CVs.
    pub fn new(
        cvs: Vec<CollectiveVariable>,
        params: MetadynamicsParams,
        thermo: &ThermodynamicState,
    ) -> Result<Self> {
        let bad = |field: &str, why: String| Err(Error::invalid(field, why));
        if cvs.is_empty() || cvs.len() > 2 {
            return bad(
                "metadynamics.cvs",
                format!("need 1 or 2 collective variables, got {}", cvs.len()),
            );
        }
        if params.sigma.len() != cvs.len() || params.grid.len() != cvs.len() {
            return bad(
                "metadynamics.sigma",
                format!(
                    "need one width and one grid axis per CV ({}), got {} and {}",
                    cvs.len(),
                    params.sigma.len(),
                    params.grid.len()
                ),
            );
        }
        if !(params.height > 0.0 && params.height.is_finite()) {
            return bad(
                "metadynamics.height",
                format!("must be positive, got {}", params.height),
            );
        }
        if !(params.bias_factor > 1.0 && params.bias_factor.is_finite()) {
            return bad(
                "metadynamics.bias_factor",
                format!(
                    "must be above 1 (γ = (T + ΔT)/T), got {}",
                    params.bias_factor
                ),
            );
        }
        for ((cv, ax), &sig) in cvs.iter().zip(&params.grid).zip(&params.sigma) {
            if !(sig > 0.0 && sig.is_finite()) {
                return bad("metadynamics.sigma", format!("must be positive, got {sig}"));
            }
            let ordered = ax.lo.is_finite() && ax.hi.is_finite() && ax.lo < ax.hi;
            if ax.bins < 2 || !ordered || ax.spacing() > 0.5 * sig {
                return bad(
                    "metadynamics.grid",
                    format!(
                        "need at least 2 bins on lo < hi and a spacing of at most σ/2 ({}): got [{}, {}] in {} bins",
                        0.5 * sig,
                        ax.lo,
                        ax.hi,
                        ax.bins
                    ),
                );
            }
            if cv.periodic() != ax.periodic
                || (ax.periodic
                    && ((ax.lo + std::f64::consts::PI).abs() > 1e-9
                        || (ax.hi - std::f64::consts::PI).abs() > 1e-9))
            {
                return bad(
                    "metadynamics.grid",
                    "a torsion needs a periodic axis on [−π, π), other CVs a non-periodic one"
                        .into(),
                );
            }
        }
        let n: usize = params.grid.iter().map(GridAxis::points).product();
        Ok(Self {
            values: vec![0.0; n],
            gradients: vec![0.0; n * cvs.len()],
            cross: vec![0.0; if cvs.len() == 2 { n } else { 0 }],
            cvs,
            params,
            thermo: *thermo,
            kt: thermo.kt(),
            hills: 0,
        })
    }

    /// The collective variables.
    pub fn cvs(&self) -> &[CollectiveVariable] {
        &self.cvs
    }

    /// Gaussians deposited so far.
    pub fn hills(&self) -> u64 {
        self.hills
    }

    /// The CV values of configuration `x` (the first n_cv entries; no allocation, as this runs
    /// for every configuration at every step).
    pub fn cv_values(&self, x: ArrayView1<f64>) -> [f64; 2] {
        let mut s = [0.0; 2];
        for (v, c) in s.iter_mut().zip(&self.cvs) {
            *v = c.value(x, None);
        }
        s
    }

    fn grid_index(&self, idx: &[usize]) -> usize {
        flat_index(idx, self.params.grid.get(1).map_or(1, GridAxis::points))
    }

    /// V(s) and ∂V/∂s by cubic (1 CV) or bicubic (2 CVs) Hermite interpolation of the grid's
    /// values and derivatives, so that the force is the exact gradient of the interpolated
    /// bias; 0 outside a non-periodic axis.
    pub fn bias(&self, s: &[f64]) -> (f64, [f64; 2]) {
        // Per axis: the cell of s and its spacing (fixed-size: called per configuration and step).
        let n = self.cvs.len();
        let mut cells = [(0, 0, 0.0); 2];
        let mut sp = [0.0; 2];
        for (k, (ax, &v)) in self.params.grid.iter().zip(s).enumerate() {
            let Some(c) = ax.locate(v) else {
                return (0.0, [0.0; 2]);
            };
            cells[k] = c;
            sp[k] = ax.spacing();
        }
        match &cells[..n] {
            [(a, b, t)] => {
                let (w, dw) = hermite(*t);
                let (mut v, mut g) = (0.0, 0.0);
                for (k, p) in [*a, *b].into_iter().enumerate() {
                    let (f, f1) = (self.values[p], self.gradients[p]);
                    v += w[k] * f + sp[0] * w[2 + k] * f1;
                    g += (dw[k] * f + sp[0] * dw[2 + k] * f1) / sp[0];
                }
                (v, [g, 0.0])
            }
            [(a, b, t), (c, d, u)] => {
                let ((wt, dwt), (wu, dwu)) = (hermite(*t), hermite(*u));
                let (mut v, mut g1, mut g2) = (0.0, 0.0, 0.0);
                for (ka, i) in [*a, *b].into_iter().enumerate() {
                    for (kb, j) in [*c, *d].into_iter().enumerate() {
                        let p = self.grid_index(&[i, j]);
                        let f = self.values[p];
                        let (f1, f2) = (self.gradients[2 * p], self.gradients[2 * p + 1]);
                        let f12 = self.cross[p];
                        // Terms: value, Δ1·∂1, Δ2·∂2, Δ1Δ2·∂12, each a product of a t and a u basis.
                        let terms = [
                            (ka, kb, f),
                            (2 + ka, kb, sp[0] * f1),
                            (ka, 2 + kb, sp[1] * f2),
                            (2 + ka, 2 + kb, sp[0] * sp[1] * f12),
                        ];
                        for (it, iu, c) in terms {
                            v += wt[it] * wu[iu] * c;
                            g1 += dwt[it] * wu[iu] * c / sp[0];
                            g2 += wt[it] * dwu[iu] * c / sp[1];
                        }
                    }
                }
                (v, [g1, g2])
            }
            _ => unreachable!("1 or 2 CVs"),
        }
    }

    /// Adds one well-tempered Gaussian at CV values `s`: height w·e^{−V(s)/(kT(γ−1))}, to the
    /// grid points within 5σ. Returns the height deposited.
    pub fn deposit(&mut self, s: &[f64]) -> f64 {
        let dt = self.kt * (self.params.bias_factor - 1.0);
        let h = self.params.height * (-self.bias(s).0 / dt).exp();
        let nc = self.cvs.len();
        // Per axis: the grid points within 5σ and their offsets from s.
        let near: Vec<Vec<(usize, f64)>> = self
            .params
            .grid
            .iter()
            .zip(&self.params.sigma)
            .zip(s)
            .map(|((ax, &sig), &v)| {
                (0..ax.points())
                    .map(|i| (i, ax.diff(ax.point(i), v)))
                    .filter(|(_, d)| d.abs() <= 5.0 * sig)
                    .collect()
            })
            .collect();
        let sig = &self.params.sigma;
        let n1 = self.params.grid.get(1).map_or(1, GridAxis::points);
        let (values, gradients, cross) = (&mut self.values, &mut self.gradients, &mut self.cross);
        // G = h·exp(−Σ d²/2σ²) at grid point g, d = g − s: ∂G/∂g_c = −G d_c/σ_c²,
        // ∂²G/∂g₁∂g₂ = G d₁d₂/(σ₁²σ₂²).
        let mut put = |idx: &[usize], ds: &[f64]| {
            let arg: f64 = ds.iter().zip(sig).map(|(d, s)| 0.5 * (d / s).powi(2)).sum();
            let g = h * (-arg).exp();
            let p = flat_index(idx, n1);
            values[p] += g;
            for c in 0..nc {
                gradients[p * nc + c] -= g * ds[c] / (sig[c] * sig[c]);
            }
            if nc == 2 {
                cross[p] += g * ds[0] * ds[1] / (sig[0] * sig[0] * sig[1] * sig[1]);
            }
        };
        if nc == 1 {
            for &(i, d) in &near[0] {
                put(&[i], &[d]);
            }
        } else {
            for &(i, di) in &near[0] {
                for &(j, dj) in &near[1] {
                    put(&[i, j], &[di, dj]);
                }
            }
        }
        self.hills += 1;
        h
    }

    /// Grid points (`[n_points, n_cv]`, axis 0 slowest) with their bias values.
    pub fn grid(&self) -> (Array2<f64>, Vec<f64>) {
        let g = &self.params.grid;
        let n = self.values.len();
        let pts = Array2::from_shape_fn((n, self.cvs.len()), |(p, c)| {
            let i = if c == 0 && self.cvs.len() == 2 {
                p / g[1].points()
            } else if c == 1 {
                p % g[1].points()
            } else {
                p
            };
            g[c].point(i)
        });
        (pts, self.values.clone())
    }

    /// The free energy on the grid, F = −γ/(γ − 1)·V, shifted to a minimum of 0.
    pub fn free_energy(&self) -> Vec<f64> {
        let g = self.params.bias_factor;
        let f: Vec<f64> = self.values.iter().map(|v| -g / (g - 1.0) * v).collect();
        let m = f.iter().copied().fold(f64::INFINITY, f64::min);
        f.into_iter().map(|v| v - m).collect()
    }

    /// Tiwary–Parrinello c(t) of the current bias: kT ln [Σ e^{γβV/(γ−1)} / Σ e^{βV/(γ−1)}]
    /// over the grid.
    pub fn c_of_t(&self) -> f64 {
        let g = self.params.bias_factor;
        let b = 1.0 / self.kt;
        let m = self
            .values
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let (mut num, mut den) = (0.0, 0.0);
        for &v in &self.values {
            num += (g * b * (v - m) / (g - 1.0)).exp();
            den += (b * (v - m) / (g - 1.0)).exp();
        }
        // Both sums carry their own factor of the maximum: γβm/(γ−1) and βm/(γ−1).
        self.kt * (num.ln() - den.ln()) + m
    }

    /// The system's energy plus this bias.
    pub fn biased<'a>(&'a self, inner: &'a dyn Energy) -> Biased<'a> {
        Biased { inner, meta: self }
    }
}

/// E(x) + V(s(x)), forces included.
pub struct Biased<'a> {
    inner: &'a dyn Energy,
    meta: &'a Metadynamics,
}

impl RowBias for Biased<'_> {
    fn row_bias(&self, x: ArrayView1<f64>, forces: Option<&mut [f64]>) -> f64 {
        let n = self.meta.cvs.len();
        let (v, dv) = self.meta.bias(&self.meta.cv_values(x)[..n]);
        if let Some(f) = forces {
            for (cv, &d) in self.meta.cvs.iter().zip(&dv) {
                if d != 0.0 {
                    cv.value(x, Some((&mut *f, -d)));
                }
            }
        }
        v
    }
}

crate::impl_energy_with_row_bias!(Biased<'_>);

/// What [`run`] recorded: per deposition round and walker, the CV values and the bias the frame
/// was sampled under, and the round's c(t).
#[derive(Debug, Clone, Default)]
pub struct MetadynamicsTrace {
    /// `[rounds × walkers, n_cv]`, round-major.
    pub cv: Vec<Vec<f64>>,
    /// V(s, t) of each frame (before its own deposition), `[rounds × walkers]`.
    pub bias: Vec<f64>,
    /// c(t) of the bias each round's frames were sampled under, `[rounds]`.
    pub c: Vec<f64>,
    /// Walkers per round.
    pub walkers: usize,
}

impl MetadynamicsTrace {
    /// Log-weights β(V(s, t) − c(t)) of the frames of rounds ≥ `skip` (Tiwary–Parrinello), in
    /// the order of [`MetadynamicsTrace::cv`] from round `skip` on.
    pub fn log_weights(&self, kt: f64, skip: usize) -> Vec<f64> {
        let w = self.walkers;
        self.bias
            .iter()
            .enumerate()
            .skip(skip * w)
            .map(|(i, v)| (v - self.c[i / w]) / kt)
            .collect()
    }
}

/// Runs `rounds` rounds of well-tempered metadynamics at the bias's temperature: each round
/// moves every walker (chain of `state`) `pace` steps of `mv` under the frozen biased energy, records the frames (and calls
/// `observe(round, state)`), then deposits one Gaussian per walker in chain order.
///
/// # Errors
/// Whatever the move or the energy returns (non-finite energies name the chain and step).
pub fn run(
    meta: &mut Metadynamics,
    state: &mut SamplerState,
    mv: &mut dyn Move,
    energy: &dyn Energy,
    pace: u64,
    rounds: usize,
    mut observe: impl FnMut(usize, &SamplerState) -> Result<()>,
) -> Result<MetadynamicsTrace> {
    let walkers = state.n_chains();
    let mut trace = MetadynamicsTrace {
        walkers,
        ..Default::default()
    };
    refresh(state, &meta.biased(energy))?;
    for round in 0..rounds {
        let thermo = meta.thermo;
        mv.apply(state, &meta.biased(energy), &thermo, pace)?;
        observe(round, state)?;
        trace.c.push(meta.c_of_t());
        let n_cv = meta.cvs.len();
        let cvs: Vec<Vec<f64>> = state
            .positions
            .rows()
            .into_iter()
            .map(|r| meta.cv_values(r)[..n_cv].to_vec())
            .collect();
        for s in &cvs {
            trace.bias.push(meta.bias(s).0);
        }
        for s in &cvs {
            meta.deposit(s);
        }
        trace.cv.extend(cvs);
        // The bias changed under the walkers: their stored energies (and forces) must follow.
        refresh(state, &meta.biased(energy))?;
    }
    Ok(trace)
}

/// Re-evaluates the state's energies (and forces, when it keeps them) under `energy`.
fn refresh(state: &mut SamplerState, energy: &dyn Energy) -> Result<()> {
    match &mut state.forces {
        Some(f) => energy.energy_and_forces_into(
            state.positions.view(),
            state.energies.view_mut(),
            f.view_mut(),
        ),
        None => energy.energy_into(state.positions.view(), state.energies.view_mut()),
    }
}
