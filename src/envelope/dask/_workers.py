"""Per worker process: one Envelope per configuration, and a job's keys while it runs.

Tasks carry a *spec*: the pickled Envelope (references to its configuration only) or
the pickled settings. Each worker process builds the Envelope once (memoised, bounded)
and, for the ``"job"`` strategy, unwraps the job's data key once per column.
"""

from __future__ import annotations

import contextlib
import pickle
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from envelope._batch import BatchHeader
from envelope._batch.sealer import BatchOpener, BatchSealer
from envelope._envelope import Envelope
from envelope._format.context import Context
from envelope.arrow._table import _column_ctx, _internals

if TYPE_CHECKING:
    from envelope.settings import Settings

__all__ = ["Strategy", "finish", "openers", "plan", "sealers"]

Strategy = Literal["partition", "job"]
_MEMO_SIZE = 16

# -- per worker process: one Envelope per configuration, job keys while a job runs ------

_lock = threading.Lock()
_envs: OrderedDict[bytes, Envelope] = OrderedDict()
_job_keys: OrderedDict[tuple[bytes, str, Context], BatchSealer | BatchOpener] = OrderedDict()


def _spec(env: Envelope | Settings) -> bytes:
    """What tasks carry: the pickled Envelope (references only) or settings.

    Raises:
        pickle.PicklingError: the Envelope holds raw key material (see Envelope.__reduce__).
    """
    if isinstance(env, Envelope):
        return pickle.dumps(env)
    return pickle.dumps(("settings", env))


def _env_of(spec: bytes) -> Envelope:
    with _lock:
        env = _envs.get(spec)
        if env is not None:
            _envs.move_to_end(spec)
            return env
    loaded = pickle.loads(spec)  # noqa: S301 - our own bytes, from the client
    if isinstance(loaded, tuple):
        loaded = Envelope.from_settings(loaded[1])
    assert isinstance(loaded, Envelope)
    with _lock:
        _envs[spec] = loaded
        while len(_envs) > _MEMO_SIZE:
            _envs.popitem(last=False)
    return loaded


def _job_key(spec: bytes, job: str, ctx: Context, header: bytes | None) -> Any:
    """This process's sealer (``header`` given) or opener for column context ``ctx`` of
    ``job``: the data key is unwrapped once per process and kept while the job runs."""
    memo = (spec, job, ctx)
    with _lock:
        found = _job_keys.get(memo)
        if found is not None:
            return found
    keys, threads = _internals(_env_of(spec))
    made: BatchSealer | BatchOpener
    if header is not None:
        made = BatchSealer.like(keys, header, ctx, threads)
    else:
        made = BatchOpener(keys, None, threads)
    with _lock:
        _job_keys[memo] = made
        while len(_job_keys) > _MEMO_SIZE:
            _job_keys.popitem(last=False)[1].close()
    return made


def _release_job(job: str) -> None:
    """Zeroes and drops this process's keys of ``job`` (run on every worker at the end)."""
    with _lock:
        for memo in [m for m in _job_keys if m[1] == job]:
            _job_keys.pop(memo).close()


def _job_headers(
    env: Envelope, columns: Sequence[str], context: Mapping[str, str] | None
) -> dict[str, bytes]:
    """One data key per column for a whole job: a header of zero records each."""
    keys, threads = _internals(env)
    out = {}
    for name in columns:
        with BatchSealer.fresh(keys, _column_ctx(context, name), threads) as sealer:
            out[name] = sealer.seal([]).header.to_bytes()
    return out


def plan(
    env: Envelope | Settings,
    columns: Sequence[str],
    context: Mapping[str, str] | None,
    strategy: Strategy,
    encrypting: bool,
) -> tuple[bytes, str | None, dict[str, bytes] | None]:
    if strategy not in ("partition", "job"):
        raise ValueError('strategy must be "partition" or "job"')
    spec = _spec(env)
    if strategy == "partition":
        return spec, None, None
    job = secrets.token_hex(8)
    if not encrypting:
        return spec, job, None
    client_env = env if isinstance(env, Envelope) else _env_of(spec)
    return spec, job, _job_headers(client_env, columns, context)


def sealers(spec: bytes, job: str | None, headers: dict[str, bytes] | None) -> Any:
    if job is None or headers is None:
        keys, threads = _internals(_env_of(spec))
        return lambda ctx: (BatchSealer.fresh(keys, ctx, threads), True)
    by_ctx = {}
    for h in headers.values():
        ctx = _column_ctx_of(h)
        by_ctx[ctx] = _job_key(spec, job, ctx, h)
    return lambda ctx: (by_ctx[ctx], False)


def _column_ctx_of(header: bytes) -> Context:
    return BatchHeader.from_bytes(header).fields.context


def openers(spec: bytes, job: str | None) -> Any:
    keys, threads = _internals(_env_of(spec))
    if job is None:
        return lambda expected: (BatchOpener(keys, expected, threads), True)
    return lambda expected: (_job_key(spec, job, expected or (), None), False)


def finish(job: str | None) -> None:
    if job is None:
        return
    with contextlib.suppress(ValueError):  # no distributed client: the local scheduler
        from distributed import get_client  # noqa: PLC0415

        get_client().run(_release_job, job)
    _release_job(job)
