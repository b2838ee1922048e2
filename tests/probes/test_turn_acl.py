"""The TURN ACL probe: real coturn from the rendered turnserver.conf refuses every internal peer;
a conf that allows 127.0.0.1 is caught, naming it; pion/turn (no peer filter) is caught too."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from callplatform.model import parse_platform
from callplatform.probes.credentials import StaticAuth
from callplatform.probes.tls import DEFAULT_TLS
from callplatform.probes.turn import DEFAULT_RETRANSMIT, TurnEndpoint
from callplatform.probes.turn_acl import INTERNAL_PEERS, judge, permissions_on_one_allocation, probe_turn_acl
from callplatform.render.turnserver import render_turnserver_conf

from .servers import STATIC_PASSWORD, STATIC_USER, running_pion

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reconciler"))
from reconciler_coturn import free_port, require_coturn, running_coturn
from reconciler_platforms import platform_manifest

USER, PASSWORD = "calls", "turn-password-for-acl-tests-7Hq2"
IPV4_PEERS = [peer for peer in INTERNAL_PEERS if ":" not in peer]
IPV6_PEERS = [peer for peer in INTERNAL_PEERS if ":" in peer]


def rendered_conf(port: int, allowed: list[str]) -> tuple[str, str]:
    """turnserver.conf as the operator renders it, and the realm it sets."""
    manifest: dict[str, Any] = platform_manifest(environment="development")
    turn = manifest["spec"]["turn"]
    turn["port"] = port
    turn["tlsPort"] = free_port()
    relay_base = free_port()
    turn["relay"] = {"minPort": relay_base, "maxPort": relay_base + 50, "allowedPeerCIDRs": allowed}
    turn["credentials"]["mode"] = "static"
    platform = parse_platform(manifest)
    secrets = {
        "calls-secrets": {"TURN_USERNAME": USER, "TURN_PASSWORD": PASSWORD, "TURN_SHARED_SECRET": "x" * 40}
    }
    return render_turnserver_conf(platform, secrets), platform.turn.effective_realm


def test_judge_sorts_answers() -> None:
    verdict = judge(
        {
            "10.0.0.1": (403, "Forbidden IP"),
            "127.0.0.1": (0, ""),
            "::1": (443, "Peer Address Family Mismatch"),
            "fd00::1": (400, "Bad Request"),
        }
    )
    assert verdict.refused == ("10.0.0.1",)
    assert verdict.accepted == ("127.0.0.1",)
    assert verdict.family_refused == ("::1",)  # neither accepted nor proof of a deny list
    assert verdict.unexpected == (("fd00::1", "400 Bad Request"),)
    assert verdict.summary() == (
        "relays to internal peers: 127.0.0.1; not refused with 403: fd00::1 (400 Bad Request); "
        "1 internal peers refused; refused for their address family (443), deny list untested: ::1"
    )


@pytest.mark.coturn
async def test_ipv6_peers_on_an_ipv4_relay_are_refused_by_family_not_accepted(tmp_path: Path) -> None:
    """coturn answers 443 (not 403) to an IPv6 peer on an IPv4 relay, as a server that ignores
    REQUESTED-ADDRESS-FAMILY would make the probe ask: reported as family-refused, deny list untested."""
    require_coturn()
    port = free_port()
    conf, _ = rendered_conf(port, [])
    with running_coturn(conf, port, tmp_path):
        credentials = StaticAuth(USER, PASSWORD).credentials(0)
        answers, relayed = await permissions_on_one_allocation(
            TurnEndpoint("127.0.0.1", port, "udp"),
            credentials,
            IPV6_PEERS,
            4,
            DEFAULT_TLS,
            DEFAULT_RETRANSMIT,
        )
    assert relayed == "127.0.0.1"
    assert {code for code, _ in answers.values()} == {443}, answers
    verdict = judge(answers)
    assert (verdict.accepted, verdict.refused, verdict.unexpected) == ((), (), ())
    assert verdict.family_refused == tuple(IPV6_PEERS)
    assert "refused for their address family (443), deny list untested: ::1," in verdict.summary()


@pytest.mark.coturn
async def test_an_ipv6_only_relay_judges_the_ipv6_peers_and_leaves_ipv4_untested(tmp_path: Path) -> None:
    require_coturn()
    port = free_port()
    conf, _ = rendered_conf(port, [])
    with running_coturn(conf, port, tmp_path, relay_ips=("::1",)):
        result = await probe_turn_acl(TurnEndpoint("127.0.0.1", port, "udp"), StaticAuth(USER, PASSWORD))
    assert result.success, result  # before: the IPv4 Allocate's 440 failed the whole probe
    assert result.message == (
        f"{len(IPV6_PEERS)} internal peers refused; untested: {', '.join(IPV4_PEERS)} "
        "(no IPv4 relay: Allocate rejected: 440 Unsupported address family)"
    )


@pytest.mark.coturn
@pytest.mark.parametrize("ipv6_relay", [True, False], ids=["ipv6-relay", "ipv4-only"])
async def test_rendered_deny_list_refuses_every_internal_peer(tmp_path: Path, ipv6_relay: bool) -> None:
    require_coturn()
    port = free_port()
    conf, _ = rendered_conf(port, [])
    extra = ("--relay-ip", "::1") if ipv6_relay else ()
    with running_coturn(conf, port, tmp_path, *extra) as coturn:
        result = await probe_turn_acl(TurnEndpoint("127.0.0.1", port, "udp"), StaticAuth(USER, PASSWORD))
        log = coturn.log()
    assert result.success, result
    assert (result.component, result.probe) == ("coturn_acl", "acl")
    if ipv6_relay:
        assert result.message == f"{len(INTERNAL_PEERS)} internal peers refused"
    else:
        assert result.message.startswith(
            f"{len(IPV4_PEERS)} internal peers refused; untested: {', '.join(IPV6_PEERS)}"
        )
        assert "no IPv6 relay" in result.message
    assert PASSWORD not in repr(result) and PASSWORD not in log


@pytest.mark.coturn
async def test_a_conf_that_allows_loopback_is_caught_naming_it(tmp_path: Path) -> None:
    require_coturn()
    port = free_port()
    conf, _ = rendered_conf(port, ["127.0.0.1/32"])
    assert "allowed-peer-ip=127.0.0.1-127.0.0.1" in conf
    conf += "allow-loopback-peers\n"  # coturn refuses loopback peers unless told, whatever the lists say
    with running_coturn(conf, port, tmp_path, "--relay-ip", "::1"):
        result = await probe_turn_acl(TurnEndpoint("127.0.0.1", port, "udp"), StaticAuth(USER, PASSWORD))
    assert (result.success, result.reason) == (False, "internal_peer_allowed"), result
    assert result.message.startswith("relays to internal peers: 127.0.0.1;")
    assert f"{len(INTERNAL_PEERS) - 1} internal peers refused" in result.message


@pytest.mark.coturn
async def test_pion_without_a_peer_filter_is_caught(tmp_path: Path) -> None:
    with running_pion(tmp_path) as pion:
        result = await probe_turn_acl(
            TurnEndpoint("127.0.0.1", pion.port, "udp"), StaticAuth(STATIC_USER, STATIC_PASSWORD)
        )
    assert (result.success, result.reason) == (False, "internal_peer_allowed"), result
    # pion grants every permission, IPv6 ones included (it ignores REQUESTED-ADDRESS-FAMILY, and says so).
    assert result.message == (
        f"relays to internal peers: {', '.join(INTERNAL_PEERS)}; 0 internal peers refused; "
        "asked for an IPv6 relay, got 127.0.0.1"
    )
