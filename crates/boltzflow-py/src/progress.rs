//! Training progress in Python: lines through Python's own `print` (so they show in Jupyter as
//! well as on a terminal) or a callback, and Ctrl-C honoured at the next checkpoint.
//!
//! Training runs with the GIL released, so Python's SIGINT handler only sets a flag; the run
//! asks [`Progress::interrupted`] after every checkpoint (every epoch; every step for VANs),
//! which takes the GIL and runs the pending handlers. A `KeyboardInterrupt` (or an exception
//! from the callback) stops training there, with the checkpoint written.

use boltzflow_core::Error;
use boltzflow_learn::run::Progress;
use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;

/// Where the lines go.
pub enum Sink {
    /// Python's `print(line, flush=True)`.
    Print,
    /// Nowhere.
    Silent,
    /// `callback(line)`.
    Callback(Py<PyAny>),
}

/// Progress of a training run called from Python.
pub struct PyProgress {
    sink: Sink,
    /// The exception that stops the run (Ctrl-C, or one the callback raised).
    pending: Option<PyErr>,
}

impl PyProgress {
    /// Progress into `sink`.
    pub fn new(sink: Sink) -> Self {
        Self {
            sink,
            pending: None,
        }
    }

    fn emit(&mut self, line: &str) {
        if self.pending.is_some() {
            return;
        }
        let sink = &self.sink;
        let result = Python::attach(|py| -> PyResult<()> {
            match sink {
                Sink::Silent => {}
                Sink::Print => {
                    let kwargs = pyo3::types::PyDict::new(py);
                    kwargs.set_item("flush", true)?;
                    py.import("builtins")?
                        .getattr("print")?
                        .call((line,), Some(&kwargs))?;
                }
                Sink::Callback(f) => {
                    f.call1(py, (line,))?;
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            self.pending = Some(e);
        }
    }

    /// The Python exception for the result of a training run: the callback's exception or
    /// `KeyboardInterrupt` (with the Rust message, which names the checkpoint and how to
    /// resume) when one stopped it, else the error's own exception.
    pub fn finish(mut self, result: boltzflow_core::Result<()>) -> PyResult<()> {
        let pending = self.pending.take();
        match (result, pending) {
            (Ok(()), None) => Ok(()),
            // The run finished, but the callback failed or Ctrl-C came after the last check.
            (Ok(()), Some(p)) => Err(p),
            (Err(e @ Error::Interrupted { .. }), Some(p)) => Python::attach(|py| {
                if p.is_instance_of::<PyKeyboardInterrupt>(py) {
                    Err(PyKeyboardInterrupt::new_err(e.to_string()))
                } else {
                    Err(p)
                }
            }),
            (Err(e), _) => Err(crate::py_err(e)),
        }
    }
}

impl Progress for PyProgress {
    fn status(&mut self, line: &str) {
        self.emit(line);
    }

    fn detail(&mut self, line: &str) {
        self.emit(line);
    }

    fn interrupted(&mut self) -> bool {
        if self.pending.is_none() {
            let checked = Python::attach(|py| py.check_signals());
            if let Err(e) = checked {
                self.pending = Some(e);
            }
        }
        self.pending.is_some()
    }
}
