"""The settings models without pydantic: lax coercion as pydantic's, immutability, copies,
dumps, pickling, and validation inside a pydantic model (``envelope init``'s config)."""

from __future__ import annotations

import copy
import pickle
from collections import deque
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, TypeAdapter
from pydantic import Field as PydanticField
from pydantic import ValidationError as PydanticValidationError

from envelope.errors import ConfigError
from envelope.k8s._config import parse_config
from envelope.settings import (
    ClusterSecretSettings,
    KeyStoreSettings,
    KmsSettings,
    Settings,
    ValidationError,
    VaultSettings,
    config_error,
)
from envelope.settings._types import INVALID, check_for, greater_than

# -- each field type checks and coerces as pydantic's lax mode does -------------------------

INPUTS: list[Any] = [
    "x", "", " 2 ", "1.5", "1_0", "inf", "nan", "-1", "0", "1", "true", "TRUE", "On", "no",
    " true ", "maybe", "local", "gcp", b"ab", b"\xff", 0, 1, 2, -1, 0.0, 1.0, 1.5, True, False,
    None, ["a"], ("a", "b"), ["a", 1, None], {"a"}, deque(["a"]), {"a": 1}, range(2),
]  # fmt: skip
TYPES: list[tuple[Any, Any]] = [
    (str | None, check_for(str | None)),
    (bool, check_for(bool)),
    (float, check_for(float)),
    (Annotated[float, PydanticField(gt=0)], greater_than(0, check_for(float))),
    (tuple[str, ...], check_for(tuple[str, ...])),
    (Literal["local", "aws", "vault"], check_for(Literal["local", "aws", "vault"])),
]


def _pydantic(annotation: Any, value: Any) -> tuple[str, Any]:
    try:
        return "ok", TypeAdapter(annotation).validate_python(value)
    except PydanticValidationError as exc:
        return "error", [(e["type"], e["loc"], e["msg"]) for e in exc.errors()]


def _ours(check: Any, value: Any) -> tuple[str, Any]:
    errors: list[dict[str, Any]] = []
    found = check(value, (), errors, {})
    if errors:
        assert found is INVALID
        return "error", [(e["type"], e["loc"], e["msg"]) for e in errors]
    return "ok", found


@pytest.mark.parametrize(("annotation", "check"), TYPES, ids=lambda t: repr(t)[:30])
def test_each_field_type_accepts_and_refuses_what_pydantic_does(
    annotation: Any, check: Any
) -> None:
    for value in INPUTS:
        expected, got = _pydantic(annotation, value), _ours(check, value)
        if expected[0] == "ok" and got[0] == "ok" and expected[1] != expected[1]:
            assert got[1] != got[1], value  # nan
            continue
        assert got == expected, value


def test_strings_from_the_environment_and_flags_are_coerced() -> None:
    v = VaultSettings.model_validate({"timeout": "1m30s", "skip_verify": "t", "deadline": "5"})
    assert (v.timeout, v.skip_verify, v.deadline) == (90.0, True, 5.0)
    assert VaultSettings.model_validate({"timeout": "0"}).timeout == 10.0  # bao: 0 = default
    k = KmsSettings.model_validate({"allowed_keys": ["a", " b "]})
    assert k.allowed_keys == ("a", "b")
    c = ClusterSecretSettings.model_validate({"file": "/p", "previous": ["/o1", "/o2"]})
    assert c.previous == ("/o1", "/o2")


def test_the_constructor_validates_and_coerces_as_model_validate_does() -> None:
    assert VaultSettings(timeout="1m").timeout == 60.0  # type: ignore[arg-type]
    assert Settings(kms={"kind": "aws", "key": "k"}).kms == KmsSettings(  # type: ignore[arg-type]
        kind="aws", key="k"
    )
    with pytest.raises(ValidationError) as info:
        KeyStoreSettings()  # type: ignore[call-arg]
    assert [(e["type"], e["loc"]) for e in info.value.errors()] == [("missing", ("uri",))]
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        VaultSettings(nope=1)  # type: ignore[call-arg]


def test_problems_are_records_in_field_order_then_unknown_keys() -> None:
    with pytest.raises(ValidationError) as info:
        Settings.model_validate(
            {"zz": 0, "kms": {"vault": {"deadline": 0, "timeout": "x"}, "kind": "gcp"}}
        )
    assert [(e["type"], e["loc"]) for e in info.value.errors()] == [
        ("literal_error", ("kms", "kind")),
        ("value_error", ("kms", "vault", "timeout")),
        ("greater_than", ("kms", "vault", "deadline")),
        ("extra_forbidden", ("zz",)),
    ]
    assert isinstance(info.value, ValueError) and info.value.error_count() == 4
    assert [e["input"] for e in info.value.errors()] == ["gcp", "x", 0, 0]
    assert str(info.value).startswith("4 validation errors for Settings\nkms.kind\n  Input")


