//! System specifications `name[:key=value,...]` and the catalog of systems.

use std::collections::BTreeMap;
use std::fmt;

use boltzflow_core::{Error, Result};

use crate::{
    Beltway, BeltwayPolar, Bimodal2d, CorrBimodal2d, DimerBath, DoubleWell, Gaussian2d,
    MuellerBrown, System,
};

/// A parsed system specification: a name and `key=value` parameters.
///
/// ```
/// let s: boltzflow_systems::SystemSpec = "dimer-bath:slope=-1".parse().unwrap();
/// assert_eq!(s.name, "dimer-bath");
/// assert_eq!(s.params["slope"], "-1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemSpec {
    /// The system's name.
    pub name: String,
    /// Parameters as written, by key.
    pub params: BTreeMap<String, String>,
}

impl std::str::FromStr for SystemSpec {
    type Err = Error;

    fn from_str(spec: &str) -> Result<Self> {
        let bad = |reason: String| Error::InvalidSpec {
            spec: spec.to_string(),
            reason,
        };
        let (name, rest) = match spec.split_once(':') {
            Some((n, r)) => (n.trim(), Some(r)),
            None => (spec.trim(), None),
        };
        if let Some(&(_, example)) = FILE_SYSTEMS.iter().find(|(n, _)| *n == name) {
            // `openmm:PATH`, `couplings:PATH`: the rest is a file name, which may hold commas
            // or `=`.
            let path = rest
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .ok_or_else(|| bad(format!("give the file as `{name}:{example}`")))?;
            return Ok(Self {
                name: name.to_string(),
                params: BTreeMap::from([(OPENMM_FILE.to_string(), path.to_string())]),
            });
        }
        if name.is_empty() {
            return Err(bad(format!(
                "no system name; known systems: {}",
                known_names()
            )));
        }
        let mut params = BTreeMap::new();
        for item in rest.into_iter().flat_map(|r| r.split(',')) {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| bad(format!("`{item}` is not of the form key=value")))?;
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() || v.is_empty() {
                return Err(bad(format!("`{item}` has an empty key or value")));
            }
            if params.insert(k.to_string(), v.to_string()).is_some() {
                return Err(bad(format!("parameter `{k}` is given twice")));
            }
        }
        Ok(Self {
            name: name.to_string(),
            params,
        })
    }
}

/// The name of OpenMM systems, `openmm:PATH.xml`.
const OPENMM: &str = "openmm";
/// The key under which an `openmm:` or `couplings:` spec keeps its path.
const OPENMM_FILE: &str = "file";
/// The key under which a file-backed spec keeps its path.
pub(crate) const FILE_KEY: &str = OPENMM_FILE;
/// Systems whose spec is `name:PATH`, with an example file name.
const FILE_SYSTEMS: &[(&str, &str)] = &[(OPENMM, "PATH.xml"), ("couplings", "PATH.npy")];

impl fmt::Display for SystemSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if FILE_SYSTEMS.iter().any(|(n, _)| *n == self.name)
            && let Some(path) = self.params.get(OPENMM_FILE)
        {
            return write!(f, "{}:{path}", self.name);
        }
        f.write_str(&self.name)?;
        for (i, (k, v)) in self.params.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { ':' } else { ',' })?;
        }
        Ok(())
    }
}

/// A parameter a system accepts.
#[derive(Debug, Clone, Copy)]
pub struct ParamInfo {
    /// Key as written in a spec.
    pub name: &'static str,
    /// Default value, as text.
    pub default: &'static str,
    /// What it means.
    pub doc: &'static str,
}

/// A system in the catalog.
#[derive(Debug, Clone, Copy)]
pub struct SystemInfo {
    /// Name as written in a spec.
    pub name: &'static str,
    /// Number of coordinates with the default parameters.
    pub dim: usize,
    /// One line on what it is.
    pub summary: &'static str,
    /// Accepted parameters.
    pub params: &'static [ParamInfo],
}

