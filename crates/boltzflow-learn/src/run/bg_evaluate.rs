//! The evaluation of a trained Boltzmann generator ([`BgRun::evaluate`]): one-shot samples
//! reweighted to the Boltzmann distribution (ESS, ln Z, reverse KL), the NLL of held-out data,
//! flow-proposed and latent-space Metropolis, ΔF between the two states of `[evaluate]
//! threshold` with bootstrap errors (importance sampling and BAR against held-out data), and
//! the free-energy profile along `[evaluate] coordinate`, each next to the exact value
//! (quadrature, 2-D systems) or a reference file where one exists.
//!
//! [`BgEvaluation::save`] writes `metrics.json`, `profile.json`, and the samples the report
//! draws (`samples.npy`, `log_weights.npy`, `held_out_log_weights.npy`).

use std::path::{Path, PathBuf};

use boltzflow_coords::features::{
    RamachandranBasin, chiral_centers, dihedrals, first_phi_psi, same_chirality,
};
use boltzflow_core::{Coordinate, Energy, Error, RandomStreams, Result, ResultExt};
use boltzflow_systems::quadrature::GridQuadrature;
use ndarray::{Array2, ArrayView1, ArrayView2};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::BgRun;
use crate::config::{AisKernelName, EvaluateConfig};
use crate::flow_mc;
use crate::{ais, generator::BoltzmannGenerator, profile_bias::ProfileBias};

/// Contiguous blocks for the standard errors of the MD data's populations.
const DATA_BLOCKS: usize = 20;
use crate::reweight::{self, Estimate};

/// Below this MBAR overlap between the generator and a state, BAR is flagged as unreliable
/// (the usual rule of thumb, e.g. alchemlyb's overlap-matrix check).
pub const BAR_MIN_OVERLAP: f64 = 0.03;

/// Generated configurations kept in the run directory for the report.
const REPORT_SAMPLES: usize = 20_000;

/// Rows per chunk when the flow runs over many samples.
const CHUNK: usize = 8192;

/// What [`BgRun::evaluate`] takes beyond the run's `[evaluate]`.
#[derive(Debug, Clone, Default)]
pub struct BgEvaluateOptions {
    /// Held-out configurations `[n, dim]` (npy or a trajectory) for the NLL and BAR; by
    /// default the validation rows of the run's data.npy. For a peptide run trained without
    /// data they are also the MD its Ramachandran populations and φ/ψ distances are compared
    /// with.
    pub data: Option<PathBuf>,
    /// Generated samples (default: `[evaluate] n_samples`).
    pub n_samples: Option<usize>,
}

/// The free-energy profile along the evaluation coordinate (`profile.json`, drawn by the
/// report). Undefined values (empty bins) are JSON `null`, read back as NaN.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ProfileFile {
    /// The coordinate, as written in `[evaluate] coordinate`.
    pub coordinate: String,
    /// Bin centres.
    pub centres: Vec<f64>,
    /// Reweighted F(s) in kT (aligned on the reference where one exists).
    #[serde(deserialize_with = "nan_for_null")]
    pub free_energy: Vec<f64>,
    /// Bootstrap standard errors of `free_energy`.
    #[serde(deserialize_with = "nan_for_null")]
    pub std_error: Vec<f64>,
    /// The reference profile, if any.
    #[serde(default, deserialize_with = "nan_for_null_opt")]
    pub reference: Option<Vec<f64>>,
    /// Where the reference comes from.
    pub reference_kind: Option<String>,
    /// The raw generator's F(s) (no weights).
    #[serde(deserialize_with = "nan_for_null")]
    pub unweighted: Vec<f64>,
    /// BAR between the generator and held-out data, per bin (absent without held-out data).
    #[serde(default, deserialize_with = "nan_for_null_opt")]
    pub bar_free_energy: Option<Vec<f64>>,
    /// Bootstrap standard errors of `bar_free_energy`.
    #[serde(default, deserialize_with = "nan_for_null_opt")]
    pub bar_std_error: Option<Vec<f64>>,
    /// F(s) from annealed importance sampling (`[evaluate] ais_samples`), aligned like
    /// `free_energy`.
    #[serde(default, deserialize_with = "nan_for_null_opt")]
    pub ais_free_energy: Option<Vec<f64>>,
    /// Bootstrap standard errors of `ais_free_energy`.
    #[serde(default, deserialize_with = "nan_for_null_opt")]
    pub ais_std_error: Option<Vec<f64>>,
}

