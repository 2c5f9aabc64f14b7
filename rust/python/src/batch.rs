//! Record batches for Python: one call seals or opens a whole batch with the GIL released.
//!
//! Records arrive either as a list of bytes-like objects, or as one buffer plus an int64
//! or int32 offsets array (Arrow's large_binary and binary layouts). Outputs keep the
//! shape: a list of `bytes`, or `(data: bytes, offsets: bytes)` holding native offsets
//! from 0: int64, or int32 for int32 input offsets when the output fits (else int64:
//! the caller tells them apart by length).

use std::mem::MaybeUninit;

use envelope_kernel::batch::{self, BatchKeys, Contiguous, Records, Slices};
use envelope_kernel::Error;
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::buffers::{ReadBuffer, ReadI64Buffer, ReadOffsetBuffer};
use crate::errors::{to_py, Invalid};
use crate::fresh::{Uninit, DETACH_MIN};

/// Keeps each list item's bytes alive and readable while the GIL is released.
enum Held<'py> {
    Bytes(Bound<'py, PyBytes>),
    Buffer(PyBuffer<u8>),
}

impl Held<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Held::Bytes(b) => b.as_bytes(),
            Held::Buffer(b) => {
                let len = b.len_bytes();
                if len == 0 {
                    return &[];
                }
                // SAFETY: as in `ReadBuffer::as_slice`: a C-contiguous u8 buffer of `len`
                // bytes, pinned by the export held in `b` (checked when it was created).
                unsafe { std::slice::from_raw_parts(b.buf_ptr() as *const u8, len) }
            }
        }
    }
}

/// The shape of a batch's output: the input's.
#[derive(Clone, Copy)]
enum Shape {
    /// A list of bytes.
    List,
    /// `(data, offsets)` with int64 offsets.
    Wide,
    /// `(data, offsets)` with int32 offsets where the output fits, else int64.
    Narrow,
}

/// Records as given by Python, holding whatever keeps their memory valid.
enum Input<'py> {
    List(Vec<Held<'py>>),
    Contiguous(ReadBuffer, ReadI64Buffer),
    /// int32 offsets (Arrow's binary): the outputs get int32 offsets too where they fit.
    Narrow(ReadBuffer, ReadOffsetBuffer<i32>),
}

impl<'py> Input<'py> {
    fn get(records: &Bound<'py, PyAny>, offsets: Option<&Bound<'py, PyAny>>) -> PyResult<Self> {
        if let Some(offsets) = offsets {
            let data = ReadBuffer::get(records)?;
            return Ok(match ReadI64Buffer::get(offsets) {
                Ok(wide) => Input::Contiguous(data, wide),
                Err(e) => match ReadOffsetBuffer::<i32>::get(offsets) {
                    Ok(narrow) => Input::Narrow(data, narrow),
                    Err(_) => return Err(e),
                },
            });
        }
        let list = records
            .cast::<PyList>()
            .map_err(|_| Invalid::RecordsNotList)?;
        let mut held = Vec::with_capacity(list.len());
        for item in list.iter() {
            match item.cast_into::<PyBytes>() {
                Ok(b) => held.push(Held::Bytes(b)),
                Err(e) => {
                    let other = e.into_inner();
                    let buf =
                        PyBuffer::<u8>::get(&other).map_err(|_| Invalid::RecordNotBytesLike)?;
                    if !buf.is_c_contiguous() {
                        return Err(Invalid::RecordNotContiguous.into());
                    }
                    held.push(Held::Buffer(buf));
                }
            }
        }
        Ok(Input::List(held))
    }

    fn shape(&self) -> Shape {
        match self {
            Input::List(_) => Shape::List,
            Input::Contiguous(..) => Shape::Wide,
            Input::Narrow(..) => Shape::Narrow,
        }
    }

    /// The kernel's view of these records.
    fn view(&self) -> Result<View<'_>, Error> {
        Ok(match self {
            Input::List(held) => {
                View::Slices(Slices::new(held.iter().map(Held::as_slice).collect()))
            }
            Input::Contiguous(data, offsets) => {
                View::Contiguous(Contiguous::new(data.as_slice(), offsets.as_slice())?)
            }
            Input::Narrow(data, offsets) => {
                View::Narrow(Contiguous::new(data.as_slice(), offsets.as_slice())?)
            }
        })
    }
}

