"""TURN client paths a healthy coturn rarely shows: 438 Stale Nonce, 437 on a reused 5-tuple,
lost datagrams, a black hole, quota and capacity errors. A small fake server speaks the codec."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from callplatform.probes import stun_codec as sc
from callplatform.probes.credentials import StaticAuth
from callplatform.probes.turn import SOFTWARE, RetransmitPolicy, TurnEndpoint, probe_allocate, probe_binding

USER, PASSWORD, REALM = "alice", "alice-password-123", "fake.test"
KEY = sc.long_term_key(USER, REALM, PASSWORD)


@dataclass
class Script:
    drop_first: int = 0  # datagrams ignored before answering
    stale_nonce_once: bool = False
    mismatch_first: int = 0  # unauthenticated Allocates answered 437
    allocate_error: tuple[int, str] | None = None
    corrupt_fingerprint: bool = False  # flip the CRC of every answer
    relay_after_integrity: bool = False  # Allocate success: relay address only after MESSAGE-INTEGRITY
    seen: list[tuple[int, int]] = field(default_factory=list)  # (method, class) received
    refreshed_to_zero: int = 0


class FakeTurn(asyncio.DatagramProtocol):
    def __init__(self, script: Script) -> None:
        self.script = script
        self.transport: asyncio.DatagramTransport | None = None
        self.nonce = b"nonce-1"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def reply(self, request: sc.StunMessage, cls: sc.MessageClass, attrs: tuple[tuple[int, bytes], ...],
              addr: tuple[str, int], sign: bool = False) -> None:  # fmt: skip
        message = sc.StunMessage(request.method, cls, request.transaction_id, attrs)
        assert self.transport is not None
        data = sc.encode_message(message, integrity_key=KEY if sign else None, fingerprint=True)
        if self.script.corrupt_fingerprint:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        self.transport.sendto(data, addr)

    def reply_with_unsigned_tail(self, request: sc.StunMessage, signed: tuple[tuple[int, bytes], ...],
                                 tail: tuple[tuple[int, bytes], ...], addr: tuple[str, int]) -> None:  # fmt: skip
        """A success signed over `signed`, with `tail` appended after MESSAGE-INTEGRITY (not covered)."""
        message = sc.StunMessage(request.method, sc.MessageClass.SUCCESS, request.transaction_id, signed)
        data = sc.encode_message(message, integrity_key=KEY)
        extra = b"".join(struct.pack("!HH", kind, len(value)) + value for kind, value in tail)
        assert self.transport is not None
        self.transport.sendto(
            data[:2] + struct.pack("!H", len(data) - 20 + len(extra)) + data[4:] + extra, addr
        )

    def error(self, request: sc.StunMessage, code: int, phrase: str, addr: tuple[str, int]) -> None:
        attrs = ((sc.Attr.ERROR_CODE, sc.encode_error_code(code, phrase)), (sc.Attr.REALM, REALM.encode()),
                 (sc.Attr.NONCE, self.nonce))  # fmt: skip
        self.reply(request, sc.MessageClass.ERROR, attrs, addr)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        script = self.script
        if script.drop_first > 0:
            script.drop_first -= 1
            return
        request = sc.decode_message(data)
        script.seen.append((request.method, int(request.message_class)))
        xor = sc.encode_xor_address(addr[0], addr[1], request.transaction_id)
        if request.method == sc.Method.BINDING:
            self.reply(request, sc.MessageClass.SUCCESS, ((sc.Attr.XOR_MAPPED_ADDRESS, xor),), addr)
            return
        if not request.has(sc.Attr.MESSAGE_INTEGRITY):
            if request.method == sc.Method.ALLOCATE and script.mismatch_first > 0:
                script.mismatch_first -= 1
                self.error(request, 437, "Allocation Mismatch", addr)
                return
            self.error(request, 401, "Unauthorized", addr)
            return
        if not sc.verify_message_integrity(data, KEY):
            self.error(request, 401, "Unauthorized", addr)
            return
        if request.get(sc.Attr.NONCE) != self.nonce or script.stale_nonce_once:
            script.stale_nonce_once = False
            self.nonce = b"nonce-2"
            self.error(request, 438, "Stale Nonce", addr)
            return
        if request.method == sc.Method.ALLOCATE:
            if script.allocate_error:
                self.error(request, *script.allocate_error, addr)
                return
            relayed = sc.encode_xor_address("127.0.0.1", 50000, request.transaction_id)
            attrs = ((sc.Attr.XOR_RELAYED_ADDRESS, relayed), (sc.Attr.XOR_MAPPED_ADDRESS, xor),
                     (sc.Attr.LIFETIME, sc.encode_u32(600)))  # fmt: skip
            if script.relay_after_integrity:
                self.reply_with_unsigned_tail(request, attrs[1:], attrs[:1], addr)
                return
            self.reply(request, sc.MessageClass.SUCCESS, attrs, addr, sign=True)
        elif request.method == sc.Method.REFRESH:
            if request.get(sc.Attr.LIFETIME) == sc.encode_u32(0):
                script.refreshed_to_zero += 1
            self.reply(
                request, sc.MessageClass.SUCCESS, ((sc.Attr.LIFETIME, sc.encode_u32(0)),), addr, sign=True
            )


@dataclass
class Running:
    endpoint: TurnEndpoint
    script: Script


@pytest.fixture
async def fake_turn(request: pytest.FixtureRequest) -> AsyncIterator[Running]:
    script: Script = getattr(request, "param", Script())
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: FakeTurn(script), local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        yield Running(TurnEndpoint("127.0.0.1", port, "udp"), script)
    finally:
        transport.close()


AUTH = StaticAuth(USER, PASSWORD)


@pytest.mark.parametrize("fake_turn", [Script(stale_nonce_once=True)], indirect=True)
async def test_stale_nonce_is_followed(fake_turn: Running) -> None:
    result = await probe_allocate(fake_turn.endpoint, AUTH)
    assert result.success, result
    assert fake_turn.script.refreshed_to_zero == 1


@pytest.mark.parametrize("fake_turn", [Script(mismatch_first=2)], indirect=True)
async def test_allocation_mismatch_on_a_reused_port_is_retried_on_a_new_socket(fake_turn: Running) -> None:
    result = await probe_allocate(fake_turn.endpoint, AUTH)
    assert result.success, result


@pytest.mark.parametrize("fake_turn", [Script(mismatch_first=10)], indirect=True)
async def test_persistent_mismatch_is_bad_response(fake_turn: Running) -> None:
    result = await probe_allocate(fake_turn.endpoint, AUTH)
    assert (result.success, result.reason) == (False, "bad_response")
    assert result.message == "Allocate answered 437 Allocation Mismatch"


@pytest.mark.parametrize(
    ("fake_turn", "reason"),
    [
        (Script(allocate_error=(486, "Allocation Quota Reached")), "quota"),
        (Script(allocate_error=(508, "Insufficient Capacity")), "capacity"),
        (Script(allocate_error=(403, "Forbidden")), "forbidden"),
        (Script(allocate_error=(500, "Server Error")), "bad_response"),
    ],
    indirect=["fake_turn"],
)
async def test_allocate_errors_map_to_bounded_reasons(fake_turn: Running, reason: str) -> None:
    result = await probe_allocate(fake_turn.endpoint, AUTH)
    assert (result.success, result.reason) == (False, reason)


@pytest.mark.parametrize("fake_turn", [Script(drop_first=2)], indirect=True)
async def test_lost_datagrams_are_retransmitted(fake_turn: Running) -> None:
    policy = RetransmitPolicy(initial_rto_seconds=0.05, max_attempts=4)
    result = await probe_binding(fake_turn.endpoint, policy=policy)
    assert result.success, result


async def test_a_black_hole_times_out_at_the_deadline() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:  # bound, never answers, no ICMP
        hole.bind(("127.0.0.1", 0))
        endpoint = TurnEndpoint("127.0.0.1", hole.getsockname()[1], "udp")
        started = time.monotonic()
        result = await probe_binding(endpoint, timeout=0.8)
        elapsed = time.monotonic() - started
    assert (result.success, result.reason) == (False, "timeout")
    assert 0.7 < elapsed < 1.3


@pytest.mark.parametrize("fake_turn", [Script(allocate_error=(400, ""))], indirect=True)
async def test_400_to_the_signed_allocate_is_auth_failed(fake_turn: Running) -> None:
    """pion/turn answers a wrong password with 400 and no reason: that is an auth failure."""
    result = await probe_allocate(fake_turn.endpoint, AUTH)
    assert (result.success, result.reason) == (False, "auth_failed")
    assert "400" in result.message


@pytest.mark.parametrize("fake_turn", [Script(corrupt_fingerprint=True)], indirect=True)
async def test_a_response_whose_fingerprint_does_not_match_is_bad_response(fake_turn: Running) -> None:
    result = await probe_binding(fake_turn.endpoint)
    assert (result.success, result.reason) == (False, "bad_response")
    assert result.message == "response FINGERPRINT does not match"


@pytest.mark.parametrize("fake_turn", [Script(relay_after_integrity=True)], indirect=True)
async def test_a_relay_address_after_message_integrity_is_not_used(fake_turn: Running) -> None:
    result = await probe_allocate(fake_turn.endpoint, AUTH)
    assert (result.success, result.reason) == (False, "bad_response")
    assert result.message == "Allocate success without XOR-RELAYED-ADDRESS"


def test_software_needs_no_padding() -> None:
    """RFC 3489 servers (stund) do not skip attribute padding: a padded SOFTWARE makes them drop us."""
    assert len(SOFTWARE) % 4 == 0
