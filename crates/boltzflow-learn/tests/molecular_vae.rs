//! VAEs of alanine dipeptide in the three representations of Monroe & Shen (2022) —
//! Kabsch-aligned Cartesian, heavy atoms, bonds/angles/torsions — on a reduced scale: the
//! representations invert exactly and keep the energy and the torsions; a run trains, evaluates
//! (f_acc under the molecular energy, the latent CV's VAMP-2 against TICA, basin separation),
//! samples molecules and encodes Cartesian frames; and bad settings name their field.

use std::path::{Path, PathBuf};

use boltzflow_core::Energy;
use boltzflow_learn::run::{
    NoProgress, Representation, RepresentationKind, SimulationSpec, StartMode, TrainOptions,
    VaeRun, phi_psi, simulate,
};
use boltzflow_learn::trainer::Reduced;
use boltzflow_learn::vae::config::VaeConfig;
use boltzflow_systems::System;
use ndarray::Array2;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/ala2")
}

fn ala2() -> Box<dyn System> {
    boltzflow_systems::build_with_pdb(
        &format!("openmm:{}", data_dir().join("ala2_system.xml").display()),
        Some(&data_dir().join("ala2.pdb")),
    )
    .unwrap()
}

/// 2 chains × 30 ps of 300 K Langevin MD, a frame every 100 fs (600 frames, frame-major).
fn md_frames() -> Array2<f64> {
    simulate(
        ala2().as_ref(),
        &SimulationSpec::langevin(2, 35_000, 5000, 100, 4),
        true,
    )
    .unwrap()
    .samples
}

const KINDS: [RepresentationKind; 3] = [
    RepresentationKind::Cartesian,
    RepresentationKind::HeavyAtoms,
    RepresentationKind::Internal,
];

#[test]
fn representations_invert_and_keep_energies_and_torsions() {
    let system = ala2();
    let x = md_frames();
    let n = x.nrows();
    let beta = 1.0 / (boltzflow_core::KB_KJ_PER_MOL_K * 300.0);
    let e_ref = system.energy(x.view()).unwrap();
    let (_, quads) =
        boltzflow_coords::features::first_phi_psi(system.as_openmm().unwrap().topology().unwrap())
            .unwrap();
    let tors_ref = boltzflow_coords::features::dihedrals(x.view(), &quads).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for kind in KINDS {
        let repr = Representation::fit(kind, system.as_ref(), x.view()).unwrap();
        let y = repr.features(x.view()).unwrap();
        let (dim, periodic) = match kind {
            RepresentationKind::Cartesian => (66, 0),
            RepresentationKind::HeavyAtoms => (30, 0),
            // 60 internal coordinates; the free torsions (φ, ψ, methyl and NH rotors …) are
            // periodic, the rigid ones (peptide bonds, substituent offsets) standardised.
            RepresentationKind::Internal => (60, repr.periodic().len()),
        };
        assert_eq!((y.dim(), repr.dim()), ((n, dim), dim), "{kind:?}");
        assert_eq!(repr.periodic().len(), periodic);
        if kind == RepresentationKind::Internal {
            assert!((4..=19).contains(&periodic), "{periodic} free torsions");
        } else {
            // Standardised: every column has mean 0 and standard deviation 1 on the data.
            for c in y.columns() {
                let m = c.mean().unwrap();
                let s = c.std(1.0);
                assert!(
                    m.abs() < 1e-9 && (s - 1.0).abs() < 1e-9,
                    "{kind:?}: {m} {s}"
                );
            }
        }
        // φ and ψ survive every representation, heavy atoms included (their atoms are heavy).
        let t = phi_psi(&repr, system.as_ref(), y.view()).unwrap().unwrap();
        let worst = t
            .iter()
            .zip(&tors_ref)
            .map(|(a, b)| {
                let d = (a - b).rem_euclid(std::f64::consts::TAU);
                d.min(std::f64::consts::TAU - d)
            })
            .fold(0.0f64, f64::max);
        assert!(worst < 1e-9, "{kind:?}: torsions off by {worst}");
        // Positions come back as molecules with the same energy (the alignment and the
        // canonical frame are rigid motions); the reduced energy of the representation is
        // βE, minus log|det ∂x/∂y| for internal coordinates.
        let p = repr.positions(y.view()).unwrap();
        let reduced = Reduced {
            inner: system.as_ref(),
            beta,
        };
        match repr.energy(reduced) {
            None => {
                assert_eq!(kind, RepresentationKind::HeavyAtoms);
                assert_eq!(p.ncols(), 30);
            }
            Some(u) => {
                let e = system.energy(p.view()).unwrap();
                for (a, b) in e.iter().zip(&e_ref) {
                    assert!(
                        (a - b).abs() < 1e-7 * b.abs().max(1.0),
                        "{kind:?}: {a} vs {b}"
                    );
                }
                let uy = u.energy(y.view()).unwrap();
                if kind == RepresentationKind::Cartesian {
                    for (a, b) in uy.iter().zip(&e_ref) {
                        assert!((a - beta * b).abs() < 1e-7 * (beta * b).abs().max(1.0));
                    }
                }
                // Forces are −∂u/∂y: central differences on a few rows and columns.
                let rows = y.slice(ndarray::s![..3, ..]).to_owned();
                let (_, f) = u.energy_and_forces(rows.view()).unwrap();
                for r in 0..3 {
                    for c in [0, 7, dim - 1] {
                        let h = 1e-5;
                        let mut a = rows.clone();
                        let mut b = rows.clone();
                        a[[r, c]] += h;
                        b[[r, c]] -= h;
                        let fd = -(u.energy(a.view()).unwrap()[r] - u.energy(b.view()).unwrap()[r])
                            / (2.0 * h);
                        assert!(
                            (f[[r, c]] - fd).abs() < 1e-4 * fd.abs().max(1.0),
                            "{kind:?} row {r} column {c}: {} vs {fd}",
                            f[[r, c]]
                        );
                    }
                }
            }
        }
        // Kept in a run directory and read back: the same coordinates.
        let dir = tmp.path().join(kind.name());
        std::fs::create_dir_all(&dir).unwrap();
        repr.save(&dir).unwrap();
        let back = Representation::load(kind, system.as_ref(), &dir)
            .unwrap()
            .unwrap();
        let y2 = back.features(x.view()).unwrap();
        assert!(y.iter().zip(&y2).all(|(a, b)| (a - b).abs() < 1e-12));
    }
    // Statistics of one kind are not read as another's.
    let dir = tmp.path().join("cartesian");
    let e = Representation::load(RepresentationKind::HeavyAtoms, system.as_ref(), &dir)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("representation.json") && e.contains("cartesian"),
        "{e}"
    );
    // A toy system has no atoms to represent.
    let toy = boltzflow_systems::build("double-well").unwrap();
    let e = Representation::fit(
        RepresentationKind::Cartesian,
        toy.as_ref(),
        Array2::zeros((4, 2)).view(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("vae.representation"), "{e}");
}

