//! `boltzflow train CONFIG.toml`: trains a Boltzmann generator into a run directory, with a
//! checkpoint after every epoch and `--resume` from the last one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use boltzflow_core::Coordinate;
use boltzflow_core::SamplerState;
use boltzflow_core::{Error, RandomStreams, ThermodynamicState};
use boltzflow_learn::config::{BgConfig, SimulateConfig};
use boltzflow_learn::trainer::{EpochObserver, EpochRecord, Problem, Reduced, TrainData, train};
use boltzflow_learn::{BoltzmannGenerator, RcEntropy};
use boltzflow_mcmc::{Metropolis, Protocol, Simulation};
use boltzflow_nn::Adam;
use boltzflow_systems::System;
use ndarray::Array2;

use super::run_dir::{Run, load_checkpoint, save_checkpoint};

/// Arguments of `boltzflow train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// The run configuration (TOML; see examples/*.toml).
    pub config: PathBuf,
    /// Run directory (default: runs/<configuration name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Overrides the configuration's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Overrides the configuration's `[system] spec` (e.g. `sk:n=20,seed=3`).
    #[arg(long)]
    pub system: Option<String>,
    /// Continue the run in --out from its last checkpoint (or start it, if it has none).
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Delete a run already in --out and start over.
    #[arg(long)]
    pub force: bool,
    /// Stop after this many epochs (VAN: optimizer steps) in total, as a killed run would (for
    /// testing --resume).
    #[arg(long, hide = true)]
    pub stop_after: Option<usize>,
    /// No per-epoch lines on standard output.
    #[arg(long)]
    pub quiet: bool,
}

impl TrainArgs {
    /// Applies `--seed` and `--system` to a configuration's seed and `[system] spec`.
    pub fn override_seed_and_system(&self, seed: &mut u64, spec: &mut String) {
        if let Some(s) = self.seed {
            *seed = s;
        }
        if let Some(s) = &self.system {
            spec.clone_from(s);
        }
    }
}

/// Makes relative paths in the configuration absolute, so that the run directory's copy works
/// from anywhere.
fn resolve_paths(cfg: &mut BgConfig) -> Result<()> {
    let abs = |p: &Path| -> Result<PathBuf> {
        std::path::absolute(p).with_context(|| format!("cannot resolve `{}`", p.display()))
    };
    if let Some(rest) = cfg.system.spec.strip_prefix("openmm:") {
        cfg.system.spec = format!("openmm:{}", abs(Path::new(rest))?.display());
    }
    if let Some(p) = &cfg.system.pdb {
        cfg.system.pdb = Some(abs(p)?);
    }
    if let Some(d) = &mut cfg.data {
        if let Some(f) = &d.file {
            d.file = Some(abs(f)?);
        }
        if let Some(sim) = &mut d.simulate
            && !["default", "uniform", "exact"].contains(&sim.init.as_str())
        {
            sim.init = abs(Path::new(&sim.init))?.display().to_string();
        }
    }
    if let Some(r) = &cfg.evaluate.reference {
        cfg.evaluate.reference = Some(abs(r)?);
    }
    Ok(())
}

/// Metropolis chains as configured in `[data.simulate]`.
pub fn simulate_data(
    system: &dyn System,
    sim: &SimulateConfig,
    beta_kelvin: Option<f64>,
    streams: &RandomStreams,
) -> Result<Array2<f64>> {
    let protocol = Protocol::new(sim.steps, sim.burn_in, sim.stride)?;
    let x0 = crate::simulate::initial_positions(system, &sim.init, sim.chains, streams)?;
    let mut state = SamplerState::new(x0, system, streams.chains("data.metropolis", sim.chains))?;
    let thermo = match beta_kelvin {
        Some(t) => ThermodynamicState::kelvin(t)?,
        None => ThermodynamicState::reduced(1.0)?,
    };
    let mut mv = Metropolis::new(sim.step_size)?.with_periods(system.periods());
    let simulation = Simulation {
        energy: system,
        thermo,
        protocol,
    };
    let res = simulation.run(&mut mv, &mut state, &mut [])?;
    Ok(res.samples)
}

struct Recorder<'a> {
    run: &'a Run,
    rows: Vec<String>,
    quiet: bool,
}

impl EpochObserver for Recorder<'_> {
    fn epoch_end(
        &mut self,
        rec: &EpochRecord,
        bg: &BoltzmannGenerator,
        adam: &Adam<f32>,
    ) -> boltzflow_core::Result<()> {
        // metrics.csv first: a run killed between the two writes has a row too many, which
        // --resume drops (it keeps the rows the checkpoint covers), never a row too few.
        self.rows.push(rec.csv());
        let csv = std::iter::once(EpochRecord::HEADER.to_string())
            .chain(self.rows.iter().cloned())
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        let path = self.run.dir.join("metrics.csv");
        boltzflow_io::write_atomic(&path, |w| w.write_all(csv.as_bytes()))?;
        save_checkpoint(
            &self.run.checkpoint_path(),
            bg,
            adam,
            rec.epoch,
            self.run.cfg.seed,
        )?;
        let line = format!(
            "epoch {:>4} [{}] lr {:.1e}  nll {:>9.4}  kl {:>9.4}  energy {:>9.4}  val_nll {:>9.4}  ess {:>6.3}  ({:.1} s)",
            rec.epoch,
            rec.stage,
            rec.lr,
            rec.nll,
            rec.kl,
            rec.energy,
            rec.val_nll,
            rec.ess_fraction,
            rec.seconds
        );
        self.run
            .log(&line)
            .map_err(|e| Error::invalid("log.txt", e.to_string()))?;
        if !self.quiet {
            println!("{line}");
        }
        Ok(())
    }
}

