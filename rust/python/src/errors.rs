//! Kernel errors to Python exceptions.

use envelope_kernel::Error;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
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
