//! Variational autoregressive networks against exact enumeration.

use boltzflow_core::RandomStreams;
use boltzflow_learn::van::config::VanTrainConfig;
use boltzflow_learn::van::{
    NetworkKind, NetworkSpec, Van, VanBuffers, estimate, step_stream, train_step,
};
use boltzflow_nn::{Activation, Adam};
use boltzflow_systems::SpinSystem;

fn all_states(n: usize) -> Vec<f32> {
    (0..1usize << n)
        .flat_map(|b| (0..n).map(move |i| if (b >> i) & 1 == 1 { 1.0 } else { -1.0 }))
        .collect()
}

/// The exact F_q / n of the model's q by enumerating every state.
fn exact_f_q(van: &mut Van, system: &SpinSystem, beta: f64) -> (f64, f64) {
    let n = system.n();
    let s = all_states(n);
    let mut lq = Vec::new();
    van.log_prob(&s, &mut lq);
    let mut e = vec![0.0; lq.len()];
    system.energies(&s, &mut e).unwrap();
    let norm: f64 = lq.iter().map(|v| v.exp()).sum();
    let f: f64 = lq
        .iter()
        .zip(&e)
        .map(|(&l, &e)| l.exp() * (e + l / beta))
        .sum();
    (f / n as f64, norm)
}

fn spec(kind: NetworkKind, depth: usize, width: usize, z2: bool) -> NetworkSpec {
    NetworkSpec {
        kind,
        depth,
        width,
        half_kernel: 2,
        skip: false,
        activation: Activation::Tanh,
        z2,
    }
}

/// `steps` training steps at `beta` (batch `batch`, lr 5·10⁻³, annealing a = 0.98).
fn train(van: &mut Van, system: &SpinSystem, beta: f64, steps: usize, batch: usize, seed: u64) {
    let cfg = VanTrainConfig {
        steps,
        batch_size: batch,
        lr: 5e-3,
        anneal: 0.98,
        ..VanTrainConfig::default()
    };
    let mut adam = Adam::new(van.params.len());
    let mut buf = VanBuffers::default();
    for t in 0..steps {
        let mut rng = step_stream(seed, 0, t);
        train_step(van, &mut adam, system, &cfg, beta, t, &mut rng, &mut buf).unwrap();
    }
}

#[test]
fn sampled_free_energy_matches_enumeration_of_q_and_training_approaches_the_exact_f() {
    let system = SpinSystem::sk(12, 3).unwrap();
    let beta = 1.0;
    let exact = system.exact(&[beta]).unwrap().unwrap()[0].f_per_spin;
    for (kind, depth, width, z2) in [
        (NetworkKind::Made, 1, 0, true),
        (NetworkKind::Made, 2, 24, false),
    ] {
        let mut rng = RandomStreams::new(1).stream("init");
        let mut van = Van::new(12, None, &spec(kind, depth, width, z2), 64, &mut rng).unwrap();
        let (f_start, norm) = exact_f_q(&mut van, &system, beta);
        assert!((norm - 1.0).abs() < 1e-5, "Σq = {norm}");
        train(&mut van, &system, beta, 400, 500, 7);
        let (f_q, norm) = exact_f_q(&mut van, &system, beta);
        assert!((norm - 1.0).abs() < 1e-5, "Σq = {norm}");
        // The variational bound holds and training closed most of the gap.
        assert!(f_q >= exact - 1e-6, "{f_q} < {exact}");
        let rel = (f_q - exact) / exact.abs();
        println!(
            "depth {depth} z2 {z2}: F_q {f_q:.6} (start {f_start:.6}) vs exact {exact:.6}, rel {rel:.2e}"
        );
        assert!(rel < 2e-3, "relative error {rel:.2e}");
        // The sampled estimate agrees with the enumerated F_q within its standard error.
        let mut rng = RandomStreams::new(2).stream("eval");
        let est = estimate(&mut van, &system, beta, 40_000, 1000, &mut rng).unwrap();
        assert!(
            (est.f_per_spin - f_q).abs() < 5.0 * est.f_stderr,
            "sampled {} ± {} vs enumerated {f_q}",
            est.f_per_spin,
            est.f_stderr
        );
        assert!((est.f_reweighted_per_spin - exact).abs() < (f_q - exact).max(1e-4));
    }
}

