"""Several KMS backends at once (any-of) and the trust policy."""

from __future__ import annotations

from typing import Any

import pytest

from envelope import DecryptionError, Envelope, KeyUnavailableError, KmsError, LocalKms
from envelope._exitcodes import ExitCode
from envelope._format.context import Context
from envelope._format.message import parse_header
from envelope.kms._types import DataKey, WrappedKey


class Recording(LocalKms):
    """A local keyring that records calls and can be switched off like an unreachable KMS."""

    def __init__(self, *args: Any, name: str = "kms", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.name = name
        self.calls: list[str] = []
        self.down = False

    @classmethod
    def make(cls, name: str) -> Recording:
        base = LocalKms.ephemeral()
        return cls(base.key_id, base._keys, base._created, path=None, passphrase=None, name=name)

    def _check(self, op: str) -> None:
        self.calls.append(op)
        if self.down:
            raise KmsError(f"{self.name} ({self.key_id}) is unreachable")

    def generate_data_key(self, context: Context) -> DataKey:
        self._check("generate")
        return super().generate_data_key(context)

    def wrap(self, plaintext: bytes | bytearray, context: Context) -> WrappedKey:
        self._check("wrap")
        return super().wrap(plaintext, context)

    def unwrap(self, wrapped: WrappedKey, context: Context) -> bytearray:
        self._check("unwrap")
        return super().unwrap(wrapped, context)


def test_any_of_wraps_under_every_backend_and_survives_one_down() -> None:
    primary, dr_region, vault = Recording.make("eu"), Recording.make("us"), Recording.make("vault")
    env = Envelope([primary, dr_region, vault])
    blob = env.encrypt(b"disaster-proof", {"service": "a"})
    header, _ = parse_header(blob)
    assert [s.key_id for s in header.slots] == [primary.key_id, dr_region.key_id, vault.key_id]
    primary.down = True
    assert (
        Envelope([primary, dr_region, vault]).decrypt(blob, any_context=True) == b"disaster-proof"
    )
    # Another site that only has the DR key decrypts too.
    assert Envelope(dr_region).decrypt(blob, any_context=True) == b"disaster-proof"


def test_when_all_backends_fail_each_is_named() -> None:
    a, b = Recording.make("eu"), Recording.make("us")
    blob = Envelope([a, b]).encrypt(b"x")
    a.down = b.down = True
    with pytest.raises(KmsError) as info:
        Envelope([a, b]).decrypt(blob, any_context=True)
    text = str(info.value)
    assert f"local key {a.key_id}: eu ({a.key_id}) is unreachable" in text
    assert f"local key {b.key_id}: us ({b.key_id}) is unreachable" in text


def test_tampered_slots_stay_opaque() -> None:
    a, b = Recording.make("eu"), Recording.make("us")
    env = Envelope([a, b])
    blob = bytearray(env.encrypt(b"x"))
    header, offset = parse_header(bytes(blob))
    from envelope._format.message import Header, KeySlot, encode_header

    bad = tuple(
        KeySlot(s.provider, s.key_id, s.wrapped[:-1] + bytes([s.wrapped[-1] ^ 1]))
        for s in header.slots
    )
    forged = encode_header(Header(header.suite, header.context, header.split, bad)) + bytes(
        blob[offset:]
    )
    with pytest.raises(DecryptionError) as info:
        env.decrypt(forged, any_context=True)
    assert type(info.value) is DecryptionError


def test_untrusted_key_fails_before_any_kms_call() -> None:
    theirs, ours = Recording.make("theirs"), Recording.make("ours")
    blob = Envelope(theirs).encrypt(b"x")
    ours.calls.clear()
    with pytest.raises(KeyUnavailableError) as info:
        Envelope(ours).decrypt(blob, any_context=True)
    assert theirs.key_id in str(info.value)
    assert ours.calls == []


def test_verify_key_slots_finds_a_damaged_spare_slot(tmp_path: Any) -> None:
    from envelope import cli

    primary, spare = Recording.make("eu"), Recording.make("dr")
    env = Envelope([primary, spare])
    blob = env.encrypt(b"x")
    assert [p for _, _, p in env.verify_key_slots(blob)] == [None, None]
    header, offset = parse_header(blob)
    from envelope._format.message import Header, KeySlot, encode_header

    s = header.slots[1]
    damaged_slot = KeySlot(s.provider, s.key_id, s.wrapped[:-1] + bytes([s.wrapped[-1] ^ 1]))
    damaged = (
        encode_header(
            Header(header.suite, header.context, header.split, (header.slots[0], damaged_slot))
        )
        + blob[offset:]
    )
    assert env.decrypt(damaged, any_context=True) == b"x"  # the primary slot still opens it...
    checks = env.verify_key_slots(damaged)
    assert checks[0][2] is None and checks[1][1] == spare.key_id
    assert checks[1][2] is not None and "damaged" in checks[1][2]  # ...but verify sees the spare
    spare.down = True
    assert "unreachable" in (env.verify_key_slots(blob)[1][2] or "")

    keyring = tmp_path / "k.json"
    local = LocalKms.create(keyring)
    path = tmp_path / "m.env"
    path.write_bytes(Envelope(local).encrypt(b"y"))
    assert cli.run(["inspect", str(path), "--verify", "--keyring", str(keyring)]) == 0
    other = tmp_path / "other.json"
    LocalKms.create(other)
    assert cli.run(["inspect", str(path), "--verify", "--keyring", str(other)]) == ExitCode.CONFIG
