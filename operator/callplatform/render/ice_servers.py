"""The ICE servers a browser needs for this platform, kept in a Secret with their credentials.

In `static` mode the list carries the TURN username and password. In `rest`
mode it carries none: the app mints time-limited credentials per session from
the shared secret (which it reads through its own secretKeyRef).
"""

from __future__ import annotations

import json
from typing import Any

from callplatform.model import Platform
from callplatform.render.labels import object_name
from callplatform.render.secrets import SecretValues, secret_manifest
from callplatform.rules.values import is_bare_hostname

ICE_SERVERS_KEY = "iceServers.json"


def ice_server_urls(platform: Platform) -> list[str]:
    """TURN URLs; none when the host is not a bare hostname (CP007 blocks such a platform)."""
    host, port, tls_port = platform.turn.host, platform.turn.port, platform.turn.tls_port
    if not is_bare_hostname(host):
        return []
    return [
        f"turn:{host}:{port}?transport=udp",
        f"turn:{host}:{port}?transport=tcp",
        f"turns:{host}:{tls_port}?transport=tcp",
    ]


def render_ice_servers(platform: Platform, secrets: SecretValues) -> list[dict[str, Any]]:
    turn = platform.turn
    relay: dict[str, Any] = {"urls": ice_server_urls(platform)}
    creds = turn.credentials
    if creds.mode == "static":
        values = secrets.get(creds.secret_name, {})
        relay["username"] = values.get(creds.username_key, "")
        relay["credential"] = values.get(creds.password_key, "")
    else:
        relay["credentialType"] = "rest"
        relay["ttlSeconds"] = creds.rest_ttl_seconds
    stun = [f"stun:{turn.host}:{turn.port}"] if is_bare_hostname(turn.host) else []
    return [{"urls": stun}, relay]


def ice_servers_secret_name(platform: Platform) -> str:
    return object_name(platform, "ice-servers")


def render_ice_servers_secret(platform: Platform, secrets: SecretValues) -> dict[str, Any]:
    document = json.dumps(render_ice_servers(platform, secrets), indent=2, sort_keys=True)
    return secret_manifest(
        platform, ice_servers_secret_name(platform), "ice-servers", {ICE_SERVERS_KEY: document}
    )
