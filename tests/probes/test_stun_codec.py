"""The STUN codec against the RFC 5769 test vectors, plus round-trip properties."""

from __future__ import annotations

import contextlib
import hashlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callplatform.probes import stun_codec as sc

SHORT_TERM_PASSWORD = "VOkJxbRl1RmTxUk/WvJxBt"
TXID = bytes.fromhex("b7e7a701bc34d686fa87dfae")

# RFC 5769 2.1: Sample Request (USERNAME padded with spaces, as the RFC allows).
SAMPLE_REQUEST = bytes.fromhex(
    "000100582112a442b7e7a701bc34d686fa87dfae"
    "802200105354554e207465737420636c69656e74"
    "002400046e0001ff80290008932ff9b151263b36"
    "000600096576746a3a68367659202020"
    "000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2"
    "80280004e57a3bcf"
)
# RFC 5769 2.2: Sample IPv4 Response.
SAMPLE_IPV4_RESPONSE = bytes.fromhex(
    "0101003c2112a442b7e7a701bc34d686fa87dfae"
    "8022000b7465737420766563746f7220"
    "002000080001a147e112a643"
    "000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7"
    "80280004c07d4c96"
)
# RFC 5769 2.3: Sample IPv6 Response.
SAMPLE_IPV6_RESPONSE = bytes.fromhex(
    "010100482112a442b7e7a701bc34d686fa87dfae"
    "8022000b7465737420766563746f7220"
    "002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d9"
    "00080014a382954e4be67bf11784c97c8292c275bfe3ed41"
    "80280004c8fb0b4c"
)
# RFC 5769 2.4: Sample Request with Long-Term Authentication (no FINGERPRINT).
SAMPLE_LONG_TERM_REQUEST = bytes.fromhex(
    "000100602112a44278ad3433c6ad72c029da412e"
    "00060012e3839ee38388e383aae38383e382afe382b90000"
    "0015001c662f2f3439396b39353464364f4c33346f4c394653547679363473410014000b6578616d706c652e6f726700"
    "00080014f67024656dd64a3e02b8e0712e85c9a28ca89666"
)
LONG_TERM_USERNAME = "\u30de\u30c8\u30ea\u30c3\u30af\u30b9"
# RFC 5769 2.4 gives the password "The\u00adM\u00aatr\u2168" and signs with its SASLprep form.
# The codec keys on the raw bytes, as every TURN server does (see long_term_key), so the
# vector is checked with the password already processed: soft hyphen dropped, NFKC applied.
LONG_TERM_PASSWORD = "TheMatrIX"


def test_sample_request_decodes_and_verifies() -> None:
    message = sc.decode_message(SAMPLE_REQUEST)
    assert (message.method, message.message_class) == (sc.Method.BINDING, sc.MessageClass.REQUEST)
    assert message.transaction_id == TXID
    assert message.get(sc.Attr.SOFTWARE) == b"STUN test client"
    assert message.get(sc.Attr.USERNAME) == b"evtj:h6vY"
    assert sc.verify_message_integrity(SAMPLE_REQUEST, sc.short_term_key(SHORT_TERM_PASSWORD))
    assert not sc.verify_message_integrity(SAMPLE_REQUEST, b"wrong password")
    assert sc.verify_fingerprint(SAMPLE_REQUEST)


def test_sample_request_encodes_byte_for_byte() -> None:
    decoded = sc.decode_message(SAMPLE_REQUEST)
    unsigned = sc.StunMessage(
        decoded.method,
        decoded.message_class,
        decoded.transaction_id,
        tuple(
            (kind, value)
            for kind, value in decoded.attributes
            if kind not in (sc.Attr.MESSAGE_INTEGRITY, sc.Attr.FINGERPRINT)
        ),
    )
    encoded = sc.encode_message(
        unsigned,
        integrity_key=sc.short_term_key(SHORT_TERM_PASSWORD),
        fingerprint=True,
        pad_byte=b" ",
    )
    assert encoded == SAMPLE_REQUEST


