//! What a trained VAE run gives: the metrics of every finished stage ([`VaeRun::evaluate`]:
//! losses, JD_encode, JD_prior, total correlation, active dimensions, f_acc → `metrics.json`),
//! draws x ~ ∫ p(x|z) P(z) dz ([`VaeRun::sample`]) and the encoder's latent means and variances
//! ([`VaeRun::encode`]).

use std::path::Path;

use boltzflow_core::{Energy, Error, RandomStreams, Result, ResultExt};
use ndarray::{Array2, ArrayView2};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::VaeRun;
use super::vae_representation::phi_psi;
use crate::trainer::Reduced;
use crate::vae::cv_quality::{
    CvKinetics, LatentBasins, cv_kinetics, kinetic_features, latent_basins, tica_cv_kinetics,
};
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
    /// The encoder mean μ(x) as a CV: VAMP-2 and implied timescale on the run's trajectories
    /// (absent for independent samples, or with a reason in `cv_kinetics_error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cv_kinetics: Option<CvKinetics>,
    /// Why the CV's kinetic scores could not be computed (a constant latent dimension, too
    /// short trajectories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cv_kinetics_error: Option<String>,
    /// For a peptide: how μ(x) separates the Ramachandran basins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basins: Option<LatentBasins>,
}

/// The references a latent CV's kinetic scores are set against.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KineticsReference {
    /// Lag time in frames of the data.
    pub lag: usize,
    /// Trajectories (frame-major) in the data.
    pub chains: usize,
    /// TICA's leading components (as many as latent dimensions) of the representation (periodic
    /// columns as sine and cosine).
    pub tica: CvKinetics,
    /// φ and ψ of a peptide as (sin, cos) pairs, VAMP-2 of its best `latent_dim`-component
    /// combination being TICA's on them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phi_psi: Option<CvKinetics>,
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
    /// For molecules: the representation (`cartesian`, `heavy-atoms`, `internal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub representation: Option<String>,
    /// Every finished stage, in protocol order.
    pub stages: Vec<StageResult>,
    /// Kinetic references for the stages' `cv_kinetics` (data from trajectories only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinetics_reference: Option<KineticsReference>,
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
        boltzflow_io::read_json(&dir.join("metrics.json"), "")
    }
}

impl VaeRun {
    /// The metrics of every finished stage on `[evaluate] n_encode` points of the run's data
    /// (f_acc under the system's energy, in the representation's coordinates for a molecule);
    /// each stage draws from its own seed. For data from trajectories, the encoder mean as a
    /// CV is scored by VAMP-2 and its implied timescale against TICA ([`cv_kinetics`]); for a
    /// peptide, by how it separates the Ramachandran basins.
    ///
    /// # Errors
    /// No finished stage; the data or the energy's errors (naming the stage).
    pub fn evaluate(&self) -> Result<VaeRunMetrics> {
        let data = self.data()?;
        let (vae, trained) = self.trained()?;
        let repr = self.fitted_representation()?;
        let e = &self.cfg.evaluate;
        let points = subset(
            &data,
            vae.dim(),
            e.n_encode,
            &RandomStreams::new(self.cfg.seed),
        );
        let reduced = || Reduced {
            inner: self.system.as_ref(),
            beta: self.beta,
        };
        let (plain, repr_energy) = (reduced(), repr.as_ref().and_then(|r| r.energy(reduced())));
        let energy: Option<&dyn Energy> = match (&repr, &repr_energy) {
            (None, _) => Some(&plain),
            (Some(_), Some(e)) => Some(e),
            (Some(_), None) => None,
        };
        let n = data.len() / vae.dim();
        let rows =
            Array2::from_shape_fn((n, vae.dim()), |(r, c)| f64::from(data[r * vae.dim() + c]));
        let torsions = match &repr {
            Some(r) => phi_psi(r, self.system.as_ref(), rows.view())?,
            None => None,
        };
        let chains = self.trajectories();
        let kinetics_reference = match chains {
            Some(c) => Some(self.kinetics_reference(&rows, torsions.as_ref(), c)?),
            None => None,
        }
        .flatten();
        let mut stages = Vec::new();
        for (s, (stage, params)) in trained.iter().enumerate() {
            let context = || format!("evaluating stage {s} ({})", stage.label());
            let metrics = evaluate(
                &vae,
                params,
                &points,
                stage.beta,
                energy,
                e,
                self.cfg.seed.wrapping_add(1000 + s as u64),
            )
            .with_context(context)?;
            let (mu, _) = vae.encode(params, &data, n);
            let mu = Array2::from_shape_vec((n, vae.latent_dim()), mu).expect("[n, k]");
            let (cv_kinetics, cv_kinetics_error) = match (&kinetics_reference, chains) {
                (Some(_), Some(c)) => match cv_kinetics(mu.view(), c, e.lag) {
                    Ok(k) => (Some(k), None),
                    Err(err) => (None, Some(err.to_string())),
                },
                _ => (None, None),
            };
            stages.push(StageResult {
                stage: s,
                label: stage.label(),
                kind: stage.kind.name().into(),
                beta: stage.beta,
                metrics,
                cv_kinetics,
                cv_kinetics_error,
                basins: torsions
                    .as_ref()
                    .map(|t| latent_basins(mu.view(), t.view())),
            });
        }
        Ok(VaeRunMetrics {
            system: self.cfg.system.spec.clone(),
            decoder: vae.decoder().kind().name().into(),
            latent_dim: vae.latent_dim(),
            seed: self.cfg.seed,
            representation: self.representation.map(|k| k.name().to_string()),
            stages,
            kinetics_reference,
        })
    }

