//! Coupling splits of a particle system that put neighbours on opposite sides.
//!
//! A coupling layer transforms one half of the coordinates conditioned on the other, so two
//! coordinates in the transformed half are conditionally independent in that layer: two
//! neighbouring particles in the same half cannot make room for each other. For a particle
//! system (the dimer bath) the best a single coupling can do is to transform particles whose
//! neighbours are all held fixed, as checkerboard masks do for lattice field theories (Albergo,
//! Kanwar & Shanahan 2019). Here the particles sit at the system's reference arrangement, not
//! on a lattice, so each coupling pair's halves are a balanced maximum cut of the neighbour
//! graph: edges weigh exp(−(r/r_nn)²) with r_nn the median nearest-neighbour distance, a
//! greedy start grown from a random particle and a local search by swaps find a partition that
//! cuts the near pairs, and a pair already cut by earlier couplings weighs a quarter as much for the next
//! ones, so that across the stack every close pair gets conditioned on each other (the
//! diagonals that a square checkerboard never cuts included). A particle's coordinates stay
//! together.
//!
//! Written by hand: a few dozen particles, where a max-cut heuristic is some thirty lines and
//! no graph crate offers a balanced one.

use boltzflow_core::RandomStreams;
use ndarray::ArrayView2;
use rand::RngExt;

/// Weight of a pair already cut by an earlier coupling pair, per time it was cut.
const CUT_DISCOUNT: f64 = 0.25;

/// The particle halves `(first, second)` (sorted particle indices, `first` of size n/2) of
/// `pairs` coupling pairs, for particles at `positions` `[n, spatial_dim]`. Deterministic: the
/// random starts come from fixed streams, so a checkpoint always rebuilds the same flow.
///
/// # Panics
/// With fewer than two particles (callers check).
pub fn neighbour_halves(positions: ArrayView2<f64>, pairs: usize) -> Vec<(Vec<usize>, Vec<usize>)> {
    let n = positions.nrows();
    assert!(n >= 2, "neighbour_halves needs at least two particles");
    let dist = |i: usize, j: usize| {
        positions
            .row(i)
            .iter()
            .zip(positions.row(j))
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt()
    };
    let mut nearest: Vec<f64> = (0..n)
        .map(|i| {
            (0..n)
                .filter(|&j| j != i)
                .map(|j| dist(i, j))
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    nearest.sort_by(f64::total_cmp);
    let r_nn = nearest[n / 2].max(f64::MIN_POSITIVE);
    let mut weight: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    if i == j {
                        0.0
                    } else {
                        (-(dist(i, j) / r_nn).powi(2)).exp()
                    }
                })
                .collect()
        })
        .collect();
    (0..pairs)
        .map(|pair| {
            let mut rng = RandomStreams::new(0).stream(&format!("flow.split.neighbours.{pair}"));
            let side = balanced_max_cut(&weight, &mut rng);
            for i in 0..n {
                for j in 0..n {
                    if side[i] != side[j] {
                        weight[i][j] *= CUT_DISCOUNT;
                    }
                }
            }
            let first: Vec<usize> = (0..n).filter(|&i| !side[i]).collect();
            let second: Vec<usize> = (0..n).filter(|&i| side[i]).collect();
            (first, second)
        })
        .collect()
}

/// Starts of the local search; the best cut is kept.
const STARTS: usize = 8;

/// A balanced partition (`false` for ⌊n/2⌋ particles) that locally maximises the weight of
/// the pairs it cuts. Each of [`STARTS`] starts grows the partition outwards from a random
/// particle, putting each next-nearest particle on the side its placed neighbours pull it to
/// least (a checkerboard on a lattice); then swaps of two particles on opposite sides are
/// made while one gains. The heaviest cut wins.
fn balanced_max_cut(weight: &[Vec<f64>], rng: &mut impl rand::Rng) -> Vec<bool> {
    let n = weight.len();
    let cut = |side: &[bool]| -> f64 {
        (0..n)
            .flat_map(|i| (0..i).map(move |j| (i, j)))
            .filter(|&(i, j)| side[i] != side[j])
            .map(|(i, j)| weight[i][j])
            .sum()
    };
    let mut best: Option<(f64, Vec<bool>)> = None;
    for _ in 0..STARTS {
        let side = improve_by_swaps(weight, grow_from(weight, rng.random_range(0..n)));
        let c = cut(&side);
        if best.as_ref().is_none_or(|(b, _)| c > *b) {
            best = Some((c, side));
        }
    }
    best.map(|(_, side)| side).unwrap_or_default()
}

