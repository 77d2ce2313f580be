//! Typed errors shared by the library crates. Each variant names what is wrong and, where it is
//! user input, what to change.

use std::path::PathBuf;

/// The error type of every boltzflow library crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter was rejected when a thing was built (validation happens at build time).
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter's name as the user writes it.
        name: String,
        /// Why it is invalid and what is accepted.
        reason: String,
    },
    /// A system specification `name[:key=value,...]` could not be understood.
    #[error("invalid system specification `{spec}`: {reason}")]
    InvalidSpec {
        /// The specification as given.
        spec: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// An array had the wrong shape.
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    Shape {
        /// Which array.
        what: String,
        /// The expected shape, in words.
        expected: String,
        /// The shape that was given.
        got: String,
    },
    /// A non-finite number (NaN or ±inf) where a finite one is required.
    #[error("non-finite value in {what} at {location}: {value}")]
    NonFinite {
        /// Which quantity (energy, coordinates, weights, ...).
        what: String,
        /// Where: a row, a step, a chain.
        location: String,
        /// The offending value.
        value: f64,
    },
    /// An I/O failure with the file it concerns.
    #[error("{action} `{path}`: {source}")]
    Io {
        /// What was being done ("cannot read", "cannot write").
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file was read but its content is not what was expected.
    #[error("bad file `{path}`: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A numerical procedure failed (no convergence, singular matrix, ...).
    #[error("numerical failure in {what}: {reason}")]
    Numerical {
        /// The procedure.
        what: String,
        /// What happened.
        reason: String,
    },
    /// A run stopped on request (Ctrl-C in Python) after writing its checkpoint.
    #[error(
        "interrupted {after}; the checkpoint `{checkpoint}` holds the run: continue it with --resume (Python: resume=True)"
    )]
    Interrupted {
        /// Where it stopped ("after epoch 12").
        after: String,
        /// The checkpoint written last.
        checkpoint: PathBuf,
    },
    /// Another error, with where it happened ("in [system] of the configuration").
    #[error("{context}: {source}")]
    Context {
        /// What was being done or read.
        context: String,
        /// The error itself.
        #[source]
        source: Box<Error>,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::InvalidParameter`].
    pub fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// Wraps the error with where it happened ([`Error::Context`]).
    pub fn context(self, context: impl Into<String>) -> Self {
        Error::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// The error under all its [`Error::Context`] layers.
    pub fn root(&self) -> &Error {
        match self {
            Error::Context { source, .. } => source.root(),
            e => e,
        }
    }

    /// Shorthand for [`Error::Shape`].
    pub fn shape(what: impl Into<String>, expected: impl ToString, got: impl ToString) -> Self {
        Error::Shape {
            what: what.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }
}

/// [`Error::context`] on results.
pub trait ResultExt<T> {
    /// Wraps an error with where it happened.
    ///
    /// # Errors
    /// The error of `self`, wrapped.
    fn context(self, context: impl Into<String>) -> Result<T>;
    /// Like [`ResultExt::context`], the context computed only on error.
    ///
    /// # Errors
    /// The error of `self`, wrapped.
    fn with_context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T> ResultExt<T> for Result<T> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|e| e.context(context))
    }
    fn with_context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| e.context(context()))
    }
}
