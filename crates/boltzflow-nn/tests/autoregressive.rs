//! The autoregressive networks over spins (MADE and masked convolutions): the autoregressive
//! property, normalisation by enumeration, exact sampling, and gradients against f64 finite
//! differences.

mod common;

use boltzflow_core::RandomStreams;
use boltzflow_nn::gradcheck::{compare, numeric_gradient};
use boltzflow_nn::made::log_prob_row;
use boltzflow_nn::masked_conv::{ConvCache, ConvSampler, MaskedConvNet};
use boltzflow_nn::{Activation, Made, MadeSampler, MlpCache, ParamLayout};
use common::{noise, weighted_log_prob, weighted_log_prob_grad};
use rand::RngExt;

fn made(n: usize, depth: usize, width: usize) -> (Made, Vec<f64>) {
    let mut layout = ParamLayout::new();
    let m = Made::new(&mut layout, "made", n, depth, width, Activation::Tanh);
    let mut p = vec![0.0; layout.len()];
    let mut rng = RandomStreams::new(depth as u64).stream("init");
    m.init(&mut p, &mut rng);
    // Larger, non-zero biases so that every output depends visibly on its inputs.
    for v in &mut p {
        *v *= 3.0;
    }
    (m, p)
}

fn state(bits: usize, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| if (bits >> i) & 1 == 1 { 1.0 } else { -1.0 })
        .collect()
}

const SHAPES: [(usize, usize, usize); 4] = [(6, 1, 0), (6, 2, 12), (7, 3, 9), (5, 2, 3)];

#[test]
fn outputs_never_depend_on_the_current_or_later_spins() {
    for (n, depth, width) in SHAPES {
        let (m, p) = made(n, depth, width);
        let mut c = MlpCache::default();
        let mut rng = RandomStreams::new(9).stream("s");
        for _ in 0..20 {
            let s: Vec<f64> = (0..n)
                .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
                .collect();
            let base = m.forward(&p, &s, 1, &mut c).to_vec();
            for j in 0..n {
                let mut t = s.clone();
                t[j] = -t[j];
                let out = m.forward(&p, &t, 1, &mut c).to_vec();
                for i in 0..n {
                    let changed = (out[i] - base[i]).abs() > 0.0;
                    if i <= j {
                        assert!(
                            !changed,
                            "n={n} depth={depth}: logit {i} changed with spin {j}"
                        );
                    }
                }
                // And the connections exist: some later output does change (j < n − 1).
                if j + 1 < n && depth == 1 {
                    assert!((j + 1..n).any(|i| out[i] != base[i]));
                }
            }
        }
    }
}

#[test]
fn probabilities_sum_to_one_over_all_states() {
    for (n, depth, width) in [(12, 1, 0), (12, 2, 24), (10, 3, 15)] {
        let (m, p) = made(n, depth, width);
        let rows = 1 << n;
        let s: Vec<f64> = (0..rows).flat_map(|b| state(b, n)).collect();
        let mut c = MlpCache::default();
        let logits = m.forward(&p, &s, rows, &mut c).to_vec();
        let total: f64 = (0..rows)
            .map(|r| log_prob_row(&s[r * n..(r + 1) * n], &logits[r * n..(r + 1) * n], None).exp())
            .sum();
        assert!(
            (total - 1.0).abs() < 1e-12,
            "n={n} depth={depth}: Σq = {total}"
        );
    }
}

#[test]
fn sampling_follows_the_conditionals_and_the_frequencies_match_q() {
    let n = 4;
    for (depth, width) in [(1, 0), (2, 8), (3, 6)] {
        let (m, p) = made(n, depth, width);
        let rows = 200_000;
        let mut rng = RandomStreams::new(3).stream("u");
        let u: Vec<f64> = (0..rows * n).map(|_| rng.random::<f64>()).collect();
        let mut s = vec![0.0; rows * n];
        m.sample(&p, &u, rows, &mut s, &mut MadeSampler::default());
        // Each decision agrees with the teacher-forced conditional.
        let mut c = MlpCache::default();
        let logits = m.forward(&p, &s, rows, &mut c).to_vec();
        for (k, (&si, &l)) in s.iter().zip(&logits).enumerate() {
            let q = 1.0 / (1.0 + (-l).exp());
            assert_eq!(si > 0.0, u[k] < q, "row {} site {}", k / n, k % n);
        }
        // Frequencies within 5 standard errors of q for each of the 16 states.
        let mut counts = vec![0usize; 1 << n];
        for row in s.chunks_exact(n) {
            let b: usize = row
                .iter()
                .enumerate()
                .map(|(i, &v)| usize::from(v > 0.0) << i)
                .sum();
            counts[b] += 1;
        }
        for (b, &c_b) in counts.iter().enumerate() {
            let st = state(b, n);
            let mut cache = MlpCache::default();
            let l = m.forward(&p, &st, 1, &mut cache).to_vec();
            let q = log_prob_row(&st, &l, None).exp();
            let se = (q * (1.0 - q) / rows as f64).sqrt();
            let f = c_b as f64 / rows as f64;
            assert!((f - q).abs() < 5.0 * se + 1e-12, "state {b}: {f} vs {q}");
        }
    }
}

