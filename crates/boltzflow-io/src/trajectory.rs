//! Molecular trajectories in the formats MD codes write: GROMACS XTC (the `molly` crate, pure
//! Rust), GROMACS TRR and CHARMM/NAMD DCD (read and written here), and `.npy`
//! `[frames, 3·atoms]`. TRR and DCD are by hand because the only Rust TRR reader (`xdrfile`)
//! wraps GROMACS's C libxdrfile, which crashed (SIGSEGV in XTC, SIGFPE in TRR) within a few
//! thousand mutated files of the fuzz target, and no crate reads DCD; both formats are a
//! header and plain records of floats. Every reader streams frames in blocks as rows `[frames, 3·atoms]`
//! in **nm** (DCD stores Å and is converted), the layout of boltzflow's coordinates, so a
//! trajectory is accepted wherever `.npy` coordinates are.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use boltzflow_core::{Error, Result};
use ndarray::{Array2, ArrayView2};

use crate::NpyRowReader;

/// Å per nm.
const ANGSTROM_PER_NM: f64 = 10.0;

/// The formats, by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrajectoryFormat {
    /// `.npy`, `[frames, 3·atoms]` float64 or float32, as stored (nm for molecules).
    Npy,
    /// GROMACS `.xtc` (compressed, precision 10⁻³ nm).
    Xtc,
    /// GROMACS `.trr` (full precision).
    Trr,
    /// CHARMM/NAMD `.dcd` (Å on disk).
    Dcd,
}

impl TrajectoryFormat {
    /// The format of a path's extension.
    ///
    /// # Errors
    /// [`Error::BadFile`] for any other extension, listing the accepted ones.
    pub fn of_path(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some("npy") => Ok(Self::Npy),
            Some("xtc") => Ok(Self::Xtc),
            Some("trr") => Ok(Self::Trr),
            Some("dcd") => Ok(Self::Dcd),
            _ => Err(Error::BadFile {
                path: path.to_path_buf(),
                reason: "unknown coordinate format; use .npy, .xtc, .trr or .dcd".into(),
            }),
        }
    }
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::BadFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// A trajectory opened for reading, frame blocks at a time.
pub struct TrajectoryReader {
    path: PathBuf,
    n_cols: usize,
    inner: Inner,
}

enum Inner {
    Npy(NpyRowReader),
    Xtc(XtcReader),
    Trr(TrrReader),
    Dcd(DcdReader),
}

impl TrajectoryReader {
    /// Opens `path` in the format of its extension.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be opened; [`Error::BadFile`] naming it if its header is not
    /// of its format.
    pub fn open(path: &Path) -> Result<Self> {
        let format = TrajectoryFormat::of_path(path)?;
        let (inner, n_atoms_or_cols) = match format {
            TrajectoryFormat::Npy => {
                let r = NpyRowReader::open(path)?;
                let cols = r.shape().1;
                (Inner::Npy(r), cols)
            }
            TrajectoryFormat::Xtc => {
                let r = XtcReader::open(path)?;
                let cols = 3 * r.n_atoms;
                (Inner::Xtc(r), cols)
            }
            TrajectoryFormat::Trr => {
                let r = TrrReader::open(path)?;
                let cols = 3 * r.n_atoms;
                (Inner::Trr(r), cols)
            }
            TrajectoryFormat::Dcd => {
                let r = DcdReader::open(path)?;
                let cols = 3 * r.n_atoms;
                (Inner::Dcd(r), cols)
            }
        };
        if n_atoms_or_cols == 0 {
            return Err(bad(path, "no atoms"));
        }
        Ok(Self {
            path: path.to_path_buf(),
            n_cols: n_atoms_or_cols,
            inner,
        })
    }

    /// Coordinates per frame (3 × atoms for the MD formats).
    pub fn n_columns(&self) -> usize {
        self.n_cols
    }

