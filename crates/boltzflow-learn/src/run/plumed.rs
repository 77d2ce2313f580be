//! A learned CV as a PLUMED input (issue 19): the encoder mean μ(x) of a VAE of a molecule in
//! internal coordinates, as a chain of PLUMED actions that any PLUMED 2 build evaluates
//! without extra modules.
//!
//! - one `DISTANCE`, `ANGLE` or `TORSION` per internal coordinate (atoms numbered from 1, the
//!   order of the System XML and the PDB; lengths in nm and angles in rad, PLUMED's defaults);
//! - one `CUSTOM` per encoder input: a standardised bond or angle (q − shift)/scale, a rigid
//!   torsion wrap(q − shift)/scale with wrap(a) = a − 2π⌊(a + π)/2π⌋, or the sine and cosine of
//!   a free torsion;
//! - one `CUSTOM` per unit of every layer of the encoder MLP, FUNC=max(0, b + Σ wᵢ vᵢ) for the
//!   ReLU layers and the plain affine map for the output, of which the first k units are μ.
//!
//! PLUMED's `ANN` function has no ReLU activation, so a CUSTOM chain is the portable form; it
//! has one action per hidden unit (a [64, 64] encoder: 128 actions), which PLUMED evaluates in
//! microseconds per step. The values are those of boltzflow's encoder in f64 from the f32
//! parameters; the tests evaluate the exported text with an independent interpreter and
//! compare with [`VaeRun::encode`].

use std::fmt::Write as _;

use boltzflow_core::{Error, Result};
use boltzflow_nn::linear::Activation;

use super::VaeRun;
use super::vae_representation::{Representation, RepresentationKind};

/// Significant digits of the exported numbers (f32 parameters need 9).
fn num(v: f64) -> String {
    format!("{v:.9e}")
}

/// `b + w₀·v₀ + …` with explicit signs, skipping zero weights.
fn affine(bias: f64, terms: impl Iterator<Item = (f64, String)>) -> String {
    let mut s = num(bias);
    for (w, v) in terms {
        if w == 0.0 {
            continue;
        }
        let _ = if w < 0.0 {
            write!(s, "-{}*{v}", num(-w))
        } else {
            write!(s, "+{}*{v}", num(w))
        };
    }
    s
}

