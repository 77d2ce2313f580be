//! `boltzflow simulate` and `boltzflow demo`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};
use boltzflow_core::{Error, Move, RandomStreams, SamplerState, ThermodynamicState};
use boltzflow_mcmc::autocorrelation::integrated_time;
use boltzflow_mcmc::reporters::{KineticEnergyRecorder, ProgressReporter};
use boltzflow_mcmc::{Baoab, Metropolis, OverdampedLangevin, Protocol, Simulation};
use clap::{Args, ValueEnum};

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
    /// Metropolis displacement σ, or the Langevin time step [default: 0.1; 0.001 ps (1 fs) for
    /// `openmm:` molecules, which have no constraints].
    #[arg(long)]
    pub step_size: Option<f64>,
    /// Langevin friction γ (1/time; 1/ps for molecules). 0 gives velocity Verlet (constant energy).
    #[arg(long, default_value_t = 1.0)]
    pub friction: f64,
    /// Temperature [default: kT = 1 for the reduced toy systems; 300 K for `openmm:` molecules].
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Run seed; the same seed gives the same samples on any number of threads.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Starting configurations: `uniform` in the system's reference box, `default` (the system's
    /// start configuration for every chain: the PDB for molecules), `exact` (the exact sampler),
    /// or a .npy file [m, dim] whose rows each start chains/m consecutive chains (chains must be
    /// a multiple of m) [default: `uniform`, or `default` for systems without a box].
    #[arg(long)]
    pub init: Option<String>,
    /// Topology and start positions for `openmm:FILE.xml` systems.
    #[arg(long)]
    pub pdb: Option<PathBuf>,
    /// Also write the saved frames as a trajectory (.pdb multi-model or .xyz; needs --pdb).
    #[arg(long)]
    pub trajectory: Option<PathBuf>,
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
    /// kT for reduced systems, K for molecules.
    temperature: f64,
    /// `reduced` (kT = 1 units) or `openmm` (nm, ps, kJ/mol, K).
    units: &'static str,
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
    /// Underdamped Langevin only: kinetic energy, temperature and total-energy drift.
    dynamics: Option<DynamicsSummary>,
}

/// Kinetic energy, temperature and energy conservation of an underdamped run (from the saved
/// frames).
#[derive(serde::Serialize)]
struct DynamicsSummary {
    degrees_of_freedom: usize,
    /// Mean kinetic energy of the mid-step (post-O) velocities.
    kinetic_energy_mean: f64,
    /// 2⟨K⟩ / (n_dof k_B) from the mid-step velocities, in the unit of --temperature.
    temperature_mean: f64,
    /// The same from the end-of-step velocities (biased low by O(Δt²) for stiff modes).
    temperature_end_of_step: f64,
    /// Least-squares slope of the chain-averaged total energy (potential + kinetic) against
    /// time, per unit time (per ns for molecules, whose time unit is ps).
    total_energy_drift: f64,
    /// The same per degree of freedom, in kT per unit time (per ns for molecules).
    total_energy_drift_per_dof_kt: f64,
    /// Standard deviation of the total energy over frames, averaged over chains.
    total_energy_std: f64,
    /// Time unit of the drift: `ns` for molecules, `time` (reduced) otherwise.
    drift_time_unit: &'static str,
}

/// Runs a simulation; prints a summary and, for 2D systems with isolated minima, the basin table.
pub fn run(a: SimulateArgs) -> Result<()> {
    run_and_report(&a).map(|_| ())
}

