//! Mutation fuzzing of every parser that reads user input (issue 21): run and sweep
//! configurations (BG, VAE, VAN), system specs, OpenMM System XML with its PDB, PDB files,
//! `.npy` arrays (float, streamed rows and integer state trajectories), XTC / TRR / DCD
//! trajectories and coordinate specs.
//!
//! Each case takes a valid input from the corpus (the examples and data files), applies up to
//! eight random edits (bit flips, byte changes, insertions of tokens that parsers trip on,
//! deletions, duplicated or spliced ranges) and feeds the result to the parser. Nothing may
//! panic, and every error must say something. proptest shrinks a failing case to a minimal
//! input; a crash found this way becomes a named regression test below.
//!
//! `BOLTZFLOW_FUZZ_CASES` sets the cases per target (default 256, a few seconds in all); a long
//! run is `BOLTZFLOW_FUZZ_CASES=200000 cargo test --release -p boltzflow-cli --test fuzz_inputs`.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Tokens that make parsers take unusual paths: numbers at the edges of f64 and usize,
/// non-finite values, quotes, brackets, XML and TOML syntax, multi-byte characters.
const TOKENS: &[&str] = &[
    "nan",
    "inf",
    "-inf",
    "1e309",
    "-1",
    "0",
    "18446744073709551616",
    "9999999999",
    "-0.0",
    "\"",
    "'",
    "[",
    "]",
    "{",
    "}",
    "=",
    ",",
    ":",
    "<",
    ">",
    "/>",
    "</",
    "&amp;",
    "\n",
    "\0",
    "é",
    "\u{fffd}",
    "[[stage]]",
    "[sweep]",
    "model = \"van\"",
    "model = \"vae\"",
    "ATOM  ",
    "HETATM",
    "CONECT",
    "END",
    "<Force",
    "type=\"",
    "\"/>",
    "1.0e-300",
    "2147483648",
];

#[derive(Debug, Clone)]
enum Edit {
    Flip(prop::sample::Index, u8),
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, usize),
    Delete(prop::sample::Index, usize),
    Duplicate(prop::sample::Index, usize, prop::sample::Index),
    Splice(prop::sample::Index, prop::sample::Index, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    use prop::sample::Index;
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<Index>(), 0..TOKENS.len()).prop_map(|(i, t)| Edit::Insert(i, t)),
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<Index>(), 1usize..64, any::<Index>()).prop_map(|(i, n, j)| Edit::Duplicate(i, n, j)),
        (any::<Index>(), any::<Index>(), 1usize..256).prop_map(|(i, j, n)| Edit::Splice(i, j, n)),
    ]
}

/// Applies `edits` to a copy of `seed`; `other` is a second corpus entry to splice from.
fn mutate(seed: &[u8], other: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for e in edits {
        let len = v.len().max(1);
        match e {
            Edit::Flip(i, b) if !v.is_empty() => {
                let k = i.index(len);
                v[k] ^= 1 << b;
            }
            Edit::Set(i, b) if !v.is_empty() => {
                let k = i.index(len);
                v[k] = *b;
            }
            Edit::Insert(i, t) => {
                let k = i.index(v.len() + 1);
                v.splice(k..k, TOKENS[*t].bytes());
            }
            Edit::Delete(i, n) if !v.is_empty() => {
                let k = i.index(len);
                let end = (k + n).min(v.len());
                v.drain(k..end);
            }
            Edit::Duplicate(i, n, j) if !v.is_empty() => {
                let k = i.index(len);
                let part: Vec<u8> = v[k..(k + n).min(v.len())].to_vec();
                let at = j.index(v.len() + 1);
                v.splice(at..at, part);
            }
            Edit::Splice(i, j, n) if !other.is_empty() => {
                let from = j.index(other.len());
                let part = &other[from..(from + n).min(other.len())];
                let at = i.index(v.len() + 1);
                v.splice(at..at, part.iter().copied());
            }
            _ => {}
        }
    }
    v
}

