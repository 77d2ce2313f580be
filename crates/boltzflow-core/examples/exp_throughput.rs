//! Throughput of the vectorised `exp` against the system library: the per-core limit for
//! kernels dominated by exponentials (`cargo run --release --example exp_throughput`).
use std::time::Instant;
fn main() {
    let n = 4096;
    let reps = 20_000;
    let base: Vec<f64> = (0..n).map(|i| -5.0 + 10.0 * i as f64 / n as f64).collect();
    let mut v = base.clone();
    let t = Instant::now();
    for _ in 0..reps {
        v.copy_from_slice(&base);
        boltzflow_core::math::exp_slice(&mut v);
        std::hint::black_box(&mut v);
    }
    let ns = t.elapsed().as_nanos() as f64 / (n * reps) as f64;
    let t = Instant::now();
    for _ in 0..reps / 10 {
        v.copy_from_slice(&base);
        v.iter_mut().for_each(|x| *x = x.exp());
        std::hint::black_box(&mut v);
    }
    let ns_libm = t.elapsed().as_nanos() as f64 / (n * reps / 10) as f64;
    println!(
        "vectorised exp: {ns:.3} ns/value ({:.0} M/s per core); system library exp: {ns_libm:.3} ns/value",
        1e3 / ns
    );
}
