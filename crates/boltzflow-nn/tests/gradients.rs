//! Every layer and flow against finite differences (f64), and the generic flow test
//! (DESIGN §8): round trip, log-dets summing to zero, log-det equal to a brute-force Jacobian.

mod common;

use boltzflow_core::RandomStreams;
use boltzflow_nn::flows::{ActNorm, Coupling, Inverted, Permutation, SplineParams, Transformer};
use boltzflow_nn::gradcheck::{check_flow, check_flow_with_fixed, compare, numeric_gradient};
use boltzflow_nn::{Activation, Mlp, MlpCache, ParamLayout, SequentialFlow};
use common::noise;

#[test]
fn mlp_gradients_match_finite_differences_for_every_activation() {
    for act in [
        Activation::Tanh,
        Activation::Relu,
        Activation::Silu,
        Activation::Softplus,
        Activation::Identity,
    ] {
        let mut layout = ParamLayout::new();
        let mlp = Mlp::new(&mut layout, "net", &[3, 7, 5, 2], act, Activation::Identity);
        let params = noise(layout.len(), 0.7, 1);
        let rows = 4;
        let x = noise(rows * 3, 1.0, 2);
        let a = noise(rows * 2, 1.0, 3);
        let loss = |p: &[f64], x: &[f64]| {
            let mut c = MlpCache::default();
            mlp.forward(p, x, rows, &mut c)
                .iter()
                .zip(&a)
                .map(|(o, a)| o * a)
                .sum::<f64>()
        };
        let mut cache = MlpCache::default();
        mlp.forward(&params, &x, rows, &mut cache);
        let mut grads = vec![0.0; params.len()];
        let mut dout = a.clone();
        let mut dx = Vec::new();
        mlp.backward(
            &params,
            &mut grads,
            &x,
            &mut cache,
            &mut dout,
            Some(&mut dx),
        );
        let gp = compare(&grads, &numeric_gradient(&params, 1e-6, |p| loss(p, &x)));
        let gx = compare(&dx, &numeric_gradient(&x, 1e-6, |xx| loss(&params, xx)));
        // ReLU has kinks; random inputs almost surely stay away from them by more than h.
        assert!(gp.relative() < 1e-7, "{act:?} params {gp:?}");
        assert!(gx.relative() < 1e-7, "{act:?} inputs {gx:?}");
    }
}

fn coupling_flow(
    dim: usize,
    kind: Transformer,
    actnorm: bool,
) -> (SequentialFlow<f64>, ParamLayout) {
    let mut layout = ParamLayout::new();
    let mut flow = SequentialFlow::new(dim);
    let half: Vec<usize> = (dim / 2..dim).collect();
    let other: Vec<usize> = (0..dim / 2).collect();
    for i in 0..3 {
        let trans = if i % 2 == 0 { &half } else { &other };
        if actnorm {
            flow.push(ActNorm::new(&mut layout, &format!("{i}.actnorm"), dim));
        }
        flow.push(Coupling::new(
            &mut layout,
            &format!("{i}.coupling"),
            dim,
            trans,
            &[8, 8],
            Activation::Tanh,
            kind,
        ));
        flow.push(Permutation::new((0..dim).map(|j| (j + 1) % dim).collect()));
    }
    (flow, layout)
}

fn assert_flow_ok(name: &str, flow: &SequentialFlow<f64>, params: &[f64], input_scale: f64) {
    let mut rng = RandomStreams::new(7).stream("check");
    let h = if name.starts_with("spline") {
        1e-6
    } else {
        1e-4
    };
    let rep = check_flow(flow, params, 5, input_scale, h, &mut rng);
    println!("{name}: {rep:?}");
    assert!(
        rep.round_trip < 1e-9,
        "{name}: round trip {}",
        rep.round_trip
    );
    assert!(
        rep.log_det_sum < 1e-9,
        "{name}: log-det sum {}",
        rep.log_det_sum
    );
    assert!(
        rep.jacobian_log_det < 1e-5,
        "{name}: Jacobian {}",
        rep.jacobian_log_det
    );
    assert!(
        rep.worst_gradient() < 1e-6,
        "{name}: gradient {}",
        rep.worst_gradient()
    );
}

/// Random parameters for a flow of transformer `name`: a fresh flow is the identity, which
/// would test little. Smaller for splines: large raw derivatives make the map nearly
/// singular, where finite differences (not the analytic gradient) lose accuracy.
fn random_params(name: &str, n: usize, seed: u64) -> Vec<f64> {
    noise(n, if name == "spline" { 0.3 } else { 0.5 }, seed)
}

