//! `boltzflow evaluate RUN_DIR` for a VAN run: for every trained β, F_q per spin with its
//! standard error, energy and entropy per spin, the reweighted F, and — where an exact reference
//! exists (enumeration, Kaufman) — the exact values and the relative error; the naive mean-field
//! free energy alongside. Writes `metrics.json` and prints a table.

use anyhow::Result;
pub use boltzflow_learn::run::{BetaResult, VanMetrics};

use crate::bg::evaluate::EvaluateArgs;
use boltzflow_learn::run::VanRun;

/// Runs `boltzflow evaluate` on a VAN run directory.
pub fn run(a: &EvaluateArgs) -> Result<VanMetrics> {
    let run = VanRun::open(&a.run_dir)?;
    let metrics = run.evaluate(a.n_samples)?;
    metrics.save(&run.dir)?;
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
    let run = VanRun::open(&a.run_dir)?;
    let s = run.sample(a.n, a.seed)?;
    boltzflow_io::write_npy_2d(&a.out, s.spins.view())?;
    if let Some(w) = &a.log_weights {
        boltzflow_io::write_npy_1d(w, s.log_weights.view())?;
    }
    println!(
        "{} samples of {} at β = {} → {}",
        a.n,
        run.system.spec(),
        s.beta,
        a.out.display()
    );
    Ok(())
}