enum View<'a> {
    Slices(Slices<'a>),
    Contiguous(Contiguous<'a>),
    Narrow(Contiguous<'a, i32>),
}

impl View<'_> {
    fn records(&self) -> &dyn Records {
        match self {
            View::Slices(s) => s,
            View::Contiguous(c) => c,
            View::Narrow(c) => c,
        }
    }
}

/// The output offsets of a `(data, offsets)` batch: a `bytes` handed back as is.
fn new_offsets<'py>(
    py: Python<'py>,
    count: usize,
    total: usize,
    shape: Shape,
) -> PyResult<Uninit<'py>> {
    let width = batch::offsets_width(total, matches!(shape, Shape::Narrow));
    Uninit::new(py, (count + 1) * width)
}

/// `(data, offsets)` from two written outputs.
///
/// # Safety
/// Every byte of both must have been written.
unsafe fn pair<'py>(
    py: Python<'py>,
    data: Uninit<'py>,
    offsets: Uninit<'py>,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: the caller guarantees both were written.
    let (data, offsets) = unsafe { (data.assume_init(), offsets.assume_init()) };
    Ok(PyTuple::new(py, [data.into_any(), offsets.into_any()])?.into_any())
}

/// One new `bytes` per record (a list's output), written in place by the kernel.
struct Items<'py>(Vec<Uninit<'py>>);

impl<'py> Items<'py> {
    fn new(py: Python<'py>, count: usize, size: impl Fn(usize) -> usize) -> PyResult<Self> {
        (0..count)
            .map(|i| Uninit::new(py, size(i)))
            .collect::<PyResult<_>>()
            .map(Self)
    }

    fn outs(&mut self) -> Vec<&mut [MaybeUninit<u8>]> {
        self.0.iter_mut().map(Uninit::as_uninit).collect()
    }

    /// The list of finished items.
    ///
    /// # Safety
    /// Every byte of every item must have been written.
    unsafe fn into_list(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        // SAFETY: the caller guarantees every item was written.
        let items = self.0.into_iter().map(|u| unsafe { u.assume_init() });
        Ok(PyList::new(py, items)?.into_any())
    }
}

/// Runs `f` with the GIL released if the batch is large enough to be worth it.
fn maybe_detach<T: Send>(py: Python<'_>, bytes: usize, f: impl FnOnce() -> T + Send) -> T {
    if bytes >= DETACH_MIN {
        py.detach(f)
    } else {
        f()
    }
}

/// Takes the records (and AAD) from Python and hands the kernel's views of them to `f`,
/// with whether the records came as a list (the output keeps that shape).
fn with_views<'py, R>(
    py: Python<'py>,
    records: &Bound<'py, PyAny>,
    offsets: Option<&Bound<'py, PyAny>>,
    aad: Option<&Bound<'py, PyAny>>,
    aad_offsets: Option<&Bound<'py, PyAny>>,
    f: impl FnOnce(&dyn Records, Option<&dyn Records>, Shape) -> PyResult<R>,
) -> PyResult<R> {
    let input = Input::get(records, offsets)?;
    let aad_input = aad.map(|a| Input::get(a, aad_offsets)).transpose()?;
    let view = input.view().map_err(|e| to_py(py, e))?;
    let aad_view = aad_input
        .as_ref()
        .map(Input::view)
        .transpose()
        .map_err(|e| to_py(py, e))?;
    f(
        view.records(),
        aad_view.as_ref().map(View::records),
        input.shape(),
    )
}

/// The key and base nonce of one record batch.
#[pyclass(module = "envelope._native", frozen)]
pub(crate) struct BatchCipher {
    keys: BatchKeys,
}

