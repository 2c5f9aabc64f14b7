"""Secret hygiene (issue 12): every CLI flow, run with DEBUG logging of every library in
JSON, leaves no data key, cluster-secret part, KEK or plaintext (raw, hex or base64) in
stdout, stderr, the log file, the temp dir or any file it was not asked to write.

The keys are captured by a wrapper around the real CLI: it records every data key the
local keyring generates or unwraps, and every KEK it holds, into a file outside the
scanned directories; the cluster parts are read from their files."""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from envelope import ClusterSecret
from tests.integration.test_vault_transit import new_key

ROOT = Path(__file__).resolve().parents[2]

WRAPPER = textwrap.dedent(
    """
    import json, logging, os, sys
    from pathlib import Path

    class Json(logging.Formatter):
        def format(self, record):
            return json.dumps({"level": record.levelname, "logger": record.name,
                               "message": record.getMessage(), "exc": record.exc_text})

    handler = logging.FileHandler(os.environ["HYGIENE_LOG"])
    handler.setFormatter(Json())
    logging.basicConfig(level=logging.DEBUG, handlers=[handler])
    capture = open(os.environ["HYGIENE_CAPTURE"], "a")

    def record(secret):
        capture.write(bytes(secret).hex() + "\\n")
        capture.flush()

    from envelope.kms import _local

    def keks(self):
        for k in self._keys.values():
            record(k)

    gen, unwrap, save = (_local.LocalKms.generate_data_key, _local.LocalKms.unwrap,
                         _local.LocalKms._save)

    def generate_data_key(self, context):
        keks(self)
        dk = gen(self, context)
        record(dk.plaintext)
        return dk

    def unwrap_(self, wrapped, context):
        keks(self)
        key = unwrap(self, wrapped, context)
        record(key)
        return key

    def save_(self):
        keks(self)
        save(self)

    _local.LocalKms.generate_data_key = generate_data_key
    _local.LocalKms.unwrap = unwrap_
    _local.LocalKms._save = save_

    from envelope.kms import _vault

    vgen, vunwrap = _vault.VaultTransit.generate_data_key, _vault.VaultTransit.unwrap

    def vault_generate(self, context):
        dk = vgen(self, context)
        record(dk.plaintext)
        return dk

    def vault_unwrap(self, wrapped, context):
        key = vunwrap(self, wrapped, context)
        record(key)
        return key

    _vault.VaultTransit.generate_data_key = vault_generate
    _vault.VaultTransit.unwrap = vault_unwrap
    from envelope.cli import main
    sys.argv = ["envelope", *sys.argv[1:]]
    main()
    """
)


def _needles(secret: bytes) -> set[bytes]:
    forms = {
        secret,
        secret.hex().encode(),
        secret.hex().upper().encode(),
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret),
        base64.b64encode(secret).rstrip(b"="),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
    }
    return {f for f in forms if len(f) >= 16}


