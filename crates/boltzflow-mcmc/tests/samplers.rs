//! Samplers against exact references. Statistical tolerances are multiples of standard errors
//! computed from independent chains (chain means are independent; frames of one chain are not).

use boltzflow_core::{Energy, Error, RandomStreams, Result, SamplerState, ThermodynamicState};
use boltzflow_mcmc::autocorrelation::integrated_time;
use boltzflow_mcmc::{Baoab, Metropolis, Move, OverdampedLangevin, Protocol, Simulation};
use boltzflow_systems::quadrature::GridQuadrature;
use boltzflow_systems::{System, build};
use ndarray::{Array2, ArrayView2, ArrayViewMut1, ArrayViewMut2};
use rand::RngExt;

/// Chains started uniformly in the system's reference box.
fn uniform_start(s: &dyn System, n: usize, seed: u64) -> Array2<f64> {
    let b = s.reference_box().unwrap();
    let mut rng = RandomStreams::new(seed).stream("init");
    Array2::from_shape_fn((n, s.dim()), |(_, c)| {
        b[c][0] + (b[c][1] - b[c][0]) * rng.random::<f64>()
    })
}

/// Mean over chains of a per-frame observable, with the standard error from the spread of the
/// per-chain means. `values` is `[n_saves, n_chains]`.
fn mean_and_se(values: &Array2<f64>) -> (f64, f64) {
    let chain_means = values.mean_axis(ndarray::Axis(0)).unwrap();
    let n = chain_means.len() as f64;
    let m = chain_means.mean().unwrap();
    let var = chain_means.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

fn run(
    mv: &mut dyn Move,
    system: &dyn System,
    start: Array2<f64>,
    protocol: Protocol,
    seed: u64,
) -> boltzflow_mcmc::SimulationResult {
    let n = start.nrows();
    let mut state =
        SamplerState::new(start, system, RandomStreams::new(seed).chains("mc", n)).unwrap();
    let sim = Simulation {
        energy: system,
        thermo: ThermodynamicState::default(),
        protocol,
    };
    sim.run(mv, &mut state, &mut []).unwrap()
}

#[test]
fn metropolis_mueller_basin_populations_equal_quadrature() {
    // The seed paper's protocol (σ = 0.1, burn-in 6·10⁴, stride 4000) on 2000 chains instead of 10⁴.
    let s = build("mueller").unwrap();
    let q = GridQuadrature::new(s.as_ref(), [[-2.0, 1.5], [-1.0, 2.5]], [1024, 1024], 1.0).unwrap();
    let basins = q.basins();
    let protocol = Protocol::new(100_000, 60_000, 4000).unwrap();
    let n_chains = 2000;
    let res = run(
        &mut Metropolis::new(0.1).unwrap(),
        s.as_ref(),
        uniform_start(s.as_ref(), n_chains, 1),
        protocol,
        1,
    );
    let labels = basins.assign(res.samples.view());
    for b in basins.significant(1e-3) {
        let ind = Array2::from_shape_fn((protocol.n_saves() as usize, n_chains), |(k, c)| {
            f64::from(labels[k * n_chains + c] == Some(b))
        });
        let (p, se) = mean_and_se(&ind);
        let exact = basins.probabilities[b];
        assert!(
            (p - exact).abs() < 3.0 * se,
            "basin at {:?}: sampled {p:.5} ± {se:.5}, exact {exact:.5}",
            basins.minima[b]
        );
    }
}

#[test]
fn langevin_gaussian2d_recovers_mean_and_covariance() {
    let s = build("gaussian2d").unwrap();
    let protocol = Protocol::new(2_000, 500, 50).unwrap();
    let start = uniform_start(s.as_ref(), 1000, 2);
    // BAOAB samples a harmonic potential's configurations exactly for any stable Δt; MALA is exact.
    let mut baoab = Baoab::new(0.5, 1.0, vec![1.0, 1.0]).unwrap();
    let mut mala = OverdampedLangevin::new(0.2, 1.0, true).unwrap();
    for (name, mv) in [("baoab", &mut baoab as &mut dyn Move), ("mala", &mut mala)] {
        let res = run(mv, s.as_ref(), start.clone(), protocol, 3);
        let n_chains = start.nrows();
        let frames = protocol.n_saves() as usize;
        let coord = |c: usize, f: &dyn Fn(f64) -> f64| {
            Array2::from_shape_fn((frames, n_chains), |(k, i)| {
                f(res.samples[[k * n_chains + i, c]])
            })
        };
        for c in 0..2 {
            let (m, se) = mean_and_se(&coord(c, &|v| v));
            assert!(
                (m + 3.0).abs() < 4.0 * se,
                "{name}: mean of x{c} = {m} ± {se}"
            );
            let (v, se) = mean_and_se(&coord(c, &|v| (v + 3.0).powi(2)));
            assert!(
                (v - 1.0).abs() < 4.0 * se,
                "{name}: variance of x{c} = {v} ± {se}"
            );
        }
        let cross = Array2::from_shape_fn((frames, n_chains), |(k, i)| {
            (res.samples[[k * n_chains + i, 0]] + 3.0) * (res.samples[[k * n_chains + i, 1]] + 3.0)
        });
        let (cv, se) = mean_and_se(&cross);
        assert!(cv.abs() < 4.0 * se, "{name}: covariance {cv} ± {se}");
    }
}

#[test]
fn euler_maruyama_bias_matches_its_closed_form() {
    // For E = ½x², overdamped Euler–Maruyama with step μ = Δt/γ samples N(0, 1/(1 − μ/2)).
    let s = build("gaussian2d").unwrap();
    let protocol = Protocol::new(3_000, 500, 25).unwrap();
    let start = uniform_start(s.as_ref(), 1000, 4);
    let res = run(
        &mut OverdampedLangevin::new(0.4, 1.0, false).unwrap(),
        s.as_ref(),
        start,
        protocol,
        5,
    );
    let n = 1000;
    let sq = Array2::from_shape_fn((protocol.n_saves() as usize, n), |(k, i)| {
        (res.samples[[k * n + i, 0]] + 3.0).powi(2)
    });
    let (v, se) = mean_and_se(&sq);
    let exact = 1.0 / (1.0 - 0.2);
    assert!((v - exact).abs() < 4.0 * se, "{v} ± {se} vs {exact}");
}

#[test]
fn baoab_without_friction_conserves_energy() {
    let s = build("double-well").unwrap();
    let start =
        Array2::from_shape_vec((4, 2), vec![-1.5, 0.3, 1.0, -0.5, 0.2, 0.1, -2.0, 1.0]).unwrap();
    let mut mv = Baoab::new(1e-3, 0.0, vec![1.0, 1.0]).unwrap();
    let mut state =
        SamplerState::new(start, s.as_ref(), RandomStreams::new(9).chains("md", 4)).unwrap();
    let thermo = ThermodynamicState::default();
    mv.apply(&mut state, s.as_ref(), &thermo, 1).unwrap();
    let e0 = &state.energies + &mv.kinetic_energy(&state).unwrap();
    mv.apply(&mut state, s.as_ref(), &thermo, 10_000).unwrap();
    let e1 = &state.energies + &mv.kinetic_energy(&state).unwrap();
    let drift = (&e1 - &e0).mapv(f64::abs);
    assert!(drift.iter().all(|d| *d < 1e-4), "{drift}");
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let s = build("mueller").unwrap();
    let start = uniform_start(s.as_ref(), 700, 6);
    let protocol = Protocol::new(300, 100, 100).unwrap();
    let go = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let a = run(
                    &mut Metropolis::new(0.1).unwrap(),
                    s.as_ref(),
                    start.clone(),
                    protocol,
                    7,
                );
                let b = run(
                    &mut Baoab::new(0.001, 1.0, vec![1.0; 2]).unwrap(),
                    s.as_ref(),
                    start.clone(),
                    protocol,
                    7,
                );
                (a.samples, b.samples)
            })
    };
    assert_eq!(go(1), go(3));
}

