//! The basin table of a simulation of a 2-D system (sampled populations next to quadrature).

use boltzflow_learn::run::BasinRow;

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