#[test]
fn log_probability_gradients_match_finite_differences() {
    for (n, depth, width) in SHAPES {
        let (m, p) = made(n, depth, width);
        let rows = 5;
        let mut rng = RandomStreams::new(4).stream("s");
        let s: Vec<f64> = (0..rows * n)
            .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
            .collect();
        let c_r: Vec<f64> = (0..rows).map(|_| rng.random_range(-1.0..1.0)).collect();
        // L = Σ_r c_r log q(s_r).
        let loss = |p: &[f64]| {
            let l = m.forward(p, &s, rows, &mut MlpCache::default()).to_vec();
            weighted_log_prob(&s, &l, &c_r, n)
        };
        let mut c = MlpCache::default();
        let l = m.forward(&p, &s, rows, &mut c).to_vec();
        let mut d = weighted_log_prob_grad(&s, &l, &c_r, n);
        let mut g = vec![0.0; p.len()];
        m.backward(&p, &mut g, &s, &mut c, &mut d);
        let mut num = numeric_gradient(&p, 1e-3, loss);
        m.apply_masks(&mut num);
        let rep = compare(&g, &num);
        assert!(rep.relative() < 1e-8, "n={n} depth={depth}: {rep:?}");
        assert!(m.respects_masks(&p));
    }
}

/// Masked convolutions on L × L lattices with several depths, widths and kernel sizes.
fn convs() -> Vec<(usize, MaskedConvNet, Vec<f64>)> {
    [
        (3, 1, 0, 1, false),
        (3, 2, 4, 1, true),
        (4, 3, 3, 2, false),
        (2, 3, 2, 1, true),
        (4, 2, 2, 1, true),
    ]
    .into_iter()
    .map(|(l, depth, width, k, skip)| {
        let mut layout = ParamLayout::new();
        let c = MaskedConvNet::new(
            &mut layout,
            "conv",
            l,
            depth,
            width,
            k,
            Activation::Tanh,
            skip,
        );
        let mut p = vec![0.0; layout.len()];
        let mut rng = RandomStreams::new(l as u64 + depth as u64).stream("init");
        c.init(&mut p, &mut rng);
        if let Some(e) = layout.find("conv.skip.weight") {
            // A non-zero skip (it starts at zero), masked as training keeps it.
            for (i, v) in p[e.range.clone()].iter_mut().enumerate() {
                let (from, to) = (i / (l * l), i % (l * l));
                *v = if to > from {
                    0.3 * ((i as f64) * 0.7).sin()
                } else {
                    0.0
                };
            }
        }
        assert!(c.respects_masks(&p));
        p.iter_mut().for_each(|v| *v *= 3.0);
        (l * l, c, p)
    })
    .collect()
}

fn conv_forward(net: &MaskedConvNet, p: &[f64], s: &[f64], rows: usize) -> Vec<f64> {
    net.forward(p, s, rows, &mut ConvCache::default()).to_vec()
}

#[test]
fn masked_convolutions_are_autoregressive_in_raster_order() {
    for (n, net, p) in convs() {
        let mut rng = RandomStreams::new(2).stream("s");
        for _ in 0..10 {
            let s: Vec<f64> = (0..n)
                .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
                .collect();
            let base = conv_forward(&net, &p, &s, 1);
            let mut some_dependence = false;
            for j in 0..n {
                let mut t = s.clone();
                t[j] = -t[j];
                let out = conv_forward(&net, &p, &t, 1);
                for i in 0..n {
                    if i <= j {
                        assert_eq!(out[i], base[i], "n={n}: logit {i} changed with spin {j}");
                    } else if out[i] != base[i] {
                        some_dependence = true;
                    }
                }
            }
            assert!(some_dependence);
        }
    }
}

#[test]
fn masked_convolutions_normalise_sample_exactly_and_have_exact_gradients() {
    for (n, net, p) in convs() {
        // Σ_s q(s) = 1 over all 2ⁿ states (n ≤ 16).
        let rows = 1 << n;
        let s: Vec<f64> = (0..rows).flat_map(|b| state(b, n)).collect();
        let logits = conv_forward(&net, &p, &s, rows);
        let total: f64 = (0..rows)
            .map(|r| log_prob_row(&s[r * n..(r + 1) * n], &logits[r * n..(r + 1) * n], None).exp())
            .sum();
        assert!((total - 1.0).abs() < 1e-11, "n={n}: Σq = {total}");
        // Site-by-site sampling makes the decisions the teacher-forced conditionals make.
        let rows = 64;
        let mut rng = RandomStreams::new(5).stream("u");
        let u: Vec<f64> = (0..rows * n).map(|_| rng.random::<f64>()).collect();
        let mut s = vec![0.0; rows * n];
        net.sample(&p, &u, rows, &mut s, &mut ConvSampler::default());
        let l = conv_forward(&net, &p, &s, rows);
        for (k, (&si, &li)) in s.iter().zip(&l).enumerate() {
            assert_eq!(
                si > 0.0,
                u[k] < 1.0 / (1.0 + (-li).exp()),
                "n={n} entry {k}"
            );
        }
        // Gradient of Σ_r c_r log q(s_r) against finite differences.
        let rows = 3;
        let s = &s[..rows * n];
        let c_r = [0.7, -1.1, 0.4];
        let loss = |p: &[f64]| weighted_log_prob(s, &conv_forward(&net, p, s, rows), &c_r, n);
        let mut cache = ConvCache::default();
        let l = net.forward(&p, s, rows, &mut cache).to_vec();
        let mut d = weighted_log_prob_grad(s, &l, &c_r, n);
        let mut g = vec![0.0; p.len()];
        net.backward(&p, &mut g, s, &mut cache, &mut d);
        let mut num = numeric_gradient(&p, 1e-3, loss);
        // The skip's masked entries are held at zero (their gradient is masked).
        net.mask_gradient(&mut num);
        let rep = compare(&g, &num);
        assert!(rep.relative() < 1e-8, "n={n}: {rep:?}");
    }
}

