//! Analytic oracles: birth–death chains (closed-form stationary vector and spectrum) for the MSM
//! estimators, and a multivariate Ornstein–Uhlenbeck process (known relaxation rates) for TICA.
//! Statistical tolerances come from standard errors; all runs are seeded.

use boltzflow_kinetics::{MaximumLikelihoodMsm, Tica, tica::Scaling};
use ndarray::{Array1, Array2};
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Birth–death chain with up-rates `p[i]` (i → i+1) and down-rates `q[i]` (i → i−1).
fn birth_death(p: &[f64], q: &[f64]) -> Array2<f64> {
    let n = p.len();
    let mut t = Array2::<f64>::zeros((n, n));
    for i in 0..n {
        if i + 1 < n {
            t[[i, i + 1]] = p[i];
        }
        if i > 0 {
            t[[i, i - 1]] = q[i];
        }
        t[[i, i]] = 1.0 - t.row(i).sum();
    }
    t
}

/// π_i ∝ Π_{j<i} p_j / q_{j+1} (detailed balance along the chain).
fn birth_death_stationary(p: &[f64], q: &[f64]) -> Array1<f64> {
    let mut pi = vec![1.0];
    for i in 1..p.len() {
        pi.push(pi[i - 1] * p[i - 1] / q[i]);
    }
    let s: f64 = pi.iter().sum();
    pi.iter().map(|v| v / s).collect()
}

const P: [f64; 6] = [0.30, 0.20, 0.10, 0.25, 0.15, 0.0];
const Q: [f64; 6] = [0.0, 0.10, 0.30, 0.05, 0.20, 0.25];

#[test]
fn reversible_mle_of_expected_counts_returns_the_chain() {
    let t = birth_death(&P, &Q);
    let pi = birth_death_stationary(&P, &Q);
    // expected counts of a long stationary run: C = N diag(π) T
    let c = Array2::from_shape_fn((6, 6), |(i, j)| 1e6 * pi[i] * t[[i, j]]);
    for reversible in [true, false] {
        let msm = MaximumLikelihoodMsm::new(reversible)
            .fit_counts(&c, 1)
            .unwrap();
        for (a, b) in msm.transition_matrix.iter().zip(t.iter()) {
            assert!((a - b).abs() < 1e-10, "T: {a} vs {b}");
        }
        for (a, b) in msm.stationary_distribution.iter().zip(pi.iter()) {
            assert!((a - b).abs() < 1e-10, "π: {a} vs {b}");
        }
    }
}

#[test]
fn uniform_birth_death_spectrum_is_the_path_laplacian() {
    // lazy walk with rate p both ways and reflecting ends: λ_k = 1 − 2p(1 − cos(kπ/n))
    let (n, p) = (8usize, 0.2);
    let mut up = vec![p; n];
    let mut down = vec![p; n];
    up[n - 1] = 0.0;
    down[0] = 0.0;
    let t = birth_death(&up, &down);
    let c = t.mapv(|v| v * 1e5 / n as f64);
    let msm = MaximumLikelihoodMsm::new(true).fit_counts(&c, 3).unwrap();
    let sp = msm.spectrum().unwrap();
    for k in 0..n {
        let exact = 1.0 - 2.0 * p * (1.0 - (k as f64 * std::f64::consts::PI / n as f64).cos());
        assert!(
            (sp.values[k] - exact).abs() < 1e-12,
            "λ_{k}: {} vs {exact}",
            sp.values[k]
        );
    }
    let ts = msm.timescales(2).unwrap();
    let l1 = 1.0 - 2.0 * p * (1.0 - (std::f64::consts::PI / n as f64).cos());
    assert!((ts[0] - (-3.0 / l1.ln())).abs() < 1e-9);
    // right eigenvectors are π-orthonormal
    let r = &sp.right;
    let g = r
        .t()
        .dot(&Array2::from_diag(&msm.stationary_distribution))
        .dot(r);
    for i in 0..n {
        for j in 0..n {
            assert!((g[[i, j]] - if i == j { 1.0 } else { 0.0 }).abs() < 1e-10);
        }
    }
}