/// Trains `run` from the start; the result of every stage.
fn train(run: &VaeRun) -> boltzflow_core::Result<()> {
    run.train(
        TrainOptions {
            mode: StartMode::default(),
            stop_after: None,
        },
        &mut NoProgress,
    )
}

fn write_config(dir: &Path, data: &Path, representation: Option<&str>, extra: &str) -> PathBuf {
    let text = format!(
        r#"model = "vae"
seed = 2
[system]
spec = "openmm:{xml}"
pdb = "{pdb}"
[data]
file = "{data}"
chains = 2
[vae]
decoder = "autoregressive"
latent_dim = 2
encoder_hidden = [32]
decoder_hidden = [32]
{repr}
[train]
betas = [1]
epochs = 2
anneal_epochs = 1
batch_size = 100
lr = 1e-3
[evaluate]
n_encode = 300
prior_samples = 32
mc_walkers = 100
mc_steps = 5
lag = 5
{extra}"#,
        xml = data_dir().join("ala2_system.xml").display(),
        pdb = data_dir().join("ala2.pdb").display(),
        data = data.display(),
        repr = representation.map_or(String::new(), |r| format!("representation = \"{r}\"")),
    );
    let path = dir.join(format!("{}.toml", representation.unwrap_or("none")));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn an_alanine_dipeptide_vae_trains_evaluates_samples_and_encodes_in_each_representation() {
    let tmp = tempfile::tempdir().unwrap();
    let x = md_frames();
    let data = tmp.path().join("md.npy");
    boltzflow_io::write_npy_2d(&data, x.view()).unwrap();
    for (name, dim, atoms) in [
        ("cartesian", 66, 22),
        ("heavy-atoms", 30, 10),
        ("bat", 60, 22),
    ] {
        let cfg = VaeConfig::from_file(&write_config(tmp.path(), &data, Some(name), "")).unwrap();
        let run = VaeRun::new(tmp.path().join(name), cfg).unwrap();
        train(&run).unwrap();
        let stored = boltzflow_io::read_npy_2d(&run.dir.join("data.npy")).unwrap();
        assert_eq!(stored.dim(), (600, dim), "{name}");
        let m = run.evaluate().unwrap();
        assert_eq!(
            m.representation.as_deref(),
            Some(run.representation.unwrap().name())
        );
        let s = &m.stages[0];
        // f_acc needs an energy: the heavy atoms have none.
        assert_eq!(s.metrics.f_acc.is_some(), name != "heavy-atoms", "{name}");
        if let Some(f) = s.metrics.f_acc {
            assert!((0.0..=1.0).contains(&f));
        }
        // Every frame falls in a basin; 30 ps from C7eq visit C7eq and C5.
        let b = s.basins.as_ref().unwrap();
        assert_eq!(b.frames.iter().sum::<usize>(), 600);
        assert!(b.frames[0] > 0, "{:?}", b.frames);
        assert!((0.0..=1.0).contains(&b.balanced_accuracy));
        // The kinetic references: TICA's best 2-D linear CV bounds what a latent CV of the
        // same dimension can score at most approximately, and VAMP-2 lies in [1, 3].
        let r = m.kinetics_reference.as_ref().unwrap();
        assert_eq!((r.lag, r.chains, r.tica.dim), (5, 2, 2));
        assert!(
            (1.0..=3.0 + 1e-9).contains(&r.tica.vamp2),
            "{}",
            r.tica.vamp2
        );
        assert!(r.phi_psi.is_some());
        match (&s.cv_kinetics, &s.cv_kinetics_error) {
            (Some(k), None) => assert!((1.0..=3.0 + 1e-9).contains(&k.vamp2), "{}", k.vamp2),
            (None, Some(e)) => assert!(!e.is_empty()),
            other => panic!("{other:?}"),
        }
        // Samples are positions in nm: whole molecules, or the heavy atoms.
        let sm = run.sample(20, 1).unwrap();
        assert_eq!(sm.dim(), (20, 3 * atoms), "{name}");
        if atoms == 22 {
            let e = run.system.energy(sm.view()).unwrap();
            assert!(e.iter().all(|v| !v.is_nan()));
        }
        // The CV of Cartesian frames is the encoder mean of their representation.
        let (mu, var) = run.encode(x.slice(ndarray::s![..10, ..]), None).unwrap();
        assert_eq!((mu.dim(), var.dim()), ((10, 2), (10, 2)));
        let (vae, trained) = run.trained().unwrap();
        let rows: Vec<f32> = stored
            .slice(ndarray::s![..10, ..])
            .iter()
            .map(|&v| v as f32)
            .collect();
        let (mu2, _) = vae.encode(&trained[0].1, &rows, 10);
        for (a, b) in mu.iter().zip(&mu2) {
            assert!((a - b).abs() < 1e-4, "{name}: {a} vs {b}");
        }
        assert!(run.encode(stored.view(), None).is_err() || dim == 66);
    }
}

#[test]
fn molecular_vae_settings_name_their_field() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("md.npy");
    boltzflow_io::write_npy_2d(&data, Array2::<f64>::zeros((4, 66)).view()).unwrap();
    let err = |path: PathBuf| -> String {
        match VaeConfig::from_file(&path) {
            Err(e) => e.to_string(),
            Ok(cfg) => match VaeRun::new(tmp.path().join("run"), cfg) {
                Err(e) => e.to_string(),
                Ok(run) => run.make_data().unwrap_err().to_string(),
            },
        }
    };
    // A molecule needs a representation; an unknown one lists the names.
    let e = err(write_config(tmp.path(), &data, None, ""));
    assert!(
        e.contains("vae.representation") && e.contains("heavy-atoms"),
        "{e}"
    );
    let e = err(write_config(tmp.path(), &data, Some("zmatrix"), ""));
    assert!(
        e.contains("vae.representation") && e.contains("`zmatrix`"),
        "{e}"
    );
    // Chains that do not divide the frames.
    let text = std::fs::read_to_string(write_config(tmp.path(), &data, Some("cartesian"), ""))
        .unwrap()
        .replace("chains = 2", "chains = 3");
    let path = tmp.path().join("chains.toml");
    std::fs::write(&path, text).unwrap();
    let e = err(path);
    assert!(e.contains("data.chains"), "{e}");
    // Identical frames have no spread to standardise.
    let cfg =
        VaeConfig::from_file(&write_config(tmp.path(), &data, Some("heavy-atoms"), "")).unwrap();
    let run = VaeRun::new(tmp.path().join("flat"), cfg).unwrap();
    let e = train(&run).unwrap_err().to_string();
    assert!(e.contains("no spread"), "{e}");
    // A lag of zero frames; `chains` without a file.
    let text = std::fs::read_to_string(write_config(tmp.path(), &data, Some("cartesian"), ""))
        .unwrap()
        .replace("lag = 5", "lag = 0");
    let path = tmp.path().join("lag.toml");
    std::fs::write(&path, text).unwrap();
    let e = err(path);
    assert!(e.contains("evaluate.lag"), "{e}");
    // A toy system has no atoms to represent.
    let path = tmp.path().join("toy.toml");
    std::fs::write(
        &path,
        "model = \"vae\"\n[system]\nspec = \"double-well\"\n[data]\nexact = 100\n[vae]\nrepresentation = \"cartesian\"\n",
    )
    .unwrap();
    let e = err(path);
    assert!(
        e.contains("vae.representation") && e.contains("no atoms"),
        "{e}"
    );
}

