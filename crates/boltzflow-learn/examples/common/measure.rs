//! The timing loop the throughput examples share.

use std::time::Instant;

/// Calls `f` once to warm up (workspaces are allocated on first use), then as often as fits in
/// `seconds`; returns calls per second.
pub fn measure(seconds: f64, mut f: impl FnMut()) -> f64 {
    f();
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed().as_secs_f64() < seconds {
        f();
        n += 1;
    }
    n as f64 / t0.elapsed().as_secs_f64()
}
