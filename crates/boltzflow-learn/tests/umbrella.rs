//! Umbrella sampling with the project's own Metropolis sampler, combined by MBAR, reproduces the
//! exact (quadrature) free-energy profile of the double well across its 10 kT barrier — the
//! method that makes the dimer-bath reference fixture (examples/dimer_umbrella.rs).

use boltzflow_core::{Coordinate, RandomStreams, SamplerState, ThermodynamicState};
use boltzflow_learn::reweight::{delta_f, profile, profile_rmse, uniform_edges};
use boltzflow_mcmc::umbrella::{Restrained, mbar};
use boltzflow_mcmc::{Metropolis, Protocol, Simulation};
use boltzflow_systems::quadrature::GridQuadrature;
use ndarray::Array2;

#[test]
fn umbrella_sampling_with_mbar_matches_quadrature_on_the_double_well() {
    let sys = boltzflow_systems::build("double-well").unwrap();
    let coord = Coordinate::Projection(vec![1.0, 0.0]);
    let centres: Vec<f64> = (0..21).map(|i| -2.5 + 0.25 * i as f64).collect();
    let k = 30.0;
    let chains = 32;
    let streams = RandomStreams::new(11);
    let mut values = Vec::new();
    for (w, &c) in centres.iter().enumerate() {
        let biased = Restrained {
            inner: sys.as_ref(),
            coordinate: &coord,
            centre: c,
            k,
        };
        let x0 = Array2::from_shape_fn((chains, 2), |(_, j)| if j == 0 { c } else { 0.0 });
        let mut state =
            SamplerState::new(x0, &biased, streams.chains(&format!("window.{w}"), chains)).unwrap();
        let sim = Simulation {
            energy: &biased,
            thermo: ThermodynamicState::reduced(1.0).unwrap(),
            protocol: Protocol::new(6000, 1000, 50).unwrap(),
        };
        let res = sim
            .run(&mut Metropolis::new(0.3).unwrap(), &mut state, &mut [])
            .unwrap();
        values.push(coord.values(&res.samples));
    }
    let m = mbar(
        &values,
        |i, s| 0.5 * k * (s - centres[i]).powi(2),
        1e-9,
        20_000,
    )
    .unwrap();
    let s: Vec<f64> = values.iter().flatten().copied().collect();
    let edges = uniform_edges(-2.5, 2.5, 40);
    let mut rng = streams.stream("boot");
    let prof = profile(&s, &m.log_weights, &edges, 0, &mut rng).unwrap();
    let quad =
        GridQuadrature::new(sys.as_ref(), [[-4.0, 4.0], [-9.0, 9.0]], [800, 400], 1.0).unwrap();
    let exact = quad.profile([1.0, 0.0], &edges).unwrap();
    let rmse = profile_rmse(
        &prof.free_energy,
        &exact.free_energy,
        &exact.probabilities,
        1e-6,
    );
    let state: Vec<Option<bool>> = s.iter().map(|&v| Some(v >= 0.0)).collect();
    let df = delta_f(&m.log_weights, &state, 0, &mut rng).unwrap();
    let pb = quad.threshold_probability([1.0, 0.0], 0.0);
    let df_exact = -(pb / (1.0 - pb)).ln();
    println!(
        "MBAR ({} iterations): profile RMSE {rmse:.4} kT over {} bins (10 kT barrier), ΔF {:.4} vs exact {df_exact:.4}",
        m.iterations,
        edges.len() - 1,
        df.value
    );
    assert!(rmse < 0.1, "profile RMSE {rmse}");
    assert!(
        (df.value - df_exact).abs() < 0.05,
        "ΔF {} vs {df_exact}",
        df.value
    );
}
