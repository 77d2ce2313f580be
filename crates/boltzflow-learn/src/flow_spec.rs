//! The flow architecture as configured in a run's TOML (`[flow]`), and its construction.

use boltzflow_core::{Error, Result};
use boltzflow_nn::flows::{ActNorm, Coupling, SplineParams, Transformer, Whiten};
use boltzflow_nn::{Activation, ParamLayout, Real, SequentialFlow};
use serde::{Deserialize, Serialize};

/// Which coupling transformer the flow uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FlowKind {
    /// Additive couplings (Dinh et al. 2015): volume preserving.
    Nice,
    /// Affine couplings (Dinh et al. 2017), the Boltzmann-generator paper's flow.
    #[default]
    Realnvp,
    /// Rational-quadratic spline couplings (Durkan et al. 2019).
    Spline,
}

/// `[flow]`: a stack of coupling layers that alternately transform the second and the first
/// half of the coordinates, each with an MLP conditioner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowSpec {
    /// Coupling transformer.
    #[serde(rename = "type")]
    pub kind: FlowKind,
    /// Number of coupling layers (each transforms half of the coordinates).
    pub couplings: usize,
    /// Hidden widths of each conditioner MLP.
    pub hidden: Vec<usize>,
    /// Hidden activation of the conditioners.
    pub activation: Activation,
    /// An ActNorm layer before every coupling (initialised from the first data batch).
    pub actnorm: bool,
    /// A frozen whitening layer at the configuration end (x = μ + V Λ^{1/2} z from the training
    /// data's covariance; needs `[data]`).
    pub whiten: bool,
    /// RealNVP: bound on each layer's log-scale, s = c·tanh(ŝ/c).
    pub scale_bound: f64,
    /// Spline: number of bins.
    pub bins: usize,
    /// Spline: the spline acts on [−bound, bound], the identity outside.
    pub bound: f64,
}

impl Default for FlowSpec {
    fn default() -> Self {
        Self {
            kind: FlowKind::Realnvp,
            couplings: 8,
            hidden: vec![64, 64],
            activation: Activation::Tanh,
            actnorm: false,
            whiten: false,
            scale_bound: 2.0,
            bins: 8,
            bound: 5.0,
        }
    }
}

impl FlowSpec {
    /// Checks the values a user can get wrong.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the `flow.*` field.
    pub fn validate(&self, dim: usize) -> Result<()> {
        if dim < 2 {
            return Err(Error::invalid(
                "system",
                "a coupling flow needs at least 2 coordinates",
            ));
        }
        if self.couplings == 0 {
            return Err(Error::invalid("flow.couplings", "must be at least 1"));
        }
        if self.hidden.contains(&0) {
            return Err(Error::invalid("flow.hidden", "widths must be positive"));
        }
        if !(self.scale_bound > 0.0 && self.scale_bound.is_finite()) {
            return Err(Error::invalid(
                "flow.scale_bound",
                format!("must be positive, got {}", self.scale_bound),
            ));
        }
        if self.kind == FlowKind::Spline {
            if self.bins < 2 || self.bins > boltzflow_nn::flows::MAX_BINS {
                return Err(Error::invalid(
                    "flow.bins",
                    format!(
                        "need 2 to {} bins, got {}",
                        boltzflow_nn::flows::MAX_BINS,
                        self.bins
                    ),
                ));
            }
            if !(self.bound > 0.0 && self.bound.is_finite()) {
                return Err(Error::invalid(
                    "flow.bound",
                    format!("must be positive, got {}", self.bound),
                ));
            }
        }
        Ok(())
    }

    /// Builds the flow for rows of width `dim`, registering its parameters in a new layout.
    ///
    /// # Errors
    /// As [`FlowSpec::validate`].
    pub fn build<T: Real>(&self, dim: usize) -> Result<(SequentialFlow<T>, ParamLayout)> {
        self.validate(dim)?;
        let transformer = match self.kind {
            FlowKind::Nice => Transformer::Additive,
            FlowKind::Realnvp => Transformer::Affine {
                scale_bound: self.scale_bound,
            },
            FlowKind::Spline => Transformer::Spline(SplineParams::new(self.bins, self.bound)),
        };
        let first: Vec<usize> = (0..dim / 2).collect();
        let second: Vec<usize> = (dim / 2..dim).collect();
        let mut layout = ParamLayout::new();
        let mut flow = SequentialFlow::new(dim);
        for i in 0..self.couplings {
            if self.actnorm {
                flow.push(ActNorm::new(&mut layout, &format!("flow.{i}.actnorm"), dim));
            }
            let trans = if i % 2 == 0 { &second } else { &first };
            flow.push(Coupling::new(
                &mut layout,
                &format!("flow.{i}.coupling"),
                dim,
                trans,
                &self.hidden,
                self.activation,
                transformer,
            ));
        }
        if self.whiten {
            flow.push(Whiten::new(&mut layout, "flow.whiten", dim));
        }
        Ok((flow, layout))
    }
}
