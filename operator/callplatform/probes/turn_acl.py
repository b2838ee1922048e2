"""Does the TURN server refuse to relay into internal networks? (the CVE-2020-26262 class)

After an authenticated Allocate, the probe asks for a permission to each internal
address below and expects 403 for every one. A permission is state on the TURN
server only: no packet goes to those addresses. Each family's peers are tried on an
allocation of that family (REQUESTED-ADDRESS-FAMILY); a server without such a relay
(coturn answers 440) leaves them untested, and the result says so. A peer refused with
443 (Peer Address Family Mismatch: the server gave a relay of the other family) is
neither accepted nor refused by the deny list: it is reported as such, untested.
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
UNSUPPORTED_FAMILY = 440  # Allocate: no relay of the requested family
FAMILY_MISMATCH = 443  # CreatePermission: the peer is of the other family than the relay


@dataclass(frozen=True, slots=True)
class AclVerdict:
    refused: tuple[str, ...] = ()
    accepted: tuple[str, ...] = ()
    unexpected: tuple[tuple[str, str], ...] = ()  # (peer, "code phrase"): neither granted nor 403
    family_refused: tuple[str, ...] = ()  # 443: the relay is of the other family; deny list untested
    untested: tuple[str, ...] = ()
    untested_why: str = ""
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        parts = []
        if self.accepted:
            parts.append(f"relays to internal peers: {', '.join(self.accepted)}")
        if self.unexpected:
            parts.append(
                "not refused with 403: " + ", ".join(f"{peer} ({answer})" for peer, answer in self.unexpected)
            )
        parts.append(f"{len(self.refused)} internal peers refused")
        if self.family_refused:
            parts.append(
                f"refused for their address family (443), deny list untested: {', '.join(self.family_refused)}"
            )
        if self.untested:
            parts.append(f"untested: {', '.join(self.untested)} ({self.untested_why})")
        parts.extend(self.notes)
        return "; ".join(parts)


async def permissions_on_one_allocation(
    endpoint: TurnEndpoint,
    credentials: TurnCredentials,
    peers: Sequence[str],
    family: int,
    tls: TlsOptions,
    policy: RetransmitPolicy,
) -> tuple[dict[str, tuple[int, str]], str]:
    """Each peer's answer on one allocation of `family`, and the relayed host it got."""
    connection = await _open(endpoint, tls, policy, {})
    try:
        allocation = await turn_allocate(connection, credentials, family=family)
        try:
            answers = {
                peer: await turn_create_permission(connection, allocation, credentials, peer)
                for peer in peers
            }
            return answers, allocation.relayed[0]
        finally:
            async with asyncio.timeout(RELEASE_BUDGET_SECONDS):
                await turn_release(connection, allocation, credentials)
    finally:
        connection.close()


def judge(
    answers: dict[str, tuple[int, str]],
    untested: Sequence[str] = (),
    untested_why: str = "",
    notes: Sequence[str] = (),
) -> AclVerdict:
    """Pure: granted (code 0) is accepted, 403 refused, 443 refused by family, anything else unexpected."""
    return AclVerdict(
        refused=tuple(peer for peer, (code, _) in answers.items() if code == FORBIDDEN),
        accepted=tuple(peer for peer, (code, _) in answers.items() if code == 0),
        unexpected=tuple(
            (peer, f"{code} {phrase}".strip())
            for peer, (code, phrase) in answers.items()
            if code not in (0, FORBIDDEN, FAMILY_MISMATCH)
        ),
        family_refused=tuple(peer for peer, (code, _) in answers.items() if code == FAMILY_MISMATCH),
        untested=tuple(untested),
        untested_why=untested_why,
        notes=tuple(notes),
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
    by_family = {
        family: [peer for peer in peers if ipaddress.ip_address(peer).version == family] for family in (4, 6)
    }
    answers: dict[str, tuple[int, str]] = {}
    untested: list[str] = []
    why: list[str] = []
    notes: list[str] = []
    first_failure: ProbeFailure | None = None
    try:
        async with asyncio.timeout(timeout):
            for family, asked in by_family.items():
                if not asked:
                    continue
                try:
                    got, relayed = await permissions_on_one_allocation(
                        endpoint, credentials, asked, family, tls, policy
                    )
                except ProbeFailure as exc:
                    if exc.code != UNSUPPORTED_FAMILY:
                        raise
                    # No relay of this family: these peers cannot be judged on this server.
                    first_failure = first_failure or exc
                    untested += asked
                    why.append(f"no IPv{family} relay: {exc.message}")
                    continue
                answers |= got
                if ipaddress.ip_address(relayed).version != family:
                    notes.append(f"asked for an IPv{family} relay, got {relayed}")
            if not answers and first_failure is not None:
                raise first_failure
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
    verdict = judge(answers, untested, "; ".join(why), notes)
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
