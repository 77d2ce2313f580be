//! Z-matrices: the reference atoms of each atom's internal coordinates.

use std::collections::VecDeque;

use boltzflow_core::{Error, Result};

/// The reference atoms of every atom's internal coordinates.
///
/// `roots = [a₀, a₁, a₂]` are placed first: a₀ by its position, a₁ by its distance to a₀ and
/// the polar and azimuthal angles of a₁ − a₀, and a₂ by a bond to one root, the angle at that
/// root and its rotation about the root bond (the six external degrees of freedom with a₀'s
/// position). Every further row `[i, j, k, l]` places atom i by the bond i–j, the angle i–j–k and
/// the torsion i–j–k–l, with j, k, l placed before i.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZMatrix {
    n_atoms: usize,
    roots: [usize; 3],
    /// The bond partner of a₂ (a₀ or a₁).
    root_bond: usize,
    rows: Vec<[usize; 4]>,
}

impl ZMatrix {
    /// A given Z-matrix: roots `[a₀, a₁, a₂]` (a₂ bonded to a₁) and rows `[i, j, k, l]`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] unless every atom appears exactly once (as a root or as the
    /// first entry of a row), each row's references are distinct, differ from the atom and are
    /// placed before it.
    pub fn new(n_atoms: usize, roots: [usize; 3], rows: Vec<[usize; 4]>) -> Result<Self> {
        let bad = |reason: String| Error::invalid("z-matrix", reason);
        if n_atoms < 3 {
            return Err(bad(format!("needs at least 3 atoms, got {n_atoms}")));
        }
        let mut placed = vec![false; n_atoms];
        for &r in &roots {
            if r >= n_atoms || placed[r] {
                return Err(bad(format!(
                    "root atoms {roots:?} must be distinct atoms below {n_atoms}"
                )));
            }
            placed[r] = true;
        }
        for (row_no, row) in rows.iter().enumerate() {
            let [i, j, k, l] = *row;
            if i >= n_atoms || placed[i] {
                return Err(bad(format!(
                    "row {row_no} places atom {i}, which is out of range or placed already"
                )));
            }
            for r in [j, k, l] {
                if r >= n_atoms || !placed[r] {
                    return Err(bad(format!(
                        "row {row_no} ({row:?}) refers to atom {r} before it is placed"
                    )));
                }
            }
            if j == k || j == l || k == l {
                return Err(bad(format!(
                    "row {row_no} ({row:?}) needs three distinct reference atoms"
                )));
            }
            placed[i] = true;
        }
        if let Some(missing) = placed.iter().position(|p| !p) {
            return Err(bad(format!("atom {missing} is never placed")));
        }
        Ok(Self {
            n_atoms,
            roots,
            root_bond: roots[1],
            rows,
        })
    }

    /// A Z-matrix from a connected bond graph (`bonds` as atom pairs), by breadth-first search
    /// from the root triangle.
    ///
    /// The central root a₁ is the heavy atom with the most heavy neighbours (ties: the lowest
    /// index), a₀ and a₂ two of its neighbours (heavy first). Atoms are then placed in
    /// breadth-first order, heavy atoms before hydrogens at each step: atom i bonded to j uses
    /// the angle i–j–k with k the atom j was placed from (or another placed neighbour of j), and
    /// the torsion i–j–k–l with l a substituent of j placed before i from the same j (a
    /// *relative* torsion, as bgflow's and FAB's alanine-dipeptide Z-matrices use: nearly
    /// constant, so a methyl's three hydrogens are one rotation and two fixed offsets), else the
    /// atom k was placed from (or another placed neighbour of k or j). So hydrogens get torsions
    /// over heavy atoms where the chemistry allows.
    ///
    /// `heavy[i]` marks non-hydrogen atoms (for example mass > 1.5 amu).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for fewer than 3 atoms, a bond out of range, a graph that is
    /// not connected (several molecules: give a Z-matrix) or without an atom with two
    /// neighbours.
    pub fn from_bonds(n_atoms: usize, bonds: &[[usize; 2]], heavy: &[bool]) -> Result<Self> {
        let bad = |reason: String| Error::invalid("bonds", reason);
        if n_atoms < 3 {
            return Err(bad(format!(
                "internal coordinates need at least 3 atoms, got {n_atoms}"
            )));
        }
        if heavy.len() != n_atoms {
            return Err(Error::shape("heavy-atom flags", n_atoms, heavy.len()));
        }
        let mut adj = vec![Vec::new(); n_atoms];
        for &[a, b] in bonds {
            if a >= n_atoms || b >= n_atoms || a == b {
                return Err(bad(format!(
                    "bond [{a}, {b}] is not a pair of distinct atoms below {n_atoms}"
                )));
            }
            if !adj[a].contains(&b) {
                adj[a].push(b);
                adj[b].push(a);
            }
        }
        // Heavy neighbours first, then by index: the order atoms are placed in.
        for list in &mut adj {
            list.sort_by_key(|&v| (!heavy[v], v));
        }
        let heavy_degree = |v: usize| adj[v].iter().filter(|&&w| heavy[w]).count();
        let a1 = (0..n_atoms)
            .filter(|&v| adj[v].len() >= 2)
            .max_by_key(|&v| {
                (
                    heavy[v],
                    heavy_degree(v),
                    adj[v].len(),
                    std::cmp::Reverse(v),
                )
            })
            .ok_or_else(|| bad("no atom has two bonded neighbours; give a Z-matrix".into()))?;
        let (a0, a2) = (adj[a1][0], adj[a1][1]);
        let mut parent = vec![usize::MAX; n_atoms];
        let mut placed = vec![false; n_atoms];
        for v in [a0, a1, a2] {
            placed[v] = true;
        }
        parent[a0] = a1;
        parent[a1] = a0;
        parent[a2] = a1;
        let mut rows = Vec::with_capacity(n_atoms - 3);
        let mut queue: VecDeque<usize> = VecDeque::from([a1, a0, a2]);
        while let Some(j) = queue.pop_front() {
            for idx in 0..adj[j].len() {
                let i = adj[j][idx];
                if placed[i] {
                    continue;
                }
                let k = if placed[parent[j]] && parent[j] != i {
                    parent[j]
                } else {
                    *adj[j]
                        .iter()
                        .find(|&&v| placed[v] && v != i)
                        .expect("a placed atom has a placed neighbour")
                };
                // A sibling already placed from j (same j and k) makes the torsion relative:
                // i–j–k–s is the fixed offset between two substituents of j (about ±120° for
                // the hydrogens of a methyl group, 180° for a carbonyl O and the next N), a
                // narrow distribution, instead of a second free rotation that must be
                // correlated with the first to within a few degrees.
                let sibling = adj[j]
                    .iter()
                    .copied()
                    .find(|&v| placed[v] && parent[v] == j && v != k && v != i);
                let l = sibling
                    .into_iter()
                    .chain([parent[k]])
                    .chain(adj[k].iter().copied())
                    .chain(adj[j].iter().copied())
                    .find(|&v| v < n_atoms && placed[v] && v != j && v != k && v != i)
                    .or_else(|| (0..n_atoms).find(|&v| placed[v] && v != j && v != k))
                    .expect("three atoms are placed");
                rows.push([i, j, k, l]);
                placed[i] = true;
                parent[i] = j;
                queue.push_back(i);
            }
        }
        if let Some(v) = placed.iter().position(|p| !p) {
            return Err(bad(format!(
                "atom {v} is not connected to atom {a1} through bonds (several molecules?); give a Z-matrix"
            )));
        }
        Ok(Self {
            n_atoms,
            roots: [a0, a1, a2],
            root_bond: a1,
            rows,
        })
    }

