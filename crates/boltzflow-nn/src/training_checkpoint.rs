//! The checkpoint of a training run, shared by every model: the parameters of the stages
//! already finished (a VAE's β stages, a VAN's temperatures), and the one in training with its
//! Adam moments and progress, in one atomically written safetensors file ([`TensorFile`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use boltzflow_core::{Error, Result};

use crate::{Adam, ParamLayout, TensorFile};

/// How a kind of run names its tensors and metadata (fixed per format tag, so that files
/// written by earlier versions keep loading).
#[derive(Debug, Clone, Copy)]
pub struct CheckpointFormat {
    /// Metadata `format`, e.g. `boltzflow-vae-1`.
    pub tag: &'static str,
    /// The kind of run, for messages ("VAE").
    pub what: &'static str,
    /// The configuration section that shapes the tensors, for messages (`[vae]`).
    pub section: &'static str,
    /// Finished stage k is stored as `{finished_prefix}{k}.{name}`; empty for single-stage runs.
    pub finished_prefix: &'static str,
    /// Metadata key counting the finished stages (unused when `finished_prefix` is empty).
    pub finished_key: &'static str,
    /// Prefix of the parameters in training (`current.`, or empty).
    pub current_prefix: &'static str,
    /// Metadata key of the progress within the stage in training (`epoch`, `step`).
    pub progress_key: &'static str,
}

/// The stage in training.
#[derive(Debug, Clone, PartialEq)]
pub struct InTraining {
    /// Its parameters.
    pub params: Vec<f32>,
    /// Its optimizer state.
    pub adam: Adam<f32>,
    /// Epochs or steps done in it.
    pub progress: usize,
}

/// What a training checkpoint holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainingCheckpoint {
    /// Parameters of the finished stages, in order.
    pub finished: Vec<Vec<f32>>,
    /// The stage in training, if any.
    pub current: Option<InTraining>,
}

impl TrainingCheckpoint {
    /// Writes the checkpoint to `path` atomically; every parameter vector is laid out as
    /// `layout`, and `seed` goes into the metadata.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn save(
        &self,
        path: &Path,
        format: &CheckpointFormat,
        layout: &ParamLayout,
        seed: u64,
    ) -> Result<()> {
        let mut f = TensorFile::<f32>::default();
        let push = |f: &mut TensorFile<f32>, prefix: &str, p: &[f32]| {
            for e in layout.entries() {
                f.push(format!("{prefix}{}", e.name), &e.shape, &p[e.range.clone()]);
            }
        };
        for (k, p) in self.finished.iter().enumerate() {
            push(&mut f, &format!("{}{k}.", format.finished_prefix), p);
        }
        let mut meta = BTreeMap::from([
            ("format".to_string(), format.tag.to_string()),
            ("seed".to_string(), seed.to_string()),
        ]);
        if !format.finished_prefix.is_empty() {
            meta.insert(format.finished_key.into(), self.finished.len().to_string());
        }
        if let Some(c) = &self.current {
            push(&mut f, format.current_prefix, &c.params);
            push(&mut f, "optimizer.m.", &c.adam.m);
            push(&mut f, "optimizer.v.", &c.adam.v);
            meta.insert(format.progress_key.into(), c.progress.to_string());
            meta.insert("optimizer_steps".into(), c.adam.t.to_string());
        }
        f.metadata = meta;
        f.write(path)
    }

    /// Reads a checkpoint written by [`TrainingCheckpoint::save`] with the same format and
    /// layout.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] (`RUN_DIR`) if there is no file; [`Error::BadFile`] naming
    /// it if it is of another format or a tensor is missing or has another shape.
    pub fn load(path: &Path, format: &CheckpointFormat, layout: &ParamLayout) -> Result<Self> {
        let ck = CheckpointReader::open(path, format)?;
        let finished = if format.finished_prefix.is_empty() {
            Vec::new()
        } else {
            (0..ck.meta(format.finished_key)?)
                .map(|k| ck.read(layout, &format!("{}{k}.", format.finished_prefix)))
                .collect::<Result<Vec<_>>>()?
        };
        let current = if ck.has(format.progress_key) {
            let mut adam = Adam::new(layout.len());
            adam.m = ck.read(layout, "optimizer.m.")?;
            adam.v = ck.read(layout, "optimizer.v.")?;
            adam.t = ck.meta("optimizer_steps")? as u64;
            Some(InTraining {
                params: ck.read(layout, format.current_prefix)?,
                adam,
                progress: ck.meta(format.progress_key)?,
            })
        } else {
            None
        };
        Ok(Self { finished, current })
    }
}

