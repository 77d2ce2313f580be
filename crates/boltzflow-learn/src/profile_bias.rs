//! A bias along a reaction coordinate that flattens the target's free-energy profile, for
//! annealed importance sampling towards the biased target (`[evaluate] ais_flatten`).
//!
//! The importance-sampling estimate of a profile F(s) needs samples in every bin it reports.
//! AIS carries its samples close to the target p ∝ e^{−u}, so a bin that p populates with
//! probability 10⁻³ gets ~one of 1000 samples, and often none. AIS towards
//!
//! ```text
//! p̃(x) ∝ e^{−u(x) + b(s(x))},   b(s) = min(F̂(s) − min F̂, b_max),
//! ```
//!
//! with F̂ a rough estimate of the profile (the generator's plain reweighted one), spreads the
//! samples evenly over the region where F̂ < b_max. The weights for p are the AIS weights for p̃
//! times e^{−b(s(x))}, so every estimate stays unbiased whatever F̂ is: the bias only moves
//! where the samples land (as an umbrella or metadynamics bias does for MCMC).
//!
//! b is linear between the bin centres and constant beyond the first and last ones, so its
//! force is bounded and vanishes outside the profile range.

use boltzflow_core::{Coordinate, Energy, Error, Result};
use boltzflow_mcmc::bias::RowBias;
use ndarray::ArrayView1;

/// b(s) tabulated at bin centres and interpolated linearly.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileBias {
    coordinate: Coordinate,
    /// Increasing bin centres (at least 2).
    centres: Vec<f64>,
    /// b at the centres (kT, in [0, b_max]).
    values: Vec<f64>,
}

impl ProfileBias {
    /// The bias that flattens the profile `free_energy` (kT, at `centres`) up to `cap` kT above
    /// its minimum. Bins without an estimate (non-finite F̂) get the cap.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming `evaluate.ais_flatten` for a cap that is not positive
    /// and finite, fewer than 2 bins, centres that do not increase, or a profile with no
    /// finite value.
    pub fn flattening(
        coordinate: Coordinate,
        centres: &[f64],
        free_energy: &[f64],
        cap: f64,
    ) -> Result<Self> {
        let bad = |why: String| Err(Error::invalid("evaluate.ais_flatten", why));
        if !(cap > 0.0 && cap.is_finite()) {
            return bad(format!("must be a positive number of kT, got {cap}"));
        }
        if centres.len() < 2 || centres.len() != free_energy.len() {
            return bad(format!(
                "needs a profile of at least 2 bins, got {} centres and {} values",
                centres.len(),
                free_energy.len()
            ));
        }
        if centres
            .windows(2)
            .any(|c| c[1].partial_cmp(&c[0]) != Some(std::cmp::Ordering::Greater))
        {
            return bad("the profile's bin centres must increase".into());
        }
        let min = free_energy
            .iter()
            .copied()
            .filter(|f| f.is_finite())
            .fold(f64::INFINITY, f64::min);
        if !min.is_finite() {
            return bad(
                "the generator's reweighted profile has no finite bin to flatten: no sample fell into [profile_range]".into(),
            );
        }
        let values = free_energy
            .iter()
            .map(|&f| {
                if f.is_finite() {
                    (f - min).min(cap)
                } else {
                    cap
                }
            })
            .collect();
        Ok(Self {
            coordinate,
            centres: centres.to_vec(),
            values,
        })
    }

    /// b(s) and db/ds.
    pub fn at(&self, s: f64) -> (f64, f64) {
        let (c, v) = (&self.centres, &self.values);
        let last = c.len() - 1;
        if s.is_nan() {
            return (f64::NAN, 0.0);
        }
        if s <= c[0] {
            return (v[0], 0.0);
        }
        if s >= c[last] {
            return (v[last], 0.0);
        }
        // The cell [c_k, c_{k+1}] holding s.
        let k = c.partition_point(|&ck| ck <= s) - 1;
        let slope = (v[k + 1] - v[k]) / (c[k + 1] - c[k]);
        (v[k] + slope * (s - c[k]), slope)
    }

