//! Composition of flow layers, and the per-batch workspace that runs them without allocating.

use boltzflow_core::ChainRng;

use super::{Direction, FlowLayer, LayerCache};
use crate::Real;

/// Layers applied in order in the forward direction (latent → configuration) and in reverse
/// order in the inverse direction. Log-dets add up.
#[derive(Debug)]
pub struct SequentialFlow<T: Real> {
    dim: usize,
    layers: Vec<Box<dyn FlowLayer<T>>>,
}

/// Buffers of one batch through a [`SequentialFlow`]: every intermediate configuration (needed
/// by the backward pass), every layer's cache, the log-dets and the gradient. Kept between
/// steps; buffers grow to the largest batch seen and are then reused.
#[derive(Debug, Clone, Default)]
pub struct FlowWorkspace<T> {
    acts: Vec<Vec<T>>,
    caches: Vec<LayerCache<T>>,
    log_det: Vec<T>,
    grad: Vec<T>,
    rows: usize,
    dir: Option<Direction>,
}

impl<T: Real> FlowWorkspace<T> {
    /// An empty workspace.
    pub fn new() -> Self {
        Self {
            acts: Vec::new(),
            caches: Vec::new(),
            log_det: Vec::new(),
            grad: Vec::new(),
            rows: 0,
            dir: None,
        }
    }

    /// The output of the last run, `[rows, dim]`.
    pub fn output(&self) -> &[T] {
        self.acts.last().map_or(&[], Vec::as_slice)
    }

    /// The input of the last run, `[rows, dim]`.
    pub fn input(&self) -> &[T] {
        self.acts.first().map_or(&[], Vec::as_slice)
    }

    /// The log-dets of the last run, `[rows]`.
    pub fn log_det(&self) -> &[T] {
        &self.log_det
    }

    /// Rows in the last run.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// dL/d(input) `[rows, dim]` of the last [`SequentialFlow::backward`] (what it returned).
    pub fn grad_input(&self) -> &[T] {
        &self.grad
    }
}

impl<T: Real> SequentialFlow<T> {
    /// An empty flow (the identity) on rows of width `dim`.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            layers: Vec::new(),
        }
    }

    /// Appends a layer (applied after the existing ones in the forward direction).
    ///
    /// # Panics
    /// If the layer's width differs from the flow's.
    pub fn push(&mut self, layer: impl FlowLayer<T> + 'static) {
        assert_eq!(layer.dim(), self.dim, "layer width differs from the flow's");
        self.layers.push(Box::new(layer));
    }

    /// Row width.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The layers in forward order.
    pub fn layers(&self) -> &[Box<dyn FlowLayer<T>>] {
        &self.layers
    }

    /// Zeroes the structurally fixed entries of every layer ([`FlowLayer::mask_params`]).
    pub fn mask_params(&self, values: &mut [T]) {
        for l in &self.layers {
            l.mask_params(values);
        }
    }

    /// Initialises all layers (a new flow is the identity).
    pub fn init(&self, params: &mut [T], rng: &mut ChainRng) {
        for l in &self.layers {
            l.init(params, rng);
        }
    }

    fn order(&self, dir: Direction) -> impl Iterator<Item = usize> + '_ {
        let n = self.layers.len();
        (0..n).map(move |i| {
            if dir == Direction::Forward {
                i
            } else {
                n - 1 - i
            }
        })
    }

    /// Runs `input` `[rows, dim]` through the flow in direction `dir`; the output and log-dets
    /// are in the workspace ([`FlowWorkspace::output`], [`FlowWorkspace::log_det`]).
    pub fn run(
        &self,
        params: &[T],
        input: &[T],
        rows: usize,
        dir: Direction,
        ws: &mut FlowWorkspace<T>,
    ) {
        let n = self.layers.len();
        let len = rows * self.dim;
        debug_assert_eq!(input.len(), len);
        ws.acts.resize_with(n + 1, Vec::new);
        ws.caches.resize_with(n, LayerCache::default);
        for a in &mut ws.acts {
            a.resize(len, T::zero());
        }
        ws.acts[0].copy_from_slice(input);
        ws.log_det.clear();
        ws.log_det.resize(rows, T::zero());
        for (step, li) in self.order(dir).enumerate() {
            let (before, after) = ws.acts.split_at_mut(step + 1);
            self.layers[li].transform(
                params,
                &before[step],
                &mut after[0],
                &mut ws.log_det,
                rows,
                dir,
                &mut ws.caches[step],
            );
        }
        ws.rows = rows;
        ws.dir = Some(dir);
    }

    /// Backward pass of the last [`SequentialFlow::run`]: given dL/d(output) `[rows, dim]` and
    /// dL/d(log-det) `[rows]`, adds parameter gradients to `grads` and returns dL/d(input).
    ///
    /// # Panics
    /// If the workspace has not been run.
    pub fn backward<'w>(
        &self,
        params: &[T],
        grads: &mut [T],
        ws: &'w mut FlowWorkspace<T>,
        grad_out: &[T],
        grad_log_det: &[T],
    ) -> &'w [T] {
        let dir = ws.dir.expect("backward before run");
        let rows = ws.rows;
        ws.grad.clear();
        ws.grad.extend_from_slice(grad_out);
        let n = self.layers.len();
        for step in (0..n).rev() {
            let li = if dir == Direction::Forward {
                step
            } else {
                n - 1 - step
            };
            self.layers[li].backward(
                params,
                grads,
                &ws.acts[step],
                &ws.acts[step + 1],
                &mut ws.grad,
                grad_log_det,
                rows,
                dir,
                &mut ws.caches[step],
            );
        }
        &ws.grad
    }

    /// Data-dependent initialisation: runs `x` `[rows, dim]` inverse through the flow, letting
    /// each layer (ActNorm) set its parameters from the batch as it arrives.
    pub fn data_init(&self, params: &mut [T], x: &[T], rows: usize) {
        let mut cur = x.to_vec();
        let mut next = vec![T::zero(); cur.len()];
        let mut ld = vec![T::zero(); rows];
        let mut cache = LayerCache::default();
        for l in self.layers.iter().rev() {
            l.data_init(params, &cur, rows);
            l.transform(
                params,
                &cur,
                &mut next,
                &mut ld,
                rows,
                Direction::Inverse,
                &mut cache,
            );
            std::mem::swap(&mut cur, &mut next);
        }
    }
}

/// A layer run the other way round: its forward is the wrapped layer's inverse.
#[derive(Debug, Clone)]
pub struct Inverted<L>(pub L);

impl<T: Real, L: FlowLayer<T>> FlowLayer<T> for Inverted<L> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn init(&self, params: &mut [T], rng: &mut ChainRng) {
        self.0.init(params, rng);
    }
    fn transform(
        &self,
        params: &[T],
        input: &[T],
        output: &mut [T],
        log_det: &mut [T],
        rows: usize,
        dir: Direction,
        cache: &mut LayerCache<T>,
    ) {
        self.0
            .transform(params, input, output, log_det, rows, dir.flip(), cache);
    }
    fn backward(
        &self,
        params: &[T],
        grads: &mut [T],
        input: &[T],
        output: &[T],
        grad: &mut [T],
        grad_log_det: &[T],
        rows: usize,
        dir: Direction,
        cache: &mut LayerCache<T>,
    ) {
        self.0.backward(
            params,
            grads,
            input,
            output,
            grad,
            grad_log_det,
            rows,
            dir.flip(),
            cache,
        );
    }
}
