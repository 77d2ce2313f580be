//! Molecular structures: PDB reading (through `pdbtbx`), multi-model PDB and XYZ trajectory
//! writing.
//!
//! Positions in boltzflow are in nm, flattened per configuration as `[x₀, y₀, z₀, x₁, …]`
//! (`[3·n_atoms]`); PDB and XYZ files are in Å and are converted on the way in and out.

use std::collections::HashMap;
use std::path::Path;

use boltzflow_core::{Error, Result};
use ndarray::{Array1, ArrayView2};
use pdbtbx::{
    ContainsAtomConformer, ContainsAtomConformerResidue, ContainsAtomConformerResidueChain,
};

/// Å per nm.
const ANGSTROM_PER_NM: f64 = 10.0;

/// One atom of a topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtomInfo {
    /// Atom name (`CA`, `HB1`, ...).
    pub name: String,
    /// Element symbol (`C`, `H`, ...); empty if the file gives none.
    pub element: String,
    /// Residue name (`ALA`).
    pub residue_name: String,
    /// Residue sequence number as written.
    pub residue_number: isize,
    /// Chain identifier.
    pub chain: String,
}

/// Atoms, residues and bonds of a molecule, with the PDB it came from as a template for writing.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Atoms in file order.
    pub atoms: Vec<AtomInfo>,
    /// Bonds from CONECT records, as atom indices `[i, j]` with i < j (may be empty: standard
    /// residues are often written without them).
    pub bonds: Vec<[usize; 2]>,
    template: pdbtbx::PDB,
}

/// A structure read from a PDB file.
#[derive(Debug, Clone)]
pub struct PdbStructure {
    /// Atoms and bonds.
    pub topology: Topology,
    /// Positions of the first model in nm, `[3·n_atoms]`.
    pub positions: Array1<f64>,
}

impl Topology {
    /// Number of atoms.
    pub fn n_atoms(&self) -> usize {
        self.atoms.len()
    }

    /// Index of the atom `name` in the residue numbered `residue_number`, if present.
    pub fn find(&self, residue_number: isize, name: &str) -> Option<usize> {
        self.atoms
            .iter()
            .position(|a| a.residue_number == residue_number && a.name == name)
    }

    fn check_frames(&self, path: &Path, frames: &ArrayView2<f64>) -> Result<()> {
        let dim = 3 * self.n_atoms();
        if frames.ncols() != dim {
            return Err(Error::Shape {
                what: format!("frames written to `{}`", path.display()),
                expected: format!("[n, {dim}] (3 × {} atoms)", self.n_atoms()),
                got: format!("[{}, {}]", frames.nrows(), frames.ncols()),
            });
        }
        boltzflow_core::check_finite_rows(
            &format!("frames written to `{}`", path.display()),
            *frames,
        )
    }

    /// Writes `frames` (`[n_frames, 3·n_atoms]`, nm) as a multi-model PDB file, one MODEL per
    /// frame, atomically.
    ///
    /// # Errors
    /// [`Error::Shape`] for the wrong width, [`Error::NonFinite`] for a non-finite coordinate,
    /// [`Error::InvalidParameter`] for a coordinate beyond the PDB format's ±9999.999 Å (write
    /// `.xyz` or `.npy` instead), [`Error::Io`] if the file cannot be written.
    pub fn write_pdb(&self, path: &Path, frames: ArrayView2<f64>) -> Result<()> {
        self.check_frames(path, &frames)?;
        if let Some(v) = frames
            .iter()
            .find(|v| (*v * ANGSTROM_PER_NM).abs() >= 9999.999)
        {
            return Err(Error::invalid(
                "frames",
                format!(
                    "coordinate {v} nm does not fit the PDB format's 8.3f Å columns; write `{}` as .xyz or .npy instead",
                    path.display()
                ),
            ));
        }
        let model = self
            .template
            .model(0)
            .expect("a topology holds one model")
            .clone();
        let mut pdb = self.template.clone();
        pdb.remove_models_by(|_| true);
        for (i, frame) in frames.outer_iter().enumerate() {
            let mut m = model.clone();
            m.set_serial_number(i + 1);
            for (atom, xyz) in m.atoms_mut().zip(frame.exact_chunks(3)) {
                atom.set_pos((
                    xyz[0] * ANGSTROM_PER_NM,
                    xyz[1] * ANGSTROM_PER_NM,
                    xyz[2] * ANGSTROM_PER_NM,
                ))
                .expect("finite, checked above");
            }
            pdb.add_model(m);
        }
        let mut buf = Vec::new();
        pdbtbx::save_pdb_raw(
            &pdb,
            std::io::BufWriter::new(&mut buf),
            pdbtbx::StrictnessLevel::Loose,
        );
        crate::write_atomic(path, |w| w.write_all(&buf))
    }

