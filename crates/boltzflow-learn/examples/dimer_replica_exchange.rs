//! The second, independent dimer-bath reference (issue 18, item 6): ΔF(open − closed) and the
//! free-energy profile of the dimer distance from parallel tempering, without any bias along the
//! distance. The first reference (`dimer_umbrella`) restrains the distance in 41 windows and
//! combines them by MBAR; this one heats the whole system instead, so the two share only the
//! energy function and the Metropolis move.
//!
//! Protocol: R independent runs, each a ladder of K temperatures geometric from kT = 1 to
//! `T_MAX` (at the top the 15.6 kT dimer barrier is a few kT); at every temperature Metropolis
//! moves of all coordinates with σ = 0.015, then swaps between neighbouring temperatures
//! (even and odd pairs alternating). Half the runs start closed (d = 1), half open (d = 2).
//! Estimates:
//! * ΔF from the kT = 1 frames alone (`delta_f_open_closed`), with its standard error from
//!   the spread over 16 groups of runs;
//! * the profile on [0.5, 2.5] and ΔF again from every temperature's frames, combined by MBAR
//!   over the temperatures (bias (β_k − 1)·E) — the barrier region, never visited at kT = 1,
//!   comes from the hotter replicas.
//!
//! Writes `scripts/fixtures/dimer/replica_exchange_reference.json`.
//!
//! `cargo run --release -p boltzflow-learn --example dimer_replica_exchange`
//! (environment overrides for exploration: PT_RUNS, PT_TEMPS, PT_TMAX, PT_ROUNDS, PT_STEPS, PT_SEED;
//! PT_OUT writes the reference elsewhere; PT_FRAMES_OUT=FILE.npy also writes the kT = 1
//! configurations every PT_FRAMES_EVERY rounds after the burn-in, equilibrated starts or
//! training data for a generator)

use std::time::Instant;

use boltzflow_core::{Move, RandomStreams};
use boltzflow_learn::reweight::{profile, profile_rmse, shift_to_minimum, uniform_edges};
use boltzflow_mcmc::Metropolis;
use boltzflow_mcmc::replica_exchange::{Ladder, geometric_ladder};
use boltzflow_mcmc::umbrella::mbar;
use boltzflow_systems::dimer::DimerBath;
use ndarray::Array2;

const GROUPS: usize = 16;
const SEED: u64 = 2027;
/// Metropolis σ at every temperature: the r⁻¹² walls, not the temperature, limit the step.
const STEP: f64 = 0.015;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// ΔF(open − closed) = −ln(p_open / p_closed) from counts.
fn delta_f(open: f64, closed: f64) -> f64 {
    -(open / closed).ln()
}