#[test]
fn a_pixelcnn_learns_a_small_ising_lattice() {
    let system = SpinSystem::ising(4, 1.0).unwrap();
    let beta = 0.44;
    let exact = system.exact(&[beta]).unwrap().unwrap()[0].f_per_spin;
    let mut rng = RandomStreams::new(1).stream("init");
    let mut van = Van::new(
        16,
        Some(4),
        &spec(NetworkKind::Pixelcnn, 2, 8, true),
        64,
        &mut rng,
    )
    .unwrap();
    let cfg = VanTrainConfig {
        steps: 300,
        batch_size: 256,
        lr: 5e-3,
        anneal: 0.98,
        ..VanTrainConfig::default()
    };
    let mut adam = Adam::new(van.params.len());
    let mut buf = VanBuffers::default();
    for t in 0..cfg.steps {
        train_step(
            &mut van,
            &mut adam,
            &system,
            &cfg,
            beta,
            t,
            &mut step_stream(3, 0, t),
            &mut buf,
        )
        .unwrap();
    }
    let (f_q, norm) = exact_f_q(&mut van, &system, beta);
    assert!((norm - 1.0).abs() < 1e-5);
    let rel = (f_q - exact) / exact.abs();
    println!("pixelcnn 4×4 β=0.44: F_q {f_q:.6} vs exact {exact:.6}, rel {rel:.2e}");
    assert!(f_q >= exact - 1e-6 && rel < 5e-3, "rel {rel:.2e}");
}

/// The score-function gradient Σ_r c_r ∇ log q(s_r), Z2-symmetrised and not, for MADE and
/// PixelCNN, equals fourth-order finite differences of Σ_r c_r log q(s_r) in f64 (the same
/// network cast to f64: the f32 training network's gradient code, run in double precision).
#[test]
fn score_gradient_equals_finite_differences_in_f64_with_and_without_z2() {
    use boltzflow_nn::gradcheck::{compare, numeric_gradient};
    use rand::RngExt;
    let mut rng = RandomStreams::new(11).stream("van.gradcheck");
    for (kind, lattice) in [(NetworkKind::Made, None), (NetworkKind::Pixelcnn, Some(3))] {
        for z2 in [true, false] {
            let spec = NetworkSpec {
                kind,
                depth: 2,
                width: 6,
                half_kernel: 1,
                skip: false,
                activation: Activation::Tanh,
                z2,
            };
            let n = 9;
            let f32_van = Van::new(n, lattice, &spec, 5, &mut rng).unwrap();
            let mut van: Van<f64> = f32_van.cast();
            // Masked weights are the zeros of the weight tensors at initialisation (the
            // unmasked ones are drawn from a continuous distribution); they are not parameters
            // of q, so they stay zero and are left out of the comparison.
            let mut free = vec![true; van.params.len()];
            for e in van.layout().entries() {
                if e.name.ends_with("weight") {
                    for i in e.range.clone() {
                        free[i] = f32_van.params[i] != 0.0;
                    }
                }
            }
            // Move the other parameters off their initial values so every path is exercised.
            for (p, &f) in van.params.iter_mut().zip(&free) {
                if f {
                    *p += 0.3 * (rng.random::<f64>() - 0.5);
                }
            }
            let rows = 13;
            let s: Vec<f64> = (0..rows * n)
                .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
                .collect();
            let coeffs: Vec<f64> = (0..rows).map(|_| rng.random::<f64>() - 0.5).collect();
            let mut lq = Vec::new();
            van.log_prob(&s, &mut lq);
            let mut analytic = Vec::new();
            van.score_gradient(&coeffs, &mut analytic);
            let p0 = van.params.clone();
            let numeric = numeric_gradient(&p0, 1e-4, |p| {
                van.params.copy_from_slice(p);
                van.log_prob(&s, &mut lq);
                lq.iter().zip(&coeffs).map(|(l, c)| l * c).sum()
            });
            let pick = |g: &[f64]| -> Vec<f64> {
                g.iter()
                    .zip(&free)
                    .filter(|(_, f)| **f)
                    .map(|(v, _)| *v)
                    .collect()
            };
            let report = compare(&pick(&analytic), &pick(&numeric));
            assert!(free.iter().filter(|f| **f).count() > 50);
            println!("{kind:?} z2={z2}: relative error {:.2e}", report.relative());
            assert!(report.relative() < 1e-7, "{kind:?} z2={z2}: {report:?}");
        }
    }
}
