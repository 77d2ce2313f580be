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
    /// Configurations [n, dim]: .npy float64 (or float32), or a .xtc, .trr or .dcd trajectory
    /// (molecules, nm).
    #[arg(long)]
    coords: PathBuf,
    /// Output energies, .npy float64 [n].
    #[arg(long)]
    out: PathBuf,
    /// Also write forces (−∇E), .npy float64 [n, dim].
    #[arg(long)]
    forces: Option<PathBuf>,
    /// Topology for `openmm:` systems (checked against the System's atom count).
    #[arg(long)]
    pdb: Option<PathBuf>,
    /// Also write energies per force group, .npy float64 [n, groups] (`openmm:` systems; the
    /// groups, ascending, are printed).
    #[arg(long)]
    group_energies: Option<PathBuf>,
}

pub fn run(a: EnergyArgs) -> Result<()> {
    let system = boltzflow_systems::build_with_pdb(&a.system, a.pdb.as_deref())?;
    let x = boltzflow_io::trajectory::read_coordinates(&a.coords)?;
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
    if let Some(gpath) = &a.group_energies {
        let Some(omm) = system.as_openmm() else {
            bail!(boltzflow_core::Error::invalid(
                "--group-energies",
                format!(
                    "force groups exist only in `openmm:` systems, not `{}`",
                    system.spec()
                )
            ));
        };
        let g = omm.force_field.group_energies(x.view())?;
        boltzflow_io::write_npy_2d(gpath, g.view())?;
        let names: Vec<String> = omm
            .force_field
            .groups()
            .iter()
            .zip(omm.force_field.group_names())
            .map(|(g, n)| format!("{g} ({})", n.join(", ")))
            .collect();
        eprintln!("group energies (columns): {}", names.join("; "));
    }
    eprintln!(
        "wrote {} energies of {} to {}",
        x.nrows(),
        system.spec(),
        a.out.display()
    );
    Ok(())
}
