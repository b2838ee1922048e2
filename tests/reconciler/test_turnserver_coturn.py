"""The rendered turnserver.conf against the real coturn 4.6: accepted whole, and enforcing the deny list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from reconciler_coturn import free_port, require_coturn, running_coturn
from reconciler_platforms import platform_manifest

from callplatform.model import parse_platform
from callplatform.render.turnserver import DENIED_PEER_NETWORKS, network_range, render_turnserver_conf

pytestmark = pytest.mark.coturn

USER, PASSWORD = "calls", "turn-password-for-tests-9Qx2"
SHARED_SECRET = "shared-secret-for-tests-4Kd9Lm2Xq7Rt5Vw8Zb3N"
FORBIDDEN = "403 (Forbidden IP)"


@pytest.fixture(autouse=True)
def _coturn() -> None:
    require_coturn()


def _conf(port: int, *, mode: str = "static", allowed: list[str] | None = None) -> str:
    manifest: dict[str, Any] = platform_manifest(environment="development")
    turn = manifest["spec"]["turn"]
    turn["port"] = port
    turn["tlsPort"] = free_port()
    relay_base = free_port()
    turn["relay"] = {"minPort": relay_base, "maxPort": relay_base + 50, "allowedPeerCIDRs": allowed or []}
    turn["credentials"]["mode"] = mode
    platform = parse_platform(manifest)
    secrets = {
        "calls-secrets": {
            "TURN_USERNAME": USER,
            "TURN_PASSWORD": PASSWORD,
            "TURN_SHARED_SECRET": SHARED_SECRET,
        }
    }
    return render_turnserver_conf(platform, secrets)


def _without_deny_lines(conf: str, keep: str | None = None) -> str:
    return "".join(
        line
        for line in conf.splitlines(keepends=True)
        if not line.startswith("denied-peer-ip=") or (keep is not None and line.strip() == keep)
    )


def test_coturn_accepts_every_line_and_lists_every_denied_range(tmp_path: Path) -> None:
    port = free_port()
    with running_coturn(_conf(port), port, tmp_path) as coturn:
        log = coturn.log()
    assert "Bad configuration format" not in log
    assert "Wrong address format" not in log
    assert "CONFIG ERROR" not in log
    for cidr in DENIED_PEER_NETWORKS:
        assert f"Black listing: {network_range(cidr)}" in log, cidr


def test_relay_to_loopback_is_refused(tmp_path: Path) -> None:
    port = free_port()
    # allow-loopback-peers turns off coturn's own loopback refusal: only the rendered deny list remains.
    with running_coturn(_conf(port), port, tmp_path, "--allow-loopback-peers") as coturn:
        output = coturn.relay_to("127.0.0.1", user=USER, password=PASSWORD)
    assert FORBIDDEN in output


def test_the_loopback_deny_line_alone_refuses_the_relay(tmp_path: Path) -> None:
    port = free_port()
    conf = _without_deny_lines(_conf(port), keep=f"denied-peer-ip={network_range('127.0.0.0/8')}")
    with running_coturn(conf, port, tmp_path, "--allow-loopback-peers") as coturn:
        output = coturn.relay_to("127.0.0.1", user=USER, password=PASSWORD)
    assert FORBIDDEN in output


def test_control_without_deny_lines_the_same_relay_is_allowed(tmp_path: Path) -> None:
    """Shows the two tests above would notice a deny list that does not work."""
    port = free_port()
    with running_coturn(_without_deny_lines(_conf(port)), port, tmp_path, "--allow-loopback-peers") as coturn:
        output = coturn.relay_to("127.0.0.1", user=USER, password=PASSWORD)
    assert FORBIDDEN not in output
    assert "Total connect time" in output


def test_allowed_peer_cidr_opens_exactly_that_range(tmp_path: Path) -> None:
    port = free_port()
    conf = _conf(port, allowed=["127.0.0.1/32"])
    with running_coturn(conf, port, tmp_path, "--allow-loopback-peers") as coturn:
        opened = coturn.relay_to("127.0.0.1", user=USER, password=PASSWORD)
        still_denied = coturn.relay_to("127.0.0.2", user=USER, password=PASSWORD)
    assert FORBIDDEN not in opened
    assert FORBIDDEN in still_denied


def test_rest_mode_accepts_the_shared_secret_and_refuses_another(tmp_path: Path) -> None:
    port = free_port()
    with running_coturn(_conf(port, mode="rest"), port, tmp_path) as coturn:
        good = coturn.relay_to("127.0.0.1", rest_secret=SHARED_SECRET)
        bad = coturn.relay_to("127.0.0.1", rest_secret="not-the-shared-secret-at-all-000000")
        log = coturn.log()
    assert "Bad configuration format" not in log
    assert "Cannot complete Allocation" not in good
    assert "Cannot complete Allocation" in bad


def test_static_mode_refuses_a_wrong_password(tmp_path: Path) -> None:
    port = free_port()
    with running_coturn(_conf(port), port, tmp_path) as coturn:
        bad = coturn.relay_to("127.0.0.1", user=USER, password="wrong-password-000000")
    assert "Cannot complete Allocation" in bad
