//! `boltzflow report RUN_DIR` for a VAN run: the relative error of F against β (VAN and naive
//! mean field), training curves, and sample snapshots for lattices; `report/index.html`.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use boltzflow_core::RandomStreams;

use super::evaluate::VanMetrics;
use crate::bg::report::ReportArgs;
use crate::plot::{CsvTable, Series, line_chart, spin_snapshots};
use boltzflow_learn::run::VanRun;

/// Runs `boltzflow report` on a VAN run directory (evaluating first if metrics.json is missing).
pub fn run(a: &ReportArgs) -> Result<PathBuf> {
    let run = VanRun::open(&a.run_dir)?;
    let metrics_path = run.dir.join("metrics.json");
    if !metrics_path.exists() {
        super::evaluate::run(&crate::bg::evaluate::EvaluateArgs {
            run_dir: a.run_dir.clone(),
            data: None,
            n_samples: None,
            quiet: true,
        })?;
    }
    let m: VanMetrics =
        serde_json::from_str(&std::fs::read_to_string(&metrics_path)?).context("metrics.json")?;
    let dir = run.dir.join("report");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut figures: Vec<(String, String)> = Vec::new();

    let pts = |f: &dyn Fn(&super::evaluate::BetaResult) -> Option<f64>| -> Vec<(f64, f64)> {
        m.results
            .iter()
            .filter_map(|r| f(r).map(|v| (r.beta, v)))
            .collect()
    };
    let van_err = pts(&|r| r.rel_error);
    if !van_err.is_empty() {
        let s = [
            Series::line("VAN, |F_q − F|/|F|", van_err),
            Series::line("naive mean field", pts(&|r| r.rel_error_mean_field)),
        ];
        line_chart(
            &dir.join("free_energy_error.png"),
            "Relative error of the free energy",
            "β",
            "relative error",
            &s,
            true,
            false,
        )?;
        figures.push(("free_energy_error.png".into(), format!("Relative error of F per spin against the reference ({}), for the VAN's F_q and the naive mean-field bound.", m.reference.as_deref().unwrap_or("none"))));
    } else {
        let s = vec![
            Series::line("VAN F_q/n", pts(&|r| Some(r.f_per_spin))),
            Series::line("naive mean field", pts(&|r| Some(r.f_mean_field_per_spin))),
        ];
        line_chart(
            &dir.join("free_energy.png"),
            "Free energy per spin",
            "β",
            "F/n",
            &s,
            false,
            false,
        )?;
        figures.push((
            "free_energy.png".into(),
            "F_q per spin and the mean-field bound (no exact reference for this system).".into(),
        ));
    }

    // Training curves from metrics.csv.
    if let Ok(table) = CsvTable::read(&run.dir.join("metrics.csv")) {
        let mut per_beta: Vec<(f64, Vec<(f64, f64)>)> = Vec::new();
        let number = |name: &str| -> Result<Vec<f64>> {
            Ok(table
                .column(name)?
                .iter()
                .map(|v| v.parse().unwrap_or(f64::NAN))
                .collect())
        };
        let (betas, steps) = (number("beta")?, number("step")?);
        let (rels, fqs) = (number("rel_error")?, number("f_per_spin")?);
        for (((&beta, &step), &rel), &fq) in betas.iter().zip(&steps).zip(&rels).zip(&fqs) {
            if per_beta.last().is_none_or(|(b, _)| *b != beta) {
                per_beta.push((beta, Vec::new()));
            }
            let y = if rel.is_finite() { rel } else { fq };
            if let Some(last) = per_beta.last_mut() {
                last.1.push((step, y));
            }
        }
        let has_exact = m.results.iter().any(|r| r.rel_error.is_some());
        let series: Vec<Series> = per_beta
            .into_iter()
            .map(|(b, p)| Series::line(format!("β = {b}"), p))
            .collect();
        if !series.is_empty() {
            line_chart(
                &dir.join("training.png"),
                "Training",
                "step",
                if has_exact {
                    "batch |F_q − F|/|F|"
                } else {
                    "batch F_q/n"
                },
                &series,
                has_exact,
                false,
            )?;
            figures.push(("training.png".into(), "The batch estimate of F_q during training, one line per β (relative error when an exact reference exists).".into()));
        }
    }

    if let Some(l) = run.system.lattice_side() {
        let mut groups = Vec::new();
        for (k, (beta, mut van)) in run.trained()?.into_iter().enumerate() {
            let mut rng = RandomStreams::new(run.cfg.seed).stream(&format!("report.beta{k}"));
            let (mut s, mut lq) = (Vec::new(), Vec::new());
            van.sample(4, &mut rng, &mut s, &mut lq);
            let n = run.system.n();
            groups.push((
                format!("β = {beta}"),
                s.chunks_exact(n).map(<[f32]>::to_vec).collect(),
            ));
        }
        spin_snapshots(
            &dir.join("samples.png"),
            "Samples of q (black: +1)",
            l,
            &groups,
        )?;
        figures.push((
            "samples.png".into(),
            "Independent samples of the trained networks, four per β.".into(),
        ));
    }

    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>boltzflow report: {0}</title>\
         <style>body{{font-family:sans-serif;max-width:960px;margin:2em auto}}td,th{{padding:2px 10px;text-align:right}}img{{max-width:100%}}</style></head><body>\
         <h1>Variational autoregressive network: {0}</h1><p>system <code>{1}</code> ({2} spins), network {3} ({4} parameters); reference: {5}</p>\
         <h2>Evaluation</h2><table><tr><th>β</th><th>F_q/n</th><th>± s.e.</th><th>F_exact/n</th><th>rel. error</th><th>F_MF/n</th><th>E/n</th><th>S/n</th><th>ESS</th></tr>",
        run.dir.display(),
        m.system,
        m.n_spins,
        m.network,
        m.parameters,
        m.reference.as_deref().unwrap_or("none")
    );
    for r in &m.results {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{:.6}</td><td>{:.1e}</td><td>{}</td><td>{}</td><td>{:.6}</td><td>{:.5}</td><td>{:.5}</td><td>{:.3}</td></tr>",
            r.beta,
            r.f_per_spin,
            r.f_per_spin_stderr,
            r.f_exact_per_spin.map_or("—".into(), |v| format!("{v:.6}")),
            r.rel_error.map_or("—".into(), |v| format!("{v:.2e}")),
            r.f_mean_field_per_spin,
            r.energy_per_spin,
            r.entropy_per_spin,
            r.ess_fraction
        );
    }
    html.push_str("</table>");
    crate::run_common::write_index(&dir, html, &figures)
}
