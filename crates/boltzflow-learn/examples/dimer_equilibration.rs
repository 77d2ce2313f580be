//! Is the dimer bath equilibrated by the Metropolis chains that make the generator's data and
//! the umbrella reference? (issue 18, item 6)
//!
//! Both start from the lattice configuration (`DimerBath::lattice_configuration`) and move all
//! 76 coordinates at once with σ = 0.02 for 2·10⁴ (data) or 5·10⁴ (umbrella windows) steps.
//! This example runs such chains for 2·10⁵ steps in each state and prints the mean solvent
//! repulsion and dimer energy in successive windows of steps, next to the same averages at
//! kT = 1 from parallel tempering (whose hot replicas melt the lattice). A drift, or a gap to
//! the tempered value, means the plain chains still remember their start.
//!
//! `cargo run --release -p boltzflow-learn --example dimer_equilibration`

use boltzflow_core::{Move, RandomStreams, SamplerState, ThermodynamicState};
use boltzflow_mcmc::Metropolis;
use boltzflow_mcmc::replica_exchange::{Ladder, geometric_ladder};
use boltzflow_systems::dimer::DimerBath;
use ndarray::{Array2, ArrayView2};

const CHAINS: usize = 200;
const WINDOW: u64 = 10_000;
const WINDOWS: u64 = 20;

/// Per state (closed, open): mean repulsion and dimer energy of `x` with standard errors over
/// rows (independent chains).
fn state_means(dimer: &DimerBath, x: ArrayView2<f64>) -> [(f64, f64, f64, usize); 2] {
    let mut acc = [(0.0, 0.0, 0.0, 0usize); 2];
    for row in x.rows() {
        let r = row.as_slice().unwrap();
        let d = (r[2] - r[0]).hypot(r[3] - r[1]);
        let t = dimer.terms(r);
        let a = &mut acc[usize::from(d >= 1.5)];
        a.0 += t.repulsion;
        a.1 += t.repulsion * t.repulsion;
        a.2 += t.dimer;
        a.3 += 1;
    }
    acc.map(|(s, s2, sd, n)| {
        let n_f = n.max(1) as f64;
        let m = s / n_f;
        let se = ((s2 / n_f - m * m).max(0.0) / n_f).sqrt();
        (m, se, sd / n_f, n)
    })
}

fn main() {
    let dimer = DimerBath::default();
    let streams = RandomStreams::new(7);
    let closed = dimer.lattice_configuration(1.0);
    let open = dimer.lattice_configuration(2.0);
    let x0 = Array2::from_shape_fn((2 * CHAINS, closed.len()), |(r, j)| {
        if r < CHAINS { closed[j] } else { open[j] }
    });
    let mut state =
        SamplerState::new(x0.clone(), &dimer, streams.chains("plain", 2 * CHAINS)).unwrap();
    let mut mv = Metropolis::new(0.02).unwrap();
    let thermo = ThermodynamicState::reduced(1.0).unwrap();
    println!("plain Metropolis from the lattice, σ = 0.02, {CHAINS} chains per state:");
    println!("  steps            closed: E_rep (± se)   E_dimer | open: E_rep (± se)   E_dimer");
    for w in 0..WINDOWS {
        // Averages over 10 snapshots in the window.
        let mut sums = [[0.0; 3]; 2];
        for _ in 0..10 {
            mv.apply(&mut state, &dimer, &thermo, WINDOW / 10).unwrap();
            for (k, (m, se, ed, _)) in state_means(&dimer, state.positions.view())
                .iter()
                .enumerate()
            {
                sums[k][0] += m / 10.0;
                sums[k][1] += se / 10.0;
                sums[k][2] += ed / 10.0;
            }
        }
        println!(
            "  {:>6}–{:<6}   {:>8.2} ± {:.2}   {:>7.2}   | {:>8.2} ± {:.2}   {:>7.2}",
            w * WINDOW,
            (w + 1) * WINDOW,
            sums[0][0],
            sums[0][1],
            sums[0][2],
            sums[1][0],
            sums[1][1],
            sums[1][2]
        );
    }
    // Parallel tempering as in `dimer_replica_exchange`, kT = 1 frames after burn-in.
    let runs = 32;
    let temps = geometric_ladder(1.0, 6.0, 12).unwrap();
    let start = Array2::from_shape_fn((runs, closed.len()), |(r, j)| {
        if r % 2 == 0 { closed[j] } else { open[j] }
    });
    let mut ladder = Ladder::from_start(&start, &dimer, &temps, &streams).unwrap();
    let mut moves: Vec<Box<dyn Move>> = temps
        .iter()
        .map(|_| Box::new(Metropolis::new(0.015).unwrap()) as Box<dyn Move>)
        .collect();
    let mut frames: Vec<f64> = Vec::new();
    let (rounds, burn_in) = (10_000, 2_000);
    for round in 0..rounds {
        ladder.round(&mut moves, &dimer, 20).unwrap();
        if round >= burn_in && round % 10 == 0 {
            frames.extend(ladder.states[0].positions.iter());
        }
    }
    let x = Array2::from_shape_vec((frames.len() / closed.len(), closed.len()), frames).unwrap();
    let m = state_means(&dimer, x.view());
    println!(
        "parallel tempering (kT 1–6, 12 temperatures, {runs} runs, {rounds} rounds of 20 steps), kT = 1 frames:\n  closed: E_rep {:.2} ± {:.2}, E_dimer {:.2} ({} frames) | open: E_rep {:.2} ± {:.2}, E_dimer {:.2} ({} frames)",
        m[0].0, m[0].1, m[0].2, m[0].3, m[1].0, m[1].1, m[1].2, m[1].3
    );
    println!("(PT errors treat frames as independent: a lower bound.)");
}
