//! The full Boltzmann-generator loss gradient — through the flow and, for J_KL, through the
//! system's analytic forces (the energy bridge) — equals f64 finite differences.

use boltzflow_core::Coordinate;
use boltzflow_core::RandomStreams;
use boltzflow_learn::{
    BoltzmannGenerator, FlowKind, FlowSpec, LinLogCut, Objective, RcEntropy, TorsionLayer,
};
use boltzflow_nn::gradcheck::{compare, numeric_gradient};
use rand_distr::{Distribution, StandardNormal};

fn generator(kind: FlowKind, dim: usize) -> BoltzmannGenerator<f64> {
    let spec = FlowSpec {
        kind,
        couplings: 3,
        hidden: vec![6, 6],
        actnorm: true,
        bound: 3.0,
        bins: 4,
        ..FlowSpec::default()
    };
    let mut rng = RandomStreams::new(3).stream("init");
    let mut bg = BoltzmannGenerator::<f64>::new(dim, &spec, 1.0, &mut rng).unwrap();
    // Random parameters, so that the flow is far from the identity.
    let mut r = RandomStreams::new(4).stream("noise");
    for p in &mut bg.params {
        let e: f64 = StandardNormal.sample(&mut r);
        *p = 0.3 * e;
    }
    bg.set_chunk_rows(3); // several chunks: the reduction over chunks is part of the test
    bg
}

fn check(system: &str, kind: FlowKind, w_ml: f64, w_kl: f64, taus: &[f64], reg: Option<LinLogCut>) {
    check_with_rc(system, kind, w_ml, w_kl, taus, reg, 0.0, None);
}

#[allow(clippy::too_many_arguments)]
fn check_with_rc(
    system: &str,
    kind: FlowKind,
    w_ml: f64,
    w_kl: f64,
    taus: &[f64],
    reg: Option<LinLogCut>,
    w_rc: f64,
    rc: Option<&RcEntropy>,
) {
    let sys = boltzflow_systems::build(system).unwrap();
    let dim = sys.dim();
    let mut bg = generator(kind, dim);
    let mut r = RandomStreams::new(5).stream("data");
    let data: Vec<f64> = (0..7 * dim)
        .map(|_| {
            let e: f64 = StandardNormal.sample(&mut r);
            e
        })
        .collect();
    let streams = RandomStreams::new(6);
    let n_kl = 8;
    let loss_at = |bg: &mut BoltzmannGenerator<f64>, p: &[f64]| {
        bg.params.copy_from_slice(p);
        let mut rng = streams.stream("latent");
        let objective = Objective {
            w_ml,
            w_kl,
            w_rc,
            n_gen: n_kl,
            taus,
            reg,
            rc,
            ml_weights: None,
        };
        bg.gradient(sys.as_ref(), &data, &objective, 0, &mut rng)
            .unwrap()
            .loss
    };
    let p0 = bg.params.clone();
    loss_at(&mut bg, &p0);
    let analytic = bg.grads.clone();
    let numeric = numeric_gradient(&p0, 1e-5, |p| loss_at(&mut bg, p));
    let rep = compare(&analytic, &numeric);
    println!(
        "{system} {kind:?} w_ml={w_ml} w_kl={w_kl} τ={taus:?}: {rep:?} (relative {:.2e})",
        rep.relative()
    );
    assert!(rep.relative() < 1e-6, "{system} {kind:?}: {rep:?}");
}

#[test]
fn reverse_kl_gradient_through_the_forces_equals_finite_differences() {
    check("double-well", FlowKind::Realnvp, 0.0, 1.0, &[1.0], None);
    check("mueller", FlowKind::Nice, 0.0, 1.0, &[1.0, 2.0], None);
    check("double-well", FlowKind::Spline, 0.0, 1.0, &[1.0], None);
    // linlogcut active for some samples (the double well's energy grows as x⁴).
    check(
        "double-well",
        FlowKind::Realnvp,
        0.0,
        1.0,
        &[1.0],
        Some(LinLogCut {
            high: 0.0,
            max: 3.0,
        }),
    );
}

