"""What a pickled :class:`~envelope.Envelope` carries: references to its configuration.

A KMS backend, cluster secret or key store remembers the settings it was built from
(``_origin``: a settings tree of file paths, key ids, regions, addresses, auth methods and
variable names, set by :func:`~envelope.settings.build_kms`,
:func:`~envelope.settings.load_cluster_secret`, ``LocalKms.open``, ``AwsKms(...)``,
``ClusterSecret.from_file`` / ``from_env``). A :class:`Recipe` is those trees plus the
Envelope's options; unpickling builds every part again from them in the new process:
KMS clients, credentials (from that process's environment and files) and an empty
data-key cache. Key bytes are never part of it: a part built from raw key material
(``ClusterSecret.from_bytes``, ``LocalKms.ephemeral()``, a keyring opened with a
passphrase string, a backend given a ready client) cannot be pickled.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from envelope._keys.cache import DataKeyCache
from envelope._keys.source import KeySource
from envelope.keystore import KeyStore
from envelope.settings._build import build_keystore, build_kms, load_cluster_secret
from envelope.settings._model import (
    ClusterSecretSettings,
    KeyStoreSettings,
    KmsSettings,
    Settings,
)

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")

__all__ = ["Recipe", "arguments", "arguments_from_recipe", "rebuild", "recipe_of", "reduce"]

_HOW = (
    "an Envelope pickles as references to its configuration (paths, key ids, variable "
    "names), never key bytes: build it with Envelope.from_settings(Settings(...)), or from "
    "LocalKms.open(path) / AwsKms(key_id) / ClusterSecret.from_file(path) / .from_env(name)"
)


@dataclass(frozen=True, slots=True)
class Recipe:
    """Settings trees of every part of an Envelope, and its options (no key bytes)."""

    kms: tuple[dict[str, Any], ...]
    cluster_secret: dict[str, Any] | None
    keystore: dict[str, Any] | None
    threshold: int | None
    cache: dict[str, float] | None
    threads: int
    accept_unsplit: bool = False


def _origin(obj: object, what: str) -> dict[str, Any]:
    tree = getattr(obj, "_origin", None)
    if not isinstance(tree, dict):
        raise pickle.PicklingError(
            f"cannot pickle this Envelope: {what} {obj!r} holds key material or a client "
            f"given directly (no reference to its configuration); {_HOW}"
        )
    return tree


def _keystore_tree(store: KeyStore) -> dict[str, Any]:
    tree: dict[str, Any] = {"uri": store.uri}
    meta = getattr(getattr(store, "_s3", None), "meta", None)
    if meta is not None:  # S3: the endpoint and region its client was made for
        tree["endpoint"] = getattr(meta, "endpoint_url", None)
        tree["region"] = getattr(meta, "region_name", None)
    return tree


def recipe_of(keys: KeySource, threads: int) -> Recipe:
    """The recipe of an Envelope's key source.

    Raises:
        pickle.PicklingError: a part was built from raw key material or a ready client
            (the message names it and says how to build it instead).
    """
    kms = tuple(_origin(b, "its KMS backend") for b in keys.backends)
    cluster = None if keys.cluster is None else _origin(keys.cluster, "its cluster secret")
    store = None if keys.keystore is None else _keystore_tree(keys.keystore)
    c = keys.cache
    limits = None
    if c is not None:
        limits = {
            "max_age": c.max_age,
            "max_messages": c.max_messages,
            "max_bytes": c.max_bytes,
            "max_entries": c.max_entries,
        }
    return Recipe(kms, cluster, store, keys.threshold, limits, threads, keys.policy.accept_unsplit)


def reduce(cls: type, keys: KeySource, threads: int) -> tuple[Any, ...]:
    """``Envelope.__reduce__``: rebuild ``cls`` from the recipe of ``keys``.

    Raises:
        pickle.PicklingError: as :func:`recipe_of`.
    """
    return (rebuild, (cls, recipe_of(keys, threads)))


def rebuild(cls: Callable[..., T], recipe: Recipe) -> T:
    """An Envelope (``cls``) from a recipe: every part built again here, cache empty.

    Raises:
        ConfigError: a part cannot be built in this process (a file missing on this
            worker, a variable unset, ...; the message names it).
    """
    return cls(**arguments_from_recipe(recipe))


def arguments(settings: Settings) -> dict[str, Any]:
    """``Envelope(...)``'s arguments for what ``settings`` describe.

    Raises:
        ConfigError: a part cannot be built (the message names it).
    """
    cs, ks = settings.cluster_secret, settings.keystore
    return {
        "kms": [build_kms(settings.kms)],
        "cluster_secret": None if cs is None else load_cluster_secret(cs),
        "keystore": None if ks is None else build_keystore(ks),
    }


def arguments_from_recipe(recipe: Recipe) -> dict[str, Any]:
    """``Envelope(...)``'s arguments from a recipe (a new, empty cache).

    Raises:
        ConfigError: as :func:`rebuild`.
    """
    cluster = None
    if recipe.cluster_secret is not None:
        cluster = load_cluster_secret(ClusterSecretSettings.model_validate(recipe.cluster_secret))
    store = None
    if recipe.keystore is not None:
        store = build_keystore(KeyStoreSettings.model_validate(recipe.keystore))
    cache = None
    if recipe.cache is not None:
        cache = DataKeyCache(
            max_age=recipe.cache["max_age"],
            max_messages=int(recipe.cache["max_messages"]),
            max_bytes=int(recipe.cache["max_bytes"]),
            max_entries=int(recipe.cache["max_entries"]),
        )
    return {
        "kms": [build_kms(KmsSettings.model_validate(t)) for t in recipe.kms],
        "cluster_secret": cluster,
        "keystore": store,
        "cache": cache,
        "threshold": recipe.threshold,
        "threads": recipe.threads,
        "accept_unsplit": recipe.accept_unsplit,
    }
