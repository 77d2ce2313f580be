//! VAE commands (`model = "vae"` configurations): `train` (the β protocol), `evaluate` (latent
//! metrics and VAE Monte Carlo), `sample`, `report` (the paper's figures for one run) and
//! `sweep` (decoders × β × replicates × latent dimensions).

pub mod evaluate;
pub mod figures;
pub mod report;
pub mod run_dir;
pub mod sweep;
pub mod train;

use std::path::Path;

/// Whether a configuration file selects a VAE (`model = "vae"`).
///
/// # Errors
/// If the file cannot be read or is not TOML.
pub fn is_vae_config(path: &Path) -> anyhow::Result<bool> {
    Ok(boltzflow_learn::van::config::model_of(path)?.as_deref()
        == Some(boltzflow_learn::vae::config::MODEL))
}

/// Whether a run directory holds a VAE run.
pub fn is_vae_run(dir: &Path) -> bool {
    let cfg = dir.join("config.toml");
    cfg.exists() && is_vae_config(&cfg).unwrap_or(false)
}
