//! The Boltzmann generator (Noé, Olsson, Köhler, Wu, Science 2019): x = F(z), z ~ N(0, σ²I),
//! with its two training signals — maximum likelihood on data through x → z, and the energy
//! through z → x (reverse KL) — and sampling with log-weights.
//!
//! Work is split over fixed chunks of rows ([`boltzflow_nn::parallel`]): each chunk runs the
//! flow on its rows with its own workspace and gradient vector, and the energies (f64, with
//! analytic forces) are evaluated for the whole batch in between. The forces become the gradient
//! of J_KL with respect to the generated configurations: the energy bridge of DESIGN §2.

use boltzflow_core::{ChainRng, Energy, Error, Result};
use boltzflow_nn::parallel::{CHUNK_ROWS, for_each_chunk};
use boltzflow_nn::{Direction, FlowWorkspace, LatentPrior, ParamLayout, Real, SequentialFlow};
use ndarray::Array2;

use crate::flow_spec::FlowSpec;
use crate::rc::RcEntropy;

/// Energy regularisation of the reverse-KL loss (`linlogcut` of the paper's code): energies
/// above `high` grow only logarithmically and are cut at `max`, so that the first, wild samples
/// of a new generator do not dominate the gradient.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinLogCut {
    /// Start of the logarithmic regime (reduced units).
    pub high: f64,
    /// Cap (reduced units).
    pub max: f64,
}

impl LinLogCut {
    /// The regularised energy and its derivative with respect to the energy.
    pub fn apply(&self, u: f64) -> (f64, f64) {
        if u < self.high {
            (u, 1.0)
        } else {
            let v = self.high + (1.0 + u - self.high).ln();
            if v < self.max {
                (v, 1.0 / (1.0 + u - self.high))
            } else {
                (self.max, 0.0)
            }
        }
    }
}

/// Median of the reduced energies `e[r]/τ_r` of a generated batch split evenly over `taus`.
fn median_energy(e: &[f64], taus: &[f64]) -> f64 {
    let n = e.len();
    if n == 0 {
        return f64::NAN;
    }
    let mut u: Vec<f64> = e
        .iter()
        .enumerate()
        .map(|(r, &v)| v / taus[r * taus.len() / n])
        .collect();
    let mid = n / 2;
    let (_, m, _) = u.select_nth_unstable_by(mid, f64::total_cmp);
    *m
}

/// What one training step measured (means over the batch, reduced units).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepStats {
    /// J_ML: mean negative log-likelihood of the data batch (NaN without data).
    pub nll: f64,
    /// J_KL: mean of u(x)/τ − log|det J_zx| − (prior entropy constant omitted) over generated x
    /// (NaN without a KL batch).
    pub kl: f64,
    /// Mean reduced energy of the generated batch (before regularisation).
    pub energy: f64,
    /// Median reduced energy of the generated batch: the bulk, which a clash tail (energies of
    /// 10¹⁰ kT and more) hides from the mean.
    pub energy_median: f64,
    /// Fraction of the generated batch at or above the linlogcut's `high` (NaN without a KL
    /// term or without the cut). Where most samples are above it, J_KL is nearly flat in their
    /// energies and its minimiser can lower the loss by spreading out (entropy) rather than by
    /// lowering the energy.
    pub cut_fraction: f64,
    /// J_RC of the generated batch (NaN when not used).
    pub rc: f64,
    /// The weighted total that was minimised.
    pub loss: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
}

/// What one gradient evaluation optimises.
#[derive(Debug, Clone, Copy)]
pub struct Objective<'a> {
    /// Weight of J_ML on the data batch.
    pub w_ml: f64,
    /// Weight of J_KL on the generated batch.
    pub w_kl: f64,
    /// Weight of J_RC on the generated batch (needs `rc`).
    pub w_rc: f64,
    /// Rows of the generated batch.
    pub n_gen: usize,
    /// Temperatures τ the generated batch is split over (energies /τ, prior σ√τ).
    pub taus: &'a [f64],
    /// Energy regularisation of J_KL.
    pub reg: Option<LinLogCut>,
    /// The reaction-coordinate loss.
    pub rc: Option<&'a RcEntropy>,
    /// Per-row weights of the data batch in J_ML (mean 1; `None`: all 1).
    pub ml_weights: Option<&'a [f64]>,
}

