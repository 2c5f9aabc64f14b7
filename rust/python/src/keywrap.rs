//! The local keyring's key wrap, and whole messages under a fresh data key per
//! message in one native call: the uncached local-keyring path.

use envelope_kernel::aead::NONCE_LEN;
use envelope_kernel::cobblestone::{self, SALT_LEN};
use envelope_kernel::keywrap::{self, DATA_KEY_LEN};
use envelope_kernel::Error;
use std::sync::atomic::{AtomicU64, Ordering};

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use zeroize::Zeroizing;

use crate::buffers::{ReadBuffer, WriteBuffer};
use crate::errors::{random_error, to_py};
use crate::fresh;

/// Messages sealed and opened by every [`FreshKeyMessages`] of the process: each one
/// wrap or unwrap of its data key, counted here rather than by a Python call each.
static SEALED: AtomicU64 = AtomicU64::new(0);
static OPENED: AtomicU64 = AtomicU64::new(0);

/// `(sealed, opened)`: the messages every `FreshKeyMessages` of this process has
/// sealed and opened so far (each one KEK wrap or unwrap).
#[pyfunction]
pub(crate) fn fresh_key_counts() -> (u64, u64) {
    (
        SEALED.load(Ordering::Relaxed),
        OPENED.load(Ordering::Relaxed),
    )
}

/// A key-encryption key expanded once (aws-lc wipes it on drop) and the head of every
/// blob it wraps: `head || nonce || AES-256-GCM(kek, nonce, aad, data key)`.
#[pyclass(module = "envelope._native", frozen)]
pub(crate) struct KeyWrap {
    inner: keywrap::KeyWrap,
}

#[pymethods]
impl KeyWrap {
    #[new]
    fn new(py: Python<'_>, kek: &Bound<'_, PyAny>, head: &[u8]) -> PyResult<Self> {
        // Any buffer, so that the caller's KEK never needs an unwipeable `bytes` copy.
        let kek = ReadBuffer::get(kek)?;
        let inner = keywrap::KeyWrap::new(kek.as_slice(), head).map_err(|e| to_py(py, e))?;
        Ok(Self { inner })
    }

    /// The length of every blob this wraps.
    #[getter]
    fn wrapped_len(&self) -> usize {
        self.inner.wrapped_len()
    }

    /// Wraps the 32-byte `data_key` (any buffer) under `aad` and a fresh random nonce.
    fn wrap<'py>(
        &self,
        py: Python<'py>,
        data_key: &Bound<'py, PyAny>,
        aad: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        let data_key = ReadBuffer::get(data_key)?;
        let key: &[u8; DATA_KEY_LEN] = data_key
            .as_slice()
            .try_into()
            .map_err(|_| to_py(py, Error::InvalidKeySize))?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(random_error)?;
        PyBytes::new_with(py, self.inner.wrapped_len(), |out| {
            self.inner
                .wrap_into(key, nonce, aad, out)
                .map_err(|e| to_py(py, e))
        })
    }

    /// Unwraps `wrapped` under `aad` into the writable 32-byte buffer `out`, so the key
    /// is only ever in a buffer the caller wipes. `DecryptionError` if it does not
    /// authenticate (`out` is then zeros).
    fn unwrap_into(
        &self,
        py: Python<'_>,
        wrapped: &[u8],
        aad: &[u8],
        out: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let mut out = WriteBuffer::get(out)?;
        let dst = out.as_mut_slice();
        if dst.len() != DATA_KEY_LEN {
            return Err(to_py(
                py,
                Error::OutputLength {
                    expected: DATA_KEY_LEN,
                    actual: dst.len(),
                },
            ));
        }
        match self.inner.unwrap(wrapped, aad) {
            Ok(key) => {
                dst.copy_from_slice(&key[..]);
                Ok(())
            }
            Err(e) => {
                dst.fill(0);
                Err(to_py(py, e))
            }
        }
    }
}

/// Seals and opens whole messages whose header is fixed but for one key slot's wrapped
/// data key, `head || wrapped || tail`: a fresh data key per message, wrapped by a
/// [`KeyWrap`] under `wrap_aad`; the input key is derived from it (and the cluster part)
/// under `label`, and the body bound to `context`. Everything that decides the header is
/// the caller's; this only fills in the one slot.
#[pyclass(module = "envelope._native", frozen)]
pub(crate) struct FreshKeyMessages {
    wrap: Py<KeyWrap>,
    wrap_aad: Vec<u8>,
    head: Vec<u8>,
    tail: Vec<u8>,
    context: Vec<u8>,
    label: Vec<u8>,
    cluster_part: Option<Zeroizing<Vec<u8>>>,
}

