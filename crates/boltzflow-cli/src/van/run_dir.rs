//! A VAN run directory: `config.toml` (resolved), `couplings.npy` (the system's J),
//! `checkpoint.safetensors` (the network of every finished β, and the one in training with its
//! Adam moments), `metrics.csv`, `metrics.json`, `log.txt`, `report/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use boltzflow_core::{Error, RandomStreams};
use boltzflow_learn::van::{Van, VanConfig};
use boltzflow_nn::{Adam, TensorFile};

use crate::run_common::Checkpoint;
use boltzflow_systems::SpinSystem;

/// Checkpoint format tag.
const FORMAT: &str = "boltzflow-van-1";

/// A VAN run directory with its configuration and system.
pub struct VanRun {
    pub dir: PathBuf,
    pub cfg: VanConfig,
    pub system: SpinSystem,
}

/// What a checkpoint holds.
pub struct VanCheckpoint {
    /// Trained parameters of the finished βs, in order.
    pub finished: Vec<Vec<f32>>,
    /// The β in training: its parameters, Adam state and the steps done.
    pub current: Option<(Vec<f32>, Adam<f32>, usize)>,
}

impl VanRun {
    /// Builds the system of a configuration.
    pub fn new(dir: PathBuf, cfg: VanConfig) -> Result<Self> {
        let system =
            SpinSystem::build(&cfg.system.spec).context("in [system] of the configuration")?;
        Ok(Self { dir, cfg, system })
    }

    /// Opens an existing run directory.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = crate::run_common::config_file(dir)?;
        Self::new(dir.to_path_buf(), VanConfig::from_file(&path)?)
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        self.dir.join("checkpoint.safetensors")
    }

    /// A freshly initialised network for β number `k` (its own named stream).
    pub fn new_van(&self, k: usize) -> Result<Van> {
        let mut rng = RandomStreams::new(self.cfg.seed).stream(&format!("init.beta{k}"));
        Ok(Van::new(
            self.system.n(),
            self.system.lattice_side(),
            &self.cfg.network,
            self.cfg.train.chunk_rows,
            &mut rng,
        )?)
    }

    /// Writes the checkpoint atomically.
    pub fn save(&self, van: &Van, ck: &VanCheckpoint) -> boltzflow_core::Result<()> {
        let mut f = TensorFile::<f32>::default();
        let layout = van.layout();
        for (k, p) in ck.finished.iter().enumerate() {
            for e in layout.entries() {
                f.push(format!("beta{k}.{}", e.name), &e.shape, &p[e.range.clone()]);
            }
        }
        let mut meta = BTreeMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("betas_done".to_string(), ck.finished.len().to_string()),
            ("seed".to_string(), self.cfg.seed.to_string()),
        ]);
        if let Some((p, adam, step)) = &ck.current {
            for e in layout.entries() {
                f.push(format!("current.{}", e.name), &e.shape, &p[e.range.clone()]);
            }
            crate::run_common::push_moments(&mut f, layout, adam);
            meta.insert("step".into(), step.to_string());
            meta.insert("optimizer_steps".into(), adam.t.to_string());
        }
        f.metadata = meta;
        f.write(&self.checkpoint_path())
    }

    /// Reads the checkpoint; `van` supplies the architecture.
    pub fn load(&self, van: &Van) -> Result<VanCheckpoint> {
        let ck = Checkpoint::open(&self.checkpoint_path(), FORMAT, "VAN", "[network]")?;
        let layout = van.layout();
        let read = |prefix: &str| -> Result<Vec<f32>> {
            let mut out = vec![0.0; layout.len()];
            ck.fill(layout, prefix, &mut out)?;
            Ok(out)
        };
        let finished = (0..ck.meta("betas_done")?)
            .map(|k| read(&format!("beta{k}.")))
            .collect::<Result<Vec<_>>>()?;
        let current = if ck.has("step") {
            let mut adam = Adam::new(layout.len());
            adam.m = read("optimizer.m.")?;
            adam.v = read("optimizer.v.")?;
            adam.t = ck.meta("optimizer_steps")? as u64;
            Some((read("current.")?, adam, ck.meta("step")?))
        } else {
            None
        };
        Ok(VanCheckpoint { finished, current })
    }

    /// The trained networks, one per finished β.
    pub fn trained(&self) -> Result<Vec<(f64, Van)>> {
        let template = self.new_van(0)?;
        let ck = self.load(&template)?;
        if ck.finished.is_empty() {
            bail!(Error::invalid(
                "RUN_DIR",
                format!(
                    "`{}` has no finished β yet; continue training with --resume",
                    self.dir.display()
                )
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
    pub fn log(&self, line: &str) -> Result<()> {
        crate::run_common::append_log(&self.dir, line)
    }
}
