//! A VAE run directory: the resolved `config.toml`, `data.npy` (the training data, so that
//! `evaluate` and `report` see the same points), `checkpoint.safetensors` (the parameters of
//! every finished stage, and of the stage in training with its Adam moments), `metrics.csv`
//! (per epoch), `metrics.json` (per stage), `log.txt`, `report/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use boltzflow_core::{Error, RandomStreams};
use boltzflow_learn::vae::config::VaeConfig;
use boltzflow_learn::vae::model::Vae;
use boltzflow_learn::vae::train::{Stage, stages};
use boltzflow_nn::{Adam, TensorFile};
use boltzflow_systems::System;
use ndarray::Array2;

use crate::run_common::Checkpoint;

/// Checkpoint format tag.
const FORMAT: &str = "boltzflow-vae-1";

/// A VAE run directory with its configuration, system and model shape.
pub struct VaeRun {
    pub dir: PathBuf,
    pub cfg: VaeConfig,
    pub system: Box<dyn System>,
    /// β that turns the system's energies into kT (1 for the toy systems).
    pub beta: f64,
    /// Indices of the periodic coordinates (period 2π).
    pub periodic: Vec<usize>,
}

/// A finished stage and its parameters.
pub type TrainedStage = (Stage, Vec<f32>);

/// What a checkpoint holds.
pub struct VaeCheckpoint {
    /// Parameters of the finished stages, in order.
    pub finished: Vec<Vec<f32>>,
    /// The stage in training: parameters, Adam state, epochs done.
    pub current: Option<(Vec<f32>, Adam<f32>, usize)>,
}