#[test]
fn metropolis_on_a_periodic_coordinate_stays_in_its_interval() {
    let s = build("beltway-polar").unwrap();
    let start = s
        .exact_sampler()
        .unwrap()
        .sample(500, &mut RandomStreams::new(1).stream("x"))
        .unwrap();
    let protocol = Protocol::new(2000, 1000, 100).unwrap();
    let mut mv = Metropolis::new(0.5).unwrap().with_periods(s.periods());
    let res = run(&mut mv, s.as_ref(), start, protocol, 8);
    assert!(
        res.samples
            .column(1)
            .iter()
            .all(|t| (-std::f64::consts::PI..std::f64::consts::PI).contains(t))
    );
    // The angle stays uniform: P(θ > 0) = ½.
    let n = 500;
    let ind = Array2::from_shape_fn((protocol.n_saves() as usize, n), |(k, i)| {
        f64::from(res.samples[[k * n + i, 1]] > 0.0)
    });
    let (p, se) = mean_and_se(&ind);
    assert!((p - 0.5).abs() < 4.0 * se, "{p} ± {se}");
}

/// An energy that is NaN for x₀ > 1 (a broken force field).
struct NanAbove;
impl Energy for NanAbove {
    fn dim(&self) -> usize {
        1
    }
    fn energy_into(&self, x: ArrayView2<f64>, mut out: ArrayViewMut1<f64>) -> Result<()> {
        out.iter_mut()
            .zip(x.column(0))
            .for_each(|(o, v)| *o = if *v > 1.0 { f64::NAN } else { 0.5 * v * v });
        Ok(())
    }
    fn energy_and_forces_into(
        &self,
        x: ArrayView2<f64>,
        e: ArrayViewMut1<f64>,
        mut f: ArrayViewMut2<f64>,
    ) -> Result<()> {
        self.energy_into(x, e)?;
        f.column_mut(0)
            .iter_mut()
            .zip(x.column(0))
            .for_each(|(o, v)| *o = -v);
        Ok(())
    }
}

