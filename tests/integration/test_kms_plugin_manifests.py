"""The KMS plugin's deployment kit: the EncryptionConfiguration against a schema, the
static pod against the Kubernetes Pod schema (kubernetes-validate, strict), the systemd
unit with ``systemd-analyze verify``, and all three against what the plugin accepts.

No kube-apiserver can be installed from the registries this project uses (Debian ships
only kubectl, PyPI no apiserver binary), so there is no end-to-end test with a real
apiserver and etcd: see docs/kms-plugin.md.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from envelope.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
KIT = ROOT / "examples" / "kubernetes" / "kms-plugin"
SCHEMA_FILE = ROOT / "tests" / "support" / "encryption-configuration-v1.schema.json"
SCHEMA = json.loads(SCHEMA_FILE.read_text())


def encryption_config() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((KIT / "encryption-configuration.yaml").read_text())
    return doc


def static_pod() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((KIT / "kms-plugin.static-pod.yaml").read_text())
    return doc


def plugin_args(argv: list[str]) -> Any:
    return build_parser().parse_args(argv)


def test_encryption_configuration_matches_the_schema() -> None:
    jsonschema.validate(encryption_config(), SCHEMA)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(kind="EncryptionConfig"),
        lambda d: d["resources"][0]["providers"][0]["kms"].update(name="env:elope"),
        lambda d: d["resources"][0]["providers"][0]["kms"].update(cachesize=1000),
        lambda d: d["resources"][0]["providers"][0]["kms"].update(endpoint="tcp://1.2.3.4:1"),
        lambda d: d["resources"][0]["providers"][0]["kms"].update(timeout="3 seconds"),
        lambda d: d["resources"][0]["providers"].append({"identity": {}, "aesgcm": {}}),
        lambda d: d["resources"][0].update(provider=[]),
    ],
)
def test_the_schema_rejects_broken_configurations(mutate: Any) -> None:
    doc = encryption_config()
    mutate(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_encryption_configuration_uses_kms_v2_then_identity() -> None:
    (entry,) = encryption_config()["resources"]
    assert "secrets" in entry["resources"]
    first, last = entry["providers"][0], entry["providers"][-1]
    assert first["kms"]["apiVersion"] == "v2"
    assert last == {"identity": {}}  # reads what was stored before encryption


def test_static_pod_is_a_valid_strict_pod() -> None:
    kubernetes_validate.validate(static_pod(), kubernetes_validate.latest_version(), strict=True)


def test_static_pod_serves_the_configured_socket_hardened() -> None:
    pod = static_pod()
    spec = pod["spec"]
    (container,) = spec["containers"]
    args = plugin_args(container["args"])
    endpoint = encryption_config()["resources"][0]["providers"][0]["kms"]["endpoint"]
    assert args.listen == endpoint
    socket_dir = str(Path(endpoint.removeprefix("unix://")).parent)
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert volumes[mounts[socket_dir]]["hostPath"]["path"] == socket_dir
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] and sc["runAsNonRoot"] and sc["runAsUser"] != 0
    assert sc["capabilities"]["drop"] == ["ALL"] and not sc["allowPrivilegeEscalation"]
    assert spec["automountServiceAccountToken"] is False
    # Every file the plugin reads comes from a read-only mount.
    config_mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/etc/envelope")
    assert config_mount["readOnly"] is True
    for path in (args.cluster_secret, Path(args.vault_secret_id_file)):
        assert str(path).startswith("/etc/envelope/")


def test_systemd_unit_runs_the_plugin_on_its_runtime_directory() -> None:
    text = (KIT / "envelope-kms-plugin.service").read_text()
    exec_start = text.split("ExecStart=", 1)[1].split("\n#", 1)[0]
    argv = shlex.split(exec_start.replace("\\\n", " ").splitlines()[0])
    assert argv[0] == "/usr/local/bin/envelope"
    args = plugin_args(argv[1:])
    assert args.listen == "unix:///run/kmsplugin/envelope.sock"
    assert "RuntimeDirectory=kmsplugin" in text and "UMask=0077" in text


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    envelope = shutil.which("envelope")
    if analyze is None or envelope is None:
        pytest.skip("systemd-analyze or the envelope script is not installed here")
    unit = tmp_path / "envelope-kms-plugin.service"
    # Same unit, with the binary where this machine has it (verify checks it exists).
    text = (KIT / "envelope-kms-plugin.service").read_text()
    unit.write_text(text.replace("/usr/local/bin/envelope", envelope))
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0 and unit.name not in done.stderr, done.stderr


def test_the_pod_check_is_strict() -> None:
    pod = static_pod()
    pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFs"] = True  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)


def test_vendored_proto_is_the_recorded_file_and_stubs_regenerate_identically() -> None:
    import hashlib
    import sys

    proto_dir = ROOT / "src" / "envelope" / "plugin" / "_proto"
    digest = hashlib.sha256((proto_dir / "api.proto").read_bytes()).hexdigest()
    assert digest in (proto_dir / "README.md").read_text()
    assert "Apache License" in (proto_dir / "LICENSE").read_text()
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_kms_proto.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
