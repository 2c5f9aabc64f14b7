"""``envelope.plugin``: a Kubernetes KMS v2 plugin over envelope's backends.

kube-apiserver encrypts Secrets (and other resources) in etcd with DEKs derived from a
seed it asks this plugin to wrap (``Encrypt``) and unwrap (``Decrypt``) over gRPC on a
Unix socket; ``Status`` reports health and the current KEK. Any envelope backend can hold
the KEK (local keyring, AWS KMS, Vault / OpenBao Transit, several custodians, k-of-n),
optionally split with a node-local cluster-secret part. See docs/kms-plugin.md.

>>> from envelope.kms import LocalKms
>>> plugin = start_plugin(lambda: [LocalKms.ephemeral()], "unix:///tmp/x.sock")  # doctest: +SKIP
>>> plugin.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from envelope._keys.cluster import ClusterSecret
from envelope.kms import KmsBackend
from envelope.plugin._metrics import Metrics, serve_metrics
from envelope.plugin._server import JsonLogFormatter, PluginServer, parse_owner, socket_path
from envelope.plugin._service import KmsService

__all__ = [
    "JsonLogFormatter",
    "KmsService",
    "Metrics",
    "PluginServer",
    "parse_owner",
    "serve",
    "start_plugin",
]


def start_plugin(
    build: Callable[[], Sequence[KmsBackend]],
    listen: str,
    *,
    cluster_secret: ClusterSecret | None = None,
    threshold: int | None = None,
    probe_interval: float = 10.0,
    cache_ttl: float = 3600.0,
    cache_entries: int = 4096,
    workers: int = 32,
    max_concurrent: int = 256,
    socket_owner: tuple[int, int] | None = None,
    metrics_port: int | None = None,
    metrics_address: str = "127.0.0.1",
    grace: float = 10.0,
    request_timeout: float = 10.0,
) -> PluginServer:
    """Builds the service, probes the KMS once, and serves on ``listen`` (non-blocking).

    Args:
        build: returns the KMS backends (called again when a local keyring file changes).
        listen: ``unix:///absolute/path.sock``.
        cluster_secret: the node-local cluster-secret part, or None.
        threshold: k of a k-of-n split across the backends, or None.
        probe_interval: seconds between KMS probes behind ``Status``.
        cache_ttl: seconds an unwrapped DEK seed keeps decrypting without the KMS.
        cache_entries: unwrapped DEK seeds held at most.
        workers: gRPC handler threads.
        max_concurrent: calls admitted at once (more get RESOURCE_EXHAUSTED).
        socket_owner: ``(uid, gid)`` for the socket (see :func:`parse_owner`).
        metrics_port: serve Prometheus metrics on this TCP port (0: any free port).
        metrics_address: the metrics server's bind address.
        grace: seconds in-flight calls get on shutdown.
        request_timeout: seconds a call may take (or the client's deadline, if sooner).

    Returns:
        The running server; ``server.metrics_server`` is the metrics HTTP server or None.

    Raises:
        ConfigError: bad settings, or the socket cannot be created.
        KmsError: the backends cannot be built.
        OSError: the metrics port cannot be bound.
    """
    path = socket_path(listen)
    metrics = Metrics()
    service = KmsService(
        build,
        cluster_secret=cluster_secret,
        threshold=threshold,
        probe_interval=probe_interval,
        cache_ttl=cache_ttl,
        cache_entries=cache_entries,
        metrics=metrics,
        request_timeout=request_timeout,
        kms_threads=workers,
    )
    # The first probe learns the KEK versions (part of key_id) before serving, but a
    # KMS that is down delays serving by at most one request timeout: the probe goes
    # on in the background, and Status says it has not answered.
    first_probe = threading.Thread(
        target=service.monitor.refresh, name="kms-first-probe", daemon=True
    )
    first_probe.start()
    first_probe.join(request_timeout)
    server = PluginServer(
        service,
        path,
        workers=workers,
        max_concurrent=max_concurrent,
        owner=socket_owner,
        grace=grace,
    )
    server.start()
    if metrics_port is not None:
        server.metrics_server = serve_metrics(metrics, metrics_port, metrics_address)
    return server


def serve(build: Callable[[], Sequence[KmsBackend]], listen: str, **options: object) -> None:
    """:func:`start_plugin`, then block until SIGTERM/SIGINT has drained the server.

    Raises:
        As :func:`start_plugin`.
    """
    server = start_plugin(build, listen, **options)  # type: ignore[arg-type]
    server.stop_on_signals()
    server.wait()
    if server.metrics_server is not None:
        server.metrics_server.shutdown()
