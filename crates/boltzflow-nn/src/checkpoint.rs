//! Named tensors in safetensors files: model parameters, optimizer state and metadata.
//!
//! Files are written atomically (a temporary file in the same directory, then a rename), so a
//! run killed while saving leaves the previous checkpoint intact. They open in Python with
//! `safetensors.numpy.load_file`; the metadata is a string map.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use boltzflow_core::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::Real;

/// One named tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor<T> {
    /// Key in the file.
    pub name: String,
    /// Shape, row-major.
    pub shape: Vec<usize>,
    /// Values.
    pub data: Vec<T>,
}

/// A set of named tensors with string metadata.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TensorFile<T> {
    /// The tensors, in insertion order.
    pub tensors: Vec<Tensor<T>>,
    /// Free-form metadata (step, stage, configuration hash, ...).
    pub metadata: BTreeMap<String, String>,
}

impl<T: Real> TensorFile<T> {
    /// Adds a tensor.
    pub fn push(&mut self, name: impl Into<String>, shape: &[usize], data: &[T]) {
        self.tensors.push(Tensor {
            name: name.into(),
            shape: shape.to_vec(),
            data: data.to_vec(),
        });
    }

    /// The tensor with this name.
    pub fn get(&self, name: &str) -> Option<&Tensor<T>> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Writes the file atomically.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn write(&self, path: &Path) -> Result<()> {
        let dtype = if T::DTYPE == "F32" {
            Dtype::F32
        } else {
            Dtype::F64
        };
        let bytes: Vec<Vec<u8>> = self
            .tensors
            .iter()
            .map(|t| {
                let mut b = Vec::with_capacity(t.data.len() * std::mem::size_of::<T>());
                T::write_le(&t.data, &mut b);
                b
            })
            .collect();
        let views = self
            .tensors
            .iter()
            .zip(&bytes)
            .map(|(t, b)| {
                TensorView::new(dtype, t.shape.clone(), b)
                    .map(|v| (t.name.clone(), v))
                    .map_err(|e| Error::invalid(&t.name, format!("cannot store tensor: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let meta: HashMap<String, String> = self.metadata.clone().into_iter().collect();
        let data = safetensors::serialize(views, Some(meta))
            .map_err(|e| Error::invalid("checkpoint", format!("cannot serialise: {e}")))?;
        boltzflow_io::write_atomic(path, |w| w.write_all(&data))
    }

    /// Reads a file written by [`TensorFile::write`] (or by Python's safetensors, same dtype).
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be read, [`Error::BadFile`] if it is not a safetensors file
    /// of this precision.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            action: "cannot read checkpoint",
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |reason: String| Error::BadFile {
            path: path.to_path_buf(),
            reason,
        };
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let (_, meta) =
            SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("bad header: {e}")))?;
        let want = if T::DTYPE == "F32" {
            Dtype::F32
        } else {
            Dtype::F64
        };
        let mut tensors = Vec::new();
        for (name, view) in st.tensors() {
            if view.dtype() != want {
                return Err(bad(format!(
                    "tensor `{name}` is {:?}, expected {}",
                    view.dtype(),
                    T::DTYPE
                )));
            }
            tensors.push(Tensor {
                name,
                shape: view.shape().to_vec(),
                data: T::read_le(view.data()),
            });
        }
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        let metadata = meta
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        Ok(Self { tensors, metadata })
    }
}
