//! What a trained VAN run gives: for every trained β ([`VanRun::evaluate`]) F_q per spin with
//! its standard error, energy and entropy per spin, the reweighted F, and — where an exact
//! reference exists (enumeration, Kaufman) — the exact values and the relative error, with the
//! naive mean-field free energy alongside; exact samples of q with their log-weights
//! ([`VanRun::sample`]) and log q of given configurations ([`VanRun::log_prob`]).

use boltzflow_core::{Error, RandomStreams, Result};
use boltzflow_systems::spins::mean_field;
use ndarray::{Array1, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::VanRun;
use crate::van::{Van, estimate};

/// One β of metrics.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BetaResult {
    /// Inverse temperature.
    pub beta: f64,
    /// F_q / n with F = −ln Z / β (variational upper bound).
    pub f_per_spin: f64,
    /// Its standard error.
    pub f_per_spin_stderr: f64,
    /// ⟨E⟩_q / n.
    pub energy_per_spin: f64,
    /// Its standard error.
    #[serde(default)]
    pub energy_per_spin_stderr: f64,
    /// S_q / n.
    pub entropy_per_spin: f64,
    /// Its standard error.
    #[serde(default)]
    pub entropy_per_spin_stderr: f64,
    /// −ln E_q[e^{−βE}/q] / (βn): the importance-weighted estimate.
    pub f_reweighted_per_spin: f64,
    /// Kish effective sample size over the number of samples.
    pub ess_fraction: f64,
    /// Samples of q used.
    pub n_samples: usize,
    /// Exact F / n, where a reference exists.
    pub f_exact_per_spin: Option<f64>,
    /// Exact ⟨E⟩ / n.
    pub energy_exact_per_spin: Option<f64>,
    /// Exact S / n.
    pub entropy_exact_per_spin: Option<f64>,
    /// |F_q − F| / |F|.
    pub rel_error: Option<f64>,
    /// Naive mean-field F / n (an upper bound too).
    pub f_mean_field_per_spin: f64,
    /// |F_MF − F| / |F|.
    pub rel_error_mean_field: Option<f64>,
}

/// metrics.json of a VAN run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VanMetrics {
    /// The system's specification.
    pub system: String,
    /// Spins.
    pub n_spins: usize,
    /// The network, in words.
    pub network: String,
    /// Its parameter count.
    pub parameters: usize,
    /// The exact reference, in words, where there is one.
    pub reference: Option<String>,
    /// One entry per trained β.
    pub results: Vec<BetaResult>,
}

impl VanMetrics {
    /// Writes `dir/metrics.json` atomically.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn save(&self, dir: &std::path::Path) -> Result<()> {
        boltzflow_io::write_json(&dir.join("metrics.json"), self)
    }
}

/// Samples of the network of the last trained β ([`VanRun::sample`]).
pub struct VanSamples {
    /// Spins `[n, n_spins]`, ±1.
    pub spins: Array2<f64>,
    /// ln q of each sample `[n]`.
    pub log_q: Array1<f64>,
    /// log w = −βE − ln q `[n]`.
    pub log_weights: Array1<f64>,
    /// The β of the network.
    pub beta: f64,
}

impl VanRun {
    /// Evaluates every trained β with `n_samples` samples (default `[evaluate] n_samples`),
    /// each from its own stream `evaluate.beta{k}` of the run's seed.
    ///
    /// # Errors
    /// No trained β; fewer than 2 samples; the system's errors.
    pub fn evaluate(&self, n_samples: Option<usize>) -> Result<VanMetrics> {
        let n_samples = n_samples.unwrap_or(self.cfg.evaluate.n_samples);
        if n_samples < 2 {
            return Err(Error::invalid("n_samples", "need at least 2 samples"));
        }
        let trained = self.trained()?;
        let betas: Vec<f64> = trained.iter().map(|(b, _)| *b).collect();
        let exact = self.system.exact(&betas)?;
        let reference = exact.as_ref().map(|_| {
            if self.system.lattice_side().is_some() {
                "Kaufman (1949) exact finite-lattice partition function".to_string()
            } else {
                format!("exact enumeration of 2^{} states", self.system.n())
            }
        });
        let parameters = trained[0].1.params.len();
        let mut results = Vec::new();
        for (k, (beta, mut van)) in trained.into_iter().enumerate() {
            let mut rng = RandomStreams::new(self.cfg.seed).stream(&format!("evaluate.beta{k}"));
            let est = estimate(
                &mut van,
                &self.system,
                beta,
                n_samples,
                self.cfg.train.batch_size,
                &mut rng,
            )?;
            let ex = exact.as_ref().map(|e| e[k]);
            let mf = mean_field::f_per_spin(self.system.couplings(), beta);
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
        let net = &self.cfg.network;
        Ok(VanMetrics {
            system: self.system.spec(),
            n_spins: self.system.n(),
            network: format!(
                "{:?} depth {} width {}{}",
                net.kind,
                net.depth,
                net.width,
                if net.z2 { " z2" } else { "" }
            )
            .to_lowercase(),
            parameters,
            reference,
            results,
        })
    }

    /// The network of the last trained β.
    fn last_network(&self) -> Result<(f64, Van)> {
        Ok(self.trained()?.pop().expect("trained() has at least one β"))
    }

    /// `n` exact samples of the network of the last trained β, from the stream `sample` of
    /// `seed`, with ln q and log w = −βE − ln q.
    ///
    /// # Errors
    /// n = 0; no trained β.
    pub fn sample(&self, n: usize, seed: u64) -> Result<VanSamples> {
        if n == 0 {
            return Err(Error::invalid("n", "must be at least 1"));
        }
        let (beta, mut van) = self.last_network()?;
        let mut rng = RandomStreams::new(seed).stream("sample");
        let (mut s, mut lq) = (Vec::new(), Vec::new());
        van.sample(n, &mut rng, &mut s, &mut lq);
        let spins = self.system.n();
        let mut e = vec![0.0; n];
        self.system.energies(&s, &mut e)?;
        let log_weights = e.iter().zip(&lq).map(|(&e, &l)| -beta * e - l).collect();
        Ok(VanSamples {
            spins: Array2::from_shape_fn((n, spins), |(r, i)| f64::from(s[r * spins + i])),
            log_q: Array1::from(lq),
            log_weights,
            beta,
        })
    }

    /// ln q of configurations `s` `[n, n_spins]` (entries ±1) under the network of the last
    /// trained β.
    ///
    /// # Errors
    /// The wrong width, or an entry that is not ±1 (naming its row and column).
    pub fn log_prob(&self, s: ArrayView2<'_, f64>) -> Result<Array1<f64>> {
        let n = self.system.n();
        if s.ncols() != n {
            return Err(Error::Shape {
                what: "spin configurations".into(),
                expected: format!("[rows, {n}]"),
                got: format!("[{}, {}]", s.nrows(), s.ncols()),
            });
        }
        if let Some((i, v)) = s.iter().enumerate().find(|(_, v)| v.abs() != 1.0) {
            return Err(Error::invalid(
                "spins",
                format!("entries must be ±1; row {}, column {} is {v}", i / n, i % n),
            ));
        }
        let (_, mut van) = self.last_network()?;
        let sf: Vec<f32> = s.iter().map(|&v| v as f32).collect();
        let mut lq = Vec::new();
        van.log_prob(&sf, &mut lq);
        Ok(Array1::from(lq))
    }
}
