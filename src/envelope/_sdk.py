"""The optional SDKs (boto3, hvac), imported only when a backend or store needs one.

A missing SDK is a :class:`~envelope.errors.ConfigError` that names the pip extra to
install, so ``import envelope`` never needs either.
"""

from __future__ import annotations

import importlib
from typing import Any

from envelope.errors import ConfigError

__all__ = ["boto3", "hvac"]


def _load(module: str, extra: str, needed_by: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"{module} is not installed ({needed_by} need it): pip install 'envelope-kms[{extra}]'"
        ) from None


def boto3() -> Any:
    """The ``boto3`` module.

    Raises:
        ConfigError: boto3 is not installed (names the ``aws`` extra).
    """
    return _load("boto3", "aws", "the AWS KMS backend and the S3 key store")


def hvac() -> Any:
    """The ``hvac`` module.

    Raises:
        ConfigError: hvac is not installed (names the ``vault`` extra).
    """
    return _load("hvac", "vault", "the Vault/OpenBao Transit backend")
