//! `boltzflow sweep SWEEP.toml --out DIR`: decoders × latent dimensions × replicates, each a
//! full run of the β protocol in `DIR/runs/{decoder}-k{k}-r{r}` (a run directory that `report`
//! and `evaluate` understand), in parallel, on one shared data set (`DIR/data.npy`). Writes
//! `DIR/metrics.csv` (one row per trained model) and the paper's figures (Monroe & Shen 2022,
//! Fig. 2b–d per latent dimension, replicate 0; Fig. 3, metrics against β with replicate error
//! bars) with `DIR/index.html`. `--resume` skips finished runs and resumes the others.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use boltzflow_core::RandomStreams;
use boltzflow_learn::vae::config::VaeConfig;
use boltzflow_learn::vae::evaluate::subset;
use clap::Args;

use super::evaluate::VaeRunMetrics;
use super::figures::{RunPlane, model_panels};
use crate::plot::{Panel, Series, chart_grid};
use boltzflow_learn::run::{StartMode, SweepUnit, VaeRun, VaeSweep};

/// `boltzflow sweep`.
#[derive(Args, Debug)]
pub struct SweepArgs {
    /// A VAE configuration (`model = "vae"`) with a `[sweep]` table.
    pub config: PathBuf,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue a sweep in --out: finished runs are kept, interrupted ones resumed (a sweep
    /// that never started is started).
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Delete a sweep already in --out and start over.
    #[arg(long)]
    pub force: bool,
    /// Only the per-run summary lines.
    #[arg(long)]
    pub quiet: bool,
}

/// The columns of metrics.csv; the first eleven are the contract, `stage` and `label` tell
/// forward, reverse and autoencoder stages apart, and for data from trajectories the last five
/// score the encoder mean as a CV (VAMP-2 and slowest implied timescale, in frames, against
/// TICA's CV of the same dimension; the balanced accuracy of the Ramachandran basins for a
/// peptide), NaN where they do not apply.
pub const HEADER: &str = "decoder,beta,replicate,latent_dim,loss_recon,loss_kl,jd_encode,jd_prior,total_correlation,active_dims,f_acc,stage,label,cv_vamp2,cv_timescale,tica_vamp2,tica_timescale,basin_accuracy";

/// Runs `boltzflow sweep`.
pub fn run(a: &SweepArgs) -> Result<()> {
    let mut cfg = VaeConfig::from_file(&a.config)?;
    cfg.resolve_paths()?;
    let sweep = VaeSweep::new(a.out.clone(), cfg)
        .with_context(|| format!("in `{}`", a.config.display()))?;
    let cfg = &sweep.cfg;
    let out = &a.out;
    let data = sweep.start(StartMode::from_flags(a.resume, a.force))?;
    let units = sweep.units();
    let s = cfg.sweep.as_ref().expect("VaeSweep::new checked [sweep]");
    println!(
        "sweep: {} decoders × {} latent dims × {} replicates = {} runs of {} stages × {} epochs on {} ({} points), into {}",
        s.decoders.len(),
        s.latent_dims.len(),
        s.replicates,
        units.len(),
        VaeRun::new(out.clone(), cfg.clone())?.stages().len(),
        cfg.train.epochs,
        cfg.system.spec,
        data.nrows(),
        out.display()
    );
    let t0 = Instant::now();
    let quiet = a.quiet;
    let outcome = sweep.run(&data, a.resume, &|u, res| match res {
        Ok(_) if quiet => {}
        Ok(m) => println!(
            "  {:<14} k={} r={}: done ({} stages, f_acc at the last β {}) at {:.0} s",
            u.decoder,
            u.latent,
            u.replicate,
            m.stages.len(),
            m.stages
                .last()
                .and_then(|s| s.metrics.f_acc)
                .map_or("-".into(), |f| format!("{f:.3}")),
            t0.elapsed().as_secs_f64()
        ),
        Err(e) => eprintln!(
            "  {} k={} r={}: failed: {e}",
            u.decoder, u.latent, u.replicate
        ),
    })?;
    let results: Vec<(&SweepUnit, &VaeRunMetrics)> =
        outcome.results.iter().map(|(u, m)| (u, m)).collect();
    write_csv(out, &results)?;
    figures(out, cfg, &results)?;
    println!(
        "sweep finished in {:.1} s: {} of {} runs; {}",
        t0.elapsed().as_secs_f64(),
        results.len(),
        units.len(),
        out.join("metrics.csv").display()
    );
    if !outcome.failures.is_empty() {
        let list: Vec<String> = outcome
            .failures
            .iter()
            .map(|(d, e)| format!("{}: {e}", d.display()))
            .collect();
        bail!(
            "{} runs failed (the others are in metrics.csv; rerun with --resume): {}",
            list.len(),
            list.join("; ")
        );
    }
    Ok(())
}

fn write_csv(out: &Path, results: &[(&SweepUnit, &VaeRunMetrics)]) -> Result<()> {
    let mut text = String::from(HEADER);
    text.push('\n');
    for (u, m) in results {
        let tica = m.kinetics_reference.as_ref().map(|r| &r.tica);
        for s in &m.stages {
            let x = &s.metrics;
            let nan = f64::NAN;
            let _ = writeln!(
                text,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                u.decoder,
                s.beta,
                u.replicate,
                u.latent,
                x.loss_recon,
                x.loss_kl,
                x.jd_encode,
                x.jd_prior,
                x.total_correlation,
                x.active_dims,
                x.f_acc.map_or(f64::NAN, |f| f),
                s.stage,
                s.label,
                s.cv_kinetics.as_ref().map_or(nan, |k| k.vamp2),
                s.cv_kinetics.as_ref().map_or(nan, |k| k.timescale),
                tica.map_or(nan, |k| k.vamp2),
                tica.map_or(nan, |k| k.timescale),
                s.basins.as_ref().map_or(nan, |b| b.balanced_accuracy),
            );
        }
    }
    boltzflow_io::write_atomic(&out.join("metrics.csv"), |w| w.write_all(text.as_bytes()))?;
    Ok(())
}

/// Mean and standard error over replicates of `f` for each forward-stage β of `decoder`, `k`.
fn over_replicates(
    results: &[(&SweepUnit, &VaeRunMetrics)],
    decoder: &str,
    k: usize,
    f: &dyn Fn(&boltzflow_learn::vae::evaluate::VaeMetrics) -> f64,
) -> (Vec<(f64, f64)>, Vec<f64>) {
    let mut betas: Vec<f64> = Vec::new();
    for (u, m) in results {
        if u.decoder == decoder && u.latent == k {
            for s in m.stages.iter().filter(|s| s.kind == "forward") {
                if !betas.contains(&s.beta) {
                    betas.push(s.beta);
                }
            }
        }
    }
    betas.sort_by(f64::total_cmp);
    let mut pts = Vec::new();
    let mut errs = Vec::new();
    for b in betas {
        let v: Vec<f64> = results
            .iter()
            .filter(|(u, _)| u.decoder == decoder && u.latent == k)
            .flat_map(|(_, m)| {
                m.stages
                    .iter()
                    .filter(|s| s.kind == "forward" && s.beta == b)
                    .map(|s| f(&s.metrics))
            })
            .filter(|x| x.is_finite())
            .collect();
        if v.is_empty() {
            continue;
        }
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let se = if v.len() > 1 {
            (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt()
        } else {
            0.0
        };
        pts.push((b, mean));
        errs.push(se);
    }
    (pts, errs)
}

/// Fig. 2b–d (replicate 0) and Fig. 3 per latent dimension, and index.html.
fn figures(out: &Path, cfg: &VaeConfig, results: &[(&SweepUnit, &VaeRunMetrics)]) -> Result<()> {
    let Some(sweep) = &cfg.sweep else {
        return Ok(());
    };
    let mut figs: Vec<(String, String)> = Vec::new();
    let data: Vec<f32> = boltzflow_io::read_npy_2d(&out.join("data.npy"))?
        .iter()
        .map(|&v| v as f32)
        .collect();
    for &k in &sweep.latent_dims {
        // Fig. 2: one row per decoder, one column per stage of replicate 0.
        let (mut latent, mut by_latent, mut recon) = (Vec::new(), Vec::new(), Vec::new());
        let mut cols = 1;
        let mut labels = ("x₁", "x₂");
        for (u, _) in results
            .iter()
            .filter(|(u, _)| u.latent == k && u.replicate == 0)
        {
            let run = VaeRun::open(&u.dir(out))?;
            let (vae, trained) = run.trained()?;
            let d = vae.dim();
            // A molecule's units hold their data in its representation.
            let own = if run.representation.is_some() {
                run.data()?
            } else {
                Vec::new()
            };
            let rows = if own.is_empty() { &data } else { &own };
            let points = subset(rows, d, 3000, &RandomStreams::new(cfg.seed));
            let plane = RunPlane::new(&run)?;
            let draw = |x: &[f64]| plane.points(x, d);
            let box_ = plane.scatter_box(&points, d);
            labels = plane.labels();
            cols = cols.max(trained.len());
            for (s, (stage, params)) in trained.iter().enumerate() {
                let caption = format!("{}, {}", u.decoder, stage.label());
                let (a, b, c) =
                    model_panels(&vae, params, &points, &caption, (&draw, box_), s as u64);
                latent.push(a);
                by_latent.push(b);
                recon.push(c);
            }
        }
        for (file, title, panels, x, y, text) in [
            (
                format!("fig2b_latent_k{k}.png"),
                format!("Latent distributions q(z) and P(z), latent dim {k}"),
                latent,
                "z₁",
                "density",
                "Fig. 2b: aggregate posterior and prior per decoder (rows) and β (columns), replicate 0.",
            ),
            (
                format!("fig2c_data_by_latent_k{k}.png"),
                format!("Data coloured by μ₁(x), latent dim {k}"),
                by_latent,
                labels.0,
                labels.1,
                "Fig. 2c: the data coloured by the encoded latent value, per decoder and β.",
            ),
            (
                format!("fig2d_reconstructions_k{k}.png"),
                format!("Reconstructions coloured by z₁, latent dim {k}"),
                recon,
                labels.0,
                labels.1,
                "Fig. 2d: reconstructions x̃ ~ p(x|z), z ~ q(z|x), coloured by z₁, per decoder and β.",
            ),
        ] {
            if panels.is_empty() {
                continue;
            }
            chart_grid(&out.join(&file), &title, cols, &panels, x, y)?;
            figs.push((file, text.into()));
        }
        // Fig. 3: metrics against β, one line per decoder, replicate standard errors.
        type Metric = (
            &'static str,
            bool,
            fn(&boltzflow_learn::vae::evaluate::VaeMetrics) -> f64,
        );
        let metrics: [Metric; 8] = [
            ("reconstruction loss", false, |m| m.loss_recon),
            ("KL loss", false, |m| m.loss_kl),
            ("JD_encode", true, |m| m.jd_encode),
            ("JD_prior", true, |m| m.jd_prior),
            ("total correlation", false, |m| m.total_correlation),
            ("active dimensions", false, |m| m.active_dims as f64),
            ("f_acc", false, |m| m.f_acc.unwrap_or(f64::NAN)),
            ("f_acc (log)", true, |m| m.f_acc.unwrap_or(f64::NAN)),
        ];
        let panels: Vec<Panel> = metrics
            .iter()
            .map(|(name, log, f)| {
                let series = sweep
                    .decoders
                    .iter()
                    .map(|dec| {
                        let (pts, errs) = over_replicates(results, dec, k, f);
                        let mut s = Series::line(dec.clone(), pts);
                        s.errors = errs;
                        s
                    })
                    .collect();
                let mut p = Panel::lines(*name, series);
                p.log_y = *log;
                p
            })
            .collect();
        let file = format!("fig3_metrics_k{k}.png");
        chart_grid(
            &out.join(&file),
            &format!("Metrics against β (mean ± s.e. over replicates), latent dim {k}"),
            4,
            &panels,
            "β",
            "",
        )?;
        figs.push((
            file,
            "Fig. 3: metrics against β per decoder, forward stages, mean ± standard error over replicates.".into(),
        ));
    }
    let mut html = String::new();
    let _ = writeln!(
        html,
        "<h1>VAE sweep on {}</h1><p>decoders {:?}, latent dims {:?}, {} replicates; metrics.csv has one row per trained model.</p>",
        cfg.system.spec, sweep.decoders, sweep.latent_dims, sweep.replicates
    );
    crate::run_common::write_index(out, html, &figs)?;
    Ok(())
}
