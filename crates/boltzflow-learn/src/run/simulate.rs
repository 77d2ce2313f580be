//! Sampling a system with one of the project's samplers (`boltzflow simulate`, Python's
//! `boltzflow.simulate`): the sampler built from its name and the system's units, chains
//! started as asked, the run, and its summary (acceptance, energy autocorrelation, the
//! temperature and energy conservation of Langevin dynamics, and for 2-D toys the basin
//! populations next to quadrature).

use std::fmt;
use std::str::FromStr;
use std::time::Instant;

use boltzflow_core::{Error, Move, RandomStreams, Result, SamplerState, ThermodynamicState};
use boltzflow_mcmc::autocorrelation::integrated_time;
use boltzflow_mcmc::reporters::{KineticEnergyRecorder, ProgressReporter};
use boltzflow_mcmc::{Baoab, Constraints, Metropolis, OverdampedLangevin, Protocol, Simulation};
use boltzflow_systems::System;
use boltzflow_systems::quadrature::GridQuadrature;
use ndarray::{Array2, ArrayView2};

/// The samplers of a simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sampler {
    /// Gaussian random-walk Metropolis (σ = step size).
    Metropolis,
    /// Underdamped Langevin, BAOAB (Δt = step size, γ = friction; atomic masses for molecules,
    /// unit masses otherwise).
    Langevin,
    /// Overdamped Langevin, Euler–Maruyama (Δt = step size, γ = friction).
    Overdamped,
    /// Metropolis-adjusted overdamped Langevin (exact; Δt = step size).
    Mala,
}

impl Sampler {
    /// Every sampler, in the order of [`Sampler::name`].
    pub const ALL: [Sampler; 4] = [
        Sampler::Metropolis,
        Sampler::Langevin,
        Sampler::Overdamped,
        Sampler::Mala,
    ];

    /// The name users write (`metropolis`, `langevin`, `overdamped`, `mala`); it also names
    /// the sampler's random stream.
    pub fn name(self) -> &'static str {
        match self {
            Sampler::Metropolis => "metropolis",
            Sampler::Langevin => "langevin",
            Sampler::Overdamped => "overdamped",
            Sampler::Mala => "mala",
        }
    }
}

impl fmt::Display for Sampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Sampler {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "sampler",
                    format!(
                        "unknown sampler `{s}`; use one of {}",
                        Self::ALL.map(Sampler::name).join(", ")
                    ),
                )
            })
    }
}

/// What to simulate: sampler, chains, protocol and state. Options left `None` take the
/// system's defaults: kT = 1 and step 0.1 for the reduced toy systems; 300 K and 1 fs
/// (0.001 ps) for molecules (OpenMM units), 2 fs for molecules with constraints (bonds to
/// hydrogen kept by SHAKE/RATTLE); chains start `uniform` in the
/// system's reference box, or from its `default` configuration where it has none.
#[derive(Clone, Debug)]
pub struct SimulationSpec {
    /// The sampler.
    pub sampler: Sampler,
    /// Independent chains.
    pub chains: usize,
    /// Steps per chain, burn-in included.
    pub steps: u64,
    /// Steps discarded before the first saved frame.
    pub burn_in: u64,
    /// Steps between saved frames.
    pub stride: u64,
    /// Metropolis σ or the time step.
    pub step_size: Option<f64>,
    /// Langevin friction γ (1/time; 1/ps for molecules); 0 gives velocity Verlet.
    pub friction: f64,
    /// kT (reduced systems) or kelvin (molecules).
    pub temperature: Option<f64>,
    /// Run seed: the same seed gives the same samples on any number of threads.
    pub seed: u64,
    /// `uniform`, `default`, `exact`, or a `.npy` file whose m rows each start chains/m chains.
    pub init: Option<String>,
}

impl SimulationSpec {
    /// Langevin dynamics (BAOAB; SHAKE/RATTLE for constrained molecules) of `chains` chains ×
    /// `steps` steps, the first `burn_in` discarded and a frame saved every `stride`, with the
    /// system's default time step and temperature (1 fs, or 2 fs with constraints, and 300 K for
    /// molecules), γ = 1 and the system's own start configuration.
    pub fn langevin(chains: usize, steps: u64, burn_in: u64, stride: u64, seed: u64) -> Self {
        Self {
            sampler: Sampler::Langevin,
            chains,
            steps,
            burn_in,
            stride,
            step_size: None,
            friction: 1.0,
            temperature: None,
            seed,
            init: None,
        }
    }
}

