//! `boltzflow simulate --metad …`: a simulation biased by well-tempered metadynamics
//! ([`boltzflow_mcmc::metadynamics`]) along one or two collective variables, with the frames'
//! reweighting log-weights, the free-energy surface of the bias and, for molecules, the
//! reweighted Ramachandran basin populations.

use boltzflow_coords::features::{RamachandranBasin, first_phi_psi};
use boltzflow_core::{Coordinate, Error, Result, SamplerState};
use boltzflow_mcmc::metadynamics::{
    self, CollectiveVariable, GridAxis, Metadynamics, MetadynamicsParams,
};
use boltzflow_systems::System;
use ndarray::{Array1, Array2};

use super::SimulationSpec;
use super::simulate::{Start, build_move, start};

/// The bias of a metadynamics simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadynamicsSpec {
    /// One or two CVs separated by `;`: `phi`, `psi` (the first residue's backbone torsions of
    /// a molecule with a topology), `dihedral:a,b,c,d` (atoms from 0), `vae:RUN_DIR[:j]` (the
    /// j-th encoder mean of a VAE of the molecule in internal coordinates; its grid defaults
    /// to the range of the run's data), or a reaction coordinate of the toy systems
    /// (`projection:w1,…`, `distance:i,j`).
    pub cvs: String,
    /// Initial Gaussian height, in kT.
    pub height_kt: f64,
    /// Gaussian widths, one per CV (one value applies to all); radians for torsions.
    pub sigma: Vec<f64>,
    /// Bias factor γ > 1.
    pub bias_factor: f64,
    /// Steps between depositions (every walker deposits).
    pub pace: u64,
    /// Grid bins per CV.
    pub bins: usize,
    /// `[lo, hi]` of each non-periodic CV, in order (torsions need none; a learned CV without
    /// one uses its default).
    pub ranges: Vec<[f64; 2]>,
}

/// What a metadynamics simulation produced.
#[derive(Debug)]
pub struct MetadynamicsResult {
    /// Saved frames `[frames · chains, dim]`, frame-major.
    pub samples: Array2<f64>,
    /// Their unbiased energies `[frames, chains]`.
    pub energies: Array2<f64>,
    /// Their log-weights β(V(s, t) − c(t)) `[frames · chains]`, frame-major.
    pub log_weights: Array1<f64>,
    /// The free energy F = −γ/(γ − 1)V on the grid, `[points, n_cv + 1]` (CV values, F in the
    /// system's energy unit, minimum 0).
    pub fes: Array2<f64>,
    /// Counts and reweighted populations.
    pub summary: MetadynamicsSummary,
}

/// The summary of [`MetadynamicsResult`] (written as JSON by `--summary`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct MetadynamicsSummary {
    /// The system specification.
    pub system: String,
    /// The CVs as given.
    pub cvs: String,
    /// Walkers (chains), sharing one bias.
    pub chains: usize,
    /// Steps per walker.
    pub steps: u64,
    /// Gaussians deposited.
    pub hills: u64,
    /// Largest bias on the grid (the system's energy unit).
    pub max_bias: f64,
    /// Kish effective sample size of the saved frames' weights, as a fraction of the frames.
    pub ess_fraction: f64,
    /// Molecules: reweighted Ramachandran basin populations (C7eq, C5, αR, αL/C7ax; the rule in
    /// DESIGN), with standard errors from four consecutive blocks of frames.
    pub ramachandran: Option<Vec<(String, f64, f64)>>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Parses `spec.cvs` for `system`.
fn parse_cvs(system: &dyn System, text: &str) -> Result<Vec<CollectiveVariable>> {
    let field = "--metad";
    let torsions = || -> Result<[[usize; 4]; 2]> {
        let top = system
            .as_openmm()
            .and_then(|o| o.topology())
            .ok_or_else(|| {
                Error::invalid(
                    field,
                    "`phi`/`psi` need a molecule with a topology (an `openmm:` system with --pdb)",
                )
            })?;
        first_phi_psi(top)
            .map(|(_, q)| q)
            .ok_or_else(|| Error::invalid(field, "the topology has no residue with both φ and ψ"))
    };
    let cvs = text
        .split(';')
        .map(str::trim)
        .map(|t| -> Result<CollectiveVariable> {
            let cv = match t {
                "phi" => CollectiveVariable::Dihedral(torsions()?[0]),
                "psi" => CollectiveVariable::Dihedral(torsions()?[1]),
                _ if t.starts_with("vae:") => learned_cv(&t["vae:".len()..])?,
                _ if t.starts_with("dihedral:") => {
                    let atoms: Vec<usize> = t["dihedral:".len()..]
                        .split(',')
                        .map(|a| a.trim().parse::<usize>())
                        .collect::<std::result::Result<_, _>>()
                        .map_err(|_| {
                            Error::invalid(field, format!("`{t}`: atoms must be integers"))
                        })?;
                    let atoms: [usize; 4] = atoms.try_into().map_err(|_| {
                        Error::invalid(field, format!("`{t}`: a dihedral needs 4 atoms"))
                    })?;
                    CollectiveVariable::Dihedral(atoms)
                }
                _ => CollectiveVariable::Coordinate(Coordinate::parse(
                    t,
                    field,
                    system.dim(),
                    // Molecules have x, y, z per atom; the toy particle systems are 2-D.
                    if system.atom_masses().is_some() { 3 } else { 2 },
                )?),
            };
            cv.check(system.dim(), field)?;
            Ok(cv)
        })
        .collect::<Result<Vec<_>>>()?;
    if cvs.len() > 2 {
        return Err(Error::invalid(
            field,
            format!("at most 2 CVs, got {} in `{text}`", cvs.len()),
        ));
    }
    Ok(cvs)
}

