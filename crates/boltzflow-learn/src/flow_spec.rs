//! The flow architecture as configured in a run's TOML (`[flow]`), and its construction.

use boltzflow_core::{Error, Result};
use boltzflow_nn::flows::{
    ActNorm, AutoregressiveSpline, Coupling, SplineParams, Transformer, Whiten,
};
use boltzflow_nn::{Activation, ParamLayout, Real, SequentialFlow};
use ndarray::Array2;
use rand::seq::SliceRandom;
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

/// How the coordinates are split between the transformed and the conditioning half.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The second half, then the first, alternately (coordinates `0..d/2` and `d/2..d`).
    #[default]
    Halves,
    /// Each pair of couplings draws a fresh random half and then transforms its complement.
    /// With a fixed split, coordinates in the same half are conditionally independent given
    /// the other half at every layer, so two particles in one half cannot avoid each other;
    /// for particle systems (the dimer bath) use this. The partitions are fixed by the
    /// coupling index alone, so a checkpoint always rebuilds the same flow.
    Random,
    /// Particle systems: each pair of couplings splits the *particles* (a particle's
    /// coordinates stay together) so that neighbours in the system's reference arrangement
    /// lie on opposite sides, a transformed particle seeing its neighbours held fixed, and
    /// pairs of neighbours that one split leaves together are separated by the next ones
    /// ([`crate::particle_split`]). Needs the particles' positions
    /// ([`FlowSpec::with_particles`]; a run takes them from its system).
    Neighbours,
}

/// The coordinates the flow generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FlowCoordinates {
    /// The system's own coordinates.
    #[default]
    Cartesian,
    /// Molecules: bonds and angles (standardised with the training data's statistics) and
    /// torsions (periodic, circular splines, uniform prior) from the bond graph, the six
    /// external degrees of freedom fixed (`boltzflow_coords::layer`).
    Internal,
}

fn is_cartesian(c: &FlowCoordinates) -> bool {
    *c == FlowCoordinates::Cartesian
}

/// How a flow with periodic coordinates (torsions) transforms them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TorsionLayer {
    /// Two circular-spline couplings per cycle, each over half of the torsions.
    #[default]
    Coupling,
    /// One masked autoregressive spline layer per cycle over all torsions (MAF,
    /// [`boltzflow_nn::flows::AutoregressiveSpline`]; the order reversed every other cycle),
    /// conditioned on the other coordinates.
    Autoregressive,
}

fn is_coupling(t: &TorsionLayer) -> bool {
    *t == TorsionLayer::Coupling
}

/// `[flow]`: a stack of coupling layers that alternately transform one half of the
/// coordinates and the other (see [`Split`]), each with an MLP conditioner.
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
    /// How each coupling splits the coordinates.
    pub split: Split,
    /// `cartesian` (default) or `internal` (molecules; see [`FlowCoordinates`]).
    #[serde(skip_serializing_if = "is_cartesian")]
    pub coordinates: FlowCoordinates,
    /// Flows with torsions: `coupling` (default) or `autoregressive` (see [`TorsionLayer`]).
    #[serde(skip_serializing_if = "is_coupling")]
    pub torsion_layer: TorsionLayer,
    /// Boltzmann generators of systems with identical particles (a solvent): learn one
    /// labelling. Training data are relabelled by the optimal assignment to the system's
    /// reference sites, and reweighting gives samples outside that domain weight 0
    /// (`boltzflow_coords::PermutationReduction`). Cartesian coordinates only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reduce_permutations: bool,
    /// `split = "neighbours"` only: hidden widths of a local conditioner in every coupling
    /// (empty: none). Each transformed particle then also gets transformer parameters from one
    /// network shared by all particles that sees its `local_neighbours` nearest conditioning
    /// particles ([`boltzflow_nn::flows::LocalConditioner`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub local_hidden: Vec<usize>,
    /// Neighbours the local conditioner sees (default 8).
    pub local_neighbours: usize,
    /// `split = "neighbours"`: where the particles sit, `[n_particles, spatial_dim]` (the
    /// system's reference arrangement, coordinates of a particle consecutive); not part of the
    /// TOML, set by [`FlowSpec::with_particles`].
    #[serde(skip)]
    pub particles: Option<Array2<f64>>,
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
            split: Split::Halves,
            coordinates: FlowCoordinates::Cartesian,
            torsion_layer: TorsionLayer::Coupling,
            reduce_permutations: false,
            local_hidden: Vec::new(),
            local_neighbours: 8,
            particles: None,
        }
    }
}

