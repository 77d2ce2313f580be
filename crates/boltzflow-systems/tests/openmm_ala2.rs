//! Alanine dipeptide (AMBER99SB-ILDN, no cutoff) in vacuum (`data/ala2/`) and in OBC implicit
//! solvent (`amber99_obc.xml`, `data/ala2_obc/`) against OpenMM 8.6.1's Reference platform: 50
//! configurations each with total and per-group energies and forces.

use std::path::{Path, PathBuf};

use boltzflow_core::Energy;
use boltzflow_systems::{ForceField, build_with_pdb};
use ndarray::{Array1, Array2};
use ndarray_npy::ReadNpyExt;

/// The vacuum data set (`data/ala2`) and the implicit-solvent one (`data/ala2_obc`).
const VACUUM: (&str, &str) = ("ala2", "ala2_system.xml");
const OBC: (&str, &str) = ("ala2_obc", "ala2_obc_system.xml");

fn data_in(set: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(set)
        .join(name)
}

fn data(name: &str) -> PathBuf {
    data_in(VACUUM.0, name)
}

fn npy2_in(set: &str, name: &str) -> Array2<f64> {
    Array2::read_npy(std::fs::File::open(data_in(set, name)).unwrap()).unwrap()
}

fn npy1_in(set: &str, name: &str) -> Array1<f64> {
    Array1::read_npy(std::fs::File::open(data_in(set, name)).unwrap()).unwrap()
}

fn ff_of((set, xml): (&str, &str)) -> ForceField {
    ForceField::from_file(&data_in(set, xml)).unwrap()
}

#[test]
fn energies_per_group_and_forces_equal_openmm() {
    check_against_openmm(VACUUM, &[0, 1, 2, 3]);
}

#[test]
fn obc_implicit_solvent_energies_per_group_and_forces_equal_openmm() {
    check_against_openmm(OBC, &[0, 1, 2, 3, 4]);
}

/// Energies to 1e-6 relative per group and in total, forces to 1e-4 kJ/(mol nm).
fn check_against_openmm(set: (&str, &str), groups: &[u32]) {
    let ff = ff_of(set);
    let npy2 = |name| npy2_in(set.0, name);
    let x = npy2("positions_nm.npy");
    let (e, f) = ff.energy_and_forces(x.view()).unwrap();
    let e_ref = npy1_in(set.0, "energies_kJmol.npy");
    let f_ref = npy2("forces_kJmol_nm.npy");
    let g_ref = npy2("group_energies_kJmol.npy");
    assert_eq!(ff.groups(), groups);
    let g = ff.group_energies(x.view()).unwrap();
    let scale = e_ref.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut worst = (0.0f64, 0.0f64, 0.0f64);
    for i in 0..x.nrows() {
        // 1e-6 relative to the configuration's energy scale (the total can pass through zero).
        let tol = 1e-6 * g_ref.row(i).iter().map(|v| v.abs()).sum::<f64>();
        assert!(
            (e[i] - e_ref[i]).abs() < tol,
            "config {i}: {} vs {}",
            e[i],
            e_ref[i]
        );
        worst.0 = worst.0.max((e[i] - e_ref[i]).abs() / scale);
        for k in 0..groups.len() {
            let rel = (g[[i, k]] - g_ref[[i, k]]).abs() / g_ref[[i, k]].abs();
            assert!(
                rel < 1e-6,
                "config {i} group {k}: {} vs {}",
                g[[i, k]],
                g_ref[[i, k]]
            );
            worst.1 = worst.1.max(rel);
        }
        for c in 0..x.ncols() {
            let d = (f[[i, c]] - f_ref[[i, c]]).abs();
            assert!(
                d < 1e-4,
                "config {i} coordinate {c}: {} vs {}",
                f[[i, c]],
                f_ref[[i, c]]
            );
            worst.2 = worst.2.max(d);
        }
        approx::assert_relative_eq!(g.row(i).sum(), e[i], max_relative = 1e-12);
    }
    eprintln!(
        "{} vs OpenMM: max |ΔE|/max|E| {:.2e}, max group relative error {:.2e}, max |ΔF| {:.2e} kJ/(mol nm)",
        set.0, worst.0, worst.1, worst.2
    );
}

#[test]
fn forces_are_minus_the_gradient_and_sum_to_zero() {
    for set in [VACUUM, OBC] {
        forces_are_the_gradient(set);
    }
}

fn forces_are_the_gradient(set: (&str, &str)) {
    let ff = ff_of(set);
    let x = npy2_in(set.0, "positions_nm.npy");
    for i in [0, 17, 49] {
        let xi = x.row(i).to_owned();
        let (_, f) = ff
            .energy_and_forces(xi.view().insert_axis(ndarray::Axis(0)))
            .unwrap();
        let h = 1e-6;
        for c in 0..xi.len() {
            let mut p = Array2::zeros((2, xi.len()));
            p.row_mut(0).assign(&xi);
            p.row_mut(1).assign(&xi);
            p[[0, c]] += h;
            p[[1, c]] -= h;
            let e = ff.energy(p.view()).unwrap();
            let fd = -(e[0] - e[1]) / (2.0 * h);
            let tol = 1e-3 + 1e-6 * fd.abs();
            assert!(
                (f[[0, c]] - fd).abs() < tol,
                "{}: config {i} coord {c}: {} vs {fd}",
                set.0,
                f[[0, c]]
            );
        }
        // Translation invariance: zero net force; rotation invariance: zero net torque.
        let (mut net, mut torque) = ([0.0; 3], [0.0; 3]);
        for a in 0..22 {
            let (r, fa) = (&xi.as_slice().unwrap()[3 * a..3 * a + 3], f.row(0));
            let fa = [fa[3 * a], fa[3 * a + 1], fa[3 * a + 2]];
            for k in 0..3 {
                net[k] += fa[k];
            }
            torque[0] += r[1] * fa[2] - r[2] * fa[1];
            torque[1] += r[2] * fa[0] - r[0] * fa[2];
            torque[2] += r[0] * fa[1] - r[1] * fa[0];
        }
        for k in 0..3 {
            assert!(net[k].abs() < 1e-9, "net force {net:?}");
            assert!(torque[k].abs() < 1e-9, "net torque {torque:?}");
        }
    }
}

