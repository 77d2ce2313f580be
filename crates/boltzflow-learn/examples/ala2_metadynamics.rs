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
//! `cargo run --release -p boltzflow-learn --example ala2_metadynamics [ns per walker]`

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

/// Changes between φ < 0 and φ ≥ 0 along each walker's frames (`[rounds × walkers]`).
fn phi_sign_changes(phi_psi: &[Vec<f64>], walkers: usize) -> usize {
    (0..walkers)
        .map(|w| {
            let signs: Vec<bool> = phi_psi
                .iter()
                .skip(w)
                .step_by(walkers)
                .map(|s| s[0] >= 0.0)
                .collect();
            signs.windows(2).filter(|p| p[0] != p[1]).count()
        })
        .sum()
}

fn mean_se(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ns: f64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(2.0);
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
    let params = MetadynamicsParams {
        height: 1.2,
        sigma: vec![0.35, 0.35],
        bias_factor: 6.0,
        grid: vec![axis, axis],
    };
    let cvs = vec![
        CollectiveVariable::Dihedral(phi),
        CollectiveVariable::Dihedral(psi),
    ];
    println!(
        "alanine dipeptide, vacuum, 300 K: {RUNS} runs × {WALKERS} walkers × {ns} ns, BAOAB 1 fs, γ = 1/ps; well-tempered metadynamics on (φ, ψ): w = {} kJ/mol, σ = {} rad, γ = {}, a hill every {} ps per walker",
        params.height,
        params.sigma[0],
        params.bias_factor,
        PACE as f64 * DT_PS
    );
    let t0 = std::time::Instant::now();
    let results: Vec<boltzflow_core::Result<([f64; 4], usize, usize, f64)>> = (0..RUNS)
        .into_par_iter()
        .map(|r| {
            let streams = RandomStreams::new(40 + r as u64);
            let start = Array2::from_shape_fn((WALKERS, x0.len()), |(_, j)| x0[j]);
            let mk_move = || -> boltzflow_core::Result<Baoab> {
                Ok(Baoab::new(DT_PS, 1.0, masses.clone())?
                    .with_com_motion_removed(system.atom_masses().unwrap())?)
            };
            // Biased.
            let mut meta = Metadynamics::new(cvs.clone(), params.clone(), &thermo)?;
            let mut state = SamplerState::new(
                start.clone(),
                system.as_ref(),
                streams.chains("metad", WALKERS),
            )?;
            let mut mv = mk_move()?;
            let trace = run(
                &mut meta,
                &mut state,
                &mut mv,
                system.as_ref(),
                &thermo,
                PACE,
                rounds,
                |_, _| Ok(()),
            )?;
            let skip = rounds / 4;
            let lw = trace.log_weights(thermo.kt(), skip);
            let pops = populations(&trace.cv[skip * WALKERS..], &lw);
            let changes = phi_sign_changes(&trace.cv, WALKERS);
            // Plain MD of the same length from the same start.
            let mut plain =
                SamplerState::new(start, system.as_ref(), streams.chains("plain", WALKERS))?;
            let mut mv = mk_move()?;
            let mut frames = Vec::with_capacity(rounds * WALKERS);
            for _ in 0..rounds {
                mv.apply(&mut plain, system.as_ref(), &thermo, PACE)?;
                for row in plain.positions.rows() {
                    frames.push(cvs.iter().map(|c| c.value(row, None)).collect::<Vec<_>>());
                }
            }
            let plain_changes = phi_sign_changes(&frames, WALKERS);
            let max_bias = meta.grid().1.iter().copied().fold(0.0, f64::max);
            Ok((pops, changes, plain_changes, max_bias))
        })
        .collect();
    let results: Vec<_> = results.into_iter().collect::<boltzflow_core::Result<_>>()?;
    let walker_ns = ns * (RUNS * WALKERS) as f64;
    let changes: usize = results.iter().map(|r| r.1).sum();
    let plain: usize = results.iter().map(|r| r.2).sum();
    println!(
        "{:.0} s; φ sign changes (frames every 0.5 ps): metadynamics {changes} ({:.1} per ns), plain MD {plain} ({:.2} per ns) in {walker_ns} ns each; largest bias {:.1} kJ/mol",
        t0.elapsed().as_secs_f64(),
        changes as f64 / walker_ns,
        plain as f64 / walker_ns,
        results.iter().map(|r| r.3).fold(0.0, f64::max)
    );
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/bg/ala2_metrics.json"),
    )?)?;
    println!(
        "basin       metadynamics (reweighted)   long MD (8 × 12.5 ns)   difference / combined SE"
    );
    for (k, name) in ["c7eq", "c5", "alphar", "alphal_c7ax"].iter().enumerate() {
        let v: Vec<f64> = results.iter().map(|r| r.0[k]).collect();
        let (m, se) = mean_se(&v);
        let md = reference[format!("population_{name}_data")]
            .as_f64()
            .unwrap_or(f64::NAN);
        let md_se = reference[format!("population_{name}_data_std_error")]
            .as_f64()
            .unwrap_or(f64::NAN);
        println!(
            "{name:<11} {m:.4} ± {se:.4}             {md:.4} ± {md_se:.4}         {:+.1}",
            (m - md) / (se * se + md_se * md_se).sqrt()
        );
    }
    Ok(())
}
