//! Reporters for long runs: a progress bar on a terminal, plain periodic lines otherwise.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use boltzflow_core::{Reporter, Result, SamplerState};
use indicatif::{ProgressBar, ProgressStyle};

/// Shows progress of a sampler run: an `indicatif` bar when stderr is a terminal, otherwise a
/// plain line on stderr about every 10% of the run (step, elapsed time, mean energy).
pub struct ProgressReporter {
    total: u64,
    bar: Option<ProgressBar>,
    next_line_at: u64,
    start: Instant,
    quiet: bool,
}

impl ProgressReporter {
    /// Progress over `total` steps; `quiet` suppresses all output.
    pub fn new(total: u64, label: &str, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:40}] {pos}/{len} steps {elapsed_precise} eta {eta} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_prefix(label.to_string());
            b
        });
        Self {
            total,
            bar,
            next_line_at: total.div_ceil(10).max(1),
            start: Instant::now(),
            quiet,
        }
    }

    /// Ends the bar (or prints nothing in plain mode).
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}

impl Reporter<SamplerState> for ProgressReporter {
    fn report(&mut self, step: u64, state: &SamplerState) -> Result<()> {
        if self.quiet {
            return Ok(());
        }
        let finite: Vec<f64> = state
            .energies
            .iter()
            .copied()
            .filter(|e| e.is_finite())
            .collect();
        let mean = finite.iter().sum::<f64>() / finite.len().max(1) as f64;
        if let Some(b) = &self.bar {
            b.set_position(step);
            b.set_message(format!("<E> = {mean:.4}"));
        } else if step >= self.next_line_at || step == self.total {
            let _ = writeln!(
                std::io::stderr(),
                "step {step}/{} ({:.0}%), {:.1} s, mean energy {mean:.4}",
                self.total,
                100.0 * step as f64 / self.total as f64,
                self.start.elapsed().as_secs_f64()
            );
            while self.next_line_at <= step {
                self.next_line_at += self.total.div_ceil(10).max(1);
            }
        }
        Ok(())
    }
}

/// Records the kinetic energy Σ ½ m v² of every chain at every report after `burn_in` steps
/// (with [`crate::Simulation`], at each saved frame), for temperatures and energy drift.
///
/// With [`KineticEnergyRecorder::with_half_kick`] it also records the kinetic energy of the
/// mid-step velocities v − (Δt/2) F/m of a BAOAB step (the velocities the O step produced). For a
/// harmonic mode of frequency ω these are exactly Maxwell–Boltzmann, while the end-of-step
/// velocities have variance (1 − (ωΔt/2)²) kT/m (Leimkuhler & Matthews 2013): with 1 fs steps the
/// hydrogen stretches alone make the end-of-step temperature a few per cent low. Use the mid-step
/// kinetic energy for the temperature and the end-of-step one for energy conservation.
#[derive(Debug, Clone)]
pub struct KineticEnergyRecorder {
    masses: Vec<f64>,
    burn_in: u64,
    half_kick: Option<f64>,
    /// Constraints of the dynamics: the undone half kick is projected onto their tangent space.
    constraints: Option<crate::Constraints>,
    /// Steps of the recorded reports.
    pub steps: Vec<u64>,
    /// End-of-step kinetic energies per report, `[n_chains]` each, in the system's energy unit.
    pub kinetic: Vec<ndarray::Array1<f64>>,
    /// Mid-step kinetic energies per report (with a half kick), `[n_chains]` each.
    pub kinetic_mid: Vec<ndarray::Array1<f64>>,
}

impl KineticEnergyRecorder {
    /// Masses per coordinate (`[dim]`); reports at or before step `burn_in` are ignored.
    pub fn new(masses: Vec<f64>, burn_in: u64) -> Self {
        Self {
            masses,
            burn_in,
            half_kick: None,
            constraints: None,
            steps: Vec::new(),
            kinetic: Vec::new(),
            kinetic_mid: Vec::new(),
        }
    }

    /// Also records the mid-step kinetic energy of a BAOAB run with time step `dt`.
    pub fn with_half_kick(mut self, dt: f64) -> Self {
        self.half_kick = Some(0.5 * dt);
        self
    }

    /// For constrained dynamics: the mid-step velocities are v − P(h F/m), P the projection
    /// onto the constraint surface's tangent space (the last B step's kick was projected).
    pub fn with_constraints(mut self, constraints: Option<crate::Constraints>) -> Self {
        self.constraints = constraints;
        self
    }
}

impl Reporter<SamplerState> for KineticEnergyRecorder {
    fn report(&mut self, step: u64, state: &SamplerState) -> Result<()> {
        if step <= self.burn_in {
            return Ok(());
        }
        let Some(v) = &state.velocities else {
            return Ok(());
        };
        self.steps.push(step);
        self.kinetic.push(kinetic_energies(v, &self.masses, None));
        if let (Some(h), Some(f)) = (self.half_kick, &state.forces) {
            let mid = match &self.constraints {
                None => kinetic_energies(v, &self.masses, Some((h, f))),
                Some(cons) => {
                    // The kick h F/m projected like the integrator's, then undone.
                    let mut kick = f.clone();
                    for ((mut k, x), c) in kick
                        .outer_iter_mut()
                        .zip(state.positions.outer_iter())
                        .zip(0..)
                    {
                        k.iter_mut()
                            .zip(&self.masses)
                            .for_each(|(kd, m)| *kd *= h / m);
                        cons.project_velocities(
                            x.as_slice().expect("standard layout"),
                            k.as_slice_mut().expect("standard layout"),
                        )
                        .map_err(|e| e.context(format!("mid-step velocities of chain {c}")))?;
                    }
                    kinetic_energies(&(v - &kick), &self.masses, None)
                }
            };
            self.kinetic_mid.push(mid);
        }
        Ok(())
    }
}

/// Kinetic energy Σ ½ m v² per chain (`[n_chains]`) of velocities `v` (`[n_chains, dim]`) with
/// masses per coordinate; with `shift = (h, F)` of the velocities v − h F/m (a half kick undone).
pub fn kinetic_energies(
    v: &ndarray::Array2<f64>,
    masses: &[f64],
    shift: Option<(f64, &ndarray::Array2<f64>)>,
) -> ndarray::Array1<f64> {
    (0..v.nrows())
        .map(|c| {
            masses
                .iter()
                .enumerate()
                .map(|(d, m)| {
                    let vd = match shift {
                        Some((h, f)) => v[[c, d]] - h * f[[c, d]] / m,
                        None => v[[c, d]],
                    };
                    0.5 * m * vd * vd
                })
                .sum()
        })
        .collect()
}
