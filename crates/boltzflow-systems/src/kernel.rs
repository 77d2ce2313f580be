//! Batched, parallel evaluation from per-row kernels.
//!
//! Each system writes two functions over a contiguous block of rows; [`impl_energy_via_rows!`]
//! turns them into an [`boltzflow_core::Energy`] that checks shapes, copies non-contiguous input
//! once, and splits large batches into blocks evaluated in parallel with rayon (the result does
//! not depend on the thread count: blocks are independent).

/// Rows per parallel task: large enough to amortise scheduling, small enough to balance 2–64 cores.
pub(crate) const ROWS_PER_TASK: usize = 512;

/// Per-row energy kernels over contiguous row-major blocks.
pub(crate) trait RowKernel: Send + Sync {
    /// Coordinates per row.
    fn kernel_dim(&self) -> usize;
    /// Energies of the rows of `x` (`x.len() = e.len() * dim`).
    fn energy_rows(&self, x: &[f64], e: &mut [f64]);
    /// Energies and forces (−∇E) of the rows of `x`.
    fn energy_forces_rows(&self, x: &[f64], e: &mut [f64], f: &mut [f64]);
}

pub(crate) fn energy_into<K: RowKernel>(
    k: &K,
    x: ndarray::ArrayView2<f64>,
    mut out: ndarray::ArrayViewMut1<f64>,
) -> boltzflow_core::Result<()> {
    use rayon::prelude::*;
    let dim = k.kernel_dim();
    boltzflow_core::energy::check_batch_shapes(dim, &x, out.len(), None)?;
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let run = |e: &mut [f64]| {
        if e.len() <= ROWS_PER_TASK {
            k.energy_rows(xs, e);
        } else {
            xs.par_chunks(ROWS_PER_TASK * dim)
                .zip(e.par_chunks_mut(ROWS_PER_TASK))
                .for_each(|(xc, ec)| k.energy_rows(xc, ec));
        }
    };
    match out.as_slice_mut() {
        Some(e) => run(e),
        None => {
            let mut e = vec![0.0; out.len()];
            run(&mut e);
            out.iter_mut().zip(e).for_each(|(o, v)| *o = v);
        }
    }
    Ok(())
}

pub(crate) fn energy_and_forces_into<K: RowKernel>(
    k: &K,
    x: ndarray::ArrayView2<f64>,
    mut energy: ndarray::ArrayViewMut1<f64>,
    mut forces: ndarray::ArrayViewMut2<f64>,
) -> boltzflow_core::Result<()> {
    use rayon::prelude::*;
    let dim = k.kernel_dim();
    boltzflow_core::energy::check_batch_shapes(
        dim,
        &x,
        energy.len(),
        Some((forces.nrows(), forces.ncols())),
    )?;
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let n = energy.len();
    let run = |e: &mut [f64], f: &mut [f64]| {
        if n <= ROWS_PER_TASK {
            k.energy_forces_rows(xs, e, f);
        } else {
            xs.par_chunks(ROWS_PER_TASK * dim)
                .zip(e.par_chunks_mut(ROWS_PER_TASK))
                .zip(f.par_chunks_mut(ROWS_PER_TASK * dim))
                .for_each(|((xc, ec), fc)| k.energy_forces_rows(xc, ec, fc));
        }
    };
    let forces_contiguous = forces.is_standard_layout();
    match (energy.as_slice_mut(), forces_contiguous) {
        (Some(e), true) => run(e, forces.as_slice_mut().expect("standard layout")),
        _ => {
            let mut e = vec![0.0; n];
            let mut f = vec![0.0; n * dim];
            run(&mut e, &mut f);
            energy.assign(&ndarray::ArrayView1::from(&e));
            forces.assign(&ndarray::ArrayView2::from_shape((n, dim), &f).expect("n * dim values"));
        }
    }
    Ok(())
}

/// Implements [`boltzflow_core::Energy`] for a type that implements [`RowKernel`].
macro_rules! impl_energy_via_rows {
    ($t:ty) => {
        impl boltzflow_core::Energy for $t {
            fn dim(&self) -> usize {
                $crate::kernel::RowKernel::kernel_dim(self)
            }
            fn energy_into(
                &self,
                x: ndarray::ArrayView2<f64>,
                out: ndarray::ArrayViewMut1<f64>,
            ) -> boltzflow_core::Result<()> {
                $crate::kernel::energy_into(self, x, out)
            }
            fn energy_and_forces_into(
                &self,
                x: ndarray::ArrayView2<f64>,
                energy: ndarray::ArrayViewMut1<f64>,
                forces: ndarray::ArrayViewMut2<f64>,
            ) -> boltzflow_core::Result<()> {
                $crate::kernel::energy_and_forces_into(self, x, energy, forces)
            }
        }
    };
}
pub(crate) use impl_energy_via_rows;
