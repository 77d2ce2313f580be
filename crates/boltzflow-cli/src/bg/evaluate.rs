//! `boltzflow evaluate RUN_DIR`: samples the trained generator, reweights, and compares with
//! exact references where they exist. Writes `metrics.json` and `profile.json`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use boltzflow_core::Coordinate;
use boltzflow_core::{Energy, Error, RandomStreams};
use boltzflow_learn::flow_mc;
use boltzflow_learn::reweight::{self, Estimate};
use boltzflow_learn::trainer::Reduced;
use boltzflow_systems::quadrature::GridQuadrature;
use ndarray::Array2;
use serde::Serialize;
use serde_json::{Map, Value, json};

use boltzflow_learn::run::BgRun as Run;

/// Arguments of `boltzflow evaluate`.
#[derive(clap::Args)]
pub struct EvaluateArgs {
    /// A run directory made by `boltzflow train`.
    pub run_dir: PathBuf,
    /// Held-out configurations `[n, dim]` for the NLL.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Generated samples (default: `[evaluate] n_samples`).
    #[arg(long)]
    pub n_samples: Option<usize>,
    /// No table on standard output.
    #[arg(long)]
    pub quiet: bool,
}

/// Below this MBAR overlap between the generator and a state, BAR is flagged as unreliable
/// (the usual rule of thumb, e.g. alchemlyb's overlap-matrix check).
const BAR_MIN_OVERLAP: f64 = 0.03;

/// The profile written to profile.json (and drawn by `report`). Undefined values (empty bins)
/// are JSON `null`, read back as NaN.
#[derive(Serialize, serde::Deserialize, Debug, Clone)]
pub struct ProfileFile {
    pub coordinate: String,
    pub centres: Vec<f64>,
    #[serde(deserialize_with = "nan_for_null")]
    pub free_energy: Vec<f64>,
    #[serde(deserialize_with = "nan_for_null")]
    pub std_error: Vec<f64>,
    #[serde(default, deserialize_with = "nan_for_null_opt")]
    pub reference: Option<Vec<f64>>,
    pub reference_kind: Option<String>,
    #[serde(deserialize_with = "nan_for_null")]
    pub unweighted: Vec<f64>,
    /// BAR between the generator and held-out data, per bin (absent without held-out data).
    #[serde(default, deserialize_with = "nan_for_null_opt")]
    pub bar_free_energy: Option<Vec<f64>>,
    #[serde(default, deserialize_with = "nan_for_null_opt")]
    pub bar_std_error: Option<Vec<f64>>,
}

fn nan_for_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    let v: Vec<Option<f64>> = serde::Deserialize::deserialize(d)?;
    Ok(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
}

fn nan_for_null_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<f64>>, D::Error> {
    let v: Option<Vec<Option<f64>>> = serde::Deserialize::deserialize(d)?;
    Ok(v.map(|v| v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect()))
}

