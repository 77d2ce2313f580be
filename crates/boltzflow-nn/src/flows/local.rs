//! A local conditioner for coupling layers over particles: every transformed particle's
//! transformer parameters come from one network shared by all particles, which sees only that
//! particle's nearest conditioning neighbours.
//!
//! A coupling's MLP conditioner maps all conditioning coordinates at once to all transformed
//! ones, so to keep two particles apart it must learn every pair separately through one
//! hidden layer. Pair exclusion is local and the same for every pair, which is what weight
//! sharing over particles expresses (as convolutions do on lattices; Köhler, Klein & Noé 2020
//! and Klein et al. 2023 build it into equivariant flows). Here, for transformed particle p
//! with reference site s_p, the shared network reads
//! `[x_{n₁}, s_{n₁} − s_p, …, x_{n_K}, s_{n_K} − s_p, s_p]`: the current coordinates of its K
//! nearest conditioning particles (nearest in the reference arrangement; coordinates as the
//! flow sees them at this layer), where those neighbours sit relative to it, and where it
//! sits itself (walls). Its output, `width × n_params` values, is added to the coupling MLP's
//! output for p's coordinates; the last layer starts at zero, so a new layer stays the
//! identity.

use crate::Real;
use crate::linear::Activation;
use crate::mlp::{Mlp, MlpCache};
use crate::params::ParamLayout;

/// Per-batch buffers of a [`LocalConditioner`] (part of [`super::LayerCache`]).
#[derive(Debug, Clone, Default)]
pub struct LocalCache<T> {
    /// Network input `[rows · particles, features]`.
    features: Vec<T>,
    /// The shared network's buffers.
    mlp: MlpCache<T>,
    /// The coupling's conditioner output plus this one's, `[rows, n_trans · n_params]`.
    pub h: Vec<T>,
    /// dL/d(network output) `[rows · particles, width · n_params]`.
    grad_out: Vec<T>,
    /// dL/d(network input).
    grad_in: Vec<T>,
}

/// One transformed particle of a [`LocalConditioner`].
#[derive(Debug, Clone)]
struct LocalParticle {
    /// Index in the coupling's transformed coordinates of the particle's first coordinate.
    first: usize,
    /// Row indices of the neighbours' coordinates, `[K · width]`.
    neighbours: Vec<usize>,
    /// The network input with the constant features filled in (neighbour offsets s_n − s_p
    /// after each neighbour's coordinates, s_p last) and the coordinates' slots at zero,
    /// `[features]`.
    template: Vec<f64>,
}

/// The shared per-particle conditioner of a [`super::Coupling`] (see the module docs).
#[derive(Debug, Clone)]
pub struct LocalConditioner {
    width: usize,
    n_params: usize,
    particles: Vec<LocalParticle>,
    mlp: Mlp,
}

