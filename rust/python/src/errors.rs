//! Every Python exception the binding raises is built here, and only here.
//!
//! Kernel errors map by [`to_py`]; the binding's own argument checks are the
//! variants of [`Invalid`], each with its message. (Errors that PyO3 raises while
//! converting arguments or exporting buffers pass through unchanged.)

use envelope_kernel::Error;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyType;

/// `envelope.errors.DecryptionError` for authentication failures, `ValueError`
/// for bad arguments, `RuntimeError` for what cannot happen on valid input.
pub(crate) fn to_py(py: Python<'_>, err: Error) -> PyErr {
    match err {
        Error::Decrypt => decryption_error(py),
        Error::Internal => PyRuntimeError::new_err(err.to_string()),
        _ => PyValueError::new_err(err.to_string()),
    }
}

/// `OSError` when the operating system's random generator fails (as `os.urandom`).
pub(crate) fn random_error(err: getrandom::Error) -> PyErr {
    PyOSError::new_err(format!("the OS random generator failed: {err}"))
}

fn decryption_error(py: Python<'_>) -> PyErr {
    let class = py
        .import("envelope.errors")
        .and_then(|m| m.getattr("DecryptionError"))
        .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
    match class {
        Ok(cls) => PyErr::from_type(cls, ()),
        Err(e) => e,
    }
}

/// An argument the binding refuses before calling the kernel; raised as `ValueError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// A read buffer is not C-contiguous.
    BufferNotContiguous,
    /// `out` is read-only.
    OutNotWritable,
    /// `out` is not C-contiguous.
    OutNotContiguous,
    /// `out` shares memory with the input buffer.
    OutOverlapsInput,
    /// Offsets are not a buffer of int64 values.
    OffsetsNotInt64,
    /// Offsets are not C-contiguous.
    OffsetsNotContiguous,
    /// Offsets are not 8-byte aligned.
    OffsetsMisaligned,
    /// Records are neither a list nor a buffer with offsets.
    RecordsNotList,
    /// A list item is not a bytes-like object.
    RecordNotBytesLike,
    /// A list item is not C-contiguous.
    RecordNotContiguous,
    /// The input and output buffers share memory.
    BuffersOverlap,
}

impl Invalid {
    fn message(self) -> &'static str {
        match self {
            Invalid::BufferNotContiguous => "buffer must be C-contiguous",
            Invalid::OutNotWritable => "out must be a writable buffer",
            Invalid::OutOverlapsInput => "out must not overlap the input buffer",
            Invalid::OutNotContiguous => "out must be C-contiguous",
            Invalid::OffsetsNotInt64 => "offsets must be a buffer of int64 (or int32) values",
            Invalid::OffsetsNotContiguous => "offsets must be C-contiguous",
            Invalid::OffsetsMisaligned => "offsets must be 8-byte aligned",
            Invalid::RecordsNotList => "records must be a list, or a buffer with offsets",
            Invalid::RecordNotBytesLike => "every record must be a bytes-like object",
            Invalid::RecordNotContiguous => "records must be C-contiguous",
            Invalid::BuffersOverlap => "data and out must not overlap",
        }
    }
}

impl From<Invalid> for PyErr {
    fn from(err: Invalid) -> Self {
        PyValueError::new_err(err.message())
    }
}
