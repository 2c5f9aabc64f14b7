//! New `bytes` objects filled by the kernel without a single-threaded zeroing pass.

use std::mem::MaybeUninit;

use envelope_kernel::{zero_fill, Error};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::to_py;

/// Below this many bytes the work runs without releasing the GIL.
pub(crate) const DETACH_MIN: usize = 64 * 1024;

/// Creates a `bytes` of `prefix.len() + body_len` bytes, copies `prefix` to its
/// start and lets `fill` write the body with the GIL released. The memory is
/// first touched by `threads` workers in parallel.
pub(crate) fn new_bytes<'py>(
    py: Python<'py>,
    prefix: &[u8],
    body_len: usize,
    threads: usize,
    fill: impl FnOnce(&mut [u8]) -> Result<(), Error> + Send,
) -> PyResult<Bound<'py, PyBytes>> {
    let total = prefix
        .len()
        .checked_add(body_len)
        .filter(|&n| n <= isize::MAX as usize)
        .ok_or_else(|| to_py(py, Error::MessageTooLong))?;
    // SAFETY: a NULL source asks CPython for an uninitialized bytes object of `total`
    // bytes (plus its trailing NUL); a NULL result means an exception is set, which
    // `from_owned_ptr_or_err` turns into the returned error.
    let obj = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyBytes_FromStringAndSize(std::ptr::null(), total as ffi::Py_ssize_t),
        )?
    };
    // SAFETY: `obj` is a bytes object we own and have not shared; its data pointer is
    // valid for `total` bytes for as long as `obj` lives, which outlives this slice.
    // Viewing it as `MaybeUninit<u8>` makes no claim that it is initialized.
    let uninit: &mut [MaybeUninit<u8>] = unsafe {
        std::slice::from_raw_parts_mut(
            ffi::PyBytes_AsString(obj.as_ptr()).cast::<MaybeUninit<u8>>(),
            total,
        )
    };
    let run = || {
        zero_fill(uninit, threads);
        // SAFETY: `zero_fill` wrote every element of `uninit`, so all `total` bytes are
        // initialized u8 values; the `MaybeUninit` view is not used again.
        let buf: &mut [u8] =
            unsafe { std::slice::from_raw_parts_mut(uninit.as_mut_ptr().cast::<u8>(), total) };
        let (head, body) = buf.split_at_mut(prefix.len());
        head.copy_from_slice(prefix);
        fill(body)
    };
    // Releasing and retaking the GIL costs more than sealing a small message.
    if total >= DETACH_MIN {
        py.detach(run)
    } else {
        run()
    }
    .map_err(|e| to_py(py, e))?;
    // SAFETY: `obj` was created by PyBytes_FromStringAndSize above, so it is a bytes object.
    Ok(unsafe { obj.cast_into_unchecked::<PyBytes>() })
}
