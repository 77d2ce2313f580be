//! A Boltzmann generator that learns one labelling of identical particles
//! (`[flow] reduce_permutations`), on a dimer bath with four solvent particles: the data are
//! relabelled into the reduced domain, generated samples outside it get weight 0, a
//! configuration and any relabelling of it get the same weight, the weights carry ln n!, so that
//! ln Z is the whole system's, and the reference sites refined on the data stay with the run.

use boltzflow_learn::config::BgConfig;
use boltzflow_learn::run::{BgEvaluateOptions, BgRun, NoProgress, TrainOptions};

fn config(extra_flow: &str) -> BgConfig {
    let text = format!(
        r#"seed = 5
[system]
spec = "dimer-bath:nsolvent=4"
[data]
validation_fraction = 0.25
[data.simulate]
chains = 16
steps = 4000
burn_in = 1000
stride = 100
step_size = 0.05
[flow]
type = "spline"
couplings = 4
hidden = [32]
actnorm = true
split = "random"
{extra_flow}
[train]
batch_size = 128
steps_per_epoch = 30
ess_samples = 256
[[stage]]
name = "ml"
epochs = 4
lr = 2e-3
w_ml = 1.0
[evaluate]
n_samples = 4000
latent_mc_chains = 0
ais_samples = 64
ais_levels = 4
"#
    );
    BgConfig::from_toml(&text).unwrap()
}

#[test]
fn a_generator_of_one_labelling_reweights_the_whole_system() {
    let tmp = tempfile::tempdir().unwrap();
    let run = BgRun::new(tmp.path().join("run"), config("reduce_permutations = true")).unwrap();
    run.train(TrainOptions::default(), &mut NoProgress).unwrap();
    let reduction = run.permutations().unwrap();
    assert_eq!(reduction.count(), 4);
    // The per-epoch ESS monitor weighs with the reduced domain's energy, as `evaluate` does
    // (samples outside it weigh 0): a fraction, finite every epoch.
    let csv = std::fs::read_to_string(tmp.path().join("run/metrics.csv")).unwrap();
    let mut lines = csv.lines();
    let col = lines
        .next()
        .unwrap()
        .split(',')
        .position(|h| h == "ess_fraction")
        .unwrap();
    for l in lines {
        let ess: f64 = l.split(',').nth(col).unwrap().parse().unwrap();
        assert!(ess > 0.0 && ess <= 1.0, "{l}");
    }
    // Every training row is in the reduced domain.
    let data = boltzflow_io::read_npy_2d(&tmp.path().join("run/data.npy")).unwrap();
    assert!(
        reduction
            .reduced_mask(data.view())
            .unwrap()
            .iter()
            .all(|&r| r)
    );

    let ev = run.evaluate(&BgEvaluateOptions::default()).unwrap();
    let m = |k: &str| {
        ev.metrics
            .get(k)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or_else(|| panic!("{k} missing"))
    };
    // Most generated samples fall in the domain the data showed the flow; the rest weigh 0.
    let inside = m("reduced_domain_fraction");
    assert!(inside > 0.5 && inside <= 1.0, "{inside}");
    let outside: Vec<usize> = (0..ev.x.nrows())
        .filter(|&i| !reduction.is_reduced(ev.x.row(i).as_slice().unwrap()))
        .collect();
    assert!(
        outside
            .iter()
            .all(|&i| ev.log_weights[i] == f64::NEG_INFINITY)
    );
    assert_eq!(
        outside.len(),
        ev.log_weights.iter().filter(|w| w.is_infinite()).count()
    );
    // ln Z is the whole system's, ln Z_D + ln 4!: the same run's weights without the shift
    // (log w − ln 4! on the domain) give an ln Z smaller by exactly ln 24.
    let ln_z = m("ln_z");
    let max = ev
        .log_weights
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let n = ev.log_weights.len() as f64;
    let ln_z_domain =
        max - 24f64.ln() + (ev.log_weights.iter().map(|l| (l - max).exp()).sum::<f64>() / n).ln();
    assert!((ln_z - ln_z_domain - 24f64.ln()).abs() < 1e-9);
    // AIS runs against the same restricted target.
    assert!(m("ais_ln_z").is_finite());

    // A configuration and its relabelling weigh the same (each is relabelled first).
    let x = data.slice(ndarray::s![..3, ..]).to_owned();
    let mut swapped = x.clone();
    for mut row in swapped.rows_mut() {
        // Swap solvent particles 0 and 3 (coordinates 4–5 and 10–11).
        for k in 0..2 {
            row.swap(4 + k, 10 + k);
        }
    }
    let a = run.log_weights(x.view()).unwrap();
    let b = run.log_weights(swapped.view()).unwrap();
    for (a, b) in a.iter().zip(&b) {
        assert!((a - b).abs() < 1e-9 && a.is_finite(), "{a} vs {b}");
    }

    // The sites were refined on the data and kept: the reopened run weighs the same.
    let sites = boltzflow_io::read_npy_2d(&tmp.path().join("run/permutation_sites.npy")).unwrap();
    assert_eq!(sites.dim(), (4, 2));
    assert_eq!(sites, reduction.sites());
    let lattice = boltzflow_systems::build("dimer-bath:nsolvent=4")
        .unwrap()
        .identical_particles()
        .unwrap()
        .sites;
    assert_ne!(sites, lattice);
    let reopened = BgRun::open(&tmp.path().join("run")).unwrap();
    assert_eq!(reopened.log_weights(x.view()).unwrap(), a);
}

#[test]
fn permutation_reduction_is_refused_where_it_has_no_meaning() {
    let message = |text: String| match BgConfig::from_toml(&text)
        .and_then(|c| BgRun::new("unused".into(), c))
    {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted: {text}"),
    };
    let m = message(
        "[system]\nspec = \"double-well\"\n[flow]\nreduce_permutations = true\n[[stage]]\nname = \"kl\"\nepochs = 1\nlr = 1e-3\nw_kl = 1.0\n".into(),
    );
    assert!(
        m.contains("flow.reduce_permutations") && m.contains("no identical particles"),
        "{m}"
    );
}