/// A finished simulation.
#[derive(Debug)]
pub struct SimulationResult {
    /// Saved frames `[frames · chains, dim]`, frame-major (all chains of frame 0 first).
    pub samples: Array2<f64>,
    /// Their energies `[frames, chains]` (the system's unit).
    pub energies: Array2<f64>,
    /// Acceptance, autocorrelation, dynamics and basins.
    pub summary: SimulationSummary,
    /// What the user should change ("acceptance below 10 %: reduce the step size").
    pub warnings: Vec<String>,
}

/// The summary of a simulation (`simulate --summary S.json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct SimulationSummary {
    /// The system's canonical specification.
    pub system: String,
    /// The sampler.
    pub sampler: Sampler,
    /// Chains.
    pub chains: usize,
    /// Steps per chain.
    pub steps: u64,
    /// Burn-in steps.
    pub burn_in: u64,
    /// Steps between frames.
    pub stride: u64,
    /// The step size used.
    pub step_size: f64,
    /// kT for reduced systems, K for molecules.
    pub temperature: f64,
    /// `reduced` (kT = 1 units) or `openmm` (nm, ps, kJ/mol, K).
    pub units: &'static str,
    /// The run seed.
    pub seed: u64,
    /// Saved rows: frames × chains.
    pub frames: usize,
    /// Acceptance during burn-in (1 for unadjusted dynamics).
    pub acceptance_burn_in: f64,
    /// Acceptance after burn-in.
    pub acceptance: f64,
    /// Mean energy of the saved frames.
    pub energy_mean: f64,
    /// Integrated autocorrelation time of the energy, in steps (from saved frames; ≈ stride
    /// means the frames are nearly independent).
    pub energy_tau_steps: Option<f64>,
    /// Wall time.
    pub seconds: f64,
    /// chains × steps per second.
    pub trials_per_second: f64,
    /// 2-D systems with isolated minima: sampled basin populations next to quadrature.
    pub basins: Option<Vec<BasinRow>>,
    /// Underdamped Langevin only: kinetic energy, temperature and total-energy drift.
    pub dynamics: Option<DynamicsSummary>,
}

/// Kinetic energy, temperature and energy conservation of an underdamped run (from the saved
/// frames).
#[derive(Debug, Clone, serde::Serialize)]
pub struct DynamicsSummary {
    /// Degrees of freedom (3N − 3 with the centre-of-mass motion removed).
    pub degrees_of_freedom: usize,
    /// Mean kinetic energy of the mid-step (post-O) velocities.
    pub kinetic_energy_mean: f64,
    /// 2⟨K⟩ / (n_dof k_B) from the mid-step velocities, in the unit of the temperature.
    pub temperature_mean: f64,
    /// The same from the end-of-step velocities (biased low by O(Δt²) for stiff modes).
    pub temperature_end_of_step: f64,
    /// Least-squares slope of the chain-averaged total energy (potential + kinetic) against
    /// time, per unit time (per ns for molecules, whose time unit is ps).
    pub total_energy_drift: f64,
    /// The same per degree of freedom, in kT per unit time (per ns for molecules).
    pub total_energy_drift_per_dof_kt: f64,
    /// Standard deviation of the total energy over frames, averaged over chains.
    pub total_energy_std: f64,
    /// Time unit of the drift: `ns` for molecules, `time` (reduced) otherwise.
    pub drift_time_unit: &'static str,
}

/// One basin of a 2-D system: its sampled population next to the exact one.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BasinRow {
    /// Position of the basin's minimum.
    pub minimum: [f64; 2],
    /// Exact probability by quadrature.
    pub exact: f64,
    /// Sampled probability.
    pub sampled: f64,
    /// Its standard error, from the spread of per-chain estimates.
    pub standard_error: f64,
}