    /// The next at most `max_frames` frames `[frames, n_columns]` in nm; `None` at the end.
    ///
    /// # Errors
    /// [`Error::BadFile`] naming the file and frame for a truncated or corrupt frame.
    pub fn next_block(&mut self, max_frames: usize) -> Result<Option<Array2<f64>>> {
        let max_frames = max_frames.max(1);
        let n_cols = self.n_cols;
        let mut rows: Vec<f64> = Vec::new();
        while rows.len() < max_frames * n_cols {
            let more = match &mut self.inner {
                Inner::Npy(r) => return r.next_block(max_frames),
                Inner::Xtc(r) => r.read_frame(&mut rows)?,
                Inner::Trr(r) => r.read_frame(&mut rows)?,
                Inner::Dcd(r) => r.read_frame(&mut rows)?,
            };
            if !more {
                break;
            }
        }
        if rows.is_empty() {
            return Ok(None);
        }
        if let Some(i) = rows.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: format!("coordinates in `{}`", self.path.display()),
                location: format!("column {} of a frame", i % n_cols),
                value: rows[i],
            });
        }
        let frames = rows.len() / n_cols;
        Ok(Some(
            Array2::from_shape_vec((frames, n_cols), rows).expect("whole frames"),
        ))
    }

    /// Every remaining frame.
    ///
    /// # Errors
    /// As [`TrajectoryReader::next_block`]; [`Error::BadFile`] for a file without frames.
    pub fn read_all(mut self) -> Result<Array2<f64>> {
        let mut parts = Vec::new();
        while let Some(b) = self.next_block(1 << 14)? {
            parts.push(b);
        }
        if parts.is_empty() {
            return Err(bad(&self.path, "no frames"));
        }
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        Ok(ndarray::concatenate(ndarray::Axis(0), &views).expect("same columns"))
    }
}

/// Reads every frame of a trajectory (`.npy`, `.xtc`, `.trr`, `.dcd`) as `[frames, 3·atoms]`
/// in nm.
///
/// # Errors
/// As [`TrajectoryReader`].
pub fn read_coordinates(path: &Path) -> Result<Array2<f64>> {
    match TrajectoryFormat::of_path(path)? {
        TrajectoryFormat::Npy => crate::read_npy_2d(path),
        _ => TrajectoryReader::open(path)?.read_all(),
    }
}

