"""Break-glass recovery: how each key slot of a message is unwrapped by hand with the
KMS's own command-line tool, when envelope's service or configuration is unavailable
but the KMS is (docs/break-glass.md).

For each slot: the wrapped key (base64), the KEK version where the slot records one,
the exact encryption context the KMS saw (built by the backends' own functions:
:func:`envelope.kms._aws.encryption_context`,
:func:`envelope.kms._vault_wire.transit_binding`; the local keyring binds the context
itself) and a shell command, every value quoted with :func:`shlex.quote`, that writes
the recovered data key (or k-of-n share) as base64 to ``slot-N.key``; then the
``envelope decrypt --data-key`` command that opens the message with it. Nothing here
holds or prints key material other than wrapped (encrypted) keys.
"""

from __future__ import annotations

import base64
import json
import shlex
from dataclasses import dataclass
from typing import Any

from envelope._format.context import Context
from envelope._format.message import Header, KeySlot
from envelope._keys.stored import STORED_KEY_PROVIDER
from envelope.kms._aws import AwsKms, encryption_context, region_of
from envelope.kms._local import LocalKms, wrapped_version
from envelope.kms._vault import VaultTransit
from envelope.kms._vault_wire import ciphertext_version, split_key_id, transit_binding

__all__ = ["MessageRecovery", "RecoveryCommand", "SlotRecovery", "recovery_plan"]

#: Set in the printed ``decrypt`` command when the message names a cluster-secret part.
CLUSTER_SECRET_ARG = '--cluster-secret "$ENVELOPE_CLUSTER_SECRET_FILE"'  # noqa: S105 - a flag


@dataclass(frozen=True, slots=True)
class RecoveryCommand:
    """One way to unwrap a slot: the context as the KMS receives it, and the command.

    ``when`` says which setup it is for (None: the only way).
    """

    when: str | None
    kms_context: dict[str, str]
    command: str


@dataclass(frozen=True, slots=True)
class SlotRecovery:
    """How to recover the data key (or share) one key slot wraps."""

    slot: int  # 1-based, as ``--data-key SLOT=FILE`` names it
    provider: str
    key_id: str
    kek_version: int | None
    wrapped: bytes
    output: str  # the file the commands write the base64 key to
    commands: tuple[RecoveryCommand, ...]
    note: str | None

    @property
    def wrapped_b64(self) -> str:
        """The wrapped key, base64 (encrypted under the KEK: safe to show)."""
        return base64.b64encode(self.wrapped).decode()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "slot": self.slot,
            "kek_version": self.kek_version,
            "wrapped_key": self.wrapped_b64,
            "output": self.output,
            "recovery": [
                {"when": c.when, "kms_context": c.kms_context, "command": c.command}
                for c in self.commands
            ],
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class MessageRecovery:
    """Every slot's recovery, what else decryption needs, and the decrypt command."""

    slots: tuple[SlotRecovery, ...]
    cluster_secret_id: str | None
    threshold: tuple[int, int] | None
    needs: tuple[str, ...]
    decrypt_command: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the slots are merged into ``wrapped_keys`` by the caller)."""
        return {
            "cluster_secret_id": self.cluster_secret_id,
            "threshold": list(self.threshold) if self.threshold else None,
            "needs": list(self.needs),
            "decrypt_command": self.decrypt_command,
        }


def _json(value: dict[str, str]) -> str:
    """Compact ASCII JSON (non-ASCII escaped, so a command survives any terminal)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


def _aws(slot: KeySlot, ctx: Context, output: str, wrapped_file: str) -> RecoveryCommand:
    kms_context = encryption_context(ctx)
    blob = base64.b64encode(slot.wrapped).decode()
    decode = f"printf %s {shlex.quote(blob)} | base64 -d > {shlex.quote(wrapped_file)}"
    argv = ["aws", "kms", "decrypt"]
    region = region_of(slot.key_id)
    if region:
        argv += ["--region", region]
    argv += ["--key-id", slot.key_id, "--ciphertext-blob", f"fileb://{wrapped_file}"]
    if kms_context:
        argv += ["--encryption-context", _json(kms_context)]
    argv += ["--query", "Plaintext", "--output", "text"]
    command = f"{decode} && (umask 077 && {shlex.join(argv)} > {shlex.quote(output)})"
    return RecoveryCommand(None, kms_context, command)


def _vault(slot: KeySlot, ctx: Context, output: str) -> tuple[RecoveryCommand, ...]:
    mount, name = split_key_id(slot.key_id)
    ciphertext = slot.wrapped.decode("ascii", "replace")
    out = []
    for derived, when in (
        (True, f"transit key {slot.key_id} is derived (derived=true, the recommended setup)"),
        (False, f"transit key {slot.key_id} is not derived"),
    ):
        binding = transit_binding(ctx, derived=derived)
        argv = ["bao", "write", "-field=plaintext", f"{mount}/decrypt/{name}"]
        argv += [f"ciphertext={ciphertext}", *(f"{k}={v}" for k, v in binding.items())]
        command = f"(umask 077 && {shlex.join(argv)} > {shlex.quote(output)})"
        out.append(RecoveryCommand(when, binding, command))
    return tuple(out)


