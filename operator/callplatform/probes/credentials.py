"""TURN credentials: static long-term ones, or REST ones minted from coturn's shared secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

PROBE_USER = "callplatform-probe"


@dataclass(frozen=True, slots=True)
class TurnCredentials:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class StaticAuth:
    username: str
    password: str = field(repr=False)

    def credentials(self, now: float) -> TurnCredentials:
        del now
        return TurnCredentials(self.username, self.password)


@dataclass(frozen=True, slots=True)
class RestAuth:
    """coturn `use-auth-secret`: credentials valid until `now + ttl_seconds`."""

    shared_secret: str = field(repr=False)
    user: str = PROBE_USER
    ttl_seconds: int = 300

    def credentials(self, now: float) -> TurnCredentials:
        return rest_credentials(self.shared_secret, self.user, int(now) + self.ttl_seconds)


TurnAuth = StaticAuth | RestAuth


def rest_credentials(shared_secret: str, user: str, expiry: int) -> TurnCredentials:
    """username `<expiry>:<user>`, password base64(HMAC-SHA1(secret, username))."""
    username = f"{expiry}:{user}" if user else str(expiry)
    digest = hmac.new(shared_secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredentials(username, base64.b64encode(digest).decode("ascii"))
