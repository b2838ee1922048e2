"""Security headers from the production checklist, per URL scope, in a ConfigMap.

Scopes: `default` (everything), `/call` (the page that embeds Jitsi and needs
camera and microphone) and `/chat` (may be framed by the app itself, SAMEORIGIN).
"""

from __future__ import annotations

import json
from typing import Any

from callplatform.model import Platform
from callplatform.render.labels import metadata, object_name
from callplatform.rules.values import is_bare_hostname

HEADERS_KEY = "headers.json"
CSP_KEY = "Content-Security-Policy"
CALL_SCOPE = "/call"
CHAT_SCOPE = "/chat"


class UnsafeHeader(ValueError):
    """A header value the writer built would not be read as one value (a bug, not bad input)."""


def host_source(host: str, scheme: str = "https") -> str:
    """The CSP host-source for `host`, or "" when it is not a bare hostname.

    The one way a spec value enters a header: only what CP007 accepts (no quotes, spaces,
    wildcards, schemes, ports or paths) is written; anything else is left out, which fails
    closed (the source is simply not allowed), and the rules block the platform anyway.
    """
    return f"{scheme}://{host}" if host and is_bare_hostname(host) else ""


def _origin(host: str) -> str:
    return host_source(host)


def _checked(value: str) -> str:
    if not all(" " <= ch <= "~" for ch in value):
        raise UnsafeHeader("a header value holds a character outside printable ASCII")
    return value


def content_security_policy(
    platform: Platform, *, environment: str | None = None, frame_ancestors: str = "'none'"
) -> str:
    env = environment or platform.environment
    jitsi = _origin(platform.jitsi.public_host)
    jitsi_wss = host_source(platform.jitsi.public_host, "wss")
    turn = _origin(platform.turn.host)
    styles = "'self' 'unsafe-inline'" if platform.calls.allow_unsafe_inline_styles else "'self'"

    def sources(*items: str) -> str:
        return " ".join(item for item in items if item)

    self_ = "'self'"

    directives = [
        "default-src 'self'",
        f"script-src {sources(self_, jitsi)}",
        f"style-src {styles}",
        f"img-src {sources(self_, 'data:', 'blob:', jitsi)}",
        "font-src 'self' data:",
        f"connect-src {sources(self_, jitsi, jitsi_wss, turn)}",
        f"media-src {sources(self_, 'blob:', jitsi)}",
        f"frame-src {sources(jitsi)}" if jitsi else "frame-src 'none'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        f"frame-ancestors {frame_ancestors}",
    ]
    if env != "development":
        directives.append("upgrade-insecure-requests")
    return _checked("; ".join(directives))


def permissions_policy(platform: Platform, *, media: bool) -> str:
    origin = _origin(platform.jitsi.public_host)
    allow = f'(self "{origin}")' if media and origin else "()"
    return _checked(
        ", ".join(
            [
                f"camera={allow}",
                f"microphone={allow}",
                f"display-capture={allow}",
                "geolocation=()",
                "payment=()",
                "usb=()",
            ]
        )
    )


def security_headers(platform: Platform, *, environment: str | None = None) -> dict[str, dict[str, str]]:
    env = environment or platform.environment

    def scope(frame_ancestors: str, frame_options: str, media: bool) -> dict[str, str]:
        headers = {
            CSP_KEY: content_security_policy(platform, environment=env, frame_ancestors=frame_ancestors),
            "Permissions-Policy": permissions_policy(platform, media=media),
            "X-Frame-Options": frame_options,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "strict-origin-when-cross-origin",
            "Cross-Origin-Opener-Policy": "same-origin",
        }
        if env != "development":
            headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
        return headers

    return {
        "default": scope("'none'", "DENY", media=False),
        CALL_SCOPE: scope("'none'", "DENY", media=True),
        CHAT_SCOPE: scope("'self'", "SAMEORIGIN", media=False),
    }


def security_headers_name(platform: Platform) -> str:
    return object_name(platform, "security-headers")


def render_security_headers_configmap(platform: Platform) -> dict[str, Any]:
    headers = security_headers(platform)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(platform, security_headers_name(platform), "security-headers"),
        "data": {
            HEADERS_KEY: json.dumps(headers, indent=2, sort_keys=True),
            CSP_KEY: headers["default"][CSP_KEY],
        },
    }