/// The greedy start of [`balanced_max_cut`]: particles by decreasing closeness to `root`.
fn grow_from(weight: &[Vec<f64>], root: usize) -> Vec<bool> {
    let n = weight.len();
    let mut order: Vec<usize> = (0..n).filter(|&i| i != root).collect();
    order.sort_by(|&a, &b| weight[root][b].total_cmp(&weight[root][a]).then(a.cmp(&b)));
    let mut side = vec![false; n];
    let mut placed = vec![false; n];
    let capacity = [n / 2, n - n / 2];
    let mut count = [1, 0];
    placed[root] = true;
    for v in order {
        let pull = |s: bool| -> f64 {
            (0..n)
                .filter(|&j| placed[j] && side[j] == s)
                .map(|j| weight[v][j])
                .sum()
        };
        let mut s = pull(false) > pull(true);
        if count[usize::from(s)] == capacity[usize::from(s)] {
            s = !s;
        }
        side[v] = s;
        placed[v] = true;
        count[usize::from(s)] += 1;
    }
    side
}

/// Swaps of two particles on opposite sides, the most gaining first, while one gains.
fn improve_by_swaps(weight: &[Vec<f64>], mut side: Vec<bool>) -> Vec<bool> {
    let n = weight.len();
    // gain[i]: change of the cut weight if i alone changed side.
    let gain = |side: &[bool], i: usize| -> f64 {
        (0..n)
            .map(|j| {
                if side[i] == side[j] {
                    weight[i][j]
                } else {
                    -weight[i][j]
                }
            })
            .sum()
    };
    loop {
        let mut best = (1e-12, None);
        for a in (0..n).filter(|&a| !side[a]) {
            let ga = gain(&side, a);
            for b in (0..n).filter(|&b| side[b]) {
                // Swapping a and b: both move, and their own pair stays cut.
                let g = ga + gain(&side, b) - 2.0 * weight[a][b];
                if g > best.0 {
                    best = (g, Some((a, b)));
                }
            }
        }
        match best.1 {
            Some((a, b)) => {
                side[a] = true;
                side[b] = false;
            }
            None => return side,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn square_lattice(side: usize) -> Array2<f64> {
        Array2::from_shape_fn((side * side, 2), |(k, c)| {
            if c == 0 {
                (k % side) as f64
            } else {
                (k / side) as f64
            }
        })
    }

    /// On a square lattice the first split is the checkerboard (every nearest-neighbour pair
    /// cut), the splits are balanced partitions, and by the fourth pair every diagonal pair has
    /// been cut at least once.
    #[test]
    fn a_square_lattice_splits_as_a_checkerboard_then_cuts_the_diagonals() {
        let side = 6;
        let pos = square_lattice(side);
        let splits = neighbour_halves(pos.view(), 4);
        let n = side * side;
        let colour = |split: &(Vec<usize>, Vec<usize>), i: usize| split.1.contains(&i);
        let nearest: Vec<(usize, usize)> = (0..n)
            .flat_map(|i| {
                let right = (i % side + 1 < side).then_some((i, i + 1));
                let up = (i / side + 1 < side).then_some((i, i + side));
                right.into_iter().chain(up)
            })
            .collect();
        let diagonal: Vec<(usize, usize)> = (0..n)
            .filter(|i| i % side + 1 < side && i / side + 1 < side)
            .flat_map(|i| [(i, i + side + 1), (i + 1, i + side)])
            .collect();
        for s in &splits {
            assert_eq!((s.0.len(), s.1.len()), (n / 2, n / 2));
            let mut all: Vec<usize> = s.0.iter().chain(&s.1).copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..n).collect::<Vec<_>>());
        }
        assert!(
            nearest
                .iter()
                .all(|&(i, j)| colour(&splits[0], i) != colour(&splits[0], j)),
            "the first split is not a checkerboard"
        );
        for &(i, j) in &diagonal {
            assert!(
                splits.iter().any(|s| colour(s, i) != colour(s, j)),
                "diagonal pair ({i}, {j}) is never cut"
            );
        }
        // Deterministic.
        assert_eq!(neighbour_halves(pos.view(), 4), splits);
    }
}