impl ProfileFile {
    /// Reads a `profile.json`.
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::BadFile`] naming the file.
    pub fn read(path: &Path) -> Result<Self> {
        boltzflow_io::read_json(path, "")
    }
}

fn nan_for_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<f64>, D::Error> {
    let v: Vec<Option<f64>> = Deserialize::deserialize(d)?;
    Ok(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
}

fn nan_for_null_opt<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Vec<f64>>, D::Error> {
    let v: Option<Vec<Option<f64>>> = Deserialize::deserialize(d)?;
    Ok(v.map(|v| v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect()))
}

fn finite_or_null(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

/// What an evaluation found.
#[derive(Debug, Clone)]
pub struct BgEvaluation {
    /// metrics.json: name → number (or string, for notes and warnings), in insertion order.
    pub metrics: Map<String, Value>,
    /// The profile, when `[evaluate]` has a coordinate and a profile range.
    pub profile: Option<ProfileFile>,
    /// The generated configurations `[n, dim]`.
    pub x: Array2<f64>,
    /// Their log-weights log w = −u − log q `[n]`.
    pub log_weights: Vec<f64>,
    /// log w of the held-out configurations (−u − log q), when there were any.
    pub held_out_log_weights: Option<Vec<f64>>,
    /// AIS, level by level (empty without AIS); saved as `ais_levels.csv`.
    pub ais_trace: Vec<ais::AisLevel>,
}

impl BgEvaluation {
    /// The metric `name` as a number (NaN for `null`), if it was computed.
    pub fn number(&self, name: &str) -> Option<f64> {
        self.metrics
            .get(name)
            .map(|v| v.as_f64().unwrap_or(f64::NAN))
    }

    /// Writes metrics.json, profile.json (if any) and the report's samples into `dir`, each
    /// atomically; a held_out_log_weights.npy from an earlier evaluation with held-out data is
    /// removed when this one has none.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn save(&self, dir: &Path) -> Result<()> {
        if let Some(p) = &self.profile {
            boltzflow_io::write_json(&dir.join("profile.json"), p)?;
        }
        boltzflow_io::write_json(&dir.join("metrics.json"), &self.metrics)?;
        let keep = self.x.nrows().min(REPORT_SAMPLES);
        boltzflow_io::write_npy_2d(
            &dir.join("samples.npy"),
            self.x.slice(ndarray::s![..keep, ..]),
        )?;
        boltzflow_io::write_npy_1d(
            &dir.join("log_weights.npy"),
            ArrayView1::from(&self.log_weights[..keep]),
        )?;
        let held_out = dir.join("held_out_log_weights.npy");
        match &self.held_out_log_weights {
            Some(lw) => boltzflow_io::write_npy_1d(&held_out, ArrayView1::from(lw))?,
            None => remove_stale(&held_out)?,
        }
        let levels = dir.join(AIS_LEVELS_FILE);
        if self.ais_trace.is_empty() {
            remove_stale(&levels)?;
        } else {
            boltzflow_io::write_atomic(&levels, |w| {
                writeln!(
                    w,
                    "level,beta,ess_fraction,log_w_range,acceptance,step,resampled"
                )?;
                for l in &self.ais_trace {
                    writeln!(
                        w,
                        "{},{},{},{},{},{},{}",
                        l.level,
                        l.beta,
                        l.ess_fraction,
                        l.log_w_range,
                        l.acceptance,
                        l.step,
                        l.resampled
                    )?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }
}

/// AIS level by level, written by `evaluate` when it runs AIS.
pub const AIS_LEVELS_FILE: &str = "ais_levels.csv";

/// Removes a result file an earlier evaluation wrote and this one does not.
fn remove_stale(path: &Path) -> Result<()> {
    if path.exists() {
        std::fs::remove_file(path).map_err(|source| Error::Io {
            action: "cannot remove the stale",
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// AIS samples as configurations, their log-weights for e^{−u} and the run level by level.
struct AisResult {
    log_w: Vec<f64>,
    x: Array2<f64>,
    trace: Vec<ais::AisLevel>,
    /// Each sample's initial sample (copies share one after resampling).
    ancestors: Vec<usize>,
    /// Independent populations (1 without resampling): the bootstrap's blocks.
    populations: usize,
}

impl AisResult {
    /// `replicates` bootstrap resamples: of samples, or of whole populations after resampling.
    fn bootstrap(&self, replicates: usize) -> reweight::Bootstrap {
        reweight::Bootstrap {
            replicates,
            blocks: (self.populations > 1).then_some(self.populations),
        }
    }
}

/// Held-out configurations with their log-weights −u − log q.
struct HeldOut {
    x: Array2<f64>,
    log_w: Vec<f64>,
}

impl BgRun {
    /// Evaluates the trained generator (see the module documentation). Random numbers come from
    /// named streams of the run's seed: the same run evaluates to the same numbers.
    ///
    /// # Errors
    /// Fewer than 2 samples; no checkpoint; held-out data of the wrong width; a NaN energy of a
    /// generated sample (naming it); a reference file that cannot be read or whose bins differ
    /// from the profile's.
    pub fn evaluate(&self, opts: &BgEvaluateOptions) -> Result<BgEvaluation> {
        let (mut bg, epoch) = self.load_generator()?;
        let ev = &self.cfg.evaluate;
        let n = opts.n_samples.unwrap_or(ev.n_samples);
        if n < 2 {
            return Err(Error::invalid("n_samples", "need at least 2 samples"));
        }
        let streams = RandomStreams::new(self.cfg.seed);
        // In the flow's coordinates (internal ones for internal runs), restricted to the reduced
        // domain of identical particles where the run has one (see RunEnergy).
        let energy = self.weighting_energy()?;
        let (x, neg_log_q) = bg.sample(
            n,
            ev.prior_temperature,
            CHUNK,
            &mut streams.stream("evaluate.sample"),
        );
        let u = energy.energy(x.view())?;
        if let Some(i) = u.iter().position(|v| v.is_nan()) {
            return Err(Error::NonFinite {
                what: "energy of a generated sample".into(),
                location: format!("sample {i}"),
                value: f64::NAN,
            });
        }
        let log_w: Vec<f64> = u.iter().zip(&neg_log_q).map(|(u, q)| -u + q).collect();

        let mut out = Map::new();
        out.insert("epoch".into(), json!(epoch));
        out.insert("n_samples".into(), json!(n));
        out.insert("prior_temperature".into(), json!(ev.prior_temperature));
        out.insert(
            "ess_fraction".into(),
            json!(reweight::ess_fraction(&log_w)?),
        );
        insert_pareto_k(&mut out, "", &log_w);
        let finite: Vec<f64> = u
            .iter()
            .zip(&neg_log_q)
            .filter(|(u, _)| u.is_finite())
            .map(|(u, q)| u - q)
            .collect();
        let kl_reverse = finite.iter().sum::<f64>() / finite.len().max(1) as f64;
        out.insert("kl_reverse".into(), finite_or_null(kl_reverse));
        let m = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let ln_z = m + (log_w.iter().map(|l| (l - m).exp()).sum::<f64>() / n as f64).ln();
        out.insert("ln_z".into(), finite_or_null(ln_z));
        // (u − ln n! on the reduced domain: the energy itself is reported.)
        let shift = self.permutations().map_or(0.0, |p| p.ln_symmetry());
        let finite_u: Vec<f64> = u.iter().copied().filter(|v| v.is_finite()).collect();
        out.insert(
            "mean_energy_generated".into(),
            finite_or_null(finite_u.iter().sum::<f64>() / n as f64 + shift),
        );
        if self.permutations().is_some() {
            // Samples outside the labelling the generator learned have weight 0.
            out.insert(
                "reduced_domain_fraction".into(),
                json!(finite_u.len() as f64 / n as f64),
            );
        }
        if let Some(exact) = self.system.exact_ln_z() {
            out.insert("ln_z_exact".into(), json!(exact));
        }
        let held_out = self.held_out(opts, &mut bg, &energy, &mut out)?;

        let (chain, acc) =
            flow_mc::independence_metropolis(&log_w, &mut streams.stream("evaluate.flow_mc"))?;
        out.insert("flow_mc_acceptance".into(), json!(acc));
        // Metropolis in latent space: exact samples from the pulled-back Boltzmann distribution.
        let latent = if ev.latent_mc_chains > 0 && ev.latent_mc_steps >= 20 {
            let (xl, acc_l) = flow_mc::latent_metropolis(
                &mut bg,
                &energy,
                ev.latent_mc_chains,
                ev.latent_mc_steps,
                ev.latent_mc_steps / 4,
                10,
                ev.latent_mc_step,
                &mut streams.stream("evaluate.latent_mc"),
            )?;
            out.insert("latent_mc_acceptance".into(), json!(acc_l));
            out.insert("latent_mc_samples".into(), json!(xl.nrows()));
            Some(xl)
        } else {
            None
        };

        // Configurations from here on (the coordinate, the report's samples).
        let x = super::bg_coordinates::to_configurations(self.layer()?, x)?;
        // AIS (any system): its ESS and ln Z here, its ΔF and profile with the coordinate below.
        let ais = if ev.ais_samples > 0 {
            let bias = self.flattening_bias(&x, &log_w)?;
            Some(self.ais(&mut bg, &energy, bias.as_ref(), &streams, &mut out)?)
        } else {
            None
        };
        self.ramachandran(&x, &log_w, &streams, opts, None, &mut out)?;
        if let Some(a) = &ais {
            // The reweighted basin populations from the AIS samples, as `ais_population_*`.
            let mut part = Map::new();
            let boot = Some(a.bootstrap(ev.bootstrap));
            self.ramachandran(&a.x, &a.log_w, &streams, opts, boot, &mut part)?;
            for (k, v) in part {
                if k.starts_with("population_") && !k.contains("unweighted") {
                    out.insert(format!("ais_{k}"), v);
                }
            }
        }
        let mut profile = None;
        if let Some(text) = &ev.coordinate {
            let coord = self.coordinate(text, "evaluate.coordinate")?;
            let s = coord.values(&x);
            let quad = self.quadrature()?;
            let reference = ev
                .reference
                .as_deref()
                .map(ReferenceFile::read)
                .transpose()?;
            let ctx = StateContext {
                ev,
                coord: &coord,
                s: &s,
                log_w: &log_w,
                held_out: held_out.as_ref(),
                quad: quad.as_ref(),
                reference: reference.as_ref(),
                streams: &streams,
                boot: ev.bootstrap.into(),
                ancestors: None,
            };
            if let Some(thr) = ev.threshold {
                let visited: Vec<Option<bool>> = chain.iter().map(|&i| Some(s[i] >= thr)).collect();
                ctx.delta_f(thr, &visited, latent.as_ref(), &mut out)?;
            }
            if let Some([lo, hi]) = ev.profile_range {
                profile = Some(ctx.profile(text, lo, hi, &mut out)?);
            }
            if let Some(a) = &ais {
                let ais_s = coord.values(&a.x);
                let ctx = StateContext {
                    s: &ais_s,
                    log_w: &a.log_w,
                    held_out: None,
                    boot: a.bootstrap(ev.bootstrap),
                    ancestors: (a.populations > 1).then_some(&a.ancestors[..]),
                    ..ctx
                };
                ctx.ais_estimates(text, profile.as_mut(), &mut out)?;
            }
        }
        Ok(BgEvaluation {
            metrics: out,
            profile,
            x,
            log_weights: log_w,
            held_out_log_weights: held_out.map(|h| h.log_w),
            ais_trace: ais.map(|a| a.trace).unwrap_or_default(),
        })
    }

    /// `[evaluate] ais_flatten`: the bias that flattens the generator's reweighted profile
    /// (`x` configurations with their log-weights `log_w`) up to the cap; `None` without it.
    fn flattening_bias(&self, x: &Array2<f64>, log_w: &[f64]) -> Result<Option<ProfileBias>> {
        let ev = &self.cfg.evaluate;
        let (Some(cap), Some(text), Some([lo, hi])) =
            (ev.ais_flatten, &ev.coordinate, ev.profile_range)
        else {
            return Ok(None);
        };
        if self.layer()?.is_some() {
            return Err(Error::invalid(
                "evaluate.ais_flatten",
                "works in Cartesian flows only (this run's flow is in internal coordinates)",
            ));
        }
        let coord = self.coordinate(text, "evaluate.coordinate")?;
        let edges = reweight::uniform_edges(lo, hi, ev.profile_bins);
        let centres: Vec<f64> = edges.windows(2).map(|e| 0.5 * (e[0] + e[1])).collect();
        let no_bootstrap = &mut RandomStreams::new(self.cfg.seed).stream("evaluate.ais_flatten");
        let plain = reweight::profile(&coord.values(x), log_w, &edges, 0, no_bootstrap)?;
        ProfileBias::flattening(coord, &centres, &plain.free_energy, cap).map(Some)
    }

    /// AIS samples (`[evaluate] ais_*`): their log-weights for the target and configurations
    /// (Cartesian for molecules); with a flattening `bias` the samples anneal towards
    /// e^{−u + b(s)} and their weights carry e^{−b(s)}. Reports `ais_ess_fraction`,
    /// `ais_ln_z`, `ais_acceptance`, `ais_energy_evaluations`, `ais_seconds` (and with a bias
    /// `ais_flatten`, `ais_ess_fraction_flattened`: the ESS towards the biased target).
    fn ais(
        &self,
        bg: &mut BoltzmannGenerator,
        energy: &dyn Energy,
        bias: Option<&ProfileBias>,
        streams: &RandomStreams,
        out: &mut Map<String, Value>,
    ) -> Result<AisResult> {
        let ev = &self.cfg.evaluate;
        let started = std::time::Instant::now();
        let schedule = ais::AisSchedule {
            levels: ev.ais_levels,
            steps_per_level: ev.ais_steps,
            step: ev.ais_step,
            exponent: ev.ais_exponent,
            kernel: match ev.ais_kernel {
                AisKernelName::Hmc => ais::AisKernel::Hmc {
                    leapfrog: ev.ais_leapfrog,
                },
                AisKernelName::Metropolis => ais::AisKernel::Metropolis,
            },
            resampling: ev.ais_resample.map(|threshold| ais::Resampling {
                threshold,
                populations: ev.ais_populations,
                pool: ev.ais_pool,
            }),
        };
        let flattened = bias.map(|b| b.biased(energy));
        let target: &dyn Energy = match &flattened {
            Some(f) => f,
            None => energy,
        };
        let mut a = ais::latent_ais(
            bg,
            target,
            ev.ais_samples,
            schedule,
            &mut streams.stream("evaluate.ais"),
        )?;
        if let Some(b) = bias {
            out.insert("ais_flatten".into(), json!(ev.ais_flatten));
            out.insert(
                "ais_ess_fraction_flattened".into(),
                json!(reweight::ess_fraction(&a.log_w)?),
            );
            // From the biased target back to e^{−u}: flow coordinates are configurations here.
            for (lw, row) in a.log_w.iter_mut().zip(a.x.rows()) {
                *lw -= b.value(row);
            }
        }
        out.insert("ais_samples".into(), json!(ev.ais_samples));
        out.insert("ais_levels".into(), json!(ev.ais_levels));
        if let Some(t) = ev.ais_resample {
            // Sequential Monte Carlo: how often populations were resampled, and how many
            // initial samples still have descendants (the ESS fraction below is of the
            // weights since each population's last resampling).
            out.insert("ais_resample".into(), json!(t));
            out.insert("ais_populations".into(), json!(a.populations));
            let resamplings: usize = a.trace.iter().map(|l| l.resampled).sum();
            out.insert("ais_resamplings".into(), json!(resamplings));
            if ev.ais_pool > 0 {
                // The pool's start: where along the path the levels began.
                out.insert("ais_pool".into(), json!(ev.ais_pool));
                out.insert(
                    "ais_pool_beta".into(),
                    json!(a.trace.first().map_or(f64::NAN, |l| l.beta)),
                );
            }
            out.insert(
                "ais_distinct_ancestors".into(),
                json!(a.distinct_ancestors()),
            );
            // The conservative ESS of a resampling run: copies of one initial sample count
            // once (their weights summed), per initial sample.
            out.insert(
                "ais_lineage_ess_fraction".into(),
                json!(
                    reweight::effective_lineages(&a.log_w, &a.ancestors, |_| true)
                        / ev.ais_samples as f64
                ),
            );
        }
        out.insert(
            "ais_ess_fraction".into(),
            json!(reweight::ess_fraction(&a.log_w)?),
        );
        insert_pareto_k(out, "ais_", &a.log_w);
        let m = a.log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean = a.log_w.iter().map(|l| (l - m).exp()).sum::<f64>() / a.log_w.len() as f64;
        out.insert("ais_ln_z".into(), finite_or_null(m + mean.ln()));
        out.insert("ais_acceptance".into(), finite_or_null(a.acceptance));
        out.insert("ais_energy_evaluations".into(), json!(a.energy_evaluations));
        out.insert("ais_seconds".into(), json!(started.elapsed().as_secs_f64()));
        let x = super::bg_coordinates::to_configurations(self.layer()?, a.x)?;
        Ok(AisResult {
            log_w: a.log_w,
            x,
            trace: a.trace,
            ancestors: a.ancestors,
            populations: a.populations,
        })
    }

    /// Held-out equilibrium data (`--data`, else the validation rows of data.npy) with their
    /// NLL under the generator.
    fn held_out(
        &self,
        opts: &BgEvaluateOptions,
        bg: &mut crate::BoltzmannGenerator,
        energy: &dyn Energy,
        out: &mut Map<String, Value>,
    ) -> Result<Option<HeldOut>> {
        let held_out = match &opts.data {
            Some(path) => {
                let xd = boltzflow_io::trajectory::read_coordinates(path)
                    .with_context(|| format!("held-out data `{}`", path.display()))?;
                if xd.ncols() != self.system.dim() {
                    return Err(Error::Shape {
                        what: format!("held-out data `{}`", path.display()),
                        expected: format!("[n, {}]", self.system.dim()),
                        got: format!("[{}, {}]", xd.nrows(), xd.ncols()),
                    });
                }
                Some((xd, format!("--data {}", path.display())))
            }
            None => self
                .validation_rows()?
                .map(|x| (x, "validation rows of data.npy".to_string())),
        };
        let Some((mut xd, source)) = held_out.filter(|(x, _)| x.nrows() > 0) else {
            return Ok(None);
        };
        // The labelling the generator learned (a no-op for data.npy, relabelled by `train`).
        self.reduce(&mut xd)?;
        // NLL and log-weights in the flow's coordinates; the held-out rows stay configurations.
        let (yd, _) = super::bg_coordinates::to_flow_space(self.layer()?, xd.view())?;
        let lq = bg.log_density(&yd, CHUNK);
        // In the molecule's internal coordinates (nm, rad) rather than the standardised ones
        // of the flow, so that the number does not depend on the data's statistics:
        // −log p(q) = −log p(y) + Σ log scale.
        let standardisation = self.layer()?.map_or(0.0, |l| l.log_scale());
        let nll = -lq.iter().sum::<f64>() / lq.len() as f64 + standardisation;
        out.insert("nll".into(), finite_or_null(nll));
        out.insert(
            "nll_per_dof".into(),
            finite_or_null(nll / yd.ncols() as f64),
        );
        out.insert("held_out".into(), json!(source));
        out.insert("held_out_rows".into(), json!(xd.nrows()));
        let ud = energy.energy(yd.view())?;
        let log_w = ud
            .iter()
            .zip(&lq)
            .map(|(u, q)| {
                if u.is_nan() {
                    f64::NEG_INFINITY
                } else {
                    -u - q
                }
            })
            .collect();
        Ok(Some(HeldOut { x: xd, log_w }))
    }

    /// For peptides (a topology with φ and ψ): the populations of the Ramachandran basins
    /// ([`RamachandranBasin`]) of the first such residue — reweighted with bootstrap errors,
    /// of the raw generator, and of the run's data.npy (the MD the run learned from).
    ///
    /// Chirality: a flow on internal coordinates can generate the mirror image (D-) of an
    /// α carbon, whose energy the force field does not distinguish but whose (φ, ψ) are
    /// mirrored — a D-C7eq lands in αL. As in FAB (Midgley et al. 2023), configurations whose
    /// chiral centres differ from the PDB structure's are reported (`d_fraction`, raw and
    /// weighted) and left out of the populations.
    ///
    /// `ais`: `None` for the generator's own samples (compared with the MD as well), or the
    /// bootstrap of AIS samples (not compared; by populations after resampling).
    fn ramachandran(
        &self,
        x: &Array2<f64>,
        log_w: &[f64],
        streams: &RandomStreams,
        opts: &BgEvaluateOptions,
        ais: Option<reweight::Bootstrap>,
        out: &mut Map<String, Value>,
    ) -> Result<()> {
        let Some(top) = self.system.as_openmm().and_then(|o| o.topology()) else {
            return Ok(());
        };
        let Some((residue, quads)) = first_phi_psi(top) else {
            return Ok(());
        };
        let basins = |x: ArrayView2<f64>| -> Result<Vec<Option<usize>>> {
            let angles = dihedrals(x, &quads)?;
            Ok(angles
                .outer_iter()
                .map(|r| Some(RamachandranBasin::of(r[0], r[1]).index()))
                .collect())
        };
        let mut state = basins(x.view())?;
        let centers = chiral_centers(top);
        if let (false, Some(reference)) = (
            centers.is_empty(),
            self.system.as_openmm().and_then(|o| o.positions()),
        ) {
            let same = same_chirality(
                x.view(),
                reference.as_slice().expect("contiguous"),
                &centers,
            );
            let w = reweight::normalised_weights(log_w)?;
            let d_raw = same.iter().filter(|s| !**s).count() as f64 / same.len() as f64;
            let d_weighted: f64 = same
                .iter()
                .zip(&w)
                .filter(|(s, _)| !**s)
                .map(|(_, w)| w)
                .sum();
            out.insert("d_fraction".into(), json!(d_raw));
            out.insert("d_fraction_weighted".into(), json!(d_weighted));
            for (st, ok) in state.iter_mut().zip(&same) {
                if !ok {
                    *st = None;
                }
            }
        }
        let in_l: Vec<f64> = log_w
            .iter()
            .zip(&state)
            .map(|(l, s)| if s.is_some() { *l } else { f64::NEG_INFINITY })
            .collect();
        let pops = reweight::state_populations(
            &in_l,
            &state,
            4,
            ais.unwrap_or(self.cfg.evaluate.bootstrap.into()),
            &mut streams.stream("evaluate.ramachandran"),
        )?;
        let raw = reweight::state_fractions(&state, 4);
        // The MD the run learned from (or, for a run trained without data, the `--data`
        // frames): its populations, its φ/ψ histogram and its energies.
        let data_path = self.dir.join("data.npy");
        // (Skipped for AIS samples: the MD is read and compared once per evaluation.)
        let data = if ais.is_some() {
            None
        } else if data_path.exists() {
            Some(boltzflow_io::read_npy_2d(&data_path)?)
        } else if let Some(path) = &opts.data {
            Some(
                boltzflow_io::trajectory::read_coordinates(path)
                    .with_context(|| format!("MD data `{}`", path.display()))?,
            )
        } else {
            None
        };
        let pairs = |x: ArrayView2<f64>| -> Result<Vec<[f64; 2]>> {
            Ok(dihedrals(x, &quads)?
                .outer_iter()
                .map(|r| [r[0], r[1]])
                .collect())
        };
        let data_pops = match &data {
            Some(xd) => {
                // Block errors over 20 contiguous blocks of the frames (time blocks of all
                // chains: the data are frame-major), 5 ns each for 100 ns of MD.
                let sd = basins(xd.view())?;
                let p = reweight::block_state_populations(&sd, 4, DATA_BLOCKS);
                // KL(MD ‖ generator) of the φ/ψ histogram (10° cells), reweighted and raw, and
                // the 2-Wasserstein distance of the raw generator's energies from the MD's.
                let (md, generated) = (pairs(xd.view())?, pairs(x.view())?);
                let w: Vec<f64> = reweight::normalised_weights(&in_l)?;
                let ones: Vec<f64> = state
                    .iter()
                    .map(|s| f64::from(u8::from(s.is_some())))
                    .collect();
                out.insert(
                    "phi_psi_kl".into(),
                    finite_or_null(reweight::torus_histogram_kl(&md, &generated, Some(&w), 36)),
                );
                out.insert(
                    "phi_psi_kl_unweighted".into(),
                    finite_or_null(reweight::torus_histogram_kl(
                        &md,
                        &generated,
                        Some(&ones),
                        36,
                    )),
                );
                // The 2-Wasserstein distance on the torus between the same histograms.
                out.insert(
                    "phi_psi_w2".into(),
                    finite_or_null(reweight::torus_histogram_w2(&md, &generated, Some(&w), 36)),
                );
                out.insert(
                    "phi_psi_w2_unweighted".into(),
                    finite_or_null(reweight::torus_histogram_w2(
                        &md,
                        &generated,
                        Some(&ones),
                        36,
                    )),
                );
                let reduced = crate::trainer::Reduced {
                    inner: self.system.as_ref(),
                    beta: self.beta,
                };
                let (ug, ud) = (reduced.energy(x.view())?, reduced.energy(xd.view())?);
                out.insert(
                    "energy_w2".into(),
                    finite_or_null(reweight::wasserstein2_1d(
                        ug.as_slice().expect("new array"),
                        ud.as_slice().expect("new array"),
                        1000,
                    )),
                );
                Some(p)
            }
            None => None,
        };
        // ΔF(αL − C7eq) = −ln(P_αL / P_C7eq), reweighted, with bootstrap errors: the free
        // energy of the state MD rarely visits (absent when the generator never reaches αL).
        let l_vs_c7: Vec<Option<bool>> = state
            .iter()
            .map(|s| match s.map(|k| RamachandranBasin::ALL[k]) {
                Some(RamachandranBasin::AlphaLC7ax) => Some(true),
                Some(RamachandranBasin::C7eq) => Some(false),
                _ => None,
            })
            .collect();
        if let Ok(df) = reweight::delta_f(
            &in_l,
            &l_vs_c7,
            self.cfg.evaluate.bootstrap,
            &mut streams.stream("evaluate.delta_f_alphal"),
        ) {
            insert_estimate(out, "delta_f_alphal_c7eq", df);
        }
        out.insert("ramachandran_residue".into(), json!(residue));
        out.insert(
            "ramachandran_basins".into(),
            json!(RamachandranBasin::DEFINITION),
        );
        for b in RamachandranBasin::ALL {
            let key = b.name().to_lowercase().replace('/', "_");
            let k = b.index();
            insert_estimate(out, &format!("population_{key}"), pops[k]);
            out.insert(format!("population_{key}_unweighted"), json!(raw[k]));
            if let Some(d) = &data_pops {
                out.insert(format!("population_{key}_data"), json!(d[k].value));
                out.insert(
                    format!("population_{key}_data_std_error"),
                    finite_or_null(d[k].std_error),
                );
            }
        }
        Ok(())
    }

    /// The rows of the run's data.npy that training held out for validation (the same split
    /// as `train`: whole chains for simulated data), or `None` if the run has no saved data.
    fn validation_rows(&self) -> Result<Option<Array2<f64>>> {
        let path = self.dir.join("data.npy");
        let Some(d) = &self.cfg.data else {
            return Ok(None);
        };
        if !path.exists() || d.validation_fraction <= 0.0 {
            return Ok(None);
        }
        // Runs trained before a split that holds out no whole chain was refused have none.
        if let Some(sim) = &d.simulate
            && (sim.chains as f64 * d.validation_fraction).round() == 0.0
        {
            return Ok(None);
        }
        let x = boltzflow_io::read_npy_2d(&path)?;
        let split = super::split_data(&x, d, &RandomStreams::new(self.cfg.seed))?;
        Ok(Some(split.validation))
    }

    /// Exact quadrature for 2-D systems with a reference box.
    fn quadrature(&self) -> Result<Option<GridQuadrature>> {
        if self.system.dim() != 2 {
            return Ok(None);
        }
        let Some(b) = self.system.reference_box() else {
            return Ok(None);
        };
        Ok(Some(GridQuadrature::new(
            self.system.as_ref(),
            [b[0], b[1]],
            [600, 600],
            1.0,
        )?))
    }
}

/// `{prefix}pareto_k`: the Pareto k̂ of the log-weights ([`reweight::pareto_k`]; ≥ 0.7 says
/// their tail is too heavy for the estimates to be trusted). Reported, not warned about: on
/// the double well with a Kish ESS of 0.95 it reads 0.5 on 10⁵ samples and 1.2 on 2·10⁴ of
/// them, a few weights 4–7 times the median being enough.
fn insert_pareto_k(out: &mut Map<String, Value>, prefix: &str, log_w: &[f64]) {
    out.insert(
        format!("{prefix}pareto_k"),
        finite_or_null(reweight::pareto_k(log_w)),
    );
}

/// Fewer effective samples (Kish) than this in either state get ΔF a warning.
const FEW_EFFECTIVE_SAMPLES: f64 = 50.0;

/// Everything the ΔF and profile estimates along the coordinate share.
struct StateContext<'a> {
    ev: &'a EvaluateConfig,
    coord: &'a Coordinate,
    /// The coordinate of every generated sample.
    s: &'a [f64],
    log_w: &'a [f64],
    held_out: Option<&'a HeldOut>,
    quad: Option<&'a GridQuadrature>,
    reference: Option<&'a ReferenceFile>,
    streams: &'a RandomStreams,
    /// The bootstrap of the error bars (by populations for resampled AIS samples).
    boot: reweight::Bootstrap,
    /// Each sample's initial sample, where resampling made copies (`None`: all independent).
    ancestors: Option<&'a [usize]>,
}

impl StateContext<'_> {
    /// ΔF = F(s ≥ thr) − F(s < thr): reweighted (with bootstrap errors), raw, from the
    /// flow-proposed chain (`visited`) and the latent chain, by BAR against held-out data, and
    /// the exact or reference value with the error.
    fn delta_f(
        &self,
        thr: f64,
        visited: &[Option<bool>],
        latent: Option<&Array2<f64>>,
        out: &mut Map<String, Value>,
    ) -> Result<()> {
        let (ev, streams) = (self.ev, self.streams);
        let state: Vec<Option<bool>> = self.s.iter().map(|&v| Some(v >= thr)).collect();
        let df = reweight::delta_f(
            self.log_w,
            &state,
            self.boot,
            &mut streams.stream("evaluate.delta_f"),
        )?;
        insert_estimate(out, "delta_f", df);
        // A bootstrap over a handful of effective samples understates the error (the dimer's
        // AIS: −2.8 of its own standard errors from the reference on 15 effective samples).
        let counts = [false, true].map(|open| {
            let keep = |i: usize| (self.s[i] >= thr) == open;
            match self.ancestors {
                Some(a) => reweight::effective_lineages(self.log_w, a, keep),
                None => reweight::effective_count(self.log_w, keep),
            }
        });
        let fewest = counts[0].min(counts[1]);
        if fewest < FEW_EFFECTIVE_SAMPLES {
            out.insert(
                "delta_f_warning".into(),
                json!(format!(
                    "the weights hold only {:.1} (s < {thr}) and {:.1} (s ≥ {thr}) effective samples: the error bar is unreliable below {FEW_EFFECTIVE_SAMPLES} per state",
                    counts[0], counts[1]
                )),
            );
        }
        // The unweighted estimates are reported where both states are populated.
        let unweighted = |states: &[Option<bool>], stream: &str| {
            let zero = vec![0.0; states.len()];
            reweight::delta_f(&zero, states, 0, &mut streams.stream(stream))
                .ok()
                .map(|e| e.value)
        };
        if let Some(v) = unweighted(&state, "evaluate.raw") {
            out.insert("delta_f_unweighted".into(), json!(v));
        }
        if let Some(v) = unweighted(visited, "evaluate.mc") {
            out.insert("delta_f_flow_mc".into(), json!(v));
        }
        if let Some(xl) = latent {
            let sl: Vec<Option<bool>> = self
                .coord
                .values(xl)
                .iter()
                .map(|&v| Some(v >= thr))
                .collect();
            if let Some(v) = unweighted(&sl, "evaluate.latent") {
                out.insert("delta_f_latent_mc".into(), json!(v));
            }
        }
        if let Some(h) = self.held_out {
            let to_state = |v: &f64| Some(usize::from(*v >= thr));
            let sg: Vec<Option<usize>> = self.s.iter().map(to_state).collect();
            let sd: Vec<Option<usize>> = self.coord.values(&h.x).iter().map(to_state).collect();
            let fe = reweight::bar_state_free_energies(
                self.log_w,
                &sg,
                &h.log_w,
                &sd,
                2,
                ev.bootstrap,
                &mut streams.stream("evaluate.bar"),
            )?;
            let d = fe.difference(0, 1);
            if d.value.is_finite() {
                insert_estimate(out, "delta_f_bar", d);
                let overlap = fe.overlap[0].min(fe.overlap[1]);
                out.insert("delta_f_bar_overlap".into(), json!(overlap));
                if overlap < BAR_MIN_OVERLAP {
                    out.insert(
                        "delta_f_bar_warning".into(),
                        json!(format!(
                            "generator and held-out data barely overlap (MBAR overlap {overlap:.2e} < {BAR_MIN_OVERLAP}): the BAR estimate and its error bar are unreliable"
                        )),
                    );
                }
            }
        }
        if let Some(v) = self.reference.and_then(|r| r.delta_f) {
            out.insert("delta_f_reference".into(), json!(v));
            out.insert("delta_f_error_kt".into(), json!((df.value - v).abs()));
            if let Some(b) = out.get("delta_f_bar").and_then(Value::as_f64) {
                out.insert("delta_f_bar_error_kt".into(), json!((b - v).abs()));
            }
        }
        if let (Some(q), Some(w)) = (self.quad, self.coord.projection_2d()) {
            let pb = q.threshold_probability(w, thr);
            let exact = -(pb / (1.0 - pb)).ln();
            out.insert("delta_f_exact".into(), json!(exact));
            out.insert("delta_f_error_kt".into(), json!((df.value - exact).abs()));
        }
        Ok(())
    }

    /// ΔF and the profile from AIS samples (this context's weights), reported with the `ais_`
    /// prefix; the aligned AIS profile goes into `profile`.
    fn ais_estimates(
        &self,
        coordinate: &str,
        profile: Option<&mut ProfileFile>,
        out: &mut Map<String, Value>,
    ) -> Result<()> {
        let mut part = Map::new();
        if let Some(thr) = self.ev.threshold {
            self.delta_f(thr, &[], None, &mut part)?;
        }
        if let (Some([lo, hi]), Some(p)) = (self.ev.profile_range, profile) {
            let f = self.profile(coordinate, lo, hi, &mut part)?;
            p.ais_free_energy = Some(f.free_energy);
            p.ais_std_error = Some(f.std_error);
        }
        for key in [
            "delta_f",
            "delta_f_warning",
            "delta_f_std_error",
            "delta_f_error_kt",
            "delta_f_unweighted",
            "profile_rmse",
        ] {
            if let Some(v) = part.remove(key) {
                out.insert(format!("ais_{key}"), v);
            }
        }
        Ok(())
    }

    /// F(s) on `bins` bins over [lo, hi]: reweighted with bootstrap errors, raw, by BAR per
    /// bin against held-out data, and against the reference (quadrature or file) with the
    /// RMSE over the bins the reference populates.
    fn profile(
        &self,
        coordinate: &str,
        lo: f64,
        hi: f64,
        out: &mut Map<String, Value>,
    ) -> Result<ProfileFile> {
        let (ev, streams) = (self.ev, self.streams);
        let bins = ev.profile_bins;
        let edges = reweight::uniform_edges(lo, hi, bins);
        let prof = reweight::profile(
            self.s,
            self.log_w,
            &edges,
            self.boot,
            &mut streams.stream("evaluate.profile"),
        )?;
        let zero = vec![0.0; self.s.len()];
        let raw = reweight::profile(
            self.s,
            &zero,
            &edges,
            0,
            &mut streams.stream("evaluate.raw_profile"),
        )?;
        let centres: Vec<f64> = edges.windows(2).map(|e| 0.5 * (e[0] + e[1])).collect();
        let widths: Vec<f64> = edges.windows(2).map(|e| e[1] - e[0]).collect();
        // BAR per bin: each bin is a state; bins without held-out data fall back to importance
        // sampling, bins without generated samples stay undefined.
        let bar = match self.held_out {
            Some(h) => {
                let bin_of = |v: &[f64]| -> Vec<Option<usize>> {
                    v.iter()
                        .map(|&x| reweight::uniform_bin(x, lo, hi, bins))
                        .collect()
                };
                let fe = reweight::bar_state_free_energies(
                    self.log_w,
                    &bin_of(self.s),
                    &h.log_w,
                    &bin_of(&self.coord.values(&h.x)),
                    bins,
                    ev.bootstrap,
                    &mut streams.stream("evaluate.bar_profile"),
                )?;
                let (f, e): (Vec<f64>, Vec<f64>) = (0..bins)
                    .map(|b| {
                        let est = fe.state(b);
                        (est.value + widths[b].ln(), est.std_error)
                    })
                    .unzip();
                Some((f, e))
            }
            None => None,
        };
        let (bar_free_energy, bar_std_error) = bar.unzip();
        let mut file = ProfileFile {
            coordinate: coordinate.to_string(),
            centres,
            free_energy: prof.free_energy,
            std_error: prof.std_error,
            reference: None,
            reference_kind: None,
            unweighted: raw.free_energy,
            bar_free_energy,
            bar_std_error,
            ais_free_energy: None,
            ais_std_error: None,
        };
        if let Some(ReferenceProfile {
            free_energy: ref_f,
            probabilities: probs,
            kind,
        }) = self.reference_profile(&edges, &widths)?
        {
            let rmse = |f: &[f64]| reweight::profile_rmse(f, &ref_f, &probs, ev.min_probability);
            out.insert(
                "profile_rmse".into(),
                finite_or_null(rmse(&file.free_energy)),
            );
            let mask: Vec<bool> = probs.iter().map(|&p| p > ev.min_probability).collect();
            align(&mut file.free_energy, &ref_f, &mask);
            align(&mut file.unweighted, &ref_f, &mask);
            if let Some(f) = &mut file.bar_free_energy {
                out.insert("profile_rmse_bar".into(), finite_or_null(rmse(f)));
                align(f, &ref_f, &mask);
            }
            file.reference = Some(ref_f);
            file.reference_kind = Some(kind.into());
        }
        Ok(file)
    }

    /// The reference profile on `edges` (free energies, bin probabilities, its name):
    /// quadrature for the 2-D systems, else the reference file.
    fn reference_profile(&self, edges: &[f64], widths: &[f64]) -> Result<Option<ReferenceProfile>> {
        if let (Some(q), Some(w)) = (self.quad, self.coord.projection_2d()) {
            let exact = q.profile(w, edges)?;
            return Ok(Some(ReferenceProfile {
                free_energy: exact.free_energy,
                probabilities: exact.probabilities,
                kind: "exact (quadrature)",
            }));
        }
        let Some(r) = self.reference else {
            return Ok(None);
        };
        if r.edges.len() != edges.len()
            || r.edges.iter().zip(edges).any(|(a, b)| (a - b).abs() > 1e-9)
        {
            return Err(Error::invalid(
                "evaluate.reference",
                format!(
                    "its bins ({} edges from {} to {}) differ from profile_range/profile_bins",
                    r.edges.len(),
                    r.edges[0],
                    r.edges[r.edges.len() - 1]
                ),
            ));
        }
        // Reference probabilities from its free energies, for the bin selection.
        let w: Vec<f64> = r
            .free_energy
            .iter()
            .zip(widths)
            .map(|(f, wd)| (-f).exp() * wd)
            .collect();
        let total: f64 = w.iter().filter(|v| v.is_finite()).sum();
        Ok(Some(ReferenceProfile {
            free_energy: r.free_energy.clone(),
            probabilities: w.iter().map(|v| v / total).collect(),
            kind: "reference (umbrella sampling + MBAR)",
        }))
    }
}

/// A reference profile on the evaluation's bins.
struct ReferenceProfile {
    /// F per bin (kT).
    free_energy: Vec<f64>,
    /// Probability per bin (selects the bins the RMSE counts).
    probabilities: Vec<f64>,
    /// Where it comes from.
    kind: &'static str,
}

/// Mean-free profile shift: `f` aligned on `reference` over the bins where `mask` holds.
fn align(f: &mut [f64], reference: &[f64], mask: &[bool]) {
    let sel: Vec<usize> = (0..f.len())
        .filter(|&i| mask[i] && f[i].is_finite())
        .collect();
    if sel.is_empty() {
        return;
    }
    let off = sel.iter().map(|&i| f[i] - reference[i]).sum::<f64>() / sel.len() as f64;
    f.iter_mut().for_each(|v| *v -= off);
}

fn insert_estimate(out: &mut Map<String, Value>, name: &str, e: Estimate) {
    out.insert(name.into(), json!(e.value));
    out.insert(format!("{name}_std_error"), finite_or_null(e.std_error));
}

/// A reference profile (and ΔF) from a JSON file: `edges`, `free_energy` (kT), optionally
/// `delta_f`.
struct ReferenceFile {
    edges: Vec<f64>,
    free_energy: Vec<f64>,
    delta_f: Option<f64>,
}

impl ReferenceFile {
    fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            action: "cannot read reference",
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |reason: String| Error::BadFile {
            path: path.to_path_buf(),
            reason,
        };
        let v: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let nums = |k: &str| -> Result<Vec<f64>> {
            v.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect())
                .ok_or_else(|| bad(format!("no array `{k}`")))
        };
        let edges = nums("edges")?;
        let free_energy = nums("free_energy")?;
        if edges.len() != free_energy.len() + 1 || edges.len() < 2 {
            return Err(bad(
                "`edges` must have one more entry than `free_energy` (at least 2)".into(),
            ));
        }
        let delta_f = v
            .get("delta_f")
            .or_else(|| v.get("delta_f_open_closed"))
            .and_then(Value::as_f64);
        Ok(Self {
            edges,
            free_energy,
            delta_f,
        })
    }
}
