//! Energy + forces of alanine dipeptide in batches, and BAOAB steps per second, for the side-by-side
//! comparison with OpenMM (`bench/peers/openmm_ala2.py`).
//!
//! `cargo run --release -p boltzflow-systems --example ala2_bench [-- N_BATCH [obc]]`
//! The batch is the 50 reference configurations tiled to N_BATCH rows (default 1000), in
//! vacuum (`data/ala2`) or, with `obc`, in OBC implicit solvent (`data/ala2_obc`).

use std::path::Path;
use std::time::Instant;

use boltzflow_core::Energy;
use boltzflow_systems::ForceField;
use ndarray::Array2;
use ndarray_npy::ReadNpyExt;

fn best_of<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(1000, |s| s.parse().expect("batch size"));
    let obc = std::env::args().nth(2).as_deref() == Some("obc");
    let (set, xml) = if obc {
        ("ala2_obc", "ala2_obc_system.xml")
    } else {
        ("ala2", "ala2_system.xml")
    };
    let data = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(set);
    let ff = ForceField::from_file(&data.join(xml)).expect("ala2 XML");
    let x50 = Array2::<f64>::read_npy(std::fs::File::open(data.join("positions_nm.npy")).unwrap())
        .expect("positions");
    let x = Array2::from_shape_fn((n, 66), |(i, c)| x50[[i % 50, c]]);
    let mut e = ndarray::Array1::zeros(n);
    let mut f = Array2::zeros((n, 66));
    let threads = rayon::current_num_threads();
    let t = best_of(20, || {
        ff.energy_and_forces_into(x.view(), e.view_mut(), f.view_mut())
            .unwrap()
    });
    println!(
        "{set}: energy+forces, batch {n}, {threads} threads: {:.3} ms per batch, {:.3} µs per configuration",
        t * 1e3,
        t / n as f64 * 1e6
    );
    let one = x.slice(ndarray::s![0..1, ..]).to_owned();
    let mut e1 = ndarray::Array1::zeros(1);
    let mut f1 = Array2::zeros((1, 66));
    let t = best_of(5, || {
        for _ in 0..10_000 {
            ff.energy_and_forces_into(one.view(), e1.view_mut(), f1.view_mut())
                .unwrap();
        }
    });
    println!(
        "energy+forces, one configuration per call: {:.3} µs per call",
        t / 10_000.0 * 1e6
    );
}
