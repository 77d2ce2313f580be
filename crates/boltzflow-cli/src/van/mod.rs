//! Variational-autoregressive-network commands (`model = "van"` configurations): `train`,
//! `sample`, `evaluate` and `report` on spin systems.

pub mod evaluate;
pub mod report;

use std::path::Path;

/// Whether a run directory holds a VAN run.
pub fn is_van_run(dir: &Path) -> bool {
    boltzflow_learn::run::ModelKind::of_run(dir)
        .is_ok_and(|k| k == boltzflow_learn::run::ModelKind::Van)
}