/// Writes frames `[frames, 3·atoms]` (nm) in the format of `path`'s extension, atomically (a
/// temporary next to it, renamed when whole). `dt_ps` is the time between frames.
///
/// # Errors
/// [`Error::Shape`] unless the columns are a multiple of 3; [`Error::Io`] naming `path`.
pub fn write_coordinates(path: &Path, x: ArrayView2<f64>, dt_ps: f64) -> Result<()> {
    let format = TrajectoryFormat::of_path(path)?;
    if format == TrajectoryFormat::Npy {
        return crate::write_npy_2d(path, x);
    }
    if x.ncols() == 0 || !x.ncols().is_multiple_of(3) {
        return Err(Error::shape(
            format!("frames for `{}`", path.display()),
            "[frames, 3·atoms]",
            format!("[{}, {}]", x.nrows(), x.ncols()),
        ));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let ext = path.extension().unwrap_or_default().to_string_lossy();
    let tmp = tempfile::Builder::new()
        .prefix(".boltzflow-")
        .suffix(&format!(".tmp.{ext}"))
        .tempfile_in(dir)
        .map_err(|e| crate::io_err("cannot write", path, e))?;
    let x = x.as_standard_layout();
    let written = match format {
        TrajectoryFormat::Dcd => write_dcd(tmp.path(), x.view(), dt_ps),
        TrajectoryFormat::Trr => write_trr(tmp.path(), x.view(), dt_ps),
        _ => write_xtc(tmp.path(), x.view(), dt_ps),
    };
    written?;
    tmp.persist(path)
        .map_err(|e| crate::io_err("cannot write", path, e.error))?;
    Ok(())
}

/// A DCD file (CHARMM layout, as NAMD, OpenMM and mdtraj write it), little-endian.
struct DcdReader {
    path: PathBuf,
    r: BufReader<File>,
    n_atoms: usize,
    unit_cell: bool,
    frame: usize,
}

impl DcdReader {
    fn open(path: &Path) -> Result<Self> {
        let f = File::open(path).map_err(|e| crate::io_err("cannot read", path, e))?;
        let mut r = Self {
            path: path.to_path_buf(),
            r: BufReader::new(f),
            n_atoms: 0,
            unit_cell: false,
            frame: 0,
        };
        let header = r.record("the header")?;
        if header.len() != 84 || &header[..4] != b"CORD" {
            return Err(bad(path, "not a DCD file (no 84-byte CORD header record)"));
        }
        let int = |k: usize| i32::from_le_bytes(header[4 + 4 * k..8 + 4 * k].try_into().unwrap());
        let charmm = int(19) != 0;
        if int(8) != 0 {
            return Err(bad(path, "DCD files with fixed atoms are not supported"));
        }
        if charmm && int(11) != 0 {
            return Err(bad(path, "four-dimensional DCD files are not supported"));
        }
        r.unit_cell = charmm && int(10) != 0;
        r.record("the title")?;
        let atoms = r.record("the atom count")?;
        let n = match <[u8; 4]>::try_from(atoms.as_slice()) {
            Ok(b) => i32::from_le_bytes(b),
            Err(_) => return Err(bad(path, "the atom-count record is not 4 bytes")),
        };
        // A frame holds 12 bytes per atom: more atoms than the file could hold is corrupt (and
        // would be allocated before the first frame is read).
        let len = r.r.get_ref().metadata().map_or(0, |m| m.len());
        if n <= 0 || n as u64 > len / 12 {
            return Err(bad(path, format!("{n} atoms in a file of {len} bytes")));
        }
        r.n_atoms = n as usize;
        Ok(r)
    }

    /// One Fortran record: a length, the bytes, the same length again.
    fn record(&mut self, what: &str) -> Result<Vec<u8>> {
        let mut len = [0u8; 4];
        self.r
            .read_exact(&mut len)
            .map_err(|_| bad(&self.path, format!("truncated before {what}")))?;
        let n = i32::from_le_bytes(len);
        // A record longer than the file is corrupt; reading it would allocate that much first.
        let size = self.r.get_ref().metadata().map(|m| m.len()).unwrap_or(0);
        if n < 0 || n as u64 > size {
            return Err(bad(
                &self.path,
                format!("{what}: record length {n} is impossible"),
            ));
        }
        let mut data = vec![0u8; n as usize];
        let mut end = [0u8; 4];
        self.r
            .read_exact(&mut data)
            .and_then(|()| self.r.read_exact(&mut end))
            .map_err(|_| bad(&self.path, format!("{what} is truncated")))?;
        if end != len {
            return Err(bad(&self.path, format!("{what}: record markers disagree")));
        }
        Ok(data)
    }

    /// Appends the next frame to `rows` (x₀ y₀ z₀ x₁ …, nm); `false` at the end of the file.
    fn read_frame(&mut self, rows: &mut Vec<f64>) -> Result<bool> {
        if std::io::BufRead::fill_buf(&mut self.r).map_or(true, <[u8]>::is_empty) {
            return Ok(false);
        }
        let what = format!("frame {}", self.frame);
        if self.unit_cell {
            self.record(&what)?;
        }
        let n = self.n_atoms;
        let start = rows.len();
        rows.resize(start + 3 * n, 0.0);
        for axis in 0..3 {
            let data = self.record(&what)?;
            if data.len() != 4 * n {
                rows.truncate(start);
                return Err(bad(
                    &self.path,
                    format!("{what}: {} bytes of coordinates for {n} atoms", data.len()),
                ));
            }
            for (i, b) in data.chunks_exact(4).enumerate() {
                let v = f32::from_le_bytes(b.try_into().unwrap());
                rows[start + 3 * i + axis] = f64::from(v) / ANGSTROM_PER_NM;
            }
        }
        self.frame += 1;
        Ok(true)
    }
}

/// Writes a CHARMM-layout DCD (no unit cell) of frames in nm (stored in Å).
fn write_dcd(path: &Path, x: ArrayView2<f64>, dt_ps: f64) -> Result<()> {
    let f = File::create(path).map_err(|e| crate::io_err("cannot write", path, e))?;
    let mut w = BufWriter::new(f);
    let n = x.ncols() / 3;
    let record = |w: &mut BufWriter<File>, data: &[u8]| -> std::io::Result<()> {
        let len = (data.len() as i32).to_le_bytes();
        w.write_all(&len)?;
        w.write_all(data)?;
        w.write_all(&len)
    };
    let io = |e| crate::io_err("cannot write", path, e);
    let mut header = Vec::with_capacity(84);
    header.extend_from_slice(b"CORD");
    let mut ints = [0i32; 20];
    ints[0] = x.nrows() as i32; // frames
    ints[1] = 0; // first step
    ints[2] = 1; // steps between frames
    ints[3] = x.nrows() as i32; // last step
    ints[19] = 24; // CHARMM version
    for (k, v) in ints.iter().enumerate() {
        if k == 9 {
            // The time step, in AKMA units (1 AKMA = 48.88821 fs).
            header.extend_from_slice(&((dt_ps * 1000.0 / 48.888_21) as f32).to_le_bytes());
        } else {
            header.extend_from_slice(&v.to_le_bytes());
        }
    }
    record(&mut w, &header).map_err(io)?;
    let mut title = Vec::with_capacity(4 + 80);
    title.extend_from_slice(&1i32.to_le_bytes());
    let mut line = [b' '; 80];
    let text = b"REMARKS written by boltzflow";
    line[..text.len()].copy_from_slice(text);
    title.extend_from_slice(&line);
    record(&mut w, &title).map_err(io)?;
    record(&mut w, &(n as i32).to_le_bytes()).map_err(io)?;
    let mut data = Vec::with_capacity(4 * n);
    for row in x.rows() {
        for axis in 0..3 {
            data.clear();
            for i in 0..n {
                let v = (row[3 * i + axis] * ANGSTROM_PER_NM) as f32;
                data.extend_from_slice(&v.to_le_bytes());
            }
            record(&mut w, &data).map_err(io)?;
        }
    }
    w.flush().map_err(io)?;
    w.get_ref().sync_all().map_err(io)
}

/// The file and its length in bytes (the bound for every size a header claims).
fn open_with_len(path: &Path) -> Result<(File, u64)> {
    let io = |e| crate::io_err("cannot read", path, e);
    let f = File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    Ok((f, len))
}

/// Big-endian i32 at `k` of `b` (XDR).
fn be_i32(b: &[u8], k: usize) -> i32 {
    i32::from_be_bytes(b[k..k + 4].try_into().expect("4 bytes"))
}

/// Reads up to `n` bytes at the current position without consuming them.
fn peek(r: &mut BufReader<File>, n: usize) -> std::io::Result<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    let pos = r.stream_position()?;
    let mut buf = Vec::with_capacity(n);
    r.by_ref().take(n as u64).read_to_end(&mut buf)?;
    r.seek(SeekFrom::Start(pos))?;
    Ok(buf)
}