/// Loads or generates the training data (kept in the run directory as data.npy).
fn training_data(run: &Run, reuse: bool) -> Result<Option<TrainData>> {
    let Some(d) = &run.cfg.data else {
        return Ok(None);
    };
    let streams = RandomStreams::new(run.cfg.seed);
    let saved = run.dir.join("data.npy");
    let x = if reuse && saved.exists() {
        boltzflow_io::read_npy_2d(&saved)?
    } else {
        let x = match (&d.file, &d.simulate) {
            (Some(f), _) => boltzflow_io::read_npy_2d(f).with_context(|| "in [data] file")?,
            (None, Some(sim)) => {
                let t0 = Instant::now();
                let kelvin = run
                    .system
                    .atom_masses()
                    .map(|_| run.cfg.system.temperature.unwrap_or(300.0));
                let x = simulate_data(run.system.as_ref(), sim, kelvin, &streams)?;
                println!(
                    "data: {} Metropolis samples ({} chains) in {:.1} s",
                    x.nrows(),
                    sim.chains,
                    t0.elapsed().as_secs_f64()
                );
                x
            }
            (None, None) => unreachable!("validated: [data] has a file or a simulation"),
        };
        boltzflow_io::write_npy_2d(&saved, x.view())?;
        x
    };
    if x.ncols() != run.system.dim() {
        bail!(Error::Shape {
            what: "training data".into(),
            expected: format!("[n, {}] for {}", run.system.dim(), run.cfg.system.spec),
            got: format!("[{}, {}]", x.nrows(), x.ncols()),
        });
    }
    Ok(Some(split_data(&x, d, &streams)?))
}

/// Runs `boltzflow train`; returns the run directory.
pub fn run(a: &TrainArgs) -> Result<PathBuf> {
    let mut cfg = BgConfig::from_file(&a.config)?;
    a.override_seed_and_system(&mut cfg.seed, &mut cfg.system.spec);
    resolve_paths(&mut cfg)?;
    let out = crate::run_common::out_dir(a.out.as_deref(), &a.config);
    let run = Run::new(out.clone(), cfg)?;
    let checkpoint = run.checkpoint_path();
    let resuming = crate::run_common::start_or_resume(
        &out,
        (a.resume, a.force),
        &checkpoint,
        &run.cfg.to_toml(),
        || Ok(Run::open(&out)?.cfg == run.cfg),
    )?;
    let data = training_data(&run, resuming)?;
    let mut bg = run.new_generator()?;
    let mut adam = Adam::new(bg.params.len());
    let mut rows = Vec::new();
    let start = if resuming && checkpoint.exists() {
        let e = load_checkpoint(&checkpoint, &mut bg, Some(&mut adam))?;
        // Keep the metrics of the epochs the checkpoint contains.
        if let Ok(text) = std::fs::read_to_string(out.join("metrics.csv")) {
            rows = text.lines().skip(1).take(e).map(str::to_string).collect();
        }
        println!("resuming {} after epoch {e}", out.display());
        e
    } else {
        0
    };
    let total = run.cfg.total_epochs();
    let end = a.stop_after.map_or(total, |s| s.min(total));
    let energy = Reduced {
        inner: run.system.as_ref(),
        beta: run.beta,
    };
    if !a.quiet {
        println!(
            "training {} on {} ({} parameters, {} epochs × {} steps, batch {}) into {}",
            describe(&run.cfg),
            run.cfg.system.spec,
            bg.params.len(),
            total,
            run.cfg.train.steps_per_epoch,
            run.cfg.train.batch_size,
            out.display()
        );
    }
    let rc = match (&run.cfg.train.rc_coordinate, run.cfg.train.rc_bounds) {
        (Some(text), Some([lo, hi])) => {
            let pdim = if run.system.atom_masses().is_some() {
                3
            } else {
                2
            };
            let coord = Coordinate::parse(text, "train.rc_coordinate", run.system.dim(), pdim)?;
            Some(RcEntropy::new(
                coord,
                lo,
                hi,
                run.cfg.train.rc_grid,
                run.cfg.train.rc_width,
            )?)
        }
        _ => None,
    };
    let mut rec = Recorder {
        run: &run,
        rows,
        quiet: a.quiet,
    };
    let t0 = Instant::now();
    let problem = Problem {
        energy: &energy,
        data: data.as_ref(),
        rc: rc.as_ref(),
    };
    train(&run.cfg, &problem, &mut bg, &mut adam, start..end, &mut rec).map_err(|e| {
        anyhow::Error::from(e).context(format!(
            "training stopped; the last good checkpoint is `{}`",
            checkpoint.display()
        ))
    })?;
    if end < total {
        println!("stopped after epoch {end} of {total} (--stop-after); continue with --resume");
    } else if !a.quiet {
        println!(
            "trained in {:.1} s; checkpoint {}",
            t0.elapsed().as_secs_f64(),
            checkpoint.display()
        );
    }
    Ok(out)
}

fn describe(cfg: &BgConfig) -> String {
    format!(
        "{:?} flow, {} couplings, hidden {:?}",
        cfg.flow.kind, cfg.flow.couplings, cfg.flow.hidden
    )
    .to_lowercase()
}

/// Training and validation rows: simulated data are held out by whole chains (frames of one
/// chain are correlated), a data file by rows.
pub(crate) fn split_data(
    x: &Array2<f64>,
    d: &boltzflow_learn::config::DataConfig,
    streams: &RandomStreams,
) -> boltzflow_core::Result<TrainData> {
    match &d.simulate {
        Some(sim) => TrainData::split_by_chain(x, d.validation_fraction, sim.chains, streams),
        None => TrainData::split(x, d.validation_fraction, streams),
    }
}
