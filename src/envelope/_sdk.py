"""The optional SDKs (boto3, hvac), imported only when a backend or store needs one.

A missing SDK is a :class:`~envelope.errors.ConfigError` that names the pip extra to
install, so ``import envelope`` never needs either.
"""

from __future__ import annotations

import importlib
from typing import Any

from envelope.errors import ConfigError

__all__ = ["MissingRegionError", "aws_client", "boto3", "botocore_exceptions", "hvac"]


class MissingRegionError(ConfigError):
    """No AWS region was given nor configured (front ends add which setting gives one)."""


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


def botocore_exceptions() -> Any:
    """The ``botocore.exceptions`` module (installed with boto3).

    Raises:
        ConfigError: boto3/botocore is not installed (names the ``aws`` extra).
    """
    boto3()
    return _load("botocore.exceptions", "aws", "the AWS KMS backend and the S3 key store")


def aws_client(service: str, *, region: str | None, endpoint_url: str | None, **config: Any) -> Any:
    """A boto3 client for ``service``; ``config`` are ``botocore.config.Config`` options.

    Raises:
        ConfigError: boto3 is not installed.
        MissingRegionError: no region is given nor configured (names ``region=``,
            ``$AWS_REGION`` and ``$AWS_DEFAULT_REGION``).
    """
    sdk = boto3()
    botocore_config = _load("botocore.config", "aws", "the AWS KMS backend and the S3 key store")
    errors = botocore_exceptions()
    try:
        return sdk.client(
            service,
            region_name=region,
            endpoint_url=endpoint_url,
            config=botocore_config.Config(**config) if config else None,
        )
    except errors.NoRegionError:
        raise MissingRegionError(
            f"no AWS region for {service}: pass region=, or set $AWS_REGION or "
            "$AWS_DEFAULT_REGION (or a region in the AWS profile)",
            cli=f"no AWS region for {service}: pass --kms-region REGION, or set "
            "$ENVELOPE_KMS_REGION or $AWS_REGION (or a region in the AWS profile)",
        ) from None


def hvac() -> Any:
    """The ``hvac`` module.

    Raises:
        ConfigError: hvac is not installed (names the ``vault`` extra).
    """
    return _load("hvac", "vault", "the Vault/OpenBao Transit backend")