impl FlowSpec {
    /// The spec with the particles' reference positions `[n_particles, spatial_dim]`, which
    /// `split = "neighbours"` needs.
    #[must_use]
    pub fn with_particles(mut self, positions: Array2<f64>) -> Self {
        self.particles = Some(positions);
        self
    }

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
        if !self.local_hidden.is_empty() && self.split != Split::Neighbours {
            return Err(Error::invalid(
                "flow.local_hidden",
                "a local conditioner needs whole particles on each side of a coupling: set split = \"neighbours\"",
            ));
        }
        if self.local_hidden.contains(&0) {
            return Err(Error::invalid(
                "flow.local_hidden",
                "widths must be positive",
            ));
        }
        if !self.local_hidden.is_empty() && self.local_neighbours == 0 {
            return Err(Error::invalid(
                "flow.local_neighbours",
                "must be at least 1",
            ));
        }
        if self.split == Split::Neighbours {
            match &self.particles {
                None => {
                    return Err(Error::invalid(
                        "flow.split",
                        "\"neighbours\" needs a particle system (one whose particles the energy tells by position, e.g. dimer-bath); use \"random\"",
                    ));
                }
                Some(p) if p.nrows() < 2 || p.nrows() * p.ncols() != dim => {
                    return Err(Error::invalid(
                        "flow.split",
                        format!(
                            "\"neighbours\": {} particles in {} dimensions do not make the flow's {dim} coordinates; use \"random\"",
                            p.nrows(),
                            p.ncols()
                        ),
                    ));
                }
                Some(_) => {}
            }
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
        self.build_periodic(dim, &[])
    }

    /// As [`FlowSpec::build`] for a space whose coordinates flagged in `periodic` (`[dim]`, or
    /// empty for none) are angles on (−π, π] (torsions). With periodic coordinates, the
    /// couplings cycle through four kinds: one half of the torsions, the other half (circular
    /// splines with `bins` bins), then one half of the other coordinates and the other half
    /// (the configured transformer), every conditioner seeing the torsions as (sin, cos); the
    /// halves are drawn per cycle as [`Split`] says. `couplings` counts all of them (use a
    /// multiple of 4).
    ///
    /// # Errors
    /// As [`FlowSpec::validate`]; [`Error::InvalidParameter`] for `actnorm` or `whiten` with
    /// periodic coordinates (they would cut the circle), or when every coordinate is periodic.
    pub fn build_periodic<T: Real>(
        &self,
        dim: usize,
        periodic: &[bool],
    ) -> Result<(SequentialFlow<T>, ParamLayout)> {
        self.validate(dim)?;
        if periodic.iter().any(|p| *p) {
            return self.build_torus(dim, periodic);
        }
        if self.torsion_layer != TorsionLayer::Coupling {
            return Err(Error::invalid(
                "flow.torsion_layer",
                "applies to flows with torsions (coordinates = \"internal\"); this flow has no periodic coordinates",
            ));
        }
        let transformer = self.transformer();
        let splits = self.coordinate_splits(dim, self.couplings.div_ceil(2));
        let local_sites = match (self.local_hidden.is_empty(), &self.particles) {
            (false, Some(p)) => Some((p.iter().copied().collect::<Vec<f64>>(), p.ncols())),
            _ => None,
        };
        let mut layout = ParamLayout::new();
        let mut flow = SequentialFlow::new(dim);
        for i in 0..self.couplings {
            if self.actnorm {
                flow.push(ActNorm::new(&mut layout, &format!("flow.{i}.actnorm"), dim));
            }
            let (first, second) = &splits[i / 2];
            let trans = if i % 2 == 0 { second } else { first };
            let prefix = format!("flow.{i}.coupling");
            let mut coupling = Coupling::new(
                &mut layout,
                &prefix,
                dim,
                trans,
                &self.hidden,
                self.activation,
                transformer,
            );
            if let Some((sites, width)) = &local_sites {
                coupling = coupling.with_local(
                    &mut layout,
                    &prefix,
                    sites,
                    *width,
                    self.local_neighbours,
                    &self.local_hidden,
                    self.activation,
                );
            }
            flow.push(coupling);
        }
        if self.whiten {
            flow.push(Whiten::new(&mut layout, "flow.whiten", dim));
        }
        Ok((flow, layout))
    }

