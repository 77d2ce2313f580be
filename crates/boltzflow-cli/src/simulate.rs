//! `boltzflow simulate` and `boltzflow demo`.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use boltzflow_core::Error;
use boltzflow_learn::run::{
    MetadynamicsSpec, Sampler, SimulationSpec, simulate, simulate_metadynamics,
};
use clap::Args;

/// Arguments of `boltzflow simulate`. Defaults are the seed paper's Metropolis protocol.
#[derive(Args, Clone)]
pub struct SimulateArgs {
    /// System specification, NAME[:key=value,...] (see `boltzflow systems`).
    #[arg(long)]
    pub system: String,
    /// Sampler: metropolis (Gaussian random walk, σ = --step-size), langevin (underdamped
    /// BAOAB, Δt = --step-size, γ = --friction), overdamped (Euler–Maruyama) or mala
    /// (Metropolis-adjusted overdamped Langevin, exact).
    #[arg(long, default_value = "metropolis")]
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
    /// Metropolis displacement σ, or the Langevin time step [default: 0.1; for `openmm:`
    /// molecules 0.001 ps (1 fs), or 0.002 ps (2 fs) when the System constrains bonds].
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
    /// Well-tempered metadynamics (`--metad` and its options).
    #[command(flatten)]
    pub metad: MetadArgs,
}

/// The `--metad*` options of `boltzflow simulate`.
#[derive(Args, Clone)]
pub struct MetadArgs {
    /// Well-tempered metadynamics along 1 or 2 CVs separated by `;`: `phi`, `psi` (molecules),
    /// `dihedral:a,b,c,d`, `vae:RUN_DIR[:j]` (the j-th encoder mean of a VAE of the molecule in
    /// internal coordinates), or `projection:…` / `distance:i,j` (toy systems). Frames then
    /// carry log-weights (--weights) and the bias gives the free-energy surface (--fes).
    #[arg(long)]
    pub metad: Option<String>,
    /// Metadynamics: initial Gaussian height in kT.
    #[arg(long, default_value_t = 0.5)]
    pub metad_height: f64,
    /// Metadynamics: Gaussian widths, one per CV or one for all (radians for torsions).
    #[arg(long, value_delimiter = ',', default_value = "0.35")]
    pub metad_sigma: Vec<f64>,
    /// Metadynamics: bias factor γ = (T + ΔT)/T.
    #[arg(long, default_value_t = 6.0)]
    pub metad_bias_factor: f64,
    /// Metadynamics: steps between Gaussians (every walker deposits); must divide --steps,
    /// --burn-in and --stride.
    #[arg(long, default_value_t = 500)]
    pub metad_pace: u64,
    /// Metadynamics: grid bins per CV.
    #[arg(long, default_value_t = 120)]
    pub metad_bins: usize,
    /// Metadynamics: `lo,hi` of each CV that is not a torsion, separated by `;` (a `vae:` CV
    /// defaults to its training data's range, widened by a quarter on each side).
    #[arg(long)]
    pub metad_range: Option<String>,
    /// Metadynamics: write the frames' log-weights β(V(s,t) − c(t)), .npy [frames × chains].
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Metadynamics: write the free-energy surface of the bias, .npy [grid points, CVs + 1].
    #[arg(long)]
    pub fes: Option<PathBuf>,
}

impl Default for MetadArgs {
    /// No bias (and the options' command-line defaults).
    fn default() -> Self {
        Self {
            metad: None,
            metad_height: 0.5,
            metad_sigma: vec![0.35],
            metad_bias_factor: 6.0,
            metad_pace: 500,
            metad_bins: 120,
            metad_range: None,
            weights: None,
            fes: None,
        }
    }
}

/// Runs a simulation; prints a summary and, for 2D systems with isolated minima, the basin table.
pub fn run(a: SimulateArgs) -> Result<()> {
    run_and_report(&a).map(|_| ())
}

