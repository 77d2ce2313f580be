//! A Boltzmann-generator run directory (DESIGN §7): the resolved `config.toml`,
//! `checkpoint.safetensors` (parameters and optimizer state in one atomically written file),
//! `metrics.csv`, `metrics.json`, `log.txt`, `data.npy` and `report/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use boltzflow_core::RandomStreams;
use boltzflow_learn::BoltzmannGenerator;
use boltzflow_learn::config::BgConfig;
use boltzflow_nn::{Adam, TensorFile};

use crate::run_common::Checkpoint;
use boltzflow_systems::System;

/// Checkpoint format tag (metadata `format`).
const FORMAT: &str = "boltzflow-bg-1";

/// A run directory with its configuration and system.
pub struct Run {
    pub dir: PathBuf,
    pub cfg: BgConfig,
    pub system: Box<dyn System>,
    /// β that turns the system's energies into reduced units (1 for toy systems).
    pub beta: f64,
}

impl Run {
    /// Builds the system of a configuration (relative paths are relative to the working
    /// directory; `train` stores them resolved).
    pub fn new(dir: PathBuf, cfg: BgConfig) -> Result<Self> {
        let (system, beta) = crate::run_common::build_system(
            &cfg.system,
            "temperatures of the toy systems are set per stage with `temperatures`",
        )?;
        Ok(Self {
            dir,
            cfg,
            system,
            beta,
        })
    }

    /// Opens an existing run directory.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = crate::run_common::config_file(dir)?;
        let cfg = BgConfig::from_file(&path)?;
        Self::new(dir.to_path_buf(), cfg)
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        self.dir.join("checkpoint.safetensors")
    }

    /// A generator with the run's architecture (identity initialisation).
    pub fn new_generator(&self) -> Result<BoltzmannGenerator> {
        let mut rng = RandomStreams::new(self.cfg.seed).stream("init");
        let mut bg = BoltzmannGenerator::new(
            self.system.dim(),
            &self.cfg.flow,
            self.cfg.prior.sigma,
            &mut rng,
        )?;
        bg.set_chunk_rows(self.cfg.train.chunk_rows);
        Ok(bg)
    }

    /// The trained generator and the epoch its checkpoint was written after.
    pub fn load_generator(&self) -> Result<(BoltzmannGenerator, usize)> {
        let mut bg = self.new_generator()?;
        let epoch = load_checkpoint(&self.checkpoint_path(), &mut bg, None)?;
        Ok((bg, epoch))
    }

    /// Appends a line to log.txt.
    pub fn log(&self, line: &str) -> Result<()> {
        crate::run_common::append_log(&self.dir, line)
    }
}

/// Writes parameters, optimizer moments and the epoch atomically.
pub fn save_checkpoint(
    path: &Path,
    bg: &BoltzmannGenerator,
    adam: &Adam<f32>,
    epoch: usize,
    seed: u64,
) -> boltzflow_core::Result<()> {
    let mut f = TensorFile::<f32>::default();
    for e in bg.layout().entries() {
        f.push(&e.name, &e.shape, &bg.params[e.range.clone()]);
    }
    crate::run_common::push_moments(&mut f, bg.layout(), adam);
    f.metadata = BTreeMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("epoch".to_string(), epoch.to_string()),
        ("optimizer_steps".to_string(), adam.t.to_string()),
        ("seed".to_string(), seed.to_string()),
    ]);
    f.write(path)
}

/// Reads a checkpoint into `bg` (and `adam`); returns its epoch.
pub fn load_checkpoint(
    path: &Path,
    bg: &mut BoltzmannGenerator,
    adam: Option<&mut Adam<f32>>,
) -> Result<usize> {
    let ck = Checkpoint::open(path, FORMAT, "generator", "[flow]")?;
    let epoch = ck.meta("epoch")?;
    let layout = bg.layout().clone();
    ck.fill(&layout, "", &mut bg.params)?;
    if let Some(adam) = adam {
        ck.fill(&layout, "optimizer.m.", &mut adam.m)?;
        ck.fill(&layout, "optimizer.v.", &mut adam.v)?;
        adam.t = ck.meta("optimizer_steps").unwrap_or(0) as u64;
    }
    Ok(epoch)
}
