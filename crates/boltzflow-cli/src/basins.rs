//! Basin populations of sampled 2D configurations next to the exact quadrature values.

use boltzflow_systems::System;
use boltzflow_systems::quadrature::GridQuadrature;
use ndarray::ArrayView2;

/// One row of the comparison table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BasinRow {
    /// Position of the basin's minimum.
    pub minimum: [f64; 2],
    /// Exact probability by quadrature.
    pub exact: f64,
    /// Sampled probability.
    pub sampled: f64,
    /// Its standard error, from the spread of per-chain estimates.
    pub standard_error: f64,
}

/// Compares basin populations for a 2D system with isolated minima. `samples` is frame-major
/// `[n_frames · n_chains, 2]`. Returns `None` for systems without a box or with < 2 basins
/// holding ≥ 10⁻³ of the probability.
pub fn compare(
    system: &dyn System,
    kt: f64,
    samples: ArrayView2<f64>,
    n_chains: usize,
) -> Option<Vec<BasinRow>> {
    let b = system.reference_box()?;
    if system.dim() != 2 || !system.periods().iter().all(Option::is_none) {
        return None;
    }
    let q = GridQuadrature::new(system, [b[0], b[1]], [1024, 1024], 1.0 / kt).ok()?;
    let basins = q.basins();
    let big = basins.significant(1e-3);
    if big.len() < 2 || big.len() > 10 {
        return None;
    }
    let labels = basins.assign(samples);
    let n_frames = samples.nrows() / n_chains;
    Some(
        big.iter()
            .map(|&k| {
                // Per-chain fraction of frames in the basin; chains are independent.
                let per_chain: Vec<f64> = (0..n_chains)
                    .map(|c| {
                        (0..n_frames)
                            .filter(|f| labels[f * n_chains + c] == Some(k))
                            .count() as f64
                            / n_frames as f64
                    })
                    .collect();
                let m = per_chain.iter().sum::<f64>() / n_chains as f64;
                let var = per_chain.iter().map(|p| (p - m).powi(2)).sum::<f64>()
                    / (n_chains.max(2) - 1) as f64;
                BasinRow {
                    minimum: basins.minima[k],
                    exact: basins.probabilities[k],
                    sampled: m,
                    // one chain gives no spread between chains to estimate an error from
                    standard_error: if n_chains > 1 {
                        (var / n_chains as f64).sqrt()
                    } else {
                        f64::NAN
                    },
                }
            })
            .collect(),
    )
}

/// Prints the table; returns the largest deviation in standard errors.
pub fn print(rows: &[BasinRow]) -> f64 {
    println!(
        "{:>20} {:>10} {:>10} {:>9} {:>7}",
        "basin minimum", "exact", "sampled", "std.err", "z"
    );
    let mut worst: f64 = 0.0;
    for r in rows {
        let z = (r.sampled - r.exact) / r.standard_error;
        if z.is_finite() {
            worst = worst.max(z.abs());
        }
        println!(
            "{:>20} {:>10.5} {:>10.5} {:>9.5} {:>7.2}",
            format!("({:.3}, {:.3})", r.minimum[0], r.minimum[1]),
            r.exact,
            r.sampled,
            r.standard_error,
            z
        );
    }
    worst
}
