//! `boltzflow energy`: energies and forces of configurations read from a .npy file.

use std::path::PathBuf;

use anyhow::{Result, bail};
use boltzflow_core::check_finite_rows;
use clap::Args;

/// Arguments of `boltzflow energy`.
#[derive(Args)]
pub struct EnergyArgs {
    /// System specification, NAME[:key=value,...] (see `boltzflow systems`).
    #[arg(long)]
    system: String,
    /// Configurations, .npy float64 (or float32) [n, dim].
    #[arg(long)]
    coords: PathBuf,
    /// Output energies, .npy float64 [n].
    #[arg(long)]
    out: PathBuf,
    /// Also write forces (−∇E), .npy float64 [n, dim].
    #[arg(long)]
    forces: Option<PathBuf>,
    /// Topology and positions for `openmm:` systems.
    #[arg(long)]
    pdb: Option<PathBuf>,
}

pub fn run(a: EnergyArgs) -> Result<()> {
    if a.pdb.is_some() {
        bail!(boltzflow_core::Error::invalid(
            "--pdb",
            format!(
                "is only used with `openmm:FILE.xml` systems, and `{}` is not one (OpenMM systems are not available in this version)",
                a.system
            )
        ));
    }
    let system = boltzflow_systems::build(&a.system)?;
    let x = boltzflow_io::read_npy_2d(&a.coords)?;
    if x.ncols() != system.dim() {
        bail!(boltzflow_core::Error::Shape {
            what: format!("coordinates in `{}`", a.coords.display()),
            expected: format!(
                "[n, {}] for {} (x, y, … interleaved per particle)",
                system.dim(),
                system.spec()
            ),
            got: format!("[{}, {}]", x.nrows(), x.ncols()),
        });
    }
    check_finite_rows(
        &format!("coordinates in `{}`", a.coords.display()),
        x.view(),
    )?;
    if let Some(fpath) = &a.forces {
        let (e, f) = system.energy_and_forces(x.view())?;
        boltzflow_io::write_npy_1d(&a.out, e.view())?;
        boltzflow_io::write_npy_2d(fpath, f.view())?;
    } else {
        let e = system.energy(x.view())?;
        boltzflow_io::write_npy_1d(&a.out, e.view())?;
    }
    eprintln!(
        "wrote {} energies of {} to {}",
        x.nrows(),
        system.spec(),
        a.out.display()
    );
    Ok(())
}
