//! OpenMM System XML files, as written by `XmlSerializer.serialize(system)`.
//!
//! This module reads the file into plain parameter tables ([`SystemXml`]); the force field that
//! evaluates them lives in `boltzflow-systems`. Only what boltzflow evaluates exactly is accepted:
//! `HarmonicBondForce`, `HarmonicAngleForce`, `PeriodicTorsionForce`, `NonbondedForce` and
//! `GBSAOBCForce` (implicit solvent) with `NoCutoff`, and `CMMotionRemover` (no energy; dynamics remove the centre-of-mass motion
//! themselves). Distance constraints (`<Constraints>`, e.g. `constraints=HBonds`) are read
//! into [`SystemXml::constraints`] for the integrators that keep them (SHAKE/RATTLE). Anything
//! else — other forces, cutoffs, periodic forces, virtual sites, parameter offsets — is an
//! error naming the element and its line, never a silent skip.
//!
//! Units are OpenMM's: nm, rad, kJ/mol, amu, elementary charges.

use std::path::{Path, PathBuf};

use boltzflow_core::{Error, Result};
use roxmltree::{Document, Node};

/// A harmonic bond ½k(r − r₀)².
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BondXml {
    /// The two particles.
    pub atoms: [usize; 2],
    /// Equilibrium length r₀ (nm).
    pub length: f64,
    /// Force constant k (kJ/(mol nm²)).
    pub k: f64,
}

/// A harmonic angle ½k(θ − θ₀)².
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AngleXml {
    /// The three particles; the second is the vertex.
    pub atoms: [usize; 3],
    /// Equilibrium angle θ₀ (rad).
    pub angle: f64,
    /// Force constant k (kJ/(mol rad²)).
    pub k: f64,
}

/// A periodic torsion k(1 + cos(nφ − φ₀)) (propers and impropers alike).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TorsionXml {
    /// The four particles.
    pub atoms: [usize; 4],
    /// Periodicity n.
    pub periodicity: u32,
    /// Phase φ₀ (rad).
    pub phase: f64,
    /// Barrier k (kJ/mol).
    pub k: f64,
}

/// Nonbonded parameters of one particle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NonbondedParticleXml {
    /// Charge (e).
    pub charge: f64,
    /// Lennard-Jones σ (nm).
    pub sigma: f64,
    /// Lennard-Jones ε (kJ/mol).
    pub epsilon: f64,
}

/// OpenMM's dielectric offset of the OBC Born radii, nm: the integral uses radius − 0.009.
pub const GBSA_DIELECTRIC_OFFSET: f64 = 0.009;

/// Per-particle parameters of a `GBSAOBCForce`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GbsaParticleXml {
    /// Charge (e).
    pub charge: f64,
    /// Atomic radius (nm).
    pub radius: f64,
    /// Overlap scale factor of the radius in the Born-radius integral.
    pub scale: f64,
}

/// A nonbonded exception: the pair's interaction replaced by these parameters (zero for
/// excluded 1-2 and 1-3 pairs, scaled for 1-4 pairs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExceptionXml {
    /// The pair.
    pub atoms: [usize; 2],
    /// Charge product qᵢqⱼ (e²).
    pub charge_product: f64,
    /// σ (nm).
    pub sigma: f64,
    /// ε (kJ/mol).
    pub epsilon: f64,
}

