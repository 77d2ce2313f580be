//! Parameters as named flat slices.
//!
//! A model owns one flat vector of parameter values (and, for training, one of gradients and
//! the optimizer's moments, all with the same layout). [`ParamLayout`] records which range of
//! the vector belongs to which named tensor; the names are the safetensors keys of checkpoints.
//! Layers keep their ranges and read their weights from the flat slice they are given, so the
//! same immutable model can run on many threads, each accumulating into its own gradient vector.

use std::ops::Range;

use rand::Rng;
use rand_distr::{Distribution, Uniform};

use crate::Real;

/// One named parameter tensor: its shape and where it lives in the flat vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamEntry {
    /// The name, e.g. `flow.3.mlp.0.weight` (the checkpoint key).
    pub name: String,
    /// Its shape, row-major (`[fan_in, fan_out]` for a weight matrix).
    pub shape: Vec<usize>,
    /// Its range in the flat vector.
    pub range: Range<usize>,
}

/// The names, shapes and offsets of a model's parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParamLayout {
    entries: Vec<ParamEntry>,
    len: usize,
}

impl ParamLayout {
    /// An empty layout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a tensor of the given shape and returns its range.
    pub fn add(&mut self, name: impl Into<String>, shape: &[usize]) -> Range<usize> {
        let n: usize = shape.iter().product();
        let range = self.len..self.len + n;
        self.entries.push(ParamEntry {
            name: name.into(),
            shape: shape.to_vec(),
            range: range.clone(),
        });
        self.len += n;
        range
    }

    /// Total number of scalars.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the model has no parameters.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The tensors in order.
    pub fn entries(&self) -> &[ParamEntry] {
        &self.entries
    }

    /// The tensor with this name.
    pub fn find(&self, name: &str) -> Option<&ParamEntry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// Fills `out` with U(−bound, bound): PyTorch's default for linear layers uses
/// bound = 1/√fan_in for weights and biases alike.
pub fn init_uniform<T: Real>(out: &mut [T], bound: f64, rng: &mut impl Rng) {
    if bound == 0.0 {
        out.fill(T::zero());
        return;
    }
    let dist = Uniform::new(-bound, bound).expect("bound is positive and finite");
    for v in out {
        *v = T::of(dist.sample(rng));
    }
}

/// Squared Euclidean norm of a gradient vector, accumulated in f64.
pub fn squared_norm<T: Real>(xs: &[T]) -> f64 {
    xs.iter().map(|v| v.as_f64() * v.as_f64()).sum()
}
