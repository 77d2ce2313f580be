//! Fully connected layers with the bias and activation fused into one pass over the output.

use std::ops::Range;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::Real;
use crate::gemm::{Layout, matmul};
use crate::params::{ParamLayout, init_uniform};

/// Elementwise nonlinearity after a linear map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// y = x.
    Identity,
    /// y = tanh x (the Boltzmann-generator paper's choice).
    #[default]
    Tanh,
    /// y = max(x, 0).
    Relu,
    /// y = x σ(x) (swish).
    Silu,
    /// y = ln(1 + eˣ).
    Softplus,
}

impl Activation {
    /// Parses the names used in configuration files.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "identity" | "linear" => Self::Identity,
            "tanh" => Self::Tanh,
            "relu" => Self::Relu,
            "silu" | "swish" => Self::Silu,
            "softplus" => Self::Softplus,
            _ => return None,
        })
    }

    /// Whether the backward pass needs the pre-activation (otherwise the output suffices).
    fn needs_preactivation(self) -> bool {
        matches!(self, Self::Silu)
    }

    /// Applies the activation in place; `pre` receives the pre-activation when needed.
    pub(crate) fn apply<T: Real>(self, y: &mut [T], pre: &mut Vec<T>) {
        if self.needs_preactivation() {
            pre.clear();
            pre.extend_from_slice(y);
        }
        match self {
            Self::Identity => {}
            Self::Tanh => T::tanh_slice(y),
            Self::Relu => y.iter_mut().for_each(|v| *v = v.max(T::zero())),
            Self::Silu => {
                // x σ(x) = x / (1 + e^{−x}); exp vectorised in one pass, then the quotient.
                y.iter_mut().for_each(|v| *v = -*v);
                T::exp_slice(y);
                for (v, &x) in y.iter_mut().zip(pre.iter()) {
                    *v = x / (T::one() + *v);
                }
            }
            Self::Softplus => {
                for v in y.iter_mut() {
                    *v = v.max(T::zero()) + (-v.abs()).exp().ln_1p();
                }
            }
        }
    }

    /// Turns dL/dy into dL/d(pre-activation) in place, given the output `y`.
    pub(crate) fn backward<T: Real>(self, dy: &mut [T], y: &[T], pre: &[T]) {
        match self {
            Self::Identity => {}
            Self::Tanh => {
                for (d, &v) in dy.iter_mut().zip(y) {
                    *d *= T::one() - v * v;
                }
            }
            Self::Relu => {
                for (d, &v) in dy.iter_mut().zip(y) {
                    if v <= T::zero() {
                        *d = T::zero();
                    }
                }
            }
            Self::Silu => {
                for (d, &x) in dy.iter_mut().zip(pre) {
                    let s = T::one() / (T::one() + (-x).exp());
                    *d *= s * (T::one() + x * (T::one() - s));
                }
            }
            Self::Softplus => {
                // dy/dx = σ(x) = 1 − e^{−y}.
                for (d, &v) in dy.iter_mut().zip(y) {
                    *d *= -(-v).exp_m1();
                }
            }
        }
    }
}

/// Adds the bias `b` `[width]` to every row of `y` `[rows, width]`.
pub(crate) fn add_bias<T: Real>(y: &mut [T], b: &[T]) {
    for row in y.chunks_exact_mut(b.len()) {
        for (v, &bb) in row.iter_mut().zip(b) {
            *v += bb;
        }
    }
}

/// Adds the column sums of `dy` `[rows, width]` to `g` `[width]` (a bias gradient).
pub(crate) fn add_row_sums<T: Real>(g: &mut [T], dy: &[T]) {
    for row in dy.chunks_exact(g.len()) {
        for (a, &d) in g.iter_mut().zip(row) {
            *a += d;
        }
    }
}

