//! Run directories (DESIGN §7), the parts every kind of run shares: where a run goes, how it is
//! started, refused or resumed, its `log.txt`, and its `metrics.csv`, whose columns are named
//! once, next to the values (so that a header and its rows cannot drift apart).

use std::io::Write;
use std::path::{Path, PathBuf};

use boltzflow_core::{Error, Result};

use crate::{io_err, remove_stale_temporaries, write_atomic};

/// The resolved configuration in a run directory.
pub const CONFIG_FILE: &str = "config.toml";
/// The checkpoint in a run directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// The per-epoch (or per-step) metrics in a run directory.
pub const METRICS_FILE: &str = "metrics.csv";
/// The human-readable log in a run directory.
pub const LOG_FILE: &str = "log.txt";

/// What to do with a run directory that already holds a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartMode {
    /// Refuse it (the default: nothing is ever overwritten silently).
    #[default]
    Refuse,
    /// Continue it from its last checkpoint (or start it, if it holds nothing yet).
    Resume,
    /// Delete it and start over.
    Force,
}

impl StartMode {
    /// The mode of the command-line flags `--resume` and `--force` (exclusive).
    pub fn from_flags(resume: bool, force: bool) -> Self {
        match (resume, force) {
            (true, _) => Self::Resume,
            (false, true) => Self::Force,
            (false, false) => Self::Refuse,
        }
    }
}

/// `runs/<configuration file stem>`: where a run goes when no directory is given.
pub fn default_out_dir(config: &Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map_or("run".into(), |s| s.to_string_lossy().into_owned());
    PathBuf::from("runs").join(stem)
}

/// The `config.toml` of an existing run directory.
///
/// # Errors
/// [`Error::InvalidParameter`] (`RUN_DIR`) if there is none.
pub fn config_file(dir: &Path) -> Result<PathBuf> {
    let path = dir.join(CONFIG_FILE);
    if !path.exists() {
        return Err(Error::invalid(
            "RUN_DIR",
            format!(
                "`{}` has no config.toml; is it a run directory made by `boltzflow train`?",
                dir.display()
            ),
        ));
    }
    Ok(path)
}

/// Starts or resumes a run in `out`; returns whether it resumes.
///
/// * [`StartMode::Resume`] and `out` holds a run (config.toml or a checkpoint): the stored
///   configuration must equal this one (`stored_config_equal`); temporaries left by a killed
///   write are removed.
/// * [`StartMode::Resume`] and nothing there yet (a run killed before it wrote anything):
///   starts afresh.
/// * Otherwise a run in `out`, finished or not, is refused unless [`StartMode::Force`], which
///   deletes it.
///
/// Starting creates the directory and writes the resolved configuration `config_toml`
/// atomically.
///
/// # Errors
/// [`Error::InvalidParameter`] (`--resume`, `--out`) when refused; [`Error::Io`] naming the path.
pub fn start_or_resume(
    out: &Path,
    mode: StartMode,
    config_toml: &str,
    stored_config_equal: impl FnOnce() -> Result<bool>,
) -> Result<bool> {
    start_or_resume_as(out, CONFIG_FILE, mode, config_toml, stored_config_equal)
}

