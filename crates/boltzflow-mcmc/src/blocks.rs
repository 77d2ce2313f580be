//! Splitting the chains of a [`SamplerState`] into blocks processed in parallel.

use boltzflow_core::{ChainRng, MoveStats, Result, SamplerState};
use rayon::prelude::*;

/// The rows of one block of chains.
pub(crate) struct Block<'a> {
    /// Index of the block's first chain.
    pub first_chain: usize,
    /// Positions `[b, dim]`, row-major.
    pub x: &'a mut [f64],
    /// Energies `[b]`.
    pub e: &'a mut [f64],
    /// Forces `[b, dim]` if the state keeps them.
    pub f: Option<&'a mut [f64]>,
    /// Velocities `[b, dim]` if the state keeps them.
    pub v: Option<&'a mut [f64]>,
    /// One generator per chain.
    pub rngs: &'a mut [ChainRng],
}

/// Runs `work` on blocks of `rows` chains in parallel and sums the statistics. The first error
/// (lowest block) is returned.
pub(crate) fn par_blocks(
    state: &mut SamplerState,
    rows: usize,
    work: impl Fn(Block<'_>) -> Result<MoveStats> + Sync + Send,
) -> Result<MoveStats> {
    let dim = state.dim();
    let rows = rows.max(1);
    let x = state
        .positions
        .as_slice_mut()
        .expect("positions are standard layout");
    let e = state
        .energies
        .as_slice_mut()
        .expect("energies are contiguous");
    let mut fs: Vec<Option<&mut [f64]>> = match state.forces.as_mut() {
        Some(f) => f
            .as_slice_mut()
            .expect("standard layout")
            .chunks_mut(rows * dim)
            .map(Some)
            .collect(),
        None => Vec::new(),
    };
    let mut vs: Vec<Option<&mut [f64]>> = match state.velocities.as_mut() {
        Some(v) => v
            .as_slice_mut()
            .expect("standard layout")
            .chunks_mut(rows * dim)
            .map(Some)
            .collect(),
        None => Vec::new(),
    };
    let n_blocks = e.len().div_ceil(rows);
    fs.resize_with(n_blocks, || None);
    vs.resize_with(n_blocks, || None);
    let blocks: Vec<Block<'_>> = x
        .chunks_mut(rows * dim)
        .zip(e.chunks_mut(rows))
        .zip(state.rngs.chunks_mut(rows))
        .zip(fs.into_iter().zip(vs))
        .enumerate()
        .map(|(k, (((x, e), rngs), (f, v)))| Block {
            first_chain: k * rows,
            x,
            e,
            f,
            v,
            rngs,
        })
        .collect();
    let stats: Vec<MoveStats> = blocks.into_par_iter().map(&work).collect::<Result<_>>()?;
    let mut total = MoveStats::default();
    for s in stats {
        total += s;
    }
    Ok(total)
}
