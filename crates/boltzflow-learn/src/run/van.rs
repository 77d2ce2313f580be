//! A VAN run directory: `config.toml` (resolved), `couplings.npy` (the system's J),
//! `checkpoint.safetensors` (the network of every finished β, and the one in training with its
//! Adam moments), `metrics.csv`, `metrics.json`, `log.txt`, `report/`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use boltzflow_core::{Error, RandomStreams, Result, ResultExt};
use boltzflow_io::run_dir::{self, CHECKPOINT_FILE, MetricsCsv, MetricsRow};
use boltzflow_nn::{Adam, CheckpointFormat, InTraining, TrainingCheckpoint};
use boltzflow_systems::{SpinSystem, SpinThermo};

use super::{Progress, TrainOptions, stopped};
use crate::van::{Van, VanBuffers, VanConfig, VanStep, step_stream, train_step};

/// The checkpoint layout: finished β number k as `beta{k}.*`, the one in training as `current.*`.
const FORMAT: CheckpointFormat = CheckpointFormat {
    tag: "boltzflow-van-1",
    what: "VAN",
    section: "[network]",
    finished_prefix: "beta",
    finished_key: "betas_done",
    current_prefix: "current.",
    progress_key: "step",
};

/// A VAN run directory with its configuration and system.
pub struct VanRun {
    /// The directory.
    pub dir: PathBuf,
    /// The resolved configuration.
    pub cfg: VanConfig,
    /// The spin system.
    pub system: SpinSystem,
}

/// One row of a VAN run's metrics.csv (every `log_every` steps and at the end of each β).
struct StepRow<'a> {
    k: usize,
    beta: f64,
    step: &'a VanStep,
    exact: Option<&'a SpinThermo>,
    seconds: f64,
}

impl MetricsRow for StepRow<'_> {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let e = &self.step.estimate;
        let (fx, rel) = self.exact.map_or((f64::NAN, f64::NAN), |x| {
            (
                x.f_per_spin,
                (e.f_per_spin - x.f_per_spin).abs() / x.f_per_spin.abs(),
            )
        });
        vec![
            ("beta_index", self.k.to_string()),
            ("beta", self.beta.to_string()),
            ("step", (self.step.step + 1).to_string()),
            ("beta_t", self.step.beta_t.to_string()),
            ("f_per_spin", e.f_per_spin.to_string()),
            ("f_stderr", e.f_stderr.to_string()),
            ("energy_per_spin", e.energy_per_spin.to_string()),
            ("entropy_per_spin", e.entropy_per_spin.to_string()),
            ("f_reweighted_per_spin", e.f_reweighted_per_spin.to_string()),
            ("ess_fraction", e.ess_fraction.to_string()),
            ("grad_norm", self.step.grad_norm.to_string()),
            ("f_exact_per_spin", fx.to_string()),
            ("rel_error", rel.to_string()),
            ("seconds", format!("{:.3}", self.seconds)),
        ]
    }
}

impl VanRun {
    /// A run of `cfg` in `dir`.
    ///
    /// # Errors
    /// The spin system's errors.
    pub fn new(dir: PathBuf, cfg: VanConfig) -> Result<Self> {
        let system =
            SpinSystem::build(&cfg.system.spec).context("in [system] of the configuration")?;
        Ok(Self { dir, cfg, system })
    }

    /// Opens an existing run directory.
    ///
    /// # Errors
    /// No config.toml, or one that does not parse.
    pub fn open(dir: &Path) -> Result<Self> {
        let cfg = VanConfig::from_file(&run_dir::config_file(dir)?)?;
        Self::new(dir.to_path_buf(), cfg)
    }

