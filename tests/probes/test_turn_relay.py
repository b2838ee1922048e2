"""The relay data-path probe: two allocations on one real coturn echo packets through the relay.

coturn runs the operator's rendered turnserver.conf. As rendered, its deny list refuses the
loopback relay address (the probe must say so); the test-only variant adds
`allowed-peer-ip=127.0.0.1` and `allow-loopback-peers` so the two relays on 127.0.0.1 may reach
each other. A UDP proxy that passes STUN transactions but drops Send indications stands for a
path where the control port is open and the relayed data is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from callplatform.probes import stun_codec as sc
from callplatform.probes.credentials import StaticAuth
from callplatform.probes.turn import TurnEndpoint
from callplatform.probes.turn_relay import (
    RelayStats,
    parse_data_indication,
    probe_turn_relay,
    send_indication,
)

from .servers import STATIC_PASSWORD, STATIC_USER, running_pion
from .test_turn_acl import PASSWORD, USER, rendered_conf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reconciler"))
from reconciler_coturn import free_port, require_coturn, running_coturn

TID = bytes(range(12))


def loopback_relay_conf(port: int) -> str:
    """Test only: the rendered conf, plus what lets two relays on 127.0.0.1 reach each other."""
    conf, _ = rendered_conf(port, ["127.0.0.1/32"])
    assert "allowed-peer-ip=127.0.0.1-127.0.0.1" in conf
    return (
        conf + "allow-loopback-peers\n"
    )  # coturn refuses loopback peers unless told, whatever the lists say


def test_stats_of_a_round() -> None:
    stats = RelayStats(5, (0.001, 0.003, 0.002))
    assert (stats.received, stats.loss_ratio) == (3, pytest.approx(0.4))
    facts = stats.facts()
    assert facts["rtt_min_seconds"] == 0.001 and facts["rtt_max_seconds"] == 0.003
    assert facts["rtt_p50_seconds"] == 0.002 and facts["rtt_avg_seconds"] == pytest.approx(0.002)
    assert stats.summary() == "3 of 5 packets relayed and echoed, rtt min/avg/max 1.00/2.00/3.00 ms, loss 40%"
    lost = RelayStats(5)
    assert lost.facts() == {"packets_sent": 5.0, "packets_received": 0.0, "loss_ratio": 1.0}
    assert lost.summary() == "0 of 5 packets came back through the relay, loss 100%"


def test_data_indication_round_trip_and_what_is_not_one() -> None:
    peer = ("192.0.2.7", 50123)
    data_indication = sc.encode_message(
        sc.StunMessage(
            sc.Method.DATA,
            sc.MessageClass.INDICATION,
            TID,
            ((sc.Attr.XOR_PEER_ADDRESS, sc.encode_xor_address(*peer, TID)), (sc.Attr.DATA, b"payload")),
        ),
        fingerprint=True,
    )
    assert parse_data_indication(data_indication) == (peer, b"payload")
    send = send_indication(peer, b"payload", TID)
    decoded = sc.decode_message(send)
    assert (decoded.method, decoded.message_class) == (sc.Method.SEND, sc.MessageClass.INDICATION)
    assert sc.verify_fingerprint(send)
    assert parse_data_indication(send) is None  # a Send indication is not what the relay delivers
    assert parse_data_indication(b"\x00" * 8) is None
    assert parse_data_indication(data_indication[:-1] + bytes([data_indication[-1] ^ 1])) is None


@pytest.mark.coturn
async def test_two_allocations_relay_to_each_other_on_real_coturn(tmp_path: Path) -> None:
    require_coturn()
    port = free_port()
    with running_coturn(loopback_relay_conf(port), port, tmp_path) as coturn:
        result = await probe_turn_relay(TurnEndpoint("127.0.0.1", port, "udp"), StaticAuth(USER, PASSWORD))
        log = coturn.log()
    assert result.success, result
    assert (result.component, result.probe, result.reason) == ("coturn", "relay", "")
    facts = result.facts
    assert (facts["packets_sent"], facts["packets_received"], facts["loss_ratio"]) == (5, 5, 0.0)
    assert 0 < facts["rtt_min_seconds"] <= facts["rtt_p50_seconds"] <= facts["rtt_max_seconds"] < 1.0
    assert result.message.startswith("5 of 5 packets relayed and echoed, rtt min/avg/max ")
    assert "loss 0% (between 127.0.0.1:" in result.message
    assert {"allocate", "allocate_peer", "permission", "relay", "release"} <= result.phases.keys()
    print(f"\nrelay on loopback coturn: {result.message}")
    assert PASSWORD not in repr(result) and PASSWORD not in log


@pytest.mark.coturn
async def test_the_rendered_deny_list_refuses_the_loopback_relay_and_the_probe_says_why(
    tmp_path: Path,
) -> None:
    require_coturn()
    port = free_port()
    conf, _ = rendered_conf(port, [])
    with running_coturn(conf, port, tmp_path, "--allow-loopback-peers"):
        result = await probe_turn_relay(TurnEndpoint("127.0.0.1", port, "udp"), StaticAuth(USER, PASSWORD))
    assert (result.success, result.reason) == (False, "forbidden"), result
    assert result.message.startswith(
        "the server refuses a permission for its own relayed address 127.0.0.1 (403 Forbidden IP)"
    )
    assert "release" in result.phases  # both allocations were still released
    assert result.facts == {}  # nothing was sent, so no loss or RTT figure


class _DroppingProxy(asyncio.DatagramProtocol):
    """Client side of a UDP proxy to coturn: one upstream socket per client address."""

    def __init__(self, upstream: tuple[str, int], drop: Callable[[int], bool]) -> None:
        self.upstream = upstream
        self.drop = drop  # called with the count of Send indications seen so far
        self.sends = 0
        self.transport: asyncio.DatagramTransport | None = None
        self.flows: dict[tuple[str, int], asyncio.DatagramTransport] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message_type = struct.unpack_from("!H", data)[0] if len(data) >= 2 else 0
        if sc.split_message_type(message_type) == (sc.Method.SEND, sc.MessageClass.INDICATION):
            self.sends += 1
            if self.drop(self.sends):
                return
        flow = self.flows.get(addr)
        if flow is None:
            asyncio.get_running_loop().create_task(self._open(addr, data))
        else:
            flow.sendto(data)

    async def _open(self, client: tuple[str, int], first: bytes) -> None:
        proxy = self

        class Back(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                assert proxy.transport is not None
                proxy.transport.sendto(data, client)

        flow, _ = await asyncio.get_running_loop().create_datagram_endpoint(Back, remote_addr=self.upstream)
        self.flows[client] = flow
        flow.sendto(first)


@contextlib.asynccontextmanager
async def dropping_proxy(port: int, drop: Callable[[int], bool]) -> AsyncIterator[tuple[int, _DroppingProxy]]:
    transport, proxy = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: _DroppingProxy(("127.0.0.1", port), drop), local_addr=("127.0.0.1", 0)
    )
    try:
        yield transport.get_extra_info("sockname")[1], proxy
    finally:
        for flow in proxy.flows.values():
            flow.close()
        transport.close()


@pytest.mark.coturn
async def test_a_path_that_loses_the_relayed_data_fails_with_packets_lost(tmp_path: Path) -> None:
    require_coturn()
    port = free_port()
    with running_coturn(loopback_relay_conf(port), port, tmp_path):
        async with dropping_proxy(port, lambda _: True) as (proxy_port, proxy):
            result = await probe_turn_relay(
                TurnEndpoint("127.0.0.1", proxy_port, "udp"), StaticAuth(USER, PASSWORD)
            )
    assert proxy.sends == 5  # the probe did send, and Allocate/permissions went through
    assert (result.success, result.reason) == (False, "packets_lost"), result
    assert result.message.startswith(
        "0 of 5 packets came back through the relay, loss 100% (between 127.0.0.1:"
    )
    assert "relay ports are unreachable at the relayed address" in result.message
    assert result.facts["loss_ratio"] == 1.0 and "rtt_p50_seconds" not in result.facts


@pytest.mark.coturn
async def test_partial_loss_is_a_success_that_reports_the_loss(tmp_path: Path) -> None:
    require_coturn()
    port = free_port()
    with running_coturn(loopback_relay_conf(port), port, tmp_path):
        # The 2nd and 4th of A's packets are lost; B's echoes of the others are Send indications too.
        async with dropping_proxy(port, lambda n: n in (2, 4)) as (proxy_port, _):
            result = await probe_turn_relay(
                TurnEndpoint("127.0.0.1", proxy_port, "udp"), StaticAuth(USER, PASSWORD)
            )
    assert result.success, result
    assert (result.facts["packets_received"], result.facts["loss_ratio"]) == (3, pytest.approx(0.4))
    assert result.facts["rtt_p50_seconds"] > 0
    assert f"loss {result.facts['loss_ratio']:.0%}" in result.message


@pytest.mark.coturn
async def test_pion_relays_between_two_allocations(tmp_path: Path) -> None:
    """pion/turn (no peer filter, relays on 127.0.0.1 here) carries the same exchange."""
    with running_pion(tmp_path) as pion:
        result = await probe_turn_relay(
            TurnEndpoint("127.0.0.1", pion.port, "udp"), StaticAuth(STATIC_USER, STATIC_PASSWORD)
        )
    assert result.success, result
    assert result.facts["loss_ratio"] == 0.0 and result.facts["rtt_p50_seconds"] > 0
    print(f"\nrelay on loopback pion: {result.message}")
