//! `boltzflow evaluate RUN_DIR` for a VAN run: for every trained β, F_q per spin with its
//! standard error, energy and entropy per spin, the reweighted F, and — where an exact reference
//! exists (enumeration, Kaufman) — the exact values and the relative error; the naive mean-field
//! free energy alongside. Writes `metrics.json` and prints a table.

use anyhow::Result;
use boltzflow_core::RandomStreams;
use boltzflow_learn::van::estimate;
use boltzflow_systems::spins::mean_field;
use serde::{Deserialize, Serialize};

use crate::bg::evaluate::EvaluateArgs;
use boltzflow_learn::run::VanRun;

/// One β of metrics.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BetaResult {
    pub beta: f64,
    /// F_q / n with F = −ln Z / β (variational upper bound).
    pub f_per_spin: f64,
    pub f_per_spin_stderr: f64,
    pub energy_per_spin: f64,
    #[serde(default)]
    pub energy_per_spin_stderr: f64,
    pub entropy_per_spin: f64,
    #[serde(default)]
    pub entropy_per_spin_stderr: f64,
    /// −ln E_q[e^{−βE}/q] / (βn): the importance-weighted estimate.
    pub f_reweighted_per_spin: f64,
    pub ess_fraction: f64,
    pub n_samples: usize,
    pub f_exact_per_spin: Option<f64>,
    pub energy_exact_per_spin: Option<f64>,
    pub entropy_exact_per_spin: Option<f64>,
    /// |F_q − F| / |F|.
    pub rel_error: Option<f64>,
    /// Naive mean-field F / n (an upper bound too).
    pub f_mean_field_per_spin: f64,
    pub rel_error_mean_field: Option<f64>,
}

/// metrics.json of a VAN run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VanMetrics {
    pub system: String,
    pub n_spins: usize,
    pub network: String,
    pub parameters: usize,
    pub reference: Option<String>,
    pub results: Vec<BetaResult>,
}

/// Runs `boltzflow evaluate` on a VAN run directory.
pub fn run(a: &EvaluateArgs) -> Result<VanMetrics> {
    let run = VanRun::open(&a.run_dir)?;
    let n_samples = a.n_samples.unwrap_or(run.cfg.evaluate.n_samples).max(2);
    let trained = run.trained()?;
    let betas: Vec<f64> = trained.iter().map(|(b, _)| *b).collect();
    let exact = run.system.exact(&betas)?;
    let reference = exact.as_ref().map(|_| {
        if run.system.lattice_side().is_some() {
            "Kaufman (1949) exact finite-lattice partition function".to_string()
        } else {
            format!("exact enumeration of 2^{} states", run.system.n())
        }
    });
    let mut results = Vec::new();
    let parameters = trained[0].1.params.len();
    for (k, (beta, mut van)) in trained.into_iter().enumerate() {
        let mut rng = RandomStreams::new(run.cfg.seed).stream(&format!("evaluate.beta{k}"));
        let est = estimate(
            &mut van,
            &run.system,
            beta,
            n_samples,
            run.cfg.train.batch_size,
            &mut rng,
        )?;
        let ex = exact.as_ref().map(|e| e[k]);
        let mf = mean_field::f_per_spin(run.system.couplings(), beta);
        let rel = |f: f64| ex.map(|x| (f - x.f_per_spin).abs() / x.f_per_spin.abs());
        results.push(BetaResult {
            beta,
            f_per_spin: est.f_per_spin,
            f_per_spin_stderr: est.f_stderr,
            energy_per_spin: est.energy_per_spin,
            energy_per_spin_stderr: est.energy_stderr,
            entropy_per_spin: est.entropy_per_spin,
            entropy_per_spin_stderr: est.entropy_stderr,
            f_reweighted_per_spin: est.f_reweighted_per_spin,
            ess_fraction: est.ess_fraction,
            n_samples,
            f_exact_per_spin: ex.map(|x| x.f_per_spin),
            energy_exact_per_spin: ex.map(|x| x.energy_per_spin),
            entropy_exact_per_spin: ex.map(|x| x.entropy_per_spin),
            rel_error: rel(est.f_per_spin),
            f_mean_field_per_spin: mf,
            rel_error_mean_field: rel(mf),
        });
    }
    let metrics = VanMetrics {
        system: run.system.spec(),
        n_spins: run.system.n(),
        network: format!(
            "{:?} depth {} width {}{}",
            run.cfg.network.kind,
            run.cfg.network.depth,
            run.cfg.network.width,
            if run.cfg.network.z2 { " z2" } else { "" }
        )
        .to_lowercase(),
        parameters,
        reference,
        results,
    };
    boltzflow_io::write_json(&run.dir.join("metrics.json"), &metrics)?;
    if !a.quiet {
        print_table(&metrics);
    }
    Ok(metrics)
}

