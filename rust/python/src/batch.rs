//! Record batches for Python: one call seals or opens a whole batch with the GIL released.
//!
//! Records arrive either as a list of bytes-like objects, or as one buffer plus an int64
//! offsets array (the Arrow binary layout). Outputs keep the shape: a list of `bytes`, or
//! `(data: bytes, offsets: bytes)` holding native int64 offsets from 0.

use envelope_kernel::batch::{self, BatchKeys, Contiguous, Records, Slices};
use envelope_kernel::Error;
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::buffers::{ReadBuffer, ReadI64Buffer};
use crate::errors::{to_py, Invalid};
use crate::fresh;

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

/// Records as given by Python, holding whatever keeps their memory valid.
enum Input<'py> {
    List(Vec<Held<'py>>),
    Contiguous(ReadBuffer, ReadI64Buffer),
}

impl<'py> Input<'py> {
    fn get(records: &Bound<'py, PyAny>, offsets: Option<&Bound<'py, PyAny>>) -> PyResult<Self> {
        if let Some(offsets) = offsets {
            return Ok(Input::Contiguous(
                ReadBuffer::get(records)?,
                ReadI64Buffer::get(offsets)?,
            ));
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

    fn is_list(&self) -> bool {
        matches!(self, Input::List(_))
    }

    /// The kernel's view of these records.
    fn view(&self) -> Result<View<'_>, Error> {
        Ok(match self {
            Input::List(held) => View::Slices(Slices(held.iter().map(Held::as_slice).collect())),
            Input::Contiguous(data, offsets) => {
                View::Contiguous(Contiguous::new(data.as_slice(), offsets.as_slice())?)
            }
        })
    }
}

enum View<'a> {
    Slices(Slices<'a>),
    Contiguous(Contiguous<'a>),
}

impl View<'_> {
    fn records(&self) -> &dyn Records {
        match self {
            View::Slices(s) => s,
            View::Contiguous(c) => c,
        }
    }
}

fn offsets_bytes<'py>(py: Python<'py>, offsets: &[i64]) -> PyResult<Bound<'py, PyBytes>> {
    PyBytes::new_with(py, offsets.len() * 8, |b| {
        for (dst, v) in b.chunks_exact_mut(8).zip(offsets) {
            dst.copy_from_slice(&v.to_ne_bytes());
        }
        Ok(())
    })
}

/// Builds the output in the input's shape: a list of bytes, or (data, offsets).
fn shaped<'py>(
    py: Python<'py>,
    as_list: bool,
    data: Bound<'py, PyBytes>,
    offsets: &[i64],
) -> PyResult<Bound<'py, PyAny>> {
    if as_list {
        let bytes = data.as_bytes();
        let items = offsets
            .windows(2)
            .map(|w| PyBytes::new(py, &bytes[w[0] as usize..w[1] as usize]));
        return Ok(PyList::new(py, items)?.into_any());
    }
    Ok(PyTuple::new(
        py,
        [data.into_any(), offsets_bytes(py, offsets)?.into_any()],
    )?
    .into_any())
}

/// Takes the records (and AAD) from Python and hands the kernel's views of them to `f`,
/// with whether the records came as a list (the output keeps that shape).
fn with_views<'py, R>(
    py: Python<'py>,
    records: &Bound<'py, PyAny>,
    offsets: Option<&Bound<'py, PyAny>>,
    aad: Option<&Bound<'py, PyAny>>,
    aad_offsets: Option<&Bound<'py, PyAny>>,
    f: impl FnOnce(&dyn Records, Option<&dyn Records>, bool) -> PyResult<R>,
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
        input.is_list(),
    )
}

/// The output offsets of a batch and its total length, from `layout` (GIL released).
fn plan(
    py: Python<'_>,
    recs: &dyn Records,
    layout: fn(&dyn Records, &mut [i64]) -> Result<usize, Error>,
) -> PyResult<(Vec<i64>, usize)> {
    let mut offsets = vec![0i64; recs.count() + 1];
    let total = py
        .detach(|| layout(recs, &mut offsets))
        .map_err(|e| to_py(py, e))?;
    Ok((offsets, total))
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
            |recs, aad, is_list| {
                let (layout, total) = plan(py, recs, batch::sealed_offsets)?;
                let keys = &self.keys;
                let data = fresh::new_bytes(py, b"", total, threads, |out| {
                    batch::seal_batch(keys, recs, aad, out, &layout, threads)
                })?;
                shaped(py, is_list, data, &layout)
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
            |recs, aad, is_list| {
                let (layout, total) = plan(py, recs, batch::opened_offsets)?;
                let mut status = vec![0u8; recs.count()];
                let mut failed = 0usize;
                let keys = &self.keys;
                let (status_out, failed_out) = (&mut status, &mut failed);
                let data = fresh::new_bytes(py, b"", total, threads, |out| {
                    *failed_out =
                        batch::open_batch(keys, recs, aad, out, &layout, status_out, threads)?;
                    Ok(())
                })?;
                let shaped_out = shaped(py, is_list, data, &layout)?;
                Ok((shaped_out, PyBytes::new(py, &status), failed))
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