/// [`start_or_resume`] for a directory whose configuration is stored as `config_name` (a
/// sweep keeps `sweep.toml`, so that its directory is not taken for a single run's).
///
/// # Errors
/// As [`start_or_resume`].
pub fn start_or_resume_as(
    out: &Path,
    config_name: &str,
    mode: StartMode,
    config_toml: &str,
    stored_config_equal: impl FnOnce() -> Result<bool>,
) -> Result<bool> {
    let holds_run = out.join(config_name).exists() || out.join(CHECKPOINT_FILE).exists();
    if mode == StartMode::Resume && holds_run {
        if !stored_config_equal()? {
            return Err(Error::invalid(
                "--resume",
                format!(
                    "the configuration differs from the one `{}` was started with (its {config_name}); resume with the same file, seed and system, or start a new run in another --out",
                    out.display()
                ),
            ));
        }
        remove_stale_temporaries(out)?;
        return Ok(true);
    }
    if holds_run {
        if mode != StartMode::Force {
            return Err(Error::invalid(
                "--out",
                format!(
                    "`{}` already holds a run; continue it with --resume, start it over with --force (deletes it), or choose another --out",
                    out.display()
                ),
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
    write_atomic(&out.join(config_name), |w| {
        w.write_all(config_toml.as_bytes())
    })?;
    let _ = std::fs::remove_file(out.join(LOG_FILE));
    Ok(false)
}

/// Appends a line to `dir/log.txt`.
///
/// # Errors
/// [`Error::Io`] naming log.txt if it cannot be opened or written (a full disk, say).
pub fn append_log(dir: &Path, line: &str) -> Result<()> {
    let path = dir.join(LOG_FILE);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| io_err("cannot write", &path, e))?;
    writeln!(f, "{line}")
        .and_then(|()| f.flush())
        .map_err(|e| io_err("cannot write", &path, e))
}

/// A row of a metrics table: each value with its column's name, in order.
pub trait MetricsRow {
    /// `(column, value)` pairs; every row of a table names the same columns.
    fn fields(&self) -> Vec<(&'static str, String)>;
}

/// `metrics.csv` of a run: the header comes from the rows' own column names, and the file is
/// rewritten atomically after every row (a kill leaves the previous whole file).
#[derive(Debug)]
pub struct MetricsCsv {
    path: PathBuf,
    columns: Vec<String>,
    rows: Vec<String>,
}

impl MetricsCsv {
    /// An empty table for `dir/metrics.csv`.
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join(METRICS_FILE),
            columns: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// The table of a resumed run: its first `keep` rows (those its checkpoint covers; a kill
    /// between writing the metrics and the checkpoint leaves rows the checkpoint does not
    /// cover, which are dropped). A missing file gives an empty table.
    ///
    /// # Errors
    /// [`Error::BadFile`] if the file has fewer than `keep` rows.
    pub fn resume(dir: &Path, keep: usize) -> Result<Self> {
        let mut table = Self::new(dir);
        let Ok(text) = std::fs::read_to_string(&table.path) else {
            return Ok(table);
        };
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        table.rows = lines.take(keep).map(str::to_string).collect();
        if table.rows.len() < keep {
            return Err(Error::BadFile {
                path: table.path.clone(),
                reason: format!(
                    "{} rows, but the checkpoint covers {keep}; restart the run with --force",
                    table.rows.len()
                ),
            });
        }
        // The names are checked against the first new row.
        table.columns = header
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        Ok(table)
    }

    /// The rows so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there is no row yet.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Adds a row (not yet written; see [`MetricsCsv::write`]).
    ///
    /// A resumed file written by an older version, whose columns are all among this row's,
    /// gets the new columns as `NaN` in its earlier rows (a version that adds a metric can
    /// resume the runs of the one before).
    ///
    /// # Errors
    /// [`Error::BadFile`] if the row's columns differ from the table's otherwise (a resumed
    /// file written by another version).
    pub fn push(&mut self, row: &impl MetricsRow) -> Result<()> {
        let fields = row.fields();
        let names: Vec<String> = fields.iter().map(|(n, _)| (*n).to_string()).collect();
        if self.columns.is_empty() {
            self.columns = names;
        } else if self.columns != names && !self.widen(&names) {
            return Err(Error::BadFile {
                path: self.path.clone(),
                reason: format!(
                    "its columns are {:?}, this run writes {:?}; restart the run with --force",
                    self.columns, names
                ),
            });
        }
        let values: Vec<String> = fields.into_iter().map(|(_, v)| v).collect();
        self.rows.push(values.join(","));
        Ok(())
    }

    /// Rewrites the rows so far for the columns `names` if every present column is among them
    /// (added columns get `NaN`); false, changing nothing, if not.
    fn widen(&mut self, names: &[String]) -> bool {
        if !self.columns.iter().all(|c| names.contains(c)) {
            return false;
        }
        // Where each new column was in the old rows (None: added).
        let old_at: Vec<Option<usize>> = names
            .iter()
            .map(|n| self.columns.iter().position(|c| c == n))
            .collect();
        let mut rows = Vec::with_capacity(self.rows.len());
        for r in &self.rows {
            let values: Vec<&str> = r.split(',').collect();
            if values.len() != self.columns.len() {
                return false;
            }
            let widened: Vec<&str> = old_at
                .iter()
                .map(|i| i.map_or("NaN", |i| values[i]))
                .collect();
            rows.push(widened.join(","));
        }
        self.rows = rows;
        self.columns = names.to_vec();
        true
    }

    /// Writes the whole table atomically (nothing if it has no columns yet).
    ///
    /// # Errors
    /// [`Error::Io`] naming metrics.csv.
    pub fn write(&self) -> Result<()> {
        if self.columns.is_empty() {
            return Ok(());
        }
        let mut text = self.columns.join(",");
        text.push('\n');
        for r in &self.rows {
            text.push_str(r);
            text.push('\n');
        }
        write_atomic(&self.path, |w| w.write_all(text.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Row(usize, f64);
    impl MetricsRow for Row {
        fn fields(&self) -> Vec<(&'static str, String)> {
            vec![("step", self.0.to_string()), ("loss", self.1.to_string())]
        }
    }
    struct Wider(usize);
    impl MetricsRow for Wider {
        fn fields(&self) -> Vec<(&'static str, String)> {
            vec![
                ("step", self.0.to_string()),
                ("extra", "3".into()),
                ("loss", "2".into()),
            ]
        }
    }
    struct Other;
    impl MetricsRow for Other {
        fn fields(&self) -> Vec<(&'static str, String)> {
            vec![("step", "1".into())]
        }
    }

    #[test]
    fn header_and_rows_come_from_the_same_names_and_resume_keeps_the_covered_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = MetricsCsv::new(dir.path());
        m.write().unwrap();
        assert!(!dir.path().join(METRICS_FILE).exists());
        for i in 0..3 {
            m.push(&Row(i, 0.5 * i as f64)).unwrap();
        }
        m.write().unwrap();
        let text = std::fs::read_to_string(dir.path().join(METRICS_FILE)).unwrap();
        assert_eq!(text, "step,loss\n0,0\n1,0.5\n2,1\n");
        let mut again = MetricsCsv::resume(dir.path(), 2).unwrap();
        assert_eq!(again.len(), 2);
        again.push(&Row(7, 1.5)).unwrap();
        again.write().unwrap();
        let text = std::fs::read_to_string(dir.path().join(METRICS_FILE)).unwrap();
        assert_eq!(text, "step,loss\n0,0\n1,0.5\n7,1.5\n");
        let e = again.push(&Other).unwrap_err().to_string();
        assert!(e.contains("metrics.csv") && e.contains("--force"), "{e}");
        // A version with an added column resumes the file: earlier rows get NaN there.
        let mut wider = MetricsCsv::resume(dir.path(), 3).unwrap();
        wider.push(&Wider(8)).unwrap();
        wider.write().unwrap();
        let text = std::fs::read_to_string(dir.path().join(METRICS_FILE)).unwrap();
        assert_eq!(
            text,
            "step,extra,loss\n0,NaN,0\n1,NaN,0.5\n7,NaN,1.5\n8,3,2\n"
        );
        let e = MetricsCsv::resume(dir.path(), 9).unwrap_err().to_string();
        assert!(e.contains("4 rows, but the checkpoint covers 9"), "{e}");
    }

    #[test]
    fn a_run_is_refused_resumed_or_restarted() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        assert!(!start_or_resume(&out, StartMode::Refuse, "a = 1\n", || Ok(true)).unwrap());
        append_log(&out, "epoch 1").unwrap();
        let e = start_or_resume(&out, StartMode::Refuse, "a = 1\n", || Ok(true)).unwrap_err();
        assert!(e.to_string().contains("already holds a run"), "{e}");
        let e = start_or_resume(&out, StartMode::Resume, "a = 2\n", || Ok(false)).unwrap_err();
        assert!(e.to_string().contains("differs"), "{e}");
        assert!(start_or_resume(&out, StartMode::Resume, "a = 1\n", || Ok(true)).unwrap());
        assert!(out.join(LOG_FILE).exists());
        assert!(!start_or_resume(&out, StartMode::Force, "a = 3\n", || Ok(true)).unwrap());
        assert_eq!(
            std::fs::read_to_string(out.join(CONFIG_FILE)).unwrap(),
            "a = 3\n"
        );
        assert!(!out.join(LOG_FILE).exists());
    }

    #[test]
    fn a_log_that_cannot_be_written_names_the_file() {
        let e = append_log(Path::new("/proc/no-such-dir"), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("log.txt"), "{e}");
    }
}
