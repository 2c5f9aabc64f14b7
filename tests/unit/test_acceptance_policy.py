"""The receiver's configuration decides what it accepts, never the message (issue 18).

Split downgrade (item 1), a cache shared between tenants (item 2), wiped cluster parts
(item 8), the context on decrypt (item 9), and what ``inspect --verify`` says about a
missing or wrong cluster part (issue 12, item 9).
"""

from __future__ import annotations

import logging
import unicodedata
from pathlib import Path

import pytest

from envelope import (
    ClusterSecret,
    ConfigError,
    DataKeyCache,
    DecryptionError,
    Envelope,
    KmsError,
    LocalKms,
)
from envelope._exitcodes import ExitCode
from envelope.keystore import FileKeyStore
from tests.unit.test_multi_kms import Recording

CTX = {"service": "billing"}


# -- item 1: split downgrade -------------------------------------------------------------


def test_kms_only_forgery_is_refused_by_a_split_envelope() -> None:
    kms, cluster = LocalKms.ephemeral(), ClusterSecret.generate()
    forged = Envelope(kms).encrypt(b"DB_HOST=evil", CTX)  # KMS access alone, no cluster part
    with pytest.raises(DecryptionError, match="records no cluster-secret split"):
        Envelope(kms, cluster).decrypt(forged, CTX)
    genuine = Envelope(kms, cluster).encrypt(b"DB_HOST=db", CTX)
    assert Envelope(kms, cluster).decrypt(genuine, CTX) == b"DB_HOST=db"


def test_accept_unsplit_is_an_explicit_logged_opt_in(caplog: pytest.LogCaptureFixture) -> None:
    kms, cluster = LocalKms.ephemeral(), ClusterSecret.generate()
    old = Envelope(kms).encrypt(b"legacy", CTX)
    env = Envelope(kms, cluster, accept_unsplit=True)
    with caplog.at_level(logging.WARNING, logger="envelope"):
        assert env.decrypt(old, CTX) == b"legacy"
    assert any("unsplit" in r.getMessage() for r in caplog.records)
    assert all(r.name.startswith("envelope") for r in caplog.records)


def test_split_batches_and_stored_keys_are_refused_unsplit(tmp_path: Path) -> None:
    kms, cluster = LocalKms.ephemeral(), ClusterSecret.generate()
    store = FileKeyStore(tmp_path / "keys")
    plain = Envelope(kms, keystore=store)
    split = Envelope(kms, cluster, keystore=store)
    batch = plain.encrypt_batch([b"a", b"b"], context=CTX)
    with pytest.raises(DecryptionError, match="cluster-secret split"):
        split.decrypt_batch(batch, context=CTX)
    with pytest.raises(DecryptionError, match="cluster-secret split"):
        split.batch_header(batch.header, context=CTX)
    plain.store_new_key("dek")
    by_ref = plain.encrypt(b"x", CTX, key_ref="dek")
    with pytest.raises(DecryptionError, match="cluster-secret split"):
        split.decrypt(by_ref, CTX)
    assert Envelope(kms, cluster, keystore=store, accept_unsplit=True).decrypt(by_ref, CTX) == b"x"


def test_threshold_envelope_refuses_any_of_and_other_policies() -> None:
    a, b, c = (Recording.make(n) for n in ("a", "b", "c"))
    env = Envelope([a, b, c], threshold=2)
    assert env.decrypt(env.encrypt(b"ok", CTX), CTX) == b"ok"
    one_custodian = Envelope(a).encrypt(b"evil", CTX)  # any-of, one custodian's key
    with pytest.raises(DecryptionError, match="2-of-3"):
        env.decrypt(one_custodian, CTX)
    one_of_one = Envelope([a], threshold=1).encrypt(b"evil", CTX)
    with pytest.raises(DecryptionError, match="2-of-3"):
        env.decrypt(one_of_one, CTX)
    foreign = Recording.make("theirs")
    mixed = Envelope([a, b, foreign], threshold=2).encrypt(b"evil", CTX)
    with pytest.raises(DecryptionError, match="custodian"):
        env.decrypt(mixed, CTX)


