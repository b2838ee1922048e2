"""The TURN prober against Debian's real coturn on loopback ports: UDP, TCP and TLS."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from callplatform.probes.credentials import RestAuth, StaticAuth
from callplatform.probes.tls import TlsOptions
from callplatform.probes.turn import TurnEndpoint, probe_allocate, probe_binding

from .servers import (
    SHARED_SECRET,
    STATIC_PASSWORD,
    STATIC_USER,
    Coturn,
    free_port,
    make_self_signed,
    running_coturn,
)

pytestmark = pytest.mark.coturn


def endpoint(server: Coturn, transport: str) -> TurnEndpoint:
    port = server.tls_port if transport == "tls" else server.port
    return TurnEndpoint("127.0.0.1", port, transport, server_name="localhost")


def trusting(server: Coturn) -> TlsOptions:
    return TlsOptions(ca_file=str(server.tls.cert))


async def wait_for_no_sessions(server: Coturn, deadline_seconds: float = 10) -> int:
    deadline = time.monotonic() + deadline_seconds
    while True:
        sessions = await asyncio.to_thread(server.total_sessions)
        if sessions == 0 or time.monotonic() > deadline:
            return sessions
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_binding_returns_the_mapped_address(coturn_static: Coturn, transport: str) -> None:
    result = await probe_binding(endpoint(coturn_static, transport), tls=trusting(coturn_static))
    assert result.success, result
    assert (result.component, result.probe, result.reason) == ("coturn", transport, "")
    assert result.message.startswith("mapped address 127.0.0.1:")
    if transport == "tls":
        assert result.cert_not_after == coturn_static.tls.not_after.timestamp()
        assert "tls" in result.phases
    else:
        assert result.cert_not_after is None


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_static_allocate_succeeds_and_leaves_no_allocation(
    coturn_static: Coturn, transport: str
) -> None:
    auth = StaticAuth(STATIC_USER, STATIC_PASSWORD)
    for _ in range(3):
        result = await probe_allocate(endpoint(coturn_static, transport), auth, tls=trusting(coturn_static))
        assert result.success, result
        assert result.message.startswith("relayed address 127.0.0.1:") and result.message.endswith("released")
        assert {"allocate", "release"} <= result.phases.keys()
    assert await wait_for_no_sessions(coturn_static) == 0


async def test_session_counter_sees_an_unreleased_allocation(coturn_static: Coturn) -> None:
    """The counter the leak tests rely on does count a live allocation (so 0 means released)."""
    from callplatform.probes import turn

    connection = await turn._open(endpoint(coturn_static, "udp"), TlsOptions(), turn.RetransmitPolicy(), {})
    try:
        credentials = StaticAuth(STATIC_USER, STATIC_PASSWORD).credentials(time.time())
        allocation = await turn.turn_allocate(connection, credentials)
        listing = await asyncio.to_thread(coturn_static.cli, "ps")
        assert "Total sessions: 1" in listing
        assert f"relay addr 127.0.0.1:{allocation.relayed[1]}" in listing
        await turn.turn_release(connection, allocation, credentials)
    finally:
        connection.close()
    assert await wait_for_no_sessions(coturn_static) == 0


async def test_wrong_password_is_auth_failed_without_the_password(
    coturn_static: Coturn, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        result = await probe_allocate(
            endpoint(coturn_static, "udp"), StaticAuth(STATIC_USER, "not-the-password-123")
        )
    assert "not-the-password-123" not in caplog.text
    assert (result.success, result.reason) == (False, "auth_failed")
    assert "401" in result.message
    assert "not-the-password-123" not in repr(result)
    assert STATIC_PASSWORD not in repr(result)


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_rest_credentials_allocate(coturn_rest: Coturn, transport: str) -> None:
    result = await probe_allocate(
        endpoint(coturn_rest, transport), RestAuth(SHARED_SECRET), tls=trusting(coturn_rest)
    )
    assert result.success, result
    assert SHARED_SECRET not in repr(result)
    assert await wait_for_no_sessions(coturn_rest) == 0


async def test_rest_credentials_from_the_wrong_secret_are_auth_failed(coturn_rest: Coturn) -> None:
    result = await probe_allocate(endpoint(coturn_rest, "udp"), RestAuth("some-other-secret-0123456789"))
    assert (result.success, result.reason) == (False, "auth_failed")


async def test_expired_rest_credentials_are_auth_failed(coturn_rest: Coturn) -> None:
    result = await probe_allocate(
        endpoint(coturn_rest, "udp"), RestAuth(SHARED_SECRET), clock=lambda: time.time() - 3600
    )
    assert (result.success, result.reason) == (False, "auth_failed")


async def test_untrusted_certificate_is_tls_error(coturn_static: Coturn) -> None:
    result = await probe_binding(endpoint(coturn_static, "tls"), tls=TlsOptions())
    assert (result.success, result.reason) == (False, "tls_error")


async def test_wrong_name_is_tls_error(coturn_static: Coturn) -> None:
    wrong = TurnEndpoint("127.0.0.1", coturn_static.tls_port, "tls", server_name="turn.example.org")
    result = await probe_binding(wrong, tls=trusting(coturn_static))
    assert (result.success, result.reason) == (False, "tls_error")


async def test_insecure_mode_still_reports_expiry(coturn_static: Coturn) -> None:
    result = await probe_binding(endpoint(coturn_static, "tls"), tls=TlsOptions(insecure=True))
    assert result.success
    assert result.cert_not_after == coturn_static.tls.not_after.timestamp()


async def test_certificate_close_to_expiry_is_cert_expiring(tmp_path: Path) -> None:
    short_lived = make_self_signed(tmp_path / "tls", days=3)
    with running_coturn(tmp_path / "coturn", "static", tls=short_lived) as server:
        result = await probe_binding(endpoint(server, "tls"), tls=trusting(server))
    assert (result.success, result.reason) == (False, "cert_expiring")
    assert result.cert_not_after == short_lived.not_after.timestamp()
    assert "expires in 3.0 days" in result.message or "expires in 2.9 days" in result.message


async def test_stopped_server_fails_within_the_deadline(tmp_path: Path) -> None:
    ports = (free_port(), free_port(), free_port())
    with running_coturn(tmp_path / "coturn", "static", ports=ports) as server:
        assert (await probe_binding(endpoint(server, "udp"))).success
    deadline = 2.0
    for transport, expected in (("udp", {"timeout", "refused"}), ("tcp", {"refused"}), ("tls", {"refused"})):
        started = time.monotonic()
        result = await probe_binding(endpoint(server, transport), timeout=deadline)
        elapsed = time.monotonic() - started
        assert not result.success
        assert result.reason in expected, result
        assert elapsed < deadline + 0.5
        allocate = await probe_allocate(
            endpoint(server, transport), StaticAuth(STATIC_USER, STATIC_PASSWORD), timeout=deadline
        )
        assert allocate.reason in expected
