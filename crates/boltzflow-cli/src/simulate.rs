//! `boltzflow simulate` and `boltzflow demo`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};
use boltzflow_core::{Error, Move, RandomStreams, SamplerState, ThermodynamicState};
use boltzflow_mcmc::autocorrelation::integrated_time;
use boltzflow_mcmc::reporters::ProgressReporter;
use boltzflow_mcmc::{Baoab, Metropolis, OverdampedLangevin, Protocol, Simulation};
use boltzflow_systems::System;
use clap::{Args, ValueEnum};
use ndarray::{Array2, Axis};
use rand::RngExt;

/// Samplers of `simulate`.
#[derive(Clone, Copy, Debug, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sampler {
    /// Gaussian random-walk Metropolis (σ = --step-size).
    Metropolis,
    /// Underdamped Langevin, BAOAB (Δt = --step-size, γ = --friction, unit masses).
    Langevin,
    /// Overdamped Langevin, Euler–Maruyama (Δt = --step-size, γ = --friction).
    Overdamped,
    /// Metropolis-adjusted overdamped Langevin (exact; Δt = --step-size).
    Mala,
}

/// Arguments of `boltzflow simulate`. Defaults are the seed paper's Metropolis protocol.
#[derive(Args, Clone)]
pub struct SimulateArgs {
    /// System specification, NAME[:key=value,...] (see `boltzflow systems`).
    #[arg(long)]
    pub system: String,
    /// Sampler.
    #[arg(long, value_enum, default_value = "metropolis")]
    pub sampler: Sampler,
    /// Number of independent chains.
    #[arg(long, default_value_t = 10_000)]
    pub chains: usize,
    /// Steps per chain, burn-in included.
    #[arg(long, default_value_t = 100_000)]
    pub steps: u64,
    /// Steps discarded before the first saved frame.
    #[arg(long, default_value_t = 60_000)]
    pub burn_in: u64,
    /// Steps between saved frames.
    #[arg(long, default_value_t = 4000)]
    pub stride: u64,
    /// Metropolis displacement σ, or the Langevin time step.
    #[arg(long, default_value_t = 0.1)]
    pub step_size: f64,
    /// Langevin friction γ (1/time).
    #[arg(long, default_value_t = 1.0)]
    pub friction: f64,
    /// Temperature (reduced, kT; 1 for the toy systems).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// Run seed; the same seed gives the same samples on any number of threads.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Starting configurations: `uniform` in the system's reference box, `default` (the system's
    /// start configuration for every chain), `exact` (the exact sampler), or a .npy file [chains, dim].
    #[arg(long, default_value = "uniform")]
    pub init: String,
    /// Output configurations, .npy float64 [frames × chains, dim], frame-major.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the energies of the saved frames, .npy float64 [frames × chains].
    #[arg(long)]
    pub energies: Option<PathBuf>,
    /// Also write a JSON summary (acceptance, autocorrelation, basin populations).
    #[arg(long)]
    pub summary: Option<PathBuf>,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(serde::Serialize)]
struct Summary {
    system: String,
    sampler: Sampler,
    chains: usize,
    steps: u64,
    burn_in: u64,
    stride: u64,
    step_size: f64,
    temperature: f64,
    seed: u64,
    frames: usize,
    acceptance_burn_in: f64,
    acceptance: f64,
    energy_mean: f64,
    /// Integrated autocorrelation time of the energy, in steps (from saved frames; ≈ stride means
    /// the frames are nearly independent).
    energy_tau_steps: Option<f64>,
    seconds: f64,
    trials_per_second: f64,
    basins: Option<Vec<crate::basins::BasinRow>>,
}