    /// TICA's CV of the data (and φ/ψ's) at `[evaluate] lag`, or `None` when the trajectories
    /// are too short for the lag.
    fn kinetics_reference(
        &self,
        rows: &Array2<f64>,
        torsions: Option<&Array2<f64>>,
        chains: usize,
    ) -> Result<Option<KineticsReference>> {
        let (lag, k) = (self.cfg.evaluate.lag, self.cfg.vae.latent_dim);
        if rows.nrows() / chains < 2 * lag + 2 {
            return Ok(None);
        }
        let (_, periodic) = self.shape()?;
        let features = kinetic_features(rows.view(), &periodic);
        let tica = tica_cv_kinetics(features.view(), chains, lag, k)
            .context("the TICA reference of the latent CV's kinetics")?;
        let phi_psi = match torsions {
            Some(t) => Some(
                tica_cv_kinetics(kinetic_features(t.view(), &[0, 1]).view(), chains, lag, k)
                    .context("the φ/ψ reference of the latent CV's kinetics")?,
            ),
            None => None,
        };
        Ok(Some(KineticsReference {
            lag,
            chains,
            tica,
            phi_psi,
        }))
    }

    /// `n` configurations `[n, dim]` from the last finished stage: z ~ P(z) (the prior, a flow
    /// where configured), x ~ p(x|z); draws from the stream `vae.sample` of `seed`. For a
    /// molecule, the rows are positions in nm ([`super::Representation::positions`]: whole
    /// molecules, or the heavy atoms of `heavy-atoms`).
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
        let y = Array2::from_shape_vec((n, vae.dim()), x).expect("sample_x returns [n, dim]");
        match self.fitted_representation()? {
            Some(r) => r.positions(y.view()),
            None => Ok(y),
        }
    }

    /// The encoder's means and variances `[n, k]` of configurations `x` `[n, dim]` (for a
    /// molecule, Cartesian positions in nm, represented as in training) under stage `stage`
    /// (default: the last finished).
    ///
    /// # Errors
    /// `x` of the wrong width or not finite; an unknown stage; no finished stage.
    pub fn encode(
        &self,
        x: ArrayView2<'_, f64>,
        stage: Option<usize>,
    ) -> Result<(Array2<f64>, Array2<f64>)> {
        let (vae, trained) = self.trained()?;
        super::check_configurations(x, self.system.dim(), "configurations to encode")?;
        let x = self.features(x)?;
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
