//! `boltzflow train CONFIG.toml` for `model = "vae"`: the stages of the β protocol in turn, a
//! checkpoint after every epoch, `--resume` from the last one (bitwise the same result as an
//! uninterrupted run: every epoch draws from its own named random streams).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use boltzflow_learn::vae::config::VaeConfig;
use boltzflow_learn::vae::train::{EpochStats, EpochWorkspace, train_epoch};
use boltzflow_nn::Adam;

use super::run_dir::{VaeCheckpoint, VaeRun};
use crate::bg::train::TrainArgs;

/// Columns of metrics.csv (one row per epoch).
const HEADER: &str = "stage,label,beta,epoch,beta_t,loss,loss_recon,loss_kl,seconds";

fn write_csv(dir: &Path, rows: &[String]) -> boltzflow_core::Result<()> {
    let text = std::iter::once(HEADER.to_string())
        .chain(rows.iter().cloned())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    boltzflow_io::write_atomic(&dir.join("metrics.csv"), |w| w.write_all(text.as_bytes()))
}

/// Runs `boltzflow train` on a VAE configuration; returns the run directory.
pub fn run(a: &TrainArgs) -> Result<PathBuf> {
    let mut cfg = VaeConfig::from_file(&a.config)?;
    a.override_seed_and_system(&mut cfg.seed, &mut cfg.system.spec);
    cfg.resolve_paths()?;
    let out = crate::run_common::out_dir(a.out.as_deref(), &a.config);
    let run = VaeRun::new(out.clone(), cfg)?;
    let resuming = start(&run, (a.resume, a.force), None)?;
    train(&run, resuming, a.quiet, a.stop_after)?;
    Ok(out)
}

/// Starts (or checks, with `resume`; see [`crate::run_common::start_or_resume`]) the run
/// directory and writes its data: `data` if given (a sweep shares one data set), else the
/// configured source. Returns whether the run resumes.
pub fn start(
    run: &VaeRun,
    resume_force: (bool, bool),
    data: Option<&ndarray::Array2<f64>>,
) -> Result<bool> {
    let out = &run.dir;
    let resume = crate::run_common::start_or_resume(
        out,
        resume_force,
        &run.checkpoint_path(),
        &run.cfg.to_toml(),
        || Ok(VaeRun::open(out)?.cfg == run.cfg),
    )?;
    if !resume || !out.join("data.npy").exists() {
        let x = match data {
            Some(x) => x.clone(),
            None => run.make_data()?,
        };
        boltzflow_io::write_npy_2d(&out.join("data.npy"), x.view())?;
    }
    Ok(resume)
}

/// Trains every stage of a started run directory, resuming from its checkpoint with `resume`.
/// `stop_after` stops after that many epochs in total, as a killed run would.
pub fn train(run: &VaeRun, resume: bool, quiet: bool, stop_after: Option<usize>) -> Result<()> {
    let data = run.data()?;
    let vae = run.vae()?;
    let stages = run.stages();
    let t = &run.cfg.train;
    let checkpoint = run.checkpoint_path();
    let mut ck = if resume && checkpoint.exists() {
        run.load(&vae)?
    } else {
        VaeCheckpoint {
            finished: Vec::new(),
            current: None,
        }
    };
    let mut rows: Vec<String> = Vec::new();
    let done_epochs = ck.finished.len() * t.epochs + ck.current.as_ref().map_or(0, |c| c.2);
    if resume && let Ok(text) = std::fs::read_to_string(run.dir.join("metrics.csv")) {
        rows = text
            .lines()
            .skip(1)
            .take(done_epochs)
            .map(str::to_string)
            .collect();
        if !quiet {
            println!(
                "resuming {} at stage {}, epoch {}",
                run.dir.display(),
                ck.finished.len(),
                ck.current.as_ref().map_or(0, |c| c.2)
            );
        }
    }
    let n = data.len() / vae.dim();
    if !quiet {
        println!(
            "training a VAE ({} decoder, latent dim {}, {} parameters) on {} ({} points) through {} stages × {} epochs, batch {}, into {}",
            vae.decoder().kind().name(),
            vae.latent_dim(),
            vae.layout().len(),
            run.cfg.system.spec,
            n,
            stages.len(),
            t.epochs,
            t.batch_size,
            run.dir.display()
        );
    }
    let t0 = Instant::now();
    let mut total = done_epochs;
    let mut ws = EpochWorkspace::default();
    for s in ck.finished.len()..stages.len() {
        let stage = &stages[s];
        let (mut params, mut adam, start) = match ck.current.take() {
            Some(c) => c,
            None => {
                let p = match (stage.fresh, ck.finished.last()) {
                    (false, Some(prev)) => prev.clone(),
                    _ => run.fresh_params(&vae, s),
                };
                let len = p.len();
                (p, Adam::new(len), 0)
            }
        };
        for epoch in start..t.epochs {
            if stop_after.is_some_and(|m| total >= m) {
                ck.current = Some((params, adam, epoch));
                write_csv(&run.dir, &rows)?;
                run.save(&vae, &ck)?;
                println!("stopped after {total} epochs (--stop-after); continue with --resume");
                return Ok(());
            }
            let st: EpochStats = train_epoch(
                &vae,
                &mut params,
                &mut adam,
                &data,
                stage,
                s,
                epoch,
                t,
                run.cfg.seed,
                &mut ws,
            )
            .map_err(|e| {
                anyhow::Error::from(e).context(format!(
                    "training stopped; the last good checkpoint is `{}`",
                    checkpoint.display()
                ))
            })?;
            total += 1;
            let secs = t0.elapsed().as_secs_f64();
            rows.push(format!(
                "{s},{},{},{},{},{},{},{},{secs:.3}",
                stage.label(),
                stage.beta,
                epoch + 1,
                st.beta,
                st.loss.total,
                st.loss.recon,
                st.loss.kl
            ));
            let line = format!(
                "{:<14} epoch {:>4}/{}  β_t {:.3}  loss {:.4}  recon {:.4}  KL {:.4}  ({secs:.1} s)",
                stage.label(),
                epoch + 1,
                t.epochs,
                st.beta,
                st.loss.total,
                st.loss.recon,
                st.loss.kl
            );
            run.log(&line)?;
            if !quiet {
                println!("{line}");
            }
            if epoch + 1 < t.epochs {
                // metrics.csv first: a kill between the writes leaves a row too many, which
                // --resume drops, never a row too few.
                ck.current = Some((params.clone(), adam.clone(), epoch + 1));
                write_csv(&run.dir, &rows)?;
                run.save(&vae, &ck)?;
                ck.current = None;
            }
        }
        ck.finished.push(params);
        write_csv(&run.dir, &rows)?;
        run.save(&vae, &ck)?;
    }
    if !quiet {
        println!(
            "trained in {:.1} s; checkpoint {}",
            t0.elapsed().as_secs_f64(),
            checkpoint.display()
        );
    }
    Ok(())
}
