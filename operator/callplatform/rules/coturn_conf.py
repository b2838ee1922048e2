"""What coturn 4.6 reads back exactly as written in turnserver.conf: the one judge of every value.

The rules engine reports these problems (CP017 for the TURN credentials, CP019 for the realm)
and the turnserver.conf writer refuses to write such a value, so the two cannot disagree.
Every limit here was measured against the real coturn 4.6.1 (tests/reconciler/
test_turnserver_coturn.py):

- the config is read with `fgets` into a 1024-byte buffer, i.e. 1023 bytes per read: a longer
  line is cut there and its rest parsed as a directive of its own (the CVE-like injection);
- leading and trailing whitespace of a line is dropped, so a value cannot start or end with it;
- a password that starts with `0x` is taken as a hex key, not as a password;
- a password longer than 256 bytes no longer authenticates; the realm is cut to 127 bytes.

No function quotes the value it judged: the descriptions are safe to print.
"""

from __future__ import annotations

import re
import unicodedata

# fgets(buffer, 1024) returns at most 1023 bytes: the whole line, newline included, must fit.
COTURN_LINE_BUFFER = 1024
MAX_LINE_BYTES = COTURN_LINE_BUFFER - 1
MAX_CREDENTIAL_BYTES = 256  # coturn's STUN_MAX_PWD_SIZE; the same bound keeps user= lines short
MAX_REALM_LENGTH = 126  # coturn keeps 127 bytes; 127 already failed authentication in our tests

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
REALM_PATTERN = rf"^{_LABEL}(?:\.{_LABEL})*$"
_REALM = re.compile(REALM_PATTERN)
_BREAKING_CATEGORIES = ("Cc", "Cs", "Zl", "Zp")  # control, lone surrogates, line/paragraph separators


def _control_problem(value: str) -> str | None:
    if "\n" in value or "\r" in value:
        return (
            "contains a line break (a trailing newline often comes from `kubectl create secret "
            "--from-file`; use --from-literal or strip the file)"
        )
    if any(unicodedata.category(ch) in _BREAKING_CATEGORIES for ch in value):
        return "contains a control character"
    return None


def credential_problem(value: str, *, username: bool = False) -> str | None:
    """Why coturn would read this TURN username, password or shared secret differently, or None."""
    problem = _control_problem(value)
    if problem is not None:
        return problem
    if value != value.strip():
        return "starts or ends with whitespace, which coturn drops"
    if "#" in value:
        return "contains '#', which starts a comment in turnserver.conf"
    if username and ":" in value:
        return "contains ':', which coturn's user=name:password cannot hold"
    if not username and value[:2].lower() == "0x":
        return "starts with 0x, which coturn reads as a hex key instead of a password"
    if len(value.encode("utf-8", errors="surrogatepass")) > MAX_CREDENTIAL_BYTES:
        return f"is longer than {MAX_CREDENTIAL_BYTES} bytes, more than coturn keeps"
    return None


def realm_problem(value: str) -> str | None:
    """Why coturn would not use this realm as given (or browsers could not match it), or None."""
    if len(value) > MAX_REALM_LENGTH:
        return f"is longer than {MAX_REALM_LENGTH} characters, more than coturn keeps"
    if _REALM.fullmatch(value) is None:
        return "is not a DNS-style name (letters, digits, '-' and '.', labels of 1-63 characters)"
    return None


def is_ascii(value: str) -> bool:
    return value.isascii()


def line_problem(line: str) -> str | None:
    """Why coturn would not read `line` (without its newline) as exactly one directive, or None."""
    problem = _control_problem(line)
    if problem is not None:
        return problem
    if line != line.strip():
        return "starts or ends with whitespace"
    if len(line.encode("utf-8", errors="surrogatepass")) + 1 > MAX_LINE_BYTES:
        return f"is longer than coturn's {MAX_LINE_BYTES}-byte line"
    return None
