//! What a trained VAE run gives: the metrics of every finished stage ([`VaeRun::evaluate`]:
//! losses, JD_encode, JD_prior, total correlation, active dimensions, f_acc → `metrics.json`),
//! draws x ~ ∫ p(x|z) P(z) dz ([`VaeRun::sample`]) and the encoder's latent means and variances
//! ([`VaeRun::encode`]).

use std::path::Path;

use boltzflow_core::{Error, RandomStreams, Result, ResultExt};
use ndarray::{Array2, ArrayView2};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::VaeRun;
use crate::trainer::Reduced;
use crate::vae::evaluate::{VaeMetrics, evaluate, subset};

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
    /// The system's specification.
    pub system: String,
    /// The decoder's name.
    pub decoder: String,
    /// Latent dimensions.
    pub latent_dim: usize,
    /// The run's seed.
    pub seed: u64,
    /// Every finished stage, in protocol order.
    pub stages: Vec<StageResult>,
}

impl VaeRunMetrics {
    /// Writes `dir/metrics.json` atomically.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn save(&self, dir: &Path) -> Result<()> {
        boltzflow_io::write_json(&dir.join("metrics.json"), self)
    }

    /// Reads a VAE run's metrics.json.
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::BadFile`] naming the file.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("metrics.json");
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            action: "cannot read",
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| Error::BadFile {
            path,
            reason: e.to_string(),
        })
    }
}

impl VaeRun {
    /// The metrics of every finished stage on `[evaluate] n_encode` points of the run's data
    /// (f_acc under the system's energy); each stage draws from its own seed.
    ///
    /// # Errors
    /// No finished stage; the data or the energy's errors (naming the stage).
    pub fn evaluate(&self) -> Result<VaeRunMetrics> {
        let data = self.data()?;
        let (vae, trained) = self.trained()?;
        let e = &self.cfg.evaluate;
        let points = subset(
            &data,
            vae.dim(),
            e.n_encode,
            &RandomStreams::new(self.cfg.seed),
        );
        let energy = Reduced {
            inner: self.system.as_ref(),
            beta: self.beta,
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
                self.cfg.seed.wrapping_add(1000 + s as u64),
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
        Ok(VaeRunMetrics {
            system: self.cfg.system.spec.clone(),
            decoder: vae.decoder().kind().name().into(),
            latent_dim: vae.latent_dim(),
            seed: self.cfg.seed,
            stages,
        })
    }

    /// `n` configurations `[n, dim]` from the last finished stage: z ~ P(z) (the prior, a flow
    /// where configured), x ~ p(x|z); draws from the stream `vae.sample` of `seed`.
    ///
    /// # Errors
    /// n = 0; no finished stage.
    pub fn sample(&self, n: usize, seed: u64) -> Result<Array2<f64>> {
        if n == 0 {
            return Err(Error::invalid("n", "must be at least 1"));
        }
        let (vae, trained) = self.trained()?;
        let params = &trained.last().expect("trained() is non-empty").1;
        let k = vae.latent_dim();
        let mut rng = RandomStreams::new(seed).stream("vae.sample");
        let u: Vec<f32> = (0..n * k)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        let z = vae.prior_sample(params, &u, n);
        let (x, _) = vae.sample_x(params, &z, n, &mut rng);
        Ok(Array2::from_shape_vec((n, vae.dim()), x).expect("sample_x returns [n, dim]"))
    }

    /// The encoder's means and variances `[n, k]` of configurations `x` `[n, dim]` under stage
    /// `stage` (default: the last finished).
    ///
    /// # Errors
    /// `x` of the wrong width or not finite; an unknown stage; no finished stage.
    pub fn encode(
        &self,
        x: ArrayView2<'_, f64>,
        stage: Option<usize>,
    ) -> Result<(Array2<f64>, Array2<f64>)> {
        let (vae, trained) = self.trained()?;
        super::check_configurations(x, vae.dim(), "configurations to encode")?;
        let s = stage.unwrap_or(trained.len() - 1);
        let params = &trained
            .get(s)
            .ok_or_else(|| {
                Error::invalid(
                    "stage",
                    format!("the run has {} finished stages, got {s}", trained.len()),
                )
            })?
            .1;
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let (mu, var) = vae.encode(params, &xf, x.nrows());
        let shape = (x.nrows(), vae.latent_dim());
        let to = |v: Vec<f64>| Array2::from_shape_vec(shape, v).expect("encode returns [n, k]");
        Ok((to(mu), to(var)))
    }
}
