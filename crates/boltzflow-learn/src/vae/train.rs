//! The β protocol of Monroe & Shen (J. Chem. Theory Comput. 2022) and one epoch of training.
//!
//! A run is a list of stages trained in turn. A stage with β ≤ 1 starts from fresh parameters
//! and β rises linearly from 0 over its first `anneal_epochs` (β = 0: no annealing); a stage
//! with β > 1 carries the previous stage's parameters on and anneals from the previous β.
//! Optionally the list is walked back down (reverse annealing: from the largest β to the
//! smaller ones ≥ 1, carried), and a plain autoencoder (z = μ(x), no KL term) is trained as a
//! baseline. Every epoch draws its shuffle and its noise from named streams of the seed, so a
//! resumed run repeats the same numbers.

use boltzflow_core::{Error, RandomStreams, Result};
use boltzflow_nn::{Adam, AdamConfig};
use rand::seq::SliceRandom;
use rand_distr::{Distribution, StandardNormal};

use super::config::VaeTrainConfig;
use super::model::{Vae, VaeCache, VaeLoss};

/// How a stage starts and what it optimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageKind {
    /// On the way up the β list.
    Forward,
    /// Reverse annealing, on the way back down.
    Reverse,
    /// A plain autoencoder: z = μ(x), loss = reconstruction only.
    Autoencoder,
}

impl StageKind {
    /// The name in `metrics.csv`.
    pub fn name(self) -> &'static str {
        match self {
            StageKind::Forward => "forward",
            StageKind::Reverse => "reverse",
            StageKind::Autoencoder => "autoencoder",
        }
    }
}

/// One stage of the protocol.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// The target β.
    pub beta: f64,
    /// β at the start of the annealing.
    pub start_beta: f64,
    /// Whether the stage starts from fresh parameters (else from the previous stage's).
    pub fresh: bool,
    /// The kind.
    pub kind: StageKind,
}

impl Stage {
    /// A label for file names and logs: `beta2`, `beta2-reverse`, `autoencoder`.
    pub fn label(&self) -> String {
        match self.kind {
            StageKind::Forward => format!("beta{}", self.beta),
            StageKind::Reverse => format!("beta{}-reverse", self.beta),
            StageKind::Autoencoder => "autoencoder".into(),
        }
    }
}

/// The stages of a run: `betas` in the order given, then (with `reverse`) back down from the
/// largest through the smaller β ≥ 1, then (with `autoencoder`) the autoencoder baseline.
pub fn stages(betas: &[f64], reverse: bool, autoencoder: bool) -> Vec<Stage> {
    let mut out: Vec<Stage> = Vec::new();
    let mut prev: Option<f64> = None;
    for &beta in betas {
        let carried = beta > 1.0 && prev.is_some_and(|p| p > 0.0);
        out.push(Stage {
            beta,
            start_beta: if carried { prev.unwrap_or(0.0) } else { 0.0 },
            fresh: !carried,
            kind: StageKind::Forward,
        });
        prev = Some(beta);
    }
    if reverse && let Some(top) = betas.iter().copied().reduce(f64::max) {
        let mut down: Vec<f64> = betas
            .iter()
            .copied()
            .filter(|&b| b >= 1.0 && b < top)
            .collect();
        down.sort_by(|a, b| b.total_cmp(a));
        down.dedup();
        // The walk starts from the stage of the largest β, which must be the previous one.
        if prev != Some(top) {
            out.push(Stage {
                beta: top,
                start_beta: prev.unwrap_or(0.0),
                fresh: prev.is_none_or(|p| p == 0.0),
                kind: StageKind::Forward,
            });
        }
        let mut from = top;
        for beta in down {
            out.push(Stage {
                beta,
                start_beta: from,
                fresh: false,
                kind: StageKind::Reverse,
            });
            from = beta;
        }
    }
    if autoencoder {
        out.push(Stage {
            beta: 0.0,
            start_beta: 0.0,
            fresh: true,
            kind: StageKind::Autoencoder,
        });
    }
    out
}

/// β at optimiser step `step` (0-based, counted from the start of the stage) of a stage with
/// `anneal_steps` annealing steps: linear from the start β to the target, reached at the end.
pub fn beta_at(stage: &Stage, step: usize, anneal_steps: usize) -> f64 {
    if anneal_steps == 0 || step + 1 >= anneal_steps {
        return stage.beta;
    }
    let t = (step + 1) as f64 / anneal_steps as f64;
    stage.start_beta + (stage.beta - stage.start_beta) * t
}

/// Means over an epoch's steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochStats {
    /// Mean loss terms over the epoch's steps (at the β of each step).
    pub loss: VaeLoss,
    /// β at the last step.
    pub beta: f64,
    /// Optimiser steps taken.
    pub steps: usize,
}

/// Buffers reused between epochs.
#[derive(Debug, Default)]
pub struct EpochWorkspace {
    chunks: Vec<VaeCache<f32>>,
    batch: Vec<f32>,
    eps: Vec<f32>,
    grads: Vec<f32>,
    order: Vec<usize>,
}

