//! Well-tempered metadynamics on the backbone torsions (φ, ψ) of alanine dipeptide in vacuum
//! (issue 19, item 6): boltzflow's own Langevin MD (BAOAB, 1 fs, γ = 1/ps, 300 K, AMBER ff99SB-ILDN
//! from `data/ala2`) with a bias on (φ, ψ), against plain MD of the same length.
//!
//! RUNS independent runs of WALKERS walkers each (the walkers of one run share their bias); a
//! Gaussian (height 1.2 kJ/mol, σ = 0.35 rad, bias factor 6) per walker every 0.5 ps. Reported:
//! transitions between φ < 0 and φ ≥ 0 (αL/C7ax) per ns, with and without the bias; the
//! Ramachandran basin populations reweighted by e^{β(V(s,t) − c(t))} (Tiwary & Parrinello 2015)
//! after the first quarter of each run, mean ± standard error over the runs; and the project's
//! long MD (docs/bg/ala2_metrics.json, `population_*_data`: 8 × 12.5 ns of the same force field)
//! as the reference for the φ < 0 basins, where plain MD has converged.
//!
//! `cargo run --release -p boltzflow-learn --example ala2_metadynamics [ns per walker] [phi,psi | phi] [plain MD ns per walker]`
//!
//! (defaults 2 ns, both torsions, plain MD as long as the biased run). With `phi` alone the
//! bias acts on φ only: the same populations from a different bias, a check of the reweighting.

use std::path::Path;

use boltzflow_coords::features::{RamachandranBasin, first_phi_psi};
use boltzflow_core::{Move, RandomStreams, SamplerState, ThermodynamicState};
use boltzflow_mcmc::Baoab;
use boltzflow_mcmc::metadynamics::{
    CollectiveVariable, GridAxis, Metadynamics, MetadynamicsParams, run,
};
use ndarray::Array2;
use rayon::prelude::*;

const RUNS: usize = 4;
const WALKERS: usize = 4;
/// Steps between depositions (0.5 ps at 1 fs).
const PACE: u64 = 500;
const DT_PS: f64 = 0.001;

/// Per basin (the order of [`RamachandranBasin::ALL`]) the weighted population of frames
/// (φ, ψ) with log-weights `lw`.
fn populations(phi_psi: &[Vec<f64>], lw: &[f64]) -> [f64; 4] {
    let m = lw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut p = [0.0; 4];
    let mut total = 0.0;
    for (s, &l) in phi_psi.iter().zip(lw) {
        let w = (l - m).exp();
        let b = RamachandranBasin::of(s[0], s[1]);
        let k = RamachandranBasin::ALL.iter().position(|&a| a == b).unwrap();
        p[k] += w;
        total += w;
    }
    p.map(|v| v / total)
}

/// Crossings of φ = 0 along each walker's frames (`[rounds × walkers]`): changes of the sign
/// of φ by less than π between frames (a step across ±π, inside the extended region, is not one).
fn phi_sign_changes(phi_psi: &[Vec<f64>], walkers: usize) -> usize {
    (0..walkers)
        .map(|w| {
            let phi: Vec<f64> = phi_psi
                .iter()
                .skip(w)
                .step_by(walkers)
                .map(|s| s[0])
                .collect();
            phi.windows(2)
                .filter(|p| {
                    (p[0] >= 0.0) != (p[1] >= 0.0) && (p[1] - p[0]).abs() < std::f64::consts::PI
                })
                .count()
        })
        .sum()
}

/// One run: the reweighted basin populations (the order of [`RamachandranBasin::ALL`]), φ = 0
/// crossings with and without the bias, and the bias's maximum (kJ/mol).
type RunResult = ([f64; 4], usize, usize, f64);

