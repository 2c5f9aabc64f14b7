//! Zero-copy views of Python buffer-protocol objects.

use pyo3::buffer::{Element, PyBuffer};
use pyo3::prelude::*;

use crate::errors::Invalid;

/// A C-contiguous byte buffer exported by a Python object (bytes, bytearray,
/// memoryview, numpy array, mmap, ...), held for as long as this value lives.
pub(crate) struct ReadBuffer {
    buf: PyBuffer<u8>,
}

impl ReadBuffer {
    pub(crate) fn get(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let buf = PyBuffer::<u8>::get(obj)?;
        if !buf.is_c_contiguous() {
            return Err(Invalid::BufferNotContiguous.into());
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
            return Err(Invalid::OutNotWritable.into());
        }
        if !buf.is_c_contiguous() {
            return Err(Invalid::OutNotContiguous.into());
        }
        Ok(Self { buf })
    }

    /// True if this buffer shares at least one byte of memory with `other`
    /// (an empty buffer or slice overlaps nothing).
    pub(crate) fn overlaps(&self, other: &[u8]) -> bool {
        ranges_overlap(
            (self.buf.buf_ptr() as usize, self.buf.len_bytes()),
            (other.as_ptr() as usize, other.len()),
        )
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

/// A C-contiguous, aligned buffer of native-endian int64 or int32 values (record
/// offsets: Arrow's large_binary and binary layouts).
pub(crate) struct ReadOffsetBuffer<T: Element> {
    buf: PyBuffer<T>,
}

/// The int64 offsets of a `(data, offsets)` batch or a large_binary array.
pub(crate) type ReadI64Buffer = ReadOffsetBuffer<i64>;

impl<T: Element> ReadOffsetBuffer<T> {
    pub(crate) fn get(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let buf = PyBuffer::<T>::get(obj).map_err(|_| Invalid::OffsetsNotInt64)?;
        if !buf.is_c_contiguous() {
            return Err(Invalid::OffsetsNotContiguous.into());
        }
        if (buf.buf_ptr() as usize) % std::mem::align_of::<T>() != 0 {
            return Err(Invalid::OffsetsMisaligned.into());
        }
        Ok(Self { buf })
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        let n = self.buf.item_count();
        if n == 0 {
            return &[];
        }
        // SAFETY: PyBuffer::<T>::get checked the item format and size; the buffer is
        // C-contiguous with `n` items and its pointer is aligned for T (checked in `get`);
        // the export pins the memory for as long as `self.buf` lives.
        unsafe { std::slice::from_raw_parts(self.buf.buf_ptr() as *const T, n) }
    }
}

/// True if the address ranges `(start, len)` share a byte; empty ranges share none.
fn ranges_overlap(a: (usize, usize), b: (usize, usize)) -> bool {
    let ((a0, an), (b0, bn)) = (a, b);
    an != 0 && bn != 0 && a0 < b0.saturating_add(bn) && b0 < a0.saturating_add(an)
}

#[cfg(test)]
mod tests {
    use super::ranges_overlap;

    #[test]
    fn overlapping_ranges() {
        assert!(ranges_overlap((0, 8), (7, 9)));
        assert!(ranges_overlap((2, 2), (0, 16)));
        assert!(ranges_overlap((0, 16), (2, 2)));
        assert!(!ranges_overlap((0, 8), (8, 8)));
        assert!(!ranges_overlap((8, 8), (0, 8)));
        assert!(!ranges_overlap((0, 0), (0, 16)));
        assert!(!ranges_overlap((4, 0), (0, 16)));
    }
}