#[derive(Debug)]
struct ChunkWs<T: Real> {
    kl: FlowWorkspace<T>,
    ml: FlowWorkspace<T>,
    grads: Vec<T>,
    gout: Vec<T>,
    gld: Vec<T>,
    used: bool,
}

impl<T: Real> Default for ChunkWs<T> {
    fn default() -> Self {
        Self {
            kl: FlowWorkspace::new(),
            ml: FlowWorkspace::new(),
            grads: Vec::new(),
            gout: Vec::new(),
            gld: Vec::new(),
            used: false,
        }
    }
}

/// A flow with a normal latent prior, its parameters and its workspaces.
#[derive(Debug)]
pub struct BoltzmannGenerator<T: Real = f32> {
    spec: FlowSpec,
    flow: SequentialFlow<T>,
    layout: ParamLayout,
    /// Parameter values (flat, laid out by [`BoltzmannGenerator::layout`]).
    pub params: Vec<T>,
    /// Gradient of the last training step.
    pub grads: Vec<T>,
    prior: LatentPrior,
    chunk_rows: usize,
    chunks: Vec<ChunkWs<T>>,
    x64: Array2<f64>,
    forces: Array2<f64>,
    gx: Array2<f64>,
    energies: ndarray::Array1<f64>,
    z: Vec<T>,
}

impl<T: Real> BoltzmannGenerator<T> {
    /// A new generator for `dim` coordinates: the flow of `spec`, initialised to the identity,
    /// and the prior N(0, σ²I).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a bad spec or σ.
    pub fn new(dim: usize, spec: &FlowSpec, sigma: f64, rng: &mut ChainRng) -> Result<Self> {
        Self::with_periodic(dim, &[], spec, sigma, rng)
    }

    /// As [`BoltzmannGenerator::new`] for a space with periodic coordinates (`periodic`
    /// `[dim]`, torsions on (−π, π]): circular-spline couplings on those
    /// ([`FlowSpec::build_periodic`]) and a Gaussian × uniform-torus prior.
    ///
    /// # Errors
    /// As [`BoltzmannGenerator::new`], and [`FlowSpec::build_periodic`]'s.
    pub fn with_periodic(
        dim: usize,
        periodic: &[bool],
        spec: &FlowSpec,
        sigma: f64,
        rng: &mut ChainRng,
    ) -> Result<Self> {
        if !(sigma > 0.0 && sigma.is_finite()) {
            return Err(Error::invalid(
                "prior.sigma",
                format!("must be positive, got {sigma}"),
            ));
        }
        let (flow, layout) = spec.build_periodic(dim, periodic)?;
        let mut params = vec![T::zero(); layout.len()];
        flow.init(&mut params, rng);
        let grads = vec![T::zero(); layout.len()];
        Ok(Self {
            spec: spec.clone(),
            flow,
            layout,
            params,
            grads,
            prior: LatentPrior::with_periodic(dim, sigma, periodic),
            chunk_rows: CHUNK_ROWS,
            chunks: Vec::new(),
            x64: Array2::zeros((0, dim)),
            forces: Array2::zeros((0, dim)),
            gx: Array2::zeros((0, dim)),
            energies: ndarray::Array1::zeros(0),
            z: Vec::new(),
        })
    }

    /// Coordinates per configuration.
    pub fn dim(&self) -> usize {
        self.flow.dim()
    }

    /// Zeroes the parameters the flow holds at zero by construction (the masked weights of
    /// autoregressive layers); for parameters set from outside, e.g. perturbed in tests.
    pub fn mask_params(&mut self) {
        self.flow.mask_params(&mut self.params);
    }

    /// The interval of each periodic coordinate (the prior's torus), `None` for the others.
    pub fn periods(&self) -> Vec<Option<[f64; 2]>> {
        self.prior.periods()
    }

    /// The architecture.
    pub fn spec(&self) -> &FlowSpec {
        &self.spec
    }

    /// Names and ranges of the parameters (checkpoint keys).
    pub fn layout(&self) -> &ParamLayout {
        &self.layout
    }

    /// The latent prior.
    pub fn prior(&self) -> LatentPrior {
        self.prior.clone()
    }

    /// The flow.
    pub fn flow(&self) -> &SequentialFlow<T> {
        &self.flow
    }

    /// Rows per parallel chunk (default [`CHUNK_ROWS`]); results depend on it only through the
    /// order of floating-point sums.
    pub fn set_chunk_rows(&mut self, rows: usize) {
        self.chunk_rows = rows.max(1);
    }