/// One supported force of the System, with its force group.
#[derive(Debug, Clone, PartialEq)]
pub enum ForceXml {
    /// `HarmonicBondForce`.
    HarmonicBond {
        /// Force group (0..32).
        group: u32,
        /// The bonds.
        bonds: Vec<BondXml>,
    },
    /// `HarmonicAngleForce`.
    HarmonicAngle {
        /// Force group.
        group: u32,
        /// The angles.
        angles: Vec<AngleXml>,
    },
    /// `PeriodicTorsionForce`.
    PeriodicTorsion {
        /// Force group.
        group: u32,
        /// The torsions.
        torsions: Vec<TorsionXml>,
    },
    /// `NonbondedForce` with `NoCutoff`: Coulomb and Lennard-Jones over all pairs, with
    /// Lorentz–Berthelot combining and exceptions.
    Nonbonded {
        /// Force group.
        group: u32,
        /// One entry per particle.
        particles: Vec<NonbondedParticleXml>,
        /// Exceptions.
        exceptions: Vec<ExceptionXml>,
    },
    /// `GBSAOBCForce` with `NoCutoff`: generalized Born implicit solvent (OBC type II Born
    /// radii) with OpenMM's ACE surface-area term.
    GbsaObc {
        /// Force group.
        group: u32,
        /// One entry per particle.
        particles: Vec<GbsaParticleXml>,
        /// Dielectric constant inside the solute (`soluteDielectric`).
        solute_dielectric: f64,
        /// Dielectric constant of the solvent (`solventDielectric`).
        solvent_dielectric: f64,
        /// Surface-area energy density (`surfaceAreaEnergy`), kJ/(mol nm²).
        surface_area_energy: f64,
    },
    /// `CMMotionRemover` (no energy).
    CmMotionRemover {
        /// Force group.
        group: u32,
    },
}

impl ForceXml {
    /// The OpenMM class name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::HarmonicBond { .. } => "HarmonicBondForce",
            Self::HarmonicAngle { .. } => "HarmonicAngleForce",
            Self::PeriodicTorsion { .. } => "PeriodicTorsionForce",
            Self::Nonbonded { .. } => "NonbondedForce",
            Self::GbsaObc { .. } => "GBSAOBCForce",
            Self::CmMotionRemover { .. } => "CMMotionRemover",
        }
    }

    /// The force group.
    pub fn group(&self) -> u32 {
        match *self {
            Self::HarmonicBond { group, .. }
            | Self::HarmonicAngle { group, .. }
            | Self::PeriodicTorsion { group, .. }
            | Self::Nonbonded { group, .. }
            | Self::GbsaObc { group, .. }
            | Self::CmMotionRemover { group } => group,
        }
    }
}

/// An OpenMM System read from XML.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemXml {
    /// The file it was read from.
    pub path: PathBuf,
    /// `openmmVersion` attribute, if present.
    pub openmm_version: Option<String>,
    /// Particle masses (amu), `[n_atoms]`.
    pub masses: Vec<f64>,
    /// The forces, in file order.
    pub forces: Vec<ForceXml>,
    /// Distance constraints `(i, j, d)`: |xᵢ − xⱼ| = d (nm), in file order.
    pub constraints: Vec<(usize, usize, f64)>,
}

impl SystemXml {
    /// Number of particles.
    pub fn n_atoms(&self) -> usize {
        self.masses.len()
    }
}

/// Reads an OpenMM System XML file.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::BadFile`] naming the element and line for
/// malformed or truncated XML, a missing or non-numeric attribute, a particle index out of range,
/// or anything boltzflow does not evaluate exactly (see the module documentation).
pub fn read_system_xml(path: &Path) -> Result<SystemXml> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        action: "cannot read",
        path: path.to_path_buf(),
        source: e,
    })?;
    parse_system_xml(&text, path)
}

