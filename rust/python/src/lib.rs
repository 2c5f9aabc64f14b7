//! `envelope._native`: the PyO3 face of `envelope-kernel`.
//!
//! Only argument conversion, GIL release and error mapping live here; every
//! byte of cryptography happens in the kernel crate. Authentication failures
//! raise `envelope.errors.DecryptionError`; argument errors raise `ValueError`.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod batch;
mod buffers;
mod errors;
mod fresh;
mod keywrap;
mod message;
mod streams;

use envelope_kernel::{aead, cobblestone};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buffers::{ReadBuffer, WriteBuffer};
use crate::errors::{random_error, to_py, Invalid};

/// AES-256-GCM encryption (96-bit nonce); returns `ciphertext || tag`. Hazmat, for vectors.
#[pyfunction]
fn aes256gcm_seal<'py>(
    py: Python<'py>,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let out = aead::seal(key, nonce, aad, plaintext).map_err(|e| to_py(py, e))?;
    Ok(PyBytes::new(py, &out))
}

/// AES-256-GCM decryption of `ciphertext || tag`. Hazmat, for vectors.
#[pyfunction]
fn aes256gcm_open<'py>(
    py: Python<'py>,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let out = aead::open(key, nonce, aad, sealed).map_err(|e| to_py(py, e))?;
    Ok(PyBytes::new(py, &out))
}

/// HKDF-SHA512 with no salt of `ikm` under `info`, written into the writable buffer
/// `out` (its length is the output length): the input-key derivation, with the key
/// only ever in buffers the caller can wipe.
#[pyfunction]
fn hkdf_sha512_into(
    py: Python<'_>,
    ikm: &Bound<'_, PyAny>,
    info: &[u8],
    out: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let ikm = ReadBuffer::get(ikm)?;
    let mut out = WriteBuffer::get(out)?;
    if out.overlaps(ikm.as_slice()) {
        return Err(Invalid::OutOverlapsInput.into());
    }
    envelope_kernel::hkdf_sha512(ikm.as_slice(), info, out.as_mut_slice()).map_err(|e| to_py(py, e))
}

/// Ciphertext length of a Cobblestone-256 message of `plaintext_len` bytes.
#[pyfunction]
fn cobblestone_sealed_len(py: Python<'_>, plaintext_len: usize) -> PyResult<usize> {
    cobblestone::sealed_len(plaintext_len).map_err(|e| to_py(py, e))
}

/// Plaintext length of a Cobblestone-256 ciphertext; `DecryptionError` if the length is invalid.
#[pyfunction]
fn cobblestone_opened_len(py: Python<'_>, sealed_len: usize) -> PyResult<usize> {
    cobblestone::opened_len(sealed_len).map_err(|e| to_py(py, e))
}

/// Seals `message` (any contiguous buffer) under the 24-byte `salt`, or under a fresh
/// random salt from the OS (getrandom) when `salt` is None. Returns new `bytes`
/// holding `prefix` followed by the ciphertext, or writes the ciphertext into the
/// writable buffer `out` (exactly `cobblestone_sealed_len` bytes) and returns `None`.
#[pyfunction]
// Mirrors the Python signature: keyword arguments, not a parameter object.
#[allow(clippy::too_many_arguments)]
#[pyo3(
    signature = (input_key, salt, context, message, threads=0, out=None, prefix=b"".as_slice()),
    text_signature = "(input_key, salt, context, message, threads=0, out=None, prefix=b'')"
)]
fn cobblestone_seal<'py>(
    py: Python<'py>,
    input_key: &[u8],
    salt: Option<&[u8]>,
    context: &[u8],
    message: &Bound<'py, PyAny>,
    threads: usize,
    out: Option<&Bound<'py, PyAny>>,
    prefix: &[u8],
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let mut fresh_salt = [0u8; cobblestone::SALT_LEN];
    let salt = match salt {
        Some(salt) => salt,
        None => {
            getrandom::fill(&mut fresh_salt).map_err(random_error)?;
            &fresh_salt[..]
        }
    };
    let message = ReadBuffer::get(message)?;
    let pt = message.as_slice();
    let run = |dst: &mut [u8]| cobblestone::seal_into(input_key, salt, context, pt, dst, threads);
    let len = || cobblestone::sealed_len(pt.len());
    write_out(py, out, pt, prefix, len, threads, run)
}

