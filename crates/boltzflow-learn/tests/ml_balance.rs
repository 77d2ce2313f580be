//! `[[stage]] ml_balance`: J_ML drawing its data rows in inverse proportion to their histogram
//! along the reaction coordinate (capped) moves the generator's mass towards the rarely sampled
//! region, here the barrier of the double well, which plain maximum likelihood leaves almost
//! empty.

use boltzflow_learn::config::BgConfig;
use boltzflow_learn::run::{BgEvaluateOptions, BgRun, NoProgress, TrainOptions};

fn config(balance: &str) -> BgConfig {
    let text = format!(
        r#"seed = 3
[system]
spec = "double-well"
[data]
validation_fraction = 0.1
[data.simulate]
chains = 64
steps = 4000
burn_in = 1000
stride = 50
step_size = 0.5
init = "uniform"
[flow]
type = "realnvp"
couplings = 4
hidden = [32, 32]
[train]
batch_size = 256
steps_per_epoch = 50
ess_samples = 0
rc_coordinate = "projection:1,0"
rc_bounds = [-2.5, 2.5]
rc_grid = 26
[[stage]]
name = "ml"
epochs = 6
lr = 2e-3
w_ml = 1.0
{balance}
[evaluate]
n_samples = 20000
bootstrap = 0
latent_mc_chains = 0
"#
    );
    BgConfig::from_toml(&text).unwrap()
}

/// The fraction of rows `[n, 2]` with |x₀| < 0.5 (the barrier region).
fn barrier_fraction(x: ndarray::ArrayView2<f64>) -> f64 {
    x.rows().into_iter().filter(|r| r[0].abs() < 0.5).count() as f64 / x.nrows() as f64
}

#[test]
fn balanced_maximum_likelihood_puts_more_of_the_generator_on_the_barrier() {
    let tmp = tempfile::tempdir().unwrap();
    let mut fractions = Vec::new();
    for (name, balance) in [("plain", ""), ("balanced", "ml_balance = 10.0")] {
        let run = BgRun::new(tmp.path().join(name), config(balance)).unwrap();
        run.train(TrainOptions::default(), &mut NoProgress).unwrap();
        let ev = run.evaluate(&BgEvaluateOptions::default()).unwrap();
        fractions.push(barrier_fraction(ev.x.view()));
    }
    let data = boltzflow_io::read_npy_2d(&tmp.path().join("plain/data.npy")).unwrap();
    let in_data = barrier_fraction(data.view());
    println!(
        "barrier fraction: data {in_data:.4}, plain ML {:.4}, balanced {:.4}",
        fractions[0], fractions[1]
    );
    // The balanced draws give the barrier rows up to 10 times their weight.
    assert!(
        fractions[1] > 2.0 * fractions[0],
        "{fractions:?} (data {in_data})"
    );
    assert!(
        fractions[1] > 2.0 * in_data,
        "{fractions:?} (data {in_data})"
    );
}
