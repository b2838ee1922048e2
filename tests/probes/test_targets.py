"""Probe targets built from a Platform and its Secrets, configuration problems included."""

from __future__ import annotations

import pytest

from callplatform.model import parse_platform
from callplatform.probes.credentials import RestAuth, StaticAuth
from callplatform.probes.jitsi import HttpCheck
from callplatform.probes.targets import (
    NotRunnable,
    TurnAclTarget,
    TurnAllocateTarget,
    TurnBindingTarget,
    TurnRelayTarget,
    build_targets,
    target_component,
)
from callplatform.probes.tls import TlsOptions

from .platforms import platform_manifest

GOOD_JWT = "j" * 40
SECRETS = {
    "calls-secrets": {
        "TURN_USERNAME": "calls",
        "TURN_PASSWORD": "turn-password-value-123",
        "TURN_SHARED_SECRET": "shared-secret-value-123",
        "JITSI_JWT_SECRET": GOOD_JWT,
    }
}


def probes_of(targets: object) -> list[tuple[str, str]]:
    return [(target_component(t), t.probe) for t in targets.targets]  # type: ignore[attr-defined]


def test_default_targets_cover_every_probe() -> None:
    platform = parse_platform(platform_manifest(turn_port=3478, tls_port=5349))
    targets = build_targets(platform, SECRETS)
    assert probes_of(targets) == [
        ("jitsi", "web"), ("jitsi", "bosh"), ("jitsi", "jvb"), ("jitsi", "jicofo"),
        ("coturn", "udp"), ("coturn", "tcp"), ("coturn", "tls"), ("coturn", "allocate"), ("coturn_acl", "acl"),
        ("coturn", "relay"),
    ]  # fmt: skip
    web, bosh, jvb, jicofo = targets.targets[:4]
    assert isinstance(web, HttpCheck) and web.url == "https://meet.example.org/"
    assert isinstance(bosh, HttpCheck) and (bosh.url, bosh.kind, bosh.bosh_domain) == (
        "https://meet.example.org/http-bind", "bosh", "meet.probe.test",
    )  # fmt: skip
    assert isinstance(jvb, HttpCheck) and jvb.url == "http://jvb.calls.svc:8080/about/health"
    assert isinstance(jicofo, HttpCheck) and jicofo.url == "http://jicofo.calls.svc:8888/about/health"
    tls = targets.targets[6]
    assert isinstance(tls, TurnBindingTarget)
    assert (tls.endpoint.host, tls.endpoint.port, tls.endpoint.server_name) == (
        "127.0.0.1",
        5349,
        "localhost",
    )
    allocate = targets.targets[7]
    assert isinstance(allocate, TurnAllocateTarget) and allocate.auth == StaticAuth(
        "calls", "turn-password-value-123"
    )
    assert targets.targets[8] == TurnAclTarget(allocate.endpoint, allocate.auth)
    assert targets.targets[9] == TurnRelayTarget(allocate.endpoint, allocate.auth)
    assert allocate.endpoint.transport == "udp"  # the relay probe needs Data indications over UDP


def test_the_cli_leaves_the_acl_and_relay_probes_out_unless_asked() -> None:
    platform = parse_platform(platform_manifest(turn_port=3478, tls_port=5349))
    probes = probes_of(build_targets(platform, SECRETS, turn_acl=False, turn_relay=False))
    assert ("coturn_acl", "acl") not in probes and ("coturn", "relay") not in probes
    assert ("coturn", "allocate") in probes


def test_overridden_urls_and_token_probe() -> None:
    probes = {
        "webURL": "http://web.local/",
        "boshURL": "http://prosody.local:5280/http-bind",
        "jvbHealthURL": "http://jvb.local:8080/about/health",
        "jicofoHealthURL": "http://jicofo.local:8888/about/health",
        "tokenURL": "http://web.local/room",
    }
    targets = build_targets(parse_platform(platform_manifest(probes=probes)), SECRETS)
    urls = [t.url for t in targets.targets if isinstance(t, HttpCheck)]
    assert urls == [*probes.values()]
    jwt_check = targets.targets[4]
    assert isinstance(jwt_check, HttpCheck) and jwt_check.token is not None
    assert (jwt_check.token.app_id, jwt_check.token.subject) == ("calls", "meet.probe.test")