/// The temperature and step size of `spec` for `system` (its defaults where unset), and
/// whether the system is a molecule.
fn resolved(system: &dyn System, spec: &SimulationSpec) -> (f64, f64, bool) {
    let molecular = system.atom_masses().is_some();
    let constrained = system
        .as_openmm()
        .is_some_and(|m| !m.force_field.constraints().is_empty());
    let (t, dt) = if constrained {
        (300.0, 0.002)
    } else if molecular {
        (300.0, 0.001)
    } else {
        (1.0, 0.1)
    };
    (
        spec.temperature.unwrap_or(t),
        spec.step_size.unwrap_or(dt),
        molecular,
    )
}

/// Runs `spec` on `system`; `quiet` hides the progress bar (shown on a terminal).
///
/// # Errors
/// [`Error::InvalidParameter`] for zero chains, a bad protocol, a bad temperature or step
/// size, or an `init` the system cannot serve; a non-finite energy (with its step).
pub fn simulate(
    system: &dyn System,
    spec: &SimulationSpec,
    quiet: bool,
) -> Result<SimulationResult> {
    if spec.chains == 0 {
        return Err(Error::invalid("chains", "must be at least 1"));
    }
    let protocol = Protocol::new(spec.steps, spec.burn_in, spec.stride)?;
    let Start {
        temperature,
        step_size,
        molecular,
        thermo,
        streams,
        x0,
    } = start(system, spec)?;
    let mut warnings = Vec::new();
    let constraints = system_constraints(system)?;
    let constrained = constraints.is_some();
    if molecular && spec.sampler == Sampler::Langevin && step_size > 0.001 && !constrained {
        warnings.push(format!(
            "step size {step_size} ps is above 1 fs; without constraints, bonds to hydrogen need ≤ 1 fs"
        ));
    }
    if constrained && step_size > 0.0025 {
        warnings.push(format!(
            "step size {step_size} ps is above 2.5 fs; with bonds to hydrogen constrained, 2 fs is the usual limit"
        ));
    }
    let mut state =
        SamplerState::new(x0, system, streams.chains(spec.sampler.name(), spec.chains))?;
    let (mut mv, degrees_of_freedom, masses) = build_move(system, spec, step_size)?;
    let sim = Simulation {
        energy: system,
        thermo,
        protocol,
    };
    let mut progress = ProgressReporter::new(protocol.n_steps, mv.name(), quiet);
    let mut kinetic = KineticEnergyRecorder::new(masses, protocol.burn_in)
        .with_half_kick(step_size)
        .with_constraints(constraints);
    let t0 = Instant::now();
    let res = sim.run(mv.as_mut(), &mut state, &mut [&mut progress, &mut kinetic])?;
    progress.finish();
    let seconds = t0.elapsed().as_secs_f64();
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
    let acceptance = res.production_stats.acceptance();
    if matches!(spec.sampler, Sampler::Metropolis | Sampler::Mala) && acceptance < 0.1 {
        warnings.push(format!(
            "acceptance {acceptance:.3} is below 10%: reduce the step size"
        ));
    }
    let summary = SimulationSummary {
        system: system.spec(),
        sampler: spec.sampler,
        chains: spec.chains,
        steps: spec.steps,
        burn_in: spec.burn_in,
        stride: spec.stride,
        step_size,
        temperature,
        units: if molecular { "openmm" } else { "reduced" },
        seed: spec.seed,
        frames: res.samples.nrows(),
        acceptance_burn_in: res.burn_in_stats.acceptance(),
        acceptance,
        energy_mean: res.energies.mean().unwrap_or(f64::NAN),
        energy_tau_steps: (res.energies.nrows() >= 4)
            .then(|| {
                integrated_time(res.energies.view(), 5.0)
                    .ok()
                    .map(|t| t * spec.stride as f64)
            })
            .flatten(),
        seconds,
        trials_per_second: (spec.chains as u64 * protocol.n_steps) as f64 / seconds,
        basins: basin_populations(system, thermo.kt(), res.samples.view(), spec.chains),
        dynamics,
    };
    Ok(SimulationResult {
        samples: res.samples,
        energies: res.energies,
        summary,
        warnings,
    })
}