fn at_end(r: &mut BufReader<File>) -> bool {
    std::io::BufRead::fill_buf(r).map_or(true, <[u8]>::is_empty)
}

/// An XTC file, frames decoded by `molly`. Every frame header is checked here first (magic,
/// atom count, compressed size against the file) so that a corrupt file cannot make the
/// decoder allocate what the file does not hold; a panic in the decoder is caught as a backstop.
struct XtcReader {
    path: PathBuf,
    r: molly::XTCReader<BufReader<File>>,
    n_atoms: usize,
    len: u64,
    frame: usize,
    buf: molly::Frame,
}

impl XtcReader {
    const MAGICS: [i32; 2] = [1995, 2023];
    /// Header (56 bytes), precision, min/max integers, small index: the byte count follows.
    const COUNT_AT: usize = 88;

    fn open(path: &Path) -> Result<Self> {
        let (f, len) = open_with_len(path)?;
        let mut r = BufReader::new(f);
        let head = peek(&mut r, 56).map_err(|e| crate::io_err("cannot read", path, e))?;
        if head.len() < 56 || !Self::MAGICS.contains(&be_i32(&head, 0)) {
            return Err(bad(
                path,
                "not an XTC file (no frame header with magic 1995 or 2023)",
            ));
        }
        let n = be_i32(&head, 4);
        // A compressed atom takes at least a few bits: more atoms than 8 per byte is corrupt.
        if n <= 0 || n as u64 > 8 * len {
            return Err(bad(path, format!("frame 0 claims {n} atoms")));
        }
        Ok(Self {
            path: path.to_path_buf(),
            r: molly::XTCReader::new(r),
            n_atoms: n as usize,
            len,
            frame: 0,
            buf: molly::Frame::default(),
        })
    }

