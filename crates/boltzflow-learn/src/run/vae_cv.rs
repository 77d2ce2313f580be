//! The encoder mean of a VAE as a collective variable that drives a simulation: one component
//! μⱼ(x) of a molecule's VAE in internal coordinates, with its exact Cartesian gradient, as a
//! [`LearnedCv`] for metadynamics (`boltzflow simulate --metad 'vae:RUN_DIR'`).
//!
//! s(x) = μⱼ(f(y(q(x)))): q the bonds, angles and torsions of the run's internal coordinates,
//! y their standardisation (rigid torsions wrapped about their mean), f the encoder's inputs
//! (free torsions as sine and cosine), μⱼ the encoder MLP's j-th mean. The gradient runs the
//! chain backwards: through the MLP (ReLU: the units that were active), the sine/cosine and the
//! standardisation to ∂s/∂q, then onto the atoms with the analytic gradients of distances,
//! angles and torsions. The network runs in f64 from the run's f32 parameters, so s equals
//! [`super::VaeRun::encode`] to f32 precision.

use std::cell::RefCell;

use boltzflow_coords::IcKind;
use boltzflow_core::geometry::{self, Vec3};
use boltzflow_core::{Error, Result};
use boltzflow_mcmc::metadynamics::LearnedCv;
use boltzflow_nn::linear::Activation;
use ndarray::{ArrayView1, Axis};

use super::VaeRun;
use super::vae_representation::Representation;

/// One layer of the encoder: weight `[fan_in, fan_out]` row-major, bias, ReLU or affine.
#[derive(Debug, Clone)]
struct Layer {
    weight: Vec<f64>,
    bias: Vec<f64>,
    fan_in: usize,
    fan_out: usize,
    relu: bool,
}

/// One internal coordinate the encoder reads: its atoms, kind, standardisation and whether it
/// enters as (sin, cos).
#[derive(Debug, Clone)]
struct Column {
    atoms: Vec<usize>,
    kind: IcKind,
    shift: f64,
    scale: f64,
    periodic: bool,
}

/// The encoder mean μⱼ of a VAE run in internal coordinates; see the module documentation.
#[derive(Debug, Clone)]
pub struct EncoderCv {
    columns: Vec<Column>,
    layers: Vec<Layer>,
    component: usize,
    n_atoms: usize,
    range: [f64; 2],
}

