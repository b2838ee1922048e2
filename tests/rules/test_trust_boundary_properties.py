"""Property: arbitrary Unicode in any free-text spec field or Secret value never gets past `validate`
into a file that says something else. When the rules find no error, turnserver.conf holds exactly
the given values, every line fits coturn's 1023-byte read and is an intended directive, the CSP
pins exactly the given hosts, and iceServers.json carries the credentials unchanged."""

from __future__ import annotations

import base64
import json
import unicodedata
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rules_fixtures import GOOD_SECRETS, set_path, valid_manifest

from callplatform.findings import Severity
from callplatform.model import parse_platform
from callplatform.render import render_platform
from callplatform.render.security_headers import CSP_KEY
from callplatform.rules import check_platform
from callplatform.rules.coturn_conf import MAX_LINE_BYTES
from callplatform.rules.text_fields import TEXT_FIELDS

INTENDED_DIRECTIVES = {
    "listening-port", "tls-listening-port", "realm", "fingerprint", "lt-cred-mech", "use-auth-secret",
    "static-auth-secret", "user", "no-cli", "no-multicast-peers", "no-tlsv1", "no-tlsv1_1", "min-port",
    "max-port", "user-quota", "total-quota", "stale-nonce", "log-file", "denied-peer-ip", "allowed-peer-ip",
    "prometheus", "prometheus-port",
}  # fmt: skip
TRICKY = ["\n", "\r", "\x00", "\x1b", "\u2028", "\u202e", "\u0301", "\u00a0", "\ufeff", "#", ":", " ", "\t",
          "=", "'", '"', ";", ",", "*", "0x", "allowed-peer-ip=10.0.0.0-10.255.255.255", "https://", "é", "🎉"]  # fmt: skip
TEXT = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(st.sampled_from(TRICKY), st.text(max_size=8)), max_size=12).map("".join),
    st.builds(lambda pad, tail: "A7q" * pad + tail, st.integers(0, 400), st.sampled_from(TRICKY)),
)
HOST_FIELDS = [
    "spec.jitsi.publicHost",
    "spec.turn.host",
    "spec.jitsi.domain",
    "spec.turn.probeHost",
    "spec.turn.realm",
]
SPEC_FIELDS = HOST_FIELDS + [f.path for f in TEXT_FIELDS if f.path.startswith("spec.") and "[]" not in f.path]
LIST_FIELDS = ["spec.calls.command", "spec.calls.migration.command", "spec.demoSeed.command"]
SECRET_KEYS = list(GOOD_SECRETS)


def _decoded(secret: dict[str, Any], key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


def _check_conf(conf: str, platform: Any, values: dict[str, str]) -> None:
    creds = platform.turn.credentials
    for line in conf.splitlines():
        assert len(line.encode()) + 1 <= MAX_LINE_BYTES  # coturn reads it in one piece
        assert line == line.strip()  # coturn drops surrounding whitespace
        assert not any(unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") for ch in line)
        if line.startswith("#"):
            assert line.isascii() and line.isprintable()
            continue
        directive, _, value = line.partition("=")
        assert directive in INTENDED_DIRECTIVES, directive
        if directive == "realm":
            assert value == platform.turn.effective_realm
        if directive == "user":
            assert value == f"{values[creds.username_key]}:{values[creds.password_key]}"
        if directive == "static-auth-secret":
            assert value == values[creds.shared_secret_key]
    if creds.mode == "static":
        assert f"user={values[creds.username_key]}:{values[creds.password_key]}" in conf.splitlines()
    assert f"realm={platform.turn.effective_realm}" in conf.splitlines()


def _judge_and_render(manifest: dict[str, Any], values: dict[str, str]) -> None:
    platform = parse_platform(manifest)
    secrets = {"calls-secrets": values}
    errors = [f for f in check_platform(platform, secrets) if f.severity is Severity.ERROR]
    if errors:
        return  # validate (and so csp, render and the operator) refuse it: nothing is written
    desired = render_platform(platform, secrets)
    _check_conf(_decoded(desired.turn_config_secret, "turnserver.conf"), platform, values)
    csp = desired.security_headers["data"][CSP_KEY]
    assert csp.isascii() and csp.isprintable()
    assert f"frame-src https://{platform.jitsi.public_host}" in csp
    assert f"https://{platform.turn.host}" in csp
    ice = json.loads(_decoded(desired.ice_servers_secret, "iceServers.json"))
    if platform.turn.credentials.mode == "static":
        assert ice[1]["username"] == values["TURN_USERNAME"]
        assert ice[1]["credential"] == values["TURN_PASSWORD"]
    assert ice[0]["urls"] == [f"stun:{platform.turn.host}:{platform.turn.port}"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(SPEC_FIELDS), value=TEXT)
def test_a_spec_text_field_is_refused_or_written_as_given(field: str, value: str) -> None:
    _judge_and_render(set_path(valid_manifest(), field, value), dict(GOOD_SECRETS))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(LIST_FIELDS), values=st.lists(TEXT, max_size=3))
def test_a_command_is_refused_or_kept(field: str, values: list[str]) -> None:
    _judge_and_render(set_path(valid_manifest(), field, values), dict(GOOD_SECRETS))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(SECRET_KEYS), value=TEXT, rest=st.booleans())
def test_a_secret_value_is_refused_or_written_as_given(key: str, value: str, rest: bool) -> None:
    manifest = valid_manifest()
    if rest:
        manifest = set_path(manifest, "spec.turn.credentials.mode", "rest")
    _judge_and_render(manifest, {**GOOD_SECRETS, key: value})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=TEXT)
def test_a_shared_secret_is_refused_or_written_as_given(value: str) -> None:
    manifest = set_path(valid_manifest(), "spec.turn.credentials.mode", "rest")
    platform = parse_platform(manifest)
    values = {**GOOD_SECRETS, "TURN_SHARED_SECRET": value}
    secrets = {"calls-secrets": values}
    if [f for f in check_platform(platform, secrets) if f.severity is Severity.ERROR]:
        return
    conf = _decoded(render_platform(platform, secrets).turn_config_secret, "turnserver.conf")
    _check_conf(conf, platform, values)
    assert f"static-auth-secret={value}" in conf.splitlines()
