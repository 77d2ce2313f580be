//! Metropolis trial throughput on `mueller` (the seed paper's protocol, shortened) and its parts:
//! the energy alone (four exponentials per trial: the machine's limit for this kernel), normal
//! variates, and `dimer-bath` energy + forces.

use boltzflow_core::{Move, RandomStreams, SamplerState, ThermodynamicState};
use boltzflow_mcmc::Metropolis;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ndarray::{Array1, Array2};
use rand_distr::{Distribution, StandardNormal};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let mueller = boltzflow_systems::build("mueller").unwrap();
    let n_chains = 10_000;
    let steps = 20;
    let mut g = c.benchmark_group("mueller");
    g.throughput(Throughput::Elements(n_chains as u64 * steps));
    g.sample_size(20);
    let mut rng = RandomStreams::new(1).stream("x");
    let x0 = Array2::from_shape_fn((n_chains, 2), |_| {
        let z: f64 = StandardNormal.sample(&mut rng);
        0.3 * z
    });
    let mut state = SamplerState::new(
        x0.clone(),
        mueller.as_ref(),
        RandomStreams::new(1).chains("mc", n_chains),
    )
    .unwrap();
    let mut mv = Metropolis::new(0.1).unwrap();
    let thermo = ThermodynamicState::default();
    g.bench_function("metropolis_trials", |b| {
        b.iter(|| {
            mv.apply(&mut state, mueller.as_ref(), &thermo, steps)
                .unwrap()
        })
    });
    // The energy alone on the same number of rows, serial blocks of 256 as the sampler uses them.
    let mut e = Array1::zeros(256);
    let xs = x0.slice(ndarray::s![..256, ..]).to_owned();
    g.throughput(Throughput::Elements(256));
    g.bench_function("energy_256_rows", |b| {
        b.iter(|| {
            mueller
                .energy_into(black_box(xs.view()), e.view_mut())
                .unwrap()
        })
    });
    let mut r = RandomStreams::new(2).stream("n");
    g.throughput(Throughput::Elements(1));
    g.bench_function("standard_normal", |b| {
        b.iter(|| {
            let z: f64 = StandardNormal.sample(&mut r);
            black_box(z)
        })
    });
    g.finish();

    let dimer = boltzflow_systems::build("dimer-bath").unwrap();
    let sys = boltzflow_systems::DimerBath::default();
    let n = 1024;
    let x = Array2::from_shape_fn((n, 76), |(_, k)| sys.lattice_configuration(1.0)[k] * 0.95);
    let mut g = c.benchmark_group("dimer-bath");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("energy_and_forces_1024", |b| {
        b.iter(|| dimer.energy_and_forces(black_box(x.view())).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
