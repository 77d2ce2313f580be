//! What every kind of run directory shares: where it goes, how it is started or resumed, its
//! log, the optimizer moments in its checkpoint, and the report's index page.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use boltzflow_core::Error;
use boltzflow_nn::{Adam, ParamLayout, TensorFile};

/// The system of a `[system]` table and the β that turns its energies into kT: 1/(k_B T) for
/// molecules (T from `temperature`, default 300 K), 1 for the reduced toy systems, where a
/// temperature other than 1 is an error whose message ends with `toy_hint`.
pub fn build_system(
    sys: &boltzflow_learn::config::SystemConfig,
    toy_hint: &str,
) -> Result<(Box<dyn boltzflow_systems::System>, f64)> {
    let system = boltzflow_systems::build_with_pdb(&sys.spec, sys.pdb.as_deref())
        .context("in [system] of the configuration")?;
    let beta = if system.atom_masses().is_some() {
        let t = sys.temperature.unwrap_or(300.0);
        if !(t > 0.0 && t.is_finite()) {
            bail!(Error::invalid(
                "system.temperature",
                format!("must be positive kelvin, got {t}")
            ));
        }
        1.0 / (boltzflow_core::KB_KJ_PER_MOL_K * t)
    } else {
        if let Some(t) = sys.temperature
            && t != 1.0
        {
            bail!(Error::invalid(
                "system.temperature",
                format!(
                    "{} is in reduced units (kT = 1); {toy_hint}, got {t}",
                    sys.spec
                )
            ));
        }
        1.0
    };
    Ok((system, beta))
}

/// `--out`, or `runs/<configuration file stem>`.
pub fn out_dir(out: Option<&Path>, config: &Path) -> PathBuf {
    out.map_or_else(
        || {
            let stem = config
                .file_stem()
                .map_or("run".into(), |s| s.to_string_lossy().into_owned());
            PathBuf::from("runs").join(stem)
        },
        Path::to_path_buf,
    )
}

/// The `config.toml` of an existing run directory.
pub fn config_file(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("config.toml");
    if !path.exists() {
        bail!(Error::invalid(
            "RUN_DIR",
            format!(
                "`{}` has no config.toml; is it a run directory made by `boltzflow train`?",
                dir.display()
            )
        ));
    }
    Ok(path)
}

/// Starts or resumes a run in `out`; returns whether it resumes.
///
/// * `resume` and `out` holds a run (config.toml or a checkpoint): the stored configuration
///   must equal this one (`stored_config_equal`); temporaries left by a killed write are removed.
/// * `resume` and nothing there yet (a run killed before it wrote anything): starts afresh.
/// * Otherwise a run in `out`, finished or not, is refused unless `force`, which deletes it.
///
/// Starting creates the directory and writes the resolved configuration `config_toml`
/// atomically.
pub fn start_or_resume(
    out: &Path,
    (resume, force): (bool, bool),
    checkpoint: &Path,
    config_toml: &str,
    stored_config_equal: impl FnOnce() -> Result<bool>,
) -> Result<bool> {
    let holds_run = out.join("config.toml").exists() || checkpoint.exists();
    if resume && holds_run {
        if !stored_config_equal()? {
            bail!(Error::invalid(
                "--resume",
                format!(
                    "the configuration differs from the one `{}` was started with (its config.toml); resume with the same file, seed and system, or start a new run in another --out",
                    out.display()
                )
            ));
        }
        boltzflow_io::remove_stale_temporaries(out)?;
        return Ok(true);
    }
    if holds_run {
        if !force {
            bail!(Error::invalid(
                "--out",
                format!(
                    "`{}` already holds a run; continue it with --resume, start it over with --force (deletes it), or choose another --out",
                    out.display()
                )
            ));
        }
        std::fs::remove_dir_all(out).map_err(|source| Error::Io {
            action: "cannot remove",
            path: out.to_path_buf(),
            source,
        })?;
    }
    std::fs::create_dir_all(out).map_err(|source| Error::Io {
        action: "cannot create",
        path: out.to_path_buf(),
        source,
    })?;
    boltzflow_io::write_atomic(&out.join("config.toml"), |w| {
        w.write_all(config_toml.as_bytes())
    })?;
    let _ = std::fs::remove_file(out.join("log.txt"));
    Ok(false)
}

