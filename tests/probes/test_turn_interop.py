"""The probe matrix against two independent TURN servers, coturn and pion/turn, plus legacy stund.

Each server runs on loopback. The same probes must give the same verdicts on both:
Binding over UDP, TCP and TLS; Allocate with static and REST credentials; a wrong
password is `auth_failed` (pion answers it with 400, coturn with 401); and a
password with a no-break space authenticates, since both key on the raw UTF-8 bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from callplatform.probes.credentials import RestAuth, StaticAuth
from callplatform.probes.tls import TlsOptions
from callplatform.probes.turn import TurnEndpoint, probe_allocate, probe_binding

from .servers import (
    SHARED_SECRET,
    STATIC_PASSWORD,
    STATIC_USER,
    running_coturn,
    running_pion,
    running_stund,
)

pytestmark = pytest.mark.coturn
SERVERS = ("coturn", "pion")
NBSP_USER, NBSP_PASSWORD = "nbspuser", "no-break\u00a0space-password-42"


@dataclass(frozen=True)
class Server:
    kind: str
    port: int
    tls_port: int
    ca_file: Path

    def endpoint(self, transport: str) -> TurnEndpoint:
        port = self.tls_port if transport == "tls" else self.port
        return TurnEndpoint("127.0.0.1", port, transport, server_name="localhost")

    @property
    def tls(self) -> TlsOptions:
        return TlsOptions(ca_file=str(self.ca_file))


def _running(kind: str, mode: str, workdir: Path) -> Iterator[Server]:
    if kind == "coturn":
        with running_coturn(workdir, mode) as coturn:
            yield Server(kind, coturn.port, coturn.tls_port, coturn.tls.cert)
        return
    with running_pion(workdir, mode, users={STATIC_USER: STATIC_PASSWORD, NBSP_USER: NBSP_PASSWORD}) as pion:
        yield Server(kind, pion.port, pion.tls_port, pion.tls.cert)


@pytest.fixture(scope="module", params=SERVERS)
def static_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    yield from _running(request.param, "static", tmp_path_factory.mktemp(f"{request.param}-static"))


@pytest.fixture(scope="module", params=SERVERS)
def rest_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _running(request.param, "rest", tmp_path_factory.mktemp(f"{request.param}-rest"))


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_binding(static_server: Server, transport: str) -> None:
    result = await probe_binding(static_server.endpoint(transport), tls=static_server.tls)
    assert result.success, result
    assert result.message.startswith("mapped address 127.0.0.1:")


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_static_allocate(static_server: Server, transport: str) -> None:
    auth = StaticAuth(STATIC_USER, STATIC_PASSWORD)
    result = await probe_allocate(static_server.endpoint(transport), auth, tls=static_server.tls)
    assert result.success, result
    assert re.fullmatch(r"relayed address 127\.0\.0\.1:\d+, released", result.message), result.message


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_rest_allocate(rest_server: Server, transport: str) -> None:
    result = await probe_allocate(
        rest_server.endpoint(transport), RestAuth(SHARED_SECRET), tls=rest_server.tls
    )
    assert result.success, result


async def test_rest_credentials_from_another_secret_are_auth_failed(rest_server: Server) -> None:
    result = await probe_allocate(rest_server.endpoint("udp"), RestAuth("another-secret-0123456789abcdef"))
    assert (result.success, result.reason) == (False, "auth_failed"), result


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_wrong_password_is_auth_failed(static_server: Server, transport: str) -> None:
    result = await probe_allocate(
        static_server.endpoint(transport), StaticAuth(STATIC_USER, "wrong-password-0123")
    )
    assert (result.success, result.reason) == (False, "auth_failed"), result
    expected_code = "401" if static_server.kind == "coturn" else "400"
    assert expected_code in result.message
    assert "wrong-password-0123" not in repr(result)


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_password_with_a_no_break_space_authenticates(kind: str, tmp_path: Path) -> None:
    """SASLprep would map U+00A0 to a space; the servers hash it as sent (0xC2 0xA0)."""
    if kind == "coturn":
        with running_coturn(tmp_path, "static", user=(NBSP_USER, NBSP_PASSWORD)) as coturn:
            server = Server(kind, coturn.port, coturn.tls_port, coturn.tls.cert)
            result = await probe_allocate(server.endpoint("udp"), StaticAuth(NBSP_USER, NBSP_PASSWORD))
    else:
        with running_pion(tmp_path, "static", users={NBSP_USER: NBSP_PASSWORD}) as pion:
            server = Server(kind, pion.port, pion.tls_port, pion.tls.cert)
            result = await probe_allocate(server.endpoint("udp"), StaticAuth(NBSP_USER, NBSP_PASSWORD))
    assert result.success, result


async def test_legacy_stund_answers_our_binding(tmp_path: Path) -> None:
    """stund 0.97 drops a Binding whose SOFTWARE attribute needs padding (ours used to be 18 bytes)."""
    with running_stund(tmp_path) as port:
        result = await probe_binding(TurnEndpoint("127.0.0.1", port, "udp"), timeout=2)
    assert result.success, result
    assert result.message.startswith("mapped address 127.0.0.1:")


def test_the_pion_version_is_pinned_once() -> None:
    """build.sh keys its cache on versions.env; the wrapper module's go.mod must build the same version."""
    controlplane = Path(__file__).resolve().parents[1] / "controlplane"
    versions = dict(
        line.split("=", 1) for line in (controlplane / "versions.env").read_text().splitlines() if "=" in line
    )
    go_mod = (controlplane / "pion" / "go.mod").read_text()
    assert f"github.com/pion/turn/v4 {versions['PION_TURN_VERSION']}\n" in go_mod
