//! `boltzflow report RUN_DIR` for a VAE run: training curves, and per stage the latent
//! distribution, the data coloured by latent value and the reconstructions (Monroe & Shen 2022,
//! Fig. 2b–d); `report/index.html`.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use boltzflow_core::RandomStreams;
use boltzflow_learn::vae::evaluate::subset;

use super::evaluate::VaeRunMetrics;
use super::figures::{RunPlane, latent_by_torsion, model_panels};
use crate::bg::report::ReportArgs;
use crate::plot::{CsvTable, Panel, Series, chart_grid};
use boltzflow_learn::run::VaeRun;

/// Runs `boltzflow report` on a VAE run directory (evaluating first if metrics.json is missing).
pub fn run(a: &ReportArgs) -> Result<PathBuf> {
    let run = VaeRun::open(&a.run_dir)?;
    let metrics_path = run.dir.join("metrics.json");
    if !metrics_path.exists() {
        super::evaluate::evaluate_dir(&a.run_dir)?;
    }
    let m: VaeRunMetrics =
        serde_json::from_str(&std::fs::read_to_string(&metrics_path)?).context("metrics.json")?;
    let dir = run.dir.join("report");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut figures: Vec<(String, String)> = Vec::new();

    // Training curves from metrics.csv: loss per epoch, one line per stage.
    if let Ok(table) = CsvTable::read(&run.dir.join("metrics.csv")) {
        let mut per_stage: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        let mut epoch = 0.0;
        for (label, loss) in table.column("label")?.iter().zip(table.column("loss")?) {
            let loss: f64 = loss.parse().unwrap_or(f64::NAN);
            epoch += 1.0;
            match per_stage.last_mut() {
                Some((l, pts)) if l == label => pts.push((epoch, loss)),
                _ => per_stage.push((label.to_string(), vec![(epoch, loss)])),
            }
        }
        let series: Vec<Series> = per_stage
            .into_iter()
            .map(|(label, pts)| Series::line(label, pts))
            .collect();
        if !series.is_empty() {
            crate::plot::line_chart(
                &dir.join("training.png"),
                "Training loss per epoch (recon + β_t KL)",
                "epoch (all stages)",
                "loss (nats)",
                &series,
                false,
                false,
            )?;
            figures.push((
                "training.png".into(),
                "Loss per epoch through the stages of the β protocol.".into(),
            ));
        }
    }

    let data = run.data()?;
    let (vae, trained) = run.trained()?;
    let d = vae.dim();
    let points = subset(&data, d, 3000, &RandomStreams::new(run.cfg.seed));
    let plane = RunPlane::new(&run)?;
    let draw = |x: &[f64]| plane.points(x, d);
    let box_ = plane.scatter_box(&points, d);
    let points64: Vec<f64> = points.iter().map(|&v| f64::from(v)).collect();
    let torsions = plane.points(&points64, d);
    let (mut latent, mut by_latent, mut recon) = (Vec::new(), Vec::new(), Vec::new());
    let mut by_torsion = Vec::new();
    for (s, (stage, params)) in trained.iter().enumerate() {
        let (a, b, c) = model_panels(
            &vae,
            params,
            &points,
            &stage.label(),
            (&draw, box_),
            run.cfg.seed.wrapping_add(s as u64),
        );
        latent.push(a);
        by_latent.push(b);
        recon.push(c);
        if plane.is_peptide() {
            let (p, q) = latent_by_torsion(&vae, params, &points, &torsions, &stage.label());
            by_torsion.extend([p, q]);
        }
    }
    let (px, py) = plane.labels();
    let cols = trained.len().min(5);
    let name = m.decoder.as_str();
    for (file, title, panels, x, y, text) in [
        (
            "latent.png",
            format!("Latent distributions, {name} decoder"),
            latent,
            "z₁",
            "density",
            "Aggregate posterior q(z) = mean q(z|x) over the data and the flow prior P(z), per stage (Fig. 2b).",
        ),
        (
            "data_by_latent.png",
            format!("Data coloured by μ₁(x), {name} decoder"),
            by_latent,
            px,
            py,
            "The data coloured by the encoder mean of the first latent dimension (Fig. 2c); for a peptide, its Ramachandran plot.",
        ),
        (
            "reconstructions.png",
            format!("Reconstructions coloured by z₁, {name} decoder"),
            recon,
            px,
            py,
            "x̃ ~ p(x|z) with z ~ q(z|x) of the data, coloured by z₁ (Fig. 2d).",
        ),
    ] {
        let panels: Vec<Panel> = panels;
        chart_grid(&dir.join(file), &title, cols, &panels, x, y)?;
        figures.push((file.into(), text.into()));
    }
    if !by_torsion.is_empty() {
        let file = "latent_by_torsion.png";
        let k = vae.latent_dim();
        chart_grid(
            &dir.join(file),
            &format!("Encoder means coloured by φ and ψ, {name} decoder"),
            2,
            &by_torsion,
            "μ₁",
            if k > 1 { "μ₂" } else { "φ (°)" },
        )?;
        figures.push((
            file.into(),
            format!(
                "The latent space of each stage (rows) coloured by φ (left) and ψ (right), from −180° (dark) to 180° (light){}: whether the latent separates C7eq, C5 and αL.",
                if k > 1 { "" } else { "; one latent dimension, drawn against φ" }
            ),
        ));
    }

    let mut html = String::new();
    let _ = writeln!(
        html,
        "<h1>VAE run: {} decoder, latent dim {} on {}</h1>\n<table border=1 cellpadding=4><tr><th>{}</th></tr>",
        m.decoder,
        m.latent_dim,
        m.system,
        super::evaluate::COLUMNS.join("</th><th>")
    );
    for s in &m.stages {
        let _ = writeln!(
            html,
            "<tr><td>{}</td></tr>",
            super::evaluate::cells(s).join("</td><td>")
        );
    }
    html.push_str("</table>\n");
    for l in super::evaluate::cv_lines(&m) {
        let _ = writeln!(html, "<p>{l}</p>");
    }
    crate::run_common::write_index(&dir, html, &figures)
}