/// What a run of `spec` starts from: its resolved temperature and step size, whether the system
/// is a molecule, the thermodynamic state, the run's random streams and the start positions.
pub(crate) struct Start {
    pub temperature: f64,
    pub step_size: f64,
    pub molecular: bool,
    pub thermo: ThermodynamicState,
    pub streams: RandomStreams,
    pub x0: Array2<f64>,
}

/// Resolves `spec` for `system` and draws its start positions (`init`: `uniform` in the box,
/// or the system's own start; see [`SimulationSpec::init`]).
///
/// # Errors
/// [`Error::InvalidParameter`] for a bad temperature, or a molecule without start positions.
pub(crate) fn start(system: &dyn System, spec: &SimulationSpec) -> Result<Start> {
    let (temperature, step_size, molecular) = resolved(system, spec);
    let thermo = if molecular {
        ThermodynamicState::kelvin(temperature)?
    } else {
        ThermodynamicState::reduced(temperature)?
    };
    let streams = RandomStreams::new(spec.seed);
    let init = spec
        .init
        .as_deref()
        .unwrap_or(if system.reference_box().is_some() {
            "uniform"
        } else {
            "default"
        });
    if init == "default" && molecular && system.as_openmm().and_then(|o| o.positions()).is_none() {
        return Err(Error::invalid(
            "init",
            format!(
                "{} has no start positions: give its PDB (--pdb; `System(spec, pdb=…)` in Python), or start from a .npy file [chains, dim] (--init)",
                system.spec()
            ),
        ));
    }
    let x0 = super::initial_positions(system, init, spec.chains, &streams)?;
    Ok(Start {
        temperature,
        step_size,
        molecular,
        thermo,
        streams,
        x0,
    })
}

/// A sampler's move, its Langevin degrees of freedom (underdamped only) and the
/// per-coordinate masses.
pub(crate) type BuiltMove = (Box<dyn Move>, Option<usize>, Vec<f64>);

/// The distance constraints of a molecule's System (`None` without any), kept to 10⁻¹⁰
/// relative.
///
/// # Errors
/// Constraints that do not fit the molecule.
pub(crate) fn system_constraints(system: &dyn System) -> Result<Option<Constraints>> {
    let Some(mol) = system.as_openmm() else {
        return Ok(None);
    };
    let pairs = mol.force_field.constraints();
    if pairs.is_empty() {
        return Ok(None);
    }
    Ok(Some(Constraints::new(
        pairs,
        mol.force_field.masses(),
        1e-10,
    )?))
}

/// The move of `spec`'s sampler for `system` with step size `step_size` (atomic masses and the
/// centre-of-mass motion removed for molecules), the Langevin degrees of freedom, and the
/// per-coordinate masses.
///
/// # Errors
/// [`Error::InvalidParameter`] for a bad step size or friction.
pub(crate) fn build_move(
    system: &dyn System,
    spec: &SimulationSpec,
    step_size: f64,
) -> Result<BuiltMove> {
    let periods = system.periods();
    let atom_masses = system.atom_masses();
    let masses: Vec<f64> = match atom_masses {
        Some(m) => m.iter().flat_map(|&m| [m; 3]).collect(),
        None => vec![1.0; system.dim()],
    };
    let mut degrees_of_freedom = None;
    let constraints = system_constraints(system)?;
    if constraints.is_some() && spec.sampler != Sampler::Langevin {
        return Err(Error::invalid(
            "--sampler",
            format!(
                "{} has distance constraints, which only `langevin` keeps (SHAKE/RATTLE); use it, or a System XML made with constraints=None for `{}`",
                system.spec(),
                spec.sampler.name()
            ),
        ));
    }
    let mv: Box<dyn Move> = match spec.sampler {
        Sampler::Metropolis => Box::new(Metropolis::new(step_size)?.with_periods(periods)),
        Sampler::Langevin => {
            let mut b = Baoab::new(step_size, spec.friction, masses.clone())?.with_periods(periods);
            if let Some(m) = atom_masses {
                b = b.with_com_motion_removed(m)?;
            }
            if let Some(c) = constraints {
                b = b.with_constraints(c)?;
            }
            degrees_of_freedom = Some(b.degrees_of_freedom());
            Box::new(b)
        }
        Sampler::Overdamped => Box::new(
            OverdampedLangevin::new(step_size, spec.friction, false)?.with_periods(periods),
        ),
        Sampler::Mala => {
            Box::new(OverdampedLangevin::new(step_size, spec.friction, true)?.with_periods(periods))
        }
    };
    Ok((mv, degrees_of_freedom, masses))
}

