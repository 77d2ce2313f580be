//! Energies plus a bias that depends on each configuration alone (umbrella restraints,
//! metadynamics, the flattening bias of AIS in `boltzflow_learn::profile_bias`): the shared row
//! loop of their [`Energy`] implementations.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use boltzflow_core::{Energy, Result};

/// A bias b(x) evaluated one configuration at a time.
pub trait RowBias {
    /// b(x); with `forces`, also adds −∂b/∂x to them.
    fn row_bias(&self, x: ArrayView1<f64>, forces: Option<&mut [f64]>) -> f64;
}

/// Energies of `inner` plus the bias, into `out` `[n]`.
pub fn energy_into(
    inner: &dyn Energy,
    bias: &impl RowBias,
    x: ArrayView2<f64>,
    mut out: ArrayViewMut1<f64>,
) -> Result<()> {
    inner.energy_into(x, out.view_mut())?;
    for (e, row) in out.iter_mut().zip(x.rows()) {
        *e += bias.row_bias(row, None);
    }
    Ok(())
}

/// Energies `[n]` and forces `[n, dim]` of `inner` plus the bias.
pub fn energy_and_forces_into(
    inner: &dyn Energy,
    bias: &impl RowBias,
    x: ArrayView2<f64>,
    mut energy: ArrayViewMut1<f64>,
    mut forces: ArrayViewMut2<f64>,
) -> Result<()> {
    inner.energy_and_forces_into(x, energy.view_mut(), forces.view_mut())?;
    let mut g = vec![0.0; x.ncols()];
    for ((e, row), mut f) in energy.iter_mut().zip(x.rows()).zip(forces.rows_mut()) {
        g.fill(0.0);
        *e += bias.row_bias(row, Some(&mut g));
        f.iter_mut().zip(&g).for_each(|(fi, gi)| *fi += gi);
    }
    Ok(())
}

/// Implements [`Energy`] for a type with a field `inner: &dyn Energy` that implements
/// [`RowBias`]: the inner energy plus the bias, forces included (through [`energy_into`] and
/// [`energy_and_forces_into`]).
#[macro_export]
macro_rules! impl_energy_with_row_bias {
    ($t:ty) => {
        impl $crate::bias::reexport::Energy for $t {
            fn dim(&self) -> usize {
                self.inner.dim()
            }

            fn energy_into(
                &self,
                x: $crate::bias::reexport::ArrayView2<f64>,
                out: $crate::bias::reexport::ArrayViewMut1<f64>,
            ) -> $crate::bias::reexport::Result<()> {
                $crate::bias::energy_into(self.inner, self, x, out)
            }

            fn energy_and_forces_into(
                &self,
                x: $crate::bias::reexport::ArrayView2<f64>,
                energy: $crate::bias::reexport::ArrayViewMut1<f64>,
                forces: $crate::bias::reexport::ArrayViewMut2<f64>,
            ) -> $crate::bias::reexport::Result<()> {
                $crate::bias::energy_and_forces_into(self.inner, self, x, energy, forces)
            }
        }
    };
}

/// What [`impl_energy_with_row_bias`] names, for crates that do not depend on them directly.
#[doc(hidden)]
pub mod reexport {
    pub use boltzflow_core::{Energy, Result};
    pub use ndarray::{ArrayView2, ArrayViewMut1, ArrayViewMut2};
}