fn initial_positions(
    system: &dyn System,
    init: &str,
    n: usize,
    streams: &RandomStreams,
) -> Result<Array2<f64>> {
    let dim = system.dim();
    Ok(match init {
        "default" => system
            .initial_configuration()
            .insert_axis(Axis(0))
            .broadcast((n, dim))
            .expect("row broadcast")
            .to_owned(),
        "uniform" => {
            let Some(b) = system.reference_box() else {
                bail!(Error::invalid(
                    "--init",
                    format!(
                        "`uniform` needs a reference box, which {} has not; use `default` or a .npy file",
                        system.spec()
                    )
                ));
            };
            let mut rng = streams.stream("init");
            Array2::from_shape_fn((n, dim), |(_, c)| {
                b[c][0] + (b[c][1] - b[c][0]) * rng.random::<f64>()
            })
        }
        "exact" => match system.exact_sampler() {
            Some(s) => s.sample(n, &mut streams.stream("init"))?,
            None => bail!(Error::invalid(
                "--init",
                format!(
                    "{} has no exact sampler; use `uniform`, `default` or a .npy file",
                    system.spec()
                )
            )),
        },
        file => {
            let x = boltzflow_io::read_npy_2d(Path::new(file))?;
            if x.dim() != (n, dim) {
                bail!(Error::Shape {
                    what: format!("initial configurations in `{file}`"),
                    expected: format!("[{n}, {dim}] (--chains × dim)"),
                    got: format!("[{}, {}]", x.nrows(), x.ncols())
                });
            }
            x
        }
    })
}

/// Runs a simulation; prints a summary and, for 2D systems with isolated minima, the basin table.
pub fn run(a: SimulateArgs) -> Result<()> {
    run_and_report(&a).map(|_| ())
}

fn run_and_report(a: &SimulateArgs) -> Result<Option<f64>> {
    let system = boltzflow_systems::build(&a.system)?;
    if a.chains == 0 {
        bail!(Error::invalid("--chains", "must be at least 1"));
    }
    let protocol = Protocol::new(a.steps, a.burn_in, a.stride)?;
    let thermo = ThermodynamicState::reduced(a.temperature)?;
    // Check that the output can be written before spending the time.
    check_writable(&a.out)?;
    let streams = RandomStreams::new(a.seed);
    let x0 = initial_positions(system.as_ref(), &a.init, a.chains, &streams)?;
    let mut state = SamplerState::new(
        x0,
        system.as_ref(),
        streams.chains(sampler_stream(a.sampler), a.chains),
    )?;
    let periods = system.periods();
    let mut mv: Box<dyn Move> = match a.sampler {
        Sampler::Metropolis => Box::new(Metropolis::new(a.step_size)?.with_periods(periods)),
        Sampler::Langevin => Box::new(
            Baoab::new(a.step_size, a.friction, vec![1.0; system.dim()])?.with_periods(periods),
        ),
        Sampler::Overdamped => {
            Box::new(OverdampedLangevin::new(a.step_size, a.friction, false)?.with_periods(periods))
        }
        Sampler::Mala => {
            Box::new(OverdampedLangevin::new(a.step_size, a.friction, true)?.with_periods(periods))
        }
    };
    let sim = Simulation {
        energy: system.as_ref(),
        thermo,
        protocol,
    };
    let mut progress = ProgressReporter::new(protocol.n_steps, mv.name(), a.quiet);
    let t0 = Instant::now();
    let res = sim.run(mv.as_mut(), &mut state, &mut [&mut progress])?;
    progress.finish();
    let seconds = t0.elapsed().as_secs_f64();
    boltzflow_io::write_npy_2d(&a.out, res.samples.view())?;
    if let Some(p) = &a.energies {
        let e = res
            .energies
            .view()
            .into_shape_with_order(res.energies.len())
            .expect("contiguous");
        boltzflow_io::write_npy_1d(p, e)?;
    }
    let trials = (a.chains as u64 * protocol.n_steps) as f64;
    let acceptance = res.production_stats.acceptance();
    let summary = Summary {
        system: system.spec(),
        sampler: a.sampler,
        chains: a.chains,
        steps: a.steps,
        burn_in: a.burn_in,
        stride: a.stride,
        step_size: a.step_size,
        temperature: a.temperature,
        seed: a.seed,
        frames: res.samples.nrows(),
        acceptance_burn_in: res.burn_in_stats.acceptance(),
        acceptance,
        energy_mean: res.energies.mean().unwrap_or(f64::NAN),
        energy_tau_steps: (res.energies.nrows() >= 4)
            .then(|| {
                integrated_time(res.energies.view(), 5.0)
                    .ok()
                    .map(|t| t * a.stride as f64)
            })
            .flatten(),
        seconds,
        trials_per_second: trials / seconds,
        basins: crate::basins::compare(system.as_ref(), thermo.kt(), res.samples.view(), a.chains),
    };
    println!(
        "{}: {} chains × {} steps ({} burn-in, stride {}), {} frames saved to {}",
        summary.system,
        a.chains,
        a.steps,
        a.burn_in,
        a.stride,
        summary.frames,
        a.out.display()
    );
    println!(
        "acceptance {:.3} (burn-in {:.3}), mean energy {:.4}, energy autocorrelation time {}, {:.1} s ({:.3e} trials/s)",
        acceptance,
        summary.acceptance_burn_in,
        summary.energy_mean,
        summary
            .energy_tau_steps
            .map_or("n/a".into(), |t| format!("≈ {t:.0} steps")),
        seconds,
        summary.trials_per_second
    );
    if matches!(a.sampler, Sampler::Metropolis | Sampler::Mala) && acceptance < 0.1 {
        eprintln!("warning: acceptance {acceptance:.3} is below 10%: reduce --step-size");
    }
    let worst = summary.basins.as_deref().map(crate::basins::print);
    if let Some(p) = &a.summary {
        boltzflow_io::write_json(p, &summary)?;
    }
    Ok(worst)
}

