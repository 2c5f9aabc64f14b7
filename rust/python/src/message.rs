//! One native call per message for a fixed (input key, context, header): the
//! cached-encryption fast path.

use envelope_kernel::{cobblestone, Error};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buffers::ReadBuffer;
use crate::errors::to_py;
use crate::fresh;

/// Seals whole messages under one input key, body context and message prefix (the
/// envelope header): `prefix || salt || commitment || chunks` in one call. The caller
/// passes a fresh random salt per message (Python's `secrets`: aws-lc's generator
/// costs ~70 ms of jitter-entropy set-up on first use). The key is zeroed on drop.
#[pyclass(module = "envelope._native", frozen)]
pub(crate) struct MessageSealer {
    input_key: zeroize::Zeroizing<Vec<u8>>,
    context: Vec<u8>,
    prefix: Vec<u8>,
}

#[pymethods]
impl MessageSealer {
    #[new]
    fn new(py: Python<'_>, input_key: &[u8], context: &[u8], prefix: &[u8]) -> PyResult<Self> {
        if input_key.len() != envelope_kernel::aead::KEY_LEN {
            return Err(to_py(py, Error::InvalidKeySize));
        }
        Ok(Self {
            input_key: zeroize::Zeroizing::new(input_key.to_vec()),
            context: context.to_vec(),
            prefix: prefix.to_vec(),
        })
    }

    /// Returns `prefix` followed by the Cobblestone-256 ciphertext of `message` under
    /// the 24-byte `salt` (fresh and random for every message).
    #[pyo3(signature = (message, salt, threads=0))]
    fn seal<'py>(
        &self,
        py: Python<'py>,
        message: &Bound<'py, PyAny>,
        salt: &[u8],
        threads: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let message = ReadBuffer::get(message)?;
        let pt = message.as_slice();
        let len = cobblestone::sealed_len(pt.len()).map_err(|e| to_py(py, e))?;
        let (key, ctx) = (&self.input_key[..], &self.context[..]);
        fresh::new_bytes(py, &self.prefix, len, threads, |dst| {
            cobblestone::seal_into(key, salt, ctx, pt, dst, threads)
        })
    }
}

/// Opens whole messages under one input key and body context (a cached header):
/// the body starts at `offset` in the message. The key is zeroed on drop.
#[pyclass(module = "envelope._native", frozen)]
pub(crate) struct MessageOpener {
    input_key: zeroize::Zeroizing<Vec<u8>>,
    context: Vec<u8>,
}

#[pymethods]
impl MessageOpener {
    #[new]
    fn new(input_key: &[u8], context: &[u8]) -> Self {
        // Any key length is accepted: a wrong one fails as DecryptionError in `open`.
        Self {
            input_key: zeroize::Zeroizing::new(input_key.to_vec()),
            context: context.to_vec(),
        }
    }

    /// Decrypts the Cobblestone-256 body of `message` that starts at `offset`.
    #[pyo3(signature = (message, offset, threads=0))]
    fn open<'py>(
        &self,
        py: Python<'py>,
        message: &Bound<'py, PyAny>,
        offset: usize,
        threads: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let message = ReadBuffer::get(message)?;
        let ct = message
            .as_slice()
            .get(offset..)
            .ok_or_else(|| to_py(py, Error::Decrypt))?;
        let len = cobblestone::opened_len(ct.len()).map_err(|e| to_py(py, e))?;
        let (key, ctx) = (&self.input_key[..], &self.context[..]);
        fresh::new_bytes(py, b"", len, threads, |dst| {
            cobblestone::open_into(key, ct, ctx, dst, threads)
        })
    }
}
