"""The outcome of one probe: what the health registry, metrics and CLI consume."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


class ComponentHealthView(Protocol):
    """What a pass reads of a component's last probe round (the health registry's entries)."""

    @property
    def healthy(self) -> bool: ...
    @property
    def reason(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def checked_at(self) -> Any: ...


# (namespace, platform, component) -> the component's health, or None before its first round.
HealthLookup = Callable[[str, str, str], ComponentHealthView | None]

COMPONENTS = ("jitsi", "coturn", "headers", "coturn_acl")

# Probe names per component, in the order a failure is reported (first failing wins).
PROBE_ORDER: dict[str, tuple[str, ...]] = {
    "jitsi": ("web", "bosh", "prosody", "jvb", "colibri", "jicofo", "jicofo_metrics", "jvb_metrics", "jwt"),
    "coturn": ("udp", "tcp", "tls", "allocate", "relay"),
    "coturn_acl": ("acl",),
    "headers": ("root", "call", "chat"),
}

# The bounded vocabulary of failure reasons (metric labels and condition reasons use it).
REASONS = (
    "timeout",
    "refused",
    "tls_error",
    "auth_failed",
    "forbidden",
    "quota",
    "capacity",
    "bad_response",
    "cert_expiring",
    "http_status",
    "too_many_redirects",
    "connection_error",
    "dns_error",
    "weak_secret",
    "missing_secret",
    "not_configured",
    "allocation_leaked",
    "header_missing",
    "header_mismatch",
    "internal_peer_allowed",
    "packets_lost",  # the relay probe: nothing came back through the relay
    # Jitsi settings a probe depends on (the message names the setting: probes/jitsi_settings.py)
    "rest_refused",
    "rest_disabled",
    "not_allowed",
    # Jitsi's own metrics (probes/jitsi_metrics.py)
    "no_operational_bridges",
    "bad_metrics",
)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe's verdict. `message` is for humans and never carries a secret."""

    component: str
    probe: str
    success: bool
    reason: str = ""
    duration_seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    cert_not_after: float | None = None
    message: str = ""
    target: str = ""  # host:port or URL without query, for humans
    http_status: int = 0  # the HTTP status code an HTTP probe got, 0 when none
    facts: dict[str, float] = field(default_factory=dict)  # numbers read from Jitsi's /metrics
    degraded: str = ""  # why a component that works is degraded ("draining", "stress_high"), or ""

    def as_dict(self) -> dict[str, object]:
        return {
            "component": self.component,
            "probe": self.probe,
            "success": self.success,
            "reason": self.reason,
            "durationSeconds": round(self.duration_seconds, 6),
            "phases": {name: round(value, 6) for name, value in self.phases.items()},
            "certNotAfter": self.cert_not_after,
            "message": self.message,
            "target": self.target,
            **({"facts": dict(self.facts)} if self.facts else {}),
        }


def failure(
    component: str,
    probe: str,
    reason: str,
    message: str,
    *,
    duration_seconds: float = 0.0,
    target: str = "",
    phases: dict[str, float] | None = None,
    cert_not_after: float | None = None,
    http_status: int = 0,
) -> ProbeResult:
    assert reason in REASONS, reason
    return ProbeResult(
        component=component,
        probe=probe,
        success=False,
        reason=reason,
        duration_seconds=duration_seconds,
        phases=phases or {},
        cert_not_after=cert_not_after,
        message=message,
        target=target,
        http_status=http_status,
    )