fn sampler_stream(s: Sampler) -> &'static str {
    match s {
        Sampler::Metropolis => "metropolis",
        Sampler::Langevin => "langevin",
        Sampler::Overdamped => "overdamped",
        Sampler::Mala => "mala",
    }
}

fn check_writable(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(".boltzflow-check-")
        .tempfile_in(dir)
        .map(|_| ())
        .map_err(|e| {
            Error::Io {
                action: "cannot write",
                path: path.to_path_buf(),
                source: e,
            }
            .into()
        })
}

/// Arguments of `boltzflow demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// Directory for the demo's outputs.
    #[arg(long, default_value = "boltzflow-demo")]
    out: PathBuf,
    /// Chains (the paper uses 10⁴).
    #[arg(long, default_value_t = 10_000)]
    chains: usize,
    /// Run seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// The demo: the seed paper's Metropolis protocol on `mueller`, compared with quadrature.
pub fn demo(d: DemoArgs) -> Result<()> {
    std::fs::create_dir_all(&d.out).map_err(|e| Error::Io {
        action: "cannot create",
        path: d.out.clone(),
        source: e,
    })?;
    println!(
        "boltzflow demo: Metropolis on the Müller–Brown potential (k = 0.1, kT = 1), σ = 0.1,"
    );
    println!(
        "10⁵ steps, burn-in 6·10⁴, a frame every 4000 steps, chains started uniformly in the box.\n"
    );
    let args = SimulateArgs {
        system: "mueller".into(),
        sampler: Sampler::Metropolis,
        chains: d.chains,
        steps: 100_000,
        burn_in: 60_000,
        stride: 4000,
        step_size: 0.1,
        friction: 1.0,
        temperature: 1.0,
        seed: d.seed,
        init: "uniform".into(),
        out: d.out.join("samples.npy"),
        energies: Some(d.out.join("energies.npy")),
        summary: Some(d.out.join("summary.json")),
        quiet: false,
    };
    let worst = run_and_report(&args)?;
    if let Some(w) = worst {
        println!("\nlargest deviation from the exact populations: {w:.2} standard errors");
    }
    println!("outputs in {}", d.out.display());
    Ok(())
}
