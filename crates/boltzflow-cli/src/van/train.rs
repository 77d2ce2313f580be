//! `boltzflow train CONFIG.toml` for `model = "van"`: one network per β, each trained by the
//! variational free energy with β annealing; a checkpoint every `checkpoint_every` steps and
//! after each β, `--resume` from the last one (bitwise the same result as an uninterrupted run:
//! every step draws from its own named random stream).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use boltzflow_learn::van::{VanBuffers, VanConfig, VanStep, step_stream, train_step};
use boltzflow_nn::Adam;
use boltzflow_systems::SpinThermo;

use super::run_dir::{VanCheckpoint, VanRun};
use crate::bg::train::TrainArgs;

/// Columns of metrics.csv.
const HEADER: &str = "beta_index,beta,step,beta_t,f_per_spin,f_stderr,energy_per_spin,entropy_per_spin,f_reweighted_per_spin,ess_fraction,grad_norm,f_exact_per_spin,rel_error,seconds";

fn csv_row(k: usize, beta: f64, s: &VanStep, exact: Option<&SpinThermo>, seconds: f64) -> String {
    let e = &s.estimate;
    let (fx, rel) = exact.map_or((f64::NAN, f64::NAN), |x| {
        (
            x.f_per_spin,
            (e.f_per_spin - x.f_per_spin).abs() / x.f_per_spin.abs(),
        )
    });
    format!(
        "{k},{beta},{},{},{},{},{},{},{},{},{},{fx},{rel},{seconds:.3}",
        s.step + 1,
        s.beta_t,
        e.f_per_spin,
        e.f_stderr,
        e.energy_per_spin,
        e.entropy_per_spin,
        e.f_reweighted_per_spin,
        e.ess_fraction,
        s.grad_norm
    )
}

fn write_csv(run: &VanRun, rows: &[String]) -> boltzflow_core::Result<()> {
    let text = std::iter::once(HEADER.to_string())
        .chain(rows.iter().cloned())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    boltzflow_io::write_atomic(&run.dir.join("metrics.csv"), |w| {
        w.write_all(text.as_bytes())
    })
}

