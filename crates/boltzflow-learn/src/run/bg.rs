//! A Boltzmann-generator run directory (DESIGN §7): the resolved `config.toml`,
//! `checkpoint.safetensors` (parameters and optimizer state in one atomically written file),
//! `metrics.csv` (one row per epoch), `metrics.json`, `log.txt`, `data.npy` and `report/`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use boltzflow_coords::{InternalCoordinates, InternalLayer, PermutationReduction};
use boltzflow_core::{Coordinate, Error, RandomStreams, Result, ResultExt};
use boltzflow_io::run_dir::{self, CHECKPOINT_FILE, MetricsCsv};
use boltzflow_nn::{Adam, CheckpointFormat, InTraining, TrainingCheckpoint};
use boltzflow_systems::System;
use ndarray::{Array1, Array2, ArrayView2};

use super::bg_coordinates::{
    RunEnergy, fixed_bonds, internal_coordinates, load_layer, save_layer, to_configurations,
    to_flow_space,
};
use super::{Progress, TrainOptions, build_system, check_configurations, simulate_data, stopped};
use crate::config::{BgConfig, DataConfig};
use crate::flow_spec::FlowCoordinates;
use crate::trainer::{EpochObserver, EpochRecord, Problem, Reduced, TrainData, train};
use crate::{BoltzmannGenerator, RcEntropy};

/// The checkpoint layout: one stage, its parameters under their own names.
const FORMAT: CheckpointFormat = CheckpointFormat {
    tag: "boltzflow-bg-1",
    what: "generator",
    section: "[flow]",
    finished_prefix: "",
    finished_key: "",
    current_prefix: "",
    progress_key: "epoch",
};

/// Samples of a trained generator ([`BgRun::sample`]).
pub struct BgSamples {
    /// Configurations `[n, dim]`.
    pub x: Array2<f64>,
    /// log w = −u(x) − log q(x) `[n]`, reduced units.
    pub log_weights: ndarray::Array1<f64>,
    /// The epoch of the checkpoint they come from.
    pub epoch: usize,
}

/// A run directory with its configuration and system.
pub struct BgRun {
    /// The directory.
    pub dir: PathBuf,
    /// The resolved configuration.
    pub cfg: BgConfig,
    /// The configuration's system.
    pub system: Box<dyn System>,
    /// β that turns the system's energies into reduced units (1 for toy systems).
    pub beta: f64,
    /// The molecule's internal coordinates, for `[flow] coordinates = "internal"`.
    ic: Option<InternalCoordinates>,
    /// Their layer, once its statistics exist (read from the run directory, or fitted to the
    /// training data by `train`).
    layer: OnceLock<InternalLayer>,
    /// The labelling the flow learns, for `[flow] reduce_permutations`: the system's sites,
    /// refined on the training data by `train` and kept in the run directory
    /// ([`PERMUTATION_SITES_FILE`]).
    permutations: OnceLock<PermutationReduction>,
}

/// The reference sites of a run with `[flow] reduce_permutations`, `[n, spatial_dim]`.
pub const PERMUTATION_SITES_FILE: &str = "permutation_sites.npy";

/// Refinement of the system's reference sites on the training data (see
/// [`PermutationReduction::refine_sites`]): at most this many passes over at most this many rows.
const SITE_ITERATIONS: usize = 20;
const SITE_ROWS: usize = 20_000;

