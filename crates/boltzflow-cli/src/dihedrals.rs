//! `boltzflow dihedrals`: backbone φ/ψ of peptide configurations, their sin/cos, a Ramachandran
//! plot and the populations of the conformational basins.

use std::path::PathBuf;

use anyhow::{Result, bail};
use boltzflow_coords::features::{
    RamachandranBasin, backbone_torsions, basin_populations, dihedrals, sin_cos,
};
use boltzflow_core::Error;
use clap::Args;
use serde_json::json;

/// Arguments of `boltzflow dihedrals`.
#[derive(Args)]
pub struct DihedralsArgs {
    /// Topology: the backbone atoms (C, N, CA per residue) are found by name.
    #[arg(long)]
    pdb: PathBuf,
    /// Configurations [n, 3·atoms] in nm: .npy (for example from `simulate`), .xtc, .trr or .dcd.
    #[arg(long)]
    coords: PathBuf,
    /// Output angles, .npy float64 [n, torsions] in rad on (−π, π], φ before ψ per residue.
    #[arg(long)]
    out: PathBuf,
    /// Also write [sin, cos] of every angle, .npy float64 [n, 2·torsions].
    #[arg(long)]
    sincos: Option<PathBuf>,
    /// Ramachandran plot (−ln p of φ, ψ of the first residue with both) as PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// JSON summary: torsion names and atoms, basin populations.
    #[arg(long)]
    summary: Option<PathBuf>,
}

pub fn run(a: DihedralsArgs) -> Result<()> {
    let pdb = boltzflow_io::pdb::read_pdb(&a.pdb)?;
    let torsions = backbone_torsions(&pdb.topology);
    if torsions.is_empty() {
        bail!(Error::BadFile {
            path: a.pdb.clone(),
            reason: "no backbone torsion: φ needs C of the previous residue and N, CA, C; ψ needs N, CA, C and N of the next residue".into()
        });
    }
    let x = boltzflow_io::trajectory::read_coordinates(&a.coords)?;
    let dim = 3 * pdb.topology.n_atoms();
    if x.ncols() != dim {
        bail!(Error::Shape {
            what: format!("configurations in `{}`", a.coords.display()),
            expected: format!(
                "[n, {dim}] for the {} atoms of `{}`",
                dim / 3,
                a.pdb.display()
            ),
            got: format!("[{}, {}]", x.nrows(), x.ncols()),
        });
    }
    boltzflow_core::check_finite_rows(
        &format!("configurations in `{}`", a.coords.display()),
        x.view(),
    )?;
    let quads: Vec<[usize; 4]> = torsions.iter().map(|t| t.atoms).collect();
    let angles = dihedrals(x.view(), &quads)?;
    boltzflow_io::write_npy_2d(&a.out, angles.view())?;
    if let Some(p) = &a.sincos {
        boltzflow_io::write_npy_2d(p, sin_cos(angles.view()).view())?;
    }
    let names: Vec<&str> = torsions.iter().map(|t| t.name.as_str()).collect();
    println!(
        "{} configurations, torsions: {}",
        x.nrows(),
        names.join(", ")
    );
    // Residues with both φ and ψ: basin populations.
    let mut residues = Vec::new();
    for (k, t) in torsions.iter().enumerate() {
        let Some(res) = t.name.strip_prefix("phi ") else {
            continue;
        };
        if let Some(kp) = torsions.iter().position(|u| u.name == format!("psi {res}")) {
            let pops: Vec<(String, f64)> = RamachandranBasin::ALL
                .iter()
                .zip(basin_populations(angles.view(), k, kp, None))
                .map(|(b, p)| (b.name().to_string(), p))
                .collect();
            println!(
                "residue {res}: {}",
                pops.iter()
                    .map(|(b, p)| format!("{b} {p:.3}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            residues.push((res.to_string(), k, kp, pops));
        }
    }
    if let Some(p) = &a.plot {
        let Some((res, k, kp, _)) = residues.first() else {
            bail!(Error::invalid(
                "--plot",
                "needs a residue with both φ and ψ"
            ));
        };
        let deg = |c: usize| {
            angles
                .column(c)
                .iter()
                .map(|v| v.to_degrees())
                .collect::<Vec<_>>()
        };
        crate::plot::density_chart(
            p,
            &format!(
                "Ramachandran plot, residue {res}: −ln p ({} frames)",
                x.nrows()
            ),
            "φ (degrees)",
            "ψ (degrees)",
            &deg(*k),
            &deg(*kp),
            72,
            Some(([-180.0, 180.0], [-180.0, 180.0])),
            None,
        )?;
    }
    if let Some(p) = &a.summary {
        let torsion_json: Vec<_> = torsions
            .iter()
            .map(|t| json!({"name": t.name, "atoms": t.atoms}))
            .collect();
        let basin_json: serde_json::Map<String, serde_json::Value> = residues
            .iter()
            .map(|(res, _, _, pops)| {
                (
                    res.clone(),
                    pops.iter()
                        .map(|(b, p)| (b.clone(), json!(p)))
                        .collect::<serde_json::Map<_, _>>()
                        .into(),
                )
            })
            .collect();
        boltzflow_io::write_json(
            p,
            &json!({"frames": x.nrows(), "torsions": torsion_json, "basin_populations": basin_json,
                    "basin_definition_degrees": RamachandranBasin::DEFINITION}),
        )?;
    }
    Ok(())
}
