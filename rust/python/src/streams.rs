//! Incremental Cobblestone-256 for Python streams.

use envelope_kernel::{cobblestone, stream};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buffers::{ReadBuffer, WriteBuffer};
use crate::errors::{to_py, Invalid};

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

/// Runs a whole-chunk step from `data` into the caller's writable `out` with the GIL
/// released (the two buffers must not overlap).
fn feed_into<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    out: &Bound<'py, PyAny>,
    step: impl FnOnce(&[u8], &mut [u8]) -> Result<(), envelope_kernel::Error> + Send,
) -> PyResult<()> {
    let data = ReadBuffer::get(data)?;
    let mut out = WriteBuffer::get(out)?;
    let src = data.as_slice();
    let dst = out.as_mut_slice();
    let (s, d) = (src.as_ptr() as usize, dst.as_ptr() as usize);
    if !src.is_empty() && !dst.is_empty() && s < d + dst.len() && d < s + src.len() {
        return Err(Invalid::BuffersOverlap.into());
    }
    py.detach(|| step(src, dst)).map_err(|e| to_py(py, e))
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

    /// Seals whole chunks of `data` (a multiple of CHUNK_LEN) into `out` (as many sealed
    /// chunks) on `threads` workers; needs the prefix taken (`update(b"")`) and no
    /// partial chunk buffered.
    #[pyo3(signature = (data, out, threads=0))]
    fn seal_chunks<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        out: &Bound<'py, PyAny>,
        threads: usize,
    ) -> PyResult<()> {
        let inner = &mut self.inner;
        feed_into(py, data, out, |d, o| inner.seal_chunks(d, o, threads))
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

    /// Opens whole chunks of `data` (a multiple of SEALED_CHUNK_LEN) into `out` (as many
    /// plaintext chunks) on `threads` workers; needs the prefix fed and no partial chunk
    /// buffered. On failure `out` is zeroed and `DecryptionError` raised.
    #[pyo3(signature = (data, out, threads=0))]
    fn open_chunks<'py>(
        &mut self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        out: &Bound<'py, PyAny>,
        threads: usize,
    ) -> PyResult<()> {
        let inner = &mut self.inner;
        feed_into(py, data, out, |d, o| inner.open_chunks(d, o, threads))
    }

    /// Authenticates the final chunk and returns its plaintext.
    fn finalize<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let mut out = Vec::with_capacity(cobblestone::CHUNK_LEN);
        self.inner.finish(&mut out).map_err(|e| to_py(py, e))?;
        Ok(PyBytes::new(py, &out))
    }
}