impl BgRun {
    /// A run of `cfg` in `dir` (nothing is written until [`BgRun::train`]). Relative paths are
    /// relative to the working directory; see [`BgConfig::resolve_paths`].
    ///
    /// # Errors
    /// The system's errors.
    pub fn new(dir: PathBuf, cfg: BgConfig) -> Result<Self> {
        let (system, beta) = build_system(
            &cfg.system,
            "temperatures of the toy systems are set per stage with `temperatures`",
        )?;
        let layer = OnceLock::new();
        let ic = if cfg.flow.coordinates == FlowCoordinates::Internal {
            if cfg.data.is_none() && system.as_openmm().is_some_and(|m| m.positions().is_none()) {
                return Err(Error::invalid(
                    "flow.coordinates",
                    "\"internal\" takes the bond and angle statistics from training data, or without [data] from the reference structure: add [data] or [system] pdb",
                ));
            }
            if cfg.train.rc_coordinate.is_some() {
                return Err(Error::invalid(
                    "train.rc_coordinate",
                    "the reaction-coordinate loss is defined on Cartesian coordinates; it is not available with flow.coordinates = \"internal\"",
                ));
            }
            if let Some(f) = fixed_bonds(system.as_ref())? {
                return Err(Error::invalid(
                    "flow.coordinates",
                    format!(
                        "{} has {} distance constraints; Boltzmann generators in internal coordinates need the flexible molecule: use a System XML made with constraints=None (VAEs, `[vae] representation = \"internal\"`, hold constrained bonds fixed)",
                        system.spec(),
                        f.len()
                    ),
                ));
            }
            let ic = internal_coordinates(system.as_ref())?;
            if let Some(l) = load_layer(&dir, ic.clone(), None)? {
                let _ = layer.set(l);
            }
            Some(ic)
        } else {
            None
        };
        let permutations = OnceLock::new();
        if cfg.flow.reduce_permutations {
            if cfg.flow.coordinates == FlowCoordinates::Internal {
                return Err(Error::invalid(
                    "flow.reduce_permutations",
                    "relabels particles in Cartesian coordinates; it cannot be combined with flow.coordinates = \"internal\"",
                ));
            }
            let ip = system.identical_particles().ok_or_else(|| {
                Error::invalid(
                    "flow.reduce_permutations",
                    format!(
                        "{} has no identical particles to relabel; remove the key",
                        system.spec()
                    ),
                )
            })?;
            // Checked now, so that training does not fail after the data are simulated.
            let from_system = PermutationReduction::new(ip.first, ip.sites.view())?;
            // A trained run's own sites; without data the system's; with data `train` refines
            // the system's and sets them.
            let saved = dir.join(PERMUTATION_SITES_FILE);
            if saved.exists() {
                let s = boltzflow_io::read_npy_2d(&saved)?;
                if s.dim() != ip.sites.dim() {
                    return Err(Error::BadFile {
                        path: saved,
                        reason: format!(
                            "{:?} sites, but {} has {:?} identical particles",
                            s.dim(),
                            system.spec(),
                            ip.sites.dim()
                        ),
                    });
                }
                let _ = permutations.set(PermutationReduction::new(ip.first, s.view())?);
            } else if cfg.data.is_none() {
                let _ = permutations.set(from_system);
            }
        }
        let run = Self {
            dir,
            cfg,
            system,
            beta,
            ic,
            layer,
            permutations,
        };
        if run.ic.is_none() {
            // Before anything is written: the particle layout `split = "neighbours"` needs.
            run.flow_spec().validate(run.system.dim())?;
        }
        Ok(run)
    }

    /// The permutation reduction of `[flow] reduce_permutations` (`None` without it).
    pub fn permutations(&self) -> Option<&PermutationReduction> {
        self.permutations.get()
    }

    /// Relabels configurations `[n, dim]` into the reduced domain (a no-op without
    /// `[flow] reduce_permutations`); returns how many rows changed.
    ///
    /// # Errors
    /// Rows narrower than the system.
    pub fn reduce(&self, x: &mut Array2<f64>) -> Result<usize> {
        self.permutations().map_or(Ok(0), |p| p.reduce_rows(x))
    }

    /// The internal-coordinate layer of an internal run (`None` for Cartesian runs).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an internal run without its statistics (not trained).
    pub fn layer(&self) -> Result<Option<&InternalLayer>> {
        if self.ic.is_none() {
            return Ok(None);
        }
        self.layer.get().map(Some).ok_or_else(|| {
            Error::invalid(
                "RUN_DIR",
                format!(
                    "`{}` has no {}: train the run first",
                    self.dir.display(),
                    super::bg_coordinates::INTERNAL_COORDINATES_FILE
                ),
            )
        })
    }

