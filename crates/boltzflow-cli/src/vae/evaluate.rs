//! `boltzflow evaluate RUN_DIR` for a VAE run: the metrics of every finished stage (losses,
//! JD_encode, JD_prior, total correlation, active dimensions, f_acc) into `metrics.json`, and a
//! table; `boltzflow sample RUN_DIR` draws x ~ ∫ p(x|z) P(z) dz from the last stage.

use std::path::Path;

use anyhow::Result;
pub use boltzflow_learn::run::{StageResult, VaeRunMetrics};
use boltzflow_learn::vae::cv_quality::CvKinetics;

use crate::bg::evaluate::EvaluateArgs;
use crate::bg::sample::SampleArgs;
use boltzflow_learn::run::VaeRun;

/// Evaluates every finished stage of a run directory and writes metrics.json.
pub fn evaluate_dir(dir: &Path) -> Result<VaeRunMetrics> {
    let run = VaeRun::open(dir)?;
    let m = run.evaluate()?;
    m.save(&run.dir)?;
    Ok(m)
}

/// Headers of the per-stage table (terminal and report).
pub const COLUMNS: [&str; 9] = [
    "stage",
    "β",
    "recon",
    "KL",
    "JD_encode",
    "JD_prior",
    "TC",
    "active",
    "f_acc",
];

/// One stage's cells of the table, formatted.
pub fn cells(s: &StageResult) -> [String; 9] {
    let x = &s.metrics;
    [
        s.label.clone(),
        s.beta.to_string(),
        format!("{:.4}", x.loss_recon),
        format!("{:.4}", x.loss_kl),
        format!("{:.3e}", x.jd_encode),
        format!("{:.3e}", x.jd_prior),
        format!("{:.4}", x.total_correlation),
        x.active_dims.to_string(),
        x.f_acc.map_or("-".into(), |f| format!("{f:.4}")),
    ]
}

/// Prints the metrics as a table.
pub fn print_table(m: &VaeRunMetrics) {
    println!(
        "{} decoder, latent dim {} on {} (seed {}):",
        m.decoder, m.latent_dim, m.system, m.seed
    );
    let widths = [16, 6, 10, 9, 10, 10, 8, 6, 7];
    let line = |c: &[String]| {
        let mut out = format!("{:<w$}", c[0], w = widths[0]);
        for (v, w) in c[1..].iter().zip(&widths[1..]) {
            out.push_str(&format!(" {v:>w$}"));
        }
        println!("{out}");
    };
    line(&COLUMNS.map(String::from));
    for s in &m.stages {
        line(&cells(s));
    }
    for l in cv_lines(m) {
        println!("{l}");
    }
}

/// The latent CV's kinetic scores and basin separation per stage, with the references, as
/// lines of text (empty for data without trajectories or basins).
pub fn cv_lines(m: &VaeRunMetrics) -> Vec<String> {
    let show = |k: &CvKinetics| format!("VAMP-2 {:.4}, t₁ {:.1} frames", k.vamp2, k.timescale);
    let mut out = Vec::new();
    if let Some(r) = &m.kinetics_reference {
        out.push(format!(
            "latent CV as kinetics (lag {} frames, {} trajectories); TICA's {}-D CV: {}{}",
            r.lag,
            r.chains,
            r.tica.dim,
            show(&r.tica),
            r.phi_psi
                .as_ref()
                .map_or(String::new(), |p| format!("; φ/ψ: {}", show(p)))
        ));
    }
    for s in &m.stages {
        let mut parts = Vec::new();
        if let Some(k) = &s.cv_kinetics {
            parts.push(show(k));
        }
        if let Some(e) = &s.cv_kinetics_error {
            parts.push(format!("no kinetic score ({e})"));
        }
        if let Some(b) = &s.basins {
            parts.push(format!(
                "basin balanced accuracy {:.3} over {} basins",
                b.balanced_accuracy, b.basins_counted
            ));
        }
        if !parts.is_empty() {
            out.push(format!("  {:<16} μ(x): {}", s.label, parts.join("; ")));
        }
    }
    out
}

/// Runs `boltzflow evaluate` on a VAE run directory.
pub fn run(a: &EvaluateArgs) -> Result<VaeRunMetrics> {
    let m = evaluate_dir(&a.run_dir)?;
    if !a.quiet {
        print_table(&m);
        println!("metrics: {}", a.run_dir.join("metrics.json").display());
    }
    Ok(m)
}

/// Runs `boltzflow sample` on a VAE run directory: z ~ P(z), x ~ p(x|z) with the last stage.
pub fn sample(a: &SampleArgs) -> Result<()> {
    if a.log_weights.is_some() {
        anyhow::bail!(boltzflow_core::Error::invalid(
            "--log-weights",
            "a VAE's marginal density ∫ p(x|z) P(z) dz is not tractable, so there are no importance weights; drop --log-weights (VAE Monte Carlo in `evaluate` samples exp(−u) exactly)"
        ));
    }
    let x = VaeRun::open(&a.run_dir)?.sample(a.n, a.seed)?;
    boltzflow_io::write_npy_2d(&a.out, x.view())?;
    println!("{} configurations: {}", a.n, a.out.display());
    Ok(())
}
