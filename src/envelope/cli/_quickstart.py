"""``envelope quickstart``: the whole flow on the local default, step by step.

It creates a local keyring (the KMS) and a cluster-secret part, encrypts a freshly
generated database credential bound to an encryption context, shows that neither the
KMS key alone nor a wrong context can open it, then decrypts it for real.
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

from envelope._envelope import Envelope
from envelope._format.inspect import inspect
from envelope._keys.cluster import ClusterSecret
from envelope.errors import DecryptionError, KeyUnavailableError
from envelope.kms._local import LocalKms

__all__ = ["run"]


def _step(n: int, text: str) -> None:
    print(f"\n[{n}] {text}")


def _mask(value: str) -> str:
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def run(directory: Path | None) -> int:
    """Runs the demo in ``directory`` (kept) or a temporary directory (removed)."""
    if directory is None:
        with tempfile.TemporaryDirectory(prefix="envelope-quickstart-") as tmp:
            return _run(Path(tmp), keep=False)
    directory.mkdir(parents=True, exist_ok=True)
    return _run(directory, keep=True)


def _run(work: Path, *, keep: bool) -> int:
    print("envelope quickstart: envelope encryption with a split key, on the local keyring")
    print(f"working in {work}")

    _step(1, "Create the KMS: a local keyring holding this service's key-encryption key")
    kms = LocalKms.create(work / "keyring.json", overwrite=True)
    print(f"    keyring {kms.key_id} at {kms.path} (mode 0600)")

    _step(2, "Create the service's cluster-secret part (in Kubernetes: a mounted Secret)")
    part_file = work / "cluster.key"
    part_file.write_bytes(secrets.token_bytes(32))
    part_file.chmod(0o600)
    cluster = ClusterSecret.from_file(part_file)
    print(f"    part {cluster.current.id} at {part_file}")

    _step(3, "Encrypt a real secret, bound to an encryption context")
    password = secrets.token_urlsafe(24)
    secret = f"DATABASE_URL=postgres://billing:{password}@db.internal:5432/billing\n".encode()
    context = {"service": "billing", "purpose": "database-credentials"}
    env = Envelope(kms, cluster)
    sealed = work / "billing.env.enc"
    sealed.write_bytes(env.encrypt(secret, context))
    print(f"    {len(secret)} bytes -> {sealed} ({sealed.stat().st_size} bytes)")

    _step(4, "What the message header says (envelope inspect): no key material")
    info = inspect(sealed.read_bytes())
    print(f"    context:        {info.context}")
    print(f"    wrapped key:    {info.wrapped_keys[0].provider} {info.wrapped_keys[0].key_id}")
    print(f"    cluster secret: {info.cluster_secret_id}")

    _step(5, "Neither part alone decrypts, and the context must match")
    try:
        Envelope(kms).decrypt(sealed.read_bytes(), context)
        print("    UNEXPECTED: decrypted without the cluster part")
        return 1
    except KeyUnavailableError as exc:
        print(f"    KMS key without the cluster part: refused ({exc.__class__.__name__})")
    try:
        Envelope(LocalKms.ephemeral(), cluster).decrypt(sealed.read_bytes(), context)
        print("    UNEXPECTED: decrypted without the service's KMS key")
        return 1
    except KeyUnavailableError as exc:
        print(f"    cluster part with another KMS key: refused ({exc.__class__.__name__})")
    try:
        env.decrypt(sealed.read_bytes(), {"service": "payroll", "purpose": "database-credentials"})
        print("    UNEXPECTED: decrypted under the wrong context")
        return 1
    except DecryptionError:
        print("    wrong context (service=payroll): refused (DecryptionError)")

    _step(6, "Decrypt with the KMS key and the cluster part, as the pod's init container would")
    out = work / "billing.env"
    env.decrypt_file(sealed, out, context, mode=0o400)
    recovered = out.read_bytes()
    if recovered != secret:
        print("    UNEXPECTED: the decrypted secret differs")
        return 1
    shown = recovered.decode().replace(password, _mask(password)).strip()
    print(f"    {out} (mode 0400): {shown}")
    print(
        "\nOK: the secret was encrypted and decrypted with the local KMS and a cluster-secret part."
    )
    if keep:
        print(f"Files kept in {work}. Next: envelope --help")
    return 0