    /// The reduced energy in the flow's coordinates (see [`RunEnergy`]).
    ///
    /// # Errors
    /// As [`BgRun::layer`].
    pub fn energy(&self) -> Result<RunEnergy<'_>> {
        Ok(RunEnergy {
            reduced: Reduced {
                inner: self.system.as_ref(),
                beta: self.beta,
            },
            layer: self.layer()?,
            domain: None,
        })
    }

    /// The energy importance weights and AIS use: [`BgRun::energy`], restricted to the reduced
    /// domain with `[flow] reduce_permutations` (see [`RunEnergy`]).
    ///
    /// # Errors
    /// As [`BgRun::layer`]; a run with `reduce_permutations` that has not been trained.
    pub fn weighting_energy(&self) -> Result<RunEnergy<'_>> {
        if self.cfg.flow.reduce_permutations && self.permutations().is_none() {
            return Err(Error::invalid(
                "RUN_DIR",
                format!(
                    "`{}` has no {PERMUTATION_SITES_FILE}: train the run first",
                    self.dir.display()
                ),
            ));
        }
        Ok(RunEnergy {
            domain: self.permutations(),
            ..self.energy()?
        })
    }

    /// Opens an existing run directory.
    ///
    /// # Errors
    /// No config.toml, or one that does not parse.
    pub fn open(dir: &Path) -> Result<Self> {
        let cfg = BgConfig::from_file(&run_dir::config_file(dir)?)?;
        Self::new(dir.to_path_buf(), cfg)
    }

    /// `checkpoint.safetensors` of the run.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.dir.join(CHECKPOINT_FILE)
    }

    /// A generator with the run's architecture (identity initialisation).
    ///
    /// # Errors
    /// An invalid `[flow]`.
    pub fn new_generator(&self) -> Result<BoltzmannGenerator> {
        let mut rng = RandomStreams::new(self.cfg.seed).stream("init");
        let (dim, periodic) = match self.layer()? {
            Some(l) => (
                l.dim(),
                l.periods().iter().map(Option::is_some).collect::<Vec<_>>(),
            ),
            None => (self.system.dim(), Vec::new()),
        };
        let mut bg = BoltzmannGenerator::with_periodic(
            dim,
            &periodic,
            &self.flow_spec(),
            self.cfg.prior.sigma,
            &mut rng,
        )?;
        bg.set_chunk_rows(self.cfg.train.chunk_rows);
        Ok(bg)
    }

    /// `[flow]`, with the particles' reference positions for `split = "neighbours"`: the
    /// system's initial configuration, `[n_particles, spatial_dim]` with the spatial dimension
    /// of its identical particles (the system's, not the run's refined sites, so that the
    /// architecture does not depend on the data).
    fn flow_spec(&self) -> crate::FlowSpec {
        let spec = self.cfg.flow.clone();
        if spec.split != crate::flow_spec::Split::Neighbours {
            return spec;
        }
        let Some(ip) = self.system.identical_particles() else {
            return spec; // validation names flow.split
        };
        let width = ip.sites.ncols().max(1);
        let x = self.system.initial_configuration();
        if !x.len().is_multiple_of(width) {
            return spec;
        }
        let positions = Array2::from_shape_fn((x.len() / width, width), |(i, k)| x[i * width + k]);
        spec.with_particles(positions)
    }

    /// The trained generator and the epoch its checkpoint was written after.
    ///
    /// # Errors
    /// No checkpoint, or one of another architecture.
    pub fn load_generator(&self) -> Result<(BoltzmannGenerator, usize)> {
        let mut bg = self.new_generator()?;
        let (adam, epoch) = self.load_into(&mut bg)?;
        drop(adam);
        Ok((bg, epoch))
    }

    fn load_into(&self, bg: &mut BoltzmannGenerator) -> Result<(Adam<f32>, usize)> {
        let ck = TrainingCheckpoint::load(&self.checkpoint_path(), &FORMAT, bg.layout())?;
        let c = ck.current.ok_or_else(|| Error::BadFile {
            path: self.checkpoint_path(),
            reason: "no `epoch` in the metadata".into(),
        })?;
        bg.params = c.params;
        Ok((c.adam, c.progress))
    }

    /// `n` configurations `[n, dim]` from the trained generator at latent temperature τ (prior
    /// σ√τ), their log importance weights log w = −u(x) − log q(x) `[n]` (reduced units), and
    /// the epoch of the checkpoint; the latent draws come from the stream `sample` of `seed`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for n = 0 or a non-positive τ; no checkpoint; the energy's
    /// errors.
    pub fn sample(&self, n: usize, tau: f64, seed: u64) -> Result<BgSamples> {
        if n == 0 {
            return Err(Error::invalid("n", "must be at least 1"));
        }
        if !(tau > 0.0 && tau.is_finite()) {
            return Err(Error::invalid(
                "temperature",
                format!("must be positive, got {tau}"),
            ));
        }
        let (mut bg, epoch) = self.load_generator()?;
        let mut rng = RandomStreams::new(seed).stream("sample");
        let (y, neg_log_q) = bg.sample(n, tau, 8192, &mut rng);
        let u = boltzflow_core::Energy::energy(&self.weighting_energy()?, y.view())?;
        let log_weights = u.iter().zip(&neg_log_q).map(|(u, q)| -u + q).collect();
        Ok(BgSamples {
            x: to_configurations(self.layer()?, y)?,
            log_weights,
            epoch,
        })
    }

    /// log q(x) `[n]` of configurations `x` `[n, dim]` under the trained generator (prior at
    /// τ = 1), in nats of the configuration space's own coordinates.
    ///
    /// # Errors
    /// `x` of the wrong width or not finite (naming the row and column); no checkpoint.
    pub fn log_prob(&self, x: ArrayView2<'_, f64>) -> Result<Array1<f64>> {
        check_configurations(x, self.system.dim(), "configurations")?;
        let (mut bg, _) = self.load_generator()?;
        // For internal runs: the density of the internal coordinates, log q(y(x)) + log|det ∂y/∂x|.
        let (y, log_det) = to_flow_space(self.layer()?, x)?;
        Ok(Array1::from(bg.log_density(&y, 8192)) + &log_det)
    }

    /// Log importance weights log w = −u(x) − log q(x) `[n]` of configurations `x` `[n, dim]`
    /// (reduced units; unnormalised, so only differences matter). With
    /// `[flow] reduce_permutations` each row is first relabelled into the reduced domain (the
    /// weight of a configuration is that of its labelling the generator learned), and the
    /// weights include ln n! (see [`RunEnergy`]).
    ///
    /// # Errors
    /// As [`BgRun::log_prob`], and the energy's errors.
    pub fn log_weights(&self, x: ArrayView2<'_, f64>) -> Result<Array1<f64>> {
        check_configurations(x, self.system.dim(), "configurations")?;
        let mut x = x.to_owned();
        self.reduce(&mut x)?;
        let log_q = self.log_prob(x.view())?;
        // x are configurations, whatever the flow's coordinates.
        let energy = RunEnergy {
            layer: None,
            ..self.weighting_energy()?
        };
        let u = boltzflow_core::Energy::energy(&energy, x.view())?;
        Ok(-&u - &log_q)
    }

    /// Appends a line to log.txt.
    ///
    /// # Errors
    /// [`Error::Io`] naming log.txt.
    pub fn log(&self, line: &str) -> Result<()> {
        run_dir::append_log(&self.dir, line)
    }

    /// The training data (kept in the run directory as data.npy; `reuse` reads it back),
    /// split into training and validation rows.
    ///
    /// # Errors
    /// A data file of the wrong shape, or a failed simulation.
    pub fn training_data(
        &self,
        reuse: bool,
        progress: &mut dyn Progress,
    ) -> Result<Option<TrainData>> {
        let Some(d) = &self.cfg.data else {
            return Ok(None);
        };
        let streams = RandomStreams::new(self.cfg.seed);
        let saved = self.dir.join("data.npy");
        let x = if reuse && saved.exists() {
            boltzflow_io::read_npy_2d(&saved)?
        } else {
            let mut x = match (&d.file, &d.simulate) {
                (Some(f), _) => {
                    boltzflow_io::trajectory::read_coordinates(f).context("in [data] file")?
                }
                (None, Some(sim)) => {
                    let t0 = Instant::now();
                    let kelvin = self
                        .system
                        .atom_masses()
                        .map(|_| self.cfg.system.temperature.unwrap_or(300.0));
                    let x = simulate_data(self.system.as_ref(), sim, kelvin, &streams)?;
                    progress.status(&format!(
                        "data: {} {} samples ({} chains) in {:.1} s",
                        x.nrows(),
                        if sim.replica_exchange.is_some() {
                            "replica-exchange (kT = 1)".to_string()
                        } else {
                            sim.sampler.to_string()
                        },
                        sim.chains,
                        t0.elapsed().as_secs_f64()
                    ));
                    x
                }
                (None, None) => {
                    return Err(Error::invalid("data", "give `file` or [data.simulate]"));
                }
            };
            if x.ncols() == self.system.dim()
                && self.cfg.flow.reduce_permutations
                && let Some(ip) = self.system.identical_particles()
            {
                // The system's sites move to the data's mean arrangement (kept for
                // evaluation), then every frame is relabelled. (`new` leaves the sites unset
                // for training with data, unless a killed run already saved them.)
                let t0 = Instant::now();
                let p = match self.permutations.get() {
                    Some(p) => p,
                    None => {
                        let mut p = PermutationReduction::new(ip.first, ip.sites.view())?;
                        let (before, after) =
                            p.refine_sites(x.view(), SITE_ITERATIONS, SITE_ROWS)?;
                        progress.status(&format!(
                            "data: reference sites refined on the data (mean squared displacement from them {before:.3} → {after:.3})"
                        ));
                        boltzflow_io::write_npy_2d(
                            &self.dir.join(PERMUTATION_SITES_FILE),
                            p.sites().view(),
                        )?;
                        self.permutations.get_or_init(|| p)
                    }
                };
                let changed = p.reduce_rows(&mut x)?;
                progress.status(&format!(
                    "data: {changed} of {} rows relabelled into the reduced domain ({:.1} s)",
                    x.nrows(),
                    t0.elapsed().as_secs_f64()
                ));
            }
            boltzflow_io::write_npy_2d(&saved, x.view())?;
            x
        };
        if x.ncols() != self.system.dim() {
            return Err(Error::Shape {
                what: "training data".into(),
                expected: format!("[n, {}] for {}", self.system.dim(), self.cfg.system.spec),
                got: format!("[{}, {}]", x.nrows(), x.ncols()),
            });
        }
        let Some(ic) = &self.ic else {
            return Ok(Some(split_data(&x, d, &streams)?));
        };
        // Internal coordinates: statistics of the whole data set (kept in the run directory;
        // a resumed run reads them back), then the split of the transformed rows.
        let layer = match self.layer.get() {
            Some(l) => l,
            None => {
                let l = InternalLayer::fit(ic.clone(), x.view()).context("in [data]")?;
                save_layer(&self.dir, &l)?;
                self.layer.get_or_init(|| l)
            }
        };
        let (y, _) = layer.to_internal(x.view())?;
        Ok(Some(split_data(&y, d, &streams)?))
    }

    /// J_RC of `[train]`, when it names a coordinate and bounds.
    /// A coordinate of this run's configurations from its text in the field `field` (particles
    /// of 3 coordinates for molecules, 2 for the particle systems).
    pub(super) fn coordinate(&self, text: &str, field: &str) -> Result<Coordinate> {
        let pdim = if self.system.atom_masses().is_some() {
            3
        } else {
            2
        };
        Coordinate::parse(text, field, self.system.dim(), pdim)
    }

    fn rc_entropy(&self) -> Result<Option<RcEntropy>> {
        let t = &self.cfg.train;
        let (Some(text), Some([lo, hi])) = (&t.rc_coordinate, t.rc_bounds) else {
            return Ok(None);
        };
        let coord = self.coordinate(text, "train.rc_coordinate")?;
        Ok(Some(RcEntropy::new(coord, lo, hi, t.rc_grid, t.rc_width)?))
    }

    /// Trains the generator through every stage into the run directory, with a checkpoint and
    /// a metrics row after every epoch; resumes from the last checkpoint with
    /// [`super::StartMode::Resume`].
    ///
    /// # Errors
    /// A refused directory, bad data, or a training failure (a non-finite loss names its
    /// epoch and step; the message gives the last good checkpoint).
    pub fn train(&self, opts: TrainOptions, progress: &mut dyn Progress) -> Result<()> {
        let out = &self.dir;
        let resuming = run_dir::start_or_resume(out, opts.mode, &self.cfg.to_toml(), || {
            Ok(Self::open(out)?.cfg == self.cfg)
        })?;
        let stale_sites = self.cfg.data.is_some() && self.permutations.get().is_some();
        if !resuming && (self.layer.get().is_some() || stale_sites) {
            // `--force` deleted the run whose internal-coordinate statistics or reference
            // sites `new` read: train from a fresh state, which fits them to the new data.
            return Self::new(self.dir.clone(), self.cfg.clone())?
                .train_started(resuming, opts, progress);
        }
        self.train_started(resuming, opts, progress)
    }

    /// [`BgRun::train`] once the run directory is started (`resuming`: it holds a run).
    fn train_started(
        &self,
        resuming: bool,
        opts: TrainOptions,
        progress: &mut dyn Progress,
    ) -> Result<()> {
        let out = &self.dir;
        let data = self.training_data(resuming, progress)?;
        if let Some(ic) = &self.ic
            && data.is_none()
            && self.layer.get().is_none()
        {
            // Training without data: the statistics of the reference structure (the PDB).
            let x = self
                .system
                .as_openmm()
                .and_then(|m| m.positions())
                .ok_or_else(|| {
                    Error::invalid(
                        "system.pdb",
                        "training without [data] in internal coordinates needs the reference structure of a PDB",
                    )
                })?;
            let l = InternalLayer::from_reference(
                ic.clone(),
                x.view(),
                boltzflow_coords::ReferenceWidths::default(),
            )
            .context("the internal coordinates of [system] pdb")?;
            save_layer(&self.dir, &l)?;
            let _ = self.layer.set(l);
        }
        let mut bg = self.new_generator()?;
        let mut adam = Adam::new(bg.params.len());
        let checkpoint = self.checkpoint_path();
        let (start, metrics) = if resuming && checkpoint.exists() {
            let (a, e) = self.load_into(&mut bg)?;
            adam = a;
            progress.status(&format!("resuming {} after epoch {e}", out.display()));
            (e, MetricsCsv::resume(out, e)?)
        } else {
            (0, MetricsCsv::new(out))
        };
        let total = self.cfg.total_epochs();
        let end = opts.stop_after.map_or(total, |s| s.min(total));
        let energy = self.energy()?;
        let f = &self.cfg.flow;
        progress.detail(&format!(
            "training {} on {} ({} parameters, {} epochs × {} steps, batch {}) into {}",
            format!(
                "{:?} flow, {} couplings, hidden {:?}",
                f.kind, f.couplings, f.hidden
            )
            .to_lowercase(),
            self.cfg.system.spec,
            bg.params.len(),
            total,
            self.cfg.train.steps_per_epoch,
            self.cfg.train.batch_size,
            out.display()
        ));
        let rc = self.rc_entropy()?;
        let mut rec = Recorder {
            run: self,
            metrics,
            progress,
            cut_warned: None,
        };
        let t0 = Instant::now();
        let weighting = self.weighting_energy()?;
        let problem = Problem {
            energy: &energy,
            data: data.as_ref(),
            rc: rc.as_ref(),
            monitor: self
                .permutations()
                .map(|_| &weighting as &dyn boltzflow_core::Energy),
        };
        train(
            &self.cfg,
            &problem,
            &mut bg,
            &mut adam,
            start..end,
            &mut rec,
        )
        .map_err(|e| stopped(e, &checkpoint))?;
        if end < total {
            rec.progress.status(&format!(
                "stopped after epoch {end} of {total} (--stop-after); continue with --resume"
            ));
        } else {
            rec.progress.detail(&format!(
                "trained in {:.1} s; checkpoint {}",
                t0.elapsed().as_secs_f64(),
                checkpoint.display()
            ));
        }
        Ok(())
    }
}