def test_a_problem_records_the_value_given() -> None:
    with pytest.raises(ValidationError) as info:
        KmsSettings.model_validate({"allowed_keys": ["a", " "]})  # refused after coercion
    assert info.value.errors()[0]["input"] == ["a", " "]


def test_a_rule_across_fields_waits_for_valid_fields_and_sees_the_context() -> None:
    with pytest.raises(ValidationError) as info:
        KmsSettings.model_validate({"kind": "vault", "region": 1})
    assert [e["type"] for e in info.value.errors()] == ["string_type"]  # not "needs 'key'"
    tree = {"kms": {"kind": "vault"}}
    with pytest.raises(ValidationError, match="needs 'key'"):
        Settings.model_validate(tree)
    assert Settings.model_validate(tree, context={"discover": True}).kms.key is None


def test_settings_are_immutable_values() -> None:
    s = Settings.model_validate({"kms": {"kind": "aws", "key": "k"}, "keystore": {"uri": "/k"}})
    with pytest.raises(ValidationError, match="Instance is frozen"):
        s.keystore = None  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Instance is frozen"):
        del s.kms
    again = Settings.model_validate(s.model_dump())
    assert again == s and hash(again) == hash(s) and again is not s
    assert s != Settings() and s != s.kms and s.kms != {"kind": "aws", "key": "k"}
    assert repr(s.keystore) == "KeyStoreSettings(uri='/k', endpoint=None, region=None)"
    assert pickle.loads(pickle.dumps(s)) == s
    assert copy.deepcopy(s) == s and copy.copy(s) == s


def test_model_copy_replaces_fields_without_validating() -> None:
    k = KmsSettings(kind="aws", allowed_keys=("*",))
    plain = k.model_copy(update={"allowed_keys": ()})  # no key, no allow-list: as pydantic
    assert (plain.kind, plain.key, plain.allowed_keys) == ("aws", None, ())
    assert k.allowed_keys == ("*",) and plain.vault is k.vault
    assert k.model_copy(deep=True).vault is not k.vault


def test_model_dump_json_without_defaults() -> None:
    k = KmsSettings.model_validate(
        {"kind": "vault", "key": "k", "vault": {"timeout": "5"}, "allowed_keys": ["a"]}
    )
    assert k.model_dump(mode="json", exclude_defaults=True) == {
        "kind": "vault",
        "key": "k",
        "vault": {"timeout": 5.0},
        "allowed_keys": ["a"],
    }
    assert k.model_dump()["allowed_keys"] == ("a",)
    assert KeyStoreSettings(uri="/k").model_dump(exclude_defaults=True) == {"uri": "/k"}
    assert list(KmsSettings.model_fields)[:2] == ["kind", "key"]


# -- inside a pydantic model -------------------------------------------------------------------


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kms: KmsSettings
    keystore: KeyStoreSettings | None = None
    name: str = "x"


def test_a_pydantic_model_validates_a_nested_settings_model_with_its_context() -> None:
    outer = _Outer.model_validate({"kms": {"kind": "aws", "allowed_keys": "a b"}})
    assert outer.kms == KmsSettings(kind="aws", allowed_keys=("a", "b"))
    given = KmsSettings(kind="local")
    assert _Outer(kms=given).kms is given
    aws = {"kms": {"kind": "aws"}}
    with pytest.raises(PydanticValidationError):
        _Outer.model_validate(aws)
    assert _Outer.model_validate(aws, context={"discover": True}).kms.key is None


def test_nested_problems_keep_their_messages_and_locations() -> None:
    data = {
        "kms": {"kind": "vault", "key": "k", "vault": {"zz": 1, "deadline": 0}},
        "keystore": {"uri": "gs://b"},
        "name": 3,
    }
    with pytest.raises(PydanticValidationError) as info:
        _Outer.model_validate(data)
    assert str(config_error(info.value, _Outer, "test")).splitlines() == [
        "invalid envelope test:",
        "  kms.vault.deadline: Input should be greater than 0",
        "  kms.vault.zz: unknown field 'zz'; allowed: mount, auth, ca_bundle, client_cert, "
        "client_key, namespace, ca_path, skip_verify, tls_server_name, timeout, deadline",
        "  keystore.uri: key store 'gs://b': use s3://bucket/prefix, file:///dir or a directory",
        "  name: Input should be a valid string",
    ]


def test_the_init_config_reports_every_nested_problem() -> None:
    text = (
        "kms: {kind: vault, key: k, vault: {auth: {role: r}, timeout: '-1', skip_verify: no}}\n"
        "cluster_secret: {file: /p, previous: [/o, 2]}\n"
        "secrets: [{name: a, source: {inline: eA==}, context: {}}]\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, "init.yaml")
    assert str(info.value).splitlines() == [
        "invalid envelope config init.yaml:",
        "  kms.vault.timeout: Input should be greater than 0",
        "  cluster_secret.previous.1: Input should be a valid string",
    ]
