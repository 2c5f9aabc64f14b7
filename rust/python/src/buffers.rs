//! Zero-copy views of Python buffer-protocol objects.

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// A C-contiguous byte buffer exported by a Python object (bytes, bytearray,
/// memoryview, numpy array, mmap, ...), held for as long as this value lives.
pub(crate) struct ReadBuffer {
    buf: PyBuffer<u8>,
}

impl ReadBuffer {
    pub(crate) fn get(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let buf = PyBuffer::<u8>::get(obj)?;
        if !buf.is_c_contiguous() {
            return Err(PyValueError::new_err("buffer must be C-contiguous"));
        }
        Ok(Self { buf })
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        let len = self.buf.len_bytes();
        if len == 0 {
            return &[];
        }
        // SAFETY: the buffer is C-contiguous with `len` bytes of u8 (checked in `get`), and
        // the export pins the memory until `self.buf` is released, which outlives this
        // borrow. Exporters such as bytearray refuse to resize while exported. A Python
        // thread mutating the bytes concurrently can only change what we read, as with
        // any C extension reading a buffer.
        unsafe { std::slice::from_raw_parts(self.buf.buf_ptr() as *const u8, len) }
    }
}

/// A writable C-contiguous byte buffer exported by a Python object.
pub(crate) struct WriteBuffer {
    buf: PyBuffer<u8>,
}

impl WriteBuffer {
    pub(crate) fn get(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let buf = PyBuffer::<u8>::get(obj)?;
        if buf.readonly() {
            return Err(PyValueError::new_err("out must be a writable buffer"));
        }
        if !buf.is_c_contiguous() {
            return Err(PyValueError::new_err("out must be C-contiguous"));
        }
        Ok(Self { buf })
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        let len = self.buf.len_bytes();
        if len == 0 {
            return &mut [];
        }
        // SAFETY: as in `ReadBuffer::as_slice`, and the exporter declared the buffer
        // writable. `&mut self` makes this the only Rust view of it.
        unsafe { std::slice::from_raw_parts_mut(self.buf.buf_ptr() as *mut u8, len) }
    }
}
