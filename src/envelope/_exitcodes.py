"""The one table of exit codes, shared by the CLI and ``envelope init``/``exec``.

:func:`exit_code_for` maps every error to its code, so the same failure gives the same
code whichever command or path (stdout or ``-o FILE``) met it: an input that cannot be
read or an output that cannot be written is :attr:`ExitCode.IO`; a keyring, cluster
secret, passphrase or config file that is missing or unreadable is :attr:`ExitCode.CONFIG`.
"""

from __future__ import annotations

from enum import IntEnum

from envelope.errors import (
    ConfigError,
    DecryptionError,
    FileAccessError,
    KeyUnavailableError,
    KmsError,
)

__all__ = ["ExitCode", "exit_code_for", "exit_codes_help", "exit_codes_summary"]


class ExitCode(IntEnum):
    """Process exit codes; :attr:`description` is the one-line meaning."""

    OK = 0
    DECRYPT = 1
    USAGE = 2
    CONFIG = 3
    KMS = 4
    IO = 5
    DISK = 6
    INTERNAL = 70
    INTERRUPTED = 130

    @property
    def description(self) -> str:
        """What the code means, in one line."""
        return _DESCRIPTIONS[self]

    @property
    def summary(self) -> str:
        """A word or two (the README's list)."""
        return _SUMMARIES[self]


_DESCRIPTIONS = {
    ExitCode.OK: "success",
    ExitCode.DECRYPT: "decryption failed (tampered, truncated, wrong context, "
    "not an envelope message)",
    ExitCode.USAGE: "usage error",
    ExitCode.CONFIG: "configuration error (missing or unreadable keyring, cluster secret, "
    "key, passphrase or config file)",
    ExitCode.KMS: "KMS error",
    ExitCode.IO: "input/output error (input unreadable, output or its directory not writable)",
    ExitCode.DISK: "init: the output directory is not memory-backed (no --allow-disk)",
    ExitCode.INTERNAL: "internal error (a bug: please report the one-line message)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}
_SUMMARIES = {
    ExitCode.OK: "ok",
    ExitCode.DECRYPT: "decryption failed",
    ExitCode.USAGE: "usage",
    ExitCode.CONFIG: "configuration",
    ExitCode.KMS: "KMS",
    ExitCode.IO: "I/O",
    ExitCode.DISK: "output not memory-backed",
    ExitCode.INTERNAL: "internal error",
    ExitCode.INTERRUPTED: "interrupted",
}


def exit_codes_help(*, include_disk: bool = False) -> str:
    """The ``exit codes:`` block of ``envelope --help``."""
    codes = [c for c in ExitCode if include_disk or c is not ExitCode.DISK]
    return "exit codes:\n" + "\n".join(f"  {c.value}  {c.description}" for c in codes)


def exit_codes_summary() -> str:
    """``(0 ok, 1 decryption failed, ...)``: the list README.md shows (without DISK)."""
    codes = [c for c in ExitCode if c is not ExitCode.DISK]
    return "(" + ", ".join(f"{c.value} {c.summary}" for c in codes) + ")"


#: Error kinds and their codes, most specific first (the first match wins).
_BY_ERROR: tuple[tuple[tuple[type[BaseException], ...], ExitCode], ...] = (
    ((FileAccessError,), ExitCode.IO),
    ((KeyUnavailableError, ConfigError), ExitCode.CONFIG),
    ((DecryptionError,), ExitCode.DECRYPT),
    ((KmsError,), ExitCode.KMS),
    ((ValueError, TypeError), ExitCode.USAGE),
    ((OSError,), ExitCode.IO),
)


def exit_code_for(exc: BaseException) -> ExitCode | None:
    """The exit code for an error a command raised (None: not an expected error, a bug)."""
    for kinds, code in _BY_ERROR:
        if isinstance(exc, kinds):
            return code
    return None
