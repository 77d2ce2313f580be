//! `boltzflow kinetics tica|vamp|cluster|msm|its|ck`: kinetic analysis of `.npy` trajectories
//! (DESIGN §7). Float trajectories are streamed in blocks into the covariance estimators, so TICA
//! and VAMP work on files larger than memory; results go to `--out DIR` as `.npy` arrays, a
//! `summary.json` and PNG figures. Lag times and timescales are in frames.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use boltzflow_io::trajectory::{TrajectoryReader, read_coordinates};
use boltzflow_io::{
    read_npy_2d, read_npy_dtraj, write_json, write_npy_1d, write_npy_2d, write_npy_indices,
    write_npy_nd,
};
use boltzflow_kinetics::{
    ClusterModel, CovarianceAccumulator, Dimension, KMeans, MaximumLikelihoodMsm, Msm,
    RegularSpace, Scaling, Tica, Vamp, VampScore, ck_test, implied_timescales_over_lags,
};
use clap::{Args, Subcommand, ValueEnum};
use ndarray::{Array1, Array2, Axis};
use serde_json::json;

use crate::plot::{Series, density_chart, line_chart, panel_grid};

/// Rows read per block when streaming a trajectory file.
const BLOCK_ROWS: usize = 1 << 16;

#[derive(Subcommand)]
pub enum KineticsCommand {
    /// TICA: eigenvalues.npy, timescales.npy, projection.npy, tica_density.png
    Tica(TicaArgs),
    /// VAMP scores (vamp1, vamp2, vampe in summary.json), optionally cross-validated
    Vamp(VampArgs),
    /// Cluster frames: centers.npy, dtrajs.npy (and dtrajs_K.npy per trajectory)
    Cluster(ClusterArgs),
    /// Markov state model: transition_matrix.npy, count_matrix.npy, stationary_distribution.npy,
    /// timescales.npy, active_set.npy
    Msm(MsmArgs),
    /// Implied timescales over lag times: implied_timescales.npy, its.png
    Its(ItsArgs),
    /// Chapman–Kolmogorov test on PCCA+ sets: ck_predicted.npy, ck_estimated.npy, ck.png
    Ck(CkArgs),
}

#[derive(Args)]
pub struct TrajInput {
    /// Trajectories, one file each: float `.npy` `[n_frames, n_features]` (float32 accepted),
    /// or `.xtc` / `.trr` / `.dcd` (Cartesian coordinates in nm as features)
    #[arg(long, num_args = 1.., required = true)]
    trajs: Vec<PathBuf>,
}

