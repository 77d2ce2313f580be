//! `[data.simulate.replica_exchange]`: training data from parallel tempering reach the
//! Boltzmann ratio of states that plain chains, stuck where they start, do not.

use boltzflow_core::RandomStreams;
use boltzflow_learn::config::{ReplicaExchangeConfig, SimulateConfig};
use boltzflow_learn::run::simulate_data;

/// P(x₁ > 0) of exp(−(x₁⁴ − 6x₁² + x₁)) by the trapezoidal rule (x₂ is independent).
fn right_well_probability() -> f64 {
    let (n, lo, hi) = (200_000, -5.0, 5.0);
    let h: f64 = (hi - lo) / n as f64;
    let (mut right, mut all) = (0.0, 0.0);
    for i in 0..=n {
        let x: f64 = lo + i as f64 * h;
        let w = if i == 0 || i == n { 0.5 } else { 1.0 } * (-(x.powi(4) - 6.0 * x * x + x)).exp();
        all += w;
        if x > 0.0 {
            right += w;
        }
    }
    right / all
}

fn config(replica_exchange: Option<ReplicaExchangeConfig>) -> SimulateConfig {
    let text = "chains = 32\nsteps = 20000\nburn_in = 2000\nstride = 100\nstep_size = 0.5\n";
    SimulateConfig {
        replica_exchange,
        ..toml::from_str(text).unwrap()
    }
}

#[test]
fn replica_exchange_data_hold_both_wells_in_the_boltzmann_ratio() {
    let system = boltzflow_systems::build("double-well").unwrap();
    let streams = RandomStreams::new(4);
    let chains = 32;
    let fraction_right = |x: &ndarray::Array2<f64>| -> (f64, f64) {
        // Frame-major: row r belongs to chain r % chains. Mean and SE over chains.
        let per_chain: Vec<f64> = (0..chains)
            .map(|c| {
                let rows: Vec<f64> = x
                    .rows()
                    .into_iter()
                    .skip(c)
                    .step_by(chains)
                    .map(|r| r[0])
                    .collect();
                rows.iter().filter(|&&v| v > 0.0).count() as f64 / rows.len() as f64
            })
            .collect();
        let m = per_chain.iter().sum::<f64>() / chains as f64;
        let var = per_chain.iter().map(|p| (p - m).powi(2)).sum::<f64>() / (chains - 1) as f64;
        (m, (var / chains as f64).sqrt())
    };
    let exact = right_well_probability();
    let pt = ReplicaExchangeConfig {
        replicas: 6,
        max_temperature: 12.0,
        exchange_every: 10,
    };
    let x = simulate_data(system.as_ref(), &config(Some(pt)), None, &streams).unwrap();
    assert_eq!(x.dim(), (180 * chains, 2));
    let (p, se) = fraction_right(&x);
    assert!(
        (p - exact).abs() < 4.0 * se.max(1e-3),
        "replica exchange: P(right) {p} ± {se}, quadrature {exact}"
    );
    // Plain Metropolis chains from the left well rarely cross: a third of the ratio.
    let plain = simulate_data(system.as_ref(), &config(None), None, &streams).unwrap();
    let (p0, _) = fraction_right(&plain);
    assert!(
        p0 < 0.5 * exact,
        "plain chains crossed: {p0} against {exact}"
    );

    // Settings that cannot work are named.
    let bad = ReplicaExchangeConfig {
        replicas: 6,
        max_temperature: 12.0,
        exchange_every: 7,
    };
    let e = simulate_data(system.as_ref(), &config(Some(bad)), None, &streams).unwrap_err();
    assert!(e.to_string().contains("exchange_every"), "{e}");
    let cold = ReplicaExchangeConfig {
        replicas: 6,
        max_temperature: 0.5,
        exchange_every: 10,
    };
    let e = simulate_data(system.as_ref(), &config(Some(cold)), None, &streams).unwrap_err();
    assert!(e.to_string().contains("max_temperature"), "{e}");
}
