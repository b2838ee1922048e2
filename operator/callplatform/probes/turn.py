"""A STUN/TURN client sized for probing: Binding and Allocate over UDP, TCP and TLS.

Everything is asyncio and bounded: UDP retransmits a few times with a short RTO,
and each probe runs under one deadline, so a dead server is reported in seconds.
An Allocate is always followed by a Refresh with LIFETIME 0, so probes leave no
allocation behind.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from callplatform.probes import stun_codec as sc
from callplatform.probes.credentials import TurnAuth, TurnCredentials
from callplatform.probes.result import ProbeResult, failure
from callplatform.probes.tls import (
    DEFAULT_TLS,
    TlsConfigError,
    TlsOptions,
    cert_not_after,
    client_context,
    expiring,
    peer_certificate,
)

# A multiple of 4 bytes, so the attribute needs no padding: RFC 3489-era servers such as
# Debian's stund do not skip padding and drop a request whose SOFTWARE is 18 bytes long.
SOFTWARE = b"callplatform-probe/1"
TRANSPORTS = ("udp", "tcp", "tls")
RELEASE_BUDGET_SECONDS = 1.5  # a Refresh(0) may overrun the probe deadline by this much
MISMATCH_ATTEMPTS = 3  # a 437 on a fresh socket is retried on another

ERROR_REASONS = {
    401: "auth_failed",
    441: "auth_failed",
    403: "forbidden",
    486: "quota",
    508: "capacity",
}


@dataclass(frozen=True, slots=True)
class TurnEndpoint:
    host: str
    port: int
    transport: str = "udp"  # "udp" | "tcp" | "tls"
    server_name: str = ""  # TLS name to verify; defaults to host

    def describe(self) -> str:
        scheme = "turns" if self.transport == "tls" else "turn"
        suffix = "?transport=tcp" if self.transport == "tcp" else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}:{host}:{self.port}{suffix}"


@dataclass(frozen=True, slots=True)
class RetransmitPolicy:
    """UDP only (RFC 8489 6.2.1 with probe-sized numbers): RTO doubles per attempt."""

    initial_rto_seconds: float = 0.25
    max_attempts: int = 5


DEFAULT_RETRANSMIT = RetransmitPolicy()


class ProbeFailure(Exception):
    def __init__(self, reason: str, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.code = code  # the STUN error code that caused it, 0 when none


class AllocationMismatch(ProbeFailure):
    """437: the server already holds an allocation for this 5-tuple."""

    def __init__(self, message: str) -> None:
        super().__init__("bad_response", message)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiters: dict[bytes, asyncio.Future[bytes]] = {}
        self.error: Exception | None = None
        # Datagrams that answer no transaction (a TURN Data indication) go here, if set.
        self.unsolicited: Callable[[bytes], None] | None = None

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if len(data) < sc.HEADER_LENGTH:
            return
        waiter = self.waiters.pop(bytes(data[8:20]), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(bytes(data))
        elif waiter is None and self.unsolicited is not None:
            self.unsolicited(bytes(data))

    def error_received(self, exc: Exception) -> None:
        # On a connected UDP socket Linux reports ICMP port unreachable here.
        self.error = exc
        for waiter in self.waiters.values():
            if not waiter.done():
                waiter.set_exception(exc)
        self.waiters.clear()


class _Connection:
    """A client-server transport carrying STUN transactions."""

    cert_der: bytes | None = None

    async def transact(self, request: bytes, transaction_id: bytes) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _UdpConnection(_Connection):
    def __init__(
        self, transport: asyncio.DatagramTransport, protocol: _UdpProtocol, policy: RetransmitPolicy
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self._policy = policy

    async def transact(self, request: bytes, transaction_id: bytes) -> bytes:
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._protocol.waiters[transaction_id] = waiter
        rto = self._policy.initial_rto_seconds
        try:
            for _ in range(self._policy.max_attempts):
                self._transport.sendto(request)
                try:
                    return await asyncio.wait_for(asyncio.shield(waiter), rto)
                except TimeoutError:
                    rto *= 2
        finally:
            self._protocol.waiters.pop(transaction_id, None)
            if not waiter.done():
                waiter.cancel()
        raise ProbeFailure("timeout", f"no answer after {self._policy.max_attempts} transmissions")

    def send(self, data: bytes) -> None:
        """Fire and forget (an indication: no answer, no retransmission)."""
        self._transport.sendto(data)

    def on_unsolicited(self, handler: Callable[[bytes], None] | None) -> None:
        self._protocol.unsolicited = handler

    def close(self) -> None:
        self._transport.close()


class _StreamConnection(_Connection):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.cert_der = peer_certificate(writer.get_extra_info("ssl_object"))

    async def transact(self, request: bytes, transaction_id: bytes) -> bytes:
        self._writer.write(request)
        await self._writer.drain()
        while True:
            header = await self._reader.readexactly(sc.HEADER_LENGTH)
            size = sc.message_length(header)
            if size > 65535:
                raise ProbeFailure("bad_response", "oversized STUN frame")
            rest = await self._reader.readexactly(size - sc.HEADER_LENGTH)
            if header[8:20] == transaction_id:
                return header + rest

    def close(self) -> None:
        self._writer.close()


async def _open(
    endpoint: TurnEndpoint, tls: TlsOptions, policy: RetransmitPolicy, phases: dict[str, float]
) -> _Connection:
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    if endpoint.transport == "udp":
        udp_transport, protocol = await loop.create_datagram_endpoint(
            _UdpProtocol, remote_addr=(endpoint.host, endpoint.port)
        )
        phases["connect"] = time.monotonic() - started
        return _UdpConnection(udp_transport, protocol, policy)
    reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
    phases["connect"] = time.monotonic() - started
    if endpoint.transport == "tls":
        started = time.monotonic()
        try:
            await writer.start_tls(client_context(tls), server_hostname=endpoint.server_name or endpoint.host)
        except BaseException:
            writer.close()
            raise
        phases["tls"] = time.monotonic() - started
    return _StreamConnection(reader, writer)


def _new_transaction_id() -> bytes:
    return os.urandom(12)


def _decode_response(data: bytes) -> sc.StunMessage:
    try:
        message = sc.decode_message(data)
        problem = sc.fingerprint_problem(data)
    except sc.StunDecodeError as exc:
        raise ProbeFailure("bad_response", f"malformed STUN response: {exc}") from None
    if problem:
        raise ProbeFailure("bad_response", f"response {problem}")
    return message


async def stun_binding(connection: _Connection) -> tuple[str, int]:
    """Binding request; returns the XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS)."""
    transaction_id = _new_transaction_id()
    request = sc.encode_message(
        sc.StunMessage(
            sc.Method.BINDING, sc.MessageClass.REQUEST, transaction_id, ((sc.Attr.SOFTWARE, SOFTWARE),)
        ),
        fingerprint=True,
    )
    response = _decode_response(await connection.transact(request, transaction_id))
    if response.message_class is not sc.MessageClass.SUCCESS:
        code, phrase = _error_code(response)
        raise ProbeFailure("bad_response", f"Binding answered {code} {phrase}".strip())
    try:
        xor_mapped = response.get(sc.Attr.XOR_MAPPED_ADDRESS)
        if xor_mapped is not None:
            return sc.decode_xor_address(xor_mapped, transaction_id)
        mapped = response.get(sc.Attr.MAPPED_ADDRESS)
        if mapped is not None:
            return sc.decode_address(mapped)
    except sc.StunDecodeError as exc:
        raise ProbeFailure("bad_response", f"bad mapped address: {exc}") from None
    raise ProbeFailure("bad_response", "Binding success without a mapped address")


def _error_code(message: sc.StunMessage) -> tuple[int, str]:
    value = message.get(sc.Attr.ERROR_CODE)
    if value is None:
        return 0, ""
    try:
        code, phrase = sc.decode_error_code(value)
    except sc.StunDecodeError:
        return 0, ""
    return code, phrase.rstrip("\x00").strip()


@dataclass(slots=True)
class Allocation:
    relayed: tuple[str, int]
    mapped: tuple[str, int] | None
    lifetime_seconds: int
    username: str
    realm: bytes
    nonce: bytes
    key: bytes = field(repr=False)


Attributes = tuple[tuple[int, bytes], ...]


async def _signed_transaction(
    connection: _Connection,
    method: sc.Method,
    attributes: Attributes | Callable[[bytes], Attributes],
    credentials: TurnCredentials,
    realm: bytes,
    nonce: bytes,
) -> tuple[sc.StunMessage, bytes, bytes, bytes]:
    """Send a long-term-credential request, following 438 Stale Nonce (twice at most).

    `attributes` may depend on the transaction id (XOR-PEER-ADDRESS does).
    Returns the response, the transaction id, and the realm and nonce that were used.
    """
    for _ in range(3):
        key = sc.long_term_key(credentials.username, realm, credentials.password)
        transaction_id = _new_transaction_id()
        request = sc.encode_message(
            sc.StunMessage(
                method,
                sc.MessageClass.REQUEST,
                transaction_id,
                (
                    *(attributes(transaction_id) if callable(attributes) else attributes),
                    (sc.Attr.USERNAME, credentials.username.encode()),
                    (sc.Attr.REALM, realm),
                    (sc.Attr.NONCE, nonce),
                ),
            ),
            integrity_key=key,
            fingerprint=True,
        )
        raw = await connection.transact(request, transaction_id)
        response = _decode_response(raw)
        if response.message_class is sc.MessageClass.ERROR and _error_code(response)[0] == 438:
            nonce = response.get(sc.Attr.NONCE) or nonce
            realm = response.get(sc.Attr.REALM) or realm
            continue
        signed = response.message_class is sc.MessageClass.SUCCESS and response.has(sc.Attr.MESSAGE_INTEGRITY)
        if signed and not sc.verify_message_integrity(raw, key):
            raise ProbeFailure("bad_response", "response MESSAGE-INTEGRITY does not verify")
        return response, transaction_id, realm, nonce
    raise ProbeFailure("bad_response", "server kept answering 438 Stale Nonce")


def _raise_for_error(response: sc.StunMessage, what: str) -> None:
    """Raise the bounded reason of an error answer to a signed (credentialed) request."""
    if response.message_class is sc.MessageClass.SUCCESS:
        return
    code, phrase = _error_code(response)
    message = f"{what} rejected: {code} {phrase}".strip()
    if code == 437:
        raise AllocationMismatch(message)
    if code == 400:
        # pion/turn answers a wrong password or an unknown user with 400 and no reason (RFC 8489
        # wants 401); after a well-formed signed retry the credentials are what it rejects.
        raise ProbeFailure("auth_failed", f"{message} (400 to signed request: credentials rejected)")
    raise ProbeFailure(ERROR_REASONS.get(code, "bad_response"), message, code)


async def turn_allocate(
    connection: _Connection, credentials: TurnCredentials, *, family: int = 4
) -> Allocation:
    """Allocate a UDP relay (RFC 8656 7.1) of the IP `family`, answering the 401 challenge."""
    attributes: Attributes = (
        (sc.Attr.REQUESTED_TRANSPORT, sc.requested_transport()),
        *(((sc.Attr.REQUESTED_ADDRESS_FAMILY, sc.requested_address_family(6)),) if family == 6 else ()),
        (sc.Attr.SOFTWARE, SOFTWARE),
    )
    transaction_id = _new_transaction_id()
    request = sc.encode_message(
        sc.StunMessage(sc.Method.ALLOCATE, sc.MessageClass.REQUEST, transaction_id, attributes),
        fingerprint=True,
    )
    challenge = _decode_response(await connection.transact(request, transaction_id))
    if challenge.message_class is sc.MessageClass.SUCCESS:
        raise ProbeFailure("bad_response", "server allocated without asking for credentials")
    code, phrase = _error_code(challenge)
    realm, nonce = challenge.get(sc.Attr.REALM), challenge.get(sc.Attr.NONCE)
    if code == 437:
        raise AllocationMismatch(f"Allocate answered {code} {phrase}".strip())
    if code != 401 or realm is None or nonce is None:
        raise ProbeFailure(
            ERROR_REASONS.get(code, "bad_response"), f"Allocate answered {code} {phrase}".strip(), code
        )
    response, transaction_id, realm, nonce = await _signed_transaction(
        connection, sc.Method.ALLOCATE, attributes, credentials, realm, nonce
    )
    _raise_for_error(response, "Allocate")
    relayed = response.get(sc.Attr.XOR_RELAYED_ADDRESS)
    if relayed is None:
        raise ProbeFailure("bad_response", "Allocate success without XOR-RELAYED-ADDRESS")
    try:
        relayed_address = sc.decode_xor_address(relayed, transaction_id)
        mapped = response.get(sc.Attr.XOR_MAPPED_ADDRESS)
        mapped_address = sc.decode_xor_address(mapped, transaction_id) if mapped else None
        lifetime_value = response.get(sc.Attr.LIFETIME)
        lifetime = sc.decode_u32(lifetime_value) if lifetime_value else 0
    except sc.StunDecodeError as exc:
        raise ProbeFailure("bad_response", f"bad Allocate response: {exc}") from None
    key = sc.long_term_key(credentials.username, realm, credentials.password)
    return Allocation(relayed_address, mapped_address, lifetime, credentials.username, realm, nonce, key)


async def open_allocation(
    endpoint: TurnEndpoint,
    credentials: TurnCredentials,
    tls: TlsOptions,
    policy: RetransmitPolicy,
    phases: dict[str, float],
    *,
    phase: str = "allocate",
) -> tuple[_Connection, Allocation]:
    """A new connection holding a new allocation; `phases[phase]` times the Allocate.

    The caller releases the allocation (`turn_release`) and closes the connection.
    """
    for attempt in range(MISMATCH_ATTEMPTS):
        connection = await _open(endpoint, tls, policy, phases)
        step = time.monotonic()
        try:
            allocation = await turn_allocate(connection, credentials)
        except AllocationMismatch:
            # Our new source port still maps to an allocation being torn down
            # (a previous probe's): a fresh socket gets a fresh 5-tuple.
            connection.close()
            if attempt == MISMATCH_ATTEMPTS - 1:
                raise
            continue
        except BaseException:
            connection.close()
            raise
        phases[phase] = time.monotonic() - step
        return connection, allocation
    raise AssertionError("unreachable")  # pragma: no cover


async def turn_release(connection: _Connection, allocation: Allocation, credentials: TurnCredentials) -> None:
    """Refresh with LIFETIME 0 (RFC 8656 7.2): the server frees the relay at once."""
    response, _, _, _ = await _signed_transaction(
        connection,
        sc.Method.REFRESH,
        ((sc.Attr.LIFETIME, sc.encode_u32(0)),),
        credentials,
        allocation.realm,
        allocation.nonce,
    )
    if response.message_class is sc.MessageClass.ERROR and _error_code(response)[0] == 437:
        return  # allocation mismatch: already gone
    _raise_for_error(response, "Refresh")


async def turn_create_permission(
    connection: _Connection, allocation: Allocation, credentials: TurnCredentials, peer: str
) -> tuple[int, str]:
    """CreatePermission for `peer` (RFC 8656 9): (0, "") when granted, else the error code and phrase.

    Only the TURN server receives anything: a permission sends no packet to the peer.
    """
    response, _, allocation.realm, allocation.nonce = await _signed_transaction(
        connection,
        sc.Method.CREATE_PERMISSION,
        lambda transaction_id: ((sc.Attr.XOR_PEER_ADDRESS, sc.encode_xor_address(peer, 0, transaction_id)),),
        credentials,
        allocation.realm,
        allocation.nonce,
    )
    if response.message_class is sc.MessageClass.SUCCESS:
        return 0, ""
    return _error_code(response)


def _classify(exc: BaseException) -> tuple[str, str]:
    """A bounded reason and a message (exception text carries no secret here)."""
    if isinstance(exc, ProbeFailure):
        return exc.reason, exc.message
    if isinstance(exc, TimeoutError):
        return "timeout", "no answer within the probe deadline"
    if isinstance(exc, ConnectionRefusedError):
        return "refused", "connection refused"
    if isinstance(exc, TlsConfigError):
        return "tls_error", str(exc)
    if isinstance(exc, ssl.SSLError):
        return "tls_error", f"TLS failed: {getattr(exc, 'reason', None) or type(exc).__name__}"
    if isinstance(exc, socket.gaierror):
        return "dns_error", "name does not resolve"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "connection_error", "server closed the connection"
    if isinstance(exc, OSError):
        return "connection_error", f"network error: {exc.strerror or type(exc).__name__}"
    return "bad_response", type(exc).__name__


def _probe_name(endpoint: TurnEndpoint) -> str:
    return endpoint.transport


async def probe_binding(
    endpoint: TurnEndpoint,
    *,
    tls: TlsOptions = DEFAULT_TLS,
    timeout: float = 5.0,
    policy: RetransmitPolicy = DEFAULT_RETRANSMIT,
    probe: str = "",
    clock: Callable[[], float] = time.time,
) -> ProbeResult:
    """A STUN Binding over the endpoint's transport; the probe is named after the transport."""
    name = probe or _probe_name(endpoint)
    phases: dict[str, float] = {}
    started = time.monotonic()
    connection: _Connection | None = None
    try:
        async with asyncio.timeout(timeout):
            connection = await _open(endpoint, tls, policy, phases)
            step = time.monotonic()
            mapped = await stun_binding(connection)
            phases["binding"] = time.monotonic() - step
    except (Exception, TimeoutError) as exc:
        reason, message = _classify(exc)
        return failure(
            "coturn",
            name,
            reason,
            message,
            duration_seconds=time.monotonic() - started,
            target=endpoint.describe(),
            phases=phases,
        )
    finally:
        if connection is not None:
            connection.close()
    return _succeeded(
        name, endpoint, started, phases, connection, f"mapped address {mapped[0]}:{mapped[1]}", tls, clock()
    )