#[test]
fn the_pdb_gives_topology_and_start_positions() {
    let s = build_with_pdb(
        &format!("openmm:{}", data("ala2_system.xml").display()),
        Some(&data("ala2.pdb")),
    )
    .unwrap();
    assert_eq!(s.dim(), 66);
    let omm = s.as_openmm().unwrap();
    let top = omm.topology().unwrap();
    assert_eq!(top.atoms[8].name, "CA");
    assert_eq!(top.atoms[8].residue_name, "ALA");
    // OpenMM writes CONECT records for the caps only; they are a subset of the bond force's 21.
    assert_eq!(top.bonds.len(), 12);
    assert_eq!(omm.force_field.bonds().len(), 21);
    assert!(
        top.bonds
            .iter()
            .all(|b| omm.force_field.bonds().contains(b))
    );
    assert_eq!(s.atom_masses().unwrap().len(), 22);
    let e = s
        .energy(
            s.initial_configuration()
                .insert_axis(ndarray::Axis(0))
                .view(),
        )
        .unwrap();
    assert!(e[0].is_finite());
    assert!(s.spec().starts_with("openmm:"));
}

fn err(spec_xml: &Path, pdb: Option<&Path>) -> String {
    match build_with_pdb(&format!("openmm:{}", spec_xml.display()), pdb) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let xml = std::fs::read_to_string(data("ala2_system.xml")).unwrap();
    // A cutoff method.
    let p = dir.path().join("cutoff.xml");
    std::fs::write(&p, xml.replace(r#"method="0""#, r#"method="1""#)).unwrap();
    let m = err(&p, None);
    assert!(
        m.contains("cutoff.xml") && m.contains("CutoffNonPeriodic") && m.contains("NoCutoff"),
        "{m}"
    );
    // A truncated file.
    let p = dir.path().join("truncated.xml");
    std::fs::write(&p, &xml[..xml.len() / 2]).unwrap();
    let m = err(&p, None);
    assert!(
        m.contains("truncated.xml") && m.contains("not well-formed"),
        "{m}"
    );
    // A PDB with one atom fewer.
    let pdb = std::fs::read_to_string(data("ala2.pdb")).unwrap();
    let short: String = pdb
        .lines()
        .filter(|l| !l.contains(" H3  NME") && !l.starts_with("CONECT"))
        .map(|l| format!("{l}\n"))
        .collect();
    let p = dir.path().join("short.pdb");
    std::fs::write(&p, short).unwrap();
    let m = err(&data("ala2_system.xml"), Some(&p));
    assert!(
        m.contains("short.pdb") && m.contains("21 atoms") && m.contains("22"),
        "{m}"
    );
    // Implicit solvent with a cutoff, a radius inside the dielectric offset, a missing
    // dielectric: each names the force (and the particle) and what to do.
    let obc = std::fs::read_to_string(data_in(OBC.0, OBC.1)).unwrap();
    let gbsa = obc.find("GBSAOBCForce").unwrap();
    let (head, tail) = obc.split_at(gbsa.saturating_sub(200));
    let bad = [
        (
            tail.replacen(
                r#"method="0" name="GBSAOBCForce""#,
                r#"method="1" name="GBSAOBCForce""#,
                1,
            ),
            vec!["GBSAOBCForce method 1", "NoCutoff"],
        ),
        (
            tail.replacen(
                r#"<Particle q=".1123" r=".125""#,
                r#"<Particle q=".1123" r=".005""#,
                1,
            ),
            vec!["particle 0: radius 0.005", "dielectric offset"],
        ),
        (
            tail.replacen(
                r#"solventDielectric="78.3""#,
                r#"solventDielectric="-1""#,
                1,
            ),
            vec!["solventDielectric", "positive"],
        ),
    ];
    for (k, (t, needles)) in bad.into_iter().enumerate() {
        assert_ne!(t, tail, "case {k} changed nothing");
        let p = dir.path().join(format!("obc{k}.xml"));
        std::fs::write(&p, format!("{head}{t}")).unwrap();
        let m = err(&p, None);
        for n in needles {
            assert!(
                m.contains(n) && m.contains(&format!("obc{k}.xml")),
                "`{n}` not in {m}"
            );
        }
    }
    // A missing file, and a PDB with a toy system.
    let m = err(&dir.path().join("nope.xml"), None);
    assert!(m.contains("nope.xml") && m.contains("cannot read"), "{m}");
    let m = match build_with_pdb("mueller", Some(&data("ala2.pdb"))) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    assert!(m.contains("only used with `openmm:"), "{m}");
}