    /// `checkpoint.safetensors` of the run.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.dir.join(CHECKPOINT_FILE)
    }

    /// A freshly initialised network for β number `k` (its own named stream).
    ///
    /// # Errors
    /// An invalid `[network]`.
    pub fn new_van(&self, k: usize) -> Result<Van> {
        let mut rng = RandomStreams::new(self.cfg.seed).stream(&format!("init.beta{k}"));
        Van::new(
            self.system.n(),
            self.system.lattice_side(),
            &self.cfg.network,
            self.cfg.train.chunk_rows,
            &mut rng,
        )
    }

    /// Reads the checkpoint; `van` supplies the architecture.
    ///
    /// # Errors
    /// No checkpoint, or one of another architecture.
    pub fn load(&self, van: &Van) -> Result<TrainingCheckpoint> {
        TrainingCheckpoint::load(&self.checkpoint_path(), &FORMAT, van.layout())
    }

    /// The trained networks, one per finished β.
    ///
    /// # Errors
    /// As [`VanRun::load`]; no finished β yet; non-zero masked weights.
    pub fn trained(&self) -> Result<Vec<(f64, Van)>> {
        let template = self.new_van(0)?;
        let ck = self.load(&template)?;
        if ck.finished.is_empty() {
            return Err(Error::invalid(
                "RUN_DIR",
                format!(
                    "`{}` has no finished β yet; continue training with --resume",
                    self.dir.display()
                ),
            ));
        }
        ck.finished
            .into_iter()
            .enumerate()
            .map(|(k, p)| {
                let mut van = self.new_van(k)?;
                van.params = p;
                van.check_masks()?;
                Ok((self.cfg.train.betas[k], van))
            })
            .collect()
    }

    /// Appends a line to log.txt.
    ///
    /// # Errors
    /// [`Error::Io`] naming log.txt.
    pub fn log(&self, line: &str) -> Result<()> {
        run_dir::append_log(&self.dir, line)
    }

    /// Metrics rows of β number `k` after `steps` of its steps (a row every `log_every` steps
    /// and one at the last).
    fn rows_covered(&self, finished: usize, steps: usize) -> usize {
        let t = &self.cfg.train;
        let per_beta = t.steps / t.log_every + usize::from(!t.steps.is_multiple_of(t.log_every));
        finished * per_beta + steps / t.log_every
    }

    /// Trains one network per β into the run directory, a checkpoint every `checkpoint_every`
    /// steps and after each β; resumes from the last one with [`super::StartMode::Resume`].
    /// `stop_after` counts optimizer steps over all βs.
    ///
    /// # Errors
    /// A refused directory, a training failure (named with its step; the message gives the
    /// last good checkpoint), or a failed write.
    pub fn train(&self, opts: TrainOptions, progress: &mut dyn Progress) -> Result<()> {
        let out = &self.dir;
        let checkpoint = self.checkpoint_path();
        let resuming = run_dir::start_or_resume(out, opts.mode, &self.cfg.to_toml(), || {
            Ok(Self::open(out)?.cfg == self.cfg)
        })?;
        if !resuming || !out.join("couplings.npy").exists() {
            boltzflow_io::write_npy_2d(&out.join("couplings.npy"), self.system.couplings().view())?;
        }
        let t = &self.cfg.train;
        let exact = self.system.exact(&t.betas)?;
        let mut van = self.new_van(0)?;
        let mut ck = if resuming && checkpoint.exists() {
            self.load(&van)?
        } else {
            TrainingCheckpoint::default()
        };
        let in_beta = ck.current.as_ref().map_or(0, |c| c.progress);
        let mut metrics = if resuming {
            progress.status(&format!(
                "resuming {} at β number {}, step {in_beta}",
                out.display(),
                ck.finished.len()
            ));
            MetricsCsv::resume(out, self.rows_covered(ck.finished.len(), in_beta))?
        } else {
            MetricsCsv::new(out)
        };
        progress.detail(&format!(
            "training a {:?} VAN (depth {}, width {}, {} parameters{}) on {} at β = {:?}: {} steps × batch {} per β, into {}",
            self.cfg.network.kind,
            self.cfg.network.depth,
            self.cfg.network.width,
            van.params.len(),
            if self.cfg.network.z2 { ", Z2-symmetric" } else { "" },
            self.system.spec(),
            t.betas,
            t.steps,
            t.batch_size,
            out.display()
        ));
        let save = |ck: &TrainingCheckpoint, metrics: &MetricsCsv, van: &Van| -> Result<()> {
            // metrics.csv first: a kill between the writes leaves rows the checkpoint does
            // not cover, which a resume drops, never a gap.
            metrics.write()?;
            ck.save(&checkpoint, &FORMAT, van.layout(), self.cfg.seed)
        };
        let mut buf = VanBuffers::default();
        let t0 = Instant::now();
        let mut total_steps = ck.finished.len() * t.steps + in_beta;
        let report_every = (t.steps / 10).max(t.log_every);
        for k in ck.finished.len()..t.betas.len() {
            let beta = t.betas[k];
            let InTraining {
                params,
                mut adam,
                progress: start,
            } = match ck.current.take() {
                Some(c) => c,
                None => {
                    let fresh = self.new_van(k)?;
                    let p = match (t.carry, ck.finished.last()) {
                        (true, Some(prev)) => prev.clone(),
                        _ => fresh.params,
                    };
                    let n = p.len();
                    InTraining {
                        params: p,
                        adam: Adam::new(n),
                        progress: 0,
                    }
                }
            };
            van.params = params;
            let ex = exact.as_ref().map(|e| e[k]);
            for step in start..t.steps {
                let interrupted = progress.interrupted();
                if interrupted || opts.stop_after.is_some_and(|s| total_steps >= s) {
                    ck.current = Some(InTraining {
                        params: van.params.clone(),
                        adam,
                        progress: step,
                    });
                    save(&ck, &metrics, &van)?;
                    if interrupted {
                        return Err(Error::Interrupted {
                            after: format!("after {total_steps} steps (β number {k}, step {step})"),
                            checkpoint: checkpoint.clone(),
                        });
                    }
                    progress.status(&format!(
                        "stopped after {total_steps} steps (--stop-after); continue with --resume"
                    ));
                    return Ok(());
                }
                let mut rng = step_stream(self.cfg.seed, k, step);
                let st = train_step(
                    &mut van,
                    &mut adam,
                    &self.system,
                    t,
                    beta,
                    step,
                    &mut rng,
                    &mut buf,
                )
                .map_err(|e| stopped(e, &checkpoint))?;
                total_steps += 1;
                let done = step + 1;
                if done % t.log_every == 0 || done == t.steps {
                    metrics.push(&StepRow {
                        k,
                        beta,
                        step: &st,
                        exact: ex.as_ref(),
                        seconds: t0.elapsed().as_secs_f64(),
                    })?;
                }
                if done % report_every == 0 || done == t.steps {
                    let e = &st.estimate;
                    let reference = ex.map_or(String::new(), |x| {
                        format!(
                            "  exact {:.6}  rel {:.2e}",
                            x.f_per_spin,
                            (e.f_per_spin - x.f_per_spin).abs() / x.f_per_spin.abs()
                        )
                    });
                    let line = format!(
                        "β {beta:<6} step {done:>6}/{}  β_t {:.4}  F/n {:.6} ± {:.6}{reference}  grad {:.3}  ({:.1} s)",
                        t.steps,
                        st.beta_t,
                        e.f_per_spin,
                        e.f_stderr,
                        st.grad_norm,
                        t0.elapsed().as_secs_f64()
                    );
                    self.log(&line)?;
                    progress.detail(&line);
                }
                if done % t.checkpoint_every == 0 && done < t.steps {
                    ck.current = Some(InTraining {
                        params: van.params.clone(),
                        adam: adam.clone(),
                        progress: done,
                    });
                    save(&ck, &metrics, &van)?;
                    ck.current = None;
                }
            }
            ck.finished.push(van.params.clone());
            save(&ck, &metrics, &van)?;
        }
        progress.detail(&format!(
            "trained in {:.1} s; checkpoint {}",
            t0.elapsed().as_secs_f64(),
            checkpoint.display()
        ));
        Ok(())
    }
}
