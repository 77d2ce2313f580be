//! VAE commands (`model = "vae"` configurations): `train` (the β protocol), `evaluate` (latent
//! metrics and VAE Monte Carlo), `sample`, `report` (the paper's figures for one run) and
//! `sweep` (decoders × β × replicates × latent dimensions), and `export-plumed` (the encoder
//! mean as a PLUMED input).

pub mod evaluate;
pub mod figures;
pub mod plumed;
pub mod report;
pub mod sweep;

use std::path::Path;

/// Whether a run directory holds a VAE run.
pub fn is_vae_run(dir: &Path) -> bool {
    boltzflow_learn::run::ModelKind::of_run(dir)
        .is_ok_and(|k| k == boltzflow_learn::run::ModelKind::Vae)
}
