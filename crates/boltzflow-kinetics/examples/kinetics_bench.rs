//! boltzflow side of the kinetics benchmark against deeptime (`bench/peers/kinetics_deeptime.py`
//! writes the inputs and times deeptime on the same files):
//!
//! ```text
//! python3 bench/peers/kinetics_deeptime.py /tmp/bench_kin
//! cargo run --release -p boltzflow-kinetics --example kinetics_bench -- /tmp/bench_kin
//! ```
//! Each task reports the best of three wall-clock runs, as the peer script does.

use std::path::PathBuf;
use std::time::Instant;

use boltzflow_kinetics::{KMeans, MaximumLikelihoodMsm, Tica, count_matrix};

fn best(mut f: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "/tmp/bench_kin".into()),
    );
    let feat = boltzflow_io::read_npy_2d(&dir.join("feat.npy"))?;
    let xy = boltzflow_io::read_npy_2d(&dir.join("xy.npy"))?;
    let dtraj = boltzflow_io::read_npy_dtraj(&dir.join("dtraj.npy"))?;
    println!(
        "boltzflow-kinetics, {} rayon threads",
        rayon::current_num_threads()
    );
    let t = best(|| {
        Tica::new(10).unwrap().fit(&[feat.view()]).unwrap();
    });
    println!("tica_1e6x50 {t:.4} s");
    let t = best(|| {
        KMeans::new(100)
            .unwrap()
            .max_iter(10)
            .tolerance(0.0)
            .seed(1)
            .fit(xy.view())
            .unwrap();
    });
    println!("kmeans_1e6x2_k100_10iter {t:.4} s");
    let t = best(|| {
        MaximumLikelihoodMsm::new(true)
            .convergence(1e-8, 1_000_000)
            .unwrap()
            .fit(&[&dtraj], 10, None)
            .unwrap();
    });
    println!("msm_1e6_1000states {t:.4} s");
    let t = best(|| {
        count_matrix(&[&dtraj], 10, None).unwrap();
    });
    println!("counting_1e6 {t:.4} s");
    Ok(())
}