/// Parses the text of an OpenMM System XML file; `path` is used in messages.
///
/// # Errors
/// As [`read_system_xml`].
pub fn parse_system_xml(text: &str, path: &Path) -> Result<SystemXml> {
    let doc = Document::parse(text).map_err(|e| Error::BadFile {
        path: path.to_path_buf(),
        reason: format!(
            "not well-formed XML ({e}); is the file truncated? Write it again with \
             `open(f, 'w').write(XmlSerializer.serialize(system))`"
        ),
    })?;
    let r = Reader { doc: &doc, path };
    let root = doc.root_element();
    if !root.has_tag_name("System") {
        return Err(r.bad(
            root,
            format!(
                "the root element is <{}>, not <System>; boltzflow reads serialised OpenMM Systems \
                 (XmlSerializer.serialize(system)), not force-field or State files",
                root.tag_name().name()
            ),
        ));
    }
    let mut masses = None;
    let mut forces = Vec::new();
    let mut constraints = Vec::new();
    for child in root.children().filter(Node::is_element) {
        match child.tag_name().name() {
            "PeriodicBoxVectors" => {} // always written; only periodic forces would use it
            "Particles" => {
                let mut m = Vec::new();
                for p in r.elements(child, "Particle")? {
                    if let Some(site) = p.children().find(Node::is_element) {
                        return Err(r.bad(
                            site,
                            format!(
                                "particle {} is a virtual site (<{}>); virtual sites are not supported",
                                m.len(),
                                site.tag_name().name()
                            ),
                        ));
                    }
                    m.push(r.f64(p, "mass")?);
                }
                masses = Some(m);
            }
            "Constraints" => {
                for c in r.elements(child, "Constraint")? {
                    let (i, j, d) = (r.usize(c, "p1")?, r.usize(c, "p2")?, r.f64(c, "d")?);
                    if i == j || !(d.is_finite() && d > 0.0) {
                        return Err(r.bad(
                            c,
                            format!("constraint {} between particles {i} and {j} at distance {d}: need two particles and a positive distance", constraints.len()),
                        ));
                    }
                    constraints.push((i, j, d));
                }
            }
            "Forces" => {
                for f in child.children().filter(Node::is_element) {
                    if let Some(force) = r.force(f)? {
                        forces.push(force);
                    }
                }
            }
            other => {
                return Err(r.bad(child, format!("unexpected element <{other}> in <System>")));
            }
        }
    }
    let masses = masses.ok_or_else(|| r.bad(root, "no <Particles> element"))?;
    let n = masses.len();
    if n == 0 {
        return Err(r.bad(root, "the System has no particles"));
    }
    for (i, m) in masses.iter().enumerate() {
        if !(m.is_finite() && *m > 0.0) {
            return Err(Error::BadFile {
                path: path.to_path_buf(),
                reason: format!(
                    "particle {i} has mass {m}; massless particles (virtual sites, frozen atoms) are not supported"
                ),
            });
        }
    }
    for f in &forces {
        check_indices(f, n, path)?;
    }
    if let Some((c, (i, j, _))) = constraints
        .iter()
        .enumerate()
        .find(|(_, (i, j, _))| *i >= n || *j >= n)
    {
        return Err(Error::BadFile {
            path: path.to_path_buf(),
            reason: format!(
                "constraint {c} joins particles {i} and {j}, but the System has {n} particles"
            ),
        });
    }
    Ok(SystemXml {
        path: path.to_path_buf(),
        openmm_version: root.attribute("openmmVersion").map(str::to_string),
        masses,
        forces,
        constraints,
    })
}

fn check_indices(f: &ForceXml, n: usize, path: &Path) -> Result<()> {
    let bad = |what: String| Error::BadFile {
        path: path.to_path_buf(),
        reason: format!("{}: {what}", f.name()),
    };
    let check = |kind: &str, i: usize, atoms: &[usize]| -> Result<()> {
        match atoms.iter().find(|&&a| a >= n) {
            Some(a) => Err(bad(format!(
                "{kind} {i} uses particle {a}, but the System has {n} particles"
            ))),
            None => Ok(()),
        }
    };
    match f {
        ForceXml::HarmonicBond { bonds, .. } => {
            for (i, b) in bonds.iter().enumerate() {
                check("bond", i, &b.atoms)?;
            }
        }
        ForceXml::HarmonicAngle { angles, .. } => {
            for (i, a) in angles.iter().enumerate() {
                check("angle", i, &a.atoms)?;
            }
        }
        ForceXml::PeriodicTorsion { torsions, .. } => {
            for (i, t) in torsions.iter().enumerate() {
                check("torsion", i, &t.atoms)?;
            }
        }
        ForceXml::Nonbonded {
            particles,
            exceptions,
            ..
        } => {
            if particles.len() != n {
                return Err(bad(format!(
                    "has parameters for {} particles, but the System has {n}",
                    particles.len()
                )));
            }
            for (i, e) in exceptions.iter().enumerate() {
                check("exception", i, &e.atoms)?;
                if e.atoms[0] == e.atoms[1] {
                    return Err(bad(format!(
                        "exception {i} pairs particle {} with itself",
                        e.atoms[0]
                    )));
                }
            }
        }
        ForceXml::GbsaObc { particles, .. } => {
            if particles.len() != n {
                return Err(bad(format!(
                    "has parameters for {} particles, but the System has {n}",
                    particles.len()
                )));
            }
        }
        ForceXml::CmMotionRemover { .. } => {}
    }
    Ok(())
}

