//! Training-step throughput of the alanine-dipeptide generator of `examples/ala2_bg.toml`, for
//! the side-by-side comparison with PyTorch (`bench/peers/ala2_flow_torch.py`, bench/README.md).
//!
//! The flow: 60 internal coordinates, 5 of them free torsions (y indices 11, 17, 26, 44, 53,
//! those of the vacuum example), 12 couplings in cycles of two circular-spline couplings over
//! the torsions (8 bins) and two affine couplings over the other 55, conditioners 2 × 128 tanh.
//! - ML step: a batch of 512 data rows through the inverse flow, the NLL's gradient, Adam —
//!   the same work as the PyTorch peer;
//! - KL step (no peer: PyTorch has no AMBER energy of its own): 512 generated molecules through
//!   the flow, the internal-coordinate layer and the AMBER force field with forces pulled back,
//!   plus the ML batch, as in the example's ML + KL stage.
//!
//! `cargo run --release -p boltzflow-learn --example ala2_flow_throughput [-- SECONDS]`

use std::path::Path;
#[path = "common/measure.rs"]
mod measure;
use measure::measure;

use boltzflow_coords::{
    InternalCoordinates, InternalEnergy, InternalLayer, ReferenceWidths, ZMatrix,
};
use boltzflow_core::RandomStreams;
use boltzflow_learn::trainer::Reduced;
use boltzflow_learn::{BoltzmannGenerator, FlowSpec, LinLogCut, Objective};
use boltzflow_nn::{Adam, AdamConfig};
use ndarray::Array2;
use ndarray_npy::ReadNpyExt;
use rand_distr::{Distribution, StandardNormal};

const PERIODIC: [usize; 5] = [11, 17, 26, 44, 53];
const BATCH: usize = 512;

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ff = boltzflow_systems::ForceField::from_file(&root.join("data/ala2/ala2_system.xml"))
        .expect("the ALDP system XML");
    let heavy: Vec<bool> = ff.masses().iter().map(|&m| m > 1.5).collect();
    let ic = InternalCoordinates::new(ZMatrix::from_bonds(22, ff.bonds(), &heavy).unwrap());
    let x0 = Array2::<f64>::read_npy(
        std::fs::File::open(root.join("data/ala2/positions_nm.npy")).unwrap(),
    )
    .unwrap();
    let layer = InternalLayer::from_reference(ic, x0.row(0), ReferenceWidths::default()).unwrap();
    let kt = boltzflow_core::units::KB_KJ_PER_MOL_K * 300.0;
    let reduced = Reduced {
        inner: &ff,
        beta: 1.0 / kt,
    };
    let energy = InternalEnergy {
        inner: &reduced,
        layer: &layer,
    };
    let dim = 60;
    let mut periodic = vec![false; dim];
    for p in PERIODIC {
        periodic[p] = true;
    }
    let spec = FlowSpec {
        couplings: 12,
        hidden: vec![128, 128],
        bins: 8,
        ..FlowSpec::default()
    };
    let streams = RandomStreams::new(1);
    let mut bg =
        BoltzmannGenerator::with_periodic(dim, &periodic, &spec, 1.0, &mut streams.stream("init"))
            .unwrap();
    if let Ok(rows) = std::env::var("CHUNK_ROWS") {
        bg.set_chunk_rows(rows.parse().expect("CHUNK_ROWS is a number"));
    }
    for (i, p) in bg.params.iter_mut().enumerate() {
        *p = 0.01 * ((i as f32) * 0.618).sin();
    }
    // Data rows: standard normal, torsions uniform in (−0.99π, 0.99π), as the peer's.
    let mut rng = streams.stream("data");
    let data: Vec<f32> = (0..BATCH * dim)
        .map(|k| {
            if periodic[k % dim] {
                (rand::RngExt::random::<f32>(&mut rng) * 2.0 - 1.0) * std::f32::consts::PI * 0.99
            } else {
                StandardNormal.sample(&mut rng)
            }
        })
        .collect();
    let mut adam = Adam::new(bg.params.len());
    let cfg = AdamConfig::default();
    let mut step = 0u64;
    let mut run = |bg: &mut BoltzmannGenerator, w_kl: f64| {
        let objective = Objective {
            w_ml: 1.0,
            w_kl,
            w_rc: 0.0,
            n_gen: if w_kl > 0.0 { BATCH } else { 0 },
            taus: &[1.0],
            reg: Some(LinLogCut {
                high: 100.0,
                max: 1e4,
            }),
            rc: None,
            ml_weights: None,
        };
        bg.gradient(&energy, &data, &objective, step, &mut rng)
            .unwrap();
        let g = std::mem::take(&mut bg.grads);
        adam.step(&cfg, 1e-4, &mut bg.params, &g);
        bg.grads = g;
        step += 1;
    };
    let ml = measure(seconds, || run(&mut bg, 0.0));
    // ML_ONLY=1 skips the ML + KL measurement (for profiling the ML step alone).
    let kl = if std::env::var("ML_ONLY").is_ok() {
        f64::NAN
    } else {
        measure(seconds, || run(&mut bg, 0.1))
    };
    // ≈ one multiply–add per weight and row forward, two backward.
    let gflop = 6.0 * bg.params.len() as f64 * BATCH as f64 * 1e-9;
    println!(
        "threads {}: ala2 flow ({} parameters), batch {BATCH}: {ml:.2} ML steps/s ({:.1} GFLOP/s), {kl:.2} ML + KL steps/s",
        rayon::current_num_threads(),
        bg.params.len(),
        ml * gflop
    );
}
