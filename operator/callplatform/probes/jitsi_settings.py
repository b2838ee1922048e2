"""Failures that a Jitsi default causes, turned into a reason whose message names the setting.

A refused jicofo port, a 403 from prosody's /health and a 404 from the
videobridge's /colibri/stats look like outages but are configuration: the
component is up and refuses the operator because of a default. docs/health.md
lists each setting with the component's default.
"""

from __future__ import annotations

import dataclasses

from callplatform.probes.result import ProbeResult

JICOFO_REST_HINT = (
    "jicofo's REST API (/about/health, /metrics on port 8888) is off unless JICOFO_ENABLE_REST=1 "
    "(docker-jitsi-meet), and upstream jicofo binds it to loopback: enable it and make it listen on "
    "an address the operator can reach"
)
PROSODY_HEALTH_HINT = (
    "prosody's mod_http_health answers /health with 403 to callers outside http_health_allow_ips "
    '(default { "::1", "127.0.0.1" }) and http_health_allow_cidr (default empty): add the '
    'operator\'s pod network, e.g. http_health_allow_cidr = "10.0.0.0/8"'
)
COLIBRI_HINT = (
    "the videobridge serves /colibri/stats only with the COLIBRI REST API on: "
    "COLIBRI_REST_ENABLED=true (docker-jitsi-meet, default false), which sets "
    "videobridge.apis.rest.enabled = true in jvb.conf"
)


def _explained(result: ProbeResult, reason: str, hint: str) -> ProbeResult:
    return dataclasses.replace(result, reason=reason, message=f"{result.message}: {hint}")


def explain(service: str, result: ProbeResult) -> ProbeResult:
    """The result with a setting-specific reason when `service`'s default explains the failure."""
    if result.success:
        return result
    if service == "jicofo" and result.reason == "refused":
        return _explained(result, "rest_refused", JICOFO_REST_HINT)
    if service == "prosody" and result.http_status == 403:
        return _explained(result, "not_allowed", PROSODY_HEALTH_HINT)
    if service == "colibri" and result.http_status in (404, 405):
        return _explained(result, "rest_disabled", COLIBRI_HINT)
    return result