    /// ActNorm data initialisation from a batch of configurations `[rows, dim]`.
    pub fn data_init(&mut self, x: &[T]) {
        let rows = x.len() / self.dim();
        self.flow.data_init(&mut self.params, x, rows);
    }

    /// Draws `n` latent samples at latent temperatures `taus` (row r uses τ = taus[r·k/n] for
    /// k temperatures, i.e. the batch is split evenly) into `self.z`.
    fn draw_latent(&mut self, n: usize, taus: &[f64], rng: &mut ChainRng) {
        let d = self.dim();
        self.z.resize(n * d, T::zero());
        for (r, row) in self.z.chunks_exact_mut(d).enumerate() {
            let tau = taus[r * taus.len() / n];
            self.prior.at_temperature(tau).sample_into(rng, row);
        }
    }

    /// Draws `n` latent rows at temperatures `taus` (see [`Self::draw_latent`]) and pushes them
    /// forward; the configurations and log-dets are in the chunks' `kl` workspaces.
    fn generate(&mut self, n: usize, taus: &[f64], rng: &mut ChainRng) {
        self.draw_latent(n, taus, rng);
        run_chunks(
            &self.flow,
            &self.params,
            &mut self.chunks,
            self.chunk_rows,
            &self.z,
            Direction::Forward,
        );
    }