/// A checkpoint opened for reading, with errors that name the file.
struct CheckpointReader<'a> {
    path: PathBuf,
    file: TensorFile<f32>,
    format: &'a CheckpointFormat,
}

impl<'a> CheckpointReader<'a> {
    fn open(path: &Path, format: &'a CheckpointFormat) -> Result<Self> {
        if !path.exists() {
            return Err(Error::invalid(
                "RUN_DIR",
                format!(
                    "no checkpoint at `{}`: train first (`boltzflow train CONFIG.toml --out DIR`)",
                    path.display()
                ),
            ));
        }
        let file = TensorFile::<f32>::read(path)?;
        let found = file.metadata.get("format").cloned();
        let ck = Self {
            path: path.to_path_buf(),
            file,
            format,
        };
        if found.as_deref() != Some(format.tag) {
            return Err(ck.bad(format!(
                "not a boltzflow {} checkpoint (format {found:?}, expected {})",
                format.what, format.tag
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

    fn has(&self, key: &str) -> bool {
        self.file.metadata.contains_key(key)
    }

    /// A non-negative integer from the metadata.
    fn meta(&self, key: &str) -> Result<usize> {
        self.file
            .metadata
            .get(key)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.bad(format!("no `{key}` in the metadata")))
    }

    /// The tensors `{prefix}{name}` of `layout`, laid out as the layout.
    fn read(&self, layout: &ParamLayout, prefix: &str) -> Result<Vec<f32>> {
        let mut out = vec![0.0; layout.len()];
        for e in layout.entries() {
            let name = format!("{prefix}{}", e.name);
            let t = self.file.get(&name).ok_or_else(|| {
                self.bad(format!(
                    "tensor `{name}` is missing: the checkpoint is from a different {}",
                    self.format.section
                ))
            })?;
            if t.shape != e.shape {
                return Err(self.bad(format!(
                    "tensor `{name}` has shape {:?}, the configured {} needs {:?}",
                    t.shape, self.format.section, e.shape
                )));
            }
            out[e.range.clone()].copy_from_slice(&t.data);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAGED: CheckpointFormat = CheckpointFormat {
        tag: "test-staged-1",
        what: "test",
        section: "[net]",
        finished_prefix: "stage",
        finished_key: "stages_done",
        current_prefix: "current.",
        progress_key: "epoch",
    };
    const SINGLE: CheckpointFormat = CheckpointFormat {
        tag: "test-single-1",
        finished_prefix: "",
        current_prefix: "",
        ..STAGED
    };

    fn layout(n: usize) -> ParamLayout {
        let mut l = ParamLayout::new();
        l.add("w", &[n, 2]);
        l.add("b", &[2]);
        l
    }

    #[test]
    fn staged_and_single_stage_checkpoints_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ck.safetensors");
        let l = layout(3);
        let p = |s: f32| (0..l.len()).map(|i| s + i as f32).collect::<Vec<_>>();
        let mut adam = Adam::new(l.len());
        adam.m = p(0.5);
        adam.v = p(0.25);
        adam.t = 17;
        for (format, finished) in [(STAGED, vec![p(1.0), p(2.0)]), (SINGLE, vec![])] {
            let ck = TrainingCheckpoint {
                finished,
                current: Some(InTraining {
                    params: p(3.0),
                    adam: adam.clone(),
                    progress: 4,
                }),
            };
            ck.save(&path, &format, &l, 9).unwrap();
            assert_eq!(TrainingCheckpoint::load(&path, &format, &l).unwrap(), ck);
        }
        let done = TrainingCheckpoint {
            finished: vec![p(1.0)],
            current: None,
        };
        done.save(&path, &STAGED, &l, 9).unwrap();
        assert_eq!(TrainingCheckpoint::load(&path, &STAGED, &l).unwrap(), done);
    }

    #[test]
    fn wrong_format_or_shape_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ck.safetensors");
        let e = TrainingCheckpoint::load(&path, &STAGED, &layout(3)).unwrap_err();
        assert!(e.to_string().contains("train first"), "{e}");
        let ck = TrainingCheckpoint {
            finished: vec![vec![0.0; 8]],
            current: None,
        };
        ck.save(&path, &STAGED, &layout(3), 1).unwrap();
        let e = TrainingCheckpoint::load(&path, &SINGLE, &layout(3)).unwrap_err();
        assert!(e.to_string().contains("expected test-single-1"), "{e}");
        let e = TrainingCheckpoint::load(&path, &STAGED, &layout(4)).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("ck.safetensors") && m.contains("[net]"), "{m}");
    }
}
