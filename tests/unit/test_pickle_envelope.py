"""A pickled Envelope carries references to its configuration, never key bytes."""

from __future__ import annotations

import base64
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from envelope import ClusterSecret, DataKeyCache, DecryptionError, Envelope, LocalKms
from envelope.settings import Settings


def _secret_file(path: Path) -> ClusterSecret:
    part = ClusterSecret.generate()
    path.write_bytes(bytes(part.current.material))
    path.chmod(0o600)
    return part


def _key_bytes(kms: LocalKms) -> list[bytes]:
    return [bytes(k) for k in kms._keys.values()]


def _assert_no_secrets(blob: bytes, secrets: list[bytes]) -> None:
    for s in secrets:
        assert len(s) == 32
        for form in (s, s.hex().encode(), s.hex().upper().encode()):
            assert form not in blob
        assert base64.b64encode(s) not in blob


def test_round_trip_from_objects_carries_only_paths(tmp_path: Path) -> None:
    LocalKms.create(tmp_path / "keyring.json")
    part = _secret_file(tmp_path / "part")
    kms = LocalKms.open(tmp_path / "keyring.json")
    env = Envelope(kms, ClusterSecret.from_file(tmp_path / "part"))
    blob = pickle.dumps(env)
    _assert_no_secrets(blob, [*_key_bytes(kms), bytes(part.current.material)])
    assert str(tmp_path / "keyring.json").encode() in blob
    assert str(tmp_path / "part").encode() in blob
    again = pickle.loads(blob)
    assert again.decrypt(env.encrypt(b"to the worker")) == b"to the worker"
    assert env.decrypt(again.encrypt(b"and back")) == b"and back"


def test_round_trip_from_settings_with_relative_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    LocalKms.create(tmp_path / "keyring.json", passphrase="correct horse")
    (tmp_path / "pass").write_text("correct horse\n")
    _secret_file(tmp_path / "part")
    settings = Settings.model_validate(
        {
            "kms": {"kind": "local", "keyring": "keyring.json", "passphrase_file": "pass"},
            "cluster_secret": {"file": "part"},
        }
    )
    env = Envelope.from_settings(settings, threads=1)
    blob = pickle.dumps(env)
    assert b"correct horse" not in blob
    message = env.encrypt(b"x")
    monkeypatch.chdir("/")  # a worker elsewhere: the pickle holds absolute paths
    assert pickle.loads(blob).decrypt(message) == b"x"


def test_env_references_are_pickled_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    part = ClusterSecret.generate()
    monkeypatch.setenv("SVC_PART", bytes(part.current.material).hex())
    monkeypatch.setenv("ENVELOPE_KEYRING_PASSPHRASE", "from the environment")
    LocalKms.create(tmp_path / "kr.json", passphrase="from the environment")
    settings = Settings.model_validate(
        {"kms": {"keyring": str(tmp_path / "kr.json")}, "cluster_secret": {"env": "SVC_PART"}}
    )
    env = Envelope.from_settings(settings, threads=1)
    blob = pickle.dumps(env)
    assert b"SVC_PART" in blob
    _assert_no_secrets(blob, [bytes(part.current.material)])
    assert b"from the environment" not in blob
    assert pickle.loads(blob).decrypt(env.encrypt(b"y")) == b"y"


def test_unpickled_cache_is_empty_with_the_same_limits(tmp_path: Path) -> None:
    LocalKms.create(tmp_path / "kr.json")
    cache = DataKeyCache(max_age=60, max_messages=7, max_bytes=1 << 20, max_entries=3)
    env = Envelope(LocalKms.open(tmp_path / "kr.json"), cache=cache)
    env.encrypt(b"fills the cache")
    assert len(cache) == 1
    again = pickle.loads(pickle.dumps(env))
    assert again.cache is not None and again.cache is not cache
    assert len(again.cache) == 0
    assert (again.cache.max_age, again.cache.max_messages, again.cache.max_entries) == (60, 7, 3)


def test_pickles_in_one_process_and_decrypts_in_another(tmp_path: Path) -> None:
    LocalKms.create(tmp_path / "kr.json")
    env = Envelope(LocalKms.open(tmp_path / "kr.json"))
    (tmp_path / "env.pickle").write_bytes(pickle.dumps(env))
    (tmp_path / "msg").write_bytes(env.encrypt(b"cross-process"))
    code = (
        "import pickle, sys; env = pickle.load(open(sys.argv[1], 'rb')); "
        "sys.stdout.write(env.decrypt(open(sys.argv[2], 'rb').read()).decode())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "env.pickle"), str(tmp_path / "msg")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == "cross-process"


@pytest.mark.parametrize(
    "make",
    [
        lambda p: Envelope(LocalKms.ephemeral()),
        lambda p: Envelope(LocalKms.open(p / "kr.json"), ClusterSecret.from_bytes(os.urandom(32))),
        lambda p: Envelope(LocalKms.open(p / "kr.json"), ClusterSecret.generate()),
        lambda p: Envelope(LocalKms.open(p / "locked.json", passphrase="a string")),
    ],
    ids=["ephemeral-keyring", "from-bytes", "generated-part", "passphrase-string"],
)
def test_raw_key_material_refuses_to_pickle(
    tmp_path: Path, make: Callable[[Path], Envelope]
) -> None:
    LocalKms.create(tmp_path / "kr.json")
    LocalKms.create(tmp_path / "locked.json", passphrase="a string")
    env = make(tmp_path)
    with pytest.raises(pickle.PicklingError, match="never key bytes") as info:
        pickle.dumps(env)
    assert "Envelope.from_settings" in str(info.value)


def test_the_acceptance_policy_survives_pickling(tmp_path: Path) -> None:
    LocalKms.create(tmp_path / "keyring.json")
    _secret_file(tmp_path / "part")
    kms = LocalKms.open(tmp_path / "keyring.json")
    unsplit = Envelope(kms).encrypt(b"made without the part")
    strict = pickle.loads(pickle.dumps(Envelope(kms, ClusterSecret.from_file(tmp_path / "part"))))
    with pytest.raises(DecryptionError):
        strict.decrypt(unsplit)  # a worker is no laxer than the driver
    migrating = Envelope(kms, ClusterSecret.from_file(tmp_path / "part"), accept_unsplit=True)
    assert pickle.loads(pickle.dumps(migrating)).decrypt(unsplit) == b"made without the part"