#[test]
fn sampled_birth_death_recovers_stationary_vector_within_error() {
    let t = birth_death(&P, &Q);
    let pi = birth_death_stationary(&P, &Q);
    let n_steps = 1_000_000;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2024);
    let mut s = 0usize;
    let mut traj = Vec::with_capacity(n_steps);
    for _ in 0..n_steps {
        traj.push(s);
        let u: f64 = rng.random();
        let mut acc = 0.0;
        for j in 0..6 {
            acc += t[[s, j]];
            if u < acc {
                s = j;
                break;
            }
        }
    }
    let msm = MaximumLikelihoodMsm::new(true)
        .fit(&[&traj], 1, None)
        .unwrap();
    // the slowest relaxation bounds the integrated autocorrelation time of any indicator
    let exact = MaximumLikelihoodMsm::new(true)
        .fit_counts(&t.mapv(|v| v * 1e6), 1)
        .unwrap();
    let l2 = exact.spectrum().unwrap().values[1];
    let tau_int = (1.0 + l2) / (1.0 - l2);
    for i in 0..6 {
        let se = (pi[i] * (1.0 - pi[i]) * tau_int / n_steps as f64).sqrt();
        let z = (msm.stationary_distribution[i] - pi[i]) / se;
        assert!(
            z.abs() < 5.0,
            "π_{i}: {} vs {} (z = {z:.2})",
            msm.stationary_distribution[i],
            pi[i]
        );
    }
}

#[test]
fn tica_of_ornstein_uhlenbeck_recovers_its_rates() {
    // dX = −A X dt + √2 dW with A = Q diag(a) Qᵀ: in the eigenbasis independent AR(1) processes
    // y ← e^{−aΔ} y + √((1 − e^{−2aΔ})/a) ξ, exact for any Δ. TICA at lag τΔ: λ_i = e^{−a_i τΔ}.
    let rates: [f64; 3] = [0.1, 0.5, 2.0];
    let (th, ph) = (0.7_f64, 0.3_f64);
    let q = {
        let r1 = ndarray::array![
            [th.cos(), -th.sin(), 0.0],
            [th.sin(), th.cos(), 0.0],
            [0.0, 0.0, 1.0]
        ];
        let r2 = ndarray::array![
            [1.0, 0.0, 0.0],
            [0.0, ph.cos(), -ph.sin()],
            [0.0, ph.sin(), ph.cos()]
        ];
        r1.dot(&r2)
    };
    let n = 1_000_000;
    let dt: f64 = 1.0;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let mut y = [0.0; 3];
    let mut x = Array2::<f64>::zeros((n, 3));
    for t in 0..n {
        for i in 0..3 {
            let f = (-rates[i] * dt).exp();
            let z: f64 = StandardNormal.sample(&mut rng);
            y[i] = f * y[i] + ((1.0 - f * f) / rates[i]).sqrt() * z;
        }
        for r in 0..3 {
            x[[t, r]] = (0..3).map(|c| q[[r, c]] * y[c]).sum::<f64>() + 5.0;
        }
    }
    let model = Tica::new(1)
        .unwrap()
        .scaling(Scaling::None)
        .fit(&[x.view()])
        .unwrap();
    let proj = model.transform(x.view()).unwrap();
    for i in 0..3 {
        let exact = (-rates[i] * dt).exp();
        // standard error of an AR(1) lag-1 autocorrelation estimate
        let se = ((1.0 - exact * exact) / n as f64).sqrt();
        let z = (model.eigenvalues[i] - exact) / se;
        assert!(
            z.abs() < 5.0,
            "λ_{i}: {} vs {exact} (z = {z:.2})",
            model.eigenvalues[i]
        );
        // the component is the OU eigen-coordinate: its projection correlates with y_i
        let yi: Vec<f64> = (0..n)
            .map(|t| (0..3).map(|r| q[[r, i]] * (x[[t, r]] - 5.0)).sum())
            .collect();
        let p: Vec<f64> = proj.column(i).to_vec();
        let corr = pearson(&p, &yi);
        assert!(
            corr.abs() > 0.99,
            "component {i} correlates {corr} with its OU coordinate"
        );
    }
    let ts = model.timescales();
    assert!(
        (ts[0] - 1.0 / rates[0]).abs() / (1.0 / rates[0]) < 0.02,
        "slowest timescale {} vs {}",
        ts[0],
        1.0 / rates[0]
    );
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}