    /// Writes `frames` (`[n_frames, 3·n_atoms]`, nm) as an XYZ trajectory (element symbols,
    /// Å), one block per frame with `comments[i]` (or the frame number) on its comment line.
    ///
    /// XYZ is three lines of format; it is written directly rather than through a trajectory
    /// library (chemfiles needs a C++ build, see DECISIONS D2).
    ///
    /// # Errors
    /// As [`Topology::write_pdb`], without the size limit.
    pub fn write_xyz(
        &self,
        path: &Path,
        frames: ArrayView2<f64>,
        comments: Option<&[String]>,
    ) -> Result<()> {
        self.check_frames(path, &frames)?;
        crate::write_atomic(path, |w| {
            for (i, frame) in frames.outer_iter().enumerate() {
                writeln!(w, "{}", self.n_atoms())?;
                match comments.and_then(|c| c.get(i)) {
                    Some(c) => writeln!(w, "{}", c.replace('\n', " "))?,
                    None => writeln!(w, "frame {i}")?,
                }
                for (a, xyz) in self.atoms.iter().zip(frame.exact_chunks(3)) {
                    let symbol = if a.element.is_empty() {
                        &a.name
                    } else {
                        &a.element
                    };
                    writeln!(
                        w,
                        "{symbol:<2} {:>12.6} {:>12.6} {:>12.6}",
                        xyz[0] * ANGSTROM_PER_NM,
                        xyz[1] * ANGSTROM_PER_NM,
                        xyz[2] * ANGSTROM_PER_NM
                    )?;
                }
            }
            Ok(())
        })
    }

    /// Writes frames as PDB or XYZ by the extension of `path` (`.pdb` or `.xyz`).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for another extension; otherwise as the writers.
    pub fn write_trajectory(&self, path: &Path, frames: ArrayView2<f64>) -> Result<()> {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("pdb") => self.write_pdb(path, frames),
            Some(e) if e.eq_ignore_ascii_case("xyz") => self.write_xyz(path, frames, None),
            _ => Err(Error::invalid(
                "trajectory",
                format!(
                    "`{}` must end in .pdb (multi-model PDB) or .xyz",
                    path.display()
                ),
            )),
        }
    }
}

/// Bonds from CONECT records (pdbtbx reads only disulfide bonds): columns 7–11 hold an atom's
/// serial number and 12–31 up to four bonded serial numbers.
fn conect_bonds(
    text: &str,
    serials: &HashMap<usize, usize>,
) -> std::result::Result<Vec<[usize; 2]>, String> {
    let mut bonds = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        if !line.starts_with("CONECT") {
            continue;
        }
        let field = |a: usize, b: usize| line.get(a..b.min(line.len())).map(str::trim);
        let mut atoms = Vec::new();
        for (a, b) in [(6, 11), (11, 16), (16, 21), (21, 26), (26, 31)] {
            match field(a, b) {
                Some("") | None => {}
                Some(f) => {
                    let serial: usize = f.parse().map_err(|_| {
                        format!(
                            "CONECT record at line {}: `{f}` is not an atom serial number",
                            line_no + 1
                        )
                    })?;
                    let index = *serials.get(&serial).ok_or_else(|| {
                        format!("CONECT record at line {} names atom {serial}, which the file does not hold", line_no + 1)
                    })?;
                    atoms.push(index);
                }
            }
        }
        if let Some((&i, rest)) = atoms.split_first() {
            bonds.extend(
                rest.iter()
                    .filter(|&&j| j != i)
                    .map(|&j| [i.min(j), i.max(j)]),
            );
        }
    }
    Ok(bonds)
}