thread_local! {
    /// Per-thread scratch of [`EncoderCv::value`]: called per configuration and step, it must
    /// not allocate.
    static SCRATCH: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// `a` wrapped into (−π, π].
fn wrap(a: f64) -> f64 {
    use std::f64::consts::{PI, TAU};
    let w = a - TAU * ((a + PI) / TAU).floor();
    if w <= -PI { w + TAU } else { w }
}

fn point(x: ArrayView1<f64>, a: usize) -> Vec3 {
    [x[3 * a], x[3 * a + 1], x[3 * a + 2]]
}

/// The value of internal coordinate `c` and, with `grad`, ∂q/∂x of its atoms added to `grad`
/// times `scale`.
fn internal(c: &Column, x: ArrayView1<f64>, grad: Option<(&mut [f64], f64)>) -> f64 {
    let a = &c.atoms;
    let add = |g: &mut [f64], atom: usize, v: Vec3, s: f64| {
        for k in 0..3 {
            g[3 * atom + k] += s * v[k];
        }
    };
    match c.kind {
        IcKind::Bond => {
            let d = geometry::sub(point(x, a[0]), point(x, a[1]));
            let r = geometry::norm(d);
            if let Some((g, s)) = grad {
                let u = geometry::scale(1.0 / r, d);
                add(g, a[0], u, s);
                add(g, a[1], u, -s);
            }
            r
        }
        IcKind::Angle => {
            let (pi, pj, pk) = (point(x, a[0]), point(x, a[1]), point(x, a[2]));
            if let Some((g, s)) = grad {
                let ga = geometry::angle_gradient(pi, pj, pk);
                for (atom, v) in a.iter().zip(ga) {
                    add(g, *atom, v, s);
                }
            }
            geometry::angle(pi, pj, pk)
        }
        IcKind::Torsion | IcKind::Position => {
            let d = geometry::dihedral([
                point(x, a[0]),
                point(x, a[1]),
                point(x, a[2]),
                point(x, a[3]),
            ]);
            if let (Some((g, s)), Some(dg)) = (grad, d.gradient) {
                for (atom, v) in a.iter().zip(dg) {
                    add(g, *atom, v, s);
                }
            }
            d.angle()
        }
    }
}

impl EncoderCv {
    /// Component `component` of the encoder mean of stage `stage` (default: the last finished)
    /// of `run`, a VAE of a molecule in internal coordinates. Its default grid range is that of
    /// μⱼ over the run's data widened by a quarter of the span on each side.
    ///
    /// # Errors
    /// A run of another representation; an unknown stage or component; no finished stage.
    pub fn from_run(run: &VaeRun, stage: Option<usize>, component: usize) -> Result<Self> {
        let Some(Representation::Internal(layer)) = run.fitted_representation()? else {
            return Err(Error::invalid(
                "--metad",
                format!(
                    "a `vae:` CV needs a VAE of a molecule in internal coordinates; `{}` is not one",
                    run.dir.display()
                ),
            ));
        };
        let (vae, trained) = run.trained()?;
        let s = stage.unwrap_or(trained.len() - 1);
        let params = &trained
            .get(s)
            .ok_or_else(|| {
                Error::invalid(
                    "--metad",
                    format!("the run has {} finished stages, got {s}", trained.len()),
                )
            })?
            .1;
        if component >= vae.latent_dim() {
            return Err(Error::invalid(
                "--metad",
                format!(
                    "component {component} of a {}-dimensional latent space",
                    vae.latent_dim()
                ),
            ));
        }
        let columns = layer
            .column_atoms()
            .into_iter()
            .enumerate()
            .map(|(c, atoms)| Column {
                atoms,
                kind: layer.kinds()[c],
                shift: layer.shift()[c],
                scale: layer.scale()[c],
                periodic: layer.periodic()[c],
            })
            .collect();
        let mut layers = Vec::new();
        for lin in vae.encoder().layers() {
            let act = lin.activation();
            if !matches!(act, Activation::Relu | Activation::Identity) {
                return Err(Error::invalid(
                    "--metad",
                    format!("the encoder's activation {act:?} is not supported"),
                ));
            }
            layers.push(Layer {
                weight: params[lin.weight_range()]
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect(),
                bias: params[lin.bias_range()]
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect(),
                fan_in: lin.fan_in(),
                fan_out: lin.fan_out(),
                relu: act == Activation::Relu,
            });
        }
        let mut cv = Self {
            columns,
            layers,
            component,
            n_atoms: layer.cartesian_dim() / 3,
            range: [0.0, 0.0],
        };
        // The data's μⱼ (the stored rows are the representation: back to molecules first).
        let rows = boltzflow_io::read_npy_2d(&run.dir.join("data.npy"))?;
        let x = layer.to_cartesian(rows.view())?.0;
        let s: Vec<f64> = x.axis_iter(Axis(0)).map(|r| cv.value(r, None)).collect();
        let (lo, hi) = s
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let pad = 0.25 * (hi - lo).max(1e-6);
        cv.range = [lo - pad, hi + pad];
        Ok(cv)
    }

    fn evaluate(
        &self,
        x: ArrayView1<f64>,
        grad: Option<(&mut [f64], f64)>,
        buf: &mut Vec<f64>,
    ) -> f64 {
        // Buffer layout: y per column | features | per layer its outputs (pre-activation kept
        // by recomputing the ReLU mask from the output) | backward vectors.
        let nc = self.columns.len();
        let nin = self.layers[0].fan_in;
        let widths: usize = self.layers.iter().map(|l| l.fan_out).sum();
        let maxw = self
            .layers
            .iter()
            .map(|l| l.fan_in.max(l.fan_out))
            .max()
            .unwrap_or(0);
        buf.clear();
        buf.resize(nc + nin + widths + 2 * maxw + nc, 0.0);
        let (y, rest) = buf.split_at_mut(nc);
        let (feat, rest) = rest.split_at_mut(nin);
        let (acts, rest) = rest.split_at_mut(widths);
        let (ga, rest) = rest.split_at_mut(maxw);
        let (gb, gq) = rest.split_at_mut(maxw);
        let mut f = 0;
        for (c, col) in self.columns.iter().enumerate() {
            let q = internal(col, x, None);
            let d = q - col.shift;
            y[c] = if col.kind == IcKind::Torsion {
                wrap(d)
            } else {
                d
            } / col.scale;
            if col.periodic {
                feat[f] = y[c].sin();
                feat[f + 1] = y[c].cos();
                f += 2;
            } else {
                feat[f] = y[c];
                f += 1;
            }
        }
        // Forward; the last layer only for the wanted unit.
        let last = self.layers.len() - 1;
        let mut offset = 0;
        for (l, layer) in self.layers.iter().enumerate() {
            let (before, here) = acts.split_at_mut(offset);
            let input: &[f64] = if l == 0 {
                feat
            } else {
                &before[offset - layer.fan_in..]
            };
            let out = &mut here[..layer.fan_out];
            if l == last {
                // Only the wanted unit: one column of the weight.
                let j = self.component;
                let v = input.iter().enumerate().fold(layer.bias[j], |v, (i, &xi)| {
                    v + xi * layer.weight[i * layer.fan_out + j]
                });
                out[j] = if layer.relu { v.max(0.0) } else { v };
            } else {
                // Row by row through the weight (contiguous, vectorised).
                out.copy_from_slice(&layer.bias);
                for (&xi, row) in input.iter().zip(layer.weight.chunks_exact(layer.fan_out)) {
                    for (o, w) in out.iter_mut().zip(row) {
                        *o += xi * w;
                    }
                }
                if layer.relu {
                    out.iter_mut().for_each(|o| *o = o.max(0.0));
                }
            }
            offset += layer.fan_out;
        }
        let s = acts[offset - self.layers[last].fan_out + self.component];
        let Some((g, scale)) = grad else {
            return s;
        };
        // Backward: ga holds ∂s/∂(outputs of the layer below).
        let mut end = offset - self.layers[last].fan_out;
        for (l, layer) in self.layers.iter().enumerate().rev() {
            // ∂s/∂(pre-activations) of this layer in gb.
            if l == last {
                gb[..layer.fan_out].fill(0.0);
                gb[self.component] = 1.0;
            } else {
                let out = &acts[end..end + layer.fan_out];
                for j in 0..layer.fan_out {
                    gb[j] = if layer.relu && out[j] <= 0.0 {
                        0.0
                    } else {
                        ga[j]
                    };
                }
            }
            for i in 0..layer.fan_in {
                let row = &layer.weight[i * layer.fan_out..(i + 1) * layer.fan_out];
                ga[i] = row
                    .iter()
                    .zip(&gb[..layer.fan_out])
                    .map(|(w, d)| w * d)
                    .sum();
            }
            if l > 0 {
                end -= self.layers[l - 1].fan_out;
            }
        }
        // ga = ∂s/∂features → ∂s/∂q → atoms.
        let mut f = 0;
        for (c, col) in self.columns.iter().enumerate() {
            let dy = if col.periodic {
                let v = ga[f] * y[c].cos() - ga[f + 1] * y[c].sin();
                f += 2;
                v
            } else {
                f += 1;
                ga[f - 1]
            };
            gq[c] = dy / col.scale;
        }
        for (c, col) in self.columns.iter().enumerate() {
            if gq[c] != 0.0 {
                internal(col, x, Some((&mut *g, scale * gq[c])));
            }
        }
        s
    }
}

impl LearnedCv for EncoderCv {
    fn value(&self, x: ArrayView1<f64>, grad: Option<(&mut [f64], f64)>) -> f64 {
        SCRATCH.with(|b| self.evaluate(x, grad, &mut b.borrow_mut()))
    }

    fn dim(&self) -> usize {
        3 * self.n_atoms
    }

    fn default_range(&self) -> Option<[f64; 2]> {
        Some(self.range)
    }
}
