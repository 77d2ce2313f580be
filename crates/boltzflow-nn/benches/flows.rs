//! Criterion benchmarks of the engine alone: a RealNVP forward + backward pass (the work of one
//! parallel chunk of a training step) at the two sizes of the issue-4 comparison.
//! End-to-end steps with energies: `cargo run --release -p boltzflow-learn --example bg_throughput`.
#![allow(missing_docs)]

use boltzflow_core::RandomStreams;
use boltzflow_nn::flows::{Coupling, Transformer};
use boltzflow_nn::{Activation, Direction, FlowWorkspace, ParamLayout, SequentialFlow};
use criterion::{Criterion, criterion_group, criterion_main};

fn realnvp(dim: usize, hidden: usize) -> (SequentialFlow<f32>, Vec<f32>) {
    let mut layout = ParamLayout::new();
    let mut flow = SequentialFlow::new(dim);
    let first: Vec<usize> = (0..dim / 2).collect();
    let second: Vec<usize> = (dim / 2..dim).collect();
    for i in 0..8 {
        let t = if i % 2 == 0 { &second } else { &first };
        flow.push(Coupling::new(
            &mut layout,
            &format!("{i}"),
            dim,
            t,
            &[hidden, hidden],
            Activation::Tanh,
            Transformer::Affine { scale_bound: 2.0 },
        ));
    }
    let params: Vec<f32> = (0..layout.len())
        .map(|i| 0.01 * (i as f32 * 0.618).sin())
        .collect();
    (flow, params)
}

fn bench(c: &mut Criterion) {
    for (name, dim, hidden) in [("dimer-76d-2x256", 76, 256), ("mueller-2d-2x64", 2, 64)] {
        let (flow, params) = realnvp(dim, hidden);
        let rows = 256;
        let mut rng = RandomStreams::new(1).stream("z");
        let z: Vec<f32> = (0..rows * dim)
            .map(|_| {
                rand_distr::Distribution::<f64>::sample(&rand_distr::StandardNormal, &mut rng)
                    as f32
            })
            .collect();
        let mut ws = FlowWorkspace::new();
        let mut grads = vec![0.0f32; params.len()];
        let gout = vec![1e-3f32; rows * dim];
        let gld = vec![-1e-3f32; rows];
        c.bench_function(&format!("realnvp fwd+bwd {name}, 256 rows"), |b| {
            b.iter(|| {
                flow.run(&params, &z, rows, Direction::Forward, &mut ws);
                flow.backward(&params, &mut grads, &mut ws, &gout, &gld);
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