    /// Number of atoms.
    pub fn n_atoms(&self) -> usize {
        self.n_atoms
    }

    /// The root atoms `[a₀, a₁, a₂]`.
    pub fn roots(&self) -> [usize; 3] {
        self.roots
    }

    /// The atom a₂ is bonded to (a₁ unless given otherwise).
    pub fn root_bond(&self) -> usize {
        self.root_bond
    }

    /// The rows `[i, j, k, l]` after the roots, in placement order.
    pub fn rows(&self) -> &[[usize; 4]] {
        &self.rows
    }

    /// Per row, whether its torsion i–j–k–l is *relative*: l is bonded to j (placed from j, or
    /// j's partner among the roots), so the torsion is the nearly fixed offset between two
    /// substituents of j rather than a rotation about the j–k bond.
    pub fn relative_torsions(&self) -> Vec<bool> {
        // The atom each atom is bonded to when placed (roots: a₀ → a₁, a₁ → a₀, a₂ → its
        // root bond).
        let mut placed_from = vec![usize::MAX; self.n_atoms];
        let [a0, a1, a2] = self.roots;
        placed_from[a0] = a1;
        placed_from[a1] = a0;
        placed_from[a2] = self.root_bond;
        for &[i, j, _, _] in &self.rows {
            placed_from[i] = j;
        }
        self.rows
            .iter()
            .map(|&[_, j, k, l]| l != k && placed_from[l] == j)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn butane_like_chain_gets_a_valid_zmatrix() {
        // C0-C1-C2-C3 with one H on each end carbon.
        let bonds = [[0, 1], [1, 2], [2, 3], [0, 4], [3, 5]];
        let heavy = [true, true, true, true, false, false];
        let z = ZMatrix::from_bonds(6, &bonds, &heavy).unwrap();
        let again = ZMatrix::new(6, z.roots(), z.rows().to_vec()).unwrap();
        assert_eq!(again.rows(), z.rows());
        assert_eq!(z.rows().len(), 3);
        // Hydrogens are bonded to their carbon.
        for row in z.rows() {
            if row[0] == 4 {
                assert_eq!(row[1], 0);
            }
            if row[0] == 5 {
                assert_eq!(row[1], 3);
            }
        }
    }

    #[test]
    fn bad_graphs_and_matrices_are_errors() {
        let heavy = [true; 5];
        let m = ZMatrix::from_bonds(5, &[[0, 1], [1, 2], [3, 4]], &heavy)
            .unwrap_err()
            .to_string();
        assert!(m.contains("not connected"), "{m}");
        let m = ZMatrix::from_bonds(3, &[[0, 1], [1, 7]], &heavy[..3])
            .unwrap_err()
            .to_string();
        assert!(m.contains("[1, 7]"), "{m}");
        let m = ZMatrix::new(4, [0, 1, 2], vec![[3, 0, 0, 1]])
            .unwrap_err()
            .to_string();
        assert!(m.contains("distinct"), "{m}");
        let m = ZMatrix::new(4, [0, 1, 2], vec![]).unwrap_err().to_string();
        assert!(m.contains("atom 3 is never placed"), "{m}");
    }
}
