"""Shared fixtures (real servers on loopback, started once per test session), the
directory markers, and the session's isolation from the developer's home directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from tests.support.isolation import HomeSnapshot, isolate_home

if TYPE_CHECKING:
    from tests.support.jwt_minter import JwtMinter
    from tests.support.openbao import OpenBao

TESTS = Path(__file__).resolve().parent
MARKER_BY_DIRECTORY = {
    "unit": "unit",
    "integration": "integration",
    "vectors": "vectors",
    "fuzz": "fuzz",
}

REAL_HOME = pytest.StashKey[HomeSnapshot]()


def pytest_configure(config: pytest.Config) -> None:
    """Before any test or server: HOME, XDG dirs and AWS/Vault ambient settings point at
    a temp dir for the whole session, and the real HOME is snapshotted. Hypothesis keeps
    its storage (constants, Unicode tables, patches of failing examples) there too, not
    in a ``.hypothesis`` directory in the checkout."""
    config.stash[REAL_HOME] = HomeSnapshot.take()
    root = isolate_home()
    set_hypothesis_home_dir(root / "hypothesis")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fails the run if the developer's real HOME changed while the suite ran."""
    snapshot = session.config.stash.get(REAL_HOME, None)
    if snapshot is None:
        return
    changes = snapshot.changes()
    if changes:
        session.config.get_terminal_writer().line()
        session.config.get_terminal_writer().line(
            "FAILED: the test session changed the real HOME: " + "; ".join(changes), red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks each test by its directory: tests/unit -> unit, and so on."""
    for item in items:
        try:
            top = Path(item.path).resolve().relative_to(TESTS).parts[0]
        except ValueError:
            continue
        marker = MARKER_BY_DIRECTORY.get(top)
        if marker is None:
            raise pytest.UsageError(
                f"{item.nodeid}: tests live in tests/unit, tests/integration, tests/vectors "
                "or tests/fuzz"
            )
        item.add_marker(marker)


AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
}


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto in server mode (KMS, S3, STS over real HTTP) on a free loopback port."""
    from moto.server import ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in AWS_TEST_ENV}
    os.environ.update(AWS_TEST_ENV)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _running_openbao(work: Path, *, tls: bool) -> Iterator[OpenBao]:
    from tests.support.openbao import OpenBao
    from tests.support.pki import make_tls_files

    server = OpenBao(work, make_tls_files(work / "pki") if tls else None).start()
    try:
        server.setup_engines()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    """A real OpenBao dev server with transit, jwt and approle enabled."""
    yield from _running_openbao(tmp_path_factory.mktemp("openbao"), tls=False)


@pytest.fixture(scope="session")
def openbao_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    """OpenBao with a second, TLS listener that requires client certificates."""
    yield from _running_openbao(tmp_path_factory.mktemp("openbao-tls"), tls=True)


@pytest.fixture(scope="session")
def jwt_minter(openbao: OpenBao) -> JwtMinter:
    """One service-account-token issuer for the whole session, trusted by OpenBao's jwt
    auth method (configured once, so test order does not matter)."""
    from tests.support.jwt_minter import ISSUER, JwtMinter

    minter = JwtMinter()
    openbao.write(
        "auth/jwt/config", jwt_validation_pubkeys=[minter.public_pem], bound_issuer=ISSUER
    )
    return minter