#[pymethods]
impl BatchCipher {
    /// Derives a new batch's keys; returns `(cipher, commitment)`.
    #[staticmethod]
    fn derive<'py>(
        py: Python<'py>,
        input_key: &[u8],
        salt: &[u8],
        context: &[u8],
    ) -> PyResult<(Self, Bound<'py, PyBytes>)> {
        let (keys, commitment) =
            BatchKeys::derive(input_key, salt, context).map_err(|e| to_py(py, e))?;
        Ok((Self { keys }, PyBytes::new(py, &commitment)))
    }

    /// Derives an existing batch's keys; `DecryptionError` unless the commitment matches.
    #[staticmethod]
    fn verify(
        py: Python<'_>,
        input_key: &[u8],
        salt: &[u8],
        commitment: &[u8],
        context: &[u8],
    ) -> PyResult<Self> {
        let keys = BatchKeys::derive_and_verify(input_key, salt, commitment, context)
            .map_err(|e| to_py(py, e))?;
        Ok(Self { keys })
    }

    /// Seals a batch; record `i` gets index `i`.
    #[pyo3(signature = (records, offsets=None, aad=None, aad_offsets=None, threads=0))]
    fn seal<'py>(
        &self,
        py: Python<'py>,
        records: &Bound<'py, PyAny>,
        offsets: Option<&Bound<'py, PyAny>>,
        aad: Option<&Bound<'py, PyAny>>,
        aad_offsets: Option<&Bound<'py, PyAny>>,
        threads: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        with_views(
            py,
            records,
            offsets,
            aad,
            aad_offsets,
            |recs, aad, shape| {
                let total = batch::sealed_len(recs).map_err(|e| to_py(py, e))?;
                let keys = &self.keys;
                if let Shape::List = shape {
                    let mut items = Items::new(py, recs.count(), |i| {
                        recs.get(i).len() + batch::RECORD_OVERHEAD
                    })?;
                    let mut outs = items.outs();
                    maybe_detach(py, total, || {
                        batch::seal_each(keys, recs, aad, &mut outs, threads)
                    })
                    .map_err(|e| to_py(py, e))?;
                    drop(outs);
                    // SAFETY: seal_each succeeded, so it wrote every byte of every item.
                    return unsafe { items.into_list(py) };
                }
                let mut data = Uninit::new(py, total)?;
                let mut offsets = new_offsets(py, recs.count(), total, shape)?;
                let (out, offs) = (data.as_uninit(), offsets.as_uninit());
                maybe_detach(py, total, || {
                    batch::seal_batch(keys, recs, aad, out, offs, threads)
                })
                .map_err(|e| to_py(py, e))?;
                // SAFETY: seal_batch succeeded, so it wrote every byte of both outputs.
                unsafe { pair(py, data, offsets) }
            },
        )
    }

    /// Opens a batch; returns `(records, status, failed)` where `status[i]` is 1 for a
    /// record that did not authenticate at position `i` (its output is empty or zeros).
    #[pyo3(signature = (records, offsets=None, aad=None, aad_offsets=None, threads=0))]
    fn open<'py>(
        &self,
        py: Python<'py>,
        records: &Bound<'py, PyAny>,
        offsets: Option<&Bound<'py, PyAny>>,
        aad: Option<&Bound<'py, PyAny>>,
        aad_offsets: Option<&Bound<'py, PyAny>>,
        threads: usize,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyBytes>, usize)> {
        with_views(
            py,
            records,
            offsets,
            aad,
            aad_offsets,
            |recs, aad, shape| {
                let total = batch::opened_len(recs);
                let keys = &self.keys;
                let mut status = Uninit::new(py, recs.count())?;
                if let Shape::List = shape {
                    let mut items = Items::new(py, recs.count(), |i| {
                        recs.get(i).len().saturating_sub(batch::RECORD_OVERHEAD)
                    })?;
                    let (mut outs, st) = (items.outs(), status.as_uninit());
                    let failed = maybe_detach(py, total, || {
                        batch::open_each(keys, recs, aad, &mut outs, st, threads)
                    })
                    .map_err(|e| to_py(py, e))?;
                    drop(outs);
                    // SAFETY: open_each succeeded, so it wrote every byte of every item
                    // and of the status.
                    let (records, status) = unsafe { (items.into_list(py)?, status.assume_init()) };
                    return Ok((records, status, failed));
                }
                let mut data = Uninit::new(py, total)?;
                let mut offsets = new_offsets(py, recs.count(), total, shape)?;
                let (out, offs, st) = (data.as_uninit(), offsets.as_uninit(), status.as_uninit());
                let failed = maybe_detach(py, total, || {
                    batch::open_batch(keys, recs, aad, out, offs, st, threads)
                })
                .map_err(|e| to_py(py, e))?;
                // SAFETY: open_batch succeeded, so it wrote every byte of the three outputs.
                let (records, status) = unsafe { (pair(py, data, offsets)?, status.assume_init()) };
                Ok((records, status, failed))
            },
        )
    }

    /// Opens one record alone; returns `(index, plaintext)`.
    #[pyo3(signature = (record, aad=b"".as_slice()), text_signature = "($self, record, aad=b'')")]
    fn open_record<'py>(
        &self,
        py: Python<'py>,
        record: &[u8],
        aad: &[u8],
    ) -> PyResult<(u32, Bound<'py, PyBytes>)> {
        let len = record.len().saturating_sub(batch::RECORD_OVERHEAD);
        let mut index = 0u32;
        let out = PyBytes::new_with(py, len, |out| {
            index = self
                .keys
                .open_record(record, aad, out)
                .map_err(|e| to_py(py, e))?;
            Ok(())
        })?;
        Ok((index, out))
    }
}
