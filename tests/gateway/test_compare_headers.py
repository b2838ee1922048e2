"""compare_headers, directive by directive (pure; the nginx test covers the same over the wire)."""

from __future__ import annotations

from gateway_platforms import gateway_platform

from callplatform.model import parse_platform
from callplatform.probes.headers import MISMATCH, MISSING, compare_headers, headers_targets, verdict
from callplatform.render.security_headers import security_headers

EXPECTED = tuple(security_headers(gateway_platform())["/call"].items())


def served(**changes: str | None) -> dict[str, list[str]]:
    headers = {name.lower(): [value] for name, value in EXPECTED}
    for name, value in changes.items():
        key = name.replace("_", "-").lower()
        if value is None:
            headers.pop(key)
        else:
            headers[key] = [value]
    return headers


def test_identical_headers_have_no_drift_and_names_are_case_insensitive() -> None:
    assert compare_headers(EXPECTED, served()) == []
    # Directive order, source order and case do not matter to browsers, so not to the probe.
    csp = dict(EXPECTED)["Content-Security-Policy"]
    reordered = "; ".join(reversed(csp.split("; "))).upper().replace("'SELF'", "'self'")
    assert compare_headers(EXPECTED, served(content_security_policy=reordered)) == []


def test_a_missing_header_is_named_with_its_rendered_value() -> None:
    (drift,) = compare_headers(EXPECTED, served(strict_transport_security=None))
    assert (drift.header, drift.directive, drift.reason) == ("Strict-Transport-Security", "", MISSING)


def test_permissions_policy_allowlists_compare_per_feature() -> None:
    policy = dict(EXPECTED)["Permissions-Policy"].replace("camera=(self", "camera=(")
    (drift,) = compare_headers(EXPECTED, served(permissions_policy=policy))
    assert (drift.directive, drift.reason) == ("camera", MISMATCH)
    assert "lacks self" in drift.describe()
    extra = dict(EXPECTED)["Permissions-Policy"] + ", autoplay=*"
    (added,) = compare_headers(EXPECTED, served(permissions_policy=extra))
    assert added.describe() == "Permissions-Policy: autoplay is served but not rendered"


def test_hsts_directives() -> None:
    (drift,) = compare_headers(EXPECTED, served(strict_transport_security="max-age=300; includeSubDomains"))
    assert drift.directive == "max-age" and "is 300, rendered 63072000" in drift.describe()


def test_a_header_served_twice_with_different_values_is_drift() -> None:
    headers = served()
    headers["x-frame-options"] = ["DENY", "SAMEORIGIN"]
    (drift,) = compare_headers(EXPECTED, headers)
    assert "served 2 times" in drift.describe()


def test_first_drift_decides_the_message_and_5xx_proves_nothing() -> None:
    platform = gateway_platform()
    check = next(c for c in headers_targets(platform) if c.probe == "call")
    drifts = compare_headers(check.expected, served(x_frame_options="ALLOWALL", referrer_policy="unsafe-url"))
    result = verdict(check, 200, drifts, 0.01)
    assert (
        not result.success
        and "X-Frame-Options is ALLOWALL" in result.message
        and "(and 1 more)" in result.message
    )
    assert verdict(check, 503, [], 0.01).reason == "http_status"
    assert verdict(check, 401, [], 0.01).success  # the headers are what matters, not the login wall


def test_probe_urls_default_to_the_hostname_and_can_be_overridden() -> None:
    checks = {c.probe: c.url for c in headers_targets(gateway_platform())}
    assert checks == {
        "root": "https://app.calls.test/",
        "call": "https://app.calls.test/call",
        "chat": "https://app.calls.test/chat",
    }
    overridden = gateway_platform(
        gateway={
            "hostname": "app.calls.test",
            "headersProbe": {"chatURL": "https://127.0.0.1:8443/chat/room"},
        }
    )
    assert {c.probe: c.url for c in headers_targets(overridden)}["chat"] == "https://127.0.0.1:8443/chat/room"
    off = gateway_platform(gateway={"hostname": "a.test", "headersProbe": {"enabled": False}})
    assert headers_targets(off) == []
    assert headers_targets(parse_platform({"spec": {}})) == []


def test_build_targets_schedule_the_headers_component() -> None:
    """The scheduler probes per component, so `headers` gets its own registry entry and condition."""
    from callplatform.probes.targets import build_targets

    targets = build_targets(gateway_platform(), {})
    assert "headers" in targets.components()
    without = build_targets(gateway_platform(gateway={}), {})
    assert "headers" not in without.components()
