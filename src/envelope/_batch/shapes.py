"""The record shapes a batch accepts (see :mod:`envelope._batch`), normalized for the
kernel as one buffer and int64 offsets, and restored to the input's shape afterwards."""

from __future__ import annotations

import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "Shaped",
    "arrow_type",
    "concat",
    "count",
    "failures",
    "int64_offsets",
    "payload_bytes",
    "restore",
    "restore_type",
    "shape_of",
    "slice_records",
]


@dataclass(slots=True)
class Shaped:
    """Records normalized for the kernel, with what is needed to restore their shape."""

    kind: Literal["list", "buffer", "arrow", "numpy"]
    count: int
    records: Any
    offsets: Any = None
    arrow_large: bool = False
    validity: Any = None
    width: int = 0
    chunked: bool = False


def _module(obj: object) -> str:
    return type(obj).__module__.split(".")[0]


def int64_offsets(offsets: Any) -> Any:
    if isinstance(offsets, (list, tuple)):
        return array.array("q", offsets)
    view = memoryview(offsets)
    if view.itemsize == 8 and view.format in ("q", "l", "<q", "=q", "@q"):
        return offsets
    if view.itemsize == 4 and view.format in ("i", "l", "<i", "=i", "@i"):
        return array.array("q", view.cast("B").cast("i"))
    raise TypeError("offsets must be int64 or int32 values")


def shape_of(records: Any, what: str) -> Shaped:
    if isinstance(records, list):
        return Shaped("list", len(records), records)
    if isinstance(records, tuple):
        if len(records) != 2:
            raise TypeError(f"{what} given as a tuple must be (data, offsets)")
        data, offsets = records
        offsets = int64_offsets(offsets)
        n = len(memoryview(offsets)) - 1
        if n < 0:
            raise ValueError(f"{what} offsets must have at least one entry")
        return Shaped("buffer", n, data, offsets)
    if _module(records) == "pyarrow":
        return _arrow_shape(records, what)
    if _module(records) == "numpy":
        if records.ndim != 2 or records.dtype.name != "uint8":
            raise TypeError(
                f"a numpy {what} array must be 2-D uint8 (one fixed-width row per record)"
            )
        import numpy as np  # noqa: PLC0415 - optional dependency, present if numpy input is

        rows = np.ascontiguousarray(records)
        n, width = rows.shape
        offsets = (
            np.arange(0, (n + 1) * width, width, dtype=np.int64)
            if width
            else np.zeros(n + 1, np.int64)
        )
        return Shaped("numpy", n, rows, offsets, width=width)
    raise TypeError(
        f"{what} must be a list of bytes-like objects, a (data, offsets) tuple, a pyarrow "
        "string or binary array (or chunked array) or a 2-D numpy uint8 array"
    )


def _as_binary(arr: Any, what: str) -> Any:
    """``arr`` as a binary or large_binary array over the same bytes (views are copied)."""
    import pyarrow as pa  # noqa: PLC0415 - optional dependency

    typ = arr.type
    if typ in (pa.binary(), pa.large_binary()):
        return arr
    if typ == pa.string():
        return arr.view(pa.binary())
    if typ == pa.large_string():
        return arr.view(pa.large_binary())
    if typ in (pa.string_view(), pa.binary_view()):
        return arr.cast(pa.large_binary())
    raise TypeError(
        f"a pyarrow {what} array must be string, large_string, binary, large_binary, "
        f"string_view or binary_view, not {typ}"
    )


def arrow_type(records: Any) -> Any:
    """The Arrow type of ``records`` if it is a pyarrow array (None otherwise)."""
    return records.type if _module(records) == "pyarrow" else None


def restore_type(arr: Any, typ: Any) -> Any:
    """A binary/large_binary array (or chunked array) of decrypted values as ``typ``, the
    type the plaintext had (string types are views over the same bytes: the values
    authenticated, so they are the UTF-8 that was encrypted)."""
    import pyarrow as pa  # noqa: PLC0415 - optional dependency

    if isinstance(arr, pa.ChunkedArray):
        return pa.chunked_array([restore_type(c, typ) for c in arr.chunks], typ)
    if typ is None or arr.type == typ:
        return arr
    if typ == pa.string():
        return arr.cast(pa.binary()).view(pa.string())
    if typ == pa.large_string():
        return arr.cast(pa.large_binary()).view(pa.large_string())
    return arr.cast(typ)


