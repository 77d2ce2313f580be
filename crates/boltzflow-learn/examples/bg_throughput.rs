//! Throughput of Boltzmann-generator training and sampling, for the side-by-side comparison
//! with PyTorch and JAX (`bench/peers/bg_torch.py`, `bench/peers/bg_jax.py`; bench/README.md).
//!
//! Models (issue 4): RealNVP, 8 affine couplings, tanh MLP conditioners, batch 1024.
//! - large: `dimer-bath` (dimension 76), 2 × 256 hidden;
//! - tiny: `mueller` (dimension 2), 2 × 64 hidden.
//!
//! A training step is a reverse-KL gradient (flow forward, energies and forces in f64, flow
//! backward) plus an Adam update; sampling draws 1024 configurations with their log-weights
//! (flow forward and energies). Also measures a large GEMM as the machine's practical peak.
//!
//! `cargo run --release -p boltzflow-learn --example bg_throughput [-- SECONDS]`

#[path = "common/measure.rs"]
mod measure;
use measure::measure;

use boltzflow_core::RandomStreams;
use boltzflow_learn::{BoltzmannGenerator, FlowSpec, LinLogCut, Objective};
use boltzflow_nn::gemm::{Layout, matmul};
use boltzflow_nn::{Adam, AdamConfig};

fn model(system: &str, hidden: usize, seconds: f64) {
    let sys = boltzflow_systems::build(system).unwrap();
    let d = sys.dim();
    let spec = FlowSpec {
        couplings: 8,
        hidden: vec![hidden, hidden],
        ..FlowSpec::default()
    };
    let streams = RandomStreams::new(1);
    let mut bg: BoltzmannGenerator =
        BoltzmannGenerator::new(d, &spec, 1.0, &mut streams.stream("init")).unwrap();
    if let Ok(rows) = std::env::var("CHUNK_ROWS") {
        bg.set_chunk_rows(rows.parse().unwrap());
    }
    // Away from the identity, as after some training (identity weights would make the
    // last layers' GEMMs multiply zeros, which costs the same but is less representative).
    for (i, p) in bg.params.iter_mut().enumerate() {
        *p = 0.01 * ((i as f32) * 0.618).sin();
    }
    let mut adam = Adam::new(bg.params.len());
    let cfg = AdamConfig::default();
    let mut rng = streams.stream("bench");
    let batch = 1024;
    let mut step = 0u64;
    let steps = measure(seconds, || {
        // linlogcut as in training (a fresh dimer generator overlaps particles).
        let reg = Some(LinLogCut {
            high: 1e3,
            max: 1e6,
        });
        let objective = Objective {
            w_ml: 0.0,
            w_kl: 1.0,
            w_rc: 0.0,
            n_gen: batch,
            taus: &[1.0],
            reg,
            rc: None,
            ml_weights: None,
        };
        bg.gradient(sys.as_ref(), &[], &objective, step, &mut rng)
            .unwrap();
        let g = std::mem::take(&mut bg.grads);
        adam.step(&cfg, 1e-4, &mut bg.params, &g);
        bg.grads = g;
        step += 1;
    });
    let samples = measure(seconds, || {
        let (x, q) = bg.sample(batch, 1.0, batch, &mut rng);
        let u = sys.energy(x.view()).unwrap();
        let lw: f64 = u.iter().zip(&q).map(|(u, q)| -u + q).sum();
        std::hint::black_box(lw);
    }) * batch as f64;
    let macs: usize = {
        let nc = d / 2;
        let widths = [d - nc, hidden, hidden, 2 * nc];
        8 * widths.windows(2).map(|w| w[0] * w[1]).sum::<usize>()
    };
    // Training: forward 2·MACs, backward 4·MACs (weight and input gradients) per row.
    let gflop_step = 6.0 * macs as f64 * batch as f64 * 1e-9;
    let gflop_sample = 2.0 * macs as f64 * 1e-9;
    println!(
        "{system:<11} d={d:<3} 2×{hidden:<4} batch {batch}: {steps:8.1} KL steps/s ({:6.1} GFLOP/s)   {samples:10.0} samples/s with log-weights ({:6.1} GFLOP/s)",
        steps * gflop_step,
        samples * gflop_sample
    );
}

fn gemm_peak(seconds: f64) {
    let n = 1024;
    let a = vec![1.0f32; n * n];
    let b = vec![0.5f32; n * n];
    // One GEMM per thread, as the engine runs them (single-threaded GEMMs on batch chunks).
    let threads = rayon::current_num_threads();
    let rate = measure(seconds, || {
        rayon::scope(|s| {
            for _ in 0..threads {
                s.spawn(|_| {
                    let mut c = vec![0.0f32; n * n];
                    matmul(&mut c, &a, Layout::Plain, &b, Layout::Plain, n, n, n, false);
                    std::hint::black_box(&c);
                });
            }
        });
    });
    println!(
        "gemm 1024³ f32 on {threads} threads: {:.1} GFLOP/s (practical peak of this machine)",
        rate * threads as f64 * 2.0 * (n * n * n) as f64 * 1e-9
    );
}

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    println!("threads: {}", rayon::current_num_threads());
    let only = std::env::var("ONLY").unwrap_or_default();
    if only.is_empty() {
        gemm_peak(seconds);
    }
    if only.is_empty() || only == "dimer-bath" {
        model("dimer-bath", 256, seconds);
    }
    if only.is_empty() || only == "mueller" {
        model("mueller", 64, seconds);
    }
}