/// Appends a line to `dir/log.txt`.
pub fn append_log(dir: &Path, line: &str) -> Result<()> {
    let path = dir.join("log.txt");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(f, "{line}")?;
    Ok(())
}

/// Adds Adam's moments as `optimizer.m.{name}` / `optimizer.v.{name}` tensors.
pub fn push_moments(f: &mut TensorFile<f32>, layout: &ParamLayout, adam: &Adam<f32>) {
    for e in layout.entries() {
        f.push(
            format!("optimizer.m.{}", e.name),
            &e.shape,
            &adam.m[e.range.clone()],
        );
        f.push(
            format!("optimizer.v.{}", e.name),
            &e.shape,
            &adam.v[e.range.clone()],
        );
    }
}

/// Finishes the report page `html` (head and tables already written) with the figures and
/// writes `dir/index.html` atomically.
pub fn write_index(dir: &Path, mut html: String, figures: &[(String, String)]) -> Result<PathBuf> {
    for (f, cap) in figures {
        let _ = write!(
            html,
            "<figure><img src=\"{f}\"><figcaption>{cap}</figcaption></figure>"
        );
    }
    html.push_str("</body></html>\n");
    let index = dir.join("index.html");
    boltzflow_io::write_atomic(&index, |w| w.write_all(html.as_bytes()))?;
    Ok(index)
}

/// A checkpoint opened for reading, with errors that name the file.
pub struct Checkpoint {
    path: PathBuf,
    file: TensorFile<f32>,
    /// The config section that shapes the tensors (`[flow]`, `[network]`), for messages.
    section: &'static str,
}

impl Checkpoint {
    /// Opens `path`, checking that its metadata `format` is `format` (`what` names the kind of
    /// run for the message).
    pub fn open(path: &Path, format: &str, what: &str, section: &'static str) -> Result<Self> {
        if !path.exists() {
            bail!(Error::invalid(
                "RUN_DIR",
                format!(
                    "no checkpoint at `{}`: train first (`boltzflow train CONFIG.toml --out DIR`)",
                    path.display()
                )
            ));
        }
        let file = TensorFile::<f32>::read(path)?;
        let found = file.metadata.get("format").cloned();
        let ck = Self {
            path: path.to_path_buf(),
            file,
            section,
        };
        if found.as_deref() != Some(format) {
            bail!(ck.bad(format!(
                "not a boltzflow {what} checkpoint (format {found:?}, expected {format})"
            )));
        }
        Ok(ck)
    }

    fn bad(&self, reason: String) -> Error {
        Error::BadFile {
            path: self.path.clone(),
            reason,
        }
    }

    /// Whether the metadata has `key`.
    pub fn has(&self, key: &str) -> bool {
        self.file.metadata.contains_key(key)
    }

    /// A non-negative integer from the metadata.
    pub fn meta(&self, key: &str) -> Result<usize> {
        Ok(self
            .file
            .metadata
            .get(key)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.bad(format!("no `{key}` in the metadata")))?)
    }

    /// Copies the tensors `{prefix}{name}` of `layout` into `out` (laid out as the layout).
    pub fn fill(&self, layout: &ParamLayout, prefix: &str, out: &mut [f32]) -> Result<()> {
        for e in layout.entries() {
            let name = format!("{prefix}{}", e.name);
            let t = self.file.get(&name).ok_or_else(|| {
                self.bad(format!(
                    "tensor `{name}` is missing: the checkpoint is from a different {}",
                    self.section
                ))
            })?;
            if t.shape != e.shape {
                bail!(self.bad(format!(
                    "tensor `{name}` has shape {:?}, the configured {} needs {:?}",
                    t.shape, self.section, e.shape
                )));
            }
            out[e.range.clone()].copy_from_slice(&t.data);
        }
        Ok(())
    }
}
