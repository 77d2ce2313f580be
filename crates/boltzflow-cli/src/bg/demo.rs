//! `boltzflow demo`: the main job on an embedded default — a Boltzmann generator for the
//! double well, trained by example (ML on short Metropolis data) and then by example and energy
//! (ML + KL), reweighted to the exact ΔF, with its report.

use std::path::PathBuf;

use anyhow::Result;

use super::{evaluate, report};

/// The embedded configuration (also `examples/double_well_bg.toml`).
pub const DEMO_CONFIG: &str = include_str!("../../../../examples/double_well_bg.toml");

/// Arguments of `boltzflow demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Output run directory.
    #[arg(long, default_value = "boltzflow-demo")]
    pub out: PathBuf,
    /// Run seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs the demo.
pub fn run(d: &DemoArgs) -> Result<()> {
    println!(
        "boltzflow demo: a Boltzmann generator (RealNVP) for the double well u = x₁⁴ − 6x₁² + x₁ + ½x₂²,"
    );
    println!(
        "trained by example on Metropolis data, then by example and energy; reweighted ΔF vs. exact.\n"
    );
    if d.out.join("checkpoint.safetensors").exists() {
        // A previous demo's output is replaced; any other run is left alone.
        if !d.out.join("demo.toml").exists() {
            anyhow::bail!(boltzflow_core::Error::invalid(
                "--out",
                format!(
                    "`{}` holds a run that is not the demo's; choose another --out",
                    d.out.display()
                )
            ));
        }
        std::fs::remove_dir_all(&d.out)?;
    }
    std::fs::create_dir_all(&d.out)?;
    let cfg_path = d.out.join("demo.toml");
    boltzflow_io::write_atomic(&cfg_path, |w| w.write_all(DEMO_CONFIG.as_bytes()))?;
    let args = crate::train::TrainArgs {
        config: cfg_path,
        out: Some(d.out.clone()),
        seed: Some(d.seed),
        resume: false,
        force: false,
        stop_after: None,
        system: None,
        quiet: false,
    };
    crate::train::run(&args)?;
    let m = evaluate::run(&evaluate::EvaluateArgs {
        run_dir: d.out.clone(),
        data: None,
        n_samples: None,
        quiet: true,
    })?;
    let get = |k: &str| {
        m.get(k)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(f64::NAN)
    };
    println!("\nΔF = F(x₁ > 0) − F(x₁ < 0) in kT:");
    println!(
        "  exact (quadrature)          {:>8.3}",
        get("delta_f_exact")
    );
    println!(
        "  generator, reweighted       {:>8.3} ± {:.3}",
        get("delta_f"),
        get("delta_f_std_error")
    );
    println!(
        "  generator, raw              {:>8.3}",
        get("delta_f_unweighted")
    );
    println!(
        "  flow-proposed Metropolis    {:>8.3}  (acceptance {:.2})",
        get("delta_f_flow_mc"),
        get("flow_mc_acceptance")
    );
    println!(
        "  latent-space Metropolis     {:>8.3}  (acceptance {:.2})",
        get("delta_f_latent_mc"),
        get("latent_mc_acceptance")
    );
    println!("  ESS fraction                {:>8.3}", get("ess_fraction"));
    let index = report::run(&report::ReportArgs {
        run_dir: d.out.clone(),
    })?;
    println!("\nreport: {}", index.display());
    Ok(())
}