fn mean_se(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let ns: f64 = args.get(1).map(|a| a.parse()).transpose()?.unwrap_or(2.0);
    let phi_only = match args.get(2).map(String::as_str) {
        None | Some("phi,psi") => false,
        Some("phi") => true,
        Some(other) => return Err(format!("CVs `{other}`: give `phi,psi` or `phi`").into()),
    };
    let plain_ns: f64 = args.get(3).map(|a| a.parse()).transpose()?.unwrap_or(ns);
    let plain_rounds = (plain_ns * 1000.0 / (PACE as f64 * DT_PS)).round() as usize;
    let rounds = (ns * 1000.0 / (PACE as f64 * DT_PS)).round() as usize;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/ala2");
    let system = boltzflow_systems::build_with_pdb(
        &format!("openmm:{}", root.join("ala2_system.xml").display()),
        Some(&root.join("ala2.pdb")),
    )?;
    let omm = system.as_openmm().expect("an OpenMM system");
    let top = omm.topology().expect("the PDB's topology");
    let (_, [phi, psi]) = first_phi_psi(top).expect("a residue with φ and ψ");
    let x0 = omm.positions().expect("start positions").to_vec();
    let thermo = ThermodynamicState::kelvin(300.0)?;
    let masses: Vec<f64> = system
        .atom_masses()
        .expect("atom masses")
        .iter()
        .flat_map(|&m| [m; 3])
        .collect();
    let axis = GridAxis {
        lo: -std::f64::consts::PI,
        hi: std::f64::consts::PI,
        bins: 120,
        periodic: true,
    };
    let n_cv = if phi_only { 1 } else { 2 };
    let params = MetadynamicsParams {
        height: 1.2,
        sigma: vec![0.35; n_cv],
        bias_factor: 6.0,
        grid: vec![axis; n_cv],
    };
    let mut cvs = vec![CollectiveVariable::Dihedral(phi)];
    if !phi_only {
        cvs.push(CollectiveVariable::Dihedral(psi));
    }
    // Frames are recorded as (φ, ψ) whatever the bias acts on.
    let phi_psi = [
        CollectiveVariable::Dihedral(phi),
        CollectiveVariable::Dihedral(psi),
    ];
    println!(
        "alanine dipeptide, vacuum, 300 K: {RUNS} runs × {WALKERS} walkers × {ns} ns, BAOAB 1 fs, γ = 1/ps; well-tempered metadynamics on {}: w = {} kJ/mol, σ = {} rad, γ = {}, a hill every {} ps per walker",
        if phi_only { "φ" } else { "(φ, ψ)" },
        params.height,
        params.sigma[0],
        params.bias_factor,
        PACE as f64 * DT_PS
    );
    let t0 = std::time::Instant::now();
    let results: Vec<boltzflow_core::Result<RunResult>> = (0..RUNS)
        .into_par_iter()
        .map(|r| {
            let streams = RandomStreams::new(40 + r as u64);
            let start = Array2::from_shape_fn((WALKERS, x0.len()), |(_, j)| x0[j]);
            let mk_move = || -> boltzflow_core::Result<Baoab> {
                Baoab::new(DT_PS, 1.0, masses.clone())?
                    .with_com_motion_removed(system.atom_masses().unwrap())
            };
            // Biased.
            let mut meta = Metadynamics::new(cvs.clone(), params.clone(), &thermo)?;
            let mut state = SamplerState::new(
                start.clone(),
                system.as_ref(),
                streams.chains("metad", WALKERS),
            )?;
            let mut mv = mk_move()?;
            let mut frames = Vec::with_capacity(rounds * WALKERS);
            let trace = run(
                &mut meta,
                &mut state,
                &mut mv,
                system.as_ref(),
                PACE,
                rounds,
                |_, st| {
                    for row in st.positions.rows() {
                        frames.push(phi_psi.iter().map(|c| c.value(row, None)).collect());
                    }
                    Ok(())
                },
            )?;
            let skip = rounds / 4;
            let lw = trace.log_weights(thermo.kt(), skip);
            let pops = populations(&frames[skip * WALKERS..], &lw);
            let changes = phi_sign_changes(&frames, WALKERS);
            // Plain MD of the same length from the same start.
            let mut plain =
                SamplerState::new(start, system.as_ref(), streams.chains("plain", WALKERS))?;
            let mut mv = mk_move()?;
            let mut frames = Vec::with_capacity(plain_rounds * WALKERS);
            for _ in 0..plain_rounds {
                mv.apply(&mut plain, system.as_ref(), &thermo, PACE)?;
                for row in plain.positions.rows() {
                    frames.push(
                        phi_psi
                            .iter()
                            .map(|c| c.value(row, None))
                            .collect::<Vec<_>>(),
                    );
                }
            }
            let plain_changes = phi_sign_changes(&frames, WALKERS);
            let max_bias = meta.grid().1.iter().copied().fold(0.0, f64::max);
            Ok((pops, changes, plain_changes, max_bias))
        })
        .collect();
    let results: Vec<_> = results.into_iter().collect::<boltzflow_core::Result<_>>()?;
    let walker_ns = ns * (RUNS * WALKERS) as f64;
    let plain_walker_ns = plain_ns * (RUNS * WALKERS) as f64;
    let changes: usize = results.iter().map(|r| r.1).sum();
    let plain: usize = results.iter().map(|r| r.2).sum();
    println!(
        "{:.0} s; φ sign changes (frames every 0.5 ps): metadynamics {changes} ({:.1} per ns), plain MD {plain} ({:.2} per ns) in {walker_ns} and {plain_walker_ns} ns; largest bias {:.1} kJ/mol",
        t0.elapsed().as_secs_f64(),
        changes as f64 / walker_ns,
        plain as f64 / plain_walker_ns,
        results.iter().map(|r| r.3).fold(0.0, f64::max)
    );
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/bg/ala2_metrics.json"),
    )?)?;
    // Plain MD crosses to φ ≥ 0 too rarely to weigh that basin, so the φ < 0 basins are
    // compared as fractions of φ < 0 (both sides renormalised); αL/C7ax is reported as is.
    println!(
        "basin       metadynamics (reweighted)   long MD (8 × 12.5 ns)   difference / combined SE   (φ < 0 basins as fractions of φ < 0)"
    );
    let md_value = |key: String| reference[key].as_f64().unwrap_or(f64::NAN);
    let md_phi_neg = 1.0 - md_value("population_alphal_c7ax_data".into());
    for (k, name) in ["c7eq", "c5", "alphar", "alphal_c7ax"].iter().enumerate() {
        let norm = |p: f64, phi_neg: f64| if k < 3 { p / phi_neg } else { p };
        let v: Vec<f64> = results.iter().map(|r| norm(r.0[k], 1.0 - r.0[3])).collect();
        let (m, se) = mean_se(&v);
        let md = norm(md_value(format!("population_{name}_data")), md_phi_neg);
        let md_se = norm(
            md_value(format!("population_{name}_data_std_error")),
            md_phi_neg,
        );
        println!(
            "{name:<11} {m:.4} ± {se:.4}             {md:.4} ± {md_se:.4}         {:+.1}",
            (m - md) / (se * se + md_se * md_se).sqrt()
        );
    }
    // ΔF(αL/C7ax − C7eq) = −kT ln(p_αL / p_C7eq), per run, then mean ± SE.
    let kt = thermo.kt();
    let df: Vec<f64> = results
        .iter()
        .map(|r| -kt * (r.0[3] / r.0[0]).ln())
        .collect();
    let (m, se) = mean_se(&df);
    println!(
        "ΔF(αL/C7ax − C7eq) = {m:.2} ± {se:.2} kJ/mol ({:.2} ± {:.2} kT)",
        m / kt,
        se / kt
    );
    Ok(())
}