@pytest.mark.parametrize(
    ("vector", "address"),
    [
        (SAMPLE_IPV4_RESPONSE, ("192.0.2.1", 32853)),
        (SAMPLE_IPV6_RESPONSE, ("2001:db8:1234:5678:11:2233:4455:6677", 32853)),
    ],
)
def test_sample_responses_decode_verify_and_encode(vector: bytes, address: tuple[str, int]) -> None:
    message = sc.decode_message(vector)
    assert (message.method, message.message_class) == (sc.Method.BINDING, sc.MessageClass.SUCCESS)
    xor_mapped = message.get(sc.Attr.XOR_MAPPED_ADDRESS)
    assert xor_mapped is not None
    assert sc.decode_xor_address(xor_mapped, message.transaction_id) == address
    assert sc.encode_xor_address(*address, message.transaction_id) == xor_mapped
    key = sc.short_term_key(SHORT_TERM_PASSWORD)
    assert sc.verify_message_integrity(vector, key)
    assert sc.verify_fingerprint(vector)
    rebuilt = sc.StunMessage(
        message.method,
        message.message_class,
        message.transaction_id,
        ((sc.Attr.SOFTWARE, b"test vector"), (sc.Attr.XOR_MAPPED_ADDRESS, xor_mapped)),
    )
    assert sc.encode_message(rebuilt, integrity_key=key, fingerprint=True, pad_byte=b" ") == vector


def test_long_term_sample_request() -> None:
    message = sc.decode_message(SAMPLE_LONG_TERM_REQUEST)
    assert message.get(sc.Attr.USERNAME) == LONG_TERM_USERNAME.encode()
    assert message.get(sc.Attr.REALM) == b"example.org"
    assert message.get(sc.Attr.NONCE) == b"f//499k954d6OL34oL9FSTvy64sA"
    key = sc.long_term_key(LONG_TERM_USERNAME, "example.org", LONG_TERM_PASSWORD)
    assert sc.verify_message_integrity(SAMPLE_LONG_TERM_REQUEST, key)
    unsigned = sc.StunMessage(
        message.method,
        message.message_class,
        message.transaction_id,
        tuple((k, v) for k, v in message.attributes if k != sc.Attr.MESSAGE_INTEGRITY),
    )
    assert sc.encode_message(unsigned, integrity_key=key) == SAMPLE_LONG_TERM_REQUEST


def test_tampering_breaks_integrity_and_fingerprint() -> None:
    tampered = bytearray(SAMPLE_REQUEST)
    tampered[30] ^= 0x01  # inside SOFTWARE
    assert not sc.verify_message_integrity(bytes(tampered), sc.short_term_key(SHORT_TERM_PASSWORD))
    assert not sc.verify_fingerprint(bytes(tampered))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        SAMPLE_REQUEST[:19],
        SAMPLE_REQUEST[:-2],
        b"\xc0" + SAMPLE_REQUEST[1:],
        SAMPLE_REQUEST[:4] + b"\0\0\0\0" + SAMPLE_REQUEST[8:],
    ],
)
def test_malformed_input_is_rejected(data: bytes) -> None:
    with pytest.raises(sc.StunDecodeError):
        sc.decode_message(data)


def test_error_code_round_trip() -> None:
    assert sc.decode_error_code(sc.encode_error_code(438, "Stale Nonce")) == (438, "Stale Nonce")


@given(
    method=st.sampled_from(list(sc.Method)),
    message_class=st.sampled_from(list(sc.MessageClass)),
    transaction_id=st.binary(min_size=12, max_size=12),
    attributes=st.lists(
        st.tuples(
            st.integers(0x0001, 0x7FFF).filter(lambda k: k != sc.Attr.MESSAGE_INTEGRITY),
            st.binary(max_size=40),
        ),
        max_size=6,
    ),
    key=st.binary(min_size=1, max_size=32),
)
def test_encode_decode_round_trip(
    method: sc.Method,
    message_class: sc.MessageClass,
    transaction_id: bytes,
    attributes: list[tuple[int, bytes]],
    key: bytes,
) -> None:
    message = sc.StunMessage(method, message_class, transaction_id, tuple(attributes))
    data = sc.encode_message(message, integrity_key=key, fingerprint=True)
    decoded = sc.decode_message(data)
    assert decoded.attributes[: len(attributes)] == tuple(attributes)
    assert (decoded.method, decoded.message_class, decoded.transaction_id) == (
        method,
        message_class,
        transaction_id,
    )
    assert sc.verify_message_integrity(data, key)
    assert sc.verify_fingerprint(data)
    assert sc.message_length(data[:20]) == len(data)


