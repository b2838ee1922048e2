"""Pure checks on single values: hostnames, secrets, database URLs, CIDRs, booleans.

None of these functions raises, and none returns or embeds the value it judged:
callers turn the verdicts into messages that are safe to print.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")

WEAK_SECRETS = frozenset(
    {
        "changeme",
        "changeit",
        "change-me",
        "change_me",
        "secret",
        "secrets",
        "password",
        "passw0rd",
        "p@ssw0rd",
        "keepthissecret",
        "mysecret",
        "supersecret",
        "topsecret",
        "default",
        "admin",
        "administrator",
        "root",
        "test",
        "testing",
        "example",
        "jitsi",
        "turn",
        "coturn",
        "postgres",
        "calls",
        "letmein",
        "qwerty",
        "123456",
        "12345678",
        "1234567890",
        "0123456789",
        "abcdef",
        "abc123",
        "your-secret",
        "your_secret",
        "yoursecret",
        "replaceme",
        "replace-me",
        "todo",
        "xxx",
    }
)

DENIED_PEER_RANGES: tuple[tuple[str, str], ...] = (
    # The one deny list: the renderer writes a denied-peer-ip line for each, and CP008 reports an
    # allowedPeerCIDRs entry that overlaps any of them (allowed-peer-ip overrides denied-peer-ip).
    ("0.0.0.0/8", "this-network (reaches loopback, CVE-2020-26262)"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT / cluster-internal (Alibaba metadata 100.100.100.200)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local and cloud metadata (169.254.169.254)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved, including broadcast 255.255.255.255"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "IPv4-mapped (bypasses IPv4 deny lists)"),
    ("64:ff9b::/96", "NAT64 (reaches private IPv4 through the translator)"),
    ("64:ff9b:1::/48", "local-use NAT64 (reaches private IPv4 through the translator)"),
    ("100::/64", "discard-only"),
    ("2001:db8::/32", "documentation"),
    ("fc00::/7", "unique-local private and cloud metadata (fd00:ec2::254)"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
)
_DENIED_NETWORKS = tuple((ipaddress.ip_network(cidr), what) for cidr, what in DENIED_PEER_RANGES)

TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off", ""})


def is_bare_hostname(value: str) -> bool:
    """A DNS name that a CSP host-source can pin: labels only, no scheme, port, path or wildcard."""
    return len(value) <= 253 and _HOSTNAME.fullmatch(value) is not None


def hostname_problem(value: str) -> str:
    """Why `value` is not a bare hostname, phrased without repeating the value."""
    if "://" in value:
        return "has a URL scheme"
    if any(ch.isspace() for ch in value):
        return "contains whitespace"
    if "*" in value:
        return "contains a wildcard"
    if "/" in value:
        return "contains a path"
    if ":" in value:
        return "contains a port or an IPv6 address"
    if len(value) > 253:
        return "is longer than 253 characters"
    return "is not a valid DNS name (letters, digits, '-' and '.', labels of 1-63 characters)"


def weakness(value: str) -> str | None:
    """Why a secret is trivially guessable, or None."""
    if value.strip().lower() in WEAK_SECRETS:
        return "is a well-known default value"
    if len(value) > 0 and len(set(value)) == 1:
        return "is one repeated character"
    if len(value) >= 2 and len(set(value)) <= 2 and len(value) >= 8:
        return "uses at most two distinct characters"
    return None


def parse_bool(value: str) -> bool | None:
    """ALLOW_DEMO_SEED-style flags; None when the word is neither true nor false."""
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    """What the rules need from a DATABASE_URL; the URL itself is not kept."""

    problems: tuple[str, ...]
    password: str
    sslmode: str


def inspect_database_url(url: str) -> DatabaseUrl:
    problems: list[str] = []
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        hostname = parts.hostname or ""
        port_problem = ""
        try:
            _ = parts.port
        except ValueError:
            port_problem = "has a port that is not a number in 1-65535"
        password = unquote(parts.password or "")
        query = parse_qs(parts.query)
    except ValueError:
        return DatabaseUrl(("cannot be parsed as a URL",), "", "")
    if scheme not in ("postgres", "postgresql"):
        problems.append("must start with postgresql:// or postgres://")
    if not hostname and not query.get("host"):
        problems.append("has no host")
    if port_problem:
        problems.append(port_problem)
    if not parts.path.strip("/"):
        problems.append("has no database name")
    sslmode = (query.get("sslmode") or [""])[-1].lower()
    return DatabaseUrl(tuple(problems), password, sslmode)


@dataclass(frozen=True, slots=True)
class CidrVerdict:
    parsed: bool
    opens: tuple[str, ...]  # descriptions of the sensitive ranges it overlaps


def judge_peer_cidr(value: str) -> CidrVerdict:
    """Which sensitive ranges a CIDR opens; like the API server's isCIDR(), a prefix length is required."""
    if "/" not in value or "%" in value or value != value.strip():
        return CidrVerdict(parsed=False, opens=())
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return CidrVerdict(parsed=False, opens=())
    opens = tuple(
        f"the {what} range {cidr}"
        for (denied, what), (cidr, _) in zip(_DENIED_NETWORKS, DENIED_PEER_RANGES, strict=True)
        if denied.version == network.version and denied.overlaps(network)
    )
    return CidrVerdict(parsed=True, opens=opens)


def image_unpinned(image: str) -> str | None:
    """Why an image reference is not pinned to one version, or None."""
    if "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag"
    if last.rsplit(":", 1)[1] == "latest":
        return "uses the :latest tag"
    return None
