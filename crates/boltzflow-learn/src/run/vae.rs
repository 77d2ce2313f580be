//! A VAE run directory: the resolved `config.toml`, `data.npy` (the training data, so that
//! evaluation and reports see the same points), `checkpoint.safetensors` (the parameters of
//! every finished stage, and of the stage in training with its Adam moments), `metrics.csv`
//! (per epoch), `metrics.json` (per stage), `log.txt`, `report/`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use boltzflow_core::{Error, RandomStreams, Result, ResultExt};
use boltzflow_io::run_dir::{self, CHECKPOINT_FILE, MetricsCsv, MetricsRow};
use boltzflow_nn::{Adam, CheckpointFormat, InTraining, TrainingCheckpoint};
use boltzflow_systems::System;
use ndarray::{Array2, ArrayView2};

use super::vae_representation::{Representation, RepresentationKind};
use super::{Progress, TrainOptions, build_system, simulate_data, stopped};
use crate::vae::config::VaeConfig;
use crate::vae::model::Vae;
use crate::vae::train::{EpochStats, EpochWorkspace, Stage, stages, train_epoch};

/// The checkpoint layout: finished stage s as `stage{s}.*`, the one in training as `current.*`.
const FORMAT: CheckpointFormat = CheckpointFormat {
    tag: "boltzflow-vae-1",
    what: "VAE",
    section: "[vae]",
    finished_prefix: "stage",
    finished_key: "stages_done",
    current_prefix: "current.",
    progress_key: "epoch",
};

/// A VAE run directory with its configuration, system and model shape.
pub struct VaeRun {
    /// The directory.
    pub dir: PathBuf,
    /// The resolved configuration.
    pub cfg: VaeConfig,
    /// The configuration's system.
    pub system: Box<dyn System>,
    /// β that turns the system's energies into kT (1 for the toy systems).
    pub beta: f64,
    /// Indices of the periodic coordinates of a toy system (period 2π).
    pub periodic: Vec<usize>,
    /// For a molecule: the coordinates the VAE sees (`[vae] representation`).
    pub representation: Option<RepresentationKind>,
}

/// A finished stage and its parameters.
pub type TrainedStage = (Stage, Vec<f32>);

/// One row of a VAE run's metrics.csv.
struct EpochRow<'a> {
    stage: usize,
    label: &'a str,
    beta: f64,
    epoch: usize,
    stats: &'a EpochStats,
    seconds: f64,
}

impl MetricsRow for EpochRow<'_> {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let l = &self.stats.loss;
        vec![
            ("stage", self.stage.to_string()),
            ("label", self.label.to_string()),
            ("beta", self.beta.to_string()),
            ("epoch", self.epoch.to_string()),
            ("beta_t", self.stats.beta.to_string()),
            ("loss", l.total.to_string()),
            ("loss_recon", l.recon.to_string()),
            ("loss_kl", l.kl.to_string()),
            ("seconds", format!("{:.3}", self.seconds)),
        ]
    }
}

impl VaeRun {
    /// A run of `cfg` in `dir`; checks that the periodic coordinates have period 2π.
    ///
    /// # Errors
    /// The system's errors; a period other than 2π.
    pub fn new(dir: PathBuf, cfg: VaeConfig) -> Result<Self> {
        let (system, beta) = build_system(&cfg.system, "leave [system] temperature out")?;
        let representation = match (&cfg.vae.representation, system.atom_masses()) {
            (Some(r), Some(_)) => Some(RepresentationKind::parse(r)?),
            (None, Some(_)) => {
                return Err(Error::invalid(
                    "vae.representation",
                    format!(
                        "{} is a molecule: choose the VAE's coordinates, one of {}",
                        cfg.system.spec,
                        RepresentationKind::NAMES.join(", ")
                    ),
                ));
            }
            (Some(_), None) => {
                return Err(Error::invalid(
                    "vae.representation",
                    format!(
                        "is for molecules; {} has no atoms: leave representation out",
                        cfg.system.spec
                    ),
                ));
            }
            (None, None) => None,
        };
        let mut periodic = Vec::new();
        for (i, p) in system.periods().iter().enumerate() {
            if let Some([lo, hi]) = p {
                if ((hi - lo) - std::f64::consts::TAU).abs() > 1e-9 {
                    return Err(Error::invalid(
                        "system.spec",
                        format!(
                            "coordinate {i} of {} is periodic on [{lo}, {hi}); the VAE's von Mises outputs need period 2π",
                            cfg.system.spec
                        ),
                    ));
                }
                periodic.push(i);
            }
        }
        Ok(Self {
            dir,
            cfg,
            system,
            beta,
            periodic,
            representation,
        })
    }

