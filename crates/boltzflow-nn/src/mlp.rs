//! Multilayer perceptrons: the conditioners of coupling layers and the networks of VAEs.

use rand::Rng;

use crate::Real;
use crate::linear::{Activation, Linear};
use crate::params::ParamLayout;

/// A stack of [`Linear`] layers: widths `[in, h₁, …, out]`, the hidden activation after every
/// layer but the last, and `output_activation` after the last.
#[derive(Debug, Clone)]
pub struct Mlp {
    layers: Vec<Linear>,
}

/// Per-batch buffers of an [`Mlp`]: allocated on first use and reused while the batch size does
/// not grow, so a training step allocates nothing.
#[derive(Debug, Clone, Default)]
pub struct MlpCache<T> {
    outputs: Vec<Vec<T>>,
    pres: Vec<Vec<T>>,
    grad_a: Vec<T>,
    grad_b: Vec<T>,
    rows: usize,
}

impl<T> MlpCache<T> {
    /// The output of the last forward pass, `[rows, fan_out]`.
    pub fn output(&self) -> &[T] {
        self.outputs.last().map_or(&[], Vec::as_slice)
    }
}

impl Mlp {
    /// Registers the layers as `{prefix}.{i}.weight` / `.bias`.
    ///
    /// # Panics
    /// If fewer than two widths are given.
    pub fn new(
        layout: &mut ParamLayout,
        prefix: &str,
        widths: &[usize],
        activation: Activation,
        output_activation: Activation,
    ) -> Self {
        assert!(
            widths.len() >= 2,
            "an MLP needs an input and an output width"
        );
        let n = widths.len() - 1;
        let layers = (0..n)
            .map(|i| {
                let act = if i + 1 == n {
                    output_activation
                } else {
                    activation
                };
                Linear::new(
                    layout,
                    &format!("{prefix}.{i}"),
                    widths[i],
                    widths[i + 1],
                    act,
                )
            })
            .collect();
        Self { layers }
    }

    /// The layers, first to last.
    pub fn layers(&self) -> &[Linear] {
        &self.layers
    }

    /// Input width.
    pub fn fan_in(&self) -> usize {
        self.layers[0].fan_in()
    }

    /// Output width.
    pub fn fan_out(&self) -> usize {
        self.layers[self.layers.len() - 1].fan_out()
    }

    /// Multiply–adds per row of a forward pass (for FLOP counts).
    pub fn macs_per_row(&self) -> usize {
        self.layers.iter().map(|l| l.fan_in() * l.fan_out()).sum()
    }

    /// Initialises every layer (PyTorch default); the last one is all zeros when `zero_last`.
    pub fn init<T: Real>(&self, params: &mut [T], zero_last: bool, rng: &mut impl Rng) {
        let n = self.layers.len();
        for (i, l) in self.layers.iter().enumerate() {
            l.init(params, zero_last && i + 1 == n, rng);
        }
    }

    /// Forward pass of x `[rows, fan_in]`; returns the output `[rows, fan_out]`, kept in the cache.
    pub fn forward<'c, T: Real>(
        &self,
        params: &[T],
        x: &[T],
        rows: usize,
        cache: &'c mut MlpCache<T>,
    ) -> &'c [T] {
        let n = self.layers.len();
        cache.outputs.resize_with(n, Vec::new);
        cache.pres.resize_with(n, Vec::new);
        cache.rows = rows;
        for i in 0..n {
            let (before, after) = cache.outputs.split_at_mut(i);
            let input: &[T] = if i == 0 { x } else { &before[i - 1] };
            self.layers[i].forward(params, input, rows, &mut after[0], &mut cache.pres[i]);
        }
        &cache.outputs[n - 1]
    }

    /// Backward pass after [`Mlp::forward`] on the same `x`: `dout` is dL/d(output)
    /// `[rows, fan_out]` (overwritten), parameter gradients are added to `grads`, and dL/dx is
    /// written to `dx` when given.
    pub fn backward<T: Real>(
        &self,
        params: &[T],
        grads: &mut [T],
        x: &[T],
        cache: &mut MlpCache<T>,
        dout: &mut [T],
        dx: Option<&mut Vec<T>>,
    ) {
        let rows = cache.rows;
        let n = self.layers.len();
        let mut grad_a = std::mem::take(&mut cache.grad_a);
        let mut grad_b = std::mem::take(&mut cache.grad_b);
        let mut dx = dx;
        for i in (0..n).rev() {
            let input: &[T] = if i == 0 { x } else { &cache.outputs[i - 1] };
            let dy: &mut [T] = if i + 1 == n { &mut *dout } else { &mut grad_a };
            let target = if i == 0 {
                dx.as_deref_mut()
            } else {
                Some(&mut grad_b)
            };
            self.layers[i].backward(
                params,
                grads,
                input,
                &cache.outputs[i],
                &cache.pres[i],
                dy,
                target,
                rows,
            );
            std::mem::swap(&mut grad_a, &mut grad_b);
        }
        cache.grad_a = grad_a;
        cache.grad_b = grad_b;
    }
}
