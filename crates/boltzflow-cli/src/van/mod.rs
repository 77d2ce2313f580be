//! Variational-autoregressive-network commands (`model = "van"` configurations): `train`,
//! `sample`, `evaluate` and `report` on spin systems.

pub mod evaluate;
pub mod report;
pub mod run_dir;
pub mod train;

use std::path::Path;

/// Whether a configuration file selects a VAN (`model = "van"`).
///
/// # Errors
/// If the file cannot be read or is not TOML.
pub fn is_van_config(path: &Path) -> anyhow::Result<bool> {
    Ok(boltzflow_learn::van::config::model_of(path)?.as_deref()
        == Some(boltzflow_learn::van::config::MODEL))
}

/// Whether a run directory holds a VAN run.
pub fn is_van_run(dir: &Path) -> bool {
    let cfg = dir.join("config.toml");
    cfg.exists() && is_van_config(&cfg).unwrap_or(false)
}