/// The three coupling transformers, by name.
fn transformers() -> [(&'static str, Transformer); 3] {
    [
        ("nice", Transformer::Additive),
        ("realnvp", Transformer::Affine { scale_bound: 2.0 }),
        ("spline", Transformer::Spline(SplineParams::new(6, 2.5))),
    ]
}

/// Couplings over six particles in 2D whose transformed particles also get parameters from a
/// shared local conditioner ([`Coupling::with_local`]), for every transformer: the generic
/// flow test, with the gradients through the neighbours' coordinates.
#[test]
fn couplings_with_a_local_conditioner_pass_the_generic_flow_test() {
    let sites = [0.0, 0.0, 1.0, 0.0, 2.0, 0.1, 0.0, 1.0, 1.1, 1.0, 2.0, 1.0];
    let dim = sites.len();
    let halves = [
        (vec![0, 1, 4, 5, 8, 9], vec![2, 3, 6, 7, 10, 11]),
        (vec![0, 1, 2, 3, 10, 11], vec![4, 5, 6, 7, 8, 9]),
    ];
    let kinds = transformers();
    for (name, kind) in kinds {
        let mut layout = ParamLayout::new();
        let mut flow = SequentialFlow::new(dim);
        for i in 0..4 {
            let (a, b) = &halves[i / 2];
            let prefix = format!("{i}.coupling");
            let c = Coupling::new(
                &mut layout,
                &prefix,
                dim,
                if i % 2 == 0 { b } else { a },
                &[6],
                Activation::Tanh,
                kind,
            )
            .with_local(&mut layout, &prefix, &sites, 2, 2, &[5], Activation::Tanh);
            flow.push(c);
        }
        let params = random_params(name, layout.len(), 13);
        assert_flow_ok(
            &format!("{name} with a local conditioner"),
            &flow,
            &params,
            1.0,
        );
    }
}

#[test]
fn every_flow_type_passes_the_generic_flow_test() {
    let kinds = transformers();
    for dim in [2, 3, 5] {
        for (name, kind) in kinds {
            for actnorm in [false, true] {
                let (flow, layout) = coupling_flow(dim, kind, actnorm);
                let params = random_params(name, layout.len(), 11);
                assert_flow_ok(
                    &format!("{name} d={dim} actnorm={actnorm}"),
                    &flow,
                    &params,
                    1.2,
                );
            }
        }
    }
}

#[test]
fn fresh_flows_are_the_identity() {
    for kind in [
        Transformer::Additive,
        Transformer::Affine { scale_bound: 2.0 },
        Transformer::Spline(SplineParams::new(8, 3.0)),
    ] {
        let (flow, layout) = coupling_flow(4, kind, true);
        let mut params = vec![0.0; layout.len()];
        let mut rng = RandomStreams::new(1).stream("init");
        flow.init(&mut params, &mut rng);
        let z = noise(40, 1.5, 3);
        let mut ws = boltzflow_nn::FlowWorkspace::new();
        flow.run(&params, &z, 10, boltzflow_nn::Direction::Forward, &mut ws);
        // Undo the permutations: three cyclic shifts by one.
        let out = ws.output();
        for r in 0..10 {
            for j in 0..4 {
                let src = (j + 3) % 4;
                assert!((out[r * 4 + j] - z[r * 4 + src]).abs() < 1e-12, "{kind:?}");
            }
        }
        assert!(ws.log_det().iter().all(|l| l.abs() < 1e-12));
    }
}

#[test]
fn spline_tails_and_inverted_layers() {
    // Inputs well outside the spline interval exercise the linear tails; an inverted coupling
    // exercises the inverse pass used forwards.
    let dim = 3;
    let mut layout = ParamLayout::new();
    let mut flow = SequentialFlow::new(dim);
    let sp = Transformer::Spline(SplineParams::new(5, 1.0));
    flow.push(Coupling::new(
        &mut layout,
        "a",
        dim,
        &[2],
        &[6],
        Activation::Silu,
        sp,
    ));
    flow.push(Inverted(Coupling::new(
        &mut layout,
        "b",
        dim,
        &[0, 1],
        &[6],
        Activation::Tanh,
        sp,
    )));
    let params = noise(layout.len(), 0.3, 5);
    assert_flow_ok("spline tails + inverted", &flow, &params, 1.5);
}

#[test]
fn actnorm_data_init_standardises_the_batch() {
    let dim = 3;
    let mut layout = ParamLayout::new();
    let mut flow = SequentialFlow::new(dim);
    flow.push(ActNorm::new(&mut layout, "an", dim));
    let mut params = vec![0.0; layout.len()];
    let rows = 500;
    let x: Vec<f64> = noise(rows * dim, 1.0, 9)
        .iter()
        .enumerate()
        .map(|(i, v)| 3.0 * v + i as f64 % 3.0 * 10.0)
        .collect();
    flow.data_init(&mut params, &x, rows);
    let mut ws = boltzflow_nn::FlowWorkspace::new();
    flow.run(&params, &x, rows, boltzflow_nn::Direction::Inverse, &mut ws);
    for j in 0..dim {
        let col: Vec<f64> = ws.output().iter().skip(j).step_by(dim).copied().collect();
        let mean = col.iter().sum::<f64>() / rows as f64;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / rows as f64;
        assert!(
            mean.abs() < 1e-10 && (var - 1.0).abs() < 1e-10,
            "column {j}: {mean} {var}"
        );
    }
}

#[test]
fn whitening_is_an_exact_frozen_linear_flow_fitted_to_the_data() {
    use boltzflow_nn::flows::{FlowLayer, Whiten};
    let dim = 4;
    let mut layout = ParamLayout::new();
    let mut flow = SequentialFlow::new(dim);
    flow.push(Coupling::new(
        &mut layout,
        "c",
        dim,
        &[2, 3],
        &[6],
        Activation::Tanh,
        Transformer::Affine { scale_bound: 2.0 },
    ));
    let whiten = Whiten::new(&mut layout, "w", dim);
    flow.push(whiten.clone());
    let mut params = noise(layout.len(), 0.4, 5);
    // Correlated data with very different scales: x = A g + b.
    let a = [
        [2.0, 0.0, 0.0, 0.0],
        [1.5, 0.3, 0.0, 0.0],
        [0.0, -0.2, 0.05, 0.0],
        [1.0, 1.0, 1.0, 4.0],
    ];
    let g = noise(4000 * dim, 1.0, 6);
    let x: Vec<f64> = g
        .chunks_exact(dim)
        .flat_map(|r| {
            (0..dim).map(move |i| (0..dim).map(|k| a[i][k] * r[k]).sum::<f64>() + i as f64)
        })
        .collect();
    FlowLayer::<f64>::data_init(&whiten, &mut params, &x, 4000);
    // The data leave the whitening layer (inverse direction) with mean 0 and covariance I.
    let mut ws = boltzflow_nn::FlowWorkspace::new();
    let mut only = SequentialFlow::new(dim);
    only.push(whiten.clone());
    only.run(&params, &x, 4000, boltzflow_nn::Direction::Inverse, &mut ws);
    let z = ws.output();
    for i in 0..dim {
        let mean: f64 = z.chunks_exact(dim).map(|r| r[i]).sum::<f64>() / 4000.0;
        assert!(mean.abs() < 1e-10, "mean {mean}");
        for j in 0..dim {
            let c: f64 = z.chunks_exact(dim).map(|r| r[i] * r[j]).sum::<f64>() / 3999.0;
            let target = if i == j { 1.0 } else { 0.0 };
            assert!((c - target).abs() < 1e-9, "cov[{i},{j}] = {c}");
        }
    }
    // Round trip, log-dets, brute-force Jacobian and input gradients as for every flow; the
    // whitening parameters are frozen, so only the coupling's parameter gradients are compared.
    let mut rng = RandomStreams::new(7).stream("check");
    let rep = check_flow(&flow, &params, 5, 1.0, 1e-4, &mut rng);
    println!("coupling + whitening: {rep:?}");
    assert!(rep.round_trip < 1e-9 && rep.log_det_sum < 1e-9, "{rep:?}");
    assert!(rep.jacobian_log_det < 1e-6, "{rep:?}");
    assert!(
        rep.input_forward.relative() < 1e-6 && rep.input_inverse.relative() < 1e-6,
        "{rep:?}"
    );
}

#[test]
fn one_dimensional_couplings_with_a_constant_conditioner_pass_the_flow_test() {
    // The VAE prior of a 1D latent (Monroe & Shen 2022): each block's spline parameters come
    // from a constant input.
    for (name, kind) in [
        ("spline 1d", Transformer::Spline(SplineParams::new(8, 3.0))),
        ("realnvp 1d", Transformer::Affine { scale_bound: 2.0 }),
    ] {
        let mut layout = ParamLayout::new();
        let mut flow = SequentialFlow::new(1);
        for i in 0..3 {
            flow.push(Coupling::new(
                &mut layout,
                &format!("b{i}"),
                1,
                &[0],
                &[5],
                Activation::Tanh,
                kind,
            ));
        }
        let params = noise(layout.len(), 0.3, 12);
        assert_flow_ok(name, &flow, &params, 1.5);
    }
}

/// Torsion-style flows: circular splines on the periodic coordinates, affine couplings on the
/// others, every conditioner seeing periodic inputs as (sin, cos). The generic flow test holds
/// (round trip, log-dets, brute-force Jacobian, gradients through sin/cos too).
#[test]
fn circular_spline_couplings_with_periodic_conditioners_pass_the_flow_test() {
    let dim = 4;
    let periodic = [true, false, true, false];
    let mut layout = ParamLayout::new();
    let mut flow = SequentialFlow::new(dim);
    let circular = Transformer::Spline(SplineParams::circular(5));
    let affine = Transformer::Affine { scale_bound: 2.0 };
    for (i, (trans, kind)) in [
        (vec![0], circular),
        (vec![1, 3], affine),
        (vec![2], circular),
        (vec![0, 2], circular),
    ]
    .into_iter()
    .enumerate()
    {
        flow.push(Coupling::with_periodic(
            &mut layout,
            &format!("{i}"),
            dim,
            &trans,
            &periodic,
            &[8],
            Activation::Tanh,
            kind,
        ));
    }
    let params = noise(layout.len(), 0.3, 5);
    // Inputs of scale 1: the periodic coordinates lie in (−π, π) but for rare draws, which the
    // circular spline leaves alone as the identity (only values on the circle are meaningful).
    assert_flow_ok("spline circular", &flow, &params, 1.0);
}

/// A circular spline is a diffeomorphism of the circle: ±π are fixed, the derivative is the
/// same on both sides of the cut, and g' integrates to 2π.
#[test]
fn circular_splines_join_smoothly_across_the_cut() {
    use boltzflow_nn::flows::{Direction, rq_spline};
    use std::f64::consts::PI;
    let sp = SplineParams::circular(6);
    assert_eq!(sp.n_raw(), 18);
    for seed in 0..5 {
        let raw = noise(sp.n_raw(), 1.0, 100 + seed);
        let d = |x: f64| rq_spline(&raw, x, Direction::Forward, &sp).1.exp();
        let eps = 1e-9;
        let (left, right) = (d(-PI + eps), d(PI - eps));
        assert!((left - right).abs() < 1e-6 * left, "{left} vs {right}");
        assert!(
            (rq_spline(&raw, -PI + eps, Direction::Forward, &sp).0 + PI).abs() < 1e-6,
            "−π is fixed"
        );
        // ∫ g' over the circle by the midpoint rule.
        let n = 200_000;
        let h = 2.0 * PI / n as f64;
        let integral: f64 = (0..n).map(|i| d(-PI + (i as f64 + 0.5) * h) * h).sum();
        assert!((integral - 2.0 * PI).abs() < 1e-6, "{integral}");
        // The end derivative is learned: not 1 for random parameters.
        assert!((left - 1.0).abs() > 1e-3, "{left}");
    }
}

/// The masked autoregressive spline layer, alone and nested with couplings, in both of its
/// directions: circular splines on periodic coordinates (fed to the MADE as sin/cos), bounded
/// splines on the others, context from the coordinates it leaves alone. The generic flow test
/// (round trip, log-dets, brute-force Jacobian, parameter and input gradients) holds; the
/// sequential generation and its reverse-order backward pass included.
#[test]
fn autoregressive_spline_layers_pass_the_flow_test() {
    use boltzflow_nn::flows::AutoregressiveSpline;
    let dim = 5;
    let periodic = [true, false, true, false, false];
    let mut layout = ParamLayout::new();
    let mut flow = SequentialFlow::new(dim);
    // Three periodic-and-flat coordinates in a shuffled order, conditioned on the other two.
    let ar1 = AutoregressiveSpline::new(
        &mut layout,
        "ar1",
        dim,
        &[2, 1, 0],
        &periodic,
        &[12, 12],
        Activation::Tanh,
        5,
        4.0,
    );
    let coupling = Coupling::with_periodic(
        &mut layout,
        "c",
        dim,
        &[3, 4],
        &periodic,
        &[8],
        Activation::Tanh,
        Transformer::Affine { scale_bound: 2.0 },
    );
    // Every coordinate: no context at all.
    let ar2 = AutoregressiveSpline::new(
        &mut layout,
        "ar2",
        dim,
        &[4, 0, 3, 1, 2],
        &periodic,
        &[10],
        Activation::Tanh,
        4,
        4.0,
    );
    let mut params = noise(layout.len(), 0.3, 21);
    ar1.apply_masks(&mut params);
    ar2.apply_masks(&mut params);
    // The masked weights are structural zeros: their gradient is 0 by construction.
    let mut free = vec![1.0; layout.len()];
    ar1.apply_masks(&mut free);
    ar2.apply_masks(&mut free);
    let fixed: Vec<bool> = free.iter().map(|v| *v == 0.0).collect();
    assert!(fixed.iter().any(|f| *f));
    flow.push(ar1);
    flow.push(coupling);
    flow.push(ar2);
    let mut rng = RandomStreams::new(7).stream("check");
    let rep = check_flow_with_fixed(&flow, &params, &fixed, 5, 1.0, 1e-6, &mut rng);
    println!("autoregressive: {rep:?}");
    assert!(rep.round_trip < 1e-9 && rep.log_det_sum < 1e-9, "{rep:?}");
    assert!(rep.jacobian_log_det < 1e-5, "{rep:?}");
    assert!(rep.worst_gradient() < 1e-6, "{rep:?}");
}