/// y = act(x W + b) with x `[rows, fan_in]`, W `[fan_in, fan_out]`, b `[fan_out]`, y
/// `[rows, fan_out]`, all row-major.
#[derive(Debug, Clone)]
pub struct Linear {
    fan_in: usize,
    fan_out: usize,
    weight: Range<usize>,
    bias: Range<usize>,
    activation: Activation,
}

impl Linear {
    /// Registers `{prefix}.weight` `[fan_in, fan_out]` and `{prefix}.bias` `[fan_out]`.
    pub fn new(
        layout: &mut ParamLayout,
        prefix: &str,
        fan_in: usize,
        fan_out: usize,
        activation: Activation,
    ) -> Self {
        let weight = layout.add(format!("{prefix}.weight"), &[fan_in, fan_out]);
        let bias = layout.add(format!("{prefix}.bias"), &[fan_out]);
        Self {
            fan_in,
            fan_out,
            weight,
            bias,
            activation,
        }
    }

    /// Input width.
    pub fn fan_in(&self) -> usize {
        self.fan_in
    }

    /// Output width.
    pub fn fan_out(&self) -> usize {
        self.fan_out
    }

    /// Where the weight `[fan_in, fan_out]` lives in the flat parameter vector.
    pub fn weight_range(&self) -> Range<usize> {
        self.weight.clone()
    }

    /// Where the bias `[fan_out]` lives in the flat parameter vector.
    pub fn bias_range(&self) -> Range<usize> {
        self.bias.clone()
    }

    /// The activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// PyTorch's default initialisation, U(±1/√fan_in), or all zeros when `zero` (the last
    /// layer of a coupling's conditioner, so that a new flow is the identity).
    pub fn init<T: Real>(&self, params: &mut [T], zero: bool, rng: &mut impl Rng) {
        let bound = if zero {
            0.0
        } else {
            1.0 / (self.fan_in as f64).sqrt()
        };
        init_uniform(&mut params[self.weight.clone()], bound, rng);
        init_uniform(&mut params[self.bias.clone()], bound, rng);
    }

    /// Forward pass: writes y `[rows, fan_out]` (resized), and the pre-activation into `pre`
    /// when the activation's derivative needs it.
    pub fn forward<T: Real>(
        &self,
        params: &[T],
        x: &[T],
        rows: usize,
        y: &mut Vec<T>,
        pre: &mut Vec<T>,
    ) {
        y.resize(rows * self.fan_out, T::zero());
        let w = &params[self.weight.clone()];
        let b = &params[self.bias.clone()];
        matmul(
            y,
            x,
            Layout::Plain,
            w,
            Layout::Plain,
            rows,
            self.fan_in,
            self.fan_out,
            false,
        );
        add_bias(y, b);
        self.activation.apply(y, pre);
    }

    /// Backward pass. `dy` holds dL/dy on entry and dL/d(pre-activation) on return; the weight
    /// and bias gradients are added to `grads`; `dx`, when given, receives dL/dx `[rows, fan_in]`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<T: Real>(
        &self,
        params: &[T],
        grads: &mut [T],
        x: &[T],
        y: &[T],
        pre: &[T],
        dy: &mut [T],
        dx: Option<&mut Vec<T>>,
        rows: usize,
    ) {
        self.activation.backward(dy, y, pre);
        add_row_sums(&mut grads[self.bias.clone()], dy);
        // dW += xᵀ dy: [fan_in, rows] · [rows, fan_out].
        matmul(
            &mut grads[self.weight.clone()],
            x,
            Layout::Transposed,
            dy,
            Layout::Plain,
            self.fan_in,
            rows,
            self.fan_out,
            true,
        );
        if let Some(dx) = dx {
            dx.resize(rows * self.fan_in, T::zero());
            // dx = dy Wᵀ: [rows, fan_out] · [fan_out, fan_in].
            matmul(
                dx,
                dy,
                Layout::Plain,
                &params[self.weight.clone()],
                Layout::Transposed,
                rows,
                self.fan_out,
                self.fan_in,
                false,
            );
        }
    }
}
