"""Does the TURN server refuse to relay into internal networks? (the CVE-2020-26262 class)

After an authenticated Allocate, the probe asks for a permission to each internal
address below and expects 403 for every one. A permission is state on the TURN
server only: no packet goes to those addresses. IPv6 peers need an IPv6 relay, so
they are tried on an IPv6 allocation; a server without one (coturn relaying from an
IPv4 address answers 440) leaves them untested, and the result says so.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from callplatform.probes.credentials import TurnAuth, TurnCredentials
from callplatform.probes.result import ProbeResult, failure
from callplatform.probes.tls import DEFAULT_TLS, TlsOptions
from callplatform.probes.turn import (
    DEFAULT_RETRANSMIT,
    RELEASE_BUDGET_SECONDS,
    ProbeFailure,
    RetransmitPolicy,
    TurnEndpoint,
    _classify,
    _open,
    turn_allocate,
    turn_create_permission,
    turn_release,
)

INTERNAL_PEERS = (
    "127.0.0.1",
    "0.0.0.0",  # noqa: S104 (a peer to refuse, not an address to bind)
    "10.0.0.1",
    "172.16.0.1",
    "192.168.0.1",
    "100.64.0.1",
    "169.254.169.254",
    "::1",
    "::ffff:127.0.0.1",
    "fd00::1",
    "fe80::1",
    "64:ff9b::a00:1",
)
FORBIDDEN = 403


@dataclass(frozen=True, slots=True)
class AclVerdict:
    refused: tuple[str, ...] = ()
    accepted: tuple[str, ...] = ()
    unexpected: tuple[tuple[str, str], ...] = ()  # (peer, "code phrase"): neither granted nor 403
    untested: tuple[str, ...] = ()
    untested_why: str = ""

    def summary(self) -> str:
        parts = []
        if self.accepted:
            parts.append(f"relays to internal peers: {', '.join(self.accepted)}")
        if self.unexpected:
            parts.append(
                "not refused with 403: " + ", ".join(f"{peer} ({answer})" for peer, answer in self.unexpected)
            )
        parts.append(f"{len(self.refused)} internal peers refused")
        if self.untested:
            parts.append(f"untested: {', '.join(self.untested)} ({self.untested_why})")
        return "; ".join(parts)


async def _permissions_on_one_allocation(
    endpoint: TurnEndpoint,
    credentials: TurnCredentials,
    peers: Sequence[str],
    family: int,
    tls: TlsOptions,
    policy: RetransmitPolicy,
) -> dict[str, tuple[int, str]]:
    connection = await _open(endpoint, tls, policy, {})
    try:
        allocation = await turn_allocate(connection, credentials, family=family)
        try:
            return {
                peer: await turn_create_permission(connection, allocation, credentials, peer)
                for peer in peers
            }
        finally:
            async with asyncio.timeout(RELEASE_BUDGET_SECONDS):
                await turn_release(connection, allocation, credentials)
    finally:
        connection.close()


def judge(
    answers: dict[str, tuple[int, str]], untested: Sequence[str] = (), untested_why: str = ""
) -> AclVerdict:
    """Pure: every peer granted (code 0) is accepted, 403 refused, anything else unexpected."""
    return AclVerdict(
        refused=tuple(peer for peer, (code, _) in answers.items() if code == FORBIDDEN),
        accepted=tuple(peer for peer, (code, _) in answers.items() if code == 0),
        unexpected=tuple(
            (peer, f"{code} {phrase}".strip())
            for peer, (code, phrase) in answers.items()
            if code not in (0, FORBIDDEN)
        ),
        untested=tuple(untested),
        untested_why=untested_why,
    )


async def probe_turn_acl(
    endpoint: TurnEndpoint,
    auth: TurnAuth,
    *,
    peers: Sequence[str] = INTERNAL_PEERS,
    tls: TlsOptions = DEFAULT_TLS,
    timeout: float = 5.0,
    policy: RetransmitPolicy = DEFAULT_RETRANSMIT,
    clock: Callable[[], float] = time.time,
) -> ProbeResult:
    """Probe "acl" of component "coturn_acl": success only when every tested peer is refused with 403."""
    started = time.monotonic()
    credentials = auth.credentials(clock())
    v4 = [peer for peer in peers if ipaddress.ip_address(peer).version == 4]
    v6 = [peer for peer in peers if ipaddress.ip_address(peer).version == 6]
    answers: dict[str, tuple[int, str]] = {}
    untested: list[str] = []
    why = ""
    try:
        async with asyncio.timeout(timeout):
            if v4:
                answers |= await _permissions_on_one_allocation(endpoint, credentials, v4, 4, tls, policy)
            if v6:
                try:
                    answers |= await _permissions_on_one_allocation(endpoint, credentials, v6, 6, tls, policy)
                except ProbeFailure as exc:
                    if exc.reason == "auth_failed":
                        raise
                    untested, why = v6, f"no IPv6 relay: {exc.message}"
    except (Exception, TimeoutError) as exc:
        reason, message = _classify(exc)
        return failure(
            "coturn_acl",
            "acl",
            reason,
            message,
            duration_seconds=time.monotonic() - started,
            target=endpoint.describe(),
        )
    verdict = judge(answers, untested, why)
    duration = time.monotonic() - started
    if verdict.accepted or verdict.unexpected:
        reason = "internal_peer_allowed" if verdict.accepted else "bad_response"
        return failure(
            "coturn_acl",
            "acl",
            reason,
            verdict.summary(),
            duration_seconds=duration,
            target=endpoint.describe(),
        )
    return ProbeResult(
        "coturn_acl",
        "acl",
        True,
        duration_seconds=duration,
        message=verdict.summary(),
        target=endpoint.describe(),
    )
