"""The contract every KMS backend passes, as a reusable base class.

A backend's test module subclasses :class:`KmsContract` and provides two fixtures:
``backend`` (a fresh KmsBackend) and ``rotate`` (a callable that makes the backend's
next wraps use a new KEK version). Backends that can disable their key also subclass
:class:`DisableContract` and provide ``disable``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from envelope.errors import DecryptionError, KmsError
from envelope.kms import KmsBackend
from envelope.kms._types import WrappedKey

CTX = (("purpose", "contract-test"), ("service", "billing"))
OTHER_CTX = (("purpose", "contract-test"), ("service", "payroll"))


class KmsContract:
    def test_is_a_kms_backend(self, backend: KmsBackend) -> None:
        assert isinstance(backend, KmsBackend)
        assert backend.provider_id.isascii() and backend.provider_id
        assert backend.key_id

    def test_generate_then_unwrap(self, backend: KmsBackend) -> None:
        dk = backend.generate_data_key(CTX)
        assert len(dk.plaintext) == 32
        assert dk.wrapped.provider == backend.provider_id
        assert dk.wrapped.key_id == backend.key_id
        assert bytes(dk.plaintext) not in dk.wrapped.blob
        assert backend.unwrap(dk.wrapped, CTX) == dk.plaintext

    def test_data_keys_are_fresh(self, backend: KmsBackend) -> None:
        keys = {bytes(backend.generate_data_key(CTX).plaintext) for _ in range(8)}
        assert len(keys) == 8

    def test_wrap_then_unwrap(self, backend: KmsBackend) -> None:
        key = bytes(range(32))
        wrapped = backend.wrap(key, CTX)
        assert backend.unwrap(wrapped, CTX) == key

    def test_context_mismatch_fails(self, backend: KmsBackend) -> None:
        dk = backend.generate_data_key(CTX)
        with pytest.raises(DecryptionError):
            backend.unwrap(dk.wrapped, OTHER_CTX)
        with pytest.raises(DecryptionError):
            backend.unwrap(dk.wrapped, ())

    def test_tampered_blob_fails(self, backend: KmsBackend) -> None:
        dk = backend.generate_data_key(CTX)
        blob = bytearray(dk.wrapped.blob)
        blob[len(blob) // 2] ^= 0x01
        with pytest.raises(DecryptionError):
            backend.unwrap(WrappedKey(dk.wrapped.provider, dk.wrapped.key_id, bytes(blob)), CTX)

    def test_wrong_key_id_fails(self, backend: KmsBackend) -> None:
        dk = backend.generate_data_key(CTX)
        wrong = WrappedKey(dk.wrapped.provider, dk.wrapped.key_id + "-other", dk.wrapped.blob)
        with pytest.raises(DecryptionError):
            backend.unwrap(wrong, CTX)

    def test_rewrap_after_rotation(self, backend: KmsBackend, rotate: Callable[[], None]) -> None:
        dk = backend.generate_data_key(CTX)
        rotate()
        fresh = backend.rewrap(dk.wrapped, CTX)
        assert fresh.blob != dk.wrapped.blob
        assert fresh.key_id == dk.wrapped.key_id
        assert backend.unwrap(fresh, CTX) == dk.plaintext
        # The old wrapping still unwraps until its KEK version is retired.
        assert backend.unwrap(dk.wrapped, CTX) == dk.plaintext
        # New wraps use the new version: rewrapping again is stable in what it unwraps to.
        assert backend.unwrap(backend.rewrap(fresh, CTX), CTX) == dk.plaintext

    def test_rewrap_checks_context(self, backend: KmsBackend) -> None:
        dk = backend.generate_data_key(CTX)
        with pytest.raises(DecryptionError):
            backend.rewrap(dk.wrapped, OTHER_CTX)

    def test_health(self, backend: KmsBackend) -> None:
        backend.health()

    def test_repr_hides_key_material(self, backend: KmsBackend) -> None:
        dk = backend.generate_data_key(CTX)
        text = repr(dk) + repr(backend) + str(dk.wrapped)
        assert bytes(dk.plaintext).hex() not in text
        assert repr(bytes(dk.plaintext)) not in text


class DisableContract:
    def test_disabled_key_fails_with_kms_error(
        self, backend: KmsBackend, disable: Callable[[], None]
    ) -> None:
        dk = backend.generate_data_key(CTX)
        disable()
        with pytest.raises(KmsError) as info:
            backend.unwrap(dk.wrapped, CTX)
        assert backend.key_id in str(info.value)
        with pytest.raises(KmsError):
            backend.generate_data_key(CTX)
