//! New `bytes` objects filled by the kernel without a single-threaded zeroing pass.

use std::mem::MaybeUninit;
use std::ptr::NonNull;

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

/// Outputs this large ask the OS for transparent huge pages: a 2 MiB page faults once
/// where 512 small ones would fault one by one.
const HUGE_MIN: usize = 4 << 20;

/// A new `bytes` object whose every byte the caller writes (no zeroing pass at all):
/// the kernel's batch functions write each output byte exactly once, and the pages
/// are first touched by whichever worker writes them.
pub(crate) struct Uninit<'py> {
    obj: Bound<'py, PyAny>,
    data: NonNull<MaybeUninit<u8>>,
    len: usize,
}

impl<'py> Uninit<'py> {
    pub(crate) fn new(py: Python<'py>, len: usize) -> PyResult<Self> {
        if len > isize::MAX as usize {
            return Err(to_py(py, Error::MessageTooLong));
        }
        // SAFETY: as in `new_bytes`: a NULL source asks for an uninitialized bytes object
        // of `len` bytes; NULL (an exception is set) becomes the returned error.
        let obj = unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                ffi::PyBytes_FromStringAndSize(std::ptr::null(), len as ffi::Py_ssize_t),
            )?
        };
        // SAFETY: `obj` is a bytes object, so PyBytes_AsString returns its (non-NULL)
        // data pointer, valid for `len` bytes while `obj` lives.
        let raw = unsafe { ffi::PyBytes_AsString(obj.as_ptr()) };
        let data = NonNull::new(raw.cast::<MaybeUninit<u8>>())
            .ok_or_else(|| to_py(py, Error::Internal))?;
        if len >= HUGE_MIN {
            advise_huge(raw.cast::<u8>(), len);
        }
        Ok(Self { obj, data, len })
    }

    /// The bytes to write (each exactly once, before [`Uninit::assume_init`]).
    pub(crate) fn as_uninit(&mut self) -> &mut [MaybeUninit<u8>] {
        // SAFETY: `data` is valid for `len` bytes while `self.obj` lives (see `new`), and
        // nothing else views the object's contents: it has not been shared yet.
        unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr(), self.len) }
    }

    /// The finished object.
    ///
    /// # Safety
    /// Every byte of [`Uninit::as_uninit`] must have been written.
    pub(crate) unsafe fn assume_init(self) -> Bound<'py, PyBytes> {
        // SAFETY: the object was created by PyBytes_FromStringAndSize, so it is bytes;
        // the caller guarantees its contents are initialized.
        unsafe { self.obj.cast_into_unchecked::<PyBytes>() }
    }
}

/// Marks the whole pages inside `[ptr, ptr + len)` for transparent huge pages (a hint:
/// failures, or a kernel without THP, change nothing but speed).
#[cfg(target_os = "linux")]
fn advise_huge(ptr: *mut u8, len: usize) {
    const PAGE: usize = 4096;
    let start = (ptr as usize).next_multiple_of(PAGE);
    let end = (ptr as usize + len) / PAGE * PAGE;
    if end > start {
        // SAFETY: the range lies inside the bytes object's own allocation (rounded inwards
        // to whole pages), which this process owns; MADV_HUGEPAGE changes no contents.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_ptr: *mut u8, _len: usize) {}