@given(st.binary(max_size=120))
def test_decoder_never_raises_anything_but_decode_errors(data: bytes) -> None:
    with contextlib.suppress(sc.StunDecodeError):
        sc.decode_message(data)


@pytest.mark.parametrize(
    "password",
    [
        "pass\u00a0word",
        "cafe\u0301",
        "\uff30\uff41\uff53\uff53",
        "party\U0001f389",
        "The\u00adM\u00aatr\u2168",
    ],
)
def test_long_term_key_hashes_the_raw_utf8_password(password: str) -> None:
    """No SASLprep: coturn, pion and browsers key on the bytes as typed (an emoji must not raise)."""
    expected = hashlib.md5(f"user:realm:{password}".encode(), usedforsecurity=False).digest()
    assert sc.long_term_key("user", "realm", password) == expected
    assert sc.long_term_key("user", b"realm", password) == expected


def _signed_response(after_integrity: tuple[tuple[int, bytes], ...]) -> bytes:
    """An Allocate success signed with KEY, with extra attributes appended after MESSAGE-INTEGRITY."""
    relayed = sc.encode_xor_address("192.0.2.1", 5000, TXID)
    signed = sc.encode_message(
        sc.StunMessage(
            sc.Method.ALLOCATE, sc.MessageClass.SUCCESS, TXID, ((sc.Attr.XOR_RELAYED_ADDRESS, relayed),)
        ),
        integrity_key=b"k",
    )
    tail = b"".join(
        struct.pack("!HH", kind, len(value)) + value + b"\0" * (-len(value) % 4)
        for kind, value in after_integrity
    )
    return signed[:2] + struct.pack("!H", len(signed) - 20 + len(tail)) + signed[4:] + tail


def test_attributes_after_message_integrity_are_ignored() -> None:
    forged = sc.encode_xor_address("10.0.0.1", 6000, TXID)
    data = _signed_response(((sc.Attr.XOR_RELAYED_ADDRESS, forged), (sc.Attr.SOFTWARE, b"evil")))
    message = sc.decode_message(data)
    assert [kind for kind, _ in message.attributes] == [
        sc.Attr.XOR_RELAYED_ADDRESS,
        sc.Attr.MESSAGE_INTEGRITY,
    ]
    relayed = message.get(sc.Attr.XOR_RELAYED_ADDRESS)
    assert relayed is not None and sc.decode_xor_address(relayed, TXID) == ("192.0.2.1", 5000)
    assert message.get(sc.Attr.SOFTWARE) is None


def test_fingerprint_after_message_integrity_is_kept() -> None:
    data = sc.decode_message(SAMPLE_REQUEST)
    assert [kind for kind, _ in data.attributes][-2:] == [sc.Attr.MESSAGE_INTEGRITY, sc.Attr.FINGERPRINT]


def test_fingerprint_problems() -> None:
    assert sc.fingerprint_problem(SAMPLE_REQUEST) == ""
    assert sc.fingerprint_problem(SAMPLE_LONG_TERM_REQUEST) == ""  # none is fine
    wrong = bytearray(SAMPLE_REQUEST)
    wrong[-1] ^= 0xFF
    assert sc.fingerprint_problem(bytes(wrong)) == "FINGERPRINT does not match"
    not_last = _signed_response(
        ((sc.Attr.FINGERPRINT, b"\0\0\0\0"), (sc.Attr.MESSAGE_INTEGRITY_SHA256, b"x" * 32))
    )
    assert sc.fingerprint_problem(not_last) == "FINGERPRINT is not the last attribute"