def test_cli_decrypt_with_cluster_secret_refuses_a_no_split_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envelope import cli

    monkeypatch.setenv("ENVELOPE_KEYRING", str(tmp_path / "keyring.json"))
    monkeypatch.delenv("ENVELOPE_CLUSTER_SECRET_FILE", raising=False)
    monkeypatch.delenv("ENVELOPE_KEYRING_PASSPHRASE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.run(["keyring", "init"]) == 0
    assert cli.run(["cluster-secret", "new", "--out", "cluster.key"]) == 0
    Path("secret.txt").write_bytes(b"DB_HOST=evil\n")
    assert cli.run(["encrypt", "secret.txt", "-o", "m.env", "--no-split", "-c", "a=b"]) == 0
    base = ["decrypt", "m.env", "-o", "out.txt", "--cluster-secret", "cluster.key", "-c", "a=b"]
    assert cli.run(base) == ExitCode.DECRYPT
    assert not Path("out.txt").exists()
    assert cli.run([*base, "--accept-unsplit"]) == 0
    assert Path("out.txt").read_bytes() == b"DB_HOST=evil\n"


# -- item 2: a cache shared between tenants ------------------------------------------------


class Tenant(Recording):
    """One KMS key reached with one tenant's credentials: ``denied`` is its key policy."""

    denied = False

    def _check(self, op: str) -> None:
        super()._check(op)
        if self.denied:
            raise KmsError(f"{self.name}: access denied")


def _tenants() -> tuple[Tenant, Tenant]:
    base = LocalKms.ephemeral()
    a = Tenant(base.key_id, base._keys, base._created, path=None, passphrase=None, name="a")
    b = Tenant(base.key_id, base._keys, base._created, path=None, passphrase=None, name="b")
    b.denied = True
    return a, b


def test_shared_cache_does_not_serve_another_principal_on_decrypt() -> None:
    a, b = _tenants()
    cache = DataKeyCache()
    blob = Envelope(a).encrypt(b"tenant a", CTX)
    assert Envelope(a, cache=cache).decrypt(blob, CTX) == b"tenant a"
    with pytest.raises(KmsError, match="access denied"):
        Envelope(b, cache=cache).decrypt(blob, CTX)
    assert b.calls == ["unwrap"]  # tenant b's own credentials were asked


def test_shared_cache_does_not_serve_another_principal_on_encrypt() -> None:
    a, b = _tenants()
    cache = DataKeyCache()
    Envelope(a, cache=cache).encrypt(b"warm", CTX)
    with pytest.raises(KmsError, match="access denied"):
        Envelope(b, cache=cache).encrypt(b"in a's context", CTX)
    batch_cache = DataKeyCache()
    Envelope(a, cache=batch_cache).encrypt_batch([b"warm"], context=CTX)
    with pytest.raises(KmsError, match="access denied"):
        Envelope(b, cache=batch_cache).encrypt_batch([b"x"], context=CTX)


def test_one_backend_shared_by_two_envelopes_still_shares_the_cache() -> None:
    a = Recording.make("a")
    cache = DataKeyCache()
    blob = Envelope(a).encrypt(b"x", CTX)
    a.calls.clear()
    Envelope(a, cache=cache).decrypt(blob, CTX)
    Envelope(a, cache=cache).decrypt(blob, CTX)
    assert a.calls == ["unwrap"]


# -- item 8: wiped parts -------------------------------------------------------------------


def test_a_wiped_cluster_secret_raises_on_any_use() -> None:
    kms, cluster = LocalKms.ephemeral(), ClusterSecret.generate()
    env = Envelope(kms, cluster)
    blob = env.encrypt(b"x", CTX)
    cluster.wipe()
    with pytest.raises(ConfigError, match="wiped"):
        env.encrypt(b"y", CTX)
    with pytest.raises(ConfigError, match="wiped"):
        env.decrypt(blob, CTX)
    with pytest.raises(ConfigError, match="wiped"):
        env.encrypt_batch([b"y"], context=CTX)
    with pytest.raises(ConfigError, match="wiped"):
        _ = cluster.current.material
    assert cluster.ids[0].startswith("cs-")  # the public id stays readable


@pytest.mark.parametrize("cached", [True, False], ids=["cache", "one-call-path"])
def test_a_wiped_cluster_secret_is_not_used_by_what_holds_a_copy(cached: bool) -> None:
    # A cache holds the input key; the uncached local-keyring path holds the part.
    kms, cluster = LocalKms.ephemeral(), ClusterSecret.generate()
    env = Envelope(kms, cluster, cache=DataKeyCache() if cached else None)
    blob = env.encrypt(b"x", CTX)
    assert env.decrypt(blob, CTX) == b"x"  # prefix and input key (or template) now held
    cluster.wipe()
    with pytest.raises(ConfigError, match="wiped"):
        env.encrypt(b"y", CTX)
    with pytest.raises(ConfigError, match="wiped"):
        env.decrypt(blob, CTX)


# -- item 9: the context on decrypt --------------------------------------------------------


def test_decrypt_without_a_context_accepts_only_an_empty_one() -> None:
    env = Envelope(LocalKms.ephemeral())
    blob = env.encrypt(b"x", CTX)
    with pytest.raises(DecryptionError):
        env.decrypt(blob)
    assert env.decrypt(blob, any_context=True) == b"x"
    assert env.decrypt(blob, CTX) == b"x"
    assert env.decrypt(env.encrypt(b"none")) == b"none"
    batch = env.encrypt_batch([b"r"], context=CTX)
    with pytest.raises(DecryptionError):
        env.decrypt_batch(batch)
    assert env.decrypt_batch(batch, any_context=True) == [b"r"]
    with pytest.raises(DecryptionError):
        env.batch_header(batch.header)
    with pytest.raises(ValueError, match="any_context"):
        env.decrypt(blob, CTX, any_context=True)


def test_decrypt_without_a_context_caches_nothing_that_skips_the_check() -> None:
    env = Envelope(LocalKms.ephemeral(), cache=DataKeyCache())
    blob = env.encrypt(b"x", CTX)
    assert env.decrypt(blob, CTX) == b"x"  # now cached
    with pytest.raises(DecryptionError):
        env.decrypt(blob)


def test_file_and_stream_decrypt_need_the_context(tmp_path: Path) -> None:
    env = Envelope(LocalKms.ephemeral())
    (tmp_path / "p").write_bytes(b"data")
    env.encrypt_file(tmp_path / "p", tmp_path / "m", CTX)
    with pytest.raises(DecryptionError):
        env.decrypt_file(tmp_path / "m", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    env.decrypt_file(tmp_path / "m", tmp_path / "out", any_context=True)
    assert (tmp_path / "out").read_bytes() == b"data"


def test_contexts_are_not_unicode_normalised() -> None:
    env = Envelope(LocalKms.ephemeral())
    nfc = unicodedata.normalize("NFC", "café")
    nfd = unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    blob = env.encrypt(b"x", {"who": nfc})
    with pytest.raises(DecryptionError):
        env.decrypt(blob, {"who": nfd})
    assert env.decrypt(blob, {"who": nfc}) == b"x"


def test_cli_decrypt_without_context_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from envelope import cli

    monkeypatch.setenv("ENVELOPE_KEYRING", str(tmp_path / "keyring.json"))
    monkeypatch.delenv("ENVELOPE_CLUSTER_SECRET_FILE", raising=False)
    monkeypatch.delenv("ENVELOPE_KEYRING_PASSPHRASE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.run(["keyring", "init"]) == 0
    Path("p").write_bytes(b"v")
    assert cli.run(["encrypt", "p", "-o", "m", "--no-split", "-c", "service=billing"]) == 0
    assert cli.run(["decrypt", "m", "-o", "out"]) == ExitCode.DECRYPT
    assert cli.run(["decrypt", "m", "-o", "out", "--any-context"]) == 0
    assert Path("out").read_bytes() == b"v"


def test_init_config_context_is_required_or_inherited() -> None:
    from envelope.k8s._config import parse_config

    base = "kms: {kind: local}\nsecrets:\n  - name: db\n    source: {file: db.env}\n"
    with pytest.raises(ConfigError, match="context"):
        parse_config(base)
    inherited = parse_config("context: {service: billing}\n" + base)
    assert inherited.secrets[0].context == {"service": "billing"}
    own = parse_config(base + "    context: {}\n")
    assert own.secrets[0].context == {} and not own.accept_unsplit
    assert parse_config("accept_unsplit: true\ncontext: {}\n" + base).accept_unsplit


# -- issue 12, item 9: inspect --verify names the missing or wrong cluster part --------------


def test_verify_names_a_missing_or_wrong_cluster_part() -> None:
    kms, cluster = LocalKms.ephemeral(), ClusterSecret.generate()
    blob = Envelope(kms, cluster).encrypt(b"x", CTX)
    [(_, _, missing)] = Envelope(kms).verify_key_slots(blob)
    assert missing is not None and "damaged" not in missing
    assert cluster.current.id in missing and "no cluster secret is configured" in missing
    other = ClusterSecret.generate()
    [(_, _, wrong)] = Envelope(kms, other).verify_key_slots(blob)
    assert wrong is not None and "damaged" not in wrong
    assert cluster.current.id in wrong and other.current.id in wrong
    assert Envelope(kms, cluster).verify_key_slots(blob) == [("local", kms.key_id, None)]


def test_cli_verify_without_cluster_secret_says_which_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from envelope import cli

    keyring = tmp_path / "k.json"
    kms, cluster = LocalKms.create(keyring), ClusterSecret.generate()
    monkeypatch.delenv("ENVELOPE_CLUSTER_SECRET_FILE", raising=False)
    path = tmp_path / "m.env"
    path.write_bytes(Envelope(kms, cluster).encrypt(b"y", CTX))
    assert cli.run(["inspect", str(path), "--verify", "--keyring", str(keyring)]) != 0
    out = capsys.readouterr().out
    assert cluster.current.id in out and "damaged" not in out


def test_cli_reencrypt_migrates_unsplit_messages_with_the_opt_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envelope import cli, inspect

    monkeypatch.setenv("ENVELOPE_KEYRING", str(tmp_path / "k.json"))
    monkeypatch.delenv("ENVELOPE_CLUSTER_SECRET_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.run(["keyring", "init"]) == 0
    assert cli.run(["cluster-secret", "new", "--out", "new.part"]) == 0
    kms, new = LocalKms.open(tmp_path / "k.json"), ClusterSecret.from_file("new.part")
    Path("s").mkdir()
    Path("s/a.env").write_bytes(Envelope(kms).encrypt(b"legacy", CTX))
    assert cli.run(["reencrypt", "s", "--cluster-secret", "new.part"]) != 0
    assert cli.run(["reencrypt", "s", "--cluster-secret", "new.part", "--accept-unsplit"]) == 0
    blob = Path("s/a.env").read_bytes()
    assert inspect(blob).cluster_secret_id == new.current.id
    assert Envelope(kms, new).decrypt(blob, CTX) == b"legacy"
