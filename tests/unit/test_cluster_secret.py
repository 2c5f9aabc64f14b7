from __future__ import annotations

import base64
from pathlib import Path

import pytest

from envelope._keys.cluster import ClusterSecret, ClusterSecretPart
from envelope.errors import ConfigError, KeyUnavailableError

PART = bytes(range(32))


@pytest.mark.parametrize("encoded", [PART, PART.hex().encode() + b"\n", base64.b64encode(PART)])
def test_accepted_encodings(tmp_path: Path, encoded: bytes) -> None:
    f = tmp_path / "part"
    f.write_bytes(encoded)
    cs = ClusterSecret.from_file(f)
    assert cs.current.material == PART


def test_id_is_stable_printable_and_reveals_no_bytes() -> None:
    a, b = ClusterSecretPart(PART), ClusterSecretPart(PART)
    assert a.id == b.id and a.id.startswith("cs-") and len(a.id) == 19
    assert PART.hex() not in repr(a) + repr(ClusterSecret(a))
    assert ClusterSecretPart(bytes(32)).id != a.id


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="envelope cluster-secret new"):
        ClusterSecret.from_file(tmp_path / "absent")


@pytest.mark.parametrize("bad", [b"", b"short", b"x" * 31, b"z" * 64])
def test_wrong_size_is_refused(tmp_path: Path, bad: bytes) -> None:
    f = tmp_path / "part"
    f.write_bytes(bad)
    with pytest.raises(ConfigError, match="32 bytes"):
        ClusterSecret.from_file(f)


def test_env_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVELOPE_CLUSTER_SECRET", PART.hex())
    assert ClusterSecret.from_env().current.material == PART
    monkeypatch.delenv("ENVELOPE_CLUSTER_SECRET")
    with pytest.raises(ConfigError, match="ENVELOPE_CLUSTER_SECRET"):
        ClusterSecret.from_env()


def test_rotation_set_finds_parts_by_id(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(PART)
    new.write_bytes(bytes(32))
    cs = ClusterSecret.from_file(new, previous=[old])
    assert cs.current.material == bytes(32)
    old_id = ClusterSecretPart(PART).id
    assert cs.part(old_id).material == PART
    assert cs.ids == (ClusterSecretPart(bytes(32)).id, old_id)
    with pytest.raises(KeyUnavailableError, match="cs-0000"):
        cs.part("cs-0000")


def test_duplicate_parts_are_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        ClusterSecret.from_bytes(PART, PART)


def test_wipe_zeroes() -> None:
    cs = ClusterSecret.from_bytes(PART)
    part = cs.current.material
    cs.wipe()
    assert part == bytes(32)