/// Runs `boltzflow train` on a VAN configuration; returns the run directory.
pub fn run(a: &TrainArgs) -> Result<PathBuf> {
    let mut cfg = VanConfig::from_file(&a.config)?;
    a.override_seed_and_system(&mut cfg.seed, &mut cfg.system.spec);
    cfg.resolve_paths()?;
    let out = crate::run_common::out_dir(a.out.as_deref(), &a.config);
    let run = VanRun::new(out.clone(), cfg)?;
    let checkpoint = run.checkpoint_path();
    let resuming = crate::run_common::start_or_resume(
        &out,
        (a.resume, a.force),
        &checkpoint,
        &run.cfg.to_toml(),
        || Ok(VanRun::open(&out)?.cfg == run.cfg),
    )?;
    if !resuming || !out.join("couplings.npy").exists() {
        boltzflow_io::write_npy_2d(&out.join("couplings.npy"), run.system.couplings().view())?;
    }
    let t = &run.cfg.train;
    let exact = run.system.exact(&t.betas)?;
    let mut van = run.new_van(0)?;
    let mut ck = if resuming && checkpoint.exists() {
        run.load(&van)?
    } else {
        VanCheckpoint {
            finished: Vec::new(),
            current: None,
        }
    };
    // Keep the metrics rows the checkpoint covers.
    let mut rows: Vec<String> = Vec::new();
    if resuming && let Ok(text) = std::fs::read_to_string(out.join("metrics.csv")) {
        let done = ck.finished.len();
        let step = ck.current.as_ref().map_or(0, |c| c.2);
        rows = text
            .lines()
            .skip(1)
            .filter(|line| {
                let mut f = line.split(',');
                let k: usize = f.next().and_then(|v| v.parse().ok()).unwrap_or(usize::MAX);
                let s: usize = f.nth(1).and_then(|v| v.parse().ok()).unwrap_or(usize::MAX);
                k < done || (k == done && s <= step)
            })
            .map(str::to_string)
            .collect();
        println!("resuming {} at β number {done}, step {step}", out.display());
    }
    if !a.quiet {
        println!(
            "training a {:?} VAN (depth {}, width {}, {} parameters{}) on {} at β = {:?}: {} steps × batch {} per β, into {}",
            run.cfg.network.kind,
            run.cfg.network.depth,
            run.cfg.network.width,
            van.params.len(),
            if run.cfg.network.z2 {
                ", Z2-symmetric"
            } else {
                ""
            },
            run.system.spec(),
            t.betas,
            t.steps,
            t.batch_size,
            out.display()
        );
    }
    let mut buf = VanBuffers::default();
    let t0 = Instant::now();
    let mut total_steps = ck.finished.len() * t.steps + ck.current.as_ref().map_or(0, |c| c.2);
    let report_every = (t.steps / 10).max(t.log_every);
    for k in ck.finished.len()..t.betas.len() {
        let beta = t.betas[k];
        let (params, mut adam, start) = match ck.current.take() {
            Some(c) => c,
            None => {
                let fresh = run.new_van(k)?;
                let p = match (t.carry, ck.finished.last()) {
                    (true, Some(prev)) => prev.clone(),
                    _ => fresh.params,
                };
                let n = p.len();
                (p, Adam::new(n), 0)
            }
        };
        van.params = params;
        let ex = exact.as_ref().map(|e| e[k]);
        for step in start..t.steps {
            if a.stop_after.is_some_and(|s| total_steps >= s) {
                ck.current = Some((van.params.clone(), adam, step));
                write_csv(&run, &rows)?;
                run.save(&van, &ck)?;
                println!(
                    "stopped after {total_steps} steps (--stop-after); continue with --resume"
                );
                return Ok(out);
            }
            let mut rng = step_stream(run.cfg.seed, k, step);
            let st = train_step(
                &mut van,
                &mut adam,
                &run.system,
                t,
                beta,
                step,
                &mut rng,
                &mut buf,
            )
            .map_err(|e| {
                anyhow::Error::from(e).context(format!(
                    "training stopped; the last good checkpoint is `{}`",
                    checkpoint.display()
                ))
            })?;
            total_steps += 1;
            let done = step + 1;
            if done % t.log_every == 0 || done == t.steps {
                rows.push(csv_row(
                    k,
                    beta,
                    &st,
                    ex.as_ref(),
                    t0.elapsed().as_secs_f64(),
                ));
            }
            if done % report_every == 0 || done == t.steps {
                let e = &st.estimate;
                let reference = ex.map_or(String::new(), |x| {
                    format!(
                        "  exact {:.6}  rel {:.2e}",
                        x.f_per_spin,
                        (e.f_per_spin - x.f_per_spin).abs() / x.f_per_spin.abs()
                    )
                });
                let line = format!(
                    "β {beta:<6} step {done:>6}/{}  β_t {:.4}  F/n {:.6} ± {:.6}{reference}  grad {:.3}  ({:.1} s)",
                    t.steps,
                    st.beta_t,
                    e.f_per_spin,
                    e.f_stderr,
                    st.grad_norm,
                    t0.elapsed().as_secs_f64()
                );
                run.log(&line)?;
                if !a.quiet {
                    println!("{line}");
                }
            }
            if done % t.checkpoint_every == 0 && done < t.steps {
                // metrics.csv first: a kill between the writes leaves rows the checkpoint does
                // not cover, which --resume drops, never a gap.
                ck.current = Some((van.params.clone(), adam.clone(), done));
                write_csv(&run, &rows)?;
                run.save(&van, &ck)?;
                ck.current = None;
            }
        }
        ck.finished.push(van.params.clone());
        write_csv(&run, &rows)?;
        run.save(&van, &ck)?;
    }
    if !a.quiet {
        println!(
            "trained in {:.1} s; checkpoint {}",
            t0.elapsed().as_secs_f64(),
            checkpoint.display()
        );
    }
    Ok(out)
}