#[test]
fn nan_energies_are_reported_with_chain_and_step() {
    let start = Array2::zeros((3, 1));
    let mut state =
        SamplerState::new(start, &NanAbove, RandomStreams::new(1).chains("c", 3)).unwrap();
    let err = Metropolis::new(1.0)
        .unwrap()
        .apply(&mut state, &NanAbove, &ThermodynamicState::default(), 100)
        .unwrap_err();
    match err {
        Error::NonFinite { what, location, .. } => {
            assert_eq!(what, "proposal energy");
            assert!(
                location.starts_with("chain ") && location.contains("step "),
                "{location}"
            );
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn integrated_time_of_metropolis_grows_as_the_step_shrinks() {
    let s = build("gaussian2d").unwrap();
    let start = s
        .exact_sampler()
        .unwrap()
        .sample(64, &mut RandomStreams::new(3).stream("x"))
        .unwrap();
    let tau = |sigma: f64| {
        let res = run(
            &mut Metropolis::new(sigma).unwrap(),
            s.as_ref(),
            start.clone(),
            Protocol::new(4000, 0, 1).unwrap(),
            4,
        );
        let x0 = Array2::from_shape_fn((4000, 64), |(k, c)| res.samples[[k * 64 + c, 0]]);
        integrated_time(x0.view(), 5.0).unwrap()
    };
    let (t_small, t_good) = (tau(0.2), tau(2.0));
    assert!(
        t_small > 5.0 * t_good,
        "τ(0.2) = {t_small}, τ(2.0) = {t_good}"
    );
}

#[test]
fn metropolis_moments_in_umbrella_windows_equal_quadrature_to_1e4() {
    // The precision check of the batched kernel (noise, acceptance, copies): ⟨x⟩, ⟨x²⟩ and ⟨y²⟩
    // in restrained double-well windows against 1-D quadrature (x and y separate), from 512
    // chains × 1900 saved frames per window: standard errors ~2·10⁻⁴.
    use boltzflow_core::Coordinate;
    use boltzflow_mcmc::umbrella::Restrained;
    let sys = build("double-well").unwrap();
    let coord = Coordinate::Projection(vec![1.0, 0.0]);
    let k = 30.0;
    let chains = 512;
    for (w, &c) in [-1.75, -1.0, -0.25, 0.0, 0.5, 1.0, 1.75].iter().enumerate() {
        let biased = Restrained {
            inner: sys.as_ref(),
            coordinate: &coord,
            centre: c,
            k,
        };
        // Midpoint rule on [−4, 4]: the density is negligible at the ends.
        let (mut z, mut m1, mut m2) = (0.0, 0.0, 0.0);
        let n = 200_000;
        for i in 0..n {
            let x = -4.0 + 8.0 * (i as f64 + 0.5) / n as f64;
            let p = (-(x.powi(4) - 6.0 * x * x + x + 0.5 * k * (x - c).powi(2))).exp();
            z += p;
            m1 += p * x;
            m2 += p * x * x;
        }
        let x0 = Array2::from_shape_fn((chains, 2), |(_, j)| if j == 0 { c } else { 0.0 });
        let rngs = RandomStreams::new(5).chains(&format!("w{w}"), chains);
        let mut state = SamplerState::new(x0, &biased, rngs).unwrap();
        let sim = Simulation {
            energy: &biased,
            thermo: ThermodynamicState::default(),
            protocol: Protocol::new(40_000, 2000, 20).unwrap(),
        };
        let res = sim
            .run(&mut Metropolis::new(0.3).unwrap(), &mut state, &mut [])
            .unwrap();
        let saves = res.samples.nrows() / chains;
        let frame = |f: &dyn Fn(f64, f64) -> f64| {
            Array2::from_shape_fn((saves, chains), |(s, ch)| {
                let r = res.samples.row(s * chains + ch);
                f(r[0], r[1])
            })
        };
        for (name, values, exact) in [
            ("<x>", frame(&|x, _| x), m1 / z),
            ("<x²>", frame(&|x, _| x * x), m2 / z),
            ("<y²>", frame(&|_, y| y * y), 1.0),
        ] {
            let (m, se) = mean_and_se(&values);
            assert!(
                (m - exact).abs() < 4.0 * se && se < 3e-3,
                "window at {c}: {name} = {m:.5} ± {se:.5}, exact {exact:.5}"
            );
        }
    }
}

/// ΔF(x > 0 − x < 0) of `double-well` at kT = 1 by 1-D quadrature (the y term separates).
fn double_well_delta_f() -> f64 {
    let (mut left, mut right) = (0.0, 0.0);
    let h = 1e-4;
    for i in 0..100_000 {
        let x = -5.0 + (i as f64 + 0.5) * h;
        let p = (-(x.powi(4) - 6.0 * x * x + x)).exp();
        if x < 0.0 { left += p } else { right += p }
    }
    -(right / left).ln()
}

#[test]
fn parallel_tempering_crosses_the_double_well_barrier_plain_metropolis_does_not() {
    use boltzflow_mcmc::replica_exchange::{Ladder, geometric_ladder};
    // Every chain starts in the left well (barrier ≈ 10.7 kT at kT = 1). 64 independent runs of
    // a 6-temperature ladder to kT = 8; the estimate is the mean over runs of the fraction of the
    // kT = 1 frames in the right well, with its standard error from the spread over runs.
    let s = build("double-well").unwrap();
    let runs = 64;
    let temps = geometric_ladder(1.0, 8.0, 6).unwrap();
    let streams = RandomStreams::new(11);
    let start = Array2::from_shape_fn((runs, 2), |(_, c)| if c == 0 { -1.7 } else { 0.0 });
    let mut ladder = Ladder::from_start(&start, s.as_ref(), &temps, &streams).unwrap();
    let mut moves: Vec<Box<dyn Move>> = temps
        .iter()
        .map(|&t| Box::new(Metropolis::new(0.3 * t.sqrt()).unwrap()) as Box<dyn Move>)
        .collect();
    let rounds = 4000;
    let mut right = vec![0.0; runs];
    for round in 0..rounds {
        ladder.round(&mut moves, s.as_ref(), 5).unwrap();
        if round >= 500 {
            for (r, row) in ladder.states[0].positions.rows().into_iter().enumerate() {
                right[r] += f64::from(u8::from(row[0] > 0.0));
            }
        }
    }
    let n = (rounds - 500) as f64;
    let p: Vec<f64> = right.iter().map(|v| v / n).collect();
    let mean = p.iter().sum::<f64>() / runs as f64;
    let se =
        (p.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / ((runs - 1) * runs) as f64).sqrt();
    let exact = double_well_delta_f();
    let p_exact = 1.0 / (1.0 + exact.exp());
    eprintln!(
        "PT: right-well population {mean:.4} ± {se:.4}, exact {p_exact:.4}; round trips {}",
        ladder.stats().total_round_trips()
    );
    assert!((exact - 3.380).abs() < 0.01, "quadrature ΔF {exact}");
    assert!(
        (mean - p_exact).abs() < 4.0 * se,
        "right-well population {mean} ± {se} vs exact {p_exact}"
    );
    assert!(ladder.stats().total_round_trips() > runs as u64);

    // The same kT = 1 chains without swaps rarely leave the left well: their time-averaged
    // right-well population misses the equilibrium one by many of the tempered run's errors.
    let mut plain =
        SamplerState::new(start, s.as_ref(), streams.chains("replica.t0", runs)).unwrap();
    let mut mv = Metropolis::new(0.3).unwrap();
    let mut right_plain = 0.0;
    for round in 0..rounds {
        mv.apply(&mut plain, s.as_ref(), &ThermodynamicState::default(), 5)
            .unwrap();
        if round >= 500 {
            right_plain += plain
                .positions
                .column(0)
                .iter()
                .filter(|&&x| x > 0.0)
                .count() as f64;
        }
    }
    let p_plain = right_plain / (n * runs as f64);
    eprintln!("plain Metropolis: right-well population {p_plain:.4}");
    assert!(p_exact - p_plain > 10.0 * se, "plain Metropolis {p_plain}");
}