/// Temperature and energy conservation from the kinetic energies recorded at the saved frames.
fn dynamics_summary(
    n_dof: usize,
    kinetic: &KineticEnergyRecorder,
    potential: ArrayView2<f64>,
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
    // kT per unit of the temperature: k_B for kelvin, 1 for reduced.
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

/// Basin populations of frame-major samples `[n_frames · n_chains, 2]` of a 2-D system with
/// isolated minima, next to quadrature at kT; `None` for systems without a box, periodic ones,
/// or those with fewer than 2 (or more than 10) basins holding ≥ 10⁻³ of the probability.
pub fn basin_populations(
    system: &dyn System,
    kt: f64,
    samples: ArrayView2<f64>,
    n_chains: usize,
) -> Option<Vec<BasinRow>> {
    let b = system.reference_box()?;
    if system.dim() != 2 || !system.periods().iter().all(Option::is_none) {
        return None;
    }
    let q = GridQuadrature::new(system, [b[0], b[1]], [1024, 1024], 1.0 / kt).ok()?;
    let basins = q.basins();
    let big = basins.significant(1e-3);
    if big.len() < 2 || big.len() > 10 {
        return None;
    }
    let labels = basins.assign(samples);
    let n_frames = samples.nrows() / n_chains;
    Some(
        big.iter()
            .map(|&k| {
                // Per-chain fraction of frames in the basin; chains are independent.
                let per_chain: Vec<f64> = (0..n_chains)
                    .map(|c| {
                        (0..n_frames)
                            .filter(|f| labels[f * n_chains + c] == Some(k))
                            .count() as f64
                            / n_frames as f64
                    })
                    .collect();
                let m = per_chain.iter().sum::<f64>() / n_chains as f64;
                let var = per_chain.iter().map(|p| (p - m).powi(2)).sum::<f64>()
                    / (n_chains.max(2) - 1) as f64;
                BasinRow {
                    minimum: basins.minima[k],
                    exact: basins.probabilities[k],
                    sampled: m,
                    // one chain gives no spread between chains to estimate an error from
                    standard_error: if n_chains > 1 {
                        (var / n_chains as f64).sqrt()
                    } else {
                        f64::NAN
                    },
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampler_names_parse_back_and_unknown_names_list_the_samplers() {
        for s in Sampler::ALL {
            assert_eq!(s.name().parse::<Sampler>().unwrap(), s);
        }
        let e = "hmc".parse::<Sampler>().unwrap_err().to_string();
        assert!(
            e.contains("unknown sampler `hmc`") && e.contains("mala"),
            "{e}"
        );
    }

    #[test]
    fn metropolis_on_the_double_well_gives_the_quadrature_basin_populations() {
        let system = boltzflow_systems::build("double-well:a2=2").unwrap();
        let spec = SimulationSpec {
            sampler: Sampler::Metropolis,
            chains: 200,
            steps: 20_000,
            burn_in: 2000,
            stride: 100,
            step_size: Some(0.5),
            friction: 1.0,
            temperature: None,
            seed: 3,
            init: None,
        };
        let r = simulate(system.as_ref(), &spec, true).unwrap();
        assert_eq!(r.samples.shape(), &[180 * 200, 2]);
        assert_eq!(r.energies.shape(), &[180, 200]);
        let basins = r.summary.basins.as_ref().expect("two basins");
        for b in basins {
            let z = (b.sampled - b.exact) / b.standard_error;
            assert!(z.abs() < 4.0, "{b:?}");
        }
        // The same seed gives the same samples.
        let again = simulate(system.as_ref(), &spec, true).unwrap();
        assert_eq!(again.samples, r.samples);
    }
}