#[test]
fn mixed_ml_and_kl_gradient_equals_finite_differences() {
    check("double-well", FlowKind::Realnvp, 1.0, 0.5, &[1.0], None);
}

#[test]
fn reaction_coordinate_loss_gradient_equals_finite_differences() {
    // J_RC alone (its gradient goes only through the generated x), and mixed with J_KL.
    let rc = RcEntropy::new(
        Coordinate::Projection(vec![1.0, 0.0]),
        -2.0,
        2.0,
        12,
        Some(0.5),
    )
    .unwrap();
    check_with_rc(
        "double-well",
        FlowKind::Realnvp,
        0.0,
        0.0,
        &[1.0],
        None,
        1.0,
        Some(&rc),
    );
    check_with_rc(
        "double-well",
        FlowKind::Spline,
        0.5,
        1.0,
        &[1.0],
        None,
        2.0,
        Some(&rc),
    );
    let rc = RcEntropy::new(
        Coordinate::Distance {
            i: 0,
            j: 1,
            particle_dim: 2,
        },
        0.5,
        2.5,
        20,
        None,
    )
    .unwrap();
    check_with_rc(
        "dimer-bath",
        FlowKind::Realnvp,
        0.0,
        0.0,
        &[1.0],
        None,
        1.0,
        Some(&rc),
    );
}

#[test]
fn dimer_bath_kl_gradient_equals_finite_differences() {
    // 76 dimensions with the particle forces (repulsion, box, dimer).
    check("dimer-bath", FlowKind::Realnvp, 0.0, 1.0, &[1.0], None);
}

/// The molecular bridge: alanine dipeptide in internal coordinates (bonds and angles
/// standardised, torsions on the torus with circular splines and a uniform prior). The ML +
/// reverse-KL gradient — through the flow, the internal-coordinate layer's Jacobian and the
/// force field's forces pulled back through the Z-matrix — equals finite differences.
#[test]
fn internal_coordinate_kl_gradient_through_the_force_field_equals_finite_differences() {
    use boltzflow_coords::{InternalCoordinates, InternalEnergy, InternalLayer, ZMatrix};
    use boltzflow_learn::Reduced;
    use ndarray::Array2;
    use ndarray_npy::ReadNpyExt;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/ala2");
    let ff = boltzflow_systems::ForceField::from_file(&root.join("ala2_system.xml")).unwrap();
    let heavy: Vec<bool> = ff.masses().iter().map(|&m| m > 1.5).collect();
    let ic = InternalCoordinates::new(ZMatrix::from_bonds(22, ff.bonds(), &heavy).unwrap());
    let x = Array2::<f64>::read_npy(std::fs::File::open(root.join("positions_nm.npy")).unwrap())
        .unwrap();
    let layer = InternalLayer::fit(ic, x.view()).unwrap();
    let reduced = Reduced {
        inner: &ff,
        beta: 1.0 / (boltzflow_core::KB_KJ_PER_MOL_K * 300.0),
    };
    let energy = InternalEnergy {
        inner: &reduced,
        layer: &layer,
    };
    let periodic: Vec<bool> = layer.periods().iter().map(Option::is_some).collect();
    // Circular-spline couplings on the torsions, and the masked autoregressive layer instead.
    for torsion_layer in [TorsionLayer::Coupling, TorsionLayer::Autoregressive] {
        let spec = FlowSpec {
            couplings: 4,
            hidden: vec![6],
            bins: 4,
            torsion_layer,
            ..FlowSpec::default()
        };
        let mut rng = RandomStreams::new(3).stream("init");
        let mut bg =
            BoltzmannGenerator::<f64>::with_periodic(60, &periodic, &spec, 1.0, &mut rng).unwrap();
        let mut r = RandomStreams::new(4).stream("noise");
        for p in &mut bg.params {
            let e: f64 = StandardNormal.sample(&mut r);
            *p = 0.05 * e;
        }
        // The masked weights (structural zeros: gradient 0 by construction) are left out.
        let noisy = bg.params.clone();
        bg.params.fill(1.0);
        bg.mask_params();
        let fixed: Vec<bool> = bg.params.iter().map(|v| *v == 0.0).collect();
        bg.params = noisy;
        bg.mask_params();
        bg.set_chunk_rows(3);
        let (y, _) = layer.to_internal(x.view()).unwrap();
        let data: Vec<f64> = y.iter().copied().take(6 * 60).collect();
        let streams = RandomStreams::new(6);
        // Without a cut (random torsions clash: energies of 10⁷ kT and huge forces), and with
        // linlogcut taming them to the scale of training.
        for reg in [
            None,
            Some(LinLogCut {
                high: 100.0,
                max: 1e4,
            }),
        ] {
            let loss_at = |bg: &mut BoltzmannGenerator<f64>, p: &[f64]| {
                bg.params.copy_from_slice(p);
                let objective = Objective {
                    w_ml: 1.0,
                    w_kl: 1.0,
                    w_rc: 0.0,
                    n_gen: 6,
                    taus: &[1.0],
                    reg,
                    rc: None,
                    ml_weights: None,
                };
                bg.gradient(&energy, &data, &objective, 0, &mut streams.stream("latent"))
                    .unwrap()
                    .loss
            };
            let p0 = bg.params.clone();
            let loss = loss_at(&mut bg, &p0);
            assert!(loss.is_finite(), "{loss}");
            let analytic = bg.grads.clone();
            let mut numeric = numeric_gradient(&p0, 1e-6, |p| loss_at(&mut bg, p));
            for (n, _) in numeric.iter_mut().zip(&fixed).filter(|(_, f)| **f) {
                *n = 0.0;
            }
            let rep = compare(&analytic, &numeric);
            println!(
                "ala2 internal ML + KL, {torsion_layer:?} torsions, {reg:?}: loss {loss:.3}, {rep:?} (relative {:.2e})",
                rep.relative()
            );
            assert!(rep.relative() < 1e-5, "{rep:?}");
        }
    }
}

