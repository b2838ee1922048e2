"""The operator's HTTP server: liveness, readiness, metrics and per-component health JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from callplatform.httpserver import OperatorHttpServer
from callplatform.model import parse_platform
from callplatform.probes.health import HealthRegistry
from callplatform.probes.jitsi import HttpProber
from callplatform.probes.result import ProbeResult, failure
from callplatform.probes.runner import run_targets
from callplatform.probes.targets import ProbeTargets, build_targets, target_component

from .platforms import platform_manifest
from .servers import free_port

WEAK_JWT = "weak-jwt-secret-value"


class Switch:
    def __init__(self) -> None:
        self.alive = True
        self.ready = False


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, HealthRegistry, Switch]]:
    registry = HealthRegistry()
    switch = Switch()
    server = OperatorHttpServer(
        registry,
        liveness=lambda: [] if switch.alive else ["reconcile workers are not running"],
        readiness=lambda: [] if switch.ready else ["not yet"],
        host="127.0.0.1",
        port=0,
    )
    await server.start()
    assert server.port != 0
    try:
        yield f"http://127.0.0.1:{server.port}", registry, switch
    finally:
        await server.stop()


async def test_liveness_and_readiness_follow_their_checks(served: tuple[str, HealthRegistry, Switch]) -> None:
    base, _, switch = served
    async with httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 503
        switch.alive, switch.ready = False, True
        unhealthy = await client.get("/healthz")
        assert (unhealthy.status_code, unhealthy.text) == (503, "reconcile workers are not running\n")
        assert (await client.get("/readyz")).status_code == 200


async def test_a_raising_check_is_unhealthy() -> None:
    def broken() -> list[str]:
        raise RuntimeError("boom")

    server = OperatorHttpServer(HealthRegistry(), liveness=broken, readiness=broken, host="127.0.0.1", port=0)
    await server.start()
    try:
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{server.port}/healthz")).status_code == 503
    finally:
        await server.stop()


async def test_metrics_serves_the_default_registry(served: tuple[str, HealthRegistry, Switch]) -> None:
    base, _, _ = served
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "python_info" in response.text or "process_" in response.text


async def test_component_health_json(served: tuple[str, HealthRegistry, Switch]) -> None:
    base, registry, _ = served
    healthy = [ProbeResult("coturn", "udp", True, message="mapped address 127.0.0.1:1")]
    broken = [failure("coturn", "allocate", "auth_failed", "Allocate rejected: 401 Unauthorized")]
    async with httpx.AsyncClient(base_url=base) as client:
        empty = await client.get("/api/calls/health/coturn")
        assert (empty.status_code, empty.json()["platforms"]) == (200, [])
        registry.update("a", "one", "coturn", healthy, 10.0)
        all_ok = await client.get("/api/calls/health/coturn")
        assert all_ok.status_code == 200 and all_ok.json()["status"] == "healthy"
        registry.update("b", "two", "coturn", broken, 11.0)
        mixed = await client.get("/api/calls/health/coturn")
        assert mixed.status_code == 503
        two = mixed.json()["platforms"][1]
        assert (two["namespace"], two["name"], two["reason"]) == ("b", "two", "TurnAllocateAuthFailed")
        assert two["probes"][0]["reason"] == "auth_failed"
        one = await client.get("/api/calls/health/coturn", params={"namespace": "a", "name": "one"})
        assert one.status_code == 200 and len(one.json()["platforms"]) == 1
        assert (await client.get("/api/calls/health/coturn", params={"name": "nope"})).status_code == 404
        assert (await client.get("/api/calls/health/jitsi")).json()["platforms"] == []
        assert (await client.get("/api/calls/health/postgres")).status_code == 404


async def test_no_secret_in_health_json(served: tuple[str, HealthRegistry, Switch]) -> None:
    base, registry, _ = served
    secrets = {
        "calls-secrets": {
            "JITSI_JWT_SECRET": WEAK_JWT,
            "TURN_USERNAME": "calls",
            "TURN_PASSWORD": "turn-password-never-shown",
        }
    }
    closed = f"http://127.0.0.1:{free_port()}"
    local_urls = {
        key: f"{closed}/{key}" for key in ("webURL", "boshURL", "jvbHealthURL", "jicofoHealthURL", "tokenURL")
    }
    platform = parse_platform(
        platform_manifest(environment="production", turn_host="127.0.0.1", turn_port=free_port(), tls_port=0,
                          probes=local_urls)
    )  # fmt: skip
    targets = build_targets(platform, secrets, timeout_seconds=0.5)
    prober = HttpProber()
    try:
        results = await run_targets(ProbeTargets(targets.targets, targets.tls, 0.5), prober)
    finally:
        await prober.aclose()
    for component in ("jitsi", "coturn"):
        registry.update("ns", "p", component, [r for r in results if r.component == component], 1.0)
    async with httpx.AsyncClient(base_url=base) as client:
        jitsi = await client.get("/api/calls/health/jitsi")
        coturn = await client.get("/api/calls/health/coturn")
    assert jitsi.status_code == 503 and coturn.status_code == 503
    jwt_probe = [p for p in jitsi.json()["platforms"][0]["probes"] if p["probe"] == "jwt"]
    assert jwt_probe and jwt_probe[0]["reason"] == "weak_secret"
    for body in (jitsi.text, coturn.text):
        assert WEAK_JWT not in body
        assert "turn-password-never-shown" not in body
    assert {target_component(t) for t in targets.targets} == {"jitsi", "coturn", "coturn_acl"}