impl VaeRun {
    /// Builds the system of a configuration and checks that its periodic coordinates have
    /// period 2π.
    pub fn new(dir: PathBuf, cfg: VaeConfig) -> Result<Self> {
        let (system, beta) =
            crate::run_common::build_system(&cfg.system, "leave [system] temperature out")?;
        let mut periodic = Vec::new();
        for (i, p) in system.periods().iter().enumerate() {
            if let Some([lo, hi]) = p {
                if ((hi - lo) - std::f64::consts::TAU).abs() > 1e-9 {
                    bail!(Error::invalid(
                        "system.spec",
                        format!(
                            "coordinate {i} of {} is periodic on [{lo}, {hi}); the VAE's von Mises outputs need period 2π",
                            cfg.system.spec
                        )
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
        })
    }

    /// Opens an existing run directory.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = crate::run_common::config_file(dir)?;
        Self::new(dir.to_path_buf(), VaeConfig::from_file(&path)?)
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        self.dir.join("checkpoint.safetensors")
    }

    /// The protocol's stages.
    pub fn stages(&self) -> Vec<Stage> {
        let t = &self.cfg.train;
        stages(&t.betas, t.reverse, t.autoencoder)
    }

    /// The model (architecture only).
    pub fn vae(&self) -> Result<Vae> {
        let spec = self.cfg.vae_spec(self.system.dim(), &self.periodic)?;
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
    pub fn make_data(&self) -> Result<Array2<f64>> {
        let d = &self.cfg.data;
        let streams = RandomStreams::new(self.cfg.seed);
        let x = if let Some(n) = d.exact {
            let Some(sampler) = self.system.exact_sampler() else {
                bail!(Error::invalid(
                    "data.exact",
                    format!(
                        "{} has no exact sampler; give file = \"X.npy\" or [data.simulate]",
                        self.cfg.system.spec
                    )
                ));
            };
            sampler.sample(n, &mut streams.stream("vae.data.exact"))?
        } else if let Some(f) = &d.file {
            boltzflow_io::read_npy_2d(f)?
        } else if let Some(sim) = &d.simulate {
            let kelvin = self
                .system
                .atom_masses()
                .map(|_| self.cfg.system.temperature.unwrap_or(300.0));
            crate::bg::train::simulate_data(self.system.as_ref(), sim, kelvin, &streams)?
        } else {
            bail!(Error::invalid("data", "no data source"));
        };
        if x.ncols() != self.system.dim() || x.nrows() < 2 {
            bail!(Error::shape(
                "VAE data",
                format!("[n ≥ 2, {}]", self.system.dim()),
                format!("{:?}", x.shape())
            ));
        }
        if let Some((i, v)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            bail!(Error::NonFinite {
                what: "VAE training data".into(),
                location: format!("row {}, column {}", i / x.ncols(), i % x.ncols()),
                value: *v,
            });
        }
        Ok(x)
    }

    /// The run's stored data as f32 rows.
    pub fn data(&self) -> Result<Vec<f32>> {
        let x = boltzflow_io::read_npy_2d(&self.dir.join("data.npy"))
            .context("the run's data.npy (written by `boltzflow train`)")?;
        Ok(x.iter().map(|&v| v as f32).collect())
    }

    /// Writes the checkpoint atomically.
    pub fn save(&self, vae: &Vae, ck: &VaeCheckpoint) -> boltzflow_core::Result<()> {
        let mut f = TensorFile::<f32>::default();
        let layout = vae.layout();
        for (s, p) in ck.finished.iter().enumerate() {
            for e in layout.entries() {
                f.push(
                    format!("stage{s}.{}", e.name),
                    &e.shape,
                    &p[e.range.clone()],
                );
            }
        }
        let mut meta = BTreeMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("stages_done".to_string(), ck.finished.len().to_string()),
            ("seed".to_string(), self.cfg.seed.to_string()),
        ]);
        if let Some((p, adam, epoch)) = &ck.current {
            for e in layout.entries() {
                f.push(format!("current.{}", e.name), &e.shape, &p[e.range.clone()]);
            }
            crate::run_common::push_moments(&mut f, layout, adam);
            meta.insert("epoch".into(), epoch.to_string());
            meta.insert("optimizer_steps".into(), adam.t.to_string());
        }
        f.metadata = meta;
        f.write(&self.checkpoint_path())
    }

    /// Reads the checkpoint; `vae` supplies the architecture.
    pub fn load(&self, vae: &Vae) -> Result<VaeCheckpoint> {
        let ck = Checkpoint::open(&self.checkpoint_path(), FORMAT, "VAE", "[vae]")?;
        let layout = vae.layout();
        let read = |prefix: &str| -> Result<Vec<f32>> {
            let mut out = vec![0.0; layout.len()];
            ck.fill(layout, prefix, &mut out)?;
            if !vae.respects_masks(&out) {
                bail!(Error::BadFile {
                    path: self.checkpoint_path(),
                    reason: format!("the decoder's masked weights of `{prefix}` are not zero"),
                });
            }
            Ok(out)
        };
        let finished = (0..ck.meta("stages_done")?)
            .map(|s| read(&format!("stage{s}.")))
            .collect::<Result<Vec<_>>>()?;
        let current = if ck.has("epoch") {
            let mut adam = Adam::new(layout.len());
            let mut m = vec![0.0; layout.len()];
            ck.fill(layout, "optimizer.m.", &mut m)?;
            let mut v = vec![0.0; layout.len()];
            ck.fill(layout, "optimizer.v.", &mut v)?;
            adam.m = m;
            adam.v = v;
            adam.t = ck.meta("optimizer_steps")? as u64;
            Some((read("current.")?, adam, ck.meta("epoch")?))
        } else {
            None
        };
        Ok(VaeCheckpoint { finished, current })
    }

    /// The model and the parameters of every finished stage, with its stage.
    pub fn trained(&self) -> Result<(Vae, Vec<TrainedStage>)> {
        let vae = self.vae()?;
        let ck = self.load(&vae)?;
        if ck.finished.is_empty() {
            bail!(Error::invalid(
                "RUN_DIR",
                format!(
                    "`{}` has no finished stage yet; continue training with --resume",
                    self.dir.display()
                )
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
    pub fn log(&self, line: &str) -> Result<()> {
        crate::run_common::append_log(&self.dir, line)
    }
}
