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
