//! Incremental Cobblestone-256 for Python streams.

use envelope_kernel::{cobblestone, stream};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buffers::ReadBuffer;
use crate::errors::to_py;

/// Above this many bytes per call, the GIL is released while sealing/opening.
const DETACH_MIN: usize = 64 * 1024;

/// Runs one streaming step on `data` (released from the GIL for large pieces) and
/// returns what it produced.
fn feed<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    extra: usize,
    step: impl FnOnce(&[u8], &mut Vec<u8>) -> Result<(), envelope_kernel::Error> + Send,
) -> PyResult<Bound<'py, PyBytes>> {
    let data = ReadBuffer::get(data)?;
    let data = data.as_slice();
    let mut out = Vec::with_capacity(data.len() + extra);
    let result = if data.len() >= DETACH_MIN {
        py.detach(|| step(data, &mut out))
    } else {
        step(data, &mut out)
    };
    result.map_err(|e| to_py(py, e))?;
    Ok(PyBytes::new(py, &out))
}

/// Encrypts a Cobblestone-256 message piece by piece.
#[pyclass(module = "envelope._native")]
pub(crate) struct StreamSealer {
    inner: stream::StreamSealer,
}

#[pymethods]
impl StreamSealer {
    #[new]
    fn new(py: Python<'_>, input_key: &[u8], salt: &[u8], context: &[u8]) -> PyResult<Self> {
        let inner =
            stream::StreamSealer::new(input_key, salt, context).map_err(|e| to_py(py, e))?;
        Ok(Self { inner })
    }

    /// Returns the ciphertext that `data` completes (the 56-byte prefix on the first call).
    fn update<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let inner = &mut self.inner;
        feed(py, data, cobblestone::SEALED_CHUNK_LEN, |d, out| {
            inner.update(d, out)
        })
    }

    /// Returns the final chunk; the sealer cannot be used afterwards.
    fn finalize<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let mut out = Vec::with_capacity(cobblestone::PREFIX_LEN + cobblestone::SEALED_CHUNK_LEN);
        self.inner.finish(&mut out).map_err(|e| to_py(py, e))?;
        Ok(PyBytes::new(py, &out))
    }
}

/// Decrypts a Cobblestone-256 message piece by piece; releases only authenticated plaintext.
#[pyclass(module = "envelope._native")]
pub(crate) struct StreamOpener {
    inner: stream::StreamOpener,
}

#[pymethods]
impl StreamOpener {
    #[new]
    fn new(input_key: &[u8], context: &[u8]) -> Self {
        Self {
            inner: stream::StreamOpener::new(input_key, context),
        }
    }

    /// Returns the plaintext of every chunk that `data` completes and that is not the last.
    fn update<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let inner = &mut self.inner;
        feed(py, data, cobblestone::CHUNK_LEN, |d, out| {
            inner.update(d, out)
        })
    }

    /// Authenticates the final chunk and returns its plaintext.
    fn finalize<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let mut out = Vec::with_capacity(cobblestone::CHUNK_LEN);
        self.inner.finish(&mut out).map_err(|e| to_py(py, e))?;
        Ok(PyBytes::new(py, &out))
    }
}