/// Trains one epoch of stage number `stage_index` over `data` `[n, d]`: a shuffle of the rows
/// drawn from the stream `vae.stage{s}.epoch{e}` of `seed`, then full batches of
/// `cfg.batch_size` (the last partial batch is dropped, as in the paper's data loaders).
///
/// # Errors
/// [`Error::NonFinite`] naming the stage, epoch and step if a loss or gradient is not finite
/// (the parameters are left as they were before that step).
#[allow(clippy::too_many_arguments)]
pub fn train_epoch(
    vae: &Vae,
    params: &mut [f32],
    adam: &mut Adam<f32>,
    data: &[f32],
    stage: &Stage,
    stage_index: usize,
    epoch: usize,
    cfg: &VaeTrainConfig,
    seed: u64,
    ws: &mut EpochWorkspace,
) -> Result<EpochStats> {
    let (d, k) = (vae.dim(), vae.latent_dim());
    let n = data.len() / d;
    let batch = cfg.batch_size.min(n).max(1);
    let per_epoch = (n / batch).max(1);
    let anneal = cfg.anneal_epochs * per_epoch;
    let mut rng = RandomStreams::new(seed).stream(&format!("vae.stage{stage_index}.epoch{epoch}"));
    ws.order.clear();
    ws.order.extend(0..n);
    ws.order.shuffle(&mut rng);
    let adam_cfg = AdamConfig::default();
    let (mut recon, mut kl, mut total) = (0.0, 0.0, 0.0);
    let mut beta = stage.beta;
    for b in 0..per_epoch {
        let step = epoch * per_epoch + b;
        beta = if stage.kind == StageKind::Autoencoder {
            0.0
        } else {
            beta_at(stage, step, anneal)
        };
        ws.batch.clear();
        for &i in &ws.order[b * batch..(b + 1) * batch] {
            ws.batch.extend_from_slice(&data[i * d..(i + 1) * d]);
        }
        ws.eps.clear();
        if stage.kind == StageKind::Autoencoder {
            ws.eps.resize(batch * k, 0.0);
        } else {
            ws.eps
                .extend((0..batch * k).map(|_| -> f32 { StandardNormal.sample(&mut rng) }));
        }
        ws.grads.clear();
        ws.grads.resize(params.len(), 0.0);
        let loss = vae.batch_loss_and_gradient(
            params,
            &mut ws.grads,
            &ws.batch,
            &ws.eps,
            batch,
            beta,
            cfg.chunk_rows,
            &mut ws.chunks,
        );
        let bad_grad = ws.grads.iter().position(|g| !g.is_finite());
        if !loss.total.is_finite() || bad_grad.is_some() {
            return Err(Error::NonFinite {
                what: if loss.total.is_finite() {
                    "VAE loss gradient".into()
                } else {
                    "VAE loss".into()
                },
                location: format!(
                    "stage {} ({}), epoch {epoch}, step {b}; lower train.lr or check the data",
                    stage_index,
                    stage.label()
                ),
                value: if loss.total.is_finite() {
                    bad_grad.map_or(f64::NAN, |i| f64::from(ws.grads[i]))
                } else {
                    loss.total
                },
            });
        }
        adam.step(&adam_cfg, cfg.lr, params, &ws.grads);
        recon += loss.recon;
        kl += loss.kl;
        total += loss.total;
    }
    let s = per_epoch as f64;
    Ok(EpochStats {
        loss: VaeLoss {
            recon: recon / s,
            kl: kl / s,
            total: total / s,
        },
        beta,
        steps: per_epoch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_carries_large_betas_and_refreshes_small_ones() {
        let s = stages(&[0.0, 1.0, 2.0, 5.0, 10.0], true, true);
        let got: Vec<(f64, f64, bool, StageKind)> = s
            .iter()
            .map(|s| (s.beta, s.start_beta, s.fresh, s.kind))
            .collect();
        use StageKind::*;
        assert_eq!(
            got,
            vec![
                (0.0, 0.0, true, Forward),
                (1.0, 0.0, true, Forward),
                (2.0, 1.0, false, Forward),
                (5.0, 2.0, false, Forward),
                (10.0, 5.0, false, Forward),
                (5.0, 10.0, false, Reverse),
                (2.0, 5.0, false, Reverse),
                (1.0, 2.0, false, Reverse),
                (0.0, 0.0, true, Autoencoder),
            ]
        );
        // β = 2 right after β = 0 starts afresh from 0.
        let s = stages(&[0.0, 2.0], false, false);
        assert!(s[1].fresh && s[1].start_beta == 0.0);
        // Linear annealing reaches the target at the last annealing step.
        let st = Stage {
            beta: 5.0,
            start_beta: 1.0,
            fresh: false,
            kind: Forward,
        };
        assert_eq!(beta_at(&st, 0, 4), 2.0);
        assert_eq!(beta_at(&st, 3, 4), 5.0);
        assert_eq!(beta_at(&st, 100, 4), 5.0);
        assert_eq!(beta_at(&st, 0, 0), 5.0);
    }
}
