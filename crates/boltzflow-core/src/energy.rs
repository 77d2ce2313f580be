//! The [`Energy`] trait: potential energies and forces of batches of configurations.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use crate::{Error, Result};

/// A potential energy in the system's native unit (kT for the reduced toy systems, kJ/mol for
/// molecules), evaluated on batches.
///
/// # Shapes
/// `x` is `[n, dim]` (row-major; molecules interleave x, y, z per atom), energies are `[n]`,
/// forces are −∇E with the shape of `x`.
///
/// Implementors provide the `_into` methods, which write into caller-owned buffers so that
/// samplers allocate nothing per step; [`Energy::energy`] and [`Energy::energy_and_forces`]
/// are allocating conveniences. A configuration outside the support of a density (for example a
/// negative radius) has energy +∞; NaN is never a valid energy.
pub trait Energy: Send + Sync {
    /// Number of coordinates per configuration.
    fn dim(&self) -> usize;

    /// Writes the energies of the rows of `x` into `out` (`[n]`).
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` is not `[n, dim]` or `out` is not `[n]`.
    fn energy_into(&self, x: ArrayView2<f64>, out: ArrayViewMut1<f64>) -> Result<()>;

    /// Writes energies (`[n]`) and forces (`[n, dim]`, −∇E) of the rows of `x`.
    ///
    /// # Errors
    /// [`Error::Shape`] if the shapes disagree.
    fn energy_and_forces_into(
        &self,
        x: ArrayView2<f64>,
        energy: ArrayViewMut1<f64>,
        forces: ArrayViewMut2<f64>,
    ) -> Result<()>;

    /// Energies of the rows of `x`, `[n]`.
    ///
    /// # Errors
    /// As [`Energy::energy_into`].
    fn energy(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
        let mut e = Array1::zeros(x.nrows());
        self.energy_into(x, e.view_mut())?;
        Ok(e)
    }

    /// Energies `[n]` and forces `[n, dim]` of the rows of `x`.
    ///
    /// # Errors
    /// As [`Energy::energy_and_forces_into`].
    fn energy_and_forces(&self, x: ArrayView2<f64>) -> Result<(Array1<f64>, Array2<f64>)> {
        let mut e = Array1::zeros(x.nrows());
        let mut f = Array2::zeros(x.raw_dim());
        self.energy_and_forces_into(x, e.view_mut(), f.view_mut())?;
        Ok((e, f))
    }
}

/// Checks that a batch is `[n, dim]` and that the output buffers match it.
///
/// # Errors
/// [`Error::Shape`] naming the array that disagrees.
pub fn check_batch_shapes(
    dim: usize,
    x: &ArrayView2<f64>,
    energy_len: usize,
    forces: Option<(usize, usize)>,
) -> Result<()> {
    if x.ncols() != dim {
        return Err(Error::shape(
            "configurations",
            format!("[n, {dim}]"),
            format!("[{}, {}]", x.nrows(), x.ncols()),
        ));
    }
    if energy_len != x.nrows() {
        return Err(Error::shape(
            "energy buffer",
            format!("[{}]", x.nrows()),
            format!("[{energy_len}]"),
        ));
    }
    if let Some((r, c)) = forces
        && (r, c) != (x.nrows(), dim)
    {
        return Err(Error::shape(
            "force buffer",
            format!("[{}, {dim}]", x.nrows()),
            format!("[{r}, {c}]"),
        ));
    }
    Ok(())
}

/// Returns an error naming the first non-finite value of `x` (row and column).
///
/// # Errors
/// [`Error::NonFinite`] with `what` and the location `row r, column c`.
pub fn check_finite_rows(what: &str, x: ArrayView2<f64>) -> Result<()> {
    for (r, row) in x.outer_iter().enumerate() {
        if let Some((c, &v)) = row.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: what.to_string(),
                location: format!("row {r}, column {c}"),
                value: v,
            });
        }
    }
    Ok(())
}

/// Returns an error naming the first NaN of `values` (an energy may be +∞, never NaN).
///
/// # Errors
/// [`Error::NonFinite`] with `what` and the index.
pub fn check_no_nan(what: &str, values: ArrayView1<f64>) -> Result<()> {
    match values.iter().position(|v| v.is_nan()) {
        Some(i) => Err(Error::NonFinite {
            what: what.to_string(),
            location: format!("index {i}"),
            value: f64::NAN,
        }),
        None => Ok(()),
    }
}
