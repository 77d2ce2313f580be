//! `boltzflow train CONFIG.toml` for `model = "vae"`: the stages of the β protocol in turn, a
//! checkpoint after every epoch, `--resume` from the last one (the run is
//! [`VaeRun::train`] in the library).

use std::path::PathBuf;

use anyhow::Result;
use boltzflow_learn::run::VaeRun;
use boltzflow_learn::vae::config::VaeConfig;

use crate::bg::train::TrainArgs;

/// Runs `boltzflow train` on a VAE configuration; returns the run directory.
pub fn run(a: &TrainArgs) -> Result<PathBuf> {
    let mut cfg = VaeConfig::from_file(&a.config)?;
    a.override_seed_and_system(&mut cfg.seed, &mut cfg.system.spec);
    cfg.resolve_paths()?;
    let out = a.out_dir();
    VaeRun::new(out.clone(), cfg)?.train(a.options(), &mut a.progress())?;
    Ok(out)
}
