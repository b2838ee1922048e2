"""STUN/TURN message codec (RFC 8489, RFC 8656): pure functions over bytes.

Checked against the RFC 5769 test vectors. No I/O, no clocks, no randomness:
callers pass the transaction id.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

MAGIC_COOKIE = 0x2112A442
HEADER_LENGTH = 20
FINGERPRINT_XOR = 0x5354554E
TRANSPORT_UDP = 17


class Method(IntEnum):
    BINDING = 0x001
    ALLOCATE = 0x003
    REFRESH = 0x004
    SEND = 0x006  # indications only (RFC 8656 11)
    DATA = 0x007
    CREATE_PERMISSION = 0x008


class MessageClass(IntEnum):
    REQUEST = 0b00
    INDICATION = 0b01
    SUCCESS = 0b10
    ERROR = 0b11


class Attr(IntEnum):
    MAPPED_ADDRESS = 0x0001
    USERNAME = 0x0006
    MESSAGE_INTEGRITY = 0x0008
    ERROR_CODE = 0x0009
    UNKNOWN_ATTRIBUTES = 0x000A
    LIFETIME = 0x000D
    XOR_PEER_ADDRESS = 0x0012
    DATA = 0x0013
    REALM = 0x0014
    NONCE = 0x0015
    XOR_RELAYED_ADDRESS = 0x0016
    REQUESTED_ADDRESS_FAMILY = 0x0017
    REQUESTED_TRANSPORT = 0x0019
    MESSAGE_INTEGRITY_SHA256 = 0x001C
    XOR_MAPPED_ADDRESS = 0x0020
    PRIORITY = 0x0024
    SOFTWARE = 0x8022
    FINGERPRINT = 0x8028
    ICE_CONTROLLED = 0x8029


_ALLOWED_AFTER_INTEGRITY = frozenset({Attr.MESSAGE_INTEGRITY_SHA256, Attr.FINGERPRINT})


class StunDecodeError(ValueError):
    """The bytes are not a well-formed STUN message."""


@dataclass(frozen=True, slots=True)
class StunMessage:
    method: int
    message_class: MessageClass
    transaction_id: bytes
    attributes: tuple[tuple[int, bytes], ...] = ()

    def get(self, attr_type: int) -> bytes | None:
        """The first value of an attribute (RFC 8489 15: later duplicates are ignored)."""
        for kind, value in self.attributes:
            if kind == attr_type:
                return value
        return None

    def has(self, attr_type: int) -> bool:
        return self.get(attr_type) is not None


def message_type(method: int, message_class: MessageClass) -> int:
    """Interleave method and class bits as RFC 8489 6 draws them."""
    c = int(message_class)
    return (
        (method & 0x000F)
        | ((method & 0x0070) << 1)
        | ((method & 0x0F80) << 2)
        | ((c & 0b01) << 4)
        | ((c & 0b10) << 7)
    )


def split_message_type(value: int) -> tuple[int, MessageClass]:
    method = (value & 0x000F) | ((value >> 1) & 0x0070) | ((value >> 2) & 0x0F80)
    c = ((value >> 4) & 0b01) | ((value >> 7) & 0b10)
    return method, MessageClass(c)


def _padded(value: bytes, pad_byte: bytes) -> bytes:
    return value + pad_byte * (-len(value) % 4)


def _attribute(kind: int, value: bytes, pad_byte: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + _padded(value, pad_byte)


def _header(msg_type: int, length: int, transaction_id: bytes) -> bytes:
    return struct.pack("!HHI", msg_type, length, MAGIC_COOKIE) + transaction_id


def encode_message(
    message: StunMessage,
    *,
    integrity_key: bytes | None = None,
    fingerprint: bool = False,
    pad_byte: bytes = b"\x00",
) -> bytes:
    """Serialise, appending MESSAGE-INTEGRITY (if a key is given) and FINGERPRINT last."""
    if len(message.transaction_id) != 12:
        raise ValueError("transaction id must be 12 bytes")
    msg_type = message_type(message.method, message.message_class)
    body = b"".join(_attribute(kind, value, pad_byte) for kind, value in message.attributes)
    if integrity_key is not None:
        # The length in the hashed header already counts the MESSAGE-INTEGRITY attribute.
        signed = _header(msg_type, len(body) + 24, message.transaction_id) + body
        mac = hmac.new(integrity_key, signed, hashlib.sha1).digest()
        body += _attribute(Attr.MESSAGE_INTEGRITY, mac, pad_byte)
    if fingerprint:
        crc_input = _header(msg_type, len(body) + 8, message.transaction_id) + body
        crc = (zlib.crc32(crc_input) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
        body += _attribute(Attr.FINGERPRINT, struct.pack("!I", crc), pad_byte)
    return _header(msg_type, len(body), message.transaction_id) + body


def _iter_attributes(data: bytes) -> list[tuple[int, int, bytes]]:
    """(offset, type, value) of every attribute; raises on truncation."""
    out: list[tuple[int, int, bytes]] = []
    offset = HEADER_LENGTH
    while offset < len(data):
        if offset + 4 > len(data):
            raise StunDecodeError("truncated attribute header")
        kind, length = struct.unpack_from("!HH", data, offset)
        end = offset + 4 + length
        if end > len(data):
            raise StunDecodeError("attribute runs past the end of the message")
        out.append((offset, kind, data[offset + 4 : end]))
        offset = end + (-length % 4)
    if offset != len(data):
        raise StunDecodeError("attribute padding runs past the end of the message")
    return out


def message_length(header: bytes) -> int:
    """Total size of a message from its 20-byte header (for stream framing)."""
    if len(header) < HEADER_LENGTH:
        raise StunDecodeError("short header")
    length: int = struct.unpack_from("!H", header, 2)[0]
    return HEADER_LENGTH + length


def decode_message(data: bytes) -> StunMessage:
    if len(data) < HEADER_LENGTH:
        raise StunDecodeError("shorter than a STUN header")
    msg_type, length, cookie = struct.unpack_from("!HHI", data, 0)
    if msg_type & 0xC000:
        raise StunDecodeError("first two bits must be zero")
    if cookie != MAGIC_COOKIE:
        raise StunDecodeError("wrong magic cookie")
    if length % 4 or HEADER_LENGTH + length != len(data):
        raise StunDecodeError("length does not match the message")
    method, message_class = split_message_type(msg_type)
    return StunMessage(method, message_class, bytes(data[8:20]), _covered_attributes(data))


def _covered_attributes(data: bytes) -> tuple[tuple[int, bytes], ...]:
    """Attributes up to MESSAGE-INTEGRITY, and only FINGERPRINT (or the SHA-256 integrity) after it.

    RFC 8489 14.5: anything else after MESSAGE-INTEGRITY is not covered by it and must be
    ignored, or an on-path attacker could append, say, a forged XOR-RELAYED-ADDRESS.
    """
    out: list[tuple[int, bytes]] = []
    signed = False
    for _, kind, value in _iter_attributes(data):
        if signed and kind not in _ALLOWED_AFTER_INTEGRITY:
            continue
        out.append((kind, value))
        signed = signed or kind == Attr.MESSAGE_INTEGRITY
    return tuple(out)


def _with_length(data: bytes, end: int) -> bytes:
    """The message up to `end`, with the header length rewritten as if it ended there."""
    return data[:2] + struct.pack("!H", end - HEADER_LENGTH) + data[4:end]


def verify_message_integrity(data: bytes, key: bytes) -> bool:
    for offset, kind, value in _iter_attributes(data):
        if kind == Attr.MESSAGE_INTEGRITY:
            if len(value) != 20:
                return False
            expected = hmac.new(key, _with_length(data, offset + 24)[:offset], hashlib.sha1).digest()
            return hmac.compare_digest(expected, value)
    return False


def fingerprint_problem(data: bytes) -> str:
    """Why a received message's FINGERPRINT is unacceptable, or "" (also when it has none).

    FINGERPRINT is optional, but when present it must be the last attribute and match.
    """
    kinds = [kind for _, kind, _ in _iter_attributes(data)]
    if Attr.FINGERPRINT not in kinds:
        return ""
    if kinds[-1] != Attr.FINGERPRINT or kinds.count(Attr.FINGERPRINT) > 1:
        return "FINGERPRINT is not the last attribute"
    return "" if verify_fingerprint(data) else "FINGERPRINT does not match"


def verify_fingerprint(data: bytes) -> bool:
    attributes = _iter_attributes(data)
    if not attributes:
        return False
    offset, kind, value = attributes[-1]
    if kind != Attr.FINGERPRINT or len(value) != 4:
        return False
    crc = (zlib.crc32(_with_length(data, offset + 8)[:offset]) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
    received: int = struct.unpack("!I", value)[0]
    return received == crc


def _xor_mask(transaction_id: bytes, family: int) -> bytes:
    cookie = struct.pack("!I", MAGIC_COOKIE)
    return cookie if family == 1 else cookie + transaction_id


def encode_xor_address(host: str, port: int, transaction_id: bytes) -> bytes:
    address = ipaddress.ip_address(host)
    family = 1 if address.version == 4 else 2
    mask = _xor_mask(transaction_id, family)
    packed = bytes(a ^ b for a, b in zip(address.packed, mask, strict=True))
    return struct.pack("!BBH", 0, family, port ^ (MAGIC_COOKIE >> 16)) + packed


def _address_fields(value: bytes) -> tuple[int, int, bytes]:
    """(family, port, address bytes) of an address attribute, as sent."""
    if len(value) < 8:
        raise StunDecodeError("address attribute too short")
    _, family, port = struct.unpack_from("!BBH", value, 0)
    size = {1: 4, 2: 16}.get(family)
    if size is None or len(value) != 4 + size:
        raise StunDecodeError("bad address family or length")
    return family, port, value[4:]


def decode_xor_address(value: bytes, transaction_id: bytes) -> tuple[str, int]:
    family, xport, xaddress = _address_fields(value)
    mask = _xor_mask(transaction_id, family)
    raw = bytes(a ^ b for a, b in zip(xaddress, mask, strict=True))
    return str(ipaddress.ip_address(raw)), xport ^ (MAGIC_COOKIE >> 16)


def decode_address(value: bytes) -> tuple[str, int]:
    """A plain MAPPED-ADDRESS (RFC 3489 servers)."""
    _, port, address = _address_fields(value)
    return str(ipaddress.ip_address(address)), port


def encode_error_code(code: int, reason: str) -> bytes:
    return struct.pack("!HBB", 0, code // 100, code % 100) + reason.encode()


def decode_error_code(value: bytes) -> tuple[int, str]:
    if len(value) < 4:
        raise StunDecodeError("ERROR-CODE too short")
    klass, number = value[2] & 0x07, value[3]
    return klass * 100 + number, value[4:].decode("utf-8", "replace")


def encode_u32(value: int) -> bytes:
    return struct.pack("!I", value)


def decode_u32(value: bytes) -> int:
    if len(value) != 4:
        raise StunDecodeError("expected a 32-bit value")
    return int(struct.unpack("!I", value)[0])


def requested_address_family(version: int) -> bytes:
    """RFC 8656 18.9: 0x01 IPv4, 0x02 IPv6."""
    return struct.pack("!B3x", 1 if version == 4 else 2)


def requested_transport(protocol: int = TRANSPORT_UDP) -> bytes:
    return struct.pack("!B3x", protocol)


def long_term_key(username: str, realm: str | bytes, password: str) -> bytes:
    """The MESSAGE-INTEGRITY key of long-term credentials: MD5(username:realm:password).

    RFC 8489 9.2.2 asks for OpaqueString (SASLprep in RFC 5389) on the password, but no
    server does it: coturn, pion/turn, ProcessOne's p1_stun and aioice all hash the raw
    UTF-8 bytes, and so do browsers. Processing here would make a password with a
    no-break space or a decomposed accent fail against a server that accepts it.
    The realm is hashed as the server sent it.
    """
    realm_bytes = realm if isinstance(realm, bytes) else realm.encode()
    material = username.encode() + b":" + realm_bytes + b":" + password.encode()
    return hashlib.md5(material, usedforsecurity=False).digest()


def short_term_key(password: str) -> bytes:
    """Short-term credentials (ICE): the raw UTF-8 password, as servers use it."""
    return password.encode()
