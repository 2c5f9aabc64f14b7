"""The Kubernetes kit: the manifests parse and agree with each other and with the
helper's config schema."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from envelope.k8s._config import parse_config

KIT = Path(__file__).resolve().parents[2] / "examples" / "kubernetes"
FLAVOURS = ["vault", "aws"]
DEPLOYMENTS = ["deployment.yaml", "deployment-sidecar.yaml"]
#: (flavour, file) of every example Deployment.
ALL_DEPLOYMENTS = [(f, d) for f in FLAVOURS for d in DEPLOYMENTS] + [
    ("vault", "deployment-sidecar-reload.yaml")
]


def load(flavour: str) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted((KIT / flavour).glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            key = (
                doc["kind"],
                doc["metadata"]["name"] + ("@" + path.name if doc["kind"] == "Deployment" else ""),
            )
            assert key not in out, f"{key} defined twice"
            out[key] = doc
    return out


def deployment(docs: dict[tuple[str, str], dict[str, Any]], name: str) -> dict[str, Any]:
    return next(
        d for (kind, key), d in docs.items() if kind == "Deployment" and key.endswith("@" + name)
    )


def one(docs: dict[tuple[str, str], dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for (k, _), d in docs.items() if k == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_everything_is_in_one_namespace_with_the_service_label(flavour: str) -> None:
    for doc in load(flavour).values():
        assert doc["metadata"]["namespace"] == "shop"
        assert doc["metadata"]["labels"]["app"] == "billing"


@pytest.mark.parametrize(("flavour", "name"), ALL_DEPLOYMENTS)
def test_deployment_agrees_with_the_rest(flavour: str, name: str) -> None:
    docs = load(flavour)
    dep = deployment(docs, name)
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()

    sa = one(docs, "ServiceAccount")
    assert pod["spec"]["serviceAccountName"] == sa["metadata"]["name"]

    binding, role = one(docs, "RoleBinding"), one(docs, "Role")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert {
        "kind": "ServiceAccount",
        "name": sa["metadata"]["name"],
        "namespace": "shop",
    } in binding["subjects"]
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["get"],
            "resourceNames": role["rules"][0]["resourceNames"],
        }
    ]

    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    part_volume = next(v for v in volumes.values() if "secret" in v)
    assert role["rules"][0]["resourceNames"] == [part_volume["secret"]["secretName"]]

    policy = one(docs, "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["policyTypes"] == ["Egress"]
    dns = [r for r in policy["spec"]["egress"] if any(p["port"] == 53 for p in r["ports"])]
    assert dns, "DNS egress must be allowed"
    assert len(policy["spec"]["egress"]) == 2, "egress: the KMS and DNS only"

    init = next(c for c in pod["spec"]["initContainers"] if c["name"] == "envelope-init")
    app = next(c for c in pod["spec"]["containers"] if c["name"] == "app")
    for c in (init, app):
        for m in c["volumeMounts"]:
            assert m["name"] in volumes, f"{c['name']} mounts unknown volume {m['name']}"
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]
    psc = pod["spec"]["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0

    # The output volume: memory-backed, bounded, read-only for the app.
    cfg = parse_config(one(docs, "ConfigMap")["data"]["init.yaml"])
    assert cfg.output is not None
    out_mount = next(m for m in init["volumeMounts"] if m["mountPath"] == cfg.output.directory)
    out_volume = volumes[out_mount["name"]]
    assert out_volume["emptyDir"]["medium"] == "Memory" and out_volume["emptyDir"]["sizeLimit"]
    app_mount = next(m for m in app["volumeMounts"] if m["name"] == out_mount["name"])
    assert app_mount["readOnly"] is True and app_mount["mountPath"] == cfg.output.directory
    assert out_mount.get("readOnly") is not True

    # Every path the config names lies in a volume mounted into the init container.
    mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}

    def mounted(path: str) -> str:
        hits = [mp for mp in mounts if path == mp or path.startswith(mp.rstrip("/") + "/")]
        assert hits, f"{path} is not inside any volume mounted into envelope-init"
        return mounts[max(hits, key=len)]

    assert cfg.cluster_secret is not None
    assert mounted(cfg.cluster_secret.file) == part_volume["name"]
    config_volume = mounted("/etc/envelope/init.yaml")
    assert volumes[config_volume]["configMap"]["name"] == one(docs, "ConfigMap")["metadata"]["name"]
    cm = one(docs, "ConfigMap")
    for secret in cfg.secrets:
        if secret.source.file:
            assert mounted(secret.source.file) == config_volume
            assert Path(secret.source.file).name in {
                **cm.get("data", {}),
                **cm.get("binaryData", {}),
            }
    if cfg.kms.kind == "vault":
        assert cfg.kms.vault.auth.method == "kubernetes"
        token_volume = volumes[mounted(cfg.kms.vault.auth.jwt_file)]
        token = token_volume["projected"]["sources"][0]["serviceAccountToken"]
        assert cfg.kms.vault.auth.jwt_file.endswith("/" + token["path"])
        assert token["expirationSeconds"] <= 3600
        if cfg.kms.vault.ca_bundle:
            assert Path(cfg.kms.vault.ca_bundle).name in cm["data"]
    else:
        assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith(
            "arn:aws:iam::"
        )

    # The init container runs the helper with this config.
    assert init["args"][:3] == ["init", "--config", "/etc/envelope/init.yaml"]
    if name.startswith("deployment-sidecar"):
        assert init["restartPolicy"] == "Always" and "--refresh" in init["args"]
        if "exec" in init["startupProbe"]:
            probe = " ".join(init["startupProbe"]["exec"]["command"])
            assert f"{cfg.output.directory}/..data" in probe
        else:
            assert init["startupProbe"]["httpGet"]["path"] == "/healthz"
    else:
        assert "restartPolicy" not in init


@pytest.mark.parametrize(("flavour", "name"), ALL_DEPLOYMENTS)
def test_deployments_are_valid_strict_kubernetes_objects(flavour: str, name: str) -> None:
    for doc in yaml.safe_load_all((KIT / flavour / name).read_text()):
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_the_strict_check_rejects_a_misspelt_field() -> None:
    dep = deployment(load("vault"), "deployment-sidecar-reload.yaml")
    dep["spec"]["template"]["spec"]["shareProcessNamspace"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, kubernetes_validate.latest_version(), strict=True)


def _flag(args: list[str], flag: str) -> str:
    assert flag in args, f"{flag} missing from {args}"
    return args[args.index(flag) + 1]


def test_reload_sidecar_signals_the_app_and_is_probed_on_healthz() -> None:
    pod = deployment(load("vault"), "deployment-sidecar-reload.yaml")["spec"]["template"]
    spec = pod["spec"]
    assert spec["shareProcessNamespace"] is True
    init = next(c for c in spec["initContainers"] if c["name"] == "envelope-init")
    app = next(c for c in spec["containers"] if c["name"] == "app")
    args = init["args"]
    assert init["restartPolicy"] == "Always"
    assert _flag(args, "--signal") == "SIGHUP"
    # The process it signals is the app's, and both run as the pod's one uid.
    assert _flag(args, "--signal-process-name") == app["command"][0]
    assert "runAsUser" not in init["securityContext"] and "runAsUser" not in app["securityContext"]
    # The probes and the scrape annotations hit the port --metrics-port serves, on an
    # address the kubelet reaches.
    port = int(_flag(args, "--metrics-port"))
    assert _flag(args, "--metrics-address") == "0.0.0.0"
    named = {p["name"]: p["containerPort"] for p in init["ports"]}
    for probe in ("startupProbe", "livenessProbe"):
        get = init[probe]["httpGet"]
        assert get["path"] == "/healthz" and named[get["port"]] == port
    # Liveness gives up only after the health rule's staleness, and well after one failure.
    refresh = float(_flag(args, "--refresh"))
    live = init["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] >= 2 * refresh
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)


def test_dockerfile_is_multistage_distroless_and_non_root() -> None:
    text = (KIT / "Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, re.M))
    stages = [
        re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], s)
        for s in re.findall(r"^FROM\s+(\S+)", text, re.M)
    ]
    assert len(stages) >= 2
    assert "distroless" in stages[-1]
    final = text[text.rindex("FROM") :]
    user = re.search(r"^USER\s+(\d+)", final, re.M)
    assert user and int(user.group(1)) != 0
    assert re.search(r'^ENTRYPOINT \["python3", "-m", "envelope"\]', final, re.M)
    assert "[aws,vault,k8s]" in text