fn run_and_report(a: &SimulateArgs) -> Result<Option<f64>> {
    let system = boltzflow_systems::build_with_pdb(&a.system, a.pdb.as_deref())?;
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
    let spec = SimulationSpec {
        sampler: a.sampler,
        chains: a.chains,
        steps: a.steps,
        burn_in: a.burn_in,
        stride: a.stride,
        step_size: a.step_size,
        friction: a.friction,
        temperature: a.temperature,
        seed: a.seed,
        init: a.init.clone(),
    };
    if let Some(cvs) = &a.metad.metad {
        return run_metadynamics(a, system.as_ref(), &spec, cvs, topology).map(|()| None);
    }
    if a.metad.weights.is_some() || a.metad.fes.is_some() {
        bail!(Error::invalid(
            "--weights",
            "--weights and --fes come from a biased run: add --metad"
        ));
    }
    let res = simulate(system.as_ref(), &spec, a.quiet)?;
    boltzflow_io::write_npy_2d(&a.out, res.samples.view())?;
    if let (Some(t), Some(top)) = (&a.trajectory, topology) {
        top.write_trajectory(t, res.samples.view())?;
    }
    if let Some(p) = &a.energies {
        let e = res
            .energies
            .view()
            .into_shape_with_order(res.energies.len())
            .expect("contiguous");
        boltzflow_io::write_npy_1d(p, e)?;
    }
    let summary = &res.summary;
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
        summary.acceptance,
        summary.acceptance_burn_in,
        summary.energy_mean,
        summary
            .energy_tau_steps
            .map_or("n/a".into(), |t| format!("≈ {t:.0} steps")),
        summary.seconds,
        summary.trials_per_second
    );
    if let Some(d) = &summary.dynamics {
        let unit = if summary.units == "openmm" { " K" } else { "" };
        println!(
            "kinetic energy {:.4}, temperature {:.2}{unit} (target {}{unit}, {} degrees of freedom; {:.2}{unit} from end-of-step velocities), total-energy drift {:.4e} per {} ({:.3e} kT per degree of freedom), total-energy std {:.4}",
            d.kinetic_energy_mean,
            d.temperature_mean,
            summary.temperature,
            d.degrees_of_freedom,
            d.temperature_end_of_step,
            d.total_energy_drift,
            d.drift_time_unit,
            d.total_energy_drift_per_dof_kt,
            d.total_energy_std
        );
    }
    for w in &res.warnings {
        eprintln!("warning: {w}");
    }
    let worst = summary.basins.as_deref().map(crate::basins::print);
    if let Some(p) = &a.summary {
        boltzflow_io::write_json(p, summary)?;
    }
    Ok(worst)
}

/// `simulate --metad`: the biased run, its outputs and a summary line (and the reweighted
/// Ramachandran populations for molecules).
fn run_metadynamics(
    a: &SimulateArgs,
    system: &dyn boltzflow_systems::System,
    spec: &SimulationSpec,
    cvs: &str,
    topology: Option<&boltzflow_io::pdb::Topology>,
) -> Result<()> {
    let m = &a.metad;
    for p in [&m.weights, &m.fes, &a.energies, &a.summary]
        .into_iter()
        .flatten()
    {
        check_writable(p)?;
    }
    let ranges = match &m.metad_range {
        None => Vec::new(),
        Some(text) => text
            .split(';')
            .map(|r| {
                let v: Vec<f64> = r
                    .split(',')
                    .map(|x| x.trim().parse::<f64>())
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|_| Error::invalid("--metad-range", format!("`{r}` is not lo,hi")))?;
                match v.as_slice() {
                    [lo, hi] => Ok([*lo, *hi]),
                    _ => Err(Error::invalid(
                        "--metad-range",
                        format!("`{r}` is not lo,hi"),
                    )),
                }
            })
            .collect::<std::result::Result<_, _>>()?,
    };
    let metad = MetadynamicsSpec {
        cvs: cvs.to_string(),
        height_kt: m.metad_height,
        sigma: m.metad_sigma.clone(),
        bias_factor: m.metad_bias_factor,
        pace: m.metad_pace,
        bins: m.metad_bins,
        ranges,
    };
    let res = simulate_metadynamics(system, spec, &metad)?;
    boltzflow_io::write_npy_2d(&a.out, res.samples.view())?;
    if let (Some(t), Some(top)) = (&a.trajectory, topology) {
        top.write_trajectory(t, res.samples.view())?;
    }
    if let Some(p) = &a.energies {
        let n = res.energies.len();
        let e = res
            .energies
            .view()
            .into_shape_with_order(n)
            .expect("contiguous");
        boltzflow_io::write_npy_1d(p, e)?;
    }
    if let Some(p) = &m.weights {
        boltzflow_io::write_npy_1d(p, res.log_weights.view())?;
    }
    if let Some(p) = &m.fes {
        boltzflow_io::write_npy_2d(p, res.fes.view())?;
    }
    let s = &res.summary;
    println!(
        "{}: metadynamics on `{}`, {} walkers × {} steps, {} Gaussians, largest bias {:.3}; {} frames saved to {} (Kish ESS of their weights {:.3} of the frames), {:.1} s",
        s.system,
        s.cvs,
        s.chains,
        s.steps,
        s.hills,
        s.max_bias,
        res.log_weights.len(),
        a.out.display(),
        s.ess_fraction,
        s.seconds
    );
    if let Some(rows) = &s.ramachandran {
        println!("reweighted Ramachandran populations (± over 4 blocks of frames):");
        for (name, p, se) in rows {
            println!("  {name:<11} {p:.4} ± {se:.4}");
        }
    }
    if let Some(p) = &a.summary {
        boltzflow_io::write_json(p, s)?;
    }
    Ok(())
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
        metad: MetadArgs::default(),
    };
    let worst = run_and_report(&args)?;
    if let Some(w) = worst {
        println!("\nlargest deviation from the exact populations: {w:.2} standard errors");
    }
    println!("outputs in {}", d.out.display());
    Ok(())
}