def _arrow_shape(arr: Any, what: str) -> Shaped:
    import pyarrow as pa  # noqa: PLC0415 - optional dependency
    import pyarrow.compute as pc  # noqa: PLC0415

    chunked = isinstance(arr, pa.ChunkedArray)
    if chunked:
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], arr.type)
    arr = _as_binary(arr, what)
    n = len(arr)
    large = arr.type == pa.large_binary()
    _, offsets_buf, data_buf = arr.buffers()
    if data_buf is None:
        data_buf = pa.py_buffer(b"")
    # The kernel reads int32 (binary) and int64 (large_binary) offsets in place.
    width = 8 if large else 4
    offsets = memoryview(offsets_buf).cast("B")[arr.offset * width : (arr.offset + n + 1) * width]
    validity = pc.is_valid(arr).buffers()[1] if arr.null_count else None
    # Arrow exports its buffers as signed bytes: view them as what they hold.
    data = memoryview(data_buf).cast("B")
    return Shaped(
        "arrow",
        n,
        data,
        offsets.cast("q" if large else "i"),
        arrow_large=large,
        validity=validity,
        chunked=chunked,
    )


def payload_bytes(shape: Shaped) -> int | None:
    """Plaintext bytes of a batch, for the cache's byte limit (None if unknown)."""
    if shape.kind == "list":
        return sum(memoryview(r).nbytes for r in shape.records)
    try:
        return memoryview(shape.records).nbytes
    except TypeError:
        return None


def restore(shape: Shaped, out: Any, width_delta: int, failed: Sequence[int] = ()) -> Any:
    if shape.kind == "list":
        if failed:
            out = list(out)
            for i in failed:
                out[i] = None
        return out
    data, offsets = out
    if shape.kind == "buffer":
        return data, memoryview(offsets).cast("q")
    if shape.kind == "numpy":
        import numpy as np  # noqa: PLC0415

        return np.frombuffer(data, dtype=np.uint8).reshape(shape.count, shape.width + width_delta)
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    validity = shape.validity
    if failed:
        bad = pa.array([True] * shape.count)
        mask = [True] * shape.count
        for i in failed:
            mask[i] = False
        bad = pa.array(mask)
        if validity is not None:
            current = pa.Array.from_buffers(pa.bool_(), shape.count, [None, validity])
            bad = pc.and_(bad, current)
        validity = bad.buffers()[1]
    # int32 offsets came back as int32 unless the output passed 2 GiB (then int64).
    narrow = len(offsets) == 4 * (shape.count + 1)
    typ = pa.binary() if narrow else pa.large_binary()
    arr = pa.Array.from_buffers(
        typ, shape.count, [validity, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    return pa.chunked_array([arr]) if shape.chunked else arr


def slice_records(records: Any, start: int, stop: int) -> Any:
    """Records start..stop of any accepted shape (for inputs beyond one batch)."""
    if isinstance(records, list):
        return records[start:stop]
    if isinstance(records, tuple):
        data, offsets = records
        return data, memoryview(int64_offsets(offsets)).cast("B").cast("q")[start : stop + 1]
    if _module(records) == "pyarrow":
        return records.slice(start, stop - start)
    return records[start:stop]


def concat(parts: list[Any]) -> Any:
    first = parts[0]
    if len(parts) == 1:
        return first
    if isinstance(first, list):
        return [r for p in parts for r in p]
    if isinstance(first, tuple):
        data = b"".join(bytes(p[0]) for p in parts)
        offsets = array.array("q", [0])
        base = 0
        for p_data, p_offsets in parts:
            offsets.extend(base + o for o in list(p_offsets)[1:])
            base += len(p_data)
        return data, memoryview(offsets)
    if _module(first) == "pyarrow":
        import pyarrow as pa  # noqa: PLC0415

        if isinstance(first, pa.ChunkedArray):
            return pa.chunked_array([c for p in parts for c in p.chunks], first.type)
        return pa.concat_arrays(parts)
    import numpy as np  # noqa: PLC0415

    return np.concatenate(parts)


def count(records: Any) -> int:
    return shape_of(records, "records").count


def failures(shape: Shaped, status: bytes) -> list[int]:
    """Positions whose record failed to open, null Arrow slots aside: a null's bytes are
    not kept by every writer (Parquet drops them), and nullness is never authenticated."""
    if shape.kind != "arrow" or shape.validity is None:
        return [i for i, s in enumerate(status) if s]
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    valid = pa.Array.from_buffers(pa.bool_(), shape.count, [None, shape.validity])
    failed = pc.not_equal(pa.array(memoryview(status).cast("B"), pa.uint8()), 0)
    return pc.indices_nonzero(pc.and_(failed, valid)).to_pylist()  # type: ignore[no-any-return]
