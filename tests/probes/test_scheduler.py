"""The probe scheduler with real coturn and local HTTP servers: transitions, concurrency, liveness."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from callplatform.httpserver import OperatorHttpServer
from callplatform.model import parse_platform
from callplatform.probes.health import HealthRegistry
from callplatform.probes.jitsi import HttpCheck
from callplatform.probes.result import ProbeResult
from callplatform.probes.scheduler import ProbeScheduler
from callplatform.probes.targets import ProbeTargets, build_targets, target_component
from callplatform.probes.tls import TlsOptions

from .http_stub import serving
from .loop_lag import LoopLag
from .platforms import platform_manifest
from .servers import STATIC_PASSWORD, STATIC_USER, free_port, make_self_signed, running_coturn

SECRETS = {"calls-secrets": {"TURN_USERNAME": STATIC_USER, "TURN_PASSWORD": STATIC_PASSWORD}}


async def eventually(check: Callable[[], bool], deadline_seconds: float, what: str) -> float:
    """Poll `check` until it holds; returns the seconds it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > deadline_seconds:
            raise AssertionError(f"{what} did not happen within {deadline_seconds}s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def coturn_only(targets: ProbeTargets, timeout: float) -> ProbeTargets:
    kept = tuple(t for t in targets.targets if target_component(t) == "coturn")
    return ProbeTargets(kept, targets.tls, timeout)


@pytest.fixture
async def http_server() -> AsyncIterator[
    Callable[[HealthRegistry, Callable[[], bool]], Awaitable[OperatorHttpServer]]
]:
    started: list[OperatorHttpServer] = []

    async def start(registry: HealthRegistry, alive: Callable[[], bool]) -> OperatorHttpServer:
        def problems() -> list[str]:
            return [] if alive() else ["the probe scheduler stopped"]

        server = OperatorHttpServer(registry, liveness=problems, readiness=problems, host="127.0.0.1", port=0)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


@pytest.mark.coturn
async def test_coturn_down_and_up_flips_health_within_two_intervals(tmp_path: Path, http_server) -> None:  # type: ignore[no-untyped-def]
    interval = 2.0
    ports = (free_port(), free_port(), free_port())
    registry = HealthRegistry()
    changes: list[tuple[str, str, bool]] = []
    recorded: list[ProbeResult] = []

    async def on_change(namespace: str, name: str) -> None:
        health = registry.component_health(namespace, name, "coturn")
        assert health is not None
        changes.append((namespace, name, health.healthy))

    scheduler = ProbeScheduler(
        registry, concurrency=4, on_change=on_change,
        record=lambda ns, name, result: recorded.append(result), first_round_spread_seconds=0.2,
    )  # fmt: skip
    tls_files = make_self_signed(tmp_path / "tls")
    platform = parse_platform(
        platform_manifest(turn_port=ports[0], tls_port=ports[1], interval=int(interval))
    )
    targets = coturn_only(build_targets(platform, SECRETS, tls=TlsOptions(ca_file=str(tls_files.cert))), 0.5)
    server = await http_server(registry, scheduler.is_alive)
    url = f"http://127.0.0.1:{server.port}/api/calls/health/coturn"

    def coturn_healthy() -> bool | None:
        health = registry.component_health("calls", "probed", "coturn")
        return None if health is None else health.healthy

    await scheduler.start()
    try:
        # loopback_peers: the relay probe's two allocations on 127.0.0.1 must reach each other.
        with running_coturn(tmp_path / "c1", "static", ports=ports, tls=tls_files, loopback_peers=True):
            scheduler.upsert("calls", "probed", targets, interval)
            await eventually(lambda: coturn_healthy() is True, 10, "CoturnHealthy=True")
            async with httpx.AsyncClient() as client:
                response = await client.get(url)
            assert response.status_code == 200
            assert response.json()["platforms"][0]["reason"] == "ProbesSucceeded"
            (relay,) = [p for p in response.json()["platforms"][0]["probes"] if p["probe"] == "relay"]
            assert relay["success"] and relay["facts"]["loss_ratio"] == 0.0, relay
            assert relay["facts"]["rtt_p50_seconds"] > 0
        stopped = time.monotonic()
        await eventually(lambda: coturn_healthy() is False, 2 * interval + 2, "CoturnHealthy=False")
        assert time.monotonic() - stopped <= 2 * interval + 0.5 + 0.5
        health = registry.component_health("calls", "probed", "coturn")
        assert health is not None and health.reason in ("TurnUdpTimeout", "TurnUdpRefused")
        async with httpx.AsyncClient() as client:
            response = await client.get(url)
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unhealthy" and body["platforms"][0]["healthy"] is False
        assert STATIC_PASSWORD not in response.text
        assert scheduler.is_alive()
        with running_coturn(tmp_path / "c2", "static", ports=ports, tls=tls_files, loopback_peers=True):
            await eventually(lambda: coturn_healthy() is True, 2 * interval + 2, "recovery")
            async with httpx.AsyncClient() as client:
                assert (await client.get(url)).status_code == 200
    finally:
        await scheduler.stop()
    assert [healthy for _, _, healthy in changes] == [True, False, True]
    assert len(recorded) >= 3 * len(targets.targets)
    assert not scheduler.is_alive()


@pytest.mark.coturn
async def test_a_relay_that_allocates_but_refuses_its_own_address_makes_coturn_unhealthy(  # type: ignore[no-untyped-def]
    tmp_path: Path, http_server
) -> None:
    """Binding and Allocate succeed; coturn's default refuses loopback peers, and its relay is
    127.0.0.1, so the relay probe alone fails CoturnHealthy, with a reason and a message that say why."""
    ports = (free_port(), free_port(), free_port())
    registry = HealthRegistry()
    scheduler = ProbeScheduler(registry, concurrency=4, first_round_spread_seconds=0.1)
    tls_files = make_self_signed(tmp_path / "tls")
    platform = parse_platform(platform_manifest(turn_port=ports[0], tls_port=ports[1], interval=30))
    targets = coturn_only(build_targets(platform, SECRETS, tls=TlsOptions(ca_file=str(tls_files.cert))), 2.0)
    server = await http_server(registry, scheduler.is_alive)
    await scheduler.start()
    try:
        with running_coturn(tmp_path / "c", "static", ports=ports, tls=tls_files):
            scheduler.upsert("calls", "probed", targets, 30)
            await eventually(
                lambda: registry.component_health("calls", "probed", "coturn") is not None, 10, "a round"
            )
            async with httpx.AsyncClient() as client:
                response = await client.get(f"http://127.0.0.1:{server.port}/api/calls/health/coturn")
    finally:
        await scheduler.stop()
    health = registry.component_health("calls", "probed", "coturn")
    assert health is not None and not health.healthy
    assert health.reason == "TurnRelayForbidden", health
    assert health.message.startswith(
        "relay: the server refuses a permission for its own relayed address 127.0.0.1"
    )
    assert all(p.success for p in health.probes if p.probe != "relay")  # only the data path is broken
    assert response.status_code == 503


async def test_on_change_only_on_transitions_and_status_stays_put() -> None:
    registry = HealthRegistry()
    calls: list[tuple[str, str]] = []

    async def on_change(namespace: str, name: str) -> None:
        calls.append((namespace, name))

    scheduler = ProbeScheduler(registry, on_change=on_change, first_round_spread_seconds=0)
    async with serving() as stub:
        targets = ProbeTargets((HttpCheck("jvb", f"{stub.base_url}/about/health"),), timeout_seconds=1)
        await scheduler.start()
        try:
            scheduler.upsert("ns", "a", targets, 1)
            await eventually(lambda: scheduler.rounds("ns", "a") >= 3, 10, "three rounds")
            assert calls == [("ns", "a")]
            broken = ProbeTargets((HttpCheck("jvb", f"{stub.base_url}/unhealthy"),), timeout_seconds=1)
            scheduler.upsert("ns", "a", broken, 30)  # a change is probed at once, not after 30 s
            await eventually(lambda: len(calls) == 2, 3, "the change to be probed")
            health = registry.component_health("ns", "a", "jitsi")
            assert health is not None and health.reason == "JitsiJvbHttpStatus"
        finally:
            await scheduler.stop()


async def test_a_plain_function_works_as_on_change() -> None:
    registry = HealthRegistry()
    calls: list[str] = []
    scheduler = ProbeScheduler(
        registry, on_change=lambda ns, name: calls.append(name), first_round_spread_seconds=0
    )
    async with serving() as stub:
        await scheduler.start()
        try:
            scheduler.upsert("ns", "sync", ProbeTargets((HttpCheck("web", f"{stub.base_url}/"),)), 30)
            await eventually(lambda: calls == ["sync"], 5, "the plain callback")
        finally:
            await scheduler.stop()


async def test_global_concurrency_limit_and_a_responsive_loop() -> None:
    in_flight = 0
    peak = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.2)
        in_flight -= 1
        return web.Response(status=200)

    app = web.Application()
    app.router.add_get("/health", slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/health"
    registry = HealthRegistry()
    scheduler = ProbeScheduler(registry, concurrency=8, first_round_spread_seconds=0.5)
    platforms = 60
    lag = LoopLag()
    try:
        async with lag:
            await scheduler.start()
            for index in range(platforms):
                targets = ProbeTargets((HttpCheck("jvb", url),), timeout_seconds=2)
                scheduler.upsert("ns", f"p{index}", targets, 60)
            await eventually(lambda: len(registry.platforms()) == platforms, 20, "every platform probed once")
            assert scheduler.is_alive()
    finally:
        await scheduler.stop()
        await runner.cleanup()
    assert peak <= 8
    assert peak >= 4  # the limit, not the server, was what bounded it
    assert all(registry.component_health("ns", f"p{i}", "jitsi").healthy for i in range(platforms))  # type: ignore[union-attr]
    assert lag.max_seconds < 0.25, f"event loop stalled for {lag.max_seconds:.3f}s"


async def test_remove_forgets_the_platform() -> None:
    registry = HealthRegistry()
    scheduler = ProbeScheduler(registry, first_round_spread_seconds=0)
    async with serving() as stub:
        await scheduler.start()
        try:
            scheduler.upsert("ns", "gone", ProbeTargets((HttpCheck("web", f"{stub.base_url}/"),)), 30)
            await eventually(lambda: registry.platforms() == [("ns", "gone")], 5, "a first round")
            scheduler.remove("ns", "gone")
            assert registry.platforms() == []
            assert scheduler.platforms() == []
            assert scheduler.is_alive()
        finally:
            await scheduler.stop()
    assert not scheduler.is_alive()


def test_not_alive_before_start() -> None:
    assert not ProbeScheduler(HealthRegistry()).is_alive()