def test_no_key_or_plaintext_escapes_any_cli_flow(tmp_path: Path, openbao: Any) -> None:
    work, tmp, private = tmp_path / "work", tmp_path / "tmp", tmp_path / "private"
    for d in (work, tmp, private):
        d.mkdir()
    (private / "wrapper.py").write_text(WRAPPER)
    log, capture = tmp / "debug.jsonl", private / "captured.hex"
    plaintext = b"PLAINTEXT-" + os.urandom(16).hex().encode() + b"-END"
    (work / "p.txt").write_bytes(plaintext)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ENVELOPE_", "VAULT_"))},
        "HOME": str(tmp_path / "home"),
        "TMPDIR": str(tmp),
        "PYTHONPATH": str(ROOT / "src"),
        "HYGIENE_LOG": str(log),
        "HYGIENE_CAPTURE": str(capture),
        "ENVELOPE_KEYRING": str(work / "keyring.json"),
        "PYTHONDEVMODE": "1",
    }
    outputs: list[bytes] = []

    def run(*argv: str, ok: tuple[int, ...] = (0,)) -> bytes:
        proc = subprocess.run(
            [sys.executable, str(private / "wrapper.py"), *argv],
            cwd=work,
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode in ok, (argv, proc.stderr.decode(errors="replace"))
        outputs.extend([proc.stdout, proc.stderr])
        return proc.stdout

    ctx = ("-c", "service=billing")
    run("keyring", "init")
    run("cluster-secret", "new", "--out", "part1")
    run("cluster-secret", "new", "--out", "part2")
    run("cluster-secret", "id", "part1")
    part1 = ("--cluster-secret", "part1")
    run("encrypt", "p.txt", "-o", "m.env", *part1, *ctx)
    run("decrypt", "m.env", "-o", "out1.txt", *part1, *ctx)
    run("inspect", "m.env")
    run("inspect", "m.env", "--verify", *part1, ok=(0, 1, 2, 3))
    # Break-glass: the recovery command inspect prints, then decrypt with its key file.
    (slot,) = json.loads(run("inspect", "m.env", "--json"))["wrapped_keys"]
    run(*shlex.split(slot["recovery"][0]["command"])[1:])  # writes slot-1.key (0600)
    run("decrypt", "m.env", "--data-key", "slot-1.key", "-o", "out5.txt", *part1, *ctx)
    run("keyring", "rotate")
    run("keyring", "list")
    run("rewrap", "m.env")
    run("reencrypt", "m.env", "--cluster-secret", "part2", "--previous-cluster-secret", "part1")
    run("decrypt", "m.env", "-o", "out2.txt", "--cluster-secret", "part2", *ctx)
    store = ("--keystore", str(work / "store"))
    run("keystore", "put", "db", *store, *ctx)
    run("keystore", "get", "db", *store)
    run("keystore", "list", *store)
    run("keystore", "rewrap", "db", *store)
    run("encrypt", "p.txt", "-o", "m2.env", *part1, *store, "--key-ref", "db", *ctx)
    run("decrypt", "m2.env", "-o", "out3.txt", *part1, *store, *ctx)
    vault_key = new_key(openbao, derived=True)
    (work / "vault-token").write_text(openbao.root_token)
    vault = ("--kms", "vault", "--kms-key", vault_key, "--kms-endpoint", openbao.url)
    vault += ("--vault-token-file", "vault-token")
    run("encrypt", "p.txt", "-o", "m3.env", *part1, *vault, *ctx)
    run("decrypt", "m3.env", "-o", "out4.txt", *part1, *vault, *ctx)
    run("inspect", "m3.env")
    discovering = ("--kms", "vault", "--kms-endpoint", openbao.url, "--allow-key", vault_key)
    run(
        "decrypt",
        "m3.env",
        "-o",
        "out6.txt",
        *part1,
        *discovering,
        "--vault-token-file",
        "vault-token",
        *ctx,
    )
    (work / "out").mkdir()
    cfg = {
        "version": 1,
        "kms": {"kind": "local", "keyring": str(work / "keyring.json")},
        "cluster_secret": {"file": str(work / "part2")},
        "output": {"directory": str(work / "out"), "mode": "0400"},
        "secrets": [
            {
                "name": "app",
                "source": {"file": str(work / "m.env")},
                "target": "app.txt",
                "env": "APP_SECRET",
                "context": {"service": "billing"},
            }
        ],
    }
    (work / "init.yaml").write_text(yaml.safe_dump(cfg))
    run("init", "--config", "init.yaml", "--allow-disk", "--log-format", "json")
    run("exec", "--config", "init.yaml", "--log-format", "json", "--", "true")

    secrets = {bytes.fromhex(line) for line in capture.read_text().split()}
    parts = {bytes(ClusterSecret.from_file(work / p).current.material) for p in ("part1", "part2")}
    assert len(secrets) >= 6 and len(parts) == 2  # 2 KEK versions, 4 data keys: captured
    needles = {n: "key" for s in secrets for n in _needles(s)}
    needles |= {n: "cluster part" for s in parts for n in _needles(s)}
    needles |= {n: "plaintext" for n in _needles(plaintext)}
    needles |= {openbao.root_token.encode(): "Vault token"}

    # Files the flows were asked to write with these bytes in them, by design.
    allowed = {work / f"out{i}.txt" for i in range(1, 7)} | {work / "p.txt"}
    allowed |= {work / n for n in ("keyring.json", "part1", "part2", "vault-token")}
    allowed.add(work / "slot-1.key")  # the recovered data key, asked for
    haystacks = {f"output {i}": out for i, out in enumerate(outputs)}
    for top in (work, tmp):
        for path in top.rglob("*"):
            if path.is_file() and not path.is_symlink() and path not in allowed:
                if top == work and path.is_relative_to(work / "out"):
                    continue  # the init output: the plaintext, published on purpose
                haystacks[str(path)] = path.read_bytes()
    assert b'"level": "DEBUG"' in log.read_bytes()  # DEBUG logging was on (urllib3, ...)
    hits = [
        f"{needles[n]} in {where}" for where, hay in haystacks.items() for n in needles if n in hay
    ]
    assert hits == []
    for i in range(1, 7):  # the flows really ran
        assert (work / f"out{i}.txt").read_bytes() == plaintext, i
