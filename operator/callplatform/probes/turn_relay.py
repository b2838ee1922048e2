"""Does the TURN relay carry data? The data path, checked the way `stunnerctl icetest` does.

Two authenticated allocations on the same server, A and B, each get a permission for the
other's relayed address. A then sends K packets to B's relayed address in Send indications;
the server relays each one from A's relay port to B's, B receives it as a Data indication and
sends it back the same way, and A times the round trip (two relay hops). No packet goes
anywhere but the TURN server's own relayed addresses, and both allocations are released
(Refresh with LIFETIME 0) at the end.

A working Allocate proves the control path only: this probe fails when the relay ports are
unreachable at the relayed address (firewall, NetworkPolicy, a NAT that does not hairpin) or
when the server refuses its own relayed address as a peer (a deny list covering it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from callplatform.probes import stun_codec as sc
from callplatform.probes.credentials import TurnAuth, TurnCredentials
from callplatform.probes.result import ProbeResult, failure
from callplatform.probes.tls import DEFAULT_TLS, TlsOptions
from callplatform.probes.turn import (
    DEFAULT_RETRANSMIT,
    RELEASE_BUDGET_SECONDS,
    Allocation,
    ProbeFailure,
    RetransmitPolicy,
    TurnEndpoint,
    _classify,
    _Connection,
    _UdpConnection,
    open_allocation,
    turn_create_permission,
    turn_release,
)

PROBE = "relay"
DEFAULT_PACKETS = 5
PACKET_SPACING_SECONDS = 0.01
ECHO_WAIT_SECONDS = 1.0  # after the last packet is sent, how long the stragglers may take
PAYLOAD_BYTES = 64  # token (8) + sequence number (4) + zeros


@dataclass(frozen=True, slots=True)
class RelayStats:
    """What came back of `sent` packets: round-trip times in seconds, in arrival order."""

    sent: int
    rtts: tuple[float, ...] = ()

    @property
    def received(self) -> int:
        return len(self.rtts)

    @property
    def loss_ratio(self) -> float:
        return 1.0 - self.received / self.sent if self.sent else 1.0

    def facts(self) -> dict[str, float]:
        """Numbers for the metrics (callplatform_turn_relay_*) and the JSON output."""
        facts = {
            "packets_sent": float(self.sent),
            "packets_received": float(self.received),
            "loss_ratio": self.loss_ratio,
        }
        if self.rtts:
            facts |= {
                "rtt_min_seconds": min(self.rtts),
                "rtt_avg_seconds": statistics.fmean(self.rtts),
                "rtt_p50_seconds": statistics.median(self.rtts),
                "rtt_max_seconds": max(self.rtts),
            }
        return facts

    def summary(self) -> str:
        loss = f"loss {self.loss_ratio:.0%}"
        if not self.rtts:
            return f"0 of {self.sent} packets came back through the relay, {loss}"
        ms = [value * 1000 for value in (min(self.rtts), statistics.fmean(self.rtts), max(self.rtts))]
        return (
            f"{self.received} of {self.sent} packets relayed and echoed, "
            f"rtt min/avg/max {ms[0]:.2f}/{ms[1]:.2f}/{ms[2]:.2f} ms, {loss}"
        )


def send_indication(peer: tuple[str, int], data: bytes, transaction_id: bytes) -> bytes:
    """RFC 8656 11.1: no credentials, no answer."""
    return sc.encode_message(
        sc.StunMessage(
            sc.Method.SEND,
            sc.MessageClass.INDICATION,
            transaction_id,
            (
                (sc.Attr.XOR_PEER_ADDRESS, sc.encode_xor_address(peer[0], peer[1], transaction_id)),
                (sc.Attr.DATA, data),
            ),
        ),
        fingerprint=True,
    )


def parse_data_indication(raw: bytes) -> tuple[tuple[str, int], bytes] | None:
    """(peer, data) of a Data indication (RFC 8656 11.4), or None for anything else."""
    try:
        message = sc.decode_message(raw)
        if sc.fingerprint_problem(raw):
            return None
        if (message.method, message.message_class) != (sc.Method.DATA, sc.MessageClass.INDICATION):
            return None
        peer, data = message.get(sc.Attr.XOR_PEER_ADDRESS), message.get(sc.Attr.DATA)
        if peer is None or data is None:
            return None
        return sc.decode_xor_address(peer, message.transaction_id), data
    except sc.StunDecodeError:
        return None


def _payload(token: bytes, seq: int) -> bytes:
    return (token + struct.pack("!I", seq)).ljust(PAYLOAD_BYTES, b"\x00")


async def _permit(
    connection: _Connection, allocation: Allocation, credentials: TurnCredentials, peer: Allocation
) -> None:
    host = peer.relayed[0]
    code, phrase = await turn_create_permission(connection, allocation, credentials, host)
    if code == 0:
        return
    answer = f"{code} {phrase}".strip()
    if code == 403:
        raise ProbeFailure(
            "forbidden",
            f"the server refuses a permission for its own relayed address {host} ({answer}): two clients "
            "relaying through it cannot reach each other; a denied peer range covers the relay address",
        )
    raise ProbeFailure("bad_response", f"CreatePermission for the other relayed address {host}: {answer}")


async def exchange(
    a: _UdpConnection,
    a_allocation: Allocation,
    b: _UdpConnection,
    b_allocation: Allocation,
    *,
    packets: int,
    spacing: float = PACKET_SPACING_SECONDS,
    echo_wait: float = ECHO_WAIT_SECONDS,
) -> RelayStats:
    """A sends `packets` to B's relayed address; B echoes each to A's; A times the round trips."""
    token = os.urandom(8)
    sent_at: dict[int, float] = {}
    rtts: list[float] = []
    done = asyncio.Event()

    # The round's random token identifies our packets. The peer address a Data indication carries
    # is not compared: behind a NAT that hairpins it may be the mapped one, not the relayed one.
    def ours(raw: bytes) -> bytes | None:
        parsed = parse_data_indication(raw)
        if parsed is None or len(parsed[1]) < len(token) + 4 or not parsed[1].startswith(token):
            return None
        return parsed[1]

    def b_received(raw: bytes) -> None:
        data = ours(raw)
        if data is not None:
            b.send(send_indication(a_allocation.relayed, data, os.urandom(12)))

    def a_received(raw: bytes) -> None:
        data = ours(raw)
        if data is None:
            return
        (seq,) = struct.unpack_from("!I", data, len(token))
        started = sent_at.pop(seq, None)
        if started is not None:  # a duplicate counts once
            rtts.append(time.monotonic() - started)
            if len(rtts) == packets:
                done.set()

    a.on_unsolicited(a_received)
    b.on_unsolicited(b_received)
    try:
        for seq in range(packets):
            if seq:
                await asyncio.sleep(spacing)
            sent_at[seq] = time.monotonic()
            a.send(send_indication(b_allocation.relayed, _payload(token, seq), os.urandom(12)))
        with contextlib.suppress(TimeoutError):  # what did not come back is loss
            await asyncio.wait_for(done.wait(), echo_wait)
    finally:
        a.on_unsolicited(None)
        b.on_unsolicited(None)
    return RelayStats(packets, tuple(rtts))


async def _release(connection: _Connection, allocation: Allocation, credentials: TurnCredentials) -> str:
    """ "" when released, else why not."""
    try:
        async with asyncio.timeout(RELEASE_BUDGET_SECONDS):
            await turn_release(connection, allocation, credentials)
    except (Exception, TimeoutError) as exc:
        reason, message = _classify(exc)
        return f"{reason}: {message}"
    return ""


async def probe_turn_relay(
    endpoint: TurnEndpoint,
    auth: TurnAuth,
    *,
    packets: int = DEFAULT_PACKETS,
    tls: TlsOptions = DEFAULT_TLS,
    timeout: float = 5.0,
    policy: RetransmitPolicy = DEFAULT_RETRANSMIT,
    clock: Callable[[], float] = time.time,
) -> ProbeResult:
    """Probe "relay" of component "coturn": success when at least one packet made the round trip.

    Partial loss is a success whose facts carry `loss_ratio`; the metrics and alerts judge it.
    Only UDP: Data indications are what the relay sends back over the client's UDP flow.
    """
    started = time.monotonic()
    phases: dict[str, float] = {}
    credentials = auth.credentials(clock())
    held: list[tuple[_Connection, Allocation]] = []
    stats: RelayStats | None = None
    error: tuple[str, str] | None = None  # (reason, message) of a failure before the verdict
    target = endpoint.describe()
    try:
        if endpoint.transport != "udp":
            raise ProbeFailure("not_configured", "the relay probe runs over UDP only")
        async with asyncio.timeout(timeout):
            held.append(await open_allocation(endpoint, credentials, tls, policy, phases))
            held.append(
                await open_allocation(endpoint, credentials, tls, policy, phases, phase="allocate_peer")
            )
            (a, a_allocation), (b, b_allocation) = held
            step = time.monotonic()
            await _permit(a, a_allocation, credentials, b_allocation)
            await _permit(b, b_allocation, credentials, a_allocation)
            phases["permission"] = time.monotonic() - step
            assert isinstance(a, _UdpConnection) and isinstance(b, _UdpConnection)
            step = time.monotonic()
            stats = await exchange(a, a_allocation, b, b_allocation, packets=packets)
            phases["relay"] = time.monotonic() - step
    except (Exception, TimeoutError) as exc:
        error = _classify(exc)
    step = time.monotonic()
    # Concurrently, so the two releases fit the one budget the runner's hard deadline allows.
    leaks = [why for why in await asyncio.gather(*(_release(c, a, credentials) for c, a in held)) if why]
    for connection, _ in held:
        connection.close()
    if held:
        phases["release"] = time.monotonic() - step
    duration = time.monotonic() - started
    if leaks:
        return failure(
            "coturn", PROBE, "allocation_leaked",
            f"relay allocated but not released ({leaks[0]})", duration_seconds=duration, target=target,
            phases=phases,
        )  # fmt: skip
    if error is not None:
        return failure("coturn", PROBE, *error, duration_seconds=duration, target=target, phases=phases)
    assert stats is not None
    (a_host, a_port), (b_host, b_port) = held[0][1].relayed, held[1][1].relayed
    between = f"between {a_host}:{a_port} and {b_host}:{b_port}"
    if not stats.rtts:
        result = failure(
            "coturn", PROBE, "packets_lost",
            f"{stats.summary()} ({between}): the relay ports are unreachable at the relayed address "
            "(firewall, NetworkPolicy, or a NAT that does not hairpin)",
            duration_seconds=duration, target=target, phases=phases,
        )  # fmt: skip
        return replace(result, facts=stats.facts())
    return ProbeResult(
        "coturn",
        PROBE,
        True,
        duration_seconds=duration,
        phases=phases,
        message=f"{stats.summary()} ({between})",
        target=target,
        facts=stats.facts(),
    )