#[test]
fn conditional_made_is_autoregressive_in_x_sees_the_context_and_has_exact_input_gradients() {
    for (n, context, per_site, depth, width) in [
        (4, 2, 2, 2, 9),
        (3, 1, 2, 3, 6),
        (1, 2, 2, 2, 4),
        (2, 1, 2, 1, 0),
    ] {
        let mut layout = ParamLayout::new();
        let m = Made::conditional(
            &mut layout,
            "ar",
            n,
            context,
            per_site,
            depth,
            width,
            Activation::Tanh,
        );
        let mut p = vec![0.0; layout.len()];
        m.init(&mut p, &mut RandomStreams::new(3).stream("init"));
        let w = n + context;
        let x = noise(w, 1.0, 8);
        let base = m.forward(&p, &x, 1, &mut MlpCache::default()).to_vec();
        for j in 0..w {
            let mut t = x.clone();
            t[j] += 0.7;
            let out = m.forward(&p, &t, 1, &mut MlpCache::default()).to_vec();
            for o in 0..per_site * n {
                let site = o % n;
                if j < n && site <= j {
                    assert_eq!(
                        out[o], base[o],
                        "output {o} (variable {site}) changed with x_{j}"
                    );
                }
            }
            if j >= n {
                // The context reaches variable 0's outputs.
                assert!(
                    (0..per_site).any(|b| out[b * n] != base[b * n]),
                    "context {j} unseen"
                );
            }
        }
        // Parameter and input gradients of Σ a·out against finite differences.
        let rows = 3;
        let xs = noise(rows * w, 1.0, 9);
        let a = noise(rows * per_site * n, 1.0, 10);
        let loss = |p: &[f64], xs: &[f64]| -> f64 {
            m.forward(p, xs, rows, &mut MlpCache::default())
                .iter()
                .zip(&a)
                .map(|(o, a)| o * a)
                .sum()
        };
        let mut cache = MlpCache::default();
        m.forward(&p, &xs, rows, &mut cache);
        let mut g = vec![0.0; p.len()];
        let mut d = a.clone();
        let mut dx = Vec::new();
        m.backward_with_input(&p, &mut g, &xs, &mut cache, &mut d, &mut dx);
        let mut num = numeric_gradient(&p, 1e-5, |p| loss(p, &xs));
        m.apply_masks(&mut num);
        assert!(compare(&g, &num).relative() < 1e-8);
        let num_x = numeric_gradient(&xs, 1e-5, |xs| loss(&p, xs));
        assert!(compare(&dx, &num_x).relative() < 1e-8);
    }
}

#[test]
fn grouped_made_jacobian_is_block_strictly_triangular() {
    // Degrees [0, 1, 1, 0, 2]: the Jacobian ∂out_i/∂x_j is non-zero exactly when
    // degree(j) < degree(i) (checked with random weights, so "exactly" up to chance zeros).
    let degrees = [0usize, 1, 1, 0, 2];
    let n = degrees.len();
    let mut layout = ParamLayout::new();
    let m = Made::grouped(&mut layout, "g", &degrees, 1, 2, 2, 12, Activation::Tanh);
    let mut p = vec![0.0; layout.len()];
    m.init(&mut p, &mut RandomStreams::new(11).stream("init"));
    let x = noise(n + 1, 1.0, 12);
    let mut cache = MlpCache::default();
    let base = m.forward(&p, &x, 1, &mut cache).to_vec();
    for j in 0..n {
        let mut t = x.clone();
        t[j] += 0.5;
        let out = m.forward(&p, &t, 1, &mut MlpCache::default()).to_vec();
        for o in 0..2 * n {
            let i = o % n;
            let changed = out[o] != base[o];
            assert_eq!(
                changed,
                degrees[j] < degrees[i],
                "output {o} (variable {i}, degree {}) vs x_{j} (degree {})",
                degrees[i],
                degrees[j]
            );
        }
    }
}