fn run_and_report(a: &SimulateArgs) -> Result<Option<f64>> {
    let system = boltzflow_systems::build_with_pdb(&a.system, a.pdb.as_deref())?;
    if a.chains == 0 {
        bail!(Error::invalid("--chains", "must be at least 1"));
    }
    let protocol = Protocol::new(a.steps, a.burn_in, a.stride)?;
    let atom_masses = system.atom_masses();
    let molecular = atom_masses.is_some();
    let (temperature, step_size) = if molecular {
        (a.temperature.unwrap_or(300.0), a.step_size.unwrap_or(0.001))
    } else {
        (a.temperature.unwrap_or(1.0), a.step_size.unwrap_or(0.1))
    };
    let thermo = if molecular {
        ThermodynamicState::kelvin(temperature)?
    } else {
        ThermodynamicState::reduced(temperature)?
    };
    if molecular && matches!(a.sampler, Sampler::Langevin) && step_size > 0.001 {
        eprintln!(
            "warning: --step-size {step_size} ps is above 1 fs; without constraints, bonds to hydrogen need ≤ 1 fs"
        );
    }
    let topology = system.as_openmm().and_then(|o| o.topology());
    if a.trajectory.is_some() && topology.is_none() {
        bail!(Error::invalid(
            "--trajectory",
            "needs a topology: give an `openmm:` system with --pdb, or write .npy only"
        ));
    }
    // Check that the outputs can be written before spending the time.
    check_writable(&a.out)?;
    if let Some(t) = &a.trajectory {
        check_writable(t)?;
    }
    let streams = RandomStreams::new(a.seed);
    let init = a
        .init
        .as_deref()
        .unwrap_or(if system.reference_box().is_some() {
            "uniform"
        } else {
            "default"
        });
    if init == "default" && molecular && system.as_openmm().and_then(|o| o.positions()).is_none() {
        bail!(Error::invalid(
            "--init",
            format!(
                "{} has no start positions: give --pdb, or --init with a .npy file [chains, dim]",
                system.spec()
            )
        ));
    }
    let x0 = boltzflow_learn::run::initial_positions(system.as_ref(), init, a.chains, &streams)?;
    let mut state = SamplerState::new(
        x0,
        system.as_ref(),
        streams.chains(sampler_stream(a.sampler), a.chains),
    )?;
    let periods = system.periods();
    let masses: Vec<f64> = match atom_masses {
        Some(m) => m.iter().flat_map(|&m| [m; 3]).collect(),
        None => vec![1.0; system.dim()],
    };
    let mut degrees_of_freedom = None;
    let mut mv: Box<dyn Move> = match a.sampler {
        Sampler::Metropolis => Box::new(Metropolis::new(step_size)?.with_periods(periods)),
        Sampler::Langevin => {
            let mut b = Baoab::new(step_size, a.friction, masses.clone())?.with_periods(periods);
            if let Some(m) = atom_masses {
                b = b.with_com_motion_removed(m)?;
            }
            degrees_of_freedom = Some(b.degrees_of_freedom());
            Box::new(b)
        }
        Sampler::Overdamped => {
            Box::new(OverdampedLangevin::new(step_size, a.friction, false)?.with_periods(periods))
        }
        Sampler::Mala => {
            Box::new(OverdampedLangevin::new(step_size, a.friction, true)?.with_periods(periods))
        }
    };
    let sim = Simulation {
        energy: system.as_ref(),
        thermo,
        protocol,
    };
    let mut progress = ProgressReporter::new(protocol.n_steps, mv.name(), a.quiet);
    let mut kinetic =
        KineticEnergyRecorder::new(masses, protocol.burn_in).with_half_kick(step_size);
    let t0 = Instant::now();
    let res = sim.run(mv.as_mut(), &mut state, &mut [&mut progress, &mut kinetic])?;
    progress.finish();
    let seconds = t0.elapsed().as_secs_f64();
    boltzflow_io::write_npy_2d(&a.out, res.samples.view())?;
    if let (Some(t), Some(top)) = (&a.trajectory, topology) {
        top.write_trajectory(t, res.samples.view())?;
    }
    let dynamics = degrees_of_freedom.map(|n_dof| {
        dynamics_summary(
            n_dof,
            &kinetic,
            res.energies.view(),
            thermo,
            step_size,
            molecular,
        )
    });
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
        step_size,
        temperature,
        units: if molecular { "openmm" } else { "reduced" },
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
        dynamics,
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
    if let Some(d) = &summary.dynamics {
        let unit = if molecular { " K" } else { "" };
        println!(
            "kinetic energy {:.4}, temperature {:.2}{unit} (target {temperature}{unit}, {} degrees of freedom; {:.2}{unit} from end-of-step velocities), total-energy drift {:.4e} per {} ({:.3e} kT per degree of freedom), total-energy std {:.4}",
            d.kinetic_energy_mean,
            d.temperature_mean,
            d.degrees_of_freedom,
            d.temperature_end_of_step,
            d.total_energy_drift,
            d.drift_time_unit,
            d.total_energy_drift_per_dof_kt,
            d.total_energy_std
        );
    }
    if matches!(a.sampler, Sampler::Metropolis | Sampler::Mala) && acceptance < 0.1 {
        eprintln!("warning: acceptance {acceptance:.3} is below 10%: reduce --step-size");
    }
    let worst = summary.basins.as_deref().map(crate::basins::print);
    if let Some(p) = &a.summary {
        boltzflow_io::write_json(p, &summary)?;
    }
    Ok(worst)
}