    /// One gradient evaluation of w_ml·J_ML(data) + w_kl·J_KL + w_rc·J_RC (the last two on a
    /// generated batch of `objective.n_gen` rows): fills [`BoltzmannGenerator::grads`] and
    /// returns the losses. `data` is `[rows, dim]` (may be empty).
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the step when an energy is NaN (or +∞ without
    /// regularisation), or when the loss is not finite.
    pub fn gradient(
        &mut self,
        energy: &dyn Energy,
        data: &[T],
        objective: &Objective<'_>,
        step: u64,
        rng: &mut ChainRng,
    ) -> Result<StepStats> {
        let Objective {
            w_ml,
            w_kl,
            w_rc,
            n_gen,
            taus,
            reg,
            rc,
            ml_weights,
        } = *objective;
        let d = self.dim();
        let np = self.params.len();
        for c in &mut self.chunks {
            c.used = false;
        }
        let mut stats = StepStats {
            nll: f64::NAN,
            kl: f64::NAN,
            energy: f64::NAN,
            energy_median: f64::NAN,
            cut_fraction: f64::NAN,
            rc: f64::NAN,
            ..StepStats::default()
        };
        let mut loss = 0.0;
        let chunk_rows = self.chunk_rows;
        let use_rc = w_rc != 0.0 && rc.is_some();

        if n_gen > 0 && (w_kl != 0.0 || use_rc) {
            if taus.is_empty() || taus.iter().any(|t| !(*t > 0.0 && t.is_finite())) {
                return Err(Error::invalid(
                    "temperatures",
                    format!("must be positive, got {taus:?}"),
                ));
            }
            self.generate(n_gen, taus, rng);
            if self.x64.nrows() != n_gen {
                self.x64 = Array2::zeros((n_gen, d));
                self.forces = Array2::zeros((n_gen, d));
                self.gx = Array2::zeros((n_gen, d));
                self.energies = ndarray::Array1::zeros(n_gen);
            }
            let x64 = &mut self.x64;
            visit_rows(
                &self.chunks,
                n_gen,
                chunk_rows,
                Direction::Forward,
                |i, xr, _| {
                    for (o, &v) in x64.row_mut(i).iter_mut().zip(xr) {
                        *o = v.as_f64();
                    }
                },
            );
            energy.energy_and_forces_into(
                self.x64.view(),
                self.energies.view_mut(),
                self.forces.view_mut(),
            )?;
            // dL/dx = w_kl·(du_reg/du)·(−F/τ)/n (+ w_rc ∂J_RC/∂x); dL/d(log-det) = −w_kl/n.
            let scale = w_kl / n_gen as f64;
            let mut sum_kl = 0.0;
            let mut sum_u = 0.0;
            let mut n_cut = 0usize;
            for r in 0..n_gen {
                let tau = taus[r * taus.len() / n_gen];
                let e = self.energies[r];
                if e.is_nan() || (e.is_infinite() && reg.is_none()) || e == f64::NEG_INFINITY {
                    return Err(Error::NonFinite {
                        what: "energy of a generated configuration".into(),
                        location: format!("training step {step}, sample {r}"),
                        value: e,
                    });
                }
                let u = e / tau;
                let (u_reg, g) = reg.map_or((u, 1.0), |c| c.apply(u));
                n_cut += usize::from(reg.is_some_and(|c| u >= c.high));
                let c = r / chunk_rows;
                let ld = self.chunks[c].kl.log_det()[r - c * chunk_rows].as_f64();
                sum_kl += u_reg - ld;
                sum_u += u;
                // A cut energy (g = 0) contributes nothing, even with infinite forces.
                let du = g / tau;
                for (o, &f) in self.gx.row_mut(r).iter_mut().zip(self.forces.row(r)) {
                    *o = if du == 0.0 || scale == 0.0 {
                        0.0
                    } else {
                        -scale * du * f
                    };
                }
            }
            stats.kl = sum_kl / n_gen as f64;
            stats.energy = sum_u / n_gen as f64;
            stats.energy_median = median_energy(self.energies.as_slice().unwrap_or(&[]), taus);
            if w_kl != 0.0 && reg.is_some() {
                stats.cut_fraction = n_cut as f64 / n_gen as f64;
            }
            if w_kl != 0.0 {
                loss += w_kl * stats.kl;
            }
            if use_rc && let Some(rc) = rc {
                stats.rc = rc.loss_and_gradient(&self.x64, w_rc, &mut self.gx);
                loss += w_rc * stats.rc;
            }
            let (flow, params, gx) = (&self.flow, &self.params, &self.gx);
            let gx = gx.as_slice().expect("standard layout");
            for_each_chunk(n_gen, chunk_rows, &mut self.chunks, |r, ws| {
                ws.grads.clear();
                ws.grads.resize(np, T::zero());
                ws.used = true;
                ws.gout.clear();
                ws.gout
                    .extend(gx[r.start * d..r.end * d].iter().map(|&g| T::of(g)));
                ws.gld.clear();
                ws.gld.resize(r.len(), T::of(-scale));
                flow.backward(params, &mut ws.grads, &mut ws.kl, &ws.gout, &ws.gld);
            });
        }

        let n_ml = data.len() / d;
        if n_ml > 0 && w_ml != 0.0 {
            let (flow, params, prior) = (&self.flow, &self.params, &self.prior);
            let scale = w_ml / n_ml as f64;
            // ∂(−log p)/∂z per unit z, coordinate by coordinate (0 on the torus).
            let factors: Vec<T> = (0..d)
                .map(|i| T::of(prior.precision_of(i) * scale))
                .collect();
            let sums: Vec<f64> = {
                for_each_chunk(n_ml, chunk_rows, &mut self.chunks, |r, ws| {
                    flow.run(
                        params,
                        &data[r.start * d..r.end * d],
                        r.len(),
                        Direction::Inverse,
                        &mut ws.ml,
                    );
                    if !ws.used {
                        ws.grads.clear();
                        ws.grads.resize(np, T::zero());
                        ws.used = true;
                    }
                    let weight = |row: usize| ml_weights.map_or(1.0, |w| w[r.start + row]);
                    ws.gout.clear();
                    ws.gout.extend(
                        ws.ml
                            .output()
                            .iter()
                            .enumerate()
                            .map(|(k, &z)| factors[k % d] * z * T::of(weight(k / d))),
                    );
                    ws.gld.clear();
                    ws.gld
                        .extend((0..r.len()).map(|row| T::of(-scale * weight(row))));
                    flow.backward(params, &mut ws.grads, &mut ws.ml, &ws.gout, &ws.gld);
                });
                self.chunks[..n_ml.div_ceil(chunk_rows)]
                    .iter()
                    .map(|ws| {
                        ws.ml
                            .output()
                            .chunks_exact(d)
                            .zip(ws.ml.log_det())
                            .map(|(z, &ld)| prior.energy(z) - ld.as_f64())
                            .sum::<f64>()
                    })
                    .collect()
            };
            stats.nll = sums.iter().sum::<f64>() / n_ml as f64;
            loss += w_ml * stats.nll;
        }

        if !loss.is_finite() {
            return Err(Error::NonFinite {
                what: "training loss".into(),
                location: format!("step {step}"),
                value: loss,
            });
        }
        stats.loss = loss;
        let parts: Vec<&[T]> = self
            .chunks
            .iter()
            .filter(|c| c.used)
            .map(|c| c.grads.as_slice())
            .collect();
        if parts.is_empty() {
            self.grads.fill(T::zero());
        } else {
            boltzflow_nn::parallel::sum_in_order(&mut self.grads, &parts);
        }
        Ok(stats)
    }

    /// Pushes latent points `z` `[n, dim]` through the flow: x `[n, dim]` (f64) and
    /// log|det J_zx| per row.
    pub fn push_forward(&mut self, z: &[T]) -> (Array2<f64>, Vec<f64>) {
        let d = self.dim();
        let n = z.len() / d;
        let chunk_rows = self.chunk_rows;
        run_chunks(
            &self.flow,
            &self.params,
            &mut self.chunks,
            chunk_rows,
            z,
            Direction::Forward,
        );
        let mut x = Array2::zeros((n, d));
        let mut ld = Vec::with_capacity(n);
        visit_rows(
            &self.chunks,
            n,
            chunk_rows,
            Direction::Forward,
            |i, xr, l| {
                for (o, &v) in x.row_mut(i).iter_mut().zip(xr) {
                    *o = v.as_f64();
                }
                ld.push(l.as_f64());
            },
        );
        (x, ld)
    }

    /// The target pulled back into latent space, E_z(z) = u(F(z)) − log|det J_zx(z)|, and its
    /// gradient ∇_z E_z = J_zxᵀ ∇u − ∇_z log|det J_zx| (by the flow's backward pass, the energy's
    /// analytic forces at x = F(z)), for latent rows `z` `[n, dim]`. Returns x `[n, dim]`,
    /// E_z `[n]` and the gradient `[n, dim]` (row-major). A row at infinite energy gets a zero
    /// gradient (it is rejected by any Metropolis test that starts from a finite energy).
    ///
    /// # Errors
    /// Whatever the energy returns.
    pub fn latent_energy_and_gradient(
        &mut self,
        energy: &dyn Energy,
        z: &[T],
    ) -> Result<(Array2<f64>, Vec<f64>, Vec<f64>)> {
        let d = self.dim();
        let n = z.len() / d;
        let chunk_rows = self.chunk_rows;
        // The forward pass stays in the chunks' workspaces for the backward pass below.
        let (x, ld) = self.push_forward(z);
        let mut u = ndarray::Array1::zeros(n);
        let mut forces = Array2::zeros((n, d));
        energy.energy_and_forces_into(x.view(), u.view_mut(), forces.view_mut())?;
        let e_z: Vec<f64> = u.iter().zip(&ld).map(|(u, l)| u - l).collect();
        // dE_z/dx = −F, dE_z/d(log-det) = −1; rows at infinite energy get no gradient.
        let finite: Vec<bool> = e_z.iter().map(|e| e.is_finite()).collect();
        let mut g_x = vec![0.0; n * d];
        for ((g, f), &ok) in g_x.chunks_exact_mut(d).zip(forces.rows()).zip(&finite) {
            if ok {
                g.iter_mut().zip(f).for_each(|(g, &f)| *g = -f);
            }
        }
        let mut grad = vec![0.0; n * d];
        let np = self.params.len();
        let (flow, params) = (&self.flow, &self.params);
        for_each_chunk(n, chunk_rows, &mut self.chunks, |r, ws| {
            // Parameter gradients are a by-product of the backward pass; they land in the
            // chunk's scratch buffer and are not used.
            ws.grads.clear();
            ws.grads.resize(np, T::zero());
            ws.gout.clear();
            ws.gout
                .extend(g_x[r.start * d..r.end * d].iter().map(|&g| T::of(g)));
            ws.gld.clear();
            ws.gld.extend(
                finite[r.clone()]
                    .iter()
                    .map(|&ok| T::of(if ok { -1.0 } else { 0.0 })),
            );
            flow.backward(params, &mut ws.grads, &mut ws.kl, &ws.gout, &ws.gld);
        });
        for (c, ws) in self.chunks[..n.div_ceil(chunk_rows)].iter().enumerate() {
            let g = ws.kl.grad_input();
            for (o, &v) in grad[c * chunk_rows * d..].iter_mut().zip(g.iter()) {
                *o = v.as_f64();
            }
        }
        Ok((x, e_z, grad))
    }

    /// Samples `n` configurations at latent temperature τ, in batches of `batch` rows.
    /// Returns x `[n, dim]` (f64) and, per row, u_Z(z) + log|det J_zx(z)| — the generator's
    /// −log q(x) — so that log w = −u(x)/τ_target − log q(x).
    pub fn sample(
        &mut self,
        n: usize,
        tau: f64,
        batch: usize,
        rng: &mut ChainRng,
    ) -> (Array2<f64>, Vec<f64>) {
        let d = self.dim();
        let mut x = Array2::zeros((n, d));
        let mut neg_log_q = Vec::with_capacity(n);
        let prior = self.prior.at_temperature(tau);
        let chunk_rows = self.chunk_rows;
        let mut done = 0;
        while done < n {
            let m = batch.max(1).min(n - done);
            self.generate(m, &[tau], rng);
            let z = &self.z;
            visit_rows(
                &self.chunks,
                m,
                chunk_rows,
                Direction::Forward,
                |i, xr, ld| {
                    for (o, &v) in x.row_mut(done + i).iter_mut().zip(xr) {
                        *o = v.as_f64();
                    }
                    neg_log_q.push(prior.energy(&z[i * d..(i + 1) * d]) + ld.as_f64());
                },
            );
            done += m;
        }
        (x, neg_log_q)
    }

    /// log q(x) of configurations `[n, dim]` under the generator (prior at τ = 1), in batches
    /// of `batch` rows.
    pub fn log_density(&mut self, x: &Array2<f64>, batch: usize) -> Vec<f64> {
        let n = x.nrows();
        let prior = &self.prior;
        let chunk_rows = self.chunk_rows;
        let mut out = Vec::with_capacity(n);
        let mut data: Vec<T> = Vec::new();
        let mut done = 0;
        while done < n {
            let m = batch.max(1).min(n - done);
            data.clear();
            data.extend(
                x.slice(ndarray::s![done..done + m, ..])
                    .iter()
                    .map(|&v| T::of(v)),
            );
            run_chunks(
                &self.flow,
                &self.params,
                &mut self.chunks,
                chunk_rows,
                &data,
                Direction::Inverse,
            );
            visit_rows(
                &self.chunks,
                m,
                chunk_rows,
                Direction::Inverse,
                |_, z, ld| {
                    out.push(-prior.energy(z) + ld.as_f64());
                },
            );
            done += m;
        }
        out
    }
}

/// Runs `input` `[n, dim]` through the flow in direction `dir`, chunk-parallel; the results are
/// in the chunks' `kl` (forward) or `ml` (inverse) workspaces.
fn run_chunks<T: Real>(
    flow: &SequentialFlow<T>,
    params: &[T],
    chunks: &mut Vec<ChunkWs<T>>,
    chunk_rows: usize,
    input: &[T],
    dir: Direction,
) {
    let d = flow.dim();
    for_each_chunk(input.len() / d, chunk_rows, chunks, |r, ws| {
        let w = if dir == Direction::Forward {
            &mut ws.kl
        } else {
            &mut ws.ml
        };
        flow.run(params, &input[r.start * d..r.end * d], r.len(), dir, w);
    });
}

/// Visits the `n` rows of the last [`run_chunks`] in order: (row, output row, log-det).
fn visit_rows<T: Real>(
    chunks: &[ChunkWs<T>],
    n: usize,
    chunk_rows: usize,
    dir: Direction,
    mut f: impl FnMut(usize, &[T], T),
) {
    for (c, ws) in chunks[..n.div_ceil(chunk_rows)].iter().enumerate() {
        let w = if dir == Direction::Forward {
            &ws.kl
        } else {
            &ws.ml
        };
        let d = if w.rows() == 0 {
            1
        } else {
            w.output().len() / w.rows()
        };
        for (k, (row, &ld)) in w.output().chunks_exact(d).zip(w.log_det()).enumerate() {
            f(c * chunk_rows + k, row, ld);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::median_energy;

    /// The median is of the reduced energies e/τ, each row with the τ of its block, and a
    /// clash tail does not move it.
    #[test]
    fn the_batch_median_divides_by_each_rows_temperature() {
        // Rows 0–1 at τ = 1, rows 2–3 at τ = 2: u = [1, 2, 1.5, 5e11].
        assert_eq!(median_energy(&[1.0, 2.0, 3.0, 1e12], &[1.0, 2.0]), 2.0);
        assert_eq!(median_energy(&[4.0, 1.0, 1e30], &[1.0]), 4.0);
        assert!(median_energy(&[], &[1.0]).is_nan());
    }
}