fn mean_se(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

/// Dimer distance of one configuration (particles 0 and 1, x,y interleaved).
fn distance(x: &[f64]) -> f64 {
    (x[2] - x[0]).hypot(x[3] - x[1])
}

/// MBAR over the temperatures of the frames of `runs`: ΔF and the profile at kT = 1.
fn mbar_estimate(
    frames: &[Vec<(usize, f64, f64)>],
    betas: &[f64],
    runs: &[usize],
    edges: &[f64],
) -> (f64, Vec<f64>, Vec<f64>) {
    // frames[k] = (run, energy, distance) at temperature k.
    let sel = |k: usize| frames[k].iter().filter(|f| runs.contains(&f.0));
    let energies: Vec<Vec<f64>> = (0..betas.len())
        .map(|k| sel(k).map(|f| f.1).collect())
        .collect();
    let d: Vec<f64> = (0..betas.len()).flat_map(|k| sel(k).map(|f| f.2)).collect();
    // The bias (β_k − 1)(E − Ē): the shift by the mean energy only moves each f_k by a constant
    // and keeps the numbers the solver sees small.
    let n: f64 = energies.iter().map(|e| e.len() as f64).sum();
    let e_mean = energies.iter().flatten().sum::<f64>() / n;
    let m = mbar(
        &energies,
        |k, e| (betas[k] - 1.0) * (e - e_mean),
        1e-7,
        10_000,
    )
    .expect("MBAR over the temperatures converges");
    let mut rng = RandomStreams::new(0).stream("unused");
    let p = profile(&d, &m.log_weights, edges, 0, &mut rng).expect("finite weights");
    let w = boltzflow_learn::reweight::normalised_weights(&m.log_weights).unwrap();
    let (mut open, mut closed) = (0.0, 0.0);
    for (wi, di) in w.iter().zip(&d) {
        if *di >= 1.5 {
            open += wi;
        } else {
            closed += wi;
        }
    }
    (delta_f(open, closed), p.free_energy, p.probabilities)
}

fn main() {
    let t0 = Instant::now();
    let runs: usize = env("PT_RUNS", 64);
    let k: usize = env("PT_TEMPS", 12);
    let t_max: f64 = env("PT_TMAX", 6.0);
    let rounds: u64 = env("PT_ROUNDS", 40_000);
    let steps: u64 = env("PT_STEPS", 20);
    let burn_in = rounds / 10;
    let save_every = 4;
    let dimer = DimerBath::default();
    let temps = geometric_ladder(1.0, t_max, k).unwrap();
    let betas: Vec<f64> = temps.iter().map(|t| 1.0 / t).collect();
    let seed: u64 = env("PT_SEED", SEED);
    let streams = RandomStreams::new(seed);
    let closed = dimer.lattice_configuration(1.0);
    let open = dimer.lattice_configuration(2.0);
    let x0 = Array2::from_shape_fn((runs, closed.len()), |(r, j)| {
        if r % 2 == 0 { closed[j] } else { open[j] }
    });
    let mut ladder = Ladder::from_start(&x0, &dimer, &temps, &streams).unwrap();
    let mut moves: Vec<Box<dyn Move>> = temps
        .iter()
        .map(|_| Box::new(Metropolis::new(STEP).unwrap()) as Box<dyn Move>)
        .collect();
    // frames[k]: (run, energy, distance) of every saved frame at temperature k.
    let mut frames: Vec<Vec<(usize, f64, f64)>> = vec![Vec::new(); k];
    let mut open_count = vec![0.0; runs];
    let mut total_count = vec![0.0; runs];
    // Changes of state (open ↔ closed) of the kT = 1 configuration between saved frames: how
    // often the ladder brings a freshly crossed configuration down.
    let mut last_open: Vec<Option<bool>> = vec![None; runs];
    let mut state_changes = 0u64;
    let frames_out: Option<String> = std::env::var("PT_FRAMES_OUT").ok();
    let frames_every: u64 = env("PT_FRAMES_EVERY", 250);
    let mut configurations: Vec<f64> = Vec::new();
    for round in 0..rounds {
        ladder.round(&mut moves, &dimer, steps).unwrap();
        if frames_out.is_some()
            && round >= burn_in
            && (round - burn_in).is_multiple_of(frames_every)
        {
            configurations.extend(ladder.states[0].positions.iter());
        }
        if round >= burn_in && round % save_every == 0 {
            for (i, s) in ladder.states.iter().enumerate() {
                for (r, row) in s.positions.rows().into_iter().enumerate() {
                    let d = distance(row.as_slice().unwrap());
                    frames[i].push((r, s.energies[r], d));
                    if i == 0 {
                        total_count[r] += 1.0;
                        open_count[r] += f64::from(u8::from(d >= 1.5));
                        if last_open[r].is_some_and(|o| o != (d >= 1.5)) {
                            state_changes += 1;
                        }
                        last_open[r] = Some(d >= 1.5);
                    }
                }
            }
        }
        if (round + 1) % (rounds / 10).max(1) == 0 {
            let st = ladder.stats();
            eprintln!(
                "round {:>6}: round trips {}, kT = 1 state changes {state_changes}, swap acceptance {:?}, move acceptance T0 {:.2} Tmax {:.2} ({:.0} s)",
                round + 1,
                st.total_round_trips(),
                st.swaps
                    .iter()
                    .map(|s| (s.acceptance() * 100.0).round() / 100.0)
                    .collect::<Vec<_>>(),
                st.moves[0].acceptance(),
                st.moves[k - 1].acceptance(),
                t0.elapsed().as_secs_f64()
            );
        }
    }
    // ΔF at kT = 1 alone, error from groups of runs.
    let group_of = |g: usize| (0..runs).filter(move |r| r % GROUPS == g);
    let df_groups: Vec<f64> = (0..GROUPS)
        .map(|g| {
            let o: f64 = group_of(g).map(|r| open_count[r]).sum();
            let t: f64 = group_of(g).map(|r| total_count[r]).sum();
            delta_f(o, t - o)
        })
        .collect();
    let o_all: f64 = open_count.iter().sum();
    let t_all: f64 = total_count.iter().sum();
    let df_t1 = delta_f(o_all, t_all - o_all);
    let (_, df_t1_se) = mean_se(&df_groups);
    // MBAR over temperatures, all runs and per group.
    let edges = uniform_edges(0.5, 2.5, 40);
    let all_runs: Vec<usize> = (0..runs).collect();
    let (df_mbar, prof, prob) = mbar_estimate(&frames, &betas, &all_runs, &edges);
    let prof = shift_to_minimum(&prof);
    let groups: Vec<(f64, Vec<f64>)> = (0..GROUPS)
        .map(|g| {
            let rs: Vec<usize> = group_of(g).collect();
            let (df, p, _) = mbar_estimate(&frames, &betas, &rs, &edges);
            (df, shift_to_minimum(&p))
        })
        .collect();
    let (_, df_mbar_se) = mean_se(&groups.iter().map(|g| g.0).collect::<Vec<_>>());
    let prof_err: Vec<f64> = (0..prof.len())
        .map(|b| {
            let v: Vec<f64> = groups.iter().map(|g| g.1[b]).collect();
            if v.iter().all(|x| x.is_finite()) {
                mean_se(&v).1
            } else {
                f64::NAN
            }
        })
        .collect();
    // Against the umbrella reference.
    let umb: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("scripts/fixtures/dimer/umbrella_reference.json")
            .expect("run from the repository root"),
    )
    .unwrap();
    let umb_f: Vec<f64> = umb["free_energy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap_or(f64::NAN))
        .collect();
    // Over the bins above 10⁻³ probability, as `evaluate` scores a generator.
    let rmse = profile_rmse(&prof, &umb_f, &prob, 1e-3);
    let umb_df = umb["delta_f_open_closed"].as_f64().unwrap();
    let umb_se = umb["delta_f_error"].as_f64().unwrap();
    let st = ladder.stats();
    let centres: Vec<f64> = edges.windows(2).map(|e| 0.5 * (e[0] + e[1])).collect();
    let json = serde_json::json!({
        "description": "dimer-bath (slope −0.5, 36 solvent): ΔF(open − closed), open = d ≥ 1.5, and the profile of the dimer distance from parallel tempering (no bias along d); the kT = 1 replicas alone and MBAR over all temperatures",
        "produced_by": "cargo run --release -p boltzflow-learn --example dimer_replica_exchange",
        "protocol": {
            "runs": runs, "temperatures": temps, "rounds": rounds, "burn_in_rounds": burn_in,
            "metropolis_steps_per_round": steps, "metropolis_step_size": STEP,
            "frame_every_rounds": save_every, "seed": seed, "error_groups": GROUPS,
        },
        "delta_f_open_closed": df_t1,
        "delta_f_error": df_t1_se,
        "delta_f_mbar": df_mbar,
        "delta_f_mbar_error": df_mbar_se,
        "edges": edges,
        "centres": centres,
        "free_energy": prof,
        "free_energy_error": prof_err,
        "probability": prob,
        "profile_rmse_vs_umbrella": rmse,
        "swap_acceptance": st.swaps.iter().map(|s| s.acceptance()).collect::<Vec<_>>(),
        "move_acceptance": st.moves.iter().map(|s| s.acceptance()).collect::<Vec<_>>(),
        "round_trips": st.total_round_trips(),
        "state_changes_at_kt1": state_changes,
        "seconds": t0.elapsed().as_secs_f64(),
    });
    if let Some(out) = &frames_out {
        let n = configurations.len() / closed.len();
        let a = Array2::from_shape_vec((n, closed.len()), configurations).unwrap();
        boltzflow_io::write_npy_2d(std::path::Path::new(out), a.view()).unwrap();
        eprintln!("{n} kT = 1 configurations in {out}");
    }
    let path = std::env::var("PT_OUT")
        .unwrap_or_else(|_| "scripts/fixtures/dimer/replica_exchange_reference.json".into());
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    println!(
        "ΔF(open − closed): kT = 1 replicas {df_t1:.3} ± {df_t1_se:.3}, MBAR over temperatures {df_mbar:.3} ± {df_mbar_se:.3}; umbrella {umb_df:.3} ± {umb_se:.3} (difference {:.1} combined SE); profile RMSE vs umbrella {rmse:.3} kT; {} round trips; {:.0} s",
        (df_t1 - umb_df) / (df_t1_se.powi(2) + umb_se.powi(2)).sqrt(),
        st.total_round_trips(),
        t0.elapsed().as_secs_f64()
    );
}
