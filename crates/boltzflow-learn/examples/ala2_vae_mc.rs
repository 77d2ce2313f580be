//! VAE-proposed Monte Carlo on alanine dipeptide (issue 19, item 3): the moves of a trained
//! VAE run (`[vae] representation = "internal"`, or `"cartesian"`) under the molecular energy,
//! against the run's own MD data.
//!
//! Each walker alternates z ~ q(z|x) and an independent proposal z′ ~ P(z), x′ ~ p(x|z′),
//! accepted with the exact Metropolis–Hastings ratio (Monroe & Shen, JCTC 2022), so the chain
//! samples the Boltzmann distribution of the representation whatever the VAE. Detailed balance
//! is checked on the Ramachandran basin populations (mean ± standard error over 10 groups of
//! walkers, after a burn-in of a fifth of the steps) against the MD frames the VAE was trained
//! on (± standard error over their chains). Mixing is counted as transitions between C7eq and
//! C5 (a change of the last of the two basins visited) and as crossings of φ = 0 (entries into
//! or exits from αL/C7ax), per 10⁶ energy evaluations: one per proposal for VAE-MC, one per
//! MD step for the data (frames are MD_STEPS_PER_FRAME steps apart, so MD transitions shorter
//! than a frame are missed: its rate is a lower bound).
//!
//! `cargo run --release -p boltzflow-learn --example ala2_vae_mc RUN_DIR [walkers] [steps] [md steps per frame]`
//!
//! (defaults 1000 walkers, 2000 steps, 1000 MD steps per frame as in `examples/vae_ala2_*.toml`).

use std::path::PathBuf;

use boltzflow_coords::features::RamachandranBasin;
use boltzflow_core::RandomStreams;
use boltzflow_learn::run::{VaeRun, phi_psi};
use boltzflow_learn::trainer::Reduced;
use boltzflow_learn::vae::mc::vae_metropolis;
use ndarray::{Array2, ArrayView2};
use rand::seq::SliceRandom;

const GROUPS: usize = 10;

/// Basin index of every row of φ/ψ `[n, 2]`.
fn basins(t: ArrayView2<'_, f64>) -> Vec<usize> {
    t.outer_iter()
        .map(|r| RamachandranBasin::of(r[0], r[1]).index())
        .collect()
}

/// Per sequence of basin labels: (C7eq ↔ C5 transitions, φ = 0 crossings).
fn transitions(seq: &[usize]) -> (usize, usize) {
    let (c7, c5, al) = (
        RamachandranBasin::C7eq.index(),
        RamachandranBasin::C5.index(),
        RamachandranBasin::AlphaLC7ax.index(),
    );
    let mut last_core = None;
    let (mut core, mut phi) = (0, 0);
    for w in seq.windows(2) {
        if (w[0] == al) != (w[1] == al) {
            phi += 1;
        }
        let b = w[1];
        if b == c7 || b == c5 {
            if last_core.is_some_and(|l| l != b) {
                core += 1;
            }
            last_core = Some(b);
        }
    }
    (core, phi)
}

/// Mean and standard error of per-group populations `[groups][4]`.
fn mean_se(groups: &[[f64; 4]]) -> ([f64; 4], [f64; 4]) {
    let n = groups.len() as f64;
    let mut m = [0.0; 4];
    let mut se = [0.0; 4];
    for b in 0..4 {
        m[b] = groups.iter().map(|g| g[b]).sum::<f64>() / n;
        let var = groups.iter().map(|g| (g[b] - m[b]).powi(2)).sum::<f64>() / (n - 1.0);
        se[b] = (var / n).sqrt();
    }
    (m, se)
}