fn opt(v: Option<f64>, width: usize, prec: usize) -> String {
    v.map_or_else(
        || format!("{:>width$}", "—"),
        |x| format!("{x:>width$.prec$}"),
    )
}

fn opt_e(v: Option<f64>) -> String {
    v.map_or_else(|| format!("{:>9}", "—"), |x| format!("{x:>9.2e}"))
}

fn print_table(m: &VanMetrics) {
    println!(
        "{} ({} spins), {} ({} parameters); reference: {}",
        m.system,
        m.n_spins,
        m.network,
        m.parameters,
        m.reference.as_deref().unwrap_or("none")
    );
    println!(
        "{:>6} {:>11} {:>9} {:>11} {:>9} {:>11} {:>9} {:>10} {:>10} {:>7}",
        "β", "F_q/n", "± s.e.", "F_exact/n", "rel.err", "F_MF/n", "rel.MF", "E/n", "S/n", "ESS"
    );
    for r in &m.results {
        println!(
            "{:>6} {:>11.6} {:>9.2e} {} {} {:>11.6} {} {:>10.5} {:>10.5} {:>7.3}",
            r.beta,
            r.f_per_spin,
            r.f_per_spin_stderr,
            opt(r.f_exact_per_spin, 11, 6),
            opt_e(r.rel_error),
            r.f_mean_field_per_spin,
            opt_e(r.rel_error_mean_field),
            r.energy_per_spin,
            r.entropy_per_spin,
            r.ess_fraction
        );
    }
}

/// `boltzflow sample RUN_DIR --n N --out S.npy [--log-weights W.npy]` for a VAN run: spins
/// `[n, n_spins]` (±1, float64) from the network of the last trained β, and
/// log w = −βE − ln q.
pub fn sample(a: &crate::bg::sample::SampleArgs) -> Result<()> {
    if a.n == 0 {
        anyhow::bail!(boltzflow_core::Error::invalid("--n", "must be at least 1"));
    }
    let run = VanRun::open(&a.run_dir)?;
    let (beta, mut van) = run
        .trained()?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("the run has no trained β"))?;
    let mut rng = RandomStreams::new(a.seed).stream("sample");
    let (mut s, mut lq) = (Vec::new(), Vec::new());
    van.sample(a.n, &mut rng, &mut s, &mut lq);
    let n = run.system.n();
    let mut e = vec![0.0; a.n];
    run.system.energies(&s, &mut e)?;
    let x = ndarray::Array2::from_shape_fn((a.n, n), |(r, i)| f64::from(s[r * n + i]));
    boltzflow_io::write_npy_2d(&a.out, x.view())?;
    if let Some(w) = &a.log_weights {
        let lw: ndarray::Array1<f64> = e.iter().zip(&lq).map(|(&e, &l)| -beta * e - l).collect();
        boltzflow_io::write_npy_1d(w, lw.view())?;
    }
    println!(
        "{} samples of {} at β = {beta} → {}",
        a.n,
        run.system.spec(),
        a.out.display()
    );
    Ok(())
}
