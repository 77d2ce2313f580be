//! `boltzflow report RUN_DIR`: figures and an HTML page from a run's metrics, evaluation and
//! samples (`report/index.html` + PNGs).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use boltzflow_core::{Energy, Error};
use boltzflow_learn::trainer::Reduced;
use ndarray::Array2;

use super::evaluate::EvaluateArgs;
use crate::plot::{
    CsvTable, Series, density_chart, histogram_points, line_chart, samples_on_energy,
};
use boltzflow_coords::features::{dihedrals, first_phi_psi};
use boltzflow_learn::run::BgRun as Run;
use boltzflow_learn::run::ProfileFile;

/// Arguments of `boltzflow report`.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// A run directory made by `boltzflow train`.
    pub run_dir: PathBuf,
}

fn quantile_range(v: &[f64], pad: f64) -> [f64; 2] {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return [-1.0, 1.0];
    }
    s.sort_by(f64::total_cmp);
    let lo = s[s.len() / 200];
    let hi = s[s.len() - 1 - s.len() / 200];
    let w = (hi - lo).max(1e-6);
    [lo - pad * w, hi + pad * w]
}

/// Runs `boltzflow report`; returns the path of index.html.
pub fn run(a: &ReportArgs) -> Result<PathBuf> {
    let run = Run::open(&a.run_dir)?;
    let dir = run.dir.join("report");
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        action: "cannot create",
        path: dir.clone(),
        source,
    })?;
    if !run.dir.join("metrics.json").exists() || !run.dir.join("samples.npy").exists() {
        super::evaluate::run(&EvaluateArgs {
            run_dir: run.dir.clone(),
            data: None,
            n_samples: None,
            quiet: true,
        })?;
    }
    let mut figures: Vec<(String, String)> = Vec::new();

    // Loss curves and ESS per epoch.
    let table = CsvTable::read(&run.dir.join("metrics.csv"))?;
    let series = vec![
        Series::line("J_ML (train)", table.points("epoch", "nll")?),
        Series::line("J_KL", table.points("epoch", "kl")?),
        Series::line("NLL (validation)", table.points("epoch", "val_nll")?),
    ];
    line_chart(
        &dir.join("loss.png"),
        "Training losses",
        "epoch",
        "loss (kT)",
        &series,
        false,
        false,
    )?;
    figures.push(("loss.png".into(), "Losses per epoch: J_ML on training batches, J_KL on generated batches, NLL of held-out data.".into()));
    line_chart(
        &dir.join("ess.png"),
        "Effective sample size",
        "epoch",
        "ESS / N",
        &[Series::line(
            "ESS fraction",
            table.points("epoch", "ess_fraction")?,
        )],
        false,
        false,
    )?;
    figures.push((
        "ess.png".into(),
        "Kish effective sample size fraction of generated samples after each epoch.".into(),
    ));

    // AIS level by level, where evaluate ran it.
    let levels_file = run.dir.join(boltzflow_learn::run::AIS_LEVELS_FILE);
    if levels_file.exists() {
        let levels = CsvTable::read(&levels_file)?;
        line_chart(
            &dir.join("ais_levels.png"),
            "Annealed importance sampling",
            "β (0: generator, 1: target)",
            "ESS / N, acceptance",
            &[
                Series::line("ESS fraction", levels.points("beta", "ess_fraction")?),
                Series::line("acceptance", levels.points("beta", "acceptance")?),
            ],
            true,
            false,
        )?;
        figures.push((
            "ais_levels.png".into(),
            "AIS level by level: the Kish ESS fraction of the weights so far (towards the flattened target with ais_flatten; with ais_resample, of the weights since each population's last resampling) and the acceptance of the level's moves (ais_levels.csv has the log-weights' 10–90 % range, the step and the populations resampled too).".into(),
        ));
    }

    // Samples, weights, energies.
    let x = boltzflow_io::read_npy_2d(&run.dir.join("samples.npy"))?;
    let log_w = boltzflow_io::read_npy_1d(&run.dir.join("log_weights.npy"))?.to_vec();
    let energy = Reduced {
        inner: run.system.as_ref(),
        beta: run.beta,
    };
    let u_gen = energy.energy(x.view())?.to_vec();
    let m = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lw: Vec<f64> = log_w.iter().map(|l| l - m).collect();
    // Held-out data's log-weights (BAR's reverse work), when evaluate had held-out data.
    let held_out = run.dir.join("held_out_log_weights.npy");
    let lw_data: Option<Vec<f64>> = if held_out.exists() {
        Some(
            boltzflow_io::read_npy_1d(&held_out)?
                .iter()
                .map(|l| l - m)
                .collect(),
        )
    } else {
        None
    };
    // Weights more than e⁻⁵⁰ below the largest do not count: the axis stops there.
    let mut r = quantile_range(
        &lw.iter()
            .chain(lw_data.iter().flatten())
            .copied()
            .collect::<Vec<_>>(),
        0.05,
    );
    r[0] = r[0].max(-50.0);
    let mut ws = vec![Series::line(
        "generated",
        histogram_points(&lw, None, r[0], r[1].max(0.0), 60),
    )];
    if let Some(d) = &lw_data {
        ws.push(Series::reference(
            "held-out data",
            histogram_points(d, None, r[0], r[1].max(0.0), 60),
        ));
    }
    line_chart(
        &dir.join("log_weights.png"),
        "Log-weights",
        "log w − max log w (generated)",
        "density",
        &ws,
        false,
        false,
    )?;
    figures.push(("log_weights.png".into(), "Histogram of the importance log-weights log w = −u(x) − log q(x), shifted by the largest generated one; a narrow histogram means a high ESS. Where held-out data were evaluated, their log-weights are drawn too: BAR's free energies are reliable where the two histograms overlap.".into()));

    let data = run.dir.join("data.npy");
    let x_data: Option<Array2<f64>> = if data.exists() {
        Some(boltzflow_io::read_npy_2d(&data)?)
    } else {
        None
    };
    let u_data = match &x_data {
        Some(xd) => Some(energy.energy(xd.view())?.to_vec()),
        None => None,
    };
    let mut all_u = u_gen.clone();
    if let Some(u) = &u_data {
        all_u.extend_from_slice(u);
    }
    let er = quantile_range(&all_u, 0.05);
    let mut es = vec![
        Series::line(
            "generated",
            histogram_points(&u_gen, None, er[0], er[1], 60),
        ),
        Series::line(
            "generated, reweighted",
            histogram_points(&u_gen, Some(&log_w), er[0], er[1], 60),
        ),
    ];
    if let Some(u) = &u_data {
        es.push(Series::reference(
            "data (MCMC)",
            histogram_points(u, None, er[0], er[1], 60),
        ));
    }
    line_chart(
        &dir.join("energies.png"),
        "Energies",
        "reduced energy u (kT)",
        "density",
        &es,
        false,
        false,
    )?;
    figures.push((
        "energies.png".into(),
        "Energy histograms of the training data and of generated samples, raw and reweighted."
            .into(),
    ));

    // Peptides: Ramachandran plots of the MD, the raw generator and the reweighted generator.
    if let Some((res, quads)) = run
        .system
        .as_openmm()
        .and_then(|o| o.topology())
        .and_then(first_phi_psi)
    {
        let degrees = |x: ndarray::ArrayView2<f64>| -> Result<(Vec<f64>, Vec<f64>)> {
            let a = dihedrals(x, &quads)?;
            Ok((
                a.column(0).iter().map(|v| v.to_degrees()).collect(),
                a.column(1).iter().map(|v| v.to_degrees()).collect(),
            ))
        };
        let square = Some(([-180.0, 180.0], [-180.0, 180.0]));
        let w: Vec<f64> = lw.iter().map(|l| l.exp()).collect();
        let generated = degrees(x.view())?;
        let md = x_data.as_ref().map(|xd| degrees(xd.view())).transpose()?;
        let mut panels = Vec::new();
        if let Some(md) = &md {
            panels.push(("rama_md.png", "training data (MD)", md, None));
        }
        panels.push(("rama_generated.png", "generator, raw", &generated, None));
        panels.push((
            "rama_reweighted.png",
            "generator, reweighted",
            &generated,
            Some(w.as_slice()),
        ));
        for (file, what, (p, q), weights) in panels {
            density_chart(
                &dir.join(file),
                &format!("Ramachandran plot, residue {res}: {what}, −ln p"),
                "φ (degrees)",
                "ψ (degrees)",
                p,
                q,
                72,
                square,
                weights,
            )?;
            figures.push((
                file.into(),
                format!("φ/ψ of residue {res}: {what} (dark = most probable)."),
            ));
        }
    }

    if run.system.dim() == 2 {
        let xs: Vec<f64> = x.column(0).to_vec();
        let ys: Vec<f64> = x.column(1).to_vec();
        let range = match &x_data {
            Some(xd) => (
                quantile_range(&xd.column(0).to_vec(), 0.3),
                quantile_range(&xd.column(1).to_vec(), 0.3),
            ),
            None => (quantile_range(&xs, 0.1), quantile_range(&ys, 0.1)),
        };
        let e = |a: f64, b: f64| {
            energy
                .energy(ndarray::array![[a, b]].view())
                .map_or(f64::INFINITY, |v| v[0])
        };
        let pts: Vec<(f64, f64)> = xs
            .iter()
            .zip(&ys)
            .take(5000)
            .map(|(&a, &b)| (a, b))
            .collect();
        samples_on_energy(
            &dir.join("samples.png"),
            "Generated samples over the energy",
            &e,
            range,
            12.0,
            &pts,
        )?;
        figures.push(("samples.png".into(), "5000 generated samples (dots) over the energy landscape (grey: darker is lower, 12 kT range).".into()));
    }

    let prof_path = run.dir.join("profile.json");
    if prof_path.exists() {
        let p = ProfileFile::read(&prof_path)?;
        // Bins an estimate puts far above the reference's highest (one or two samples in a
        // bin the estimator barely reaches: 10³ kT and more) would flatten every other curve:
        // they are left out of the figure (profile.json keeps them).
        let ceiling = p
            .reference
            .as_ref()
            .map(|r| {
                r.iter()
                    .copied()
                    .filter(|v| v.is_finite())
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .filter(|m| m.is_finite())
            .map_or(f64::INFINITY, |m| m + 10.0);
        let pts = |f: &[f64]| {
            p.centres
                .iter()
                .zip(f)
                .map(|(&c, &v)| (c, if v > ceiling { f64::NAN } else { v }))
                .collect::<Vec<_>>()
        };
        let mut s = vec![
            Series {
                errors: p.std_error.clone(),
                ..Series::line("generator, reweighted", pts(&p.free_energy))
            },
            Series::line("generator, raw", pts(&p.unweighted)),
        ];
        if let Some(f) = &p.bar_free_energy {
            s.push(Series {
                errors: p.bar_std_error.clone().unwrap_or_default(),
                ..Series::line("generator + held-out data, BAR", pts(f))
            });
        }
        if let Some(f) = &p.ais_free_energy {
            s.push(Series {
                errors: p.ais_std_error.clone().unwrap_or_default(),
                ..Series::line("annealed importance sampling", pts(f))
            });
        }
        if let Some(r) = &p.reference {
            s.push(Series::reference(
                p.reference_kind
                    .clone()
                    .unwrap_or_else(|| "reference".into()),
                pts(r),
            ));
        }
        line_chart(
            &dir.join("profile.png"),
            "Free-energy profile",
            &p.coordinate,
            "F (kT)",
            &s,
            false,
            false,
        )?;
        figures.push(("profile.png".into(), format!("Free energy along {} from reweighted generator samples (bootstrap error bars), the raw generator, BAR between the generator and held-out data per bin and annealed importance sampling from the generator where available, and the reference (estimates more than 10 kT above the reference's highest bin are not drawn).", p.coordinate)));
    }

    let metrics: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(run.dir.join("metrics.json"))?)
            .context("metrics.json")?;
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>boltzflow report: {0}</title>\
         <style>body{{font-family:sans-serif;max-width:900px;margin:2em auto}}td{{padding:2px 12px}}img{{max-width:100%}}</style></head><body>\
         <h1>Boltzmann generator: {0}</h1><p>system <code>{1}</code>, {2:?} flow with {3} couplings, hidden {4:?}</p><h2>Evaluation</h2><table>",
        run.dir.display(),
        run.cfg.system.spec,
        run.cfg.flow.kind,
        run.cfg.flow.couplings,
        run.cfg.flow.hidden
    );
    for (k, v) in &metrics {
        let _ = write!(html, "<tr><td>{k}</td><td>{v}</td></tr>");
    }
    html.push_str("</table>");
    crate::run_common::write_index(&dir, html, &figures)
}