#[test]
fn every_vae_example_is_a_valid_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let tmp = tempfile::tempdir().unwrap();
    let mut seen = 0;
    for entry in std::fs::read_dir(root.join("examples")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.starts_with("vae_") && name.ends_with(".toml")) {
            continue;
        }
        // Paths in the examples are relative to the repository root.
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"data/", &format!("\"{}/data/", root.display()))
            .replace(
                "\"openmm:data/",
                &format!("\"openmm:{}/data/", root.display()),
            );
        let copy = tmp.path().join(&name);
        std::fs::write(&copy, text).unwrap();
        let cfg = VaeConfig::from_file(&copy).unwrap_or_else(|e| panic!("{name}: {e}"));
        VaeRun::new("unused".into(), cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
        seen += 1;
    }
    assert!(seen >= 10, "{seen} examples");
}

/// An interpreter of the PLUMED subset the exporter writes (DISTANCE, ANGLE, TORSION and
/// CUSTOM with +, −, ×, /, sin, cos, floor, max), written from PLUMED's documentation and
/// independent of boltzflow's geometry and networks: the values of every label for one
/// configuration `x` `[3·atoms]` (nm).
mod plumed {
    use std::collections::HashMap;

    fn atom(x: &[f64], serial: &str) -> [f64; 3] {
        let i: usize = serial.parse::<usize>().unwrap() - 1;
        [x[3 * i], x[3 * i + 1], x[3 * i + 2]]
    }
    fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
        [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
    }
    fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
        a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
    }
    fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
        [
            a[1] * b[2] - a[2] * b[1],
            a[2] * b[0] - a[0] * b[2],
            a[0] * b[1] - a[1] * b[0],
        ]
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
        vars: &'a HashMap<String, f64>,
    }

    impl Parser<'_> {
        fn peek(&self) -> Option<u8> {
            self.s.get(self.i).copied()
        }
        fn expr(&mut self) -> f64 {
            let mut v = self.term();
            while let Some(c @ (b'+' | b'-')) = self.peek() {
                self.i += 1;
                let t = self.term();
                v = if c == b'+' { v + t } else { v - t };
            }
            v
        }
        fn term(&mut self) -> f64 {
            let mut v = self.factor();
            while let Some(c @ (b'*' | b'/')) = self.peek() {
                self.i += 1;
                let f = self.factor();
                v = if c == b'*' { v * f } else { v / f };
            }
            v
        }
        fn factor(&mut self) -> f64 {
            match self.peek() {
                Some(b'-') => {
                    self.i += 1;
                    -self.factor()
                }
                Some(b'(') => {
                    self.i += 1;
                    let v = self.expr();
                    assert_eq!(self.peek(), Some(b')'));
                    self.i += 1;
                    v
                }
                Some(c) if c.is_ascii_digit() || c == b'.' => {
                    let start = self.i;
                    while let Some(c) = self.peek() {
                        let exp_sign =
                            (c == b'-' || c == b'+') && matches!(self.s[self.i - 1], b'e' | b'E');
                        if c.is_ascii_digit() || c == b'.' || c == b'e' || c == b'E' || exp_sign {
                            self.i += 1;
                        } else {
                            break;
                        }
                    }
                    std::str::from_utf8(&self.s[start..self.i])
                        .unwrap()
                        .parse()
                        .unwrap()
                }
                _ => {
                    let start = self.i;
                    while self
                        .peek()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                    {
                        self.i += 1;
                    }
                    let name = std::str::from_utf8(&self.s[start..self.i]).unwrap();
                    if self.peek() != Some(b'(') {
                        return *self.vars.get(name).unwrap_or_else(|| panic!("{name}?"));
                    }
                    self.i += 1;
                    let mut args = vec![self.expr()];
                    while self.peek() == Some(b',') {
                        self.i += 1;
                        args.push(self.expr());
                    }
                    assert_eq!(self.peek(), Some(b')'));
                    self.i += 1;
                    match name {
                        "sin" => args[0].sin(),
                        "cos" => args[0].cos(),
                        "floor" => args[0].floor(),
                        "max" => args[0].max(args[1]),
                        _ => panic!("function {name}"),
                    }
                }
            }
        }
    }

    pub fn evaluate(input: &str, x: &[f64]) -> HashMap<String, f64> {
        let mut values: HashMap<String, f64> = HashMap::new();
        for line in input.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (label, rest) = line.split_once(": ").unwrap();
            let mut words = rest.split_whitespace();
            let action = words.next().unwrap();
            let keys: HashMap<&str, &str> = words.map(|w| w.split_once('=').unwrap()).collect();
            let list = |k: &str| -> Vec<&str> { keys[k].split(',').collect() };
            let v = match action {
                "DISTANCE" => {
                    let a = list("ATOMS");
                    let d = sub(atom(x, a[1]), atom(x, a[0]));
                    dot(d, d).sqrt()
                }
                "ANGLE" => {
                    let a = list("ATOMS");
                    let u = sub(atom(x, a[0]), atom(x, a[1]));
                    let w = sub(atom(x, a[2]), atom(x, a[1]));
                    (dot(u, w) / (dot(u, u) * dot(w, w)).sqrt()).acos()
                }
                "TORSION" => {
                    // IUPAC: atan2(|b₂| b₁·(b₂×b₃), (b₁×b₂)·(b₂×b₃)).
                    let a = list("ATOMS");
                    let p: Vec<[f64; 3]> = a.iter().map(|s| atom(x, s)).collect();
                    let (b1, b2, b3) = (sub(p[1], p[0]), sub(p[2], p[1]), sub(p[3], p[2]));
                    let n = cross(b2, b3);
                    (dot(b2, b2).sqrt() * dot(b1, n)).atan2(dot(cross(b1, b2), n))
                }
                "CUSTOM" => {
                    assert_eq!(keys["PERIODIC"], "NO");
                    let vars: HashMap<String, f64> = list("VAR")
                        .iter()
                        .zip(list("ARG"))
                        .map(|(v, a)| ((*v).to_string(), values[a]))
                        .collect();
                    let mut p = Parser {
                        s: keys["FUNC"].as_bytes(),
                        i: 0,
                        vars: &vars,
                    };
                    let v = p.expr();
                    assert_eq!(p.i, p.s.len(), "trailing text in {}", keys["FUNC"]);
                    v
                }
                other => panic!("action {other}"),
            };
            values.insert(label.to_string(), v);
        }
        values
    }
}