impl LocalConditioner {
    /// The conditioner for a coupling that transforms `trans` (sorted coordinate indices, whole
    /// particles) and conditions on `cond`, over particles at `sites` `[n_particles · width]`
    /// (particle i's coordinates are `i·width .. (i + 1)·width`); each sees its `neighbours`
    /// nearest conditioning particles through a network of widths
    /// `[neighbours·2·width + width, hidden…, width·n_params]`.
    ///
    /// # Panics
    /// If `trans` splits a particle, there are no conditioning particles, or widths disagree.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        layout: &mut ParamLayout,
        prefix: &str,
        sites: &[f64],
        width: usize,
        trans: &[usize],
        cond: &[usize],
        neighbours: usize,
        hidden: &[usize],
        activation: Activation,
        n_params: usize,
    ) -> Self {
        assert!(
            width > 0 && sites.len().is_multiple_of(width),
            "sites do not hold whole particles"
        );
        let n = sites.len() / width;
        let site = |i: usize| &sites[i * width..(i + 1) * width];
        let whole = |coords: &[usize]| -> Vec<usize> {
            assert!(
                coords.len().is_multiple_of(width)
                    && coords.chunks(width).all(|c| {
                        c[0].is_multiple_of(width)
                            && c.iter().enumerate().all(|(k, &v)| v == c[0] + k)
                    }),
                "a local conditioner needs whole particles on each side of the coupling"
            );
            coords.chunks(width).map(|c| c[0] / width).collect()
        };
        let trans_particles = whole(trans);
        let cond_particles = whole(cond);
        assert!(
            trans_particles
                .iter()
                .chain(&cond_particles)
                .all(|&p| p < n),
            "a coupling coordinate has no site"
        );
        let k = neighbours.min(cond_particles.len());
        assert!(k > 0, "a local conditioner needs conditioning particles");
        let particles = trans_particles
            .iter()
            .enumerate()
            .map(|(t, &p)| {
                let dist2 = |q: usize| -> f64 {
                    site(p)
                        .iter()
                        .zip(site(q))
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum()
                };
                let mut near = cond_particles.clone();
                near.sort_by(|&a, &b| dist2(a).total_cmp(&dist2(b)).then(a.cmp(&b)));
                near.truncate(k);
                let mut template: Vec<f64> = near
                    .iter()
                    .flat_map(|&q| {
                        let offsets = site(q).iter().zip(site(p)).map(|(a, b)| a - b);
                        std::iter::repeat_n(0.0, width).chain(offsets)
                    })
                    .collect();
                template.extend_from_slice(site(p));
                LocalParticle {
                    first: t * width,
                    neighbours: near
                        .iter()
                        .flat_map(|&q| q * width..(q + 1) * width)
                        .collect(),
                    template,
                }
            })
            .collect();
        let mut widths = vec![(2 * k + 1) * width];
        widths.extend_from_slice(hidden);
        widths.push(width * n_params);
        let mlp = Mlp::new(
            layout,
            &format!("{prefix}.local"),
            &widths,
            activation,
            Activation::Identity,
        );
        Self {
            width,
            n_params,
            particles,
            mlp,
        }
    }

    /// Initialises the network, its last layer at zero.
    pub fn init<T: Real>(&self, params: &mut [T], rng: &mut impl rand::Rng) {
        self.mlp.init(params, true, rng);
    }

    /// Multiply–adds per row of the batch (all particles).
    pub fn macs_per_row(&self) -> usize {
        self.particles.len() * self.mlp.macs_per_row()
    }

    fn n_features(&self) -> usize {
        self.mlp.fan_in()
    }

    /// `cache.local.h` = `global` (the coupling MLP's output `[rows, n_trans · n_params]`)
    /// plus this conditioner's output, from `input` `[rows, dim]`.
    pub fn forward<T: Real>(
        &self,
        params: &[T],
        input: &[T],
        rows: usize,
        dim: usize,
        global: &[T],
        cache: &mut LocalCache<T>,
    ) {
        let nf = self.n_features();
        let np = self.particles.len();
        cache.features.resize(rows * np * nf, T::zero());
        for (row, f_row) in input
            .chunks_exact(dim)
            .zip(cache.features.chunks_exact_mut(np * nf))
        {
            for (p, f) in self.particles.iter().zip(f_row.chunks_exact_mut(nf)) {
                for (v, &t) in f.iter_mut().zip(&p.template) {
                    *v = T::of(t);
                }
                for (i, &src) in p.neighbours.iter().enumerate() {
                    let (slot, c) = (i / self.width, i % self.width);
                    f[2 * slot * self.width + c] = row[src];
                }
            }
        }
        let out = self
            .mlp
            .forward(params, &cache.features, rows * np, &mut cache.mlp);
        cache.h.clear();
        cache.h.extend_from_slice(global);
        let chunk = self.width * self.n_params;
        let row_len = global.len() / rows.max(1);
        for (h_row, o_row) in cache
            .h
            .chunks_exact_mut(row_len)
            .zip(out.chunks_exact(np * chunk))
        {
            for (p, o) in self.particles.iter().zip(o_row.chunks_exact(chunk)) {
                let start = p.first * self.n_params;
                for (h, &v) in h_row[start..start + chunk].iter_mut().zip(o) {
                    *h += v;
                }
            }
        }
    }

    /// Backward pass after [`LocalConditioner::forward`]: `grad_h` is dL/d(conditioner output)
    /// `[rows, n_trans · n_params]` (read, not changed); parameter gradients are added to
    /// `grads` and dL/d(neighbour coordinates) to `grad` `[rows, dim]`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<T: Real>(
        &self,
        params: &[T],
        grads: &mut [T],
        grad_h: &[T],
        grad: &mut [T],
        rows: usize,
        dim: usize,
        c: &mut LocalCache<T>,
    ) {
        let np = self.particles.len();
        let chunk = self.width * self.n_params;
        let row_len = grad_h.len() / rows.max(1);
        c.grad_out.resize(rows * np * chunk, T::zero());
        for (gh_row, o_row) in grad_h
            .chunks_exact(row_len)
            .zip(c.grad_out.chunks_exact_mut(np * chunk))
        {
            for (p, o) in self.particles.iter().zip(o_row.chunks_exact_mut(chunk)) {
                let start = p.first * self.n_params;
                o.copy_from_slice(&gh_row[start..start + chunk]);
            }
        }
        self.mlp.backward(
            params,
            grads,
            &c.features,
            &mut c.mlp,
            &mut c.grad_out,
            Some(&mut c.grad_in),
        );
        let nf = self.n_features();
        for (g, gi_row) in grad
            .chunks_exact_mut(dim)
            .zip(c.grad_in.chunks_exact(np * nf))
        {
            for (p, gi) in self.particles.iter().zip(gi_row.chunks_exact(nf)) {
                for (i, &dst) in p.neighbours.iter().enumerate() {
                    let (slot, k) = (i / self.width, i % self.width);
                    g[dst] += gi[2 * slot * self.width + k];
                }
            }
        }
    }
}
