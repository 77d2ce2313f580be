//! `boltzflow evaluate RUN_DIR` for a VAE run: the metrics of every finished stage (losses,
//! JD_encode, JD_prior, total correlation, active dimensions, f_acc) into `metrics.json`, and a
//! table; `boltzflow sample RUN_DIR` draws x ~ ∫ p(x|z) P(z) dz from the last stage.

use std::path::Path;

use anyhow::{Context, Result};
use boltzflow_core::RandomStreams;
use boltzflow_learn::trainer::Reduced;
use boltzflow_learn::vae::evaluate::{VaeMetrics, evaluate, subset};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::bg::evaluate::EvaluateArgs;
use crate::bg::sample::SampleArgs;
use boltzflow_learn::run::VaeRun;

/// One stage's row of metrics.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageResult {
    /// Stage number in the protocol.
    pub stage: usize,
    /// `beta2`, `beta2-reverse`, `autoencoder`.
    pub label: String,
    /// `forward`, `reverse` or `autoencoder`.
    pub kind: String,
    /// The stage's β.
    pub beta: f64,
    /// The metrics.
    #[serde(flatten)]
    pub metrics: VaeMetrics,
}

/// metrics.json of a VAE run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VaeRunMetrics {
    pub system: String,
    pub decoder: String,
    pub latent_dim: usize,
    pub seed: u64,
    pub stages: Vec<StageResult>,
}

/// Evaluates every finished stage of a run directory and writes metrics.json.
pub fn evaluate_dir(dir: &Path) -> Result<VaeRunMetrics> {
    let run = VaeRun::open(dir)?;
    let data = run.data()?;
    let (vae, trained) = run.trained()?;
    let e = &run.cfg.evaluate;
    let points = subset(
        &data,
        vae.dim(),
        e.n_encode,
        &RandomStreams::new(run.cfg.seed),
    );
    let energy = Reduced {
        inner: run.system.as_ref(),
        beta: run.beta,
    };
    let mut stages = Vec::new();
    for (s, (stage, params)) in trained.iter().enumerate() {
        let metrics = evaluate(
            &vae,
            params,
            &points,
            stage.beta,
            Some(&energy),
            e,
            run.cfg.seed.wrapping_add(1000 + s as u64),
        )
        .with_context(|| format!("evaluating stage {s} ({})", stage.label()))?;
        stages.push(StageResult {
            stage: s,
            label: stage.label(),
            kind: stage.kind.name().into(),
            beta: stage.beta,
            metrics,
        });
    }
    let out = VaeRunMetrics {
        system: run.cfg.system.spec.clone(),
        decoder: vae.decoder().kind().name().into(),
        latent_dim: vae.latent_dim(),
        seed: run.cfg.seed,
        stages,
    };
    let text = serde_json::to_string_pretty(&out)?;
    boltzflow_io::write_atomic(&run.dir.join("metrics.json"), |w| {
        w.write_all(text.as_bytes())
    })?;
    Ok(out)
}

/// Headers of the per-stage table (terminal and report).
pub const COLUMNS: [&str; 9] = [
    "stage",
    "β",
    "recon",
    "KL",
    "JD_encode",
    "JD_prior",
    "TC",
    "active",
    "f_acc",
];

/// One stage's cells of the table, formatted.
pub fn cells(s: &StageResult) -> [String; 9] {
    let x = &s.metrics;
    [
        s.label.clone(),
        s.beta.to_string(),
        format!("{:.4}", x.loss_recon),
        format!("{:.4}", x.loss_kl),
        format!("{:.3e}", x.jd_encode),
        format!("{:.3e}", x.jd_prior),
        format!("{:.4}", x.total_correlation),
        x.active_dims.to_string(),
        x.f_acc.map_or("-".into(), |f| format!("{f:.4}")),
    ]
}

/// Prints the metrics as a table.
pub fn print_table(m: &VaeRunMetrics) {
    println!(
        "{} decoder, latent dim {} on {} (seed {}):",
        m.decoder, m.latent_dim, m.system, m.seed
    );
    let widths = [16, 6, 10, 9, 10, 10, 8, 6, 7];
    let line = |c: &[String]| {
        let mut out = format!("{:<w$}", c[0], w = widths[0]);
        for (v, w) in c[1..].iter().zip(&widths[1..]) {
            out.push_str(&format!(" {v:>w$}"));
        }
        println!("{out}");
    };
    line(&COLUMNS.map(String::from));
    for s in &m.stages {
        line(&cells(s));
    }
}

/// Runs `boltzflow evaluate` on a VAE run directory.
pub fn run(a: &EvaluateArgs) -> Result<VaeRunMetrics> {
    let m = evaluate_dir(&a.run_dir)?;
    if !a.quiet {
        print_table(&m);
        println!("metrics: {}", a.run_dir.join("metrics.json").display());
    }
    Ok(m)
}

/// Runs `boltzflow sample` on a VAE run directory: z ~ P(z), x ~ p(x|z) with the last stage.
pub fn sample(a: &SampleArgs) -> Result<()> {
    if a.log_weights.is_some() {
        anyhow::bail!(boltzflow_core::Error::invalid(
            "--log-weights",
            "a VAE's marginal density ∫ p(x|z) P(z) dz is not tractable, so there are no importance weights; drop --log-weights (VAE Monte Carlo in `evaluate` samples exp(−u) exactly)"
        ));
    }
    let run = VaeRun::open(&a.run_dir)?;
    let (vae, trained) = run.trained()?;
    let params = &trained.last().expect("trained() is non-empty").1;
    let k = vae.latent_dim();
    let mut rng = RandomStreams::new(a.seed).stream("vae.sample");
    let u: Vec<f32> = (0..a.n * k)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let z = vae.prior_sample(params, &u, a.n);
    let (x, _) = vae.sample_x(params, &z, a.n, &mut rng);
    let x = ndarray::Array2::from_shape_vec((a.n, vae.dim()), x)?;
    boltzflow_io::write_npy_2d(&a.out, x.view())?;
    println!("{} configurations: {}", a.n, a.out.display());
    Ok(())
}
