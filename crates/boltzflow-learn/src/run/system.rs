//! The system of a run and its Metropolis data.

use std::path::Path;

use boltzflow_core::{Error, RandomStreams, Result, ResultExt, SamplerState, ThermodynamicState};
use boltzflow_mcmc::{Metropolis, Protocol, Simulation};
use boltzflow_systems::System;
use ndarray::{Array2, Axis};
use rand::RngExt;

use crate::config::{SimulateConfig, SystemConfig};

/// The system of a `[system]` table and the β that turns its energies into kT: 1/(k_B T) for
/// molecules (T from `temperature`, default 300 K), 1 for the reduced toy systems, where a
/// temperature other than 1 is an error whose message ends with `toy_hint`.
///
/// # Errors
/// The system's own errors (in [system]); [`Error::InvalidParameter`] for the temperature.
pub fn build_system(sys: &SystemConfig, toy_hint: &str) -> Result<(Box<dyn System>, f64)> {
    let system = boltzflow_systems::build_with_pdb(&sys.spec, sys.pdb.as_deref())
        .context("in [system] of the configuration")?;
    let beta = if system.atom_masses().is_some() {
        let t = sys.temperature.unwrap_or(300.0);
        if !(t > 0.0 && t.is_finite()) {
            return Err(Error::invalid(
                "system.temperature",
                format!("must be positive kelvin, got {t}"),
            ));
        }
        1.0 / (boltzflow_core::KB_KJ_PER_MOL_K * t)
    } else {
        if let Some(t) = sys.temperature
            && t != 1.0
        {
            return Err(Error::invalid(
                "system.temperature",
                format!(
                    "{} is in reduced units (kT = 1); {toy_hint}, got {t}",
                    sys.spec
                ),
            ));
        }
        1.0
    };
    Ok((system, beta))
}

/// `n` starting configurations: `default` (the system's own, for every chain), `uniform` (in its
/// reference box), `exact` (its exact sampler) or a `.npy` file of m rows, each starting n/m
/// consecutive chains.
///
/// # Errors
/// [`Error::InvalidParameter`] (`--init`) when the system lacks what `init` needs;
/// [`Error::Shape`] for a file of the wrong shape.
pub fn initial_positions(
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
                return Err(Error::invalid(
                    "--init",
                    format!(
                        "`uniform` needs a reference box, which {} has not; use `default` or a .npy file",
                        system.spec()
                    ),
                ));
            };
            let mut rng = streams.stream("init");
            Array2::from_shape_fn((n, dim), |(_, c)| {
                b[c][0] + (b[c][1] - b[c][0]) * rng.random::<f64>()
            })
        }
        "exact" => match system.exact_sampler() {
            Some(s) => s.sample(n, &mut streams.stream("init"))?,
            None => {
                return Err(Error::invalid(
                    "--init",
                    format!(
                        "{} has no exact sampler; use `uniform`, `default` or a .npy file",
                        system.spec()
                    ),
                ));
            }
        },
        file => {
            let x = boltzflow_io::read_npy_2d(Path::new(file))?;
            let m = x.nrows();
            if x.ncols() != dim || m == 0 || !n.is_multiple_of(m) {
                return Err(Error::Shape {
                    what: format!("initial configurations in `{file}`"),
                    expected: format!("[m, {dim}] with the number of chains ({n}) a multiple of m"),
                    got: format!("[{}, {}]", x.nrows(), x.ncols()),
                });
            }
            // Each row starts n/m consecutive chains, so the file's order is kept.
            let per_row = n / m;
            Array2::from_shape_fn((n, dim), |(c, j)| x[[c / per_row, j]])
        }
    })
}

/// The chains of `[data.simulate]` (Metropolis by default, or the configured sampler), at
/// `kelvin` for molecules (reduced units otherwise); the frames of all chains, frame-major (all
/// chains of the first frame, then the second, ...).
///
/// # Errors
/// Bad settings, a bad `init`, or a sampler failure (non-finite energy, with its step).
pub fn simulate_data(
    system: &dyn System,
    sim: &SimulateConfig,
    kelvin: Option<f64>,
    streams: &RandomStreams,
) -> Result<Array2<f64>> {
    if sim.sampler != super::Sampler::Metropolis {
        let spec = super::SimulationSpec {
            sampler: sim.sampler,
            chains: sim.chains,
            steps: sim.steps,
            burn_in: sim.burn_in,
            stride: sim.stride,
            step_size: Some(sim.step_size),
            friction: sim.friction,
            temperature: kelvin,
            seed: streams.seed(),
            init: Some(sim.init.clone()),
        };
        return Ok(super::simulate(system, &spec, true)
            .context("in [data.simulate]")?
            .samples);
    }
    if let Some(re) = &sim.replica_exchange {
        if kelvin.is_some() {
            return Err(Error::invalid(
                "data.simulate.replica_exchange",
                "is for systems in reduced units; simulate molecules with Langevin dynamics",
            ));
        }
        return replica_exchange_data(system, sim, re, streams);
    }
    let protocol = Protocol::new(sim.steps, sim.burn_in, sim.stride)?;
    let x0 = initial_positions(system, &sim.init, sim.chains, streams)?;
    let mut state = SamplerState::new(x0, system, streams.chains("data.metropolis", sim.chains))?;
    let thermo = match kelvin {
        Some(t) => ThermodynamicState::kelvin(t)?,
        None => ThermodynamicState::reduced(1.0)?,
    };
    let mut mv = Metropolis::new(sim.step_size)?.with_periods(system.periods());
    let simulation = Simulation {
        energy: system,
        thermo,
        protocol,
    };
    Ok(simulation.run(&mut mv, &mut state, &mut [])?.samples)
}

/// The kT = 1 frames of `sim.chains` parallel-tempering runs (see
/// [`crate::config::ReplicaExchangeConfig`]), frame-major like every simulation's.
fn replica_exchange_data(
    system: &dyn System,
    sim: &SimulateConfig,
    re: &crate::config::ReplicaExchangeConfig,
    streams: &RandomStreams,
) -> Result<Array2<f64>> {
    use boltzflow_core::Move;
    use boltzflow_mcmc::replica_exchange::{Ladder, geometric_ladder};
    re.check(sim)?;
    // Validates steps > burn_in, stride ≥ 1 and a frame at all, as plain chains would.
    Protocol::new(sim.steps, sim.burn_in, sim.stride)?;
    let every = re.exchange_every;
    // (`check` has named a bad ladder already.)
    let temperatures = geometric_ladder(1.0, re.max_temperature, re.replicas)?;
    let x0 = initial_positions(system, &sim.init, sim.chains, streams)?;
    let mut ladder = Ladder::from_start(&x0, system, &temperatures, streams)?;
    let mut moves: Vec<Box<dyn Move>> = temperatures
        .iter()
        .map(|_| {
            Metropolis::new(sim.step_size)
                .map(|m| Box::new(m.with_periods(system.periods())) as Box<dyn Move>)
        })
        .collect::<Result<_>>()?;
    let (rounds, burn, stride) = (sim.steps / every, sim.burn_in / every, sim.stride / every);
    let mut frames: Vec<f64> = Vec::new();
    for round in 1..=rounds {
        ladder
            .round(&mut moves, system, every)
            .with_context(|| format!("in [data.simulate] replica exchange, round {round}"))?;
        if round > burn && (round - burn).is_multiple_of(stride) {
            frames.extend(ladder.states[0].positions.iter());
        }
    }
    let dim = system.dim();
    Ok(Array2::from_shape_vec((frames.len() / dim, dim), frames)
        .expect("whole frames of [chains, dim]"))
}