    /// The fitted representation of a molecular run (kept in its directory since `train`
    /// started it), `None` for a toy system.
    ///
    /// # Errors
    /// A molecular run whose directory has no representation yet; bad files.
    pub fn fitted_representation(&self) -> Result<Option<Representation>> {
        let Some(kind) = self.representation else {
            return Ok(None);
        };
        match Representation::load(kind, self.system.as_ref(), &self.dir)? {
            Some(r) => Ok(Some(r)),
            None => Err(Error::invalid(
                "RUN_DIR",
                format!(
                    "`{}` has no fitted `{}` coordinates yet; start the run with `boltzflow train`",
                    self.dir.display(),
                    kind.name()
                ),
            )),
        }
    }

    /// Columns of the VAE's input and its periodic ones.
    pub(crate) fn shape(&self) -> Result<(usize, Vec<usize>)> {
        Ok(match self.fitted_representation()? {
            Some(r) => (r.dim(), r.periodic()),
            None => (self.system.dim(), self.periodic.clone()),
        })
    }

    /// The VAE's input rows of configurations `x` `[n, system dim]`: the representation of a
    /// molecular run, `x` itself otherwise.
    ///
    /// # Errors
    /// As [`VaeRun::fitted_representation`]; rows of the wrong width.
    pub fn features(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        super::check_configurations(x, self.system.dim(), "configurations")?;
        match self.fitted_representation()? {
            Some(r) => r.features(x),
            None => Ok(x.to_owned()),
        }
    }

    /// The number of trajectories the run's data are, frame-major, or `None` for
    /// independent samples (`[data] exact`).
    pub fn trajectories(&self) -> Option<usize> {
        let d = &self.cfg.data;
        match (&d.simulate, &d.file) {
            (Some(sim), _) => Some(sim.chains),
            (None, Some(_)) => Some(d.chains.unwrap_or(1)),
            _ => None,
        }
    }

    /// Opens an existing run directory.
    ///
    /// # Errors
    /// No config.toml, or one that does not parse.
    pub fn open(dir: &Path) -> Result<Self> {
        let cfg = VaeConfig::from_file(&run_dir::config_file(dir)?)?;
        Self::new(dir.to_path_buf(), cfg)
    }

