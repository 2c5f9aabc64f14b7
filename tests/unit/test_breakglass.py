"""Break-glass recovery without servers: what `envelope inspect` shows for every kind of
key slot (text and --json, quoting of odd context values), `envelope keyring unwrap`,
and `envelope decrypt --data-key` (right key, wrong key, split and k-of-n messages)."""

from __future__ import annotations

import base64
import json
import pickle
import shlex
import stat
import sys
from pathlib import Path

import pytest

from envelope import ClusterSecret, Envelope, LocalKms, cli
from envelope._exitcodes import ExitCode
from envelope._format.context import canonical_context, encode_context
from envelope._format.message import (
    SUITE_COBBLESTONE_256,
    Header,
    KeySlot,
    SplitDescriptor,
    encode_header,
    parse_header,
)
from envelope._keys.breakglass import recovery_plan
from envelope._keys.recovered import RecoveredKey, decode_data_key
from envelope.errors import ConfigError, DecryptionError, KeyUnavailableError
from envelope.kms import WrappedKey
from envelope.kms._aws import encryption_context
from envelope.kms._vault import transit_binding

ODD = {"service": "billing", "owner": 'O\'Brien $HOME `x` "q"; rm -rf /', "ünï": "ç\nnew line"}
ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PLAINTEXT = b"API_TOKEN=tok_live_123456\n"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENVELOPE_KEYRING", str(tmp_path / "keyring.json"))
    for name in ("ENVELOPE_CLUSTER_SECRET_FILE", "ENVELOPE_KEYRING_PASSPHRASE", "ENVELOPE_KMS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.run(["keyring", "init"]) == 0
    assert cli.run(["cluster-secret", "new", "--out", "cluster.key"]) == 0
    return tmp_path


def _crafted(slots: tuple[KeySlot, ...], context: dict[str, str], split: SplitDescriptor) -> bytes:
    """A message header with any slots (the body is never opened by inspect)."""
    header = Header(SUITE_COBBLESTONE_256, canonical_context(context), split, slots)
    return encode_header(header) + bytes(100)


ALL_KINDS = (
    KeySlot("aws-kms", ARN, b"\x01\x02aws-ciphertext"),
    KeySlot("vault-transit", "team/transit/orders", b"vault:v7:QUJD"),
    KeySlot("local", "kr-0123456789abcdef", b"\x01\x00\x00\x00\x03" + bytes(60)),
    KeySlot("keystore", "s3://bucket/keys/db@4", b"\x01\x00\x00\x00\x04"),
    KeySlot("hsm-x", "slot-9", b"opaque"),
)


def _inspect_json(path: str, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert cli.run(["inspect", path, "--json"]) == 0
    return dict(json.loads(capsys.readouterr().out))


def test_json_shows_every_slot_kind(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("m.env").write_bytes(_crafted(ALL_KINDS, ODD, SplitDescriptor("cs-0011223344556677")))
    info = _inspect_json("m.env", capsys)
    slots = info["wrapped_keys"]
    assert isinstance(slots, list)
    aws, vault, local, store, other = slots
    for entry, slot in zip(slots, ALL_KINDS, strict=True):
        assert base64.b64decode(entry["wrapped_key"]) == slot.wrapped
        assert (entry["provider"], entry["key_id"]) == (slot.provider, slot.key_id)
    ctx = canonical_context(ODD)
    # The context exactly as each backend sends it (the backends' own functions).
    assert aws["recovery"][0]["kms_context"] == encryption_context(ctx) == ODD
    assert aws["kek_version"] is None
    assert [r["kms_context"] for r in vault["recovery"]] == [
        transit_binding(ctx, derived=True),
        transit_binding(ctx, derived=False),
    ]
    assert base64.b64decode(vault["recovery"][0]["kms_context"]["context"]) == encode_context(ctx)
    assert vault["kek_version"] == 7
    assert local["kek_version"] == 3 and local["recovery"][0]["kms_context"] == ODD
    assert store["recovery"] == [] and "envelope inspect" in store["note"]
    assert other["recovery"] == [] and "hsm-x" in other["note"]
    glass = info["break_glass"]
    assert isinstance(glass, dict)
    assert glass["cluster_secret_id"] == "cs-0011223344556677"
    assert any("cs-0011223344556677" in need for need in glass["needs"])


def _argv(command: str, program: str) -> list[str]:
    """The argv of ``program`` inside a printed shell command."""
    words = shlex.split(command, posix=True)
    start = words.index(program)
    end = words.index(">", start) if ">" in words[start:] else len(words)
    return words[start:end]


def _flag(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_commands_quote_odd_context_values(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("m.env").write_bytes(_crafted(ALL_KINDS, ODD, SplitDescriptor(None)))
    aws, vault, local, *_ = _inspect_json("m.env", capsys)["wrapped_keys"]  # type: ignore[misc]
    argv = _argv(aws["recovery"][0]["command"], "aws")
    assert json.loads(_flag(argv, "--encryption-context")) == ODD
    assert _flag(argv, "--key-id") == ARN and _flag(argv, "--region") == "eu-west-1"
    assert argv[-4:] == ["--query", "Plaintext", "--output", "text"]
    assert "printf %s " + aws["wrapped_key"] in aws["recovery"][0]["command"]
    argv = _argv(vault["recovery"][0]["command"], "bao")
    assert argv[:4] == ["bao", "write", "-field=plaintext", "team/transit/decrypt/orders"]
    assert argv[4:] == [
        "ciphertext=vault:v7:QUJD",
        "context=" + vault["recovery"][0]["kms_context"]["context"],
    ]
    assert _argv(vault["recovery"][1]["command"], "bao")[5].startswith("associated_data=")
    argv = _argv(local["recovery"][0]["command"], "envelope")
    assert json.loads(_flag(argv, "--context-json")) == ODD
    assert base64.b64decode(_flag(argv, "--wrapped")) == ALL_KINDS[2].wrapped


def test_aws_slot_without_context_sends_none(home: Path) -> None:
    header = Header(SUITE_COBBLESTONE_256, (), SplitDescriptor(), (ALL_KINDS[0],))
    command = recovery_plan(header, "m.env").slots[0].commands[0].command
    assert "--encryption-context" not in command


def test_decrypt_command_uses_any_context_for_a_key_with_equals() -> None:
    header = Header(SUITE_COBBLESTONE_256, canonical_context({"a=b": "c"}), SplitDescriptor(), ())
    header = Header(header.suite, header.context, header.split, (ALL_KINDS[2],))
    plan = recovery_plan(header, "odd name.env")
    assert shlex.split(plan.decrypt_command) == [
        "envelope",
        "decrypt",
        "odd name.env",
        "--data-key",
        "slot-1.key",
        "--any-context",
        "-o",
        "odd name.env.recovered",
    ]


def _encrypt(*extra: str) -> None:
    Path("secret.txt").write_bytes(PLAINTEXT)
    argv = ["encrypt", "secret.txt", "-o", "m.env", "-c", "service=billing", *extra]
    assert cli.run(argv) == 0


def _data_key(path: str = "m.env") -> bytearray:
    header, _ = parse_header(Path(path).read_bytes())
    slot = header.slots[0]
    wrapped = WrappedKey(slot.provider, slot.key_id, slot.wrapped)
    return LocalKms.open().unwrap(wrapped, header.context)


def test_text_output_and_no_key_material(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _encrypt("--cluster-secret", "cluster.key")
    capsys.readouterr()
    assert cli.run(["inspect", "m.env"]) == 0
    out = capsys.readouterr().out
    header, _ = parse_header(Path("m.env").read_bytes())
    slot = header.slots[0]
    assert f"slot 1: local {slot.key_id}, KEK version 1" in out
    assert base64.b64encode(slot.wrapped).decode() in out
    assert "envelope keyring unwrap --key-id " + slot.key_id in out
    assert "cluster-secret file holding part cs-" in out
    assert "envelope decrypt m.env --data-key slot-1.key -c service=billing" in out
    key = bytes(_data_key())
    material = bytes(ClusterSecret.from_file("cluster.key").current.material)
    for secret in (key, material):
        for form in (base64.b64encode(secret).decode(), secret.hex()):
            assert form not in out


def test_keyring_unwrap_writes_a_0600_file_and_to_a_pipe(
    home: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    _encrypt("--no-split")
    header, _ = parse_header(Path("m.env").read_bytes())
    slot = header.slots[0]
    argv = ["keyring", "unwrap", "--key-id", slot.key_id]
    argv += ["--wrapped", base64.b64encode(slot.wrapped).decode()]
    argv += ["--context-json", '{"service": "billing"}']
    assert cli.run([*argv, "-o", "k.b64"]) == 0
    assert stat.S_IMODE(Path("k.b64").stat().st_mode) == 0o600
    assert base64.b64decode(Path("k.b64").read_bytes()) == _data_key()
    capsysbinary.readouterr()
    assert cli.run(argv) == 0
    assert capsysbinary.readouterr().out == Path("k.b64").read_bytes()
    wrong = [*argv[:-1], '{"service": "other"}']
    assert cli.run(wrong) == ExitCode.DECRYPT


def test_keyring_unwrap_refuses_a_terminal(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    argv = ["keyring", "unwrap", "--key-id", "kr-x", "--wrapped", "AAAA"]
    assert cli.run(argv) == ExitCode.USAGE
    assert "terminal" in capsys.readouterr().err


def _decrypt(*extra: str) -> int:
    return cli.run(["decrypt", "m.env", "-o", "out.txt", "-c", "service=billing", *extra])


def test_decrypt_with_a_recovered_key(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _encrypt("--cluster-secret", "cluster.key")
    key = _data_key()
    Path("raw.key").write_bytes(bytes(key))
    Path("b64.key").write_text(base64.b64encode(key).decode() + "\n")
    Path("keyring.json").unlink()  # break glass: no keyring, no KMS
    for name in ("raw.key", "b64.key"):
        Path("out.txt").unlink(missing_ok=True)
        assert _decrypt("--data-key", name, "--cluster-secret", "cluster.key") == 0
        assert Path("out.txt").read_bytes() == PLAINTEXT
    capsys.readouterr()
    # The split message needs the cluster secret as well (named), a KeyUnavailableError.
    assert _decrypt("--data-key", "raw.key") == ExitCode.CONFIG
    assert "cluster-secret part cs-" in capsys.readouterr().err


def test_decrypt_with_a_wrong_key_is_the_opaque_error(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _encrypt("--cluster-secret", "cluster.key")
    key = _data_key()
    key[0] ^= 1
    Path("wrong.key").write_bytes(bytes(key))
    Path("right.key").write_bytes(bytes(_data_key()))
    assert cli.run(["cluster-secret", "new", "--out", "other.key"]) == 0
    capsys.readouterr()
    for extra in (
        ("--data-key", "wrong.key", "--cluster-secret", "cluster.key"),
        # the right key, the right part, but not the context the caller requires
        ("--data-key", "right.key", "--cluster-secret", "cluster.key", "-c", "x=y"),
    ):
        assert _decrypt(*extra) == ExitCode.DECRYPT
        assert capsys.readouterr().err.strip() == f"envelope: error: {DecryptionError.MESSAGE}"
        assert not Path("out.txt").exists()
    assert _decrypt("--data-key", "right.key", "--cluster-secret", "other.key") == ExitCode.CONFIG


def test_decrypt_data_key_file_errors(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _encrypt("--no-split")
    Path("bad.key").write_text("not a key\n")
    capsys.readouterr()
    assert _decrypt("--data-key", "bad.key") == ExitCode.CONFIG
    assert "not a 32-byte key" in capsys.readouterr().err
    assert _decrypt("--data-key", "missing.key") == ExitCode.CONFIG
    assert _decrypt("--data-key", "bad.key", "--data-key", "1=bad.key") == ExitCode.USAGE
    assert _decrypt("--data-key", "a.key", "--data-key", "b.key") == ExitCode.USAGE


def _threshold_message(tmp: Path, cluster: ClusterSecret) -> list[LocalKms]:
    custodians = [LocalKms.create(tmp / f"kr{i}.json") for i in (1, 2, 3)]
    blob = Envelope(custodians, cluster, threshold=2).encrypt(PLAINTEXT, {"service": "billing"})
    Path("m.env").write_bytes(blob)
    header, _ = parse_header(blob)
    for i, (kms, slot) in enumerate(zip(custodians, header.slots, strict=True), 1):
        share = kms.unwrap(WrappedKey(slot.provider, slot.key_id, slot.wrapped), header.context)
        Path(f"share{i}.key").write_text(base64.b64encode(share).decode())
    return custodians


def test_decrypt_k_of_n_with_shares(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster = ClusterSecret.from_file("cluster.key")
    _threshold_message(home, cluster)
    part = ("--cluster-secret", "cluster.key")
    assert _decrypt("--data-key", "3=share3.key", "--data-key", "1=share1.key", *part) == 0
    assert Path("out.txt").read_bytes() == PLAINTEXT
    Path("out.txt").unlink()
    capsys.readouterr()
    # One share is not enough; a whole-key flag is the wrong form; slot numbers matter.
    assert _decrypt("--data-key", "1=share1.key", *part) == ExitCode.CONFIG
    assert "needs 2 of its 3 shares" in capsys.readouterr().err
    assert _decrypt("--data-key", "share1.key", *part) == ExitCode.CONFIG
    assert "SLOT=FILE" in capsys.readouterr().err
    assert _decrypt("--data-key", "2=share1.key", "--data-key", "1=share2.key", *part) == 1
    assert _decrypt("--data-key", "9=share1.key", "--data-key", "1=share2.key", *part) == 3
    assert _decrypt("--data-key", "1=share1.key", "--data-key", "1=share2.key", *part) == 2
    assert not Path("out.txt").exists()
    # The printed decrypt command gives the first two slots' shares.
    header, _ = parse_header(Path("m.env").read_bytes())
    assert "--data-key 1=slot-1.key --data-key 2=slot-2.key" in (
        recovery_plan(header, "m.env").decrypt_command
    )


def test_recovered_key_passes_over_a_wrong_share(home: Path) -> None:
    cluster = ClusterSecret.from_file("cluster.key")
    _threshold_message(home, cluster)
    shares = {i: base64.b64decode(Path(f"share{i}.key").read_text()) for i in (1, 2, 3)}
    shares[1] = bytes(32)  # damaged: subsets with it fail the key commitment
    opened = RecoveredKey(shares=shares, cluster_secret=cluster).decrypt(
        Path("m.env").read_bytes(), {"service": "billing"}
    )
    assert opened == PLAINTEXT
    shares[2] = bytes(32)
    with pytest.raises(DecryptionError) as caught:
        RecoveredKey(shares=shares, cluster_secret=cluster).decrypt(
            Path("m.env").read_bytes(), any_context=True
        )
    assert type(caught.value) is DecryptionError


def test_recovered_key_policy_and_forms(home: Path) -> None:
    kms, cluster = LocalKms.open(), ClusterSecret.from_file("cluster.key")
    unsplit = Envelope(kms).encrypt(PLAINTEXT)
    header, _ = parse_header(unsplit)
    slot = header.slots[0]
    key = kms.unwrap(WrappedKey(slot.provider, slot.key_id, slot.wrapped), ())
    assert RecoveredKey(key).decrypt(unsplit) == PLAINTEXT
    # With a cluster secret, a message that records no split is refused (as Envelope).
    with pytest.raises(DecryptionError, match="no cluster-secret split"):
        RecoveredKey(key, cluster_secret=cluster).decrypt(unsplit)
    assert RecoveredKey(key, cluster_secret=cluster, accept_unsplit=True).decrypt(unsplit)
    with pytest.raises(KeyUnavailableError, match="whole data key"):
        RecoveredKey(shares={1: key}).decrypt(unsplit)
    with pytest.raises(ValueError, match="32 bytes"):
        RecoveredKey(bytes(31))
    with pytest.raises(ValueError, match="either"):
        RecoveredKey()
    recovered = RecoveredKey(key)
    assert key.hex() not in repr(recovered) and bytes(key).decode("latin-1") not in repr(recovered)
    recovered.wipe()
    with pytest.raises(DecryptionError):
        recovered.decrypt(unsplit)


def test_decode_data_key_forms() -> None:
    key = bytes(range(32))
    assert decode_data_key(key, "x") == key
    assert decode_data_key(base64.b64encode(key) + b"\n", "x") == key
    with pytest.raises(ConfigError, match="file f"):
        decode_data_key(base64.b64encode(bytes(16)), "file f")  # 24 chars: 16 bytes


def test_a_recovered_key_is_never_pickled() -> None:
    key = bytes(range(32))
    with pytest.raises(pickle.PicklingError):
        pickle.dumps(RecoveredKey(key))
    with pytest.raises(pickle.PicklingError):
        pickle.dumps(RecoveredKey(shares={1: key, 2: key}))