#[derive(Args)]
pub struct DtrajInput {
    /// Discrete trajectories, integer `.npy` `[n_frames]`, one file each
    #[arg(long, num_args = 1.., required = true)]
    dtrajs: Vec<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ScalingArg {
    /// Scale components by their eigenvalues (kinetic map)
    KineticMap,
    /// Scale by regularised √(timescale/2) (commute map)
    CommuteMap,
    /// Unit variance
    None,
}

#[derive(Args)]
pub struct TicaArgs {
    #[command(flatten)]
    input: TrajInput,
    /// Lag time τ in frames
    #[arg(long)]
    lagtime: usize,
    /// Keep this many components
    #[arg(long, conflicts_with = "var_cutoff")]
    dim: Option<usize>,
    /// Keep the components reaching this fraction of kinetic variance
    #[arg(long)]
    var_cutoff: Option<f64>,
    /// Eigenvalue cutoff on C00 (rank truncation)
    #[arg(long, default_value_t = 1e-6)]
    epsilon: f64,
    #[arg(long, value_enum, default_value_t = ScalingArg::KineticMap)]
    scaling: ScalingArg,
    /// Output directory
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct VampArgs {
    #[command(flatten)]
    input: TrajInput,
    /// Lag time τ in frames
    #[arg(long)]
    lagtime: usize,
    /// Score only the leading singular functions
    #[arg(long)]
    dim: Option<usize>,
    #[arg(long, default_value_t = 1e-6)]
    epsilon: f64,
    /// Cross-validation: number of random half/half splits (0: none)
    #[arg(long, default_value_t = 0)]
    cv_splits: usize,
    /// Cross-validation block length in frames (default 10·lagtime)
    #[arg(long)]
    cv_block: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ClusterMethod {
    Kmeans,
    Regspace,
}

#[derive(Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    input: TrajInput,
    #[arg(long, value_enum, default_value_t = ClusterMethod::Kmeans)]
    method: ClusterMethod,
    /// k-means: number of clusters
    #[arg(long, default_value_t = 100)]
    k: usize,
    /// k-means: iteration limit
    #[arg(long, default_value_t = 500)]
    max_iter: usize,
    /// k-means: relative inertia tolerance
    #[arg(long, default_value_t = 1e-5)]
    tolerance: f64,
    /// regspace: minimum distance between centres
    #[arg(long)]
    dmin: Option<f64>,
    /// regspace: most centres allowed
    #[arg(long, default_value_t = 1000)]
    max_centers: usize,
    /// Assign to these fixed centres `[k, n_features]` instead of clustering
    #[arg(long)]
    centers: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct MsmArgs {
    #[command(flatten)]
    input: DtrajInput,
    #[arg(long)]
    lagtime: usize,
    /// Enforce detailed balance (reversible maximum likelihood)
    #[arg(long)]
    reversible: bool,
    /// Number of implied timescales to write
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Also compute PCCA+ memberships into this many metastable sets
    #[arg(long)]
    n_metastable: Option<usize>,
    /// Reversible fixed point: tolerance on max |Δπ| and iteration limit
    #[arg(long, default_value_t = 1e-12)]
    tolerance: f64,
    #[arg(long, default_value_t = 1_000_000)]
    max_iter: usize,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct ItsArgs {
    #[command(flatten)]
    input: DtrajInput,
    /// Lag times in frames, comma separated
    #[arg(long, value_delimiter = ',', required = true)]
    lagtimes: Vec<usize>,
    #[arg(long, default_value_t = 5)]
    k: usize,
    #[arg(long)]
    reversible: bool,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct CkArgs {
    #[command(flatten)]
    input: DtrajInput,
    #[arg(long)]
    lagtime: usize,
    /// Number of PCCA+ metastable sets
    #[arg(long, default_value_t = 2)]
    n_metastable: usize,
    /// Multiples of the lag time to test
    #[arg(long, default_value_t = 5)]
    steps: usize,
    #[arg(long)]
    reversible: bool,
    #[arg(long)]
    out: PathBuf,
}

pub fn run(cmd: KineticsCommand) -> Result<()> {
    match cmd {
        KineticsCommand::Tica(a) => tica(a),
        KineticsCommand::Vamp(a) => vamp(a),
        KineticsCommand::Cluster(a) => cluster(a),
        KineticsCommand::Msm(a) => msm(a),
        KineticsCommand::Its(a) => its(a),
        KineticsCommand::Ck(a) => ck(a),
    }
}

fn out_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the output directory `{}`", dir.display()))
}

/// Streams every trajectory file into a covariance accumulator at `lagtime`.
fn stream_covariances(
    files: &[PathBuf],
    lagtime: usize,
) -> Result<(boltzflow_kinetics::Covariances, Vec<usize>)> {
    let mut acc = CovarianceAccumulator::new(lagtime);
    let mut lengths = Vec::new();
    for f in files {
        let mut r = TrajectoryReader::open(f)?;
        let mut frames = 0;
        while let Some(block) = r.next_block(BLOCK_ROWS)? {
            frames += block.nrows();
            acc.add_chunk(block.view())
                .with_context(|| format!("in `{}`", f.display()))?;
        }
        lengths.push(frames);
        acc.end_trajectory()
            .with_context(|| format!("in `{}`", f.display()))?;
    }
    Ok((acc.finish()?, lengths))
}

fn tica(a: TicaArgs) -> Result<()> {
    out_dir(&a.out)?;
    let (cov, lengths) = stream_covariances(&a.input.trajs, a.lagtime)?;
    let dim = match (a.dim, a.var_cutoff) {
        (Some(n), _) => Dimension::Count(n),
        (None, Some(f)) => Dimension::KineticVariance(f),
        (None, None) => Dimension::All,
    };
    let scaling = match a.scaling {
        ScalingArg::KineticMap => Scaling::KineticMap,
        ScalingArg::CommuteMap => Scaling::CommuteMap,
        ScalingArg::None => Scaling::None,
    };
    let model = Tica::new(a.lagtime)?
        .epsilon(a.epsilon)
        .dim(dim)
        .scaling(scaling)
        .fit_covariances(&cov)?;
    // second pass: project block by block (the projection itself is held: [n_frames, dim])
    let mut parts = Vec::new();
    for f in &a.input.trajs {
        let mut r = TrajectoryReader::open(f)?;
        while let Some(block) = r.next_block(BLOCK_ROWS)? {
            parts.push(model.transform(block.view())?);
        }
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    let projection = ndarray::concatenate(Axis(0), &views)?;
    let ts = model.timescales();
    write_npy_1d(
        &a.out.join("eigenvalues.npy"),
        model.eigenvalues.slice(ndarray::s![..model.dim]),
    )?;
    write_npy_1d(&a.out.join("timescales.npy"), ts.view())?;
    write_npy_2d(&a.out.join("projection.npy"), projection.view())?;
    write_npy_2d(
        &a.out.join("eigenvectors.npy"),
        model.eigenvectors.slice(ndarray::s![.., ..model.dim]),
    )?;
    write_json(
        &a.out.join("summary.json"),
        &json!({
            "command": "tica", "lagtime": a.lagtime, "n_features": cov.n_features(), "n_pairs": cov.n_pairs,
            "trajectory_lengths": lengths, "rank": model.rank, "dim": model.dim,
            "eigenvalues": model.eigenvalues.to_vec(), "timescales": ts.to_vec(),
            "cumulative_kinetic_variance": model.cumulative_kinetic_variance().to_vec(),
            "projection": "projection.npy stacks the projections of all trajectories in input order",
            "unit": "frames",
        }),
    )?;
    if model.dim >= 2 {
        let x: Vec<f64> = projection.column(0).to_vec();
        let y: Vec<f64> = projection.column(1).to_vec();
        density_chart(
            &a.out.join("tica_density.png"),
            &format!(
                "TICA projection, lag {}: −ln p (dark = most probable)",
                a.lagtime
            ),
            "IC 1",
            "IC 2",
            &x,
            &y,
            80,
            None,
            None,
        )?;
    }
    println!(
        "TICA at lag {}: rank {}, dim {}",
        a.lagtime, model.rank, model.dim
    );
    println!("{:>4} {:>12} {:>14}", "ic", "eigenvalue", "timescale");
    for i in 0..model.dim {
        println!(
            "{:>4} {:>12.6} {:>14.4}",
            i + 1,
            model.eigenvalues[i],
            ts[i]
        );
    }
    Ok(())
}

fn vamp(a: VampArgs) -> Result<()> {
    out_dir(&a.out)?;
    let (cov, lengths) = stream_covariances(&a.input.trajs, a.lagtime)?;
    let mut est = Vamp::new(a.lagtime)?.epsilon(a.epsilon);
    if let Some(d) = a.dim {
        est = est.dim(Dimension::Count(d));
    }
    let model = est.fit_covariances(&cov)?;
    let score = |s| model.score(s, None, None, a.epsilon);
    let (v1, v2, ve) = (
        score(VampScore::Vamp1)?,
        score(VampScore::Vamp2)?,
        score(VampScore::VampE)?,
    );
    let mut summary = json!({
        "command": "vamp", "lagtime": a.lagtime, "n_features": cov.n_features(), "trajectory_lengths": lengths,
        "dim": model.dim, "singular_values": model.singular_values.to_vec(),
        "vamp1": v1, "vamp2": v2, "vampe": ve,
        "note": "scores include the constant singular function (+1), as deeptime's",
    });
    if a.cv_splits > 0 {
        let trajs = read_trajs(&a.input.trajs)?;
        let views: Vec<_> = trajs.iter().map(|t| t.view()).collect();
        let block = a.cv_block.unwrap_or(10 * a.lagtime);
        let cv = boltzflow_kinetics::vamp::cross_validated_score(
            &est,
            &views,
            VampScore::Vamp2,
            a.dim,
            block,
            a.cv_splits,
            a.seed,
        )?;
        let mean = cv.iter().sum::<f64>() / cv.len() as f64;
        let sd = (cv.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
            / (cv.len().max(2) - 1) as f64)
            .sqrt();
        summary["vamp2_cv"] = json!({"scores": cv, "mean": mean, "std": sd, "block": block});
        println!(
            "cross-validated VAMP-2 over {} splits: {mean:.6} ± {sd:.6}",
            a.cv_splits
        );
    }
    write_npy_1d(
        &a.out.join("singular_values.npy"),
        model.singular_values.view(),
    )?;
    write_json(&a.out.join("summary.json"), &summary)?;
    println!(
        "VAMP at lag {}: VAMP-1 {v1:.6}  VAMP-2 {v2:.6}  VAMP-E {ve:.6}",
        a.lagtime
    );
    Ok(())
}

fn cluster(a: ClusterArgs) -> Result<()> {
    out_dir(&a.out)?;
    let trajs = read_trajs(&a.input.trajs)?;
    let views: Vec<_> = trajs.iter().map(|t| t.view()).collect();
    let data = boltzflow_kinetics::cluster::stack(&views)?;
    let model = if let Some(c) = &a.centers {
        ClusterModel::from_centers(read_npy_2d(c)?)
    } else if a.method == ClusterMethod::Regspace {
        let dmin = a.dmin.context(
            "regular-space clustering needs --dmin (the minimum distance between centres)",
        )?;
        RegularSpace::new(dmin, a.max_centers)?.fit(data.view())?
    } else {
        KMeans::new(a.k)?
            .max_iter(a.max_iter)
            .tolerance(a.tolerance)
            .seed(a.seed)
            .fit(data.view())?
    };
    let labels = model.assign(data.view())?;
    write_npy_2d(&a.out.join("centers.npy"), model.centers.view())?;
    write_npy_indices(&a.out.join("dtrajs.npy"), &labels)?;
    if trajs.len() > 1 {
        let mut start = 0;
        for (k, t) in trajs.iter().enumerate() {
            write_npy_indices(
                &a.out.join(format!("dtrajs_{k}.npy")),
                &labels[start..start + t.nrows()],
            )?;
            start += t.nrows();
        }
    }
    let mut counts = vec![0usize; model.centers.nrows()];
    for &l in &labels {
        counts[l] += 1;
    }
    let empty = counts.iter().filter(|&&c| c == 0).count();
    write_json(
        &a.out.join("summary.json"),
        &json!({
            "command": "cluster", "n_centers": model.centers.nrows(), "inertia": model.inertia,
            "iterations": model.iterations, "converged": model.converged, "cluster_sizes": counts,
            "dtrajs": if trajs.len() > 1 { "dtrajs.npy concatenates all trajectories; use dtrajs_K.npy (one per trajectory) for MSMs" } else { "dtrajs.npy" },
        }),
    )?;
    println!(
        "{} centres, inertia {:.6e}, {} Lloyd iterations{}",
        model.centers.nrows(),
        model.inertia,
        model.iterations,
        if model.converged {
            ""
        } else {
            " (NOT converged: raise --max-iter)"
        }
    );
    if empty > 0 {
        eprintln!("warning: {empty} centres have no frames assigned; use fewer clusters");
    }
    Ok(())
}

fn read_trajs(files: &[PathBuf]) -> Result<Vec<Array2<f64>>> {
    files
        .iter()
        .map(|f| read_coordinates(f).map_err(Into::into))
        .collect()
}

fn read_dtrajs(files: &[PathBuf]) -> Result<Vec<Vec<usize>>> {
    files
        .iter()
        .map(|f| read_npy_dtraj(f).map_err(Into::into))
        .collect()
}

fn estimator(reversible: bool) -> MaximumLikelihoodMsm {
    MaximumLikelihoodMsm::new(reversible)
}

fn report_connectivity(m: &Msm) {
    if m.connected_set_sizes.len() > 1 {
        let sizes: Vec<String> = m
            .connected_set_sizes
            .iter()
            .take(12)
            .map(|s| s.to_string())
            .collect();
        eprintln!(
            "note: the count matrix has {} strongly connected sets (sizes {}{}); the MSM uses the largest, {} of {} states holding {:.2}% of the counts",
            m.connected_set_sizes.len(),
            sizes.join(", "),
            if m.connected_set_sizes.len() > 12 {
                ", …"
            } else {
                ""
            },
            m.n_states(),
            m.n_states_full,
            100.0 * m.active_count_fraction
        );
    }
}

fn msm(a: MsmArgs) -> Result<()> {
    out_dir(&a.out)?;
    let d = read_dtrajs(&a.input.dtrajs)?;
    let views: Vec<&[usize]> = d.iter().map(|v| v.as_slice()).collect();
    let est = estimator(a.reversible).convergence(a.tolerance, a.max_iter)?;
    let m = est.fit(&views, a.lagtime, None)?;
    report_connectivity(&m);
    if !m.converged {
        eprintln!(
            "warning: the reversible fixed point stopped after {} iterations with max |Δπ| = {:.2e} > {:.1e}; raise --max-iter",
            m.iterations, m.final_change, a.tolerance
        );
    }
    let ts = m.timescales(a.k)?;
    write_npy_2d(
        &a.out.join("transition_matrix.npy"),
        m.transition_matrix.view(),
    )?;
    write_npy_2d(&a.out.join("count_matrix.npy"), m.count_matrix.view())?;
    write_npy_1d(
        &a.out.join("stationary_distribution.npy"),
        m.stationary_distribution.view(),
    )?;
    write_npy_1d(&a.out.join("timescales.npy"), ts.view())?;
    write_npy_indices(&a.out.join("active_set.npy"), &m.active_set)?;
    let mut summary = json!({
        "command": "msm", "lagtime": a.lagtime, "reversible": a.reversible, "n_states": m.n_states_full,
        "n_active": m.n_states(), "active_count_fraction": m.active_count_fraction,
        "connected_set_sizes": m.connected_set_sizes, "iterations": m.iterations, "converged": m.converged,
        "final_change": m.final_change, "timescales": ts.to_vec(), "unit": "frames",
    });
    if let Some(n) = a.n_metastable {
        let ms = m.metastable_sets(n)?;
        write_npy_2d(&a.out.join("memberships.npy"), ms.pcca.memberships.view())?;
        write_npy_2d(&a.out.join("mfpt.npy"), ms.mfpt.view())?;
        summary["metastable_sets"] = json!(ms.pcca.sets);
        summary["metastable_populations"] = json!(ms.populations);
        summary["mfpt"] = json!(
            ms.mfpt
                .rows()
                .into_iter()
                .map(|r| r.to_vec())
                .collect::<Vec<_>>()
        );
    }
    write_json(&a.out.join("summary.json"), &summary)?;
    println!(
        "MSM at lag {} ({}): {} active states of {}",
        a.lagtime,
        if a.reversible {
            "reversible"
        } else {
            "non-reversible"
        },
        m.n_states(),
        m.n_states_full
    );
    let shown: Vec<String> = ts.iter().take(5).map(|t| format!("{t:.4}")).collect();
    println!("implied timescales (frames): {}", shown.join(", "));
    Ok(())
}

fn its(a: ItsArgs) -> Result<()> {
    out_dir(&a.out)?;
    if a.lagtimes.is_empty() {
        bail!("give at least one lag time with --lagtimes 1,2,5");
    }
    let d = read_dtrajs(&a.input.dtrajs)?;
    let views: Vec<&[usize]> = d.iter().map(|v| v.as_slice()).collect();
    let table = implied_timescales_over_lags(&views, &a.lagtimes, a.k, &estimator(a.reversible))?;
    write_npy_2d(&a.out.join("implied_timescales.npy"), table.view())?;
    let lags: Array1<f64> = a.lagtimes.iter().map(|&l| l as f64).collect();
    write_npy_1d(&a.out.join("lagtimes.npy"), lags.view())?;
    let series: Vec<Series> = (0..a.k)
        .map(|i| Series {
            name: format!("t{}", i + 1),
            points: lags
                .iter()
                .zip(table.column(i))
                .map(|(&l, &t)| (l, t))
                .collect(),
            markers_only: false,
            reference: false,
            errors: Vec::new(),
        })
        .collect();
    line_chart(
        &a.out.join("its.png"),
        "Implied timescales",
        "lag time (frames)",
        "timescale (frames)",
        &series,
        true,
        true,
    )?;
    write_json(
        &a.out.join("summary.json"),
        &json!({"command": "its", "lagtimes": a.lagtimes, "reversible": a.reversible, "implied_timescales": table.rows().into_iter().map(|r| r.to_vec()).collect::<Vec<_>>(), "unit": "frames"}),
    )?;
    println!("{:>8}  implied timescales (frames)", "lag");
    for (l, row) in a.lagtimes.iter().zip(table.rows()) {
        let cells: Vec<String> = row.iter().map(|t| format!("{t:>12.4}")).collect();
        println!("{l:>8}  {}", cells.join(" "));
    }
    Ok(())
}

fn ck(a: CkArgs) -> Result<()> {
    out_dir(&a.out)?;
    let d = read_dtrajs(&a.input.dtrajs)?;
    let views: Vec<&[usize]> = d.iter().map(|v| v.as_slice()).collect();
    let est = estimator(a.reversible);
    let m = est.fit(&views, a.lagtime, None)?;
    report_connectivity(&m);
    let p = m.pcca(a.n_metastable)?;
    let test = ck_test(&m, p.memberships.view(), &views, a.steps, &est)?;
    write_npy_nd(
        &a.out.join("ck_predicted.npy"),
        test.predicted.view().into_dyn(),
    )?;
    write_npy_nd(
        &a.out.join("ck_estimated.npy"),
        test.estimated.view().into_dyn(),
    )?;
    let x: Vec<f64> = test.lagtimes.iter().map(|&l| l as f64).collect();
    panel_grid(
        &a.out.join("ck.png"),
        &format!("CK test, lag {} (line: model, dots: estimate)", a.lagtime),
        &x,
        &test.predicted,
        &test.estimated,
    )?;
    let max_dev = (&test.predicted - &test.estimated)
        .iter()
        .fold(0.0_f64, |mx, v| mx.max(v.abs()));
    write_json(
        &a.out.join("summary.json"),
        &json!({"command": "ck", "lagtime": a.lagtime, "lagtimes": test.lagtimes, "metastable_sets": p.sets, "max_abs_deviation": max_dev}),
    )?;
    println!(
        "CK test, {} sets, lags {:?}: largest |predicted − estimated| = {max_dev:.4}",
        a.n_metastable, test.lagtimes
    );
    Ok(())
}