const CATALOG: &[SystemInfo] = &[
    SystemInfo {
        name: "mueller",
        dim: 2,
        summary: "Müller–Brown potential scaled by k (three minima), in kT",
        params: &[ParamInfo {
            name: "k",
            default: "0.1",
            doc: "scale factor of the potential (> 0)",
        }],
    },
    SystemInfo {
        name: "double-well",
        dim: 2,
        summary: "a4·x1⁴ − a2·x1² + a1·x1 + ½k·x2² (Boltzmann-generator paper's code), in kT",
        params: &[
            ParamInfo {
                name: "a4",
                default: "1",
                doc: "quartic coefficient (> 0)",
            },
            ParamInfo {
                name: "a2",
                default: "6",
                doc: "quadratic coefficient",
            },
            ParamInfo {
                name: "a1",
                default: "1",
                doc: "linear tilt",
            },
            ParamInfo {
                name: "k",
                default: "1",
                doc: "harmonic constant along x2 (> 0)",
            },
        ],
    },
    SystemInfo {
        name: "dimer-bath",
        dim: 76,
        summary: "2D particle dimer in a repulsive solvent bath in a box (Noé et al. 2019), in kT",
        params: &[
            ParamInfo {
                name: "slope",
                default: "-0.5",
                doc: "linear term c of the dimer double well",
            },
            ParamInfo {
                name: "nsolvent",
                default: "36",
                doc: "number of solvent particles (0..=200)",
            },
        ],
    },
    SystemInfo {
        name: "gaussian2d",
        dim: 2,
        summary: "N((−3, −3), I), energy −ln p",
        params: &[],
    },
    SystemInfo {
        name: "bimodal2d",
        dim: 2,
        summary: "each coordinate 0.6 N(−3, 1) + 0.4 N(3, 1), energy −ln p",
        params: &[],
    },
    SystemInfo {
        name: "corr-bimodal2d",
        dim: 2,
        summary: "x1 ~ 0.6 N(−3, 1) + 0.4 N(3, 1), x2 ~ N(∓3, 1) by the sign of x1, energy −ln p",
        params: &[],
    },
    SystemInfo {
        name: "beltway",
        dim: 2,
        summary: "two rings (radius Gamma mixture, uniform angle), energy −ln p(x, y)",
        params: &[],
    },
    SystemInfo {
        name: OPENMM,
        dim: 0,
        summary: "openmm:FILE.xml — a molecule from an OpenMM System XML (NoCutoff, no constraints), kJ/mol, nm; --pdb gives the topology and start positions",
        params: &[],
    },
    SystemInfo {
        name: "beltway-polar",
        dim: 2,
        summary: "the beltway in (r, θ), θ periodic on [−π, π), energy −ln p(r, θ)",
        params: &[],
    },
];

/// Every system that [`build`] accepts.
pub fn catalog() -> &'static [SystemInfo] {
    CATALOG
}

fn known_names() -> String {
    CATALOG
        .iter()
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Typed access to a spec's parameters with defaults and validation.
struct Params<'a> {
    spec: &'a SystemSpec,
    info: &'static SystemInfo,
}

impl Params<'_> {
    fn f64(&self, key: &str, check: impl Fn(f64) -> bool, requirement: &str) -> Result<f64> {
        let info = self
            .info
            .params
            .iter()
            .find(|p| p.name == key)
            .expect("declared parameter");
        let text = self
            .spec
            .params
            .get(key)
            .map_or(info.default, String::as_str);
        let bad = |why: String| Error::InvalidSpec {
            spec: self.spec.to_string(),
            reason: format!("parameter `{key}` = `{text}` {why}"),
        };
        let v: f64 = text.parse().map_err(|_| bad("is not a number".into()))?;
        if !v.is_finite() || !check(v) {
            return Err(bad(format!("must be {requirement}")));
        }
        Ok(v)
    }
}

/// Builds the system a spec names.
///
/// # Errors
/// [`Error::InvalidSpec`] for an unknown name (listing the known ones), an unknown key (listing
/// the accepted ones) or an invalid value (saying what is required).
pub fn build(spec: &str) -> Result<Box<dyn System>> {
    build_spec(&spec.parse()?)
}

/// Builds a system and attaches a PDB structure (topology and starting positions), which only
/// `openmm:` systems take.
///
/// # Errors
/// As [`build`]; [`Error::InvalidParameter`] for a PDB with another system; the errors of
/// [`boltzflow_io::pdb::read_pdb`] and [`crate::OpenMmSystem::with_structure`].
pub fn build_with_pdb(spec: &str, pdb: Option<&std::path::Path>) -> Result<Box<dyn System>> {
    let parsed: SystemSpec = spec.parse()?;
    let Some(pdb) = pdb else {
        return build_spec(&parsed);
    };
    if parsed.name != OPENMM {
        return Err(Error::invalid(
            "--pdb",
            format!(
                "a PDB file is only used with `openmm:FILE.xml` systems, and `{spec}` is not one"
            ),
        ));
    }
    let path = parsed.params.get(OPENMM_FILE).map_or("", String::as_str);
    let system = crate::OpenMmSystem::from_file(std::path::Path::new(path))?;
    Ok(Box::new(
        system.with_structure(boltzflow_io::pdb::read_pdb(pdb)?, pdb)?,
    ))
}