    /// The flow of [`FlowSpec::build_periodic`] with periodic coordinates.
    fn build_torus<T: Real>(
        &self,
        dim: usize,
        periodic: &[bool],
    ) -> Result<(SequentialFlow<T>, ParamLayout)> {
        if self.split == Split::Neighbours {
            return Err(Error::invalid(
                "flow.split",
                "\"neighbours\" splits particles in Cartesian coordinates; a flow with torsions takes \"halves\" or \"random\"",
            ));
        }
        if self.actnorm || self.whiten {
            return Err(Error::invalid(
                if self.actnorm {
                    "flow.actnorm"
                } else {
                    "flow.whiten"
                },
                "cannot act on periodic coordinates (torsions): set it to false",
            ));
        }
        let torsions: Vec<usize> = (0..dim).filter(|&i| periodic[i]).collect();
        let others: Vec<usize> = (0..dim).filter(|&i| !periodic[i]).collect();
        if others.is_empty() {
            return Err(Error::invalid(
                "flow",
                "every coordinate is periodic; a flow on the torus alone is not supported",
            ));
        }
        if !(2..=boltzflow_nn::flows::MAX_BINS).contains(&self.bins) {
            return Err(Error::invalid(
                "flow.bins",
                format!(
                    "the circular splines of the torsions need 2 to {} bins, got {}",
                    boltzflow_nn::flows::MAX_BINS,
                    self.bins
                ),
            ));
        }
        let circular = Transformer::Spline(SplineParams::circular(self.bins));
        let mut layout = ParamLayout::new();
        let mut flow = SequentialFlow::new(dim);
        for i in 0..self.couplings {
            let cycle = i / 4;
            if self.torsion_layer == TorsionLayer::Autoregressive && i % 4 < 2 {
                // One autoregressive layer stands for the cycle's two torsion couplings.
                if i % 4 == 0 {
                    let mut order = torsions.clone();
                    if cycle % 2 == 1 {
                        order.reverse();
                    }
                    flow.push(AutoregressiveSpline::new(
                        &mut layout,
                        &format!("flow.{i}.autoregressive"),
                        dim,
                        &order,
                        periodic,
                        &self.hidden,
                        self.activation,
                        self.bins,
                        self.bound,
                    ));
                }
                continue;
            }
            let (set, kind) = if i % 4 < 2 {
                (&torsions, circular)
            } else {
                (&others, self.transformer())
            };
            // A set of one coordinate is transformed whole, conditioned on everything else.
            let trans: Vec<usize> = if set.len() == 1 {
                set.clone()
            } else {
                let (first, second) = self.halves(set.len(), cycle);
                let half = if i % 2 == 0 { second } else { first };
                half.into_iter().map(|k| set[k]).collect()
            };
            flow.push(Coupling::with_periodic(
                &mut layout,
                &format!("flow.{i}.coupling"),
                dim,
                &trans,
                periodic,
                &self.hidden,
                self.activation,
                kind,
            ));
        }
        Ok((flow, layout))
    }

    /// The transformer of the non-periodic couplings.
    fn transformer(&self) -> Transformer {
        match self.kind {
            FlowKind::Nice => Transformer::Additive,
            FlowKind::Realnvp => Transformer::Affine {
                scale_bound: self.scale_bound,
            },
            FlowKind::Spline => Transformer::Spline(SplineParams::new(self.bins, self.bound)),
        }
    }

    /// The coordinate halves of the first `pairs` coupling pairs (validated spec).
    fn coordinate_splits(&self, dim: usize, pairs: usize) -> Vec<(Vec<usize>, Vec<usize>)> {
        match (&self.split, &self.particles) {
            (Split::Neighbours, Some(p)) => {
                let width = p.ncols();
                let coordinates = |particles: &[usize]| -> Vec<usize> {
                    particles
                        .iter()
                        .flat_map(|&k| k * width..(k + 1) * width)
                        .collect()
                };
                crate::particle_split::neighbour_halves(p.view(), pairs)
                    .into_iter()
                    .map(|(a, b)| (coordinates(&a), coordinates(&b)))
                    .collect()
            }
            _ => (0..pairs).map(|pair| self.halves(dim, pair)).collect(),
        }
    }

    /// The two halves (sorted indices, the first of size d/2) of coupling pair `pair`.
    fn halves(&self, dim: usize, pair: usize) -> (Vec<usize>, Vec<usize>) {
        let mut order: Vec<usize> = (0..dim).collect();
        if self.split == Split::Random {
            let mut rng =
                boltzflow_core::RandomStreams::new(0).stream(&format!("flow.split.{pair}"));
            order.shuffle(&mut rng);
        }
        let mut first = order[..dim / 2].to_vec();
        let mut second = order[dim / 2..].to_vec();
        first.sort_unstable();
        second.sort_unstable();
        (first, second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BoltzmannGenerator;
    use boltzflow_core::RandomStreams;
    use rand_distr::{Distribution, StandardNormal};

    #[test]
    fn random_splits_are_fixed_partitions_that_differ_between_pairs() {
        let spec = FlowSpec {
            split: Split::Random,
            ..FlowSpec::default()
        };
        let dim = 76;
        let mut seen = Vec::new();
        for pair in 0..4 {
            let (a, b) = spec.halves(dim, pair);
            assert_eq!((a.len(), b.len()), (38, 38));
            let mut all: Vec<usize> = a.iter().chain(&b).copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..dim).collect::<Vec<_>>());
            // The same pair always gives the same split (checkpoints rebuild the same flow).
            assert_eq!(spec.halves(dim, pair), (a.clone(), b));
            assert_ne!(a, (0..38).collect::<Vec<_>>());
            assert!(!seen.contains(&a));
            seen.push(a);
        }
        // The default keeps the contiguous halves.
        let (a, b) = FlowSpec::default().halves(5, 3);
        assert_eq!((a, b), (vec![0, 1], vec![2, 3, 4]));
    }

