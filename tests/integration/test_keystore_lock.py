"""The file key store's write lock survives its holder being SIGKILLed (issue 12, item 7)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from envelope import Envelope, LocalKms
from envelope.keystore import FileKeyStore

# A real process takes the lock FileKeyStore.replace takes, says so, and waits to be killed.
HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from envelope.keystore import FileKeyStore

    store = FileKeyStore(sys.argv[1])
    with store._lock(Path(sys.argv[2])):
        print("locked", flush=True)
        time.sleep(600)
    """
)


def test_rewrap_after_the_lock_holder_was_killed(tmp_path: Path) -> None:
    kms = LocalKms.create(tmp_path / "keyring.json")
    store = FileKeyStore(tmp_path / "keys")
    env = Envelope(kms, keystore=store)
    version = env.store_new_key("svc/dek", {"service": "a"})
    message = env.encrypt(b"secret", {"service": "a"}, key_ref="svc/dek")
    kms.rotate()
    version_file = tmp_path / "keys" / "svc" / "dek" / f"v{version:08d}"

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "keys"), str(version_file)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"locked\n"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=30)  # reaps it and closes its stdout pipe
    assert holder.returncode == -signal.SIGKILL

    # A fresh store and Envelope, as a later `envelope keystore rewrap` run would have.
    later = Envelope(LocalKms.open(tmp_path / "keyring.json"), keystore=FileKeyStore(store.uri[7:]))
    assert later.rewrap_stored_key("svc/dek", version) == version
    assert later.decrypt(message, {"service": "a"}) == b"secret"
    assert FileKeyStore(tmp_path / "keys").versions("svc/dek") == [version]


def test_the_lock_excludes_a_live_holder(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path / "keys")
    store.create("svc/dek", b"blob")
    version_file = tmp_path / "keys" / "svc" / "dek" / "v00000001"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "keys"), str(version_file)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"locked\n"
        from envelope.keystore import VersionConflict

        try:
            with store._lock(version_file, timeout=0.2):
                raise AssertionError("took a lock another process holds")
        except VersionConflict as exc:
            assert "locked by another writer" in str(exc)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=30)  # reaps it and closes its stdout pipe