    fn read_frame(&mut self, rows: &mut Vec<f64>) -> Result<bool> {
        use std::io::Seek;
        let file = &mut self.r.file;
        if at_end(file) {
            return Ok(false);
        }
        let what = format!("frame {}", self.frame);
        let io = |e| crate::io_err("cannot read", &self.path, e);
        let pos = file.stream_position().map_err(io)?;
        let head = peek(file, Self::COUNT_AT + 8).map_err(io)?;
        if head.len() < 56 {
            return Err(bad(&self.path, format!("{what} is truncated")));
        }
        let magic = be_i32(&head, 0);
        let (n1, n2) = (be_i32(&head, 4), be_i32(&head, 52));
        if !Self::MAGICS.contains(&magic) || n1 != n2 || n1 != self.n_atoms as i32 {
            return Err(bad(
                &self.path,
                format!(
                    "{what}: bad header (magic {magic}, atoms {n1}/{n2}, expected {})",
                    self.n_atoms
                ),
            ));
        }
        if self.n_atoms > 9 {
            let count = match (magic, head.len()) {
                (1995, l) if l >= Self::COUNT_AT + 4 => {
                    u64::from(be_i32(&head, Self::COUNT_AT) as u32)
                }
                (_, l) if l >= Self::COUNT_AT + 8 => u64::from_be_bytes(
                    head[Self::COUNT_AT..Self::COUNT_AT + 8]
                        .try_into()
                        .expect("8 bytes"),
                ),
                _ => return Err(bad(&self.path, format!("{what} is truncated"))),
            };
            if count > self.len - pos {
                return Err(bad(
                    &self.path,
                    format!("{what}: {count} compressed bytes, more than the file holds"),
                ));
            }
        }
        let (r, buf) = (&mut self.r, &mut self.buf);
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.read_frame(buf)));
        match decoded {
            Ok(Ok(())) if buf.positions.len() == 3 * self.n_atoms => {}
            Ok(Ok(())) => return Err(bad(&self.path, format!("{what}: wrong atom count"))),
            Ok(Err(e)) => return Err(bad(&self.path, format!("{what} cannot be read ({e})"))),
            Err(_) => return Err(bad(&self.path, format!("{what} is corrupt"))),
        }
        rows.extend(buf.positions.iter().map(|&v| f64::from(v)));
        self.frame += 1;
        Ok(true)
    }
}

fn write_xtc(path: &Path, x: ArrayView2<f64>, dt_ps: f64) -> Result<()> {
    let f = File::create(path).map_err(|e| crate::io_err("cannot write", path, e))?;
    let io = |e| crate::io_err("cannot write", path, e);
    let mut w = molly::XTCWriter::new(BufWriter::new(f));
    for (k, row) in x.rows().into_iter().enumerate() {
        let frame = molly::Frame {
            step: k as u32,
            time: (k as f64 * dt_ps) as f32,
            boxvec: [0.0; 9],
            precision: 1000.0,
            positions: row.iter().map(|&v| v as f32).collect(),
        };
        w.write_frame(&frame).map_err(io)?;
    }
    w.file.flush().map_err(io)?;
    w.file.get_ref().sync_all().map_err(io)
}

/// A TRR file (GROMACS's full-precision format, XDR big-endian): per frame a header naming the
/// size of each block, then box, virial, pressure, positions, velocities and forces, in f32 or
/// f64. Positions are read; the other blocks are skipped.
struct TrrReader {
    path: PathBuf,
    r: BufReader<File>,
    n_atoms: usize,
    len: u64,
    frame: usize,
}

impl TrrReader {
    const MAGIC: i32 = 1993;
    /// magic, string length, XDR string (length + "GMX_trn_file"), 13 sizes/counts.
    const HEADER: usize = 4 + 4 + 4 + 12 + 13 * 4;

    fn open(path: &Path) -> Result<Self> {
        let (f, len) = open_with_len(path)?;
        let mut r = Self {
            path: path.to_path_buf(),
            r: BufReader::new(f),
            n_atoms: 0,
            len,
            frame: 0,
        };
        let head =
            peek(&mut r.r, Self::HEADER).map_err(|e| crate::io_err("cannot read", path, e))?;
        if head.len() < Self::HEADER || be_i32(&head, 0) != Self::MAGIC {
            return Err(bad(
                path,
                "not a TRR file (no frame header with magic 1993)",
            ));
        }
        let n = be_i32(&head, 24 + 10 * 4);
        if n <= 0 || n as u64 > len / 12 {
            return Err(bad(path, format!("frame 0 claims {n} atoms")));
        }
        r.n_atoms = n as usize;
        Ok(r)
    }

