"""Secrets judged as the app will use them: padding, length in characters, strength, bcrypt.

- Padding: the app uses a value byte for byte, so whitespace at either end or a control
  character anywhere is a problem of its own (CP021), and is not counted as length.
- Length: characters (code points) of the value without that padding.
- Strength: zxcvbn's estimate of the guesses an attacker needs (it finds repetition,
  dictionary words, keyboard walks, dates and sequences); below 10^10 guesses is weak.
  zxcvbn looks at the first 72 characters (its own limit); results are cached per value digest,
  so the operator's passes over the same Secret do not pay again. rules/zxcvbn_estimate.py runs
  zxcvbn's matchers and scoring with two shortcuts that cannot change a verdict or a figure.
- bcrypt: judged on the raw value (no stripping): $2a$, $2b$ or $2y$, cost 10 to 14 (below is
  brute-forceable, above makes every demo login take seconds), 53 characters of bcrypt base64.
None of these functions returns the value or part of it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

from callplatform.rules import zxcvbn_estimate

MIN_GUESSES_LOG10 = 10.0  # zxcvbn score 4: "very unguessable"
ZXCVBN_MAX_LENGTH = 72
MIN_BCRYPT_COST, MAX_BCRYPT_COST = 10, 14
_BCRYPT = re.compile(r"\$(2[abxy])\$([0-9]{2})\$[./A-Za-z0-9]{53}")
_PADDING_CATEGORIES = ("Cc", "Cf", "Cs", "Zl", "Zp")  # control, format (incl. bidi), separators


def padding_problem(value: str) -> str | None:
    """Why the value is not what its owner meant byte for byte, or None."""
    if any(unicodedata.category(ch) in _PADDING_CATEGORIES for ch in value):
        return "contains control or invisible formatting characters (e.g. NUL padding, a newline, bidi marks)"
    if value != value.strip():
        return "starts or ends with whitespace (often a newline from `kubectl create secret --from-file`)"
    return None


def meaningful_length(value: str) -> int:
    """Characters that carry the secret: without whitespace at the ends and without control characters."""
    return sum(1 for ch in value.strip() if unicodedata.category(ch) not in _PADDING_CATEGORIES)


@dataclass(frozen=True, slots=True)
class Strength:
    weak: bool
    guesses_log10: float | None  # zxcvbn's figure when weak; None when it is at least 10^10


def strength(value: str) -> Strength:
    """zxcvbn's verdict for the value without its padding."""
    meant = value.strip()
    digest = hashlib.sha256(meant.encode("utf-8", errors="surrogatepass")).digest()
    return _cached(digest, meant)


_CACHE: dict[bytes, Strength] = {}


def _cached(digest: bytes, value: str) -> Strength:
    # Keyed by digest so the cache never holds a secret value.
    found = _CACHE.get(digest)
    if found is None:
        weak_guesses = zxcvbn_estimate.at_least_log10(value[:ZXCVBN_MAX_LENGTH], MIN_GUESSES_LOG10)
        found = Strength(weak_guesses is not None, weak_guesses)
        if len(_CACHE) >= 4096:
            _CACHE.clear()
        _CACHE[digest] = found
    return found


def zxcvbn_guesses_log10(value: str) -> float:
    """zxcvbn's `guesses_log10` (rules/zxcvbn_estimate.py computes it, faster, with zxcvbn's code)."""
    return zxcvbn_estimate.guesses_log10(value)


def bcrypt_problem(value: str) -> str | None:
    """Why the raw value is not a bcrypt hash the backend should accept, or None."""
    match = _BCRYPT.fullmatch(value)
    if match is None:
        return "must be a bcrypt hash ($2b$12$ followed by 53 characters), exactly, without whitespace"
    variant, cost = match.group(1), int(match.group(2))
    if variant == "2x":
        return "is a $2x$ hash (from the broken pre-2011 crypt_blowfish); hash it again as $2b$"
    if not MIN_BCRYPT_COST <= cost <= MAX_BCRYPT_COST:
        return f"has cost {cost:02d}; use a cost from {MIN_BCRYPT_COST} to {MAX_BCRYPT_COST}"
    return None