/// Opens a Cobblestone-256 ciphertext (any contiguous buffer). Returns new `bytes`,
/// or writes into `out` (exactly `cobblestone_opened_len` bytes) and returns `None`.
/// On failure `out` is zeroed and `DecryptionError` is raised.
#[pyfunction]
#[pyo3(signature = (input_key, ciphertext, context, threads=0, out=None))]
fn cobblestone_open<'py>(
    py: Python<'py>,
    input_key: &[u8],
    ciphertext: &Bound<'py, PyAny>,
    context: &[u8],
    threads: usize,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let ciphertext = ReadBuffer::get(ciphertext)?;
    let ct = ciphertext.as_slice();
    let run = |dst: &mut [u8]| cobblestone::open_into(input_key, ct, context, dst, threads);
    let len = || cobblestone::opened_len(ct.len());
    write_out(py, out, ct, b"", len, threads, run)
}

/// Runs `fill` with the GIL released, into the caller's writable `out` (returning
/// `None`), or into a new `bytes` of `prefix` + `len()` bytes. An `out` that shares
/// memory with the input `src` is refused before anything is written.
fn write_out<'py>(
    py: Python<'py>,
    out: Option<&Bound<'py, PyAny>>,
    src: &[u8],
    prefix: &[u8],
    len: impl FnOnce() -> Result<usize, envelope_kernel::Error>,
    threads: usize,
    fill: impl Fn(&mut [u8]) -> Result<(), envelope_kernel::Error> + Send + Sync,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    match out {
        Some(out) => {
            let mut out = WriteBuffer::get(out)?;
            // Checked on addresses before any `&mut` view exists: an overlapping `out`
            // would alias the input the kernel reads (and zero it on failure).
            if out.overlaps(src) {
                return Err(Invalid::OutOverlapsInput.into());
            }
            let dst = out.as_mut_slice();
            if dst.len() >= fresh::DETACH_MIN {
                py.detach(|| fill(dst))
            } else {
                fill(dst)
            }
            .map_err(|e| to_py(py, e))?;
            Ok(None)
        }
        None => {
            let len = len().map_err(|e| to_py(py, e))?;
            fresh::new_bytes(py, prefix, len, threads, fill).map(Some)
        }
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("CHUNK_LEN", cobblestone::CHUNK_LEN)?;
    m.add("SEALED_CHUNK_LEN", cobblestone::SEALED_CHUNK_LEN)?;
    m.add("PREFIX_LEN", cobblestone::PREFIX_LEN)?;
    m.add("SALT_LEN", cobblestone::SALT_LEN)?;
    m.add("TAG_LEN", aead::TAG_LEN)?;
    m.add_function(wrap_pyfunction!(aes256gcm_seal, m)?)?;
    m.add_function(wrap_pyfunction!(aes256gcm_open, m)?)?;
    m.add_function(wrap_pyfunction!(hkdf_sha512_into, m)?)?;
    m.add_function(wrap_pyfunction!(cobblestone_sealed_len, m)?)?;
    m.add_function(wrap_pyfunction!(cobblestone_opened_len, m)?)?;
    m.add_function(wrap_pyfunction!(cobblestone_seal, m)?)?;
    m.add_function(wrap_pyfunction!(cobblestone_open, m)?)?;
    m.add("RECORD_OVERHEAD", envelope_kernel::batch::RECORD_OVERHEAD)?;
    m.add("MAX_BATCH_RECORDS", envelope_kernel::batch::MAX_RECORDS)?;
    m.add_class::<batch::BatchCipher>()?;
    m.add_function(wrap_pyfunction!(keywrap::fresh_key_counts, m)?)?;
    m.add_class::<keywrap::KeyWrap>()?;
    m.add_class::<keywrap::FreshKeyMessages>()?;
    m.add_class::<message::MessageSealer>()?;
    m.add_class::<message::MessageOpener>()?;
    m.add_class::<streams::StreamSealer>()?;
    m.add_class::<streams::StreamOpener>()?;
    Ok(())
}