#[test]
fn tilted_maximum_likelihood_gradient_equals_finite_differences() {
    // `ml_tilt`: J_ML with fixed per-row weights, −(1/n) Σ wᵢ log q(xᵢ), for both transformers.
    for kind in [FlowKind::Realnvp, FlowKind::Spline] {
        let mut bg = generator(kind, 2);
        let mut r = RandomStreams::new(6).stream("data");
        let n = 7;
        let data: Vec<f64> = (0..n * 2)
            .map(|_| {
                let e: f64 = StandardNormal.sample(&mut r);
                e
            })
            .collect();
        let weights = [0.2, 3.1, 0.7, 1.0, 0.05, 1.5, 0.45];
        let x = ndarray::Array2::from_shape_vec((n, 2), data.clone()).unwrap();
        let sys = boltzflow_systems::build("double-well").unwrap();
        let objective = Objective {
            w_ml: 1.0,
            w_kl: 0.0,
            w_rc: 0.0,
            n_gen: 0,
            taus: &[1.0],
            reg: None,
            rc: None,
            ml_weights: Some(&weights),
        };
        let p0 = bg.params.clone();
        let mut rng = RandomStreams::new(7).stream("latent");
        bg.gradient(sys.as_ref(), &data, &objective, 0, &mut rng)
            .unwrap();
        let analytic = bg.grads.clone();
        let numeric = numeric_gradient(&p0, 1e-5, |p| {
            bg.params.copy_from_slice(p);
            let lq = bg.log_density(&x, 100);
            -lq.iter().zip(&weights).map(|(l, w)| l * w).sum::<f64>() / n as f64
        });
        let rep = compare(&analytic, &numeric);
        assert!(rep.relative() < 1e-6, "{kind:?}: {rep:?}");
    }
}
