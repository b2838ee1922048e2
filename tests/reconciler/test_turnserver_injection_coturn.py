"""The coturn injections of issue 10, against the real coturn 4.6: each hostile value is refused by
the rules before anything is rendered, and the conf rendered from it anyway starts coturn with no
directive the operator did not intend. A control shows the same value written naively does inject."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from reconciler_coturn import free_port, require_coturn, running_coturn
from reconciler_platforms import platform_manifest

from callplatform.findings import Severity
from callplatform.model import parse_platform
from callplatform.render.turnserver import render_turnserver_conf
from callplatform.rules import check_platform
from callplatform.rules.coturn_conf import MAX_LINE_BYTES

pytestmark = pytest.mark.coturn

USER = "calls"
PASSWORD = "turn-password-for-tests-9Qx2"
SHARED_SECRET = "shared-secret-for-tests-4Kd9Lm2Xq7Rt5Vw8Zb3N"
PRIVATE = "allowed-peer-ip=10.0.0.0-10.255.255.255"
METADATA = "allowed-peer-ip=169.254.169.254"


def _padded_to_line_buffer(prefix: str, injection: str) -> str:
    """A value whose directive line reaches coturn's 1023-byte read exactly where `injection` starts."""
    return "p" * (MAX_LINE_BYTES - len(prefix)) + injection


CASES: list[tuple[str, str, dict[str, str], str, str]] = [
    # (name, credentials mode, secret values, realm, the injected directive's log line)
    ("long-password", "static", {"TURN_PASSWORD": _padded_to_line_buffer(f"user={USER}:", PRIVATE)}, "",
     "White listing: 10.0.0.0-10.255.255.255"),
    ("long-shared-secret", "rest", {"TURN_SHARED_SECRET": _padded_to_line_buffer("static-auth-secret=", METADATA)},
     "", "White listing: 169.254.169.254"),
    ("password-newline", "static", {"TURN_PASSWORD": PASSWORD + "\n" + PRIVATE}, "",
     "White listing: 10.0.0.0-10.255.255.255"),
    ("realm-newline", "static", {}, "turn.example.com\n" + PRIVATE, "White listing: 10.0.0.0-10.255.255.255"),
]  # fmt: skip


@pytest.fixture(autouse=True)
def _coturn() -> None:
    require_coturn()


def _platform(port: int, mode: str, realm: str) -> Any:
    manifest: dict[str, Any] = platform_manifest(environment="development")
    turn = manifest["spec"]["turn"]
    relay_base = free_port()
    turn.update(port=port, tlsPort=free_port(), realm=realm)
    turn["relay"] = {"minPort": relay_base, "maxPort": relay_base + 50, "allowedPeerCIDRs": []}
    turn["credentials"]["mode"] = mode
    return parse_platform(manifest)


def _secrets(values: dict[str, str]) -> dict[str, dict[str, str]]:
    base = {"TURN_USERNAME": USER, "TURN_PASSWORD": PASSWORD, "TURN_SHARED_SECRET": SHARED_SECRET}
    return {"calls-secrets": {**base, **values}}


@pytest.mark.parametrize(("name", "mode", "values", "realm", "injected"), CASES, ids=[c[0] for c in CASES])
def test_hostile_value_is_refused_and_its_rendered_conf_injects_nothing(
    tmp_path: Path, name: str, mode: str, values: dict[str, str], realm: str, injected: str
) -> None:
    port = free_port()
    platform = _platform(port, mode, realm)
    secrets = _secrets(values)
    errors = [f for f in check_platform(platform, secrets) if f.severity is Severity.ERROR]
    assert {f.rule for f in errors} & {"CP017", "CP019"}, errors
    conf = render_turnserver_conf(platform, secrets)
    assert all(len(line.encode()) + 1 <= MAX_LINE_BYTES for line in conf.splitlines())
    with running_coturn(conf, port, tmp_path) as coturn:
        log = coturn.log()
    assert "White listing" not in log, name
    assert injected not in log


def test_control_the_same_long_password_written_naively_is_an_injection(tmp_path: Path) -> None:
    """Shows the test above would see the injection: coturn really splits the line at 1023 bytes."""
    port = free_port()
    platform = _platform(port, "static", "")
    conf = render_turnserver_conf(platform, _secrets({}))
    naive = conf.replace(f"user={USER}:{PASSWORD}", f"user={USER}:" + CASES[0][2]["TURN_PASSWORD"])
    assert naive != conf
    with running_coturn(naive, port, tmp_path) as coturn:
        log = coturn.log()
    assert "White listing: 10.0.0.0-10.255.255.255" in log


def test_the_longest_credentials_the_rules_allow_still_authenticate(tmp_path: Path) -> None:
    """The limits are not too strict: 256-byte password, 126-character realm work with coturn."""
    port = free_port()
    password = "Lq7" * 85 + "x"  # 256 bytes
    realm = ("r" * 62 + ".") * 2  # 126 characters
    platform = _platform(port, "static", realm[:-1] + "e")
    secrets = _secrets({"TURN_PASSWORD": password})
    assert not [f for f in check_platform(platform, secrets) if f.rule in ("CP017", "CP019")]
    with running_coturn(render_turnserver_conf(platform, secrets), port, tmp_path) as coturn:
        output = coturn.relay_to("127.0.0.1", user=USER, password=password)
    assert "Cannot complete Allocation" not in output