def test_rest_mode_uses_the_shared_secret() -> None:
    targets = build_targets(parse_platform(platform_manifest(mode="rest")), SECRETS)
    allocate = next(t for t in targets.targets if isinstance(t, TurnAllocateTarget))
    assert isinstance(allocate, TurnAllocateTarget)
    assert isinstance(allocate.auth, RestAuth) and allocate.auth.shared_secret == "shared-secret-value-123"


def test_missing_secret_key_is_a_failing_probe_naming_the_key_only() -> None:
    secrets = {"calls-secrets": {"TURN_USERNAME": "calls", "JITSI_JWT_SECRET": GOOD_JWT}}
    targets = build_targets(parse_platform(platform_manifest()), secrets)
    problem = targets.targets[-1]
    assert problem == NotRunnable(
        "coturn",
        "allocate",
        "missing_secret",
        "Secret 'calls-secrets' key 'TURN_PASSWORD' is missing or empty",
    )


def test_production_weak_jwt_secret_fails_jitsi_without_the_value() -> None:
    secrets = {"calls-secrets": {**SECRETS["calls-secrets"], "JITSI_JWT_SECRET": "short-secret-value"}}
    targets = build_targets(parse_platform(platform_manifest(environment="production")), secrets)
    weak = [t for t in targets.targets if isinstance(t, NotRunnable)]
    assert len(weak) == 1 and (weak[0].component, weak[0].probe, weak[0].reason) == (
        "jitsi",
        "jwt",
        "weak_secret",
    )
    assert "short-secret-value" not in weak[0].message
    assert "shorter than 32 characters" in weak[0].message


def test_weak_jwt_secret_is_allowed_outside_production() -> None:
    secrets = {"calls-secrets": {**SECRETS["calls-secrets"], "JITSI_JWT_SECRET": "short"}}
    targets = build_targets(parse_platform(platform_manifest(environment="staging")), secrets)
    assert not [t for t in targets.targets if isinstance(t, NotRunnable)]


def test_missing_jwt_secret_in_production() -> None:
    targets = build_targets(
        parse_platform(platform_manifest(environment="production", jwt_ref_name="absent")), SECRETS
    )
    assert [t.reason for t in targets.targets if isinstance(t, NotRunnable)] == ["missing_secret"]


def test_secrets_never_appear_in_target_reprs() -> None:
    targets = build_targets(parse_platform(platform_manifest(probes={"tokenURL": "http://x/"})), SECRETS)
    text = repr(targets) + repr(build_targets(parse_platform(platform_manifest(mode="rest")), SECRETS))
    for value in SECRETS["calls-secrets"].values():
        if value != "calls":
            assert value not in text


def test_empty_hosts_are_not_configured() -> None:
    targets = build_targets(
        parse_platform(platform_manifest(public_host="", turn_host="", turn_name="")), SECRETS
    )
    assert [(t.component, t.probe, t.reason) for t in targets.targets if isinstance(t, NotRunnable)] == [
        ("jitsi", "web", "not_configured"),
        ("coturn", "udp", "not_configured"),
    ]


def test_tls_settings_come_from_the_environment_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    platform = parse_platform(platform_manifest())
    monkeypatch.setenv("CALLPLATFORM_PROBE_CA_FILE", "/etc/callplatform/ca.pem")
    monkeypatch.setenv("CALLPLATFORM_PROBE_INSECURE", "false")
    assert build_targets(platform, SECRETS).tls == TlsOptions(ca_file="/etc/callplatform/ca.pem")
    assert build_targets(platform, SECRETS, tls=TlsOptions(insecure=True)).tls == TlsOptions(insecure=True)
    monkeypatch.setenv("CALLPLATFORM_PROBE_INSECURE", "1")
    assert build_targets(platform, SECRETS).tls.insecure


def test_turn_relay_probe_can_be_turned_off_per_platform() -> None:
    manifest = platform_manifest(turn_port=3478, tls_port=5349)
    manifest["spec"]["monitoring"]["turnRelayProbe"] = False
    probes = probes_of(build_targets(parse_platform(manifest), SECRETS))
    assert ("coturn", "relay") not in probes
    assert ("coturn", "allocate") in probes and ("coturn_acl", "acl") in probes
