//! Throughput of variational-autoregressive-network training, for the side-by-side comparison
//! with PyTorch (`bench/peers/van_torch.py`; bench/README.md, VAN section).
//!
//! Models (issue 8), Z2-symmetric, tanh, batch 1000:
//! - `sk n=20`: MADE, depth 2, width 80 (examples/sk_van.toml);
//! - `ising L=16`: MADE, depth 2, width 512 (n = 256);
//! - `ising L=16 pixelcnn`: masked convolutions, depth 3, 16 channels, kernel 7 × 7
//!   (examples/ising16_van.toml; no peer).
//!
//! A step draws 1000 exact samples site by site, evaluates energies and log q (on s and −s),
//! the score-function gradient and an Adam update.
//!
//! `cargo run --release -p boltzflow-learn --example van_throughput [-- SECONDS]`

use std::time::Instant;

use boltzflow_core::RandomStreams;
use boltzflow_learn::van::config::VanTrainConfig;
use boltzflow_learn::van::{NetworkKind, NetworkSpec, Van, VanBuffers, step_stream, train_step};
use boltzflow_nn::{Activation, Adam};
use boltzflow_systems::SpinSystem;

fn bench(name: &str, system: &str, spec: NetworkSpec, chunk_rows: usize, seconds: f64) {
    let sys = SpinSystem::build(system).unwrap();
    let mut rng = RandomStreams::new(1).stream("init");
    let mut van = Van::new(sys.n(), sys.lattice_side(), &spec, chunk_rows, &mut rng).unwrap();
    let cfg = VanTrainConfig {
        batch_size: 1000,
        anneal: 0.0,
        ..VanTrainConfig::default()
    };
    let macs = van.macs_per_row();
    let mut adam = Adam::new(van.params.len());
    let mut buf = VanBuffers::default();
    let mut step = 0;
    let mut run = || {
        train_step(
            &mut van,
            &mut adam,
            &sys,
            &cfg,
            1.0,
            step,
            &mut step_stream(1, 0, step),
            &mut buf,
        )
        .unwrap();
        step += 1;
    };
    run();
    let t0 = Instant::now();
    let mut k = 0u64;
    while t0.elapsed().as_secs_f64() < seconds {
        run();
        k += 1;
    }
    let rate = k as f64 / t0.elapsed().as_secs_f64();
    // One forward pass to sample, forward and backward (two GEMMs) on s and −s: ≈ 6 passes.
    let gflop = 6.0 * 2.0 * macs as f64 * 1000.0 * 1e-9;
    println!(
        "boltzflow {name:<28} {rate:8.2} steps/s  ({gflop:.2} GFLOP/step, {:.1} GFLOP/s)",
        gflop * rate
    );
}

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    println!("threads {}", rayon::current_num_threads());
    let made = |width| NetworkSpec {
        kind: NetworkKind::Made,
        depth: 2,
        width,
        half_kernel: 1,
        skip: false,
        activation: Activation::Tanh,
        z2: true,
    };
    bench(
        "sk n=20 made 2x80",
        "sk:n=20,seed=1",
        made(80),
        125,
        seconds,
    );
    bench(
        "ising L=16 made 2x512",
        "ising:L=16",
        made(512),
        125,
        seconds,
    );
    let conv = NetworkSpec {
        kind: NetworkKind::Pixelcnn,
        depth: 3,
        width: 16,
        half_kernel: 3,
        skip: true,
        activation: Activation::Tanh,
        z2: true,
    };
    bench(
        "ising L=16 pixelcnn 3x16 k3",
        "ising:L=16",
        conv,
        50,
        seconds,
    );
}
