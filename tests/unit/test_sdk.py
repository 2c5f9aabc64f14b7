"""A missing optional SDK is a ConfigError naming the pip extra, wherever it is needed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CASES = {
    "s3-key-store": (
        "boto3",
        "from envelope.keystore import S3KeyStore\nS3KeyStore('bucket')",
        "aws",
    ),
    "s3-object": (
        "boto3",
        "from envelope.keystore._s3 import read_s3_object\nread_s3_object('s3://b/k')",
        "aws",
    ),
    "vault": (
        "hvac",
        "from envelope.kms import VaultTransit\nVaultTransit('k', url='http://127.0.0.1:1')",
        "vault",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_missing_sdk_names_the_extra(case: str) -> None:
    module, call, extra = CASES[case]
    body = "\n".join("    " + line for line in call.splitlines())
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "import envelope\n"
        f"try:\n{body}\nexcept envelope.ConfigError as e:\n    print(e)\n"
        "else:\n    print('no error')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ}
    )
    assert f"{module} is not installed" in out.stdout
    assert f"pip install 'envelope-kms[{extra}]'" in out.stdout