/// Attribute access with messages that name the file, element and line.
struct Reader<'a, 'input> {
    doc: &'a Document<'input>,
    path: &'a Path,
}

impl Reader<'_, '_> {
    fn bad(&self, node: Node<'_, '_>, reason: impl std::fmt::Display) -> Error {
        let pos = self.doc.text_pos_at(node.range().start);
        Error::BadFile {
            path: self.path.to_path_buf(),
            reason: format!("<{}> at line {}: {reason}", node.tag_name().name(), pos.row),
        }
    }

    fn str<'n>(&self, node: Node<'n, '_>, name: &str) -> Result<&'n str> {
        node.attribute(name)
            .ok_or_else(|| self.bad(node, format!("attribute `{name}` is missing")))
    }

    fn f64(&self, node: Node<'_, '_>, name: &str) -> Result<f64> {
        let text = self.str(node, name)?;
        match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.bad(
                node,
                format!("attribute `{name}` = \"{text}\" is not a finite number"),
            )),
        }
    }

    fn usize(&self, node: Node<'_, '_>, name: &str) -> Result<usize> {
        let text = self.str(node, name)?;
        text.trim().parse::<usize>().map_err(|_| {
            self.bad(
                node,
                format!("attribute `{name}` = \"{text}\" is not a non-negative integer"),
            )
        })
    }

    /// The single child element `name` of `parent`.
    fn child<'a, 'i>(&self, parent: Node<'a, 'i>, name: &str) -> Result<Node<'a, 'i>> {
        parent
            .children()
            .find(|c| c.has_tag_name(name))
            .ok_or_else(|| self.bad(parent, format!("no <{name}> element")))
    }

    /// The element children of `parent`, which must all be `<name>`.
    fn elements<'a, 'i>(&self, parent: Node<'a, 'i>, name: &str) -> Result<Vec<Node<'a, 'i>>> {
        let mut out = Vec::new();
        for c in parent.children().filter(Node::is_element) {
            if !c.has_tag_name(name) {
                return Err(self.bad(
                    c,
                    format!(
                        "unexpected element in <{}>; expected <{name}>",
                        parent.tag_name().name()
                    ),
                ));
            }
            out.push(c);
        }
        Ok(out)
    }

    /// Rejects a non-empty optional child (global parameters, per-particle offsets, ...).
    fn must_be_empty(&self, parent: Node<'_, '_>, name: &str, why: &str) -> Result<()> {
        if let Some(c) = parent.children().find(|c| c.has_tag_name(name))
            && let Some(item) = c.children().find(Node::is_element)
        {
            return Err(self.bad(item, format!("in <{name}>: {why}")));
        }
        Ok(())
    }

    fn not_periodic(&self, f: Node<'_, '_>) -> Result<()> {
        if f.attribute("usesPeriodic").is_some_and(|v| v.trim() != "0") {
            return Err(self.bad(
                f,
                "the force uses periodic boundary conditions; boltzflow evaluates molecules in \
                 vacuum only (create the System without a periodic box)",
            ));
        }
        Ok(())
    }

    fn force(&self, f: Node<'_, '_>) -> Result<Option<ForceXml>> {
        if !f.has_tag_name("Force") {
            return Err(self.bad(f, "unexpected element in <Forces>; expected <Force>"));
        }
        let kind = self.str(f, "type")?;
        let group = match f.attribute("forceGroup") {
            Some(_) => {
                let g = self.usize(f, "forceGroup")?;
                if g > 31 {
                    return Err(self.bad(f, format!("force group {g} is outside 0..=31")));
                }
                g as u32
            }
            None => 0,
        };
        Ok(Some(match kind {
            "HarmonicBondForce" => {
                self.not_periodic(f)?;
                let mut bonds = Vec::new();
                for b in self.elements(self.child(f, "Bonds")?, "Bond")? {
                    bonds.push(BondXml {
                        atoms: [self.usize(b, "p1")?, self.usize(b, "p2")?],
                        length: self.f64(b, "d")?,
                        k: self.f64(b, "k")?,
                    });
                }
                ForceXml::HarmonicBond { group, bonds }
            }
            "HarmonicAngleForce" => {
                self.not_periodic(f)?;
                let mut angles = Vec::new();
                for a in self.elements(self.child(f, "Angles")?, "Angle")? {
                    angles.push(AngleXml {
                        atoms: [
                            self.usize(a, "p1")?,
                            self.usize(a, "p2")?,
                            self.usize(a, "p3")?,
                        ],
                        angle: self.f64(a, "a")?,
                        k: self.f64(a, "k")?,
                    });
                }
                ForceXml::HarmonicAngle { group, angles }
            }
            "PeriodicTorsionForce" => {
                self.not_periodic(f)?;
                let mut torsions = Vec::new();
                for t in self.elements(self.child(f, "Torsions")?, "Torsion")? {
                    let periodicity = self.usize(t, "periodicity")?;
                    if periodicity == 0 || periodicity > 64 {
                        return Err(
                            self.bad(t, format!("periodicity {periodicity} is outside 1..=64"))
                        );
                    }
                    torsions.push(TorsionXml {
                        atoms: [
                            self.usize(t, "p1")?,
                            self.usize(t, "p2")?,
                            self.usize(t, "p3")?,
                            self.usize(t, "p4")?,
                        ],
                        periodicity: periodicity as u32,
                        phase: self.f64(t, "phase")?,
                        k: self.f64(t, "k")?,
                    });
                }
                ForceXml::PeriodicTorsion { group, torsions }
            }
            "NonbondedForce" => self.nonbonded(f, group)?,
            "GBSAOBCForce" => self.gbsa_obc(f, group)?,
            "CMMotionRemover" => ForceXml::CmMotionRemover { group },
            other => {
                return Err(self.bad(
                    f,
                    format!(
                        "force type `{other}` is not supported; boltzflow evaluates \
                         HarmonicBondForce, HarmonicAngleForce, PeriodicTorsionForce, \
                         NonbondedForce and GBSAOBCForce (NoCutoff), and ignores CMMotionRemover"
                    ),
                ));
            }
        }))
    }

    fn gbsa_obc(&self, f: Node<'_, '_>, group: u32) -> Result<ForceXml> {
        let method = self.usize(f, "method")?;
        if method != 0 {
            let name = ["NoCutoff", "CutoffNonPeriodic", "CutoffPeriodic"]
                .get(method)
                .copied()
                .unwrap_or("unknown");
            return Err(self.bad(
                f,
                format!(
                    "GBSAOBCForce method {method} ({name}) is not supported; boltzflow evaluates \
                     NoCutoff only: create the System with `nonbondedMethod=NoCutoff`"
                ),
            ));
        }
        let positive = |name: &str| -> Result<f64> {
            let v = self.f64(f, name)?;
            if v > 0.0 {
                Ok(v)
            } else {
                Err(self.bad(f, format!("`{name}` must be positive, got {v}")))
            }
        };
        let solute_dielectric = positive("soluteDielectric")?;
        let solvent_dielectric = positive("solventDielectric")?;
        let surface_area_energy = self.f64(f, "surfaceAreaEnergy")?;
        let mut particles = Vec::new();
        for p in self.elements(self.child(f, "Particles")?, "Particle")? {
            let radius = self.f64(p, "r")?;
            let scale = self.f64(p, "scale")?;
            // The Born-radius integral uses radius − 0.009 nm (OpenMM's dielectric offset).
            if radius <= GBSA_DIELECTRIC_OFFSET {
                return Err(self.bad(
                    p,
                    format!(
                        "particle {}: radius {radius} nm must exceed the dielectric offset {GBSA_DIELECTRIC_OFFSET} nm",
                        particles.len()
                    ),
                ));
            }
            if scale < 0.0 {
                return Err(self.bad(
                    p,
                    format!("particle {}: scale {scale} is negative", particles.len()),
                ));
            }
            particles.push(GbsaParticleXml {
                charge: self.f64(p, "q")?,
                radius,
                scale,
            });
        }
        Ok(ForceXml::GbsaObc {
            group,
            particles,
            solute_dielectric,
            solvent_dielectric,
            surface_area_energy,
        })
    }

    fn nonbonded(&self, f: Node<'_, '_>, group: u32) -> Result<ForceXml> {
        const METHODS: [&str; 6] = [
            "NoCutoff",
            "CutoffNonPeriodic",
            "CutoffPeriodic",
            "Ewald",
            "PME",
            "LJPME",
        ];
        let method = self.usize(f, "method")?;
        if method != 0 {
            let name = METHODS.get(method).copied().unwrap_or("unknown");
            return Err(self.bad(
                f,
                format!(
                    "nonbonded method {method} ({name}) is not supported; boltzflow evaluates \
                     NoCutoff only: create the System with `nonbondedMethod=NoCutoff`"
                ),
            ));
        }
        if f.attribute("includeDirectSpace")
            .is_some_and(|v| v.trim() == "0")
        {
            return Err(self.bad(
                f,
                "includeDirectSpace=0 (no direct-space interactions) is not supported",
            ));
        }
        let offsets = "parameter offsets and global parameters are not supported";
        self.must_be_empty(f, "GlobalParameters", offsets)?;
        self.must_be_empty(f, "ParticleOffsets", offsets)?;
        self.must_be_empty(f, "ExceptionOffsets", offsets)?;
        let mut particles = Vec::new();
        for p in self.elements(self.child(f, "Particles")?, "Particle")? {
            particles.push(NonbondedParticleXml {
                charge: self.f64(p, "q")?,
                sigma: self.f64(p, "sig")?,
                epsilon: self.f64(p, "eps")?,
            });
        }
        let mut exceptions = Vec::new();
        if let Some(list) = f.children().find(|c| c.has_tag_name("Exceptions")) {
            for e in self.elements(list, "Exception")? {
                exceptions.push(ExceptionXml {
                    atoms: [self.usize(e, "p1")?, self.usize(e, "p2")?],
                    charge_product: self.f64(e, "q")?,
                    sigma: self.f64(e, "sig")?,
                    epsilon: self.f64(e, "eps")?,
                });
            }
        }
        Ok(ForceXml::Nonbonded {
            group,
            particles,
            exceptions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: &str = r#"<?xml version="1.0" ?>
<System openmmVersion="8.6.1" type="System" version="1">
	<PeriodicBoxVectors><A x="2" y="0" z="0"/><B x="0" y="2" z="0"/><C x="0" y="0" z="2"/></PeriodicBoxVectors>
	<Particles><Particle mass="12"/><Particle mass="1"/><Particle mass="16"/></Particles>
	<Constraints/>
	<Forces>
		<Force forceGroup="0" name="HarmonicBondForce" type="HarmonicBondForce" usesPeriodic="0" version="2">
			<Bonds><Bond d=".1" k="1000" p1="0" p2="1"/></Bonds>
		</Force>
		<Force forceGroup="3" method="METHOD" name="NonbondedForce" type="NonbondedForce" version="4">
			<GlobalParameters/><ParticleOffsets/><ExceptionOffsets/>
			<Particles><Particle eps=".1" q=".5" sig=".3"/><Particle eps=".1" q="-.5" sig=".3"/><Particle eps=".2" q="0" sig=".3"/></Particles>
			<Exceptions><Exception eps="0" p1="0" p2="1" q="0" sig="1"/></Exceptions>
		</Force>
		<Force forceGroup="4" frequency="1" name="CMMotionRemover" type="CMMotionRemover" version="1"/>
	</Forces>
</System>"#;

    fn parse(text: &str) -> Result<SystemXml> {
        parse_system_xml(text, Path::new("mini.xml"))
    }

    #[test]
    fn reads_masses_forces_and_groups() {
        let s = parse(&MINI.replace("METHOD", "0")).unwrap();
        assert_eq!(s.masses, vec![12.0, 1.0, 16.0]);
        assert_eq!(s.openmm_version.as_deref(), Some("8.6.1"));
        let groups: Vec<u32> = s.forces.iter().map(ForceXml::group).collect();
        assert_eq!(groups, vec![0, 3, 4]);
        match &s.forces[1] {
            ForceXml::Nonbonded {
                particles,
                exceptions,
                ..
            } => {
                assert_eq!(particles[1].charge, -0.5);
                assert_eq!(exceptions[0].atoms, [0, 1]);
            }
            other => panic!("{other:?}"),
        }
    }

    fn message(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn cutoffs_constraints_unknown_forces_and_truncation_are_named() {
        let m = message(&MINI.replace("METHOD", "4"));
        assert!(
            m.contains("mini.xml") && m.contains("PME") && m.contains("line 10"),
            "{m}"
        );
        let with = |c: &str| {
            MINI.replace("METHOD", "0")
                .replace("<Constraints/>", &format!("<Constraints>{c}</Constraints>"))
        };
        let x = parse(&with(r#"<Constraint d=".1" p1="0" p2="1"/>"#)).unwrap();
        assert_eq!(x.constraints, vec![(0, 1, 0.1)]);
        let m = message(&with(r#"<Constraint d="-.1" p1="0" p2="1"/>"#));
        assert!(m.contains("positive distance"), "{m}");
        let m = message(&with(r#"<Constraint d=".1" p1="0" p2="99"/>"#));
        assert!(m.contains("constraint 0 joins particles 0 and 99"), "{m}");
        let m = message(
            &MINI
                .replace("METHOD", "0")
                .replace(r#"type="CMMotionRemover""#, r#"type="CustomBondForce""#),
        );
        assert!(m.contains("`CustomBondForce` is not supported"), "{m}");
        let m = message(&MINI.replace("METHOD", "0")[..700]);
        assert!(
            m.contains("not well-formed XML") && m.contains("truncated"),
            "{m}"
        );
        let m = message(
            &MINI
                .replace("METHOD", "0")
                .replace(r#"p2="1"/></Bonds>"#, r#"p2="7"/></Bonds>"#),
        );
        assert!(
            m.contains("bond 0 uses particle 7") && m.contains("3 particles"),
            "{m}"
        );
        let m = message(&MINI.replace("METHOD", "0").replace(r#"d=".1""#, r#"d="x""#));
        assert!(m.contains("attribute `d` = \"x\""), "{m}");
        let m = message(
            &MINI
                .replace("METHOD", "0")
                .replace(r#"usesPeriodic="0""#, r#"usesPeriodic="1""#),
        );
        assert!(m.contains("periodic"), "{m}");
        let m = message(&MINI.replace("METHOD", "0").replace(
            "<GlobalParameters/>",
            r#"<GlobalParameters><Parameter default="1" name="lambda"/></GlobalParameters>"#,
        ));
        assert!(m.contains("global parameters"), "{m}");
    }
}
