"""Issue 12 item 5: the binding refuses overlapping buffers and holds exports while detached."""

from __future__ import annotations

import os
import threading

import pytest

from envelope import chunked
from envelope.errors import DecryptionError

KEY = bytes(range(32))
CTX = b"ctx"


def _sealed(n: int) -> bytes:
    return chunked.encrypt(KEY, os.urandom(n), CTX)


def test_decrypt_into_refuses_an_out_overlapping_the_ciphertext() -> None:
    ct = _sealed(5000)
    n = chunked.plaintext_length(len(ct))
    buf = bytearray(ct)
    view = memoryview(buf)
    for start in (0, 1, len(ct) - n):  # out at the start, inside, at the end of the input
        with pytest.raises(ValueError, match="overlap"):
            chunked.decrypt_into(KEY, view, CTX, view[start : start + n])
        assert bytes(buf) == ct  # the caller's ciphertext is untouched


def test_encrypt_into_refuses_an_out_overlapping_the_message() -> None:
    message = bytearray(os.urandom(3000))
    copy = bytes(message)
    n = chunked.sealed_length(len(message))
    big = bytearray(n + len(message))
    big[: len(message)] = message
    view = memoryview(big)
    with pytest.raises(ValueError, match="overlap"):
        chunked.encrypt_into(KEY, view[: len(message)], CTX, view[len(message) - 1 :][:n])
    assert bytes(big[: len(message)]) == copy
    with pytest.raises(ValueError, match="overlap"):
        chunked.encrypt_into(KEY, view[: len(message)], CTX, view[:n])  # same start
    assert bytes(big[: len(message)]) == copy


def test_adjacent_disjoint_views_of_one_buffer_are_accepted() -> None:
    message = os.urandom(3000)
    n = chunked.sealed_length(len(message))
    big = bytearray(len(message) + n)
    big[: len(message)] = message
    view = memoryview(big)
    chunked.encrypt_into(KEY, view[: len(message)], CTX, view[len(message) :])
    ct = bytes(view[len(message) :])
    assert chunked.decrypt(KEY, ct, CTX) == message
    out = bytearray(len(message))
    chunked.decrypt_into(KEY, ct, CTX, out)
    assert bytes(out) == message


def test_empty_out_inside_the_input_is_not_an_overlap() -> None:
    ct = _sealed(0)
    buf = bytearray(ct)
    chunked.decrypt_into(KEY, buf, CTX, memoryview(buf)[3:3])


def _resize_while(busy: threading.Event, target: bytearray, errors: list[BaseException]) -> None:
    while not busy.is_set():
        try:
            target.extend(b"x" * 4096)
            del target[-4096:]
        except BufferError:
            pass  # exported: the binding holds it
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            return


@pytest.mark.parametrize("kind", ["decrypt", "decrypt_into", "encrypt", "stream"])
def test_a_thread_resizing_the_input_cannot_free_it_under_the_kernel(kind: str) -> None:
    message = os.urandom(8 << 20)
    ct = chunked.encrypt(KEY, message, CTX)
    source = bytearray(message if kind == "encrypt" else ct)
    done, errors = threading.Event(), []
    resizer = threading.Thread(target=_resize_while, args=(done, source, errors))
    resizer.start()
    try:
        for _ in range(5):
            try:
                if kind == "decrypt":
                    assert chunked.decrypt(KEY, source, CTX) == message
                elif kind == "decrypt_into":
                    out = bytearray(len(message))
                    chunked.decrypt_into(KEY, source, CTX, out)
                    assert out == message
                elif kind == "encrypt":
                    got = chunked.decrypt(KEY, chunked.encrypt(KEY, source, CTX), CTX)
                    assert got[: len(message)] == message  # plus the resizer's x's, if any
                    assert got[len(message) :] == b"x" * (len(got) - len(message))
                else:
                    d = chunked.Decryptor(KEY, CTX)
                    assert d.update(source) + d.finalize() == message
            except BufferError:
                pass  # the export could not be taken while the other thread held a view
            except (DecryptionError, ValueError):
                pass  # taken between the resizer's extend and delete: a longer input
    finally:
        done.set()
        resizer.join()
    assert errors == []