/// `RUN_DIR` or `RUN_DIR:j`: component j (default 0) of the encoder mean of a VAE run.
fn learned_cv(text: &str) -> Result<CollectiveVariable> {
    let (dir, component) = match text.rsplit_once(':') {
        Some((d, j)) if !j.is_empty() && j.chars().all(|c| c.is_ascii_digit()) => {
            (d, j.parse::<usize>().expect("digits"))
        }
        _ => (text, 0),
    };
    let dir = std::path::Path::new(dir);
    if !dir.join("config.toml").exists() {
        return Err(Error::invalid(
            "--metad",
            format!(
                "`vae:{}` is not a VAE run directory (no config.toml)",
                dir.display()
            ),
        ));
    }
    let run = super::VaeRun::open(dir)?;
    Ok(CollectiveVariable::Learned(std::sync::Arc::new(
        super::EncoderCv::from_run(&run, None, component)?,
    )))
}

/// Runs `spec` (sampler, chains, steps, burn-in, stride, seed, start) biased by `metad`.
/// Frames are saved every `stride` steps after `burn_in`; both and `steps` must be multiples
/// of the deposition pace.
///
/// # Errors
/// [`Error::InvalidParameter`] naming the `--metad*` option or protocol value that is wrong;
/// a non-finite energy (with its chain and step).
pub fn simulate_metadynamics(
    system: &dyn System,
    spec: &SimulationSpec,
    metad: &MetadynamicsSpec,
) -> Result<MetadynamicsResult> {
    let t0 = std::time::Instant::now();
    let cvs = parse_cvs(system, &metad.cvs)?;
    let pace = metad.pace;
    if pace == 0
        || [spec.steps, spec.burn_in, spec.stride]
            .iter()
            .any(|v| !v.is_multiple_of(pace))
    {
        return Err(Error::invalid(
            "--metad-pace",
            format!(
                "must be positive and divide --steps ({}), --burn-in ({}) and --stride ({}); got {pace}",
                spec.steps, spec.burn_in, spec.stride
            ),
        ));
    }
    if spec.chains == 0 || spec.burn_in >= spec.steps {
        return Err(Error::invalid(
            "--burn-in",
            "needs at least one chain and fewer burn-in steps than steps",
        ));
    }
    let sigma = match metad.sigma.as_slice() {
        [s] => vec![*s; cvs.len()],
        s => s.to_vec(),
    };
    let mut ranges = metad.ranges.iter();
    let grid = cvs
        .iter()
        .map(|cv| {
            if cv.periodic() {
                Ok(GridAxis {
                    lo: -std::f64::consts::PI,
                    hi: std::f64::consts::PI,
                    bins: metad.bins,
                    periodic: true,
                })
            } else {
                let [lo, hi] = ranges
                    .next()
                    .copied()
                    .or_else(|| cv.default_range())
                    .ok_or_else(|| {
                        Error::invalid(
                            "--metad-range",
                            "give lo,hi for every CV that is not a torsion (separated by `;`)",
                        )
                    })?;
                Ok(GridAxis {
                    lo,
                    hi,
                    bins: metad.bins,
                    periodic: false,
                })
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let Start {
        step_size,
        thermo,
        streams,
        x0,
        ..
    } = start(system, spec)?;
    let params = MetadynamicsParams {
        height: metad.height_kt * thermo.kt(),
        sigma,
        bias_factor: metad.bias_factor,
        grid,
    };
    let mut meta = Metadynamics::new(cvs, params, &thermo)?;
    let mut state = SamplerState::new(x0, system, streams.chains("metad", spec.chains))?;
    let (mut mv, _, _) = build_move(system, spec, step_size)?;
    let rounds = (spec.steps / pace) as usize;
    let saved = |round: usize| {
        let t = (round as u64 + 1) * pace;
        t > spec.burn_in && (t - spec.burn_in).is_multiple_of(spec.stride)
    };
    let mut frames: Vec<Array2<f64>> = Vec::new();
    let mut energies: Vec<Array1<f64>> = Vec::new();
    let mut saved_rounds = Vec::new();
    let trace = metadynamics::run(
        &mut meta,
        &mut state,
        mv.as_mut(),
        system,
        pace,
        rounds,
        |round, st| {
            if saved(round) {
                frames.push(st.positions.clone());
                // Biased energies under the bias frozen for this round; trace.bias holds that
                // bias at each frame, so the system's energy follows without evaluating it again.
                energies.push(st.energies.clone());
                saved_rounds.push(round);
            }
            Ok(())
        },
    )?;
    let w = spec.chains;
    let all_lw = trace.log_weights(thermo.kt(), 0);
    let log_weights: Array1<f64> = saved_rounds
        .iter()
        .flat_map(|&r| all_lw[r * w..(r + 1) * w].iter().copied())
        .collect();
    let dim = system.dim();
    let n_frames = frames.len();
    let samples = Array2::from_shape_fn((n_frames * w, dim), |(i, j)| frames[i / w][[i % w, j]]);
    let energies = Array2::from_shape_fn((n_frames, w), |(f, c)| {
        energies[f][c] - trace.bias[saved_rounds[f] * w + c]
    });
    let (pts, values) = meta.grid();
    let f = meta.free_energy();
    let fes = Array2::from_shape_fn((pts.nrows(), pts.ncols() + 1), |(i, j)| {
        if j < pts.ncols() { pts[[i, j]] } else { f[i] }
    });
    let weights = normalised(log_weights.as_slice().expect("contiguous"));
    let ess_fraction = 1.0 / weights.iter().map(|w| w * w).sum::<f64>() / weights.len() as f64;
    let ramachandran = system
        .as_openmm()
        .and_then(|o| o.topology())
        .and_then(first_phi_psi)
        .map(|(_, [phi, psi])| ramachandran(&samples, &log_weights, [phi, psi], w));
    Ok(MetadynamicsResult {
        samples,
        energies,
        log_weights,
        fes,
        summary: MetadynamicsSummary {
            system: system.spec(),
            cvs: metad.cvs.clone(),
            chains: spec.chains,
            steps: spec.steps,
            hills: meta.hills(),
            max_bias: values.iter().copied().fold(0.0, f64::max),
            ess_fraction,
            ramachandran,
            seconds: t0.elapsed().as_secs_f64(),
        },
    })
}

/// Weights e^{l} normalised to sum 1.
fn normalised(log_weights: &[f64]) -> Vec<f64> {
    let m = log_weights
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = log_weights.iter().map(|l| (l - m).exp()).collect();
    let s: f64 = w.iter().sum();
    w.into_iter().map(|v| v / s).collect()
}

/// Reweighted basin populations of frame-major `samples` (`chains` per frame), with the
/// standard error over four consecutive blocks of frames.
fn ramachandran(
    samples: &Array2<f64>,
    log_weights: &Array1<f64>,
    [phi, psi]: [[usize; 4]; 2],
    chains: usize,
) -> Vec<(String, f64, f64)> {
    let angle = |row: ndarray::ArrayView1<f64>, q: [usize; 4]| {
        CollectiveVariable::Dihedral(q).value(row, None)
    };
    let basin: Vec<usize> = samples
        .rows()
        .into_iter()
        .map(|r| {
            let b = RamachandranBasin::of(angle(r, phi), angle(r, psi));
            RamachandranBasin::ALL
                .iter()
                .position(|&a| a == b)
                .unwrap_or(0)
        })
        .collect();
    let pops = |range: std::ops::Range<usize>| {
        let w = normalised(&log_weights.as_slice().expect("contiguous")[range.clone()]);
        let mut p = [0.0; 4];
        for (wi, &b) in w.iter().zip(&basin[range]) {
            p[b] += wi;
        }
        p
    };
    let n = basin.len();
    let all = pops(0..n);
    let frames = n / chains;
    let blocks: Vec<[f64; 4]> = (0..4)
        .filter_map(|b| {
            let (lo, hi) = (b * frames / 4 * chains, (b + 1) * frames / 4 * chains);
            (hi > lo).then(|| pops(lo..hi))
        })
        .collect();
    RamachandranBasin::ALL
        .iter()
        .enumerate()
        .map(|(k, b)| {
            let nb = blocks.len() as f64;
            let m = blocks.iter().map(|p| p[k]).sum::<f64>() / nb;
            let var = blocks.iter().map(|p| (p[k] - m).powi(2)).sum::<f64>() / (nb - 1.0).max(1.0);
            (format!("{b:?}"), all[k], (var / nb).sqrt())
        })
        .collect()
}