fn fractions(labels: &[usize]) -> [f64; 4] {
    let mut p = [0.0; 4];
    for &l in labels {
        p[l] += 1.0;
    }
    p.map(|v| v / labels.len().max(1) as f64)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1).map(PathBuf::from) else {
        return Err("usage: ala2_vae_mc RUN_DIR [walkers] [steps] [md steps per frame]".into());
    };
    let walkers: usize = args.get(2).map_or(Ok(1000), |s| s.parse())?;
    let steps: usize = args.get(3).map_or(Ok(2000), |s| s.parse())?;
    let md_steps_per_frame: f64 = args.get(4).map_or(Ok(1000.0), |s| s.parse())?;
    let run = VaeRun::open(&dir)?;
    let repr = run
        .fitted_representation()?
        .ok_or("the run is not of a molecule")?;
    let energy = repr
        .energy(Reduced {
            inner: run.system.as_ref(),
            beta: run.beta,
        })
        .ok_or("heavy-atom VAEs have no energy: use an internal or cartesian run")?;
    let (vae, trained) = run.trained()?;
    let (stage, params) = trained.last().expect("a finished stage");
    let data = boltzflow_io::read_npy_2d(&dir.join("data.npy"))?;
    let chains = run.trajectories().unwrap_or(1);
    let tors = phi_psi(&repr, run.system.as_ref(), data.view())?.ok_or("no φ/ψ")?;
    let md_labels = basins(tors.view());

    // MD: populations per chain, transitions along each chain.
    let frames = data.nrows() / chains;
    let per_chain: Vec<Vec<usize>> = (0..chains)
        .map(|c| (0..frames).map(|f| md_labels[f * chains + c]).collect())
        .collect();
    let md_groups: Vec<[f64; 4]> = per_chain.iter().map(|s| fractions(s)).collect();
    let (md_p, md_se) = mean_se(&md_groups);
    let (md_core, md_phi) = per_chain
        .iter()
        .map(|s| transitions(s))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let md_evals = data.nrows() as f64 * md_steps_per_frame;

    // VAE-MC from random data frames.
    let mut rows: Vec<usize> = (0..data.nrows()).collect();
    let streams = RandomStreams::new(run.cfg.seed.wrapping_add(77));
    rows.shuffle(&mut streams.stream("ala2_vae_mc.start"));
    rows.truncate(walkers);
    let mut x = Array2::from_shape_fn((walkers, data.ncols()), |(r, c)| data[[rows[r], c]]);
    let burn = steps / 5;
    let mut seqs: Vec<Vec<usize>> = vec![Vec::with_capacity(steps); walkers];
    let mut counts = vec![[0.0f64; 4]; GROUPS];
    let mut failed = None;
    let t0 = std::time::Instant::now();
    let f_acc = vae_metropolis(
        &vae,
        params,
        &energy,
        &mut x,
        steps,
        &mut streams.stream("ala2_vae_mc.chain"),
        |step, x| match phi_psi(&repr, run.system.as_ref(), x.view()) {
            Ok(Some(t)) => {
                for (w, b) in basins(t.view()).into_iter().enumerate() {
                    seqs[w].push(b);
                    if step >= burn {
                        counts[w % GROUPS][b] += 1.0;
                    }
                }
            }
            other => failed = Some(format!("{other:?}")),
        },
    )?;
    if let Some(e) = failed {
        return Err(format!("φ/ψ of the walkers: {e}").into());
    }
    let secs = t0.elapsed().as_secs_f64();
    let groups: Vec<[f64; 4]> = counts
        .iter()
        .map(|c| {
            let t: f64 = c.iter().sum();
            c.map(|v| v / t)
        })
        .collect();
    let (mc_p, mc_se) = mean_se(&groups);
    let (mc_core, mc_phi) = seqs
        .iter()
        .map(|s| transitions(s))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let mc_evals = (walkers * steps) as f64;

    println!(
        "{}: {} decoder, latent dim {}, stage {} ({} representation)",
        dir.display(),
        vae.decoder().kind().name(),
        vae.latent_dim(),
        stage.label(),
        repr.kind().name()
    );
    println!(
        "VAE-MC: {walkers} walkers × {steps} steps in {secs:.1} s, f_acc {f_acc:.4}; MD: {chains} chains × {frames} frames"
    );
    println!(
        "{:<12} {:>18} {:>18} {:>8}",
        "basin", "VAE-MC", "MD", "diff/SE"
    );
    for b in RamachandranBasin::ALL {
        let i = b.index();
        let se = (mc_se[i].powi(2) + md_se[i].powi(2)).sqrt();
        println!(
            "{:<12} {:>9.4} ± {:<6.4} {:>9.4} ± {:<6.4} {:>8.1}",
            b.name(),
            mc_p[i],
            mc_se[i],
            md_p[i],
            md_se[i],
            if se > 0.0 {
                (mc_p[i] - md_p[i]) / se
            } else {
                f64::NAN
            }
        );
    }
    let per_m = |n: usize, evals: f64| n as f64 / evals * 1e6;
    println!(
        "C7eq <-> C5 transitions per 10^6 energy evaluations: VAE-MC {:.1} ({mc_core}), MD ≥ {:.2} ({md_core})",
        per_m(mc_core, mc_evals),
        per_m(md_core, md_evals)
    );
    println!(
        "phi = 0 crossings per 10^6 energy evaluations: VAE-MC {:.2} ({mc_phi}), MD ≥ {:.3} ({md_phi})",
        per_m(mc_phi, mc_evals),
        per_m(md_phi, md_evals)
    );
    Ok(())
}
