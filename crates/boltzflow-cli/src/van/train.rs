//! `boltzflow train CONFIG.toml` for `model = "van"`: one network per β, each trained by the
//! variational free energy with β annealing; a checkpoint every `checkpoint_every` steps and
//! after each β, `--resume` from the last one (the run is [`VanRun::train`] in the library).

use std::path::PathBuf;

use anyhow::Result;
use boltzflow_learn::run::VanRun;
use boltzflow_learn::van::VanConfig;

use crate::bg::train::TrainArgs;

/// Runs `boltzflow train` on a VAN configuration; returns the run directory.
pub fn run(a: &TrainArgs) -> Result<PathBuf> {
    let mut cfg = VanConfig::from_file(&a.config)?;
    a.override_seed_and_system(&mut cfg.seed, &mut cfg.system.spec);
    cfg.resolve_paths()?;
    let out = a.out_dir();
    VanRun::new(out.clone(), cfg)?.train(a.options(), &mut a.progress())?;
    Ok(out)
}