    /// Reads past `n` bytes of frame `what` (bounded by the file length already).
    fn skip(&mut self, n: i32, what: &str) -> Result<()> {
        let n = n as u64;
        let skipped = std::io::copy(&mut self.r.by_ref().take(n), &mut std::io::sink())
            .map_err(|e| crate::io_err("cannot read", &self.path, e))?;
        if skipped < n {
            return Err(bad(&self.path, format!("{what} is truncated")));
        }
        Ok(())
    }

    fn read_frame(&mut self, rows: &mut Vec<f64>) -> Result<bool> {
        use std::io::Seek;
        if at_end(&mut self.r) {
            return Ok(false);
        }
        let what = format!("frame {}", self.frame);
        let io = |e| crate::io_err("cannot read", &self.path, e);
        let pos = self.r.stream_position().map_err(io)?;
        let mut head = vec![0u8; Self::HEADER];
        self.r
            .read_exact(&mut head)
            .map_err(|_| bad(&self.path, format!("{what} is truncated")))?;
        if be_i32(&head, 0) != Self::MAGIC
            || be_i32(&head, 8) != 12
            || &head[12..24] != b"GMX_trn_file"
        {
            return Err(bad(&self.path, format!("{what}: not a TRR frame header")));
        }
        let size = |k: usize| be_i32(&head, 24 + 4 * k);
        let [ir, e, bx, vir, pres, top, sym, xs, vs, fs, natoms] = std::array::from_fn(size);
        if natoms != self.n_atoms as i32 {
            return Err(bad(
                &self.path,
                format!("{what}: {natoms} atoms, frame 0 has {}", self.n_atoms),
            ));
        }
        if [ir, e, top, sym].iter().any(|&v| v != 0)
            || [bx, vir, pres, xs, vs, fs].iter().any(|&v| v < 0)
        {
            return Err(bad(
                &self.path,
                format!("{what}: unsupported or corrupt block sizes"),
            ));
        }
        let per = 3 * self.n_atoms as i32;
        let real = if xs == 4 * per {
            4
        } else if xs == 8 * per {
            8
        } else {
            return Err(bad(
                &self.path,
                format!("{what}: {xs} bytes of positions for {} atoms", self.n_atoms),
            ));
        };
        // The time and λ in the file's precision, then the blocks.
        let rest: u64 = [2 * real, bx, vir, pres, xs, vs, fs]
            .iter()
            .map(|&v| v as u64)
            .sum();
        if pos + Self::HEADER as u64 + rest > self.len {
            return Err(bad(&self.path, format!("{what} is truncated")));
        }
        self.skip(2 * real + bx + vir + pres, &what)?;
        let mut data = vec![0u8; xs as usize];
        self.r
            .read_exact(&mut data)
            .map_err(|_| bad(&self.path, format!("{what} is truncated")))?;
        if real == 4 {
            rows.extend(
                data.chunks_exact(4)
                    .map(|b| f64::from(f32::from_be_bytes(b.try_into().unwrap()))),
            );
        } else {
            rows.extend(
                data.chunks_exact(8)
                    .map(|b| f64::from_be_bytes(b.try_into().unwrap())),
            );
        }
        self.skip(vs + fs, &what)?;
        self.frame += 1;
        Ok(true)
    }
}

fn write_trr(path: &Path, x: ArrayView2<f64>, dt_ps: f64) -> Result<()> {
    let f = File::create(path).map_err(|e| crate::io_err("cannot write", path, e))?;
    let io = |e| crate::io_err("cannot write", path, e);
    let mut w = BufWriter::new(f);
    let n = x.ncols() / 3;
    let mut bytes = Vec::new();
    for (k, row) in x.rows().into_iter().enumerate() {
        bytes.clear();
        for v in [TrrReader::MAGIC, 13, 12] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        bytes.extend_from_slice(b"GMX_trn_file");
        let sizes = [
            0,
            0,
            36,
            0,
            0,
            0,
            0,
            (12 * n) as i32,
            0,
            0,
            n as i32,
            k as i32,
            0,
        ];
        for v in sizes {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        bytes.extend_from_slice(&((k as f64 * dt_ps) as f32).to_be_bytes());
        bytes.extend_from_slice(&0f32.to_be_bytes());
        bytes.extend_from_slice(&[0u8; 36]);
        for &v in row {
            bytes.extend_from_slice(&(v as f32).to_be_bytes());
        }
        w.write_all(&bytes).map_err(io)?;
    }
    w.flush().map_err(io)?;
    w.get_ref().sync_all().map_err(io)
}