/// Reads the first model of a PDB file: topology (atoms, residues, elements, CONECT bonds) and
/// positions in nm.
///
/// # Errors
/// [`Error::Io`] if the file is missing; [`Error::BadFile`] with pdbtbx's first breaking error
/// (record and line) if it cannot be parsed, or if it holds no atoms.
pub fn read_pdb(path: &Path) -> Result<PdbStructure> {
    let bad = |reason: String| Error::BadFile {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        action: "cannot read",
        path: path.to_path_buf(),
        source: e,
    })?;
    // PDB files are ASCII. pdbtbx 0.12 panics (`expect`) on atom and residue names with other
    // characters instead of returning an error (found by tests/fuzz_inputs.rs), so they are
    // refused here, with the line.
    if let Some((i, line)) = text.lines().enumerate().find(|(_, l)| {
        l.chars()
            .any(|c| !(c == ' ' || c == '\t' || c.is_ascii_graphic()))
    }) {
        let col = line
            .chars()
            .position(|c| !(c == ' ' || c == '\t' || c.is_ascii_graphic()))
            .unwrap_or(0);
        return Err(bad(format!(
            "line {}, column {}: a character that is not printable ASCII; PDB records are ASCII text",
            i + 1,
            col + 1
        )));
    }
    let mut options = pdbtbx::ReadOptions::new();
    options
        .set_format(pdbtbx::Format::Pdb)
        .set_level(pdbtbx::StrictnessLevel::Loose)
        .set_only_first_model(true);
    // A backstop for any other panic inside pdbtbx on malformed input: an error, not a crash.
    let parsed =
        std::panic::catch_unwind(|| options.read_raw(std::io::BufReader::new(text.as_bytes())))
            .map_err(|_| {
                bad("not a readable PDB file: the PDB parser (pdbtbx) failed on it".into())
            })?;
    let (pdb, _warnings) = parsed.map_err(|errors| {
        let first = errors
            .iter()
            .find(|e| e.fails(pdbtbx::StrictnessLevel::Loose))
            .or(errors.first())
            .map_or_else(|| "unknown error".to_string(), |e| e.to_string());
        bad(format!("not a readable PDB file: {}", first.trim()))
    })?;
    let mut atoms = Vec::new();
    let mut positions = Vec::new();
    let mut serials = HashMap::new();
    for h in pdb.atoms_with_hierarchy() {
        let (atom, residue, chain) = (h.atom(), h.residue(), h.chain());
        serials.entry(atom.serial_number()).or_insert(atoms.len());
        atoms.push(AtomInfo {
            name: atom.name().to_string(),
            element: atom
                .element()
                .map_or_else(String::new, |e| e.symbol().to_string()),
            residue_name: residue.name().unwrap_or("").to_string(),
            residue_number: residue.id().0,
            chain: chain.id().to_string(),
        });
        let (x, y, z) = atom.pos();
        positions.extend([x, y, z].map(|v| v / ANGSTROM_PER_NM));
    }
    if atoms.is_empty() {
        return Err(bad("no ATOM or HETATM records".into()));
    }
    let mut bonds = conect_bonds(&text, &serials).map_err(bad)?;
    bonds.sort_unstable();
    bonds.dedup();
    Ok(PdbStructure {
        topology: Topology {
            atoms,
            bonds,
            template: pdb,
        },
        positions: Array1::from(positions),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WATER: &str = "\
HETATM    1  O   HOH A   1       0.000   0.000   0.000  1.00  0.00           O
HETATM    2  H1  HOH A   1       0.957   0.000   0.000  1.00  0.00           H
HETATM    3  H2  HOH A   1      -0.240   0.927   0.000  1.00  0.00           H
CONECT    1    2    3
END
";

    #[test]
    fn reads_writes_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.pdb");
        std::fs::write(&p, WATER).unwrap();
        let s = read_pdb(&p).unwrap();
        assert_eq!(s.topology.n_atoms(), 3);
        assert_eq!(s.topology.atoms[1].name, "H1");
        assert_eq!(s.topology.atoms[0].element, "O");
        assert_eq!(s.topology.atoms[0].residue_name, "HOH");
        assert_eq!(s.topology.bonds, vec![[0, 1], [0, 2]]);
        assert!((s.positions[3] - 0.0957).abs() < 1e-12);
        let mut frames = ndarray::Array2::zeros((2, 9));
        frames.row_mut(0).assign(&s.positions);
        frames.row_mut(1).assign(&(&s.positions * 2.0));
        let out = dir.path().join("t.pdb");
        s.topology.write_trajectory(&out, frames.view()).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text.matches("MODEL").count(), 2, "{text}");
        let back = read_pdb(&out).unwrap();
        assert!((back.positions[3] - 0.0957).abs() < 1e-12);
        let xyz = dir.path().join("t.xyz");
        s.topology.write_trajectory(&xyz, frames.view()).unwrap();
        let text = std::fs::read_to_string(&xyz).unwrap();
        assert_eq!(text.lines().count(), 10);
        assert!(text.lines().nth(8).unwrap().starts_with("H "), "{text}");
        let m = s
            .topology
            .write_trajectory(&dir.path().join("t.dcd"), frames.view())
            .unwrap_err()
            .to_string();
        assert!(m.contains(".pdb") && m.contains(".xyz"), "{m}");
        let m = s
            .topology
            .write_pdb(&out, (&frames * 1e4).view())
            .unwrap_err()
            .to_string();
        assert!(m.contains(".xyz or .npy"), "{m}");
    }

    #[test]
    fn garbage_is_a_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.pdb");
        std::fs::write(&p, "HELLO\n").unwrap();
        let m = read_pdb(&p).unwrap_err().to_string();
        assert!(m.contains("g.pdb"), "{m}");
        let m = read_pdb(&dir.path().join("missing.pdb"))
            .unwrap_err()
            .to_string();
        assert!(m.contains("cannot read"), "{m}");
    }
}

#[cfg(test)]
mod fuzz_regressions {
    use super::*;

    /// tests/fuzz_inputs.rs: a non-ASCII atom name made pdbtbx panic ("Invalid characters in
    /// atom creation"); a control character in a residue name, "in Conformer creation".
    #[test]
    fn non_ascii_or_control_characters_in_a_record_are_an_error_with_the_line() {
        let d = tempfile::tempdir().unwrap();
        for (name, record) in [
            (
                "atom",
                "ATOM      1  é   ALA A   1       0.000   0.000   0.000  1.00  0.00           C\n",
            ),
            (
                "residue",
                "ATOM      1  CA  A\u{0}A A   1       0.000   0.000   0.000  1.00  0.00           C\n",
            ),
        ] {
            let p = d.path().join(format!("{name}.pdb"));
            std::fs::write(&p, format!("REMARK test\n{record}END\n")).unwrap();
            let e = read_pdb(&p).unwrap_err().to_string();
            assert!(e.contains("line 2") && e.contains("ASCII"), "{e}");
        }
    }
}
