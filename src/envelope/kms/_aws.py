"""AWS KMS backend: a service's KEK is a KMS key; data keys come from GenerateDataKey.

boto3 is imported here and nowhere else; install it with ``pip install 'envelope-kms[aws]'``.

- ``generate_data_key`` = GenerateDataKey (AES_256), ``wrap`` = Encrypt,
  ``unwrap`` = Decrypt with the KeyId pinned to the configured key (a ciphertext can never
  make us use another key), ``rewrap`` = ReEncrypt to the same key (its newest backing
  key; the plaintext stays in KMS).
- The encryption context goes to KMS as EncryptionContext (and is bound in the envelope
  header too).
- Credentials come from the standard boto3 chain, including web identity
  (``AWS_ROLE_ARN`` + ``AWS_WEB_IDENTITY_TOKEN_FILE``: IRSA on EKS).
- Throttling and 5xx are retried by botocore's "standard" mode (exponential backoff with
  jitter), bounded by ``max_attempts`` and the connect/read timeouts.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from envelope import _sdk
from envelope._format.context import Context
from envelope.errors import DecryptionError, KeyUnavailableError, KmsError
from envelope.kms._types import DATA_KEY_BYTES, DataKey, WrappedKey

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

__all__ = ["AwsKms", "encryption_context", "region_of"]

_MRK_ARN = re.compile(r"^arn:aws[\w-]*:kms:[\w-]+:(\d+):key/(mrk-[0-9a-f]+)$")
_THROTTLE = {"ThrottlingException", "LimitExceededException", "RequestLimitExceeded"}


class AwsKms:
    """A KMS key as this service's KEK.

    Args:
        key_id: key id, key ARN, alias name (``alias/...``) or alias ARN. It is resolved
            to the key ARN once (DescribeKey); the ARN is what message headers record.
        client: a boto3 KMS client to use as is (its retry settings apply).
        region: AWS region (default: the boto3 chain).
        endpoint_url: a KMS endpoint (VPC endpoint, FIPS endpoint, or a test server).
        grant_tokens: KMS grant tokens sent with every request.
        max_attempts: attempts per request, including retries (botocore standard mode).
        connect_timeout: seconds to connect, per attempt.
        read_timeout: seconds to wait for a response, per attempt.

    Raises:
        ConfigError: boto3 is not installed, or no region is given nor configured.
    """

    provider_id = "aws-kms"

    def __init__(
        self,
        key_id: str,
        *,
        client: KMSClient | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        grant_tokens: list[str] | None = None,
        max_attempts: int = 6,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
    ) -> None:
        # The settings tree this backend pickles as; None (a client given): not picklable.
        self._origin: dict[str, Any] | None = None
        if client is None:
            self._origin = {
                "kind": "aws",
                "key": key_id,
                "region": region,
                "endpoint": endpoint_url,
            }
            client = _sdk.aws_client(
                "kms",
                region=region,
                endpoint_url=endpoint_url,
                retries={"mode": "standard", "total_max_attempts": max_attempts},
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
            )
        self._client: Any = client
        self._configured = key_id
        self._arn: str | None = key_id if key_id.startswith("arn:") and ":key/" in key_id else None
        self._grants = list(grant_tokens or [])

    def __repr__(self) -> str:
        return f"AwsKms(key_id={self._arn or self._configured!r}, endpoint={self._endpoint()!r})"

    def _endpoint(self) -> str:
        return str(getattr(self._client.meta, "endpoint_url", "aws"))

    # -- errors -----------------------------------------------------------------------

    def _fail(self, exc: Exception, operation: str) -> Exception:
        errors = _sdk.botocore_exceptions()

        key = self._arn or self._configured
        if isinstance(exc, errors.ClientError):
            err = exc.response.get("Error", {})
            code, message = str(err.get("Code", "")), str(err.get("Message", ""))
            if code in ("InvalidCiphertextException", "IncorrectKeyException"):
                return DecryptionError()
            if code == "AccessDeniedException":
                who = _principal(message)
                return KmsError(
                    f"AWS KMS denied {operation} on key {key}{who}: allow kms:{operation} for "
                    "this principal in the key policy or IAM policy"
                )
            if code == "NotFoundException":
                return KmsError(
                    f"AWS KMS key {key} was not found in region {self._client.meta.region_name}: "
                    "check the key id and the region"
                )
            if code in ("DisabledException", "KMSInvalidStateException"):
                return KmsError(
                    f"AWS KMS key {key} cannot be used ({code}: {message}); enable the key "
                    "or cancel its deletion"
                )
            if code in _THROTTLE:
                return KmsError(
                    f"AWS KMS throttled {operation} on key {key} through every retry; "
                    "raise the KMS request quota or use a data-key cache"
                )
            return KmsError(f"AWS KMS {operation} on key {key} failed: {code}: {message}")
        if isinstance(exc, errors.NoCredentialsError):
            return KmsError(
                "no AWS credentials found for KMS: set up the pod's service-account role "
                "(AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE) or another boto3 credential source"
            )
        if isinstance(exc, errors.EndpointConnectionError):
            return KmsError(
                f"cannot reach AWS KMS at {self._endpoint()} for key {key}: check the network "
                "policy, the region and the endpoint URL"
            )
        if isinstance(exc, errors.BotoCoreError):
            return KmsError(f"AWS KMS {operation} on key {key} failed: {exc}")
        return exc

    def _call(self, operation: str, method: str, **kwargs: Any) -> Any:
        if self._grants:
            kwargs["GrantTokens"] = self._grants
        try:
            return getattr(self._client, method)(**kwargs)
        except Exception as exc:
            mapped = self._fail(exc, operation)
            if mapped is exc:
                raise
            raise mapped from None

    # -- KmsBackend -------------------------------------------------------------------

    @property
    def key_id(self) -> str:
        """The key's ARN (resolved from an alias or key id with one DescribeKey call).

        Raises:
            KmsError: the key cannot be described.
        """
        if self._arn is None:
            meta = self._call("DescribeKey", "describe_key", KeyId=self._configured)["KeyMetadata"]
            self._arn = str(meta["Arn"])
        return self._arn

    def matches(self, key_id: str) -> bool:
        """True for this key's ARN, or a replica of this multi-region key.

        Raises:
            KmsError: this key's ARN is not resolved yet and cannot be described.
        """
        if key_id == self.key_id:
            return True
        ours, theirs = _MRK_ARN.match(self.key_id), _MRK_ARN.match(key_id)
        return bool(ours and theirs and ours.groups() == theirs.groups())

    def aliases(self) -> list[str]:
        """The alias names (``alias/...``) that point at this key, in its region.

        Raises:
            KmsError: the aliases cannot be listed (the message says why).
        """
        key = self._arn or self._configured
        try:
            pages = self._client.get_paginator("list_aliases").paginate(KeyId=key)
            return [str(a["AliasName"]) for page in pages for a in page.get("Aliases", ())]
        except Exception as exc:
            mapped = self._fail(exc, "ListAliases")
            if mapped is exc:
                raise
            raise mapped from None

    def _check_slot(self, wrapped: WrappedKey) -> None:
        if wrapped.provider != self.provider_id or not self.matches(wrapped.key_id):
            raise KeyUnavailableError(
                f"the data key is wrapped by {wrapped.provider} key {wrapped.key_id!r}, "
                f"not by AWS KMS key {self.key_id}"
            )

    def generate_data_key(self, context: Context) -> DataKey:
        """GenerateDataKey (AES_256) under this key.

        Raises:
            KmsError: KMS refused or could not be reached.
        """
        resp = self._call(
            "GenerateDataKey",
            "generate_data_key",
            KeyId=self.key_id,
            KeySpec="AES_256",
            EncryptionContext=encryption_context(context),
        )
        plaintext = bytearray(resp["Plaintext"])
        return DataKey(
            plaintext, WrappedKey(self.provider_id, self.key_id, bytes(resp["CiphertextBlob"]))
        )

    def wrap(self, plaintext: bytes | bytearray, context: Context) -> WrappedKey:
        """Encrypt a 32-byte data key under this key.

        Raises:
            ValueError: ``plaintext`` is not 32 bytes.
            KmsError: as :meth:`generate_data_key`.
        """
        if len(plaintext) != DATA_KEY_BYTES:
            raise ValueError("a data key is 32 bytes")
        resp = self._call(
            "Encrypt",
            "encrypt",
            KeyId=self.key_id,
            Plaintext=bytes(plaintext),
            EncryptionContext=encryption_context(context),
        )
        return WrappedKey(self.provider_id, self.key_id, bytes(resp["CiphertextBlob"]))

    def unwrap(self, wrapped: WrappedKey, context: Context) -> bytearray:
        """Decrypt with the KeyId pinned to this key.

        Raises:
            KeyUnavailableError: the slot names another key.
            DecryptionError: KMS says the ciphertext or context is wrong.
            KmsError: access denied, key disabled or missing, KMS unreachable.
        """
        self._check_slot(wrapped)
        resp = self._call(
            "Decrypt",
            "decrypt",
            CiphertextBlob=wrapped.blob,
            KeyId=self.key_id,
            EncryptionContext=encryption_context(context),
        )
        plaintext = bytearray(resp["Plaintext"])
        if len(plaintext) != DATA_KEY_BYTES:
            raise DecryptionError()
        return plaintext

    def rewrap(self, wrapped: WrappedKey, context: Context) -> WrappedKey:
        """ReEncrypt to this key's current backing key; the data key stays in KMS.

        Raises:
            KeyUnavailableError: as :meth:`unwrap`.
            DecryptionError: as :meth:`unwrap`.
            KmsError: as :meth:`unwrap`.
        """
        self._check_slot(wrapped)
        resp = self._call(
            "ReEncrypt",
            "re_encrypt",
            CiphertextBlob=wrapped.blob,
            SourceKeyId=self.key_id,
            DestinationKeyId=self.key_id,
            SourceEncryptionContext=encryption_context(context),
            DestinationEncryptionContext=encryption_context(context),
        )
        return WrappedKey(self.provider_id, self.key_id, bytes(resp["CiphertextBlob"]))

    def key_metadata(self) -> dict[str, Any]:
        """DescribeKey's ``KeyMetadata`` (one KMS call): state, and where AWS reports it
        the ``CurrentKeyMaterialId`` that changes when the key rotates.

        Raises:
            KmsError: the key cannot be described.
        """
        return dict(self._call("DescribeKey", "describe_key", KeyId=self.key_id)["KeyMetadata"])

    def health(self) -> None:
        """DescribeKey: the key exists, is reachable, and is enabled.

        Raises:
            KmsError: otherwise, with the reason.
        """
        meta = self.key_metadata()
        if meta.get("KeyState") != "Enabled" or not meta.get("Enabled", True):
            raise KmsError(f"AWS KMS key {self.key_id} is {meta.get('KeyState')}; enable it")


def encryption_context(context: Context) -> dict[str, str]:
    """The ``EncryptionContext`` every KMS request of this backend carries: the canonical
    context's pairs as they are (also what ``envelope inspect`` shows for recovery)."""
    return dict(context)


def region_of(key_arn: str) -> str | None:
    """The region in a KMS key ARN (``arn:aws:kms:REGION:ACCOUNT:key/ID``), else None."""
    parts = key_arn.split(":")
    if len(parts) >= 6 and parts[0] == "arn" and parts[2] == "kms" and parts[3]:
        return parts[3]
    return None


def _principal(message: str) -> str:
    match = re.search(r"(arn:aws[\w-]*:(?:iam|sts)::\d+:[\w/+=,.@-]+)", message)
    return f" for principal {match.group(1)}" if match else ""