def _succeeded(
    probe: str,
    endpoint: TurnEndpoint,
    started: float,
    phases: dict[str, float],
    connection: _Connection,
    message: str,
    tls: TlsOptions,
    now: float,
) -> ProbeResult:
    """A success, unless the server's TLS certificate is about to expire."""
    not_after = cert_not_after(connection.cert_der)
    if expiring(not_after, now, tls):
        days = ((not_after or now) - now) / 86400
        return failure(
            "coturn",
            probe,
            "cert_expiring",
            f"TLS certificate expires in {days:.1f} days",
            duration_seconds=time.monotonic() - started,
            target=endpoint.describe(),
            phases=phases,
            cert_not_after=not_after,
        )
    return ProbeResult(
        component="coturn",
        probe=probe,
        success=True,
        duration_seconds=time.monotonic() - started,
        phases=phases,
        cert_not_after=not_after,
        message=message,
        target=endpoint.describe(),
    )


async def probe_allocate(
    endpoint: TurnEndpoint,
    auth: TurnAuth,
    *,
    tls: TlsOptions = DEFAULT_TLS,
    timeout: float = 5.0,
    policy: RetransmitPolicy = DEFAULT_RETRANSMIT,
    probe: str = "allocate",
    clock: Callable[[], float] = time.time,
) -> ProbeResult:
    """Allocate a relay with the platform's credentials, then release it at once."""
    phases: dict[str, float] = {}
    started = time.monotonic()
    connection: _Connection | None = None
    allocation: Allocation | None = None
    credentials = auth.credentials(clock())
    outcome: ProbeResult | None = None
    try:
        async with asyncio.timeout(timeout):
            connection, allocation = await open_allocation(endpoint, credentials, tls, policy, phases)
    except (Exception, TimeoutError) as exc:
        reason, message = _classify(exc)
        outcome = failure(
            "coturn",
            probe,
            reason,
            message,
            duration_seconds=time.monotonic() - started,
            target=endpoint.describe(),
            phases=phases,
        )
    if connection is not None and allocation is not None:
        step = time.monotonic()
        try:
            async with asyncio.timeout(RELEASE_BUDGET_SECONDS):
                await turn_release(connection, allocation, credentials)
            phases["release"] = time.monotonic() - step
        except (Exception, TimeoutError) as exc:
            reason, message = _classify(exc)
            outcome = failure(
                "coturn",
                probe,
                "allocation_leaked",
                f"relay allocated but not released ({reason}: {message})",
                duration_seconds=time.monotonic() - started,
                target=endpoint.describe(),
                phases=phases,
            )
    if connection is not None:
        connection.close()
    if outcome is not None:
        return outcome
    assert allocation is not None and connection is not None
    relay_host, relay_port = allocation.relayed
    message = f"relayed address {relay_host}:{relay_port}, released"
    return _succeeded(probe, endpoint, started, phases, connection, message, tls, clock())