    /// `checkpoint.safetensors` of the run.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.dir.join(CHECKPOINT_FILE)
    }

    /// The protocol's stages.
    pub fn stages(&self) -> Vec<Stage> {
        let t = &self.cfg.train;
        stages(&t.betas, t.reverse, t.autoencoder)
    }

    /// The model (architecture only).
    ///
    /// # Errors
    /// An invalid `[vae]`.
    pub fn vae(&self) -> Result<Vae> {
        let (dim, periodic) = self.shape()?;
        let spec = self.cfg.vae_spec(dim, &periodic)?;
        Ok(Vae::from_spec(&spec))
    }

    /// Fresh parameters for stage `s` (its own named stream).
    pub fn fresh_params(&self, vae: &Vae, s: usize) -> Vec<f32> {
        let mut p = vec![0.0f32; vae.layout().len()];
        let mut rng = RandomStreams::new(self.cfg.seed).stream(&format!("vae.init.stage{s}"));
        vae.init(&mut p, &mut rng);
        p
    }

    /// The training data `[n, d]` as configured (exact samples, a file or Metropolis chains).
    ///
    /// # Errors
    /// No source, a system without an exact sampler, the wrong shape, or non-finite values.
    pub fn make_data(&self) -> Result<Array2<f64>> {
        let d = &self.cfg.data;
        let streams = RandomStreams::new(self.cfg.seed);
        let x = if let Some(n) = d.exact {
            let Some(sampler) = self.system.exact_sampler() else {
                return Err(Error::invalid(
                    "data.exact",
                    format!(
                        "{} has no exact sampler; give file = \"X.npy\" or [data.simulate]",
                        self.cfg.system.spec
                    ),
                ));
            };
            sampler.sample(n, &mut streams.stream("vae.data.exact"))?
        } else if let Some(f) = &d.file {
            boltzflow_io::trajectory::read_coordinates(f).context("in [data] file")?
        } else if let Some(sim) = &d.simulate {
            let kelvin = self
                .system
                .atom_masses()
                .map(|_| self.cfg.system.temperature.unwrap_or(300.0));
            simulate_data(self.system.as_ref(), sim, kelvin, &streams)?
        } else {
            return Err(Error::invalid("data", "no data source"));
        };
        if let Some(c) = d.chains
            && !x.nrows().is_multiple_of(c)
        {
            return Err(Error::invalid(
                "data.chains",
                format!(
                    "{} frames are not {c} trajectories of equal length",
                    x.nrows()
                ),
            ));
        }
        if x.ncols() != self.system.dim() || x.nrows() < 2 {
            return Err(Error::shape(
                "VAE data",
                format!("[n ≥ 2, {}]", self.system.dim()),
                format!("{:?}", x.shape()),
            ));
        }
        if let Some((i, v)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "VAE training data".into(),
                location: format!("row {}, column {}", i / x.ncols(), i % x.ncols()),
                value: *v,
            });
        }
        Ok(x)
    }

    /// The run's stored data as f32 rows.
    ///
    /// # Errors
    /// No data.npy.
    pub fn data(&self) -> Result<Vec<f32>> {
        let x = boltzflow_io::read_npy_2d(&self.dir.join("data.npy"))
            .context("the run's data.npy (written by `boltzflow train`)")?;
        Ok(x.iter().map(|&v| v as f32).collect())
    }

    /// Reads the checkpoint; `vae` supplies the architecture.
    ///
    /// # Errors
    /// No checkpoint, another architecture, or masked decoder weights that are not zero.
    pub fn load(&self, vae: &Vae) -> Result<TrainingCheckpoint> {
        let path = self.checkpoint_path();
        let ck = TrainingCheckpoint::load(&path, &FORMAT, vae.layout())?;
        let current = ck
            .current
            .iter()
            .map(|c| ("current.".to_string(), &c.params));
        let finished = ck
            .finished
            .iter()
            .enumerate()
            .map(|(s, p)| (format!("stage{s}."), p));
        for (prefix, p) in finished.chain(current) {
            if !vae.respects_masks(p) {
                return Err(Error::BadFile {
                    path,
                    reason: format!("the decoder's masked weights of `{prefix}` are not zero"),
                });
            }
        }
        Ok(ck)
    }

    /// The model and the parameters of every finished stage, with its stage.
    ///
    /// # Errors
    /// As [`VaeRun::load`]; no finished stage yet.
    pub fn trained(&self) -> Result<(Vae, Vec<TrainedStage>)> {
        let vae = self.vae()?;
        let ck = self.load(&vae)?;
        if ck.finished.is_empty() {
            return Err(Error::invalid(
                "RUN_DIR",
                format!(
                    "`{}` has no finished stage yet; continue training with --resume",
                    self.dir.display()
                ),
            ));
        }
        let stages = self.stages();
        let done = ck
            .finished
            .into_iter()
            .enumerate()
            .map(|(s, p)| (stages[s], p))
            .collect();
        Ok((vae, done))
    }

    /// Appends a line to log.txt.
    ///
    /// # Errors
    /// [`Error::Io`] naming log.txt.
    pub fn log(&self, line: &str) -> Result<()> {
        run_dir::append_log(&self.dir, line)
    }

    /// Starts (or checks, with [`super::StartMode::Resume`]) the run directory and writes its
    /// data: `data` if given (a sweep shares one data set), else the configured source; for a
    /// molecule, the representation is fitted to the data and kept, and data.npy holds the
    /// represented rows. Returns whether the run resumes.
    ///
    /// # Errors
    /// A refused directory or bad data.
    pub fn start(&self, mode: super::StartMode, data: Option<&Array2<f64>>) -> Result<bool> {
        let out = &self.dir;
        let resume = run_dir::start_or_resume(out, mode, &self.cfg.to_toml(), || {
            Ok(Self::open(out)?.cfg == self.cfg)
        })?;
        if !resume || !out.join("data.npy").exists() {
            let mut x = match data {
                Some(x) => x.clone(),
                None => self.make_data()?,
            };
            if let Some(kind) = self.representation {
                // The statistics first: a kill before data.npy is written redoes both.
                let repr = Representation::fit(kind, self.system.as_ref(), x.view())?;
                repr.save(out)?;
                x = repr.features(x.view())?;
            }
            boltzflow_io::write_npy_2d(&out.join("data.npy"), x.view())?;
        }
        Ok(resume)
    }

    /// Starts the run directory ([`VaeRun::start`]) and trains every stage
    /// ([`VaeRun::train_started`]).
    ///
    /// # Errors
    /// As the two.
    pub fn train(&self, opts: TrainOptions, progress: &mut dyn Progress) -> Result<()> {
        let resume = self.start(opts.mode, None)?;
        self.train_started(resume, opts.stop_after, progress)
    }

    /// Trains every stage of a started run directory, resuming from its checkpoint with
    /// `resume`. `stop_after` stops after that many epochs in total, as a killed run would.
    ///
    /// # Errors
    /// Bad stored data or checkpoint, a training failure (named with its epoch; the message
    /// gives the last good checkpoint), or a failed write.
    pub fn train_started(
        &self,
        resume: bool,
        stop_after: Option<usize>,
        progress: &mut dyn Progress,
    ) -> Result<()> {
        let data = self.data()?;
        let vae = self.vae()?;
        let stages = self.stages();
        let t = &self.cfg.train;
        let checkpoint = self.checkpoint_path();
        let mut ck = if resume && checkpoint.exists() {
            self.load(&vae)?
        } else {
            TrainingCheckpoint::default()
        };
        let in_stage = ck.current.as_ref().map_or(0, |c| c.progress);
        let done_epochs = ck.finished.len() * t.epochs + in_stage;
        let mut metrics = if resume {
            progress.status(&format!(
                "resuming {} at stage {}, epoch {in_stage}",
                self.dir.display(),
                ck.finished.len(),
            ));
            MetricsCsv::resume(&self.dir, done_epochs)?
        } else {
            MetricsCsv::new(&self.dir)
        };
        let n = data.len() / vae.dim();
        progress.detail(&format!(
            "training a VAE ({} decoder, latent dim {}, {} parameters) on {} ({} points) through {} stages × {} epochs, batch {}, into {}",
            vae.decoder().kind().name(),
            vae.latent_dim(),
            vae.layout().len(),
            self.cfg.system.spec,
            n,
            stages.len(),
            t.epochs,
            t.batch_size,
            self.dir.display()
        ));
        let t0 = Instant::now();
        let mut total = done_epochs;
        let mut ws = EpochWorkspace::default();
        let save = |ck: &TrainingCheckpoint, metrics: &MetricsCsv| -> Result<()> {
            // metrics.csv first: a kill between the writes leaves a row too many, which a
            // resume drops, never a row too few.
            metrics.write()?;
            ck.save(&checkpoint, &FORMAT, vae.layout(), self.cfg.seed)
        };
        for s in ck.finished.len()..stages.len() {
            let stage = &stages[s];
            let InTraining {
                mut params,
                mut adam,
                progress: start,
            } = match ck.current.take() {
                Some(c) => c,
                None => {
                    let p = match (stage.fresh, ck.finished.last()) {
                        (false, Some(prev)) => prev.clone(),
                        _ => self.fresh_params(&vae, s),
                    };
                    let len = p.len();
                    InTraining {
                        params: p,
                        adam: Adam::new(len),
                        progress: 0,
                    }
                }
            };
            for epoch in start..t.epochs {
                let interrupted = progress.interrupted();
                if interrupted || stop_after.is_some_and(|m| total >= m) {
                    ck.current = Some(InTraining {
                        params,
                        adam,
                        progress: epoch,
                    });
                    save(&ck, &metrics)?;
                    if interrupted {
                        return Err(Error::Interrupted {
                            after: format!("after {total} epochs (stage {s}, epoch {epoch})"),
                            checkpoint: checkpoint.clone(),
                        });
                    }
                    progress.status(&format!(
                        "stopped after {total} epochs (--stop-after); continue with --resume"
                    ));
                    return Ok(());
                }
                let st = train_epoch(
                    &vae,
                    &mut params,
                    &mut adam,
                    &data,
                    stage,
                    s,
                    epoch,
                    t,
                    self.cfg.seed,
                    &mut ws,
                )
                .map_err(|e| stopped(e, &checkpoint))?;
                total += 1;
                let secs = t0.elapsed().as_secs_f64();
                metrics.push(&EpochRow {
                    stage: s,
                    label: &stage.label(),
                    beta: stage.beta,
                    epoch: epoch + 1,
                    stats: &st,
                    seconds: secs,
                })?;
                let line = format!(
                    "{:<14} epoch {:>4}/{}  β_t {:.3}  loss {:.4}  recon {:.4}  KL {:.4}  ({secs:.1} s)",
                    stage.label(),
                    epoch + 1,
                    t.epochs,
                    st.beta,
                    st.loss.total,
                    st.loss.recon,
                    st.loss.kl
                );
                self.log(&line)?;
                progress.detail(&line);
                if epoch + 1 < t.epochs {
                    ck.current = Some(InTraining {
                        params: params.clone(),
                        adam: adam.clone(),
                        progress: epoch + 1,
                    });
                    save(&ck, &metrics)?;
                    ck.current = None;
                }
            }
            ck.finished.push(params);
            save(&ck, &metrics)?;
        }
        progress.detail(&format!(
            "trained in {:.1} s; checkpoint {}",
            t0.elapsed().as_secs_f64(),
            checkpoint.display()
        ));
        Ok(())
    }
}