/// Well-tempered metadynamics on `cvs` (hills of 0.5 kT, σ = 0.05, γ = 6, every 100 steps).
fn metad(cvs: String) -> boltzflow_learn::run::MetadynamicsSpec {
    boltzflow_learn::run::MetadynamicsSpec {
        cvs,
        height_kt: 0.5,
        sigma: vec![0.05],
        bias_factor: 6.0,
        pace: 100,
        bins: 100,
        ranges: Vec::new(),
    }
}

#[test]
fn the_encoder_mean_exports_to_plumed_and_drives_metadynamics() {
    let tmp = tempfile::tempdir().unwrap();
    let x = md_frames();
    let data = tmp.path().join("md.npy");
    boltzflow_io::write_npy_2d(&data, x.view()).unwrap();
    let cfg = VaeConfig::from_file(&write_config(tmp.path(), &data, Some("internal"), "")).unwrap();
    let run = VaeRun::new(tmp.path().join("run"), cfg).unwrap();
    train(&run).unwrap();
    let text = boltzflow_learn::run::plumed_input(&run, None, "cv").unwrap();
    // Frames from the data and two beyond it (rotated and shifted, which a CV of internal
    // coordinates must not see).
    let rows = [0usize, 150, 299, 450, 599];
    let mut frames: Vec<Vec<f64>> = rows.iter().map(|&r| x.row(r).to_vec()).collect();
    let moved: Vec<f64> = x
        .row(10)
        .to_vec()
        .chunks_exact(3)
        .flat_map(|p| [-p[1] + 1.0, p[0] - 2.0, p[2] + 0.5])
        .collect();
    frames.push(moved);
    frames.push(x.row(10).to_vec());
    let xs = Array2::from_shape_vec((frames.len(), 66), frames.concat()).unwrap();
    let (mu, _) = run.encode(xs.view(), None).unwrap();
    for (r, frame) in frames.iter().enumerate() {
        let v = plumed::evaluate(&text, frame);
        for j in 0..2 {
            let got = v[&format!("cv_{j}")];
            assert!(
                (got - mu[[r, j]]).abs() < 1e-5 * mu[[r, j]].abs().max(1.0),
                "frame {r}, μ_{j}: PLUMED {got} vs boltzflow {}",
                mu[[r, j]]
            );
        }
    }
    let n = frames.len();
    assert!((mu[[n - 1, 0]] - mu[[n - 2, 0]]).abs() < 1e-5);

    // The same CV drives metadynamics: values equal the encoder's, gradients equal central
    // differences, and rigid motions change nothing.
    use boltzflow_mcmc::metadynamics::LearnedCv;
    let cv = boltzflow_learn::run::EncoderCv::from_run(&run, None, 1).unwrap();
    assert_eq!(cv.dim(), 66);
    let [lo, hi] = cv.default_range().unwrap();
    for r in 0..n {
        let xr = xs.row(r);
        let mut g = vec![0.0; 66];
        let s = cv.value(xr, Some((&mut g, 1.0)));
        assert!((s - mu[[r, 1]]).abs() < 1e-5, "{s} vs {}", mu[[r, 1]]);
        assert!(lo < s && s < hi);
        for c in (0..66).step_by(5) {
            let h = 1e-6;
            let mut a = xr.to_owned();
            let mut b = xr.to_owned();
            a[c] += h;
            b[c] -= h;
            let fd = (cv.value(a.view(), None) - cv.value(b.view(), None)) / (2.0 * h);
            assert!(
                (g[c] - fd).abs() < 1e-5 * fd.abs().max(1.0),
                "frame {r}, coordinate {c}: {} vs {fd}",
                g[c]
            );
        }
        // Translation invariance: the gradient sums to zero over atoms along each axis.
        for k in 0..3 {
            let t: f64 = (0..22).map(|a| g[3 * a + k]).sum();
            assert!(t.abs() < 1e-8, "{t}");
        }
    }
    // A short metadynamics run on it, grid from the data's range.
    let system = ala2();
    let md = boltzflow_learn::run::simulate_metadynamics(
        system.as_ref(),
        &SimulationSpec::langevin(2, 2000, 1000, 100, 5),
        &metad(format!("vae:{}:1", run.dir.display())),
    )
    .unwrap();
    assert_eq!(md.summary.hills, 40);
    assert!(md.summary.max_bias > 0.0 && md.log_weights.iter().all(|v| v.is_finite()));
    for bad in [
        format!("vae:{}:2", run.dir.display()),
        format!("vae:{}", tmp.path().display()),
    ] {
        let e = boltzflow_learn::run::simulate_metadynamics(
            system.as_ref(),
            &SimulationSpec::langevin(1, 200, 100, 100, 5),
            &metad(bad.clone()),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("--metad"), "{bad}: {e}");
    }
    // Another representation has no export.
    let cfg =
        VaeConfig::from_file(&write_config(tmp.path(), &data, Some("cartesian"), "")).unwrap();
    let other = VaeRun::new(tmp.path().join("cart"), cfg).unwrap();
    train(&other).unwrap();
    let e = boltzflow_learn::run::plumed_input(&other, None, "cv")
        .unwrap_err()
        .to_string();
    assert!(e.contains("internal") && e.contains("cartesian"), "{e}");
    let e = boltzflow_learn::run::plumed_input(&run, None, "my cv")
        .unwrap_err()
        .to_string();
    assert!(e.contains("--label"), "{e}");
}
