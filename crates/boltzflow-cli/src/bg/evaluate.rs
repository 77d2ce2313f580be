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

use super::run_dir::Run;

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
    let (x, neg_log_q) = bg.sample(n, 1.0, 8192, &mut streams.stream("evaluate.sample"));
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
    if let Some(path) = &a.data {
        let xd = boltzflow_io::read_npy_2d(path)?;
        if xd.ncols() != run.system.dim() {
            bail!(Error::Shape {
                what: format!("--data `{}`", path.display()),
                expected: format!("[n, {}]", run.system.dim()),
                got: format!("[{}, {}]", xd.nrows(), xd.ncols()),
            });
        }
        let lq = bg.log_density(&xd, 8192);
        out.insert(
            "nll".into(),
            finite_or_null(-lq.iter().sum::<f64>() / lq.len() as f64),
        );
    }

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
            if let Some(r) = &reference
                && let Some(v) = r.delta_f
            {
                out.insert("delta_f_reference".into(), json!(v));
                out.insert("delta_f_error_kt".into(), json!((df.value - v).abs()));
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
            let mut file = ProfileFile {
                coordinate: text.clone(),
                centres,
                free_energy: prof.free_energy.clone(),
                std_error: prof.std_error.clone(),
                reference: None,
                reference_kind: None,
                unweighted: raw.free_energy.clone(),
            };
            if let (Some(q), Some(w)) = (&quad, coord.projection_2d()) {
                let exact = q.profile(w, &edges)?;
                let rmse = reweight::profile_rmse(
                    &prof.free_energy,
                    &exact.free_energy,
                    &exact.probabilities,
                    ev.min_probability,
                );
                out.insert("profile_rmse".into(), finite_or_null(rmse));
                let mask: Vec<bool> = exact
                    .probabilities
                    .iter()
                    .map(|&p| p > ev.min_probability)
                    .collect();
                align(&mut file.free_energy, &exact.free_energy, &mask);
                align(&mut file.unweighted, &exact.free_energy, &mask);
                file.reference = Some(exact.free_energy);
                file.reference_kind = Some("exact (quadrature)".into());
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
                let widths: Vec<f64> = edges.windows(2).map(|e| e[1] - e[0]).collect();
                let w: Vec<f64> = r
                    .free_energy
                    .iter()
                    .zip(&widths)
                    .map(|(f, wd)| (-f).exp() * wd)
                    .collect();
                let total: f64 = w.iter().filter(|v| v.is_finite()).sum();
                let probs: Vec<f64> = w.iter().map(|v| v / total).collect();
                let rmse = reweight::profile_rmse(
                    &prof.free_energy,
                    &r.free_energy,
                    &probs,
                    ev.min_probability,
                );
                out.insert("profile_rmse".into(), finite_or_null(rmse));
                let mask: Vec<bool> = probs.iter().map(|&p| p > ev.min_probability).collect();
                align(&mut file.free_energy, &r.free_energy, &mask);
                align(&mut file.unweighted, &r.free_energy, &mask);
                file.reference = Some(r.free_energy.clone());
                file.reference_kind = Some("reference (umbrella sampling + MBAR)".into());
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
    Ok(out)
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