fn finite_or_null(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

/// Mean-free profile shift: both profiles aligned on the bins where `mask` holds.
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

/// Runs `boltzflow evaluate`; returns the metrics.
pub fn run(a: &EvaluateArgs) -> Result<Map<String, Value>> {
    let run = Run::open(&a.run_dir)?;
    let (mut bg, epoch) = run.load_generator()?;
    let ev = &run.cfg.evaluate;
    let n = a.n_samples.unwrap_or(ev.n_samples);
    if n < 2 {
        bail!(Error::invalid("--n-samples", "need at least 2 samples"));
    }
    let streams = RandomStreams::new(run.cfg.seed);
    let energy = Reduced {
        inner: run.system.as_ref(),
        beta: run.beta,
    };
    let (x, neg_log_q) = bg.sample(
        n,
        ev.prior_temperature,
        8192,
        &mut streams.stream("evaluate.sample"),
    );
    let u = energy.energy(x.view())?;
    if let Some(i) = u.iter().position(|v| v.is_nan()) {
        bail!(Error::NonFinite {
            what: "energy of a generated sample".into(),
            location: format!("sample {i}"),
            value: f64::NAN
        });
    }
    let log_w: Vec<f64> = u.iter().zip(&neg_log_q).map(|(u, q)| -u + q).collect();
    let ess = reweight::ess_fraction(&log_w)?;
    let finite: Vec<f64> = u
        .iter()
        .zip(&neg_log_q)
        .filter(|(u, _)| u.is_finite())
        .map(|(u, q)| u - q)
        .collect();
    let kl_reverse = finite.iter().sum::<f64>() / finite.len().max(1) as f64;
    let m = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let ln_z = m + (log_w.iter().map(|l| (l - m).exp()).sum::<f64>() / n as f64).ln();

    let mut out = Map::new();
    out.insert("epoch".into(), json!(epoch));
    out.insert("n_samples".into(), json!(n));
    out.insert("prior_temperature".into(), json!(ev.prior_temperature));
    out.insert("ess_fraction".into(), json!(ess));
    out.insert("kl_reverse".into(), finite_or_null(kl_reverse));
    out.insert("ln_z".into(), finite_or_null(ln_z));
    out.insert(
        "mean_energy_generated".into(),
        finite_or_null(u.iter().filter(|v| v.is_finite()).sum::<f64>() / n as f64),
    );
    if let Some(exact) = run.system.exact_ln_z() {
        out.insert("ln_z_exact".into(), json!(exact));
    }
    // Held-out equilibrium data: the NLL, and BAR between the generator and the Boltzmann
    // density of each state (or profile bin).
    let held_out = match &a.data {
        Some(path) => {
            let xd = boltzflow_io::read_npy_2d(path)?;
            if xd.ncols() != run.system.dim() {
                bail!(Error::Shape {
                    what: format!("--data `{}`", path.display()),
                    expected: format!("[n, {}]", run.system.dim()),
                    got: format!("[{}, {}]", xd.nrows(), xd.ncols()),
                });
            }
            Some((xd, format!("--data {}", path.display())))
        }
        None => validation_rows(&run)?.map(|x| (x, "validation rows of data.npy".to_string())),
    };
    let held_out = match held_out {
        Some((xd, source)) if xd.nrows() > 0 => {
            let lq = bg.log_density(&xd, 8192);
            out.insert(
                "nll".into(),
                finite_or_null(-lq.iter().sum::<f64>() / lq.len() as f64),
            );
            out.insert("held_out".into(), json!(source));
            out.insert("held_out_rows".into(), json!(xd.nrows()));
            let ud = energy.energy(xd.view())?;
            let lw: Vec<f64> = ud
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
            Some((xd, lw))
        }
        _ => None,
    };

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

    let quad = quadrature(&run)?;
    let reference = match &ev.reference {
        Some(p) => Some(ReferenceFile::read(p)?),
        None => None,
    };
    if let Some(text) = &ev.coordinate {
        let pdim = if run.system.atom_masses().is_some() {
            3
        } else {
            2
        };
        let coord = Coordinate::parse(text, "evaluate.coordinate", run.system.dim(), pdim)?;
        let s = coord.values(&x);
        let n_boot = ev.bootstrap;
        if let Some(thr) = ev.threshold {
            let state: Vec<Option<bool>> = s.iter().map(|&v| Some(v >= thr)).collect();
            let df = reweight::delta_f(
                &log_w,
                &state,
                n_boot,
                &mut streams.stream("evaluate.delta_f"),
            )?;
            insert_estimate(&mut out, "delta_f", df);
            let zero = vec![0.0; n];
            if let Ok(raw) =
                reweight::delta_f(&zero, &state, 0, &mut streams.stream("evaluate.raw"))
            {
                out.insert("delta_f_unweighted".into(), json!(raw.value));
            }
            let ones = vec![0.0; chain.len()];
            let chain_state: Vec<Option<bool>> = chain.iter().map(|&i| state[i]).collect();
            if let Ok(mc) =
                reweight::delta_f(&ones, &chain_state, 0, &mut streams.stream("evaluate.mc"))
            {
                out.insert("delta_f_flow_mc".into(), json!(mc.value));
            }
            if let Some(xl) = &latent {
                let sl: Vec<Option<bool>> =
                    coord.values(xl).iter().map(|&v| Some(v >= thr)).collect();
                let zeros = vec![0.0; sl.len()];
                if let Ok(mc) =
                    reweight::delta_f(&zeros, &sl, 0, &mut streams.stream("evaluate.latent"))
                {
                    out.insert("delta_f_latent_mc".into(), json!(mc.value));
                }
            }
            if let Some((xd, lw_d)) = &held_out {
                let to_state = |v: &f64| Some(usize::from(*v >= thr));
                let sg: Vec<Option<usize>> = s.iter().map(to_state).collect();
                let sd: Vec<Option<usize>> = coord.values(xd).iter().map(to_state).collect();
                let fe = reweight::bar_state_free_energies(
                    &log_w,
                    &sg,
                    lw_d,
                    &sd,
                    2,
                    n_boot,
                    &mut streams.stream("evaluate.bar"),
                )?;
                let d = fe.difference(0, 1);
                if d.value.is_finite() {
                    insert_estimate(&mut out, "delta_f_bar", d);
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
            if let Some(r) = &reference
                && let Some(v) = r.delta_f
            {
                out.insert("delta_f_reference".into(), json!(v));
                out.insert("delta_f_error_kt".into(), json!((df.value - v).abs()));
                if let Some(b) = out.get("delta_f_bar").and_then(Value::as_f64) {
                    out.insert("delta_f_bar_error_kt".into(), json!((b - v).abs()));
                }
            }
            if let (Some(q), Some(w)) = (&quad, coord.projection_2d()) {
                let pb = q.threshold_probability(w, thr);
                out.insert("delta_f_exact".into(), json!(-(pb / (1.0 - pb)).ln()));
                out.insert(
                    "delta_f_error_kt".into(),
                    json!((df.value + (pb / (1.0 - pb)).ln()).abs()),
                );
            }
        }
        if let Some([lo, hi]) = ev.profile_range {
            let edges = reweight::uniform_edges(lo, hi, ev.profile_bins);
            let prof = reweight::profile(
                &s,
                &log_w,
                &edges,
                n_boot,
                &mut streams.stream("evaluate.profile"),
            )?;
            let zero = vec![0.0; n];
            let raw = reweight::profile(
                &s,
                &zero,
                &edges,
                0,
                &mut streams.stream("evaluate.raw_profile"),
            )?;
            let centres: Vec<f64> = edges.windows(2).map(|e| 0.5 * (e[0] + e[1])).collect();
            let widths: Vec<f64> = edges.windows(2).map(|e| e[1] - e[0]).collect();
            // BAR per bin: each bin is a state; bins without held-out data fall back to
            // importance sampling, bins without generated samples stay undefined.
            let bar_profile = match &held_out {
                Some((xd, lw_d)) => {
                    let bins = |v: &[f64]| -> Vec<Option<usize>> {
                        v.iter()
                            .map(|&x| reweight::uniform_bin(x, lo, hi, ev.profile_bins))
                            .collect()
                    };
                    let fe = reweight::bar_state_free_energies(
                        &log_w,
                        &bins(&s),
                        lw_d,
                        &bins(&coord.values(xd)),
                        ev.profile_bins,
                        n_boot,
                        &mut streams.stream("evaluate.bar_profile"),
                    )?;
                    let (f, e): (Vec<f64>, Vec<f64>) = (0..ev.profile_bins)
                        .map(|b| {
                            let est = fe.state(b);
                            (est.value + widths[b].ln(), est.std_error)
                        })
                        .unzip();
                    Some((f, e))
                }
                None => None,
            };
            let mut file = ProfileFile {
                coordinate: text.clone(),
                centres,
                free_energy: prof.free_energy.clone(),
                std_error: prof.std_error.clone(),
                reference: None,
                reference_kind: None,
                unweighted: raw.free_energy.clone(),
                bar_free_energy: bar_profile.as_ref().map(|p| p.0.clone()),
                bar_std_error: bar_profile.as_ref().map(|p| p.1.clone()),
            };
            // The reference: quadrature for the 2D systems, else a reference file.
            let reference_profile = if let (Some(q), Some(w)) = (&quad, coord.projection_2d()) {
                let exact = q.profile(w, &edges)?;
                Some((exact.free_energy, exact.probabilities, "exact (quadrature)"))
            } else if let Some(r) = &reference {
                if r.edges.len() != edges.len()
                    || r.edges
                        .iter()
                        .zip(&edges)
                        .any(|(a, b)| (a - b).abs() > 1e-9)
                {
                    bail!(Error::invalid(
                        "evaluate.reference",
                        format!(
                            "its bins ({} edges from {} to {}) differ from profile_range/profile_bins",
                            r.edges.len(),
                            r.edges[0],
                            r.edges[r.edges.len() - 1]
                        )
                    ));
                }
                // Reference probabilities from its free energies, for the bin selection.
                let w: Vec<f64> = r
                    .free_energy
                    .iter()
                    .zip(&widths)
                    .map(|(f, wd)| (-f).exp() * wd)
                    .collect();
                let total: f64 = w.iter().filter(|v| v.is_finite()).sum();
                let probs: Vec<f64> = w.iter().map(|v| v / total).collect();
                Some((
                    r.free_energy.clone(),
                    probs,
                    "reference (umbrella sampling + MBAR)",
                ))
            } else {
                None
            };
            if let Some((ref_f, probs, kind)) = reference_profile {
                let rmse =
                    |f: &[f64]| reweight::profile_rmse(f, &ref_f, &probs, ev.min_probability);
                out.insert(
                    "profile_rmse".into(),
                    finite_or_null(rmse(&prof.free_energy)),
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
            write_json(&run.dir.join("profile.json"), &file)?;
        }
    }
    write_json(&run.dir.join("metrics.json"), &out)?;
    if !a.quiet {
        println!(
            "evaluation of {} (epoch {epoch}, {n} samples):",
            run.dir.display()
        );
        for (k, v) in &out {
            println!("  {k:<24} {v}");
        }
    }
    save_samples_for_report(&run.dir, &x, &log_w)?;
    let held_out_weights = run.dir.join("held_out_log_weights.npy");
    match &held_out {
        Some((_, lw_d)) => {
            boltzflow_io::write_npy_1d(&held_out_weights, ndarray::ArrayView1::from(lw_d))?;
        }
        None if held_out_weights.exists() => std::fs::remove_file(&held_out_weights)?,
        None => {}
    }
    Ok(out)
}

/// The rows of the run's data.npy that training held out for validation (the same split as
/// `train`: whole chains for simulated data), or `None` if the run has no saved data.
fn validation_rows(run: &Run) -> Result<Option<Array2<f64>>> {
    let path = run.dir.join("data.npy");
    let Some(d) = &run.cfg.data else {
        return Ok(None);
    };
    if !path.exists() || d.validation_fraction <= 0.0 {
        return Ok(None);
    }
    let x = boltzflow_io::read_npy_2d(&path)?;
    let split = boltzflow_learn::run::split_data(&x, d, &RandomStreams::new(run.cfg.seed))?;
    Ok(Some(split.validation))
}

/// A reference profile (and ΔF) from a JSON file.
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
        let v: Value = serde_json::from_str(&text).map_err(|e| Error::BadFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let nums = |k: &str| -> Result<Vec<f64>> {
            v.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect())
                .ok_or_else(|| {
                    anyhow::Error::from(Error::BadFile {
                        path: path.to_path_buf(),
                        reason: format!("no array `{k}`"),
                    })
                })
        };
        let edges = nums("edges")?;
        let free_energy = nums("free_energy")?;
        if edges.len() != free_energy.len() + 1 {
            bail!(Error::BadFile {
                path: path.to_path_buf(),
                reason: "`edges` must have one more entry than `free_energy`".into()
            });
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

fn insert_estimate(out: &mut Map<String, Value>, name: &str, e: Estimate) {
    out.insert(name.into(), json!(e.value));
    out.insert(format!("{name}_std_error"), finite_or_null(e.std_error));
}

/// Exact quadrature for 2D systems with a reference box.
fn quadrature(run: &Run) -> Result<Option<GridQuadrature>> {
    if run.system.dim() != 2 {
        return Ok(None);
    }
    let Some(b) = run.system.reference_box() else {
        return Ok(None);
    };
    Ok(Some(GridQuadrature::new(
        run.system.as_ref(),
        [b[0], b[1]],
        [600, 600],
        1.0,
    )?))
}

/// Keeps a subsample of the generated configurations and their log-weights for `report`.
fn save_samples_for_report(dir: &Path, x: &Array2<f64>, log_w: &[f64]) -> Result<()> {
    let keep = x.nrows().min(20_000);
    boltzflow_io::write_npy_2d(&dir.join("samples.npy"), x.slice(ndarray::s![..keep, ..]))?;
    boltzflow_io::write_npy_1d(
        &dir.join("log_weights.npy"),
        ndarray::ArrayView1::from(&log_w[..keep]),
    )?;
    Ok(())
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    boltzflow_io::write_json(path, v).with_context(|| format!("cannot write {}", path.display()))
}