/// Temperature and energy conservation from the kinetic energies recorded at the saved frames.
fn dynamics_summary(
    n_dof: usize,
    kinetic: &KineticEnergyRecorder,
    potential: ndarray::ArrayView2<f64>,
    thermo: ThermodynamicState,
    dt: f64,
    molecular: bool,
) -> DynamicsSummary {
    let n_frames = kinetic.kinetic.len().min(potential.nrows());
    let n_chains = potential.ncols();
    let mean_over_frames = |k: &[ndarray::Array1<f64>]| {
        k[..n_frames]
            .iter()
            .map(|k| k.mean().unwrap_or(f64::NAN))
            .sum::<f64>()
            / n_frames as f64
    };
    // The temperature from the mid-step velocities (exact for harmonic modes, see the recorder).
    let k_mean = mean_over_frames(&kinetic.kinetic_mid);
    let k_end = mean_over_frames(&kinetic.kinetic);
    // kT per unit of --temperature: k_B for kelvin, 1 for reduced.
    let kb = thermo.kt() / thermo.temperature();
    // Time of each frame: ps for molecules, reported per ns.
    let per = if molecular { 1000.0 } else { 1.0 };
    let t: Vec<f64> = kinetic.steps[..n_frames]
        .iter()
        .map(|&s| s as f64 * dt)
        .collect();
    let total: Vec<f64> = (0..n_frames)
        .map(|f| (potential.row(f).sum() + kinetic.kinetic[f].sum()) / n_chains as f64)
        .collect();
    let slope = least_squares_slope(&t, &total) * per;
    let std = (0..n_chains)
        .map(|c| {
            let e: Vec<f64> = (0..n_frames)
                .map(|f| potential[[f, c]] + kinetic.kinetic[f][c])
                .collect();
            let m = e.iter().sum::<f64>() / n_frames as f64;
            (e.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n_frames as f64).sqrt()
        })
        .sum::<f64>()
        / n_chains as f64;
    DynamicsSummary {
        degrees_of_freedom: n_dof,
        kinetic_energy_mean: k_mean,
        temperature_mean: 2.0 * k_mean / (n_dof as f64 * kb),
        temperature_end_of_step: 2.0 * k_end / (n_dof as f64 * kb),
        total_energy_drift: slope,
        total_energy_drift_per_dof_kt: slope / (n_dof as f64 * thermo.kt()),
        total_energy_std: std,
        drift_time_unit: if molecular { "ns" } else { "time" },
    }
}

/// Slope of the least-squares line through (t, y); NaN with fewer than two points.
fn least_squares_slope(t: &[f64], y: &[f64]) -> f64 {
    let n = t.len() as f64;
    if t.len() < 2 {
        return f64::NAN;
    }
    let (tm, ym) = (t.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxy: f64 = t.iter().zip(y).map(|(t, y)| (t - tm) * (y - ym)).sum();
    let sxx: f64 = t.iter().map(|t| (t - tm).powi(2)).sum();
    sxy / sxx
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
        step_size: Some(0.1),
        friction: 1.0,
        temperature: Some(1.0),
        seed: d.seed,
        init: Some("uniform".into()),
        pdb: None,
        trajectory: None,
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