    /// `split = "neighbours"` keeps each particle's coordinates in one half, transforms every
    /// coordinate once per pair, refuses a spec without (matching) particles or with
    /// torsions, and with a local conditioner gives an invertible flow with consistent
    /// densities (a local conditioner without it is refused).
    #[test]
    fn neighbour_splits_keep_particles_whole_and_need_their_positions() {
        let positions = ndarray::Array2::from_shape_fn((9, 2), |(k, c)| {
            if c == 0 {
                (k % 3) as f64
            } else {
                (k / 3) as f64
            }
        });
        let spec = FlowSpec {
            split: Split::Neighbours,
            couplings: 4,
            local_hidden: vec![6],
            local_neighbours: 3,
            ..FlowSpec::default()
        };
        assert!(spec.build::<f64>(18).is_err());
        let no_particles = FlowSpec {
            split: Split::Random,
            ..spec.clone()
        };
        let e = no_particles.build::<f64>(18).unwrap_err().to_string();
        assert!(e.contains("flow.local_hidden"), "{e}");
        let spec = spec.with_particles(positions);
        assert!(spec.build::<f64>(20).is_err());
        assert!(spec.build_periodic::<f64>(18, &[true; 18]).is_err());
        let splits = spec.coordinate_splits(18, 2);
        for (a, b) in &splits {
            assert_eq!(a.len() + b.len(), 18);
            for half in [a, b] {
                for pair in half.chunks(2) {
                    assert_eq!((pair[0] % 2, pair[1]), (0, pair[0] + 1));
                }
            }
        }
        // The centre particle (4) is opposite its four nearest neighbours in the first split.
        let side = |k: usize| splits[0].1.contains(&(2 * k));
        assert!([1, 3, 5, 7].iter().all(|&k| side(k) != side(4)));
        assert_densities_consistent(&spec, 18, 20);
    }

    /// A randomly split flow is invertible with consistent densities: ln q of a generated
    /// sample (forward pass) equals ln q evaluated at it (inverse pass).
    #[test]
    fn a_randomly_split_flow_is_invertible() {
        let spec = FlowSpec {
            split: Split::Random,
            couplings: 4,
            hidden: vec![8],
            actnorm: true,
            ..FlowSpec::default()
        };
        assert_densities_consistent(&spec, 7, 50);
    }

    /// A generator of `spec` with random parameters: ln q of `n` generated samples (forward
    /// pass) equals ln q evaluated at them (inverse pass).
    fn assert_densities_consistent(spec: &FlowSpec, dim: usize, n: usize) {
        let mut rng = RandomStreams::new(1).stream("init");
        let mut bg = BoltzmannGenerator::<f64>::new(dim, spec, 1.0, &mut rng).unwrap();
        let mut r = RandomStreams::new(2).stream("noise");
        for p in &mut bg.params {
            let e: f64 = StandardNormal.sample(&mut r);
            *p = 0.3 * e;
        }
        let (x, neg_log_q) = bg.sample(n, 1.0, 16, &mut r);
        let log_q = bg.log_density(&x, 16);
        for (a, b) in log_q.iter().zip(&neg_log_q) {
            assert!((a + b).abs() < 1e-9, "{a} vs {}", -b);
        }
    }

    #[test]
    fn torus_flows_pass_the_generic_flow_test_and_refuse_actnorm() {
        let spec = FlowSpec {
            couplings: 8,
            hidden: vec![8],
            bins: 4,
            ..FlowSpec::default()
        };
        let periodic = [false, true, false, true, true];
        let (flow, layout) = spec.build_periodic::<f64>(5, &periodic).unwrap();
        let mut rng = RandomStreams::new(3).stream("p");
        let params: Vec<f64> = (0..layout.len())
            .map(|_| {
                let e: f64 = StandardNormal.sample(&mut rng);
                0.3 * e
            })
            .collect();
        let rep = boltzflow_nn::gradcheck::check_flow(&flow, &params, 4, 1.0, 1e-6, &mut rng);
        assert!(rep.round_trip < 1e-9 && rep.log_det_sum < 1e-9, "{rep:?}");
        assert!(rep.jacobian_log_det < 1e-5, "{rep:?}");
        assert!(rep.worst_gradient() < 1e-6, "{rep:?}");
        let bad = FlowSpec {
            actnorm: true,
            ..spec.clone()
        };
        let e = bad
            .build_periodic::<f64>(5, &periodic)
            .unwrap_err()
            .to_string();
        assert!(e.contains("flow.actnorm"), "{e}");
    }
}
