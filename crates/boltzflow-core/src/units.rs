//! Units and the thermodynamic state.
//!
//! Toy systems are in reduced units (energies in kT at temperature 1). Molecular systems use
//! OpenMM units (nm, ps, kJ/mol, K, amu); the reduced energy is u = E / (k_B T).

use crate::{Error, Result};

/// Boltzmann's constant in kJ/(mol K) (CODATA 2018 value × N_A, as OpenMM uses).
pub const KB_KJ_PER_MOL_K: f64 = 0.008_314_462_618_153_24;

/// The temperature at which a system is sampled, and the unit it is measured in.
///
/// `beta()` is 1/kT in inverse energy units of the system, so that the Boltzmann factor of an
/// energy `e` is `exp(-beta * e)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThermodynamicState {
    /// Reduced units: kT = `temperature` (dimensionless; 1 for the toy systems).
    Reduced {
        /// Reduced temperature kT.
        temperature: f64,
    },
    /// Molecular units: temperature in kelvin, energies in kJ/mol.
    Kelvin {
        /// Temperature in K.
        temperature: f64,
    },
}

impl ThermodynamicState {
    /// Reduced units at kT = `temperature`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] unless the temperature is finite and positive.
    pub fn reduced(temperature: f64) -> Result<Self> {
        check_temperature(temperature)?;
        Ok(Self::Reduced { temperature })
    }

    /// Molecular units at `temperature` kelvin.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] unless the temperature is finite and positive.
    pub fn kelvin(temperature: f64) -> Result<Self> {
        check_temperature(temperature)?;
        Ok(Self::Kelvin { temperature })
    }

    /// kT in the system's energy unit (dimensionless or kJ/mol).
    pub fn kt(&self) -> f64 {
        match *self {
            Self::Reduced { temperature } => temperature,
            Self::Kelvin { temperature } => KB_KJ_PER_MOL_K * temperature,
        }
    }

    /// β = 1/kT.
    pub fn beta(&self) -> f64 {
        1.0 / self.kt()
    }

    /// The temperature as given (reduced or kelvin).
    pub fn temperature(&self) -> f64 {
        match *self {
            Self::Reduced { temperature } | Self::Kelvin { temperature } => temperature,
        }
    }
}

impl Default for ThermodynamicState {
    fn default() -> Self {
        Self::Reduced { temperature: 1.0 }
    }
}

fn check_temperature(t: f64) -> Result<()> {
    if t.is_finite() && t > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            "temperature",
            format!("must be finite and positive, got {t}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kt_at_300_kelvin_is_2_494_kj_per_mol() {
        let s = ThermodynamicState::kelvin(300.0).unwrap();
        approx::assert_relative_eq!(s.kt(), 2.494_338_785_445_972, max_relative = 1e-14);
        approx::assert_relative_eq!(s.beta() * s.kt(), 1.0);
    }

    #[test]
    fn rejects_non_positive_temperatures() {
        assert!(ThermodynamicState::reduced(0.0).is_err());
        assert!(ThermodynamicState::kelvin(f64::NAN).is_err());
        assert!(ThermodynamicState::reduced(-1.0).is_err());
    }
}
