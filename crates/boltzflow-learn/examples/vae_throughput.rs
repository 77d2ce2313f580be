//! Throughput of VAE training and VAE Monte Carlo, for the side-by-side comparison with PyTorch
//! and JAX (`bench/peers/vae_torch.py`, `bench/peers/vae_jax.py`; bench/README.md, VAE section).
//!
//! The paper's Müller model (Monroe & Shen 2022): d = 2, latent dim 1, encoder 2 → 50 → 50 → 2
//! (ReLU), decoder 1 → 50 → 50 → d or 2d (tanh), flow prior (4 spline couplings, 32 bins,
//! hidden 20); the autoregressive decoders add a conditional MADE (2 masked layers of 50). One
//! epoch = 10⁵ points in batches of 200 (500 Adam steps) at β = 1. VAE-MC: 1000 walkers.
//!
//! `cargo run --release -p boltzflow-learn --example vae_throughput [-- EPOCHS]`

use std::time::Instant;

use boltzflow_core::RandomStreams;
use boltzflow_learn::vae::config::VaeTrainConfig;
use boltzflow_learn::vae::mc::vae_metropolis;
use boltzflow_learn::vae::model::{DecoderKind, PriorKind, Vae};
use boltzflow_learn::vae::train::{EpochWorkspace, Stage, StageKind, train_epoch};
use boltzflow_nn::Adam;
use ndarray::Array2;

fn main() {
    let epochs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let system = boltzflow_systems::build("gaussian2d").unwrap();
    let mut rng = RandomStreams::new(1).stream("data");
    let data = system
        .exact_sampler()
        .unwrap()
        .sample(100_000, &mut rng)
        .unwrap();
    let x: Vec<f32> = data.iter().map(|&v| v as f32).collect();
    let cfg = VaeTrainConfig::default();
    let stage = Stage {
        beta: 1.0,
        start_beta: 1.0,
        fresh: true,
        kind: StageKind::Forward,
    };
    println!(
        "threads {}; epoch = 100000 points, batch {}",
        rayon::current_num_threads(),
        cfg.batch_size
    );
    for decoder in DecoderKind::ALL {
        let vae = Vae::new(2, 1, &[50, 50], &[50, 50], decoder, PriorKind::Flow);
        let mut params = vec![0.0f32; vae.layout().len()];
        vae.init(&mut params, &mut RandomStreams::new(2).stream("init"));
        let mut adam = Adam::new(params.len());
        let mut ws = EpochWorkspace::default();
        // Warm-up epoch, then timed ones (none with EPOCHS = 0: VAE-MC only).
        if epochs > 0 {
            train_epoch(
                &vae,
                &mut params,
                &mut adam,
                &x,
                &stage,
                0,
                0,
                &cfg,
                1,
                &mut ws,
            )
            .unwrap();
        }
        let t0 = Instant::now();
        for e in 0..epochs {
            train_epoch(
                &vae,
                &mut params,
                &mut adam,
                &x,
                &stage,
                0,
                e + 1,
                &cfg,
                1,
                &mut ws,
            )
            .unwrap();
        }
        let epoch_s = t0.elapsed().as_secs_f64() / epochs.max(1) as f64;
        // VAE Monte Carlo: 1000 walkers, 50 moves each.
        let walkers = 1000;
        let steps = if epochs == 0 { 500 } else { 50 };
        let mut w = Array2::from_shape_fn((walkers, 2), |(i, j)| data[[i, j]]);
        let mut mc_rng = RandomStreams::new(3).stream("mc");
        let t1 = Instant::now();
        let f_acc = vae_metropolis(
            &vae,
            &params,
            system.as_ref(),
            &mut w,
            steps,
            &mut mc_rng,
            |_, _| {},
        )
        .unwrap();
        let mc_s = t1.elapsed().as_secs_f64();
        println!(
            "{:<15} {:>7} params  epoch {:>7.3} s  ({:>6.1} µs/step)  VAE-MC {:>9.0} moves/s (f_acc {:.2})",
            decoder.name(),
            params.len(),
            epoch_s,
            epoch_s / 500.0 * 1e6,
            (walkers * steps) as f64 / mc_s,
            f_acc
        );
    }
}
