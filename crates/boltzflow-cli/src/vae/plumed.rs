//! `boltzflow export-plumed RUN_DIR --out plumed.dat`: a VAE's encoder mean as a PLUMED input
//! ([`boltzflow_learn::run::plumed_input`]), for biasing the learned CV in other MD engines.

use std::path::PathBuf;

use anyhow::Result;
use boltzflow_learn::run::{VaeRun, plumed_input};
use clap::Args;

/// Arguments of `boltzflow export-plumed`.
#[derive(Args)]
pub struct ExportPlumedArgs {
    /// A VAE run directory of a molecule in internal coordinates
    pub run_dir: PathBuf,
    /// The PLUMED input to write
    #[arg(long)]
    pub out: PathBuf,
    /// Stage whose encoder to export (default: the last finished)
    #[arg(long)]
    pub stage: Option<usize>,
    /// PLUMED label of the CV: the means are LABEL_0 … LABEL_{k−1}
    #[arg(long, default_value = "vae")]
    pub label: String,
}

/// Runs `boltzflow export-plumed`.
pub fn run(a: &ExportPlumedArgs) -> Result<()> {
    if !super::is_vae_run(&a.run_dir) {
        anyhow::bail!(boltzflow_core::Error::invalid(
            "RUN_DIR",
            format!(
                "`{}` is not a VAE run directory (export-plumed exports a VAE's encoder)",
                a.run_dir.display()
            ),
        ));
    }
    let run = VaeRun::open(&a.run_dir)?;
    let text = plumed_input(&run, a.stage, &a.label)?;
    boltzflow_io::write_atomic(&a.out, |w| w.write_all(text.as_bytes()))?;
    println!(
        "PLUMED input: {} ({} actions)",
        a.out.display(),
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count()
    );
    Ok(())
}
