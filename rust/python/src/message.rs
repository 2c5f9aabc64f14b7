//! One native call per message for a fixed (input key, context, header): the
//! cached-encryption fast path.

use envelope_kernel::cobblestone::{self, InputKey, SALT_LEN};
use envelope_kernel::Error;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buffers::ReadBuffer;
use crate::errors::{random_error, to_py};
use crate::fresh;

/// Seals whole messages under one input key, body context and message prefix (the
/// envelope header): `prefix || salt || commitment || chunks` in one call. Each
/// message draws a fresh random salt from the OS (getrandom, as Python's `secrets`)
/// unless the caller passes one. The input key's HMAC key schedule is computed once
/// here and wiped by aws-lc on drop.
#[pyclass(module = "envelope._native", frozen)]
pub(crate) struct MessageSealer {
    input_key: InputKey,
    context: Vec<u8>,
    prefix: Vec<u8>,
}

#[pymethods]
impl MessageSealer {
    #[new]
    fn new(py: Python<'_>, input_key: &[u8], context: &[u8], prefix: &[u8]) -> PyResult<Self> {
        Ok(Self {
            input_key: InputKey::new(input_key).map_err(|e| to_py(py, e))?,
            context: context.to_vec(),
            prefix: prefix.to_vec(),
        })
    }

    /// Returns `prefix` followed by the Cobblestone-256 ciphertext of `message` under
    /// the 24-byte `salt`, or under a fresh random salt when `salt` is None.
    #[pyo3(signature = (message, salt=None, threads=0))]
    fn seal<'py>(
        &self,
        py: Python<'py>,
        message: &Bound<'py, PyAny>,
        salt: Option<&[u8]>,
        threads: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut fresh_salt = [0u8; SALT_LEN];
        let salt = match salt {
            Some(salt) => salt,
            None => {
                getrandom::fill(&mut fresh_salt).map_err(random_error)?;
                &fresh_salt[..]
            }
        };
        let message = ReadBuffer::get(message)?;
        let pt = message.as_slice();
        let len = cobblestone::sealed_len(pt.len()).map_err(|e| to_py(py, e))?;
        let (key, ctx) = (&self.input_key, &self.context[..]);
        fresh::new_bytes(py, &self.prefix, len, threads, |dst| {
            cobblestone::seal_into_with(key, salt, ctx, pt, dst, threads)
        })
    }
}

/// Opens whole messages under one input key and body context (a cached header):
/// the body starts at `offset` in the message. The key schedule is wiped on drop.
#[pyclass(module = "envelope._native", frozen)]
pub(crate) struct MessageOpener {
    /// None for a key of the wrong size: every `open` then fails as DecryptionError.
    input_key: Option<InputKey>,
    context: Vec<u8>,
}

#[pymethods]
impl MessageOpener {
    #[new]
    fn new(input_key: &[u8], context: &[u8]) -> Self {
        Self {
            input_key: InputKey::new(input_key).ok(),
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
        let key = self
            .input_key
            .as_ref()
            .ok_or_else(|| to_py(py, Error::Decrypt))?;
        let ctx = &self.context[..];
        fresh::new_bytes(py, b"", len, threads, |dst| {
            cobblestone::open_into_with(key, ct, ctx, dst, threads)
        })
    }
}