def _local(slot: KeySlot, ctx: Context, output: str) -> RecoveryCommand:
    kms_context = dict(ctx)  # bound in the AES-GCM AAD, with the keyring id and version
    argv = ["envelope", "keyring", "unwrap", "--key-id", slot.key_id]
    argv += ["--wrapped", base64.b64encode(slot.wrapped).decode()]
    argv += ["--context-json", _json(kms_context), "-o", output]
    return RecoveryCommand(None, kms_context, shlex.join(argv))


def _slot(position: int, slot: KeySlot, ctx: Context) -> SlotRecovery:
    output = f"slot-{position}.key"
    commands: tuple[RecoveryCommand, ...] = ()
    version: int | None = None
    note: str | None = None
    if slot.provider == AwsKms.provider_id:
        commands = (_aws(slot, ctx, output, f"slot-{position}.wrapped"),)
        note = "AWS KMS records the backing key version inside the ciphertext"
    elif slot.provider == VaultTransit.provider_id:
        version = ciphertext_version(slot.wrapped)
        commands = _vault(slot, ctx, output)
        mount, name = split_key_id(slot.key_id)
        note = (
            f"`bao read -field=derived {shlex.quote(f'{mount}/keys/{name}')}` says which; "
            "`vault` takes the same arguments"
        )
    elif slot.provider == LocalKms.provider_id:
        version = wrapped_version(slot.wrapped)
        commands = (_local(slot, ctx, output),)
        note = "add --keyring FILE unless $ENVELOPE_KEYRING points at the keyring"
    elif slot.provider == STORED_KEY_PROVIDER:
        note = (
            f"the data key is stored key {slot.key_id}: copy that key object out of the key "
            "store, run `envelope inspect` on it and recover its data key the same way"
        )
    else:
        note = f"no recovery command is known for provider {slot.provider!r}"
    return SlotRecovery(
        position, slot.provider, slot.key_id, version, slot.wrapped, output, commands, note
    )


def _decrypt_command(
    message: str, header: Header, slots: tuple[SlotRecovery, ...]
) -> tuple[str, str | None]:
    """The ``envelope decrypt --data-key`` command, and what it assumes (or None)."""
    usable = [s for s in slots if s.commands] or list(slots)
    argv = ["envelope", "decrypt", message]
    assumes = None
    if header.split.threshold is None:
        argv += ["--data-key", usable[0].output] if usable else ["--data-key", "slot-1.key"]
        if len(slots) > 1:
            assumes = f"any one slot's key will do: replace {argv[-1]} with the one you recovered"
    else:
        k = header.split.threshold[0]
        for s in usable[:k]:
            argv += ["--data-key", f"{s.slot}={s.output}"]
        assumes = f"any {k} slots' shares will do, each given as --data-key SLOT=FILE"
    if all("=" not in key for key, _ in header.context):
        for key, value in header.context:
            argv += ["-c", f"{key}={value}"]
    else:
        argv += ["--any-context"]  # a key with '=' cannot be given as -c KEY=VALUE
    out = "recovered.out" if message == "-" else f"{message}.recovered"
    argv += ["-o", out]
    command = shlex.join(argv)
    if header.split.cluster_secret_id is not None:
        command += " " + CLUSTER_SECRET_ARG
    return command, assumes


def recovery_plan(header: Header, message: str) -> MessageRecovery:
    """The break-glass recovery of the message in file ``message`` (``-``: stdin).

    Raises nothing: a slot of an unknown provider gets a note instead of a command.
    """
    slots = tuple(_slot(i, s, header.context) for i, s in enumerate(header.slots, 1))
    split = header.split
    needs: list[str] = []
    if split.threshold is None:
        needs.append(
            "the data key of any one key slot (each slot wraps the whole key), "
            "recovered with that slot's command"
        )
    else:
        k, n = split.threshold
        needs.append(
            f"{k} of the {n} shares (the data key is split {k}-of-{n} across the slots), "
            "each recovered with its slot's command"
        )
    if split.cluster_secret_id is not None:
        needs.append(
            f"the cluster-secret file holding part {split.cluster_secret_id} "
            "(--cluster-secret FILE or $ENVELOPE_CLUSTER_SECRET_FILE)"
        )
    else:
        needs.append("no cluster secret: the KMS key alone protects this message")
    command, assumes = _decrypt_command(message, header, slots)
    if assumes:
        needs.append(assumes)
    return MessageRecovery(slots, split.cluster_secret_id, split.threshold, tuple(needs), command)