/// The PLUMED input computing the encoder mean of stage `stage` (default: the last finished)
/// of `run` as `{label}_0 … {label}_{k−1}`.
///
/// # Errors
/// A run that is not a molecule in `internal` coordinates (aligned Cartesian coordinates would
/// need PLUMED's FIT_TO_TEMPLATE with the run's reference, not exported); an unknown stage; no
/// finished stage.
pub fn plumed_input(run: &VaeRun, stage: Option<usize>, label: &str) -> Result<String> {
    let repr = run.fitted_representation()?;
    let Some(Representation::Internal(layer)) = repr else {
        return Err(Error::invalid(
            "RUN_DIR",
            format!(
                "PLUMED export needs a VAE of a molecule in internal coordinates ([vae] representation = \"internal\"); this run's is {}",
                run.representation
                    .map_or("the toy system's own coordinates", RepresentationKind::name)
            ),
        ));
    };
    if label.is_empty() || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::invalid(
            "--label",
            format!("`{label}` is not a PLUMED label (letters, digits, _)"),
        ));
    }
    let (vae, trained) = run.trained()?;
    let s = stage.unwrap_or(trained.len() - 1);
    let (st, params) = trained.get(s).ok_or_else(|| {
        Error::invalid(
            "--stage",
            format!("the run has {} finished stages, got {s}", trained.len()),
        )
    })?;
    let k = vae.latent_dim();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# boltzflow: the encoder mean μ(x) of the VAE in {} (stage {s}, {}; {} decoder,\n\
         # latent dimension {k}) as {label}_0 … {label}_{}. Atoms are numbered from 1 in the order\n\
         # of the System XML / PDB; lengths nm, angles rad (PLUMED's default units).",
        run.dir.display(),
        st.label(),
        vae.decoder().kind().name(),
        k - 1
    );
    let _ = writeln!(out, "\n# internal coordinates");
    let kinds = ["", "", "DISTANCE", "ANGLE", "TORSION"];
    for (c, atoms) in layer.column_atoms().iter().enumerate() {
        let list: Vec<String> = atoms.iter().map(|a| (a + 1).to_string()).collect();
        let _ = writeln!(
            out,
            "{label}_q{c}: {} ATOMS={}",
            kinds[atoms.len()],
            list.join(",")
        );
    }
    let _ = writeln!(out, "\n# encoder inputs");
    let mut inputs = Vec::new();
    let tau = std::f64::consts::TAU;
    let pi = std::f64::consts::PI;
    for c in 0..layer.dim() {
        let (shift, scale) = (layer.shift()[c], layer.scale()[c]);
        let q = format!("{label}_q{c}");
        if layer.periodic()[c] {
            for (f, name) in [("sin", "s"), ("cos", "c")] {
                let v = format!("{label}_in{c}{name}");
                let _ = writeln!(out, "{v}: CUSTOM ARG={q} VAR=q FUNC={f}(q) PERIODIC=NO");
                inputs.push(v);
            }
        } else {
            let d = if layer.kinds()[c] == boltzflow_coords::internal::IcKind::Torsion {
                format!(
                    "(q-{s}-{t}*floor((q-{s}+{p})/{t}))",
                    s = num(shift),
                    t = num(tau),
                    p = num(pi)
                )
            } else {
                format!("(q-{})", num(shift))
            };
            let v = format!("{label}_in{c}");
            let _ = writeln!(
                out,
                "{v}: CUSTOM ARG={q} VAR=q FUNC={d}/{} PERIODIC=NO",
                num(scale)
            );
            inputs.push(v);
        }
    }
    let layers = vae.encoder().layers();
    for (l, lin) in layers.iter().enumerate() {
        let last = l + 1 == layers.len();
        let _ = writeln!(
            out,
            "\n# encoder layer {} ({} → {}{})",
            l + 1,
            lin.fan_in(),
            if last { k } else { lin.fan_out() },
            if last { ", the means μ" } else { ", ReLU" }
        );
        debug_assert_eq!(lin.fan_in(), inputs.len());
        let act = lin.activation();
        if !matches!(act, Activation::Relu | Activation::Identity) {
            return Err(Error::invalid(
                "RUN_DIR",
                format!("the encoder's activation {act:?} has no PLUMED export"),
            ));
        }
        let w = &params[lin.weight_range()];
        let b = &params[lin.bias_range()];
        let fan_out = lin.fan_out();
        let units = if last { k } else { fan_out };
        let vars: Vec<String> = (0..inputs.len()).map(|i| format!("v{i}")).collect();
        let mut next = Vec::with_capacity(units);
        for j in 0..units {
            let expr = affine(
                f64::from(b[j]),
                (0..inputs.len()).map(|i| (f64::from(w[i * fan_out + j]), vars[i].clone())),
            );
            let expr = if act == Activation::Relu {
                format!("max(0,{expr})")
            } else {
                expr
            };
            let name = if last {
                format!("{label}_{j}")
            } else {
                format!("{label}_h{}_{j}", l + 1)
            };
            let _ = writeln!(
                out,
                "{name}: CUSTOM ARG={} VAR={} FUNC={expr} PERIODIC=NO",
                inputs.join(","),
                vars.join(",")
            );
            next.push(name);
        }
        inputs = next;
    }
    let mu: Vec<String> = (0..k).map(|j| format!("{label}_{j}")).collect();
    let _ = writeln!(
        out,
        "\n# for example:\n# PRINT ARG={} STRIDE=500 FILE=COLVAR\n# METAD ARG={label}_0 SIGMA=0.1 HEIGHT=1.2 PACE=500 BIASFACTOR=6 FILE=HILLS",
        mu.join(",")
    );
    Ok(out)
}
