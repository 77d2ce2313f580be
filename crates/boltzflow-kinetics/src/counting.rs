//! Transition counting on discrete trajectories and the connectivity of the count graph.

use boltzflow_core::{Error, Result};
use ndarray::Array2;

/// Sliding-window transition counts at lag τ: every frame t < T − τ of every trajectory adds one
/// count to C[s_t, s_{t+τ}]. Dense `[n_states, n_states]`; `n_states` defaults to the largest
/// state index + 1.
///
/// # Errors
/// [`Error::InvalidParameter`] for lag 0, no trajectories, a trajectory with no more than τ
/// frames (named), or a state index ≥ `n_states`.
pub fn count_matrix(
    dtrajs: &[&[usize]],
    lagtime: usize,
    n_states: Option<usize>,
) -> Result<Array2<f64>> {
    crate::tica::check_lagtime(lagtime)?;
    if dtrajs.is_empty() {
        return Err(Error::invalid("dtrajs", "no discrete trajectories given"));
    }
    let max_state = dtrajs
        .iter()
        .flat_map(|d| d.iter())
        .copied()
        .max()
        .unwrap_or(0);
    let n = n_states.unwrap_or(max_state + 1);
    if max_state >= n {
        return Err(Error::invalid(
            "dtrajs",
            format!("state index {max_state} is not below n_states = {n}"),
        ));
    }
    for (k, d) in dtrajs.iter().enumerate() {
        if d.len() <= lagtime {
            return Err(Error::invalid(
                "lagtime",
                format!(
                    "discrete trajectory {k} has {} frames, but lag time {lagtime} needs at least {}; \
                     use a shorter lag time or drop that trajectory",
                    d.len(),
                    lagtime + 1
                ),
            ));
        }
    }
    let mut c = Array2::<f64>::zeros((n, n));
    let cs = c.as_slice_mut().expect("standard layout");
    for d in dtrajs {
        for (a, b) in d.iter().zip(&d[lagtime..]) {
            cs[a * n + b] += 1.0;
        }
    }
    Ok(c)
}

/// Strongly connected components of the directed graph with an edge i → j where C_ij > 0
/// (Tarjan 1972, iterative). Sets are sorted (states ascending within a set); the list is ordered
/// by decreasing size, then by decreasing number of counts inside, then by lowest state.
pub fn connected_sets(c: &Array2<f64>) -> Vec<Vec<usize>> {
    let n = c.nrows();
    let adj: Vec<Vec<usize>> = (0..n)
        .map(|i| (0..n).filter(|&j| j != i && c[[i, j]] > 0.0).collect())
        .collect();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut sets = Vec::new();
    let mut next = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        // explicit DFS stack of (node, next neighbour position)
        let mut dfs = vec![(root, 0usize)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut pos)) = dfs.last_mut() {
            if *pos < adj[v].len() {
                let w = adj[v][*pos];
                *pos += 1;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    dfs.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                dfs.pop();
                if let Some(&(parent, _)) = dfs.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut set = Vec::new();
                    loop {
                        let w = stack.pop().expect("v is on the stack");
                        on_stack[w] = false;
                        set.push(w);
                        if w == v {
                            break;
                        }
                    }
                    set.sort_unstable();
                    sets.push(set);
                }
            }
        }
    }
    let inside = |s: &Vec<usize>| {
        s.iter()
            .flat_map(|&i| s.iter().map(move |&j| c[[i, j]]))
            .sum::<f64>()
    };
    sets.sort_by(|a, b| {
        b.len()
            .cmp(&a.len())
            .then(inside(b).total_cmp(&inside(a)))
            .then(a[0].cmp(&b[0]))
    });
    sets
}

/// The count matrix restricted to `states` (rows and columns in that order).
pub fn submatrix(c: &Array2<f64>, states: &[usize]) -> Array2<f64> {
    Array2::from_shape_fn((states.len(), states.len()), |(a, b)| {
        c[[states[a], states[b]]]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_counts() {
        let d: &[usize] = &[0, 1, 1, 2, 0];
        let c = count_matrix(&[d], 2, None).unwrap();
        // pairs (0,1) (1,2) (1,0)
        assert_eq!(c[[0, 1]], 1.0);
        assert_eq!(c[[1, 2]], 1.0);
        assert_eq!(c[[1, 0]], 1.0);
        assert_eq!(c.sum(), 3.0);
        let e = count_matrix(&[d], 5, None).unwrap_err().to_string();
        assert!(e.contains("trajectory 0 has 5 frames"), "{e}");
    }

    #[test]
    fn strongly_connected_sets() {
        // 0 ⇄ 1 → 2 ⇄ 3, 4 isolated: {0,1} and {2,3} are separate strongly connected sets
        let d: &[usize] = &[0, 1, 0, 1, 2, 3, 2, 3, 2];
        let c = count_matrix(&[d, &[4, 4]], 1, None).unwrap();
        let sets = connected_sets(&c);
        assert_eq!(sets, vec![vec![2, 3], vec![0, 1], vec![4]]);
    }
}