/// Builds the system of a parsed spec; see [`build`].
///
/// # Errors
/// As [`build`].
pub fn build_spec(spec: &SystemSpec) -> Result<Box<dyn System>> {
    if spec.name == OPENMM {
        let path = spec.params.get(OPENMM_FILE).map_or("", String::as_str);
        return Ok(Box::new(crate::OpenMmSystem::from_file(
            std::path::Path::new(path),
        )?));
    }
    let info = CATALOG.iter().find(|s| s.name == spec.name).ok_or_else(|| Error::InvalidSpec {
        spec: spec.to_string(),
        reason: format!(
            "unknown system `{}`; known systems: {} (run `boltzflow systems` for their parameters)",
            spec.name,
            known_names()
        ),
    })?;
    if let Some(k) = spec
        .params
        .keys()
        .find(|k| !info.params.iter().any(|p| p.name == *k))
    {
        let accepted = if info.params.is_empty() {
            "it takes no parameters".to_string()
        } else {
            format!(
                "accepted: {}",
                info.params
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err(Error::InvalidSpec {
            spec: spec.to_string(),
            reason: format!("`{}` has no parameter `{k}`; {accepted}", info.name),
        });
    }
    let p = Params { spec, info };
    let any = |_: f64| true;
    let positive = |v: f64| v > 0.0;
    Ok(match info.name {
        "mueller" => Box::new(MuellerBrown::new(p.f64("k", positive, "positive")?)),
        "double-well" => Box::new(DoubleWell {
            a4: p.f64("a4", positive, "positive")?,
            a2: p.f64("a2", any, "finite")?,
            a1: p.f64("a1", any, "finite")?,
            k: p.f64("k", positive, "positive")?,
        }),
        "dimer-bath" => {
            let n = p.f64(
                "nsolvent",
                |v| v.fract() == 0.0 && (0.0..=200.0).contains(&v),
                "an integer from 0 to 200",
            )?;
            Box::new(DimerBath::new(n as usize, p.f64("slope", any, "finite")?))
        }
        "gaussian2d" => Box::new(Gaussian2d),
        "bimodal2d" => Box::new(Bimodal2d),
        "corr-bimodal2d" => Box::new(CorrBimodal2d),
        "beltway" => Box::new(Beltway::default()),
        "beltway-polar" => Box::new(BeltwayPolar::default()),
        other => unreachable!("catalog entry `{other}` without a constructor"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(spec: &str) -> String {
        match build(spec) {
            Ok(_) => panic!("`{spec}` was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_catalog_entry_builds_with_defaults_and_round_trips_its_spec() {
        for info in catalog().iter().filter(|i| i.name != OPENMM) {
            let s = build(info.name).unwrap();
            assert_eq!(s.dim(), info.dim, "{}", info.name);
            let again = build(&s.spec()).unwrap();
            assert_eq!(again.spec(), s.spec());
        }
    }

    #[test]
    fn specs_print_as_they_parse() {
        // Every form a spec takes, file-backed ones included, prints back to itself.
        for text in [
            "mueller",
            "mueller:k=0.1",
            "dimer-bath:nsolvent=4,slope=-1",
            "openmm:/data/ala2, vacuum.xml",
            "couplings:runs/j=1.npy",
        ] {
            let spec: SystemSpec = text.parse().unwrap();
            assert_eq!(spec.to_string(), text);
            assert_eq!(spec.to_string().parse::<SystemSpec>().unwrap(), spec);
        }
    }

    #[test]
    fn parameters_are_applied() {
        assert_eq!(build("mueller:k=1").unwrap().spec(), "mueller:k=1");
        assert_eq!(build("dimer-bath:nsolvent=4").unwrap().dim(), 12);
    }

    #[test]
    fn bad_specs_say_what_is_accepted() {
        let m = message("muller");
        assert!(
            m.contains("unknown system `muller`") && m.contains("mueller, double-well"),
            "{m}"
        );
        let m = message("mueller:kk=2");
        assert!(
            m.contains("no parameter `kk`") && m.contains("accepted: k"),
            "{m}"
        );
        let m = message("mueller:k=-1");
        assert!(m.contains("must be positive"), "{m}");
        let m = message("mueller:k=abc");
        assert!(m.contains("not a number"), "{m}");
        let m = message("gaussian2d:s=1");
        assert!(m.contains("takes no parameters"), "{m}");
        let m = message("dimer-bath:nsolvent=2.5");
        assert!(m.contains("integer"), "{m}");
        let m = message("mueller:k");
        assert!(m.contains("key=value"), "{m}");
        let m = message("mueller:k=1,k=2");
        assert!(m.contains("twice"), "{m}");
        let m = message("mueller:k=inf");
        assert!(m.contains("must be positive"), "{m}");
    }
}