    /// b(s(x)) of one configuration.
    pub fn value(&self, x: ArrayView1<f64>) -> f64 {
        self.at(self.coordinate.value(x)).0
    }

    /// The biased energy u(x) − b(s(x)) of `inner` (forces included).
    pub fn biased<'a>(&'a self, inner: &'a dyn Energy) -> FlattenedEnergy<'a> {
        FlattenedEnergy { inner, bias: self }
    }
}

/// u(x) − b(s(x)): the target of flattened AIS.
pub struct FlattenedEnergy<'a> {
    inner: &'a dyn Energy,
    bias: &'a ProfileBias,
}

impl RowBias for FlattenedEnergy<'_> {
    fn row_bias(&self, x: ArrayView1<f64>, forces: Option<&mut [f64]>) -> f64 {
        let (b, db) = self.bias.at(self.bias.coordinate.value(x));
        if let Some(f) = forces
            && db != 0.0
        {
            // The bias term is −b: its force is +(db/ds) ∇s.
            self.bias.coordinate.add_gradient(x, db, f);
        }
        -b
    }
}

boltzflow_mcmc::impl_energy_with_row_bias!(FlattenedEnergy<'_>);

#[cfg(test)]
mod tests {
    use super::*;
    use boltzflow_systems::Gaussian2d;
    use ndarray::{Array1, Array2};

    fn bias() -> ProfileBias {
        ProfileBias::flattening(
            Coordinate::Projection(vec![0.6, 0.8]),
            &[-1.0, 0.0, 1.0, 2.0],
            &[5.0, 1.0, f64::NAN, 30.0],
            8.0,
        )
        .unwrap()
    }

    #[test]
    fn the_bias_is_the_profile_above_its_minimum_capped_and_flat_outside() {
        let b = bias();
        assert_eq!(b.values, vec![4.0, 0.0, 8.0, 8.0]);
        assert_eq!(b.at(-3.0), (4.0, 0.0));
        assert_eq!(b.at(5.0), (8.0, 0.0));
        let (v, d) = b.at(-0.25);
        assert!((v - 1.0).abs() < 1e-12 && (d + 4.0).abs() < 1e-12);
        let (v, d) = b.at(0.5);
        assert!((v - 4.0).abs() < 1e-12 && (d - 8.0).abs() < 1e-12);
    }

    #[test]
    fn the_forces_of_the_flattened_energy_are_minus_its_gradient() {
        let b = bias();
        let e = b.biased(&Gaussian2d);
        let x = Array2::from_shape_vec((3, 2), vec![0.3, -0.7, 0.2, 0.4, -1.5, 0.9]).unwrap();
        let (u, f) = e.energy_and_forces(x.view()).unwrap();
        assert_eq!(u, e.energy(x.view()).unwrap());
        let h = 1e-6;
        for i in 0..3 {
            for k in 0..2 {
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[[i, k]] += h;
                xm[[i, k]] -= h;
                let fd =
                    (e.energy(xp.view()).unwrap()[i] - e.energy(xm.view()).unwrap()[i]) / (2.0 * h);
                assert!((f[[i, k]] + fd).abs() < 1e-6, "row {i} coord {k}");
            }
        }
        let plain: Array1<f64> = Gaussian2d.energy(x.view()).unwrap();
        for i in 0..3 {
            assert!((plain[i] - u[i] - b.value(x.row(i))).abs() < 1e-12);
        }
    }

    #[test]
    fn bad_settings_name_the_key() {
        let c = Coordinate::Projection(vec![1.0, 0.0]);
        for (centres, f, cap) in [
            (vec![0.0, 1.0], vec![0.0, 1.0], 0.0),
            (vec![0.0], vec![0.0], 5.0),
            (vec![1.0, 0.0], vec![0.0, 1.0], 5.0),
            (vec![0.0, 1.0], vec![f64::NAN, f64::INFINITY], 5.0),
        ] {
            let e = ProfileBias::flattening(c.clone(), &centres, &f, cap).unwrap_err();
            assert!(e.to_string().contains("evaluate.ais_flatten"), "{e}");
        }
    }
}