impl FreshKeyMessages {
    fn input_key(&self, py: Python<'_>, data_key: &[u8]) -> PyResult<Zeroizing<[u8; 32]>> {
        let part = self.cluster_part.as_ref().map(|p| &p[..]);
        keywrap::input_key(data_key, part, &self.label).map_err(|e| to_py(py, e))
    }
}

#[pymethods]
impl FreshKeyMessages {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (wrap, wrap_aad, head, tail, context, label, cluster_part=None))]
    fn new(
        wrap: Py<KeyWrap>,
        wrap_aad: &[u8],
        head: &[u8],
        tail: &[u8],
        context: &[u8],
        label: &[u8],
        cluster_part: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let cluster_part = match cluster_part {
            Some(part) => Some(Zeroizing::new(ReadBuffer::get(part)?.as_slice().to_vec())),
            None => None,
        };
        Ok(Self {
            wrap,
            wrap_aad: wrap_aad.to_vec(),
            head: head.to_vec(),
            tail: tail.to_vec(),
            context: context.to_vec(),
            label: label.to_vec(),
            cluster_part,
        })
    }

    /// The header length of every message this seals.
    #[getter]
    fn header_len(&self) -> usize {
        self.head.len() + self.wrap.get().inner.wrapped_len() + self.tail.len()
    }

    /// A new message: the header with a freshly wrapped data key, then the
    /// Cobblestone-256 ciphertext of `message` under a fresh random salt.
    #[pyo3(signature = (message, threads=0))]
    fn seal<'py>(
        &self,
        py: Python<'py>,
        message: &Bound<'py, PyAny>,
        threads: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let message = ReadBuffer::get(message)?;
        let pt = message.as_slice();
        let len = cobblestone::sealed_len(pt.len()).map_err(|e| to_py(py, e))?;
        // One call to the OS for the data key, the wrap's nonce and the body's salt.
        let mut random = Zeroizing::new([0u8; DATA_KEY_LEN + NONCE_LEN + SALT_LEN]);
        getrandom::fill(&mut random[..]).map_err(random_error)?;
        let (data_key, rest) = random.split_at(DATA_KEY_LEN);
        let (nonce, salt) = rest.split_at(NONCE_LEN);
        let data_key: &[u8; DATA_KEY_LEN] = data_key
            .try_into()
            .map_err(|_| to_py(py, Error::Internal))?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| to_py(py, Error::Internal))?;

        let wrap = &self.wrap.get().inner;
        let mut header = vec![0u8; self.head.len() + wrap.wrapped_len() + self.tail.len()];
        let (head, rest) = header.split_at_mut(self.head.len());
        head.copy_from_slice(&self.head);
        let (slot, tail) = rest.split_at_mut(wrap.wrapped_len());
        tail.copy_from_slice(&self.tail);
        wrap.wrap_into(data_key, nonce, &self.wrap_aad, slot)
            .map_err(|e| to_py(py, e))?;

        let input_key = self.input_key(py, data_key)?;
        let ctx = &self.context[..];
        let sealed = fresh::new_bytes(py, &header, len, threads, |dst| {
            cobblestone::seal_into(&input_key[..], salt, ctx, pt, dst, threads)
        })?;
        SEALED.fetch_add(1, Ordering::Relaxed);
        Ok(sealed)
    }

    /// Opens `message` if its header is one this seals (any wrapped key): the plaintext,
    /// or None for another header (the caller's full path decides). `DecryptionError`
    /// if the key slot or the body does not authenticate.
    #[pyo3(signature = (message, threads=0))]
    fn open<'py>(
        &self,
        py: Python<'py>,
        message: &Bound<'py, PyAny>,
        threads: usize,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let message = ReadBuffer::get(message)?;
        let bytes = message.as_slice();
        let wrap = &self.wrap.get().inner;
        let slot_at = self.head.len();
        let tail_at = slot_at + wrap.wrapped_len();
        let body_at = tail_at + self.tail.len();
        if bytes.len() < body_at
            || !bytes.starts_with(&self.head)
            || bytes[tail_at..body_at] != self.tail[..]
        {
            return Ok(None);
        }
        let data_key = wrap
            .unwrap(&bytes[slot_at..tail_at], &self.wrap_aad)
            .map_err(|e| to_py(py, e))?;
        OPENED.fetch_add(1, Ordering::Relaxed); // the unwrap succeeded, as a KMS call counts
        let input_key = self.input_key(py, &data_key[..])?;
        let body = &bytes[body_at..];
        let len = cobblestone::opened_len(body.len()).map_err(|e| to_py(py, e))?;
        let ctx = &self.context[..];
        fresh::new_bytes(py, b"", len, threads, |dst| {
            cobblestone::open_into(&input_key[..], body, ctx, dst, threads)
        })
        .map(Some)
    }
}