/// Writes metrics, checkpoint and log after every epoch.
struct Recorder<'a> {
    run: &'a BgRun,
    metrics: MetricsCsv,
    progress: &'a mut dyn Progress,
    /// The stage whose saturated linlogcut was reported (once per stage).
    cut_warned: Option<String>,
}

/// A KL batch with more than this fraction above `high_energy` gets a warning.
const SATURATED_CUT_FRACTION: f64 = 0.5;

impl EpochObserver for Recorder<'_> {
    fn epoch_end(
        &mut self,
        rec: &EpochRecord,
        bg: &BoltzmannGenerator,
        adam: &Adam<f32>,
    ) -> Result<()> {
        // metrics.csv first: a run killed between the two writes has a row too many, which
        // a resume drops (it keeps the rows the checkpoint covers), never a row too few.
        self.metrics.push(rec)?;
        self.metrics.write()?;
        let ck = TrainingCheckpoint {
            finished: Vec::new(),
            current: Some(InTraining {
                params: bg.params.clone(),
                adam: adam.clone(),
                progress: rec.epoch,
            }),
        };
        ck.save(
            &self.run.checkpoint_path(),
            &FORMAT,
            bg.layout(),
            self.run.cfg.seed,
        )?;
        let own = if rec.self_ess_fraction.is_nan() {
            String::new()
        } else {
            format!("  own-sample ess {:.3}", rec.self_ess_fraction)
        };
        let own = if rec.jump_acceptance.is_nan() {
            own
        } else {
            format!("{own}  jumps accepted {:.3}", rec.jump_acceptance)
        };
        let line = format!(
            "epoch {:>4} [{}] lr {:.1e}  nll {:>9.4}  kl {:>9.4}  energy (median) {:>9.4}  val_nll {:>9.4}  ess {:>6.3}{own}  energy evaluations {:.3e}  ({:.1} s)",
            rec.epoch,
            rec.stage,
            rec.lr,
            rec.nll,
            rec.kl,
            rec.energy_median,
            rec.val_nll,
            rec.ess_fraction,
            rec.energy_evaluations as f64,
            rec.seconds
        );
        self.run.log(&line)?;
        self.progress.detail(&line);
        if rec.kl_cut_fraction > SATURATED_CUT_FRACTION
            && self.cut_warned.as_deref() != Some(rec.stage.as_str())
        {
            self.cut_warned = Some(rec.stage.clone());
            // A cut fraction exists only with a cut, so high_energy is set here.
            let high = self.run.cfg.train.high_energy.unwrap_or(f64::NAN);
            let warning = saturated_cut_warning(rec, high);
            self.run.log(&warning)?;
            self.progress.status(&warning);
        }
        if self.progress.interrupted() {
            return Err(Error::Interrupted {
                after: format!("after epoch {}", rec.epoch),
                checkpoint: self.run.checkpoint_path(),
            });
        }
        Ok(())
    }
}

/// The log's warning for a KL epoch whose batch lies mostly above the linlogcut's `high`.
fn saturated_cut_warning(rec: &EpochRecord, high: f64) -> String {
    format!(
        "warning: epoch {} [{}]: {:.0} % of the KL batch lies above [train] high_energy = {high} \
         kT, where linlogcut lets J_KL grow only logarithmically with the energy; its minimiser \
         can then lower the loss by spreading out instead of lowering the energy (the dimer bath \
         with high_energy = 100 against generated energies of ~150 kT sent its solvent out of \
         the box). Raise high_energy above the bulk of the generated energies, or train longer \
         by ML first",
        rec.epoch,
        rec.stage,
        100.0 * rec.kl_cut_fraction
    )
}

/// Training and validation rows: simulated data are held out by whole chains (frames of one
/// chain are correlated), a data file by rows.
///
/// # Errors
/// A validation fraction that leaves no training or validation rows.
pub fn split_data(x: &Array2<f64>, d: &DataConfig, streams: &RandomStreams) -> Result<TrainData> {
    match &d.simulate {
        Some(sim) => TrainData::split_by_chain(x, d.validation_fraction, sim.chains, streams),
        None => TrainData::split(x, d.validation_fraction, streams),
    }
}