fn cases() -> u32 {
    std::env::var("BOLTZFLOW_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs `target` on mutated corpus entries; `target` gets the bytes and a scratch directory and
/// returns the parser's error text, if any (which must not be empty).
fn fuzz(name: &str, corpus: &[Vec<u8>], target: impl Fn(&[u8], &Path) -> Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::with_cases(cases());
    config.failure_persistence = None;
    // A fixed seed: the same cases on every run (tests are never retried).
    let mut runner = TestRunner::new_with_rng(
        config,
        proptest::test_runner::TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &[7; 32],
        ),
    );
    let strategy = (
        0..corpus.len(),
        0..corpus.len(),
        prop::collection::vec(edit(), 0..8),
    );
    let result = runner.run(&strategy, |(a, b, edits)| {
        let input = mutate(&corpus[a], &corpus[b], &edits);
        if let Some(msg) = target(&input, dir.path()) {
            prop_assert!(!msg.trim().is_empty(), "{name}: an empty error message");
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

fn write(dir: &Path, file: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(file);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn err<T, E: std::fmt::Display>(r: Result<T, E>) -> Option<String> {
    r.err().map(|e| e.to_string())
}

#[test]
fn boltzmann_generator_configurations() {
    let corpus: Vec<Vec<u8>> = ["double_well_bg.toml", "mueller_bg.toml", "dimer_bg.toml"]
        .iter()
        .map(|f| read(&format!("examples/{f}")))
        .collect();
    fuzz("bg config", &corpus, |b, _| {
        err(boltzflow_learn::config::BgConfig::from_toml(
            &String::from_utf8_lossy(b),
        ))
    });
}

#[test]
fn vae_and_sweep_configurations() {
    let corpus: Vec<Vec<u8>> = [
        "vae_mueller.toml",
        "vae_mueller_sweep.toml",
        "vae_beltway-polar_sweep.toml",
    ]
    .iter()
    .map(|f| read(&format!("examples/{f}")))
    .collect();
    fuzz("vae config", &corpus, |b, dir| {
        let p = write(dir, "vae.toml", b);
        err(boltzflow_learn::vae::config::VaeConfig::from_file(&p))
    });
}

#[test]
fn van_configurations() {
    let corpus: Vec<Vec<u8>> = ["sk_van.toml", "ising16_van.toml"]
        .iter()
        .map(|f| read(&format!("examples/{f}")))
        .collect();
    fuzz("van config", &corpus, |b, dir| {
        let p = write(dir, "van.toml", b);
        err(boltzflow_learn::van::VanConfig::from_file(&p))
    });
}

#[test]
fn system_and_coordinate_specs() {
    let corpus: Vec<Vec<u8>> = [
        "mueller:k=0.1",
        "double-well:a4=1,a2=6,a1=1,k=0.5",
        "dimer-bath:slope=-0.5,nsolvent=36",
        "beltway-polar",
        "ising:L=4,j=1",
        "sk:n=12,seed=3",
        "projection:0.7,-0.7",
        "distance:0,1",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    fuzz("system spec", &corpus, |b, _| {
        let s = String::from_utf8_lossy(b);
        // Specs that name files are fuzzed with the files below; here only built-in systems.
        if s.contains("openmm") || s.contains("couplings") {
            return None;
        }
        let spec = err(boltzflow_systems::build(&s));
        let spins = err(boltzflow_systems::spins::SpinSystem::build(&s));
        let coord = err(boltzflow_core::Coordinate::parse(
            &s,
            "evaluate.coordinate",
            76,
            2,
        ));
        spec.or(spins).or(coord)
    });
}

#[test]
fn openmm_system_xml_with_its_pdb() {
    let corpus = vec![read("data/ala2/ala2_system.xml")];
    let pdb = repo("data/ala2/ala2.pdb");
    fuzz("openmm xml", &corpus, |b, dir| {
        let p = write(dir, "system.xml", b);
        let spec = format!("openmm:{}", p.display());
        err(boltzflow_systems::build_with_pdb(&spec, Some(&pdb)))
    });
}

#[test]
fn pdb_files() {
    let corpus = vec![read("data/ala2/ala2.pdb")];
    fuzz("pdb", &corpus, |b, dir| {
        let p = write(dir, "x.pdb", b);
        err(boltzflow_io::pdb::read_pdb(&p))
    });
}

#[test]
fn npy_arrays() {
    let d = tempfile::tempdir().unwrap();
    let x = ndarray::Array2::from_shape_fn((5, 3), |(i, j)| (i * 3 + j) as f64 * 0.5);
    boltzflow_io::write_npy_2d(&d.path().join("x.npy"), x.view()).unwrap();
    boltzflow_io::write_npy_1d(&d.path().join("e.npy"), x.column(0)).unwrap();
    let corpus = vec![
        std::fs::read(d.path().join("x.npy")).unwrap(),
        std::fs::read(d.path().join("e.npy")).unwrap(),
        read("data/ala2/positions_nm.npy")[..4096].to_vec(),
    ];
    fuzz("npy", &corpus, |b, dir| {
        let p = write(dir, "a.npy", b);
        let a = err(boltzflow_io::read_npy_2d(&p));
        let v = err(boltzflow_io::read_npy_1d(&p));
        let t = err(boltzflow_io::read_npy_dtraj(&p));
        let rows = match boltzflow_io::NpyRowReader::open(&p) {
            Ok(mut r) => {
                let mut out = None;
                for _ in 0..4 {
                    match r.next_block(2) {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) => {
                            out = Some(e.to_string());
                            break;
                        }
                    }
                }
                out
            }
            Err(e) => Some(e.to_string()),
        };
        a.or(v).or(t).or(rows)
    });
}

#[test]
fn trajectory_files() {
    // The mdtraj-written fixtures; each mutant is read as all three formats.
    let corpus: Vec<Vec<u8>> = ["xtc", "trr", "dcd"]
        .iter()
        .map(|e| read(&format!("scripts/fixtures/trajectories/ala2.{e}")))
        .collect();
    fuzz("trajectories", &corpus, |b, dir| {
        let mut first = None;
        for ext in ["xtc", "trr", "dcd"] {
            let p = write(dir, &format!("t.{ext}"), b);
            let e = err(boltzflow_io::trajectory::read_coordinates(&p));
            first = first.or(e);
        }
        first
    });
}
