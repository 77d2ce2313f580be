//! Reaction coordinates for free-energy profiles, state definitions and the RC loss, written
//! in configuration files as strings: `projection:0.7,-0.7` (s = w·x) or `distance:0,1`
//! (distance between particles 0 and 1; the particle dimension is 2 for the 2D particle
//! systems and 3 for molecules, given by `particle_dim`).

use crate::{Error, Result};
use ndarray::{Array2, ArrayView1};

/// A scalar function of a configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum Coordinate {
    /// s = w · x.
    Projection(Vec<f64>),
    /// s = ‖x_i − x_j‖ for particles i and j of dimension `particle_dim`.
    Distance {
        /// First particle.
        i: usize,
        /// Second particle.
        j: usize,
        /// Coordinates per particle.
        particle_dim: usize,
    },
}

impl Coordinate {
    /// Parses `projection:w1,w2,…` or `distance:i,j` for a system of `dim` coordinates with
    /// `particle_dim` coordinates per particle.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming `field` and saying what is accepted.
    pub fn parse(text: &str, field: &str, dim: usize, particle_dim: usize) -> Result<Self> {
        let bad = |why: String| {
            Error::invalid(
                field,
                format!(
                    "`{text}`: {why}; write `projection:w1,w2,…` (one weight per coordinate) or `distance:i,j` (particle indices)"
                ),
            )
        };
        let (kind, rest) = text
            .split_once(':')
            .ok_or_else(|| bad("no `kind:` prefix".into()))?;
        let nums: Vec<&str> = rest.split(',').map(str::trim).collect();
        match kind.trim() {
            "projection" => {
                let w = nums
                    .iter()
                    .map(|s| {
                        s.parse::<f64>()
                            .map_err(|_| bad(format!("`{s}` is not a number")))
                    })
                    .collect::<Result<Vec<_>>>()?;
                if w.len() != dim {
                    return Err(bad(format!(
                        "{} weights for a system of {dim} coordinates",
                        w.len()
                    )));
                }
                Ok(Self::Projection(w))
            }
            "distance" => {
                let idx = nums
                    .iter()
                    .map(|s| {
                        s.parse::<usize>()
                            .map_err(|_| bad(format!("`{s}` is not a particle index")))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let n_particles = dim / particle_dim.max(1);
                match idx[..] {
                    [i, j] if i != j && i < n_particles && j < n_particles => {
                        Ok(Self::Distance { i, j, particle_dim })
                    }
                    _ => Err(bad(format!(
                        "need two different particle indices below {n_particles}"
                    ))),
                }
            }
            other => Err(bad(format!("unknown kind `{other}`"))),
        }
    }

    /// The coordinate of one configuration.
    pub fn value(&self, x: ArrayView1<f64>) -> f64 {
        match self {
            Self::Projection(w) => w.iter().zip(x.iter()).map(|(a, b)| a * b).sum(),
            Self::Distance {
                i,
                j,
                particle_dim: p,
            } => (0..*p)
                .map(|k| (x[i * p + k] - x[j * p + k]).powi(2))
                .sum::<f64>()
                .sqrt(),
        }
    }

    /// Gradient ∂s/∂x of one configuration, written into `out` (`[dim]`).
    pub fn gradient(&self, x: ArrayView1<f64>, out: &mut [f64]) {
        out.fill(0.0);
        self.add_gradient(x, 1.0, out);
    }

    /// Adds `scale`·∂s/∂x of one configuration to `out` (`[dim]`), allocating nothing (biases
    /// add their forces this way).
    pub fn add_gradient(&self, x: ArrayView1<f64>, scale: f64, out: &mut [f64]) {
        match self {
            Self::Projection(w) => out.iter_mut().zip(w).for_each(|(o, w)| *o += scale * w),
            Self::Distance {
                i,
                j,
                particle_dim: p,
            } => {
                let d = self.value(x).max(1e-12);
                for k in 0..*p {
                    let g = scale * (x[i * p + k] - x[j * p + k]) / d;
                    out[i * p + k] += g;
                    out[j * p + k] -= g;
                }
            }
        }
    }

    /// The coordinate of every row.
    pub fn values(&self, x: &Array2<f64>) -> Vec<f64> {
        x.rows().into_iter().map(|r| self.value(r)).collect()
    }

    /// The direction vector when this is a 2D projection (for quadrature references).
    pub fn projection_2d(&self) -> Option<[f64; 2]> {
        match self {
            Self::Projection(w) if w.len() == 2 => Some([w[0], w[1]]),
            _ => None,
        }
    }
}
