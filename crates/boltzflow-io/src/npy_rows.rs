//! Reading a 2D `.npy` file a block of rows at a time, so trajectories larger than memory can be
//! streamed into an online estimator.
//!
//! Written here because ndarray-npy reads whole arrays only (or memory-maps them, which needs
//! `unsafe`); the `.npy` header is a short, fully specified text dictionary (NumPy NEP 1:
//! magic `\x93NUMPY`, version, header length, `{'descr': ..., 'fortran_order': ..., 'shape': ...}`).

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use boltzflow_core::{Error, Result};
use ndarray::Array2;

/// Element types a row stream accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    F64,
    F32,
}

/// A C-ordered little-endian float64/float32 `[n_rows, n_cols]` `.npy` file, read in blocks.
#[derive(Debug)]
pub struct NpyRowReader {
    path: PathBuf,
    reader: BufReader<std::fs::File>,
    dtype: Dtype,
    n_rows: usize,
    n_cols: usize,
    next_row: usize,
}

impl NpyRowReader {
    /// Opens `path` and parses its header.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be read; [`Error::BadFile`] if it is not a 2D C-ordered
    /// little-endian float64/float32 `.npy` file (the message says what it is).
    pub fn open(path: &Path) -> Result<Self> {
        let io = |e: std::io::Error| Error::Io {
            action: "cannot read",
            path: path.to_path_buf(),
            source: e,
        };
        let bad = |reason: String| Error::BadFile {
            path: path.to_path_buf(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut magic = [0u8; 8];
        reader
            .read_exact(&mut magic)
            .map_err(|_| bad("not a .npy file (too short)".into()))?;
        if &magic[..6] != b"\x93NUMPY" {
            return Err(bad("not a .npy file (no \\x93NUMPY magic)".into()));
        }
        let header_len = if magic[6] == 1 {
            let mut b = [0u8; 2];
            reader
                .read_exact(&mut b)
                .map_err(|_| bad("truncated .npy header".into()))?;
            u16::from_le_bytes(b) as usize
        } else {
            let mut b = [0u8; 4];
            reader
                .read_exact(&mut b)
                .map_err(|_| bad("truncated .npy header".into()))?;
            u32::from_le_bytes(b) as usize
        };
        let mut header = vec![0u8; header_len];
        reader
            .read_exact(&mut header)
            .map_err(|_| bad("truncated .npy header".into()))?;
        let header = String::from_utf8_lossy(&header).to_string();
        let field = |key: &str| -> Option<String> {
            let start = header.find(&format!("'{key}'"))? + key.len() + 2;
            let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
            let end = if rest.starts_with('(') {
                rest.find(')')? + 1
            } else {
                rest.find([',', '}'])?
            };
            Some(rest[..end].trim().to_string())
        };
        let descr = field("descr").ok_or_else(|| bad(format!("no 'descr' in header {header}")))?;
        let dtype = match descr.trim_matches('\'') {
            "<f8" => Dtype::F64,
            "<f4" => Dtype::F32,
            other => {
                return Err(bad(format!(
                    "holds {other} values; expected float64 or float32 (little-endian)"
                )));
            }
        };
        if field("fortran_order").as_deref() != Some("False") {
            return Err(bad(
                "is stored in Fortran order; save it in C order (numpy.ascontiguousarray)".into(),
            ));
        }
        let shape = field("shape").ok_or_else(|| bad(format!("no 'shape' in header {header}")))?;
        let dims: Vec<usize> = shape
            .trim_matches(|c| c == '(' || c == ')')
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<usize>()
                    .map_err(|_| bad(format!("bad shape {shape}")))
            })
            .collect::<Result<_>>()?;
        if dims.len() != 2 {
            return Err(bad(format!(
                "has shape {shape}; expected a 2D array [n_frames, n_features]"
            )));
        }
        // The data must be as long as the header says: a corrupt shape would otherwise make
        // `next_block` allocate whatever it claims (found by tests/fuzz_inputs.rs).
        let width: u64 = match dtype {
            Dtype::F64 => 8,
            Dtype::F32 => 4,
        };
        let offset = if magic[6] == 1 { 10 } else { 12 } + header_len as u64;
        let file_len = reader.get_ref().metadata().map_err(io)?.len();
        let expected = (dims[0] as u64)
            .checked_mul(dims[1] as u64)
            .and_then(|v| v.checked_mul(width));
        if expected != Some(file_len.saturating_sub(offset)) {
            return Err(bad(format!(
                "has shape {shape} in its header but {} bytes of data; the file is truncated or corrupt",
                file_len.saturating_sub(offset)
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            reader,
            dtype,
            n_rows: dims[0],
            n_cols: dims[1],
            next_row: 0,
        })
    }

    /// `(n_rows, n_cols)` of the whole file.
    pub fn shape(&self) -> (usize, usize) {
        (self.n_rows, self.n_cols)
    }

    /// The next at most `max_rows` rows, or `None` at the end.
    ///
    /// # Errors
    /// [`Error::BadFile`] if the file ends before its header's shape says.
    pub fn next_block(&mut self, max_rows: usize) -> Result<Option<Array2<f64>>> {
        let rows = max_rows.max(1).min(self.n_rows - self.next_row);
        if rows == 0 {
            return Ok(None);
        }
        let width = match self.dtype {
            Dtype::F64 => 8,
            Dtype::F32 => 4,
        };
        let mut bytes = vec![0u8; rows * self.n_cols * width];
        self.reader
            .read_exact(&mut bytes)
            .map_err(|_| Error::BadFile {
                path: self.path.clone(),
                reason: format!(
                    "truncated: the header promises {} rows, data ends near row {}",
                    self.n_rows, self.next_row
                ),
            })?;
        let values: Vec<f64> = match self.dtype {
            Dtype::F64 => bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("4 bytes"))))
                .collect(),
        };
        self.next_row += rows;
        Ok(Some(
            Array2::from_shape_vec((rows, self.n_cols), values).expect("rows·cols values"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray_npy::WriteNpyExt;

    #[test]
    fn blocks_equal_the_whole_array() {
        let dir = tempfile::tempdir().unwrap();
        let a = Array2::from_shape_fn((1001, 3), |(i, j)| i as f64 * 0.5 - j as f64);
        let p = dir.path().join("a.npy");
        a.write_npy(std::fs::File::create(&p).unwrap()).unwrap();
        let mut r = NpyRowReader::open(&p).unwrap();
        assert_eq!(r.shape(), (1001, 3));
        let mut rows = Vec::new();
        while let Some(b) = r.next_block(100).unwrap() {
            rows.push(b);
        }
        let views: Vec<_> = rows.iter().map(|b| b.view()).collect();
        assert_eq!(ndarray::concatenate(ndarray::Axis(0), &views).unwrap(), a);
        let f = a.mapv(|v| v as f32);
        f.write_npy(std::fs::File::create(&p).unwrap()).unwrap();
        let mut r = NpyRowReader::open(&p).unwrap();
        assert_eq!(r.next_block(5000).unwrap().unwrap(), a);
    }

    #[test]
    fn wrong_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("i.npy");
        ndarray::Array2::<i64>::zeros((2, 2))
            .write_npy(std::fs::File::create(&p).unwrap())
            .unwrap();
        let e = NpyRowReader::open(&p).unwrap_err().to_string();
        assert!(e.contains("i.npy") && e.contains("<i8"), "{e}");
        let t = dir.path().join("t.npy");
        let a = Array2::<f64>::zeros((10, 2));
        let mut bytes = Vec::new();
        a.write_npy(&mut bytes).unwrap();
        std::fs::write(&t, &bytes[..bytes.len() - 20]).unwrap();
        let e = NpyRowReader::open(&t).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }
}

#[cfg(test)]
mod fuzz_regressions {
    use super::*;

    /// tests/fuzz_inputs.rs: a header shape of (2, 100000000000) made the first block allocate
    /// 1.6 TB and abort; now the shape is checked against the file's length when it is opened
    /// (here a shape of the same text length, (9, 9), over 3 × 2 values).
    #[test]
    fn a_shape_larger_than_the_data_is_refused_when_opened() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.npy");
        let x = ndarray::Array2::<f64>::zeros((3, 2));
        crate::write_npy_2d(&p, x.view()).unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        let at = bytes.windows(6).position(|w| w == b"(3, 2)").unwrap();
        bytes[at..at + 6].copy_from_slice(b"(9, 9)");
        std::fs::write(&p, &bytes).unwrap();
        let e = NpyRowReader::open(&p).unwrap_err().to_string();
        assert!(e.contains("truncated or corrupt"), "{e}");
        // An intact file still opens.
        crate::write_npy_2d(&p, x.view()).unwrap();
        assert_eq!(NpyRowReader::open(&p).unwrap().shape(), (3, 2));
    }
}
