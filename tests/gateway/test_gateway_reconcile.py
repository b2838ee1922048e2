"""A pass with spec.gateway: the HTTPRoute is applied, SecurityHeadersServed joins Ready (in-memory API)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reconciler"))
from reconciler_fake_kube import Clock, FakeKube, bring_up
from reconciler_platforms import STRONG_SECRETS, platform_manifest, secret_manifest

from callplatform.probes.health import ComponentHealth
from callplatform.reconcile import Reconciler

NS = "calls"


class Health:
    def __init__(self) -> None:
        self.verdicts: dict[str, ComponentHealth] = {}

    def __call__(self, namespace: str, name: str, component: str) -> ComponentHealth | None:
        return self.verdicts.get(component)

    def set(
        self, component: str, healthy: bool, reason: str = "ProbesSucceeded", message: str = "ok"
    ) -> None:
        self.verdicts[component] = ComponentHealth(healthy, reason, message, 1.0)


def manifest(gateway: dict[str, Any]) -> dict[str, Any]:
    platform = platform_manifest(namespace=NS)
    platform["spec"]["monitoring"] = {"enabled": True}
    platform["spec"]["gateway"] = gateway
    return platform


def conditions(kube: FakeKube) -> dict[str, dict[str, Any]]:
    live = kube.obj("CallPlatform", NS, "calls") or {}
    return {c["type"]: c for c in live["status"]["conditions"]}


def test_route_applied_and_headers_probe_gates_ready() -> None:
    kube, health = FakeKube(), Health()
    for component in ("jitsi", "coturn"):
        health.set(component, True)
    reconciler = Reconciler(kube, health=health, clock=Clock())  # type: ignore[arg-type]
    gateway = {"parentRefs": [{"name": "public"}], "hostname": "app.calls.test"}
    bring_up(kube, reconciler, NS, secret_manifest(STRONG_SECRETS, namespace=NS), manifest(gateway))
    assert kube.obj("HTTPRoute", NS, "calls-calls") is not None
    state = conditions(kube)
    assert state["GatewayRouteReady"]["reason"] == "RouteApplied"
    assert state["SecurityHeadersServed"]["reason"] == "AwaitingFirstProbe"
    assert state["Ready"]["status"] == "False"

    health.set("headers", True)
    reconciler.reconcile(NS, "calls")
    assert conditions(kube)["Ready"]["status"] == "True"

    drift = "chat: GET https://app.calls.test/chat: X-Frame-Options is DENY, rendered SAMEORIGIN"
    health.set("headers", False, "HeadersChatHeaderMismatch", drift)
    reconciler.reconcile(NS, "calls")
    state = conditions(kube)
    assert state["SecurityHeadersServed"]["status"] == "False"
    assert state["SecurityHeadersServed"]["message"] == drift
    assert state["Ready"]["status"] == "False" and "SecurityHeadersServed" in state["Ready"]["message"]
    assert any(e["reason"] == "HeadersChatHeaderMismatch" for e in kube.events)


def test_without_spec_gateway_there_is_no_route_and_no_new_condition() -> None:
    kube, health = FakeKube(), Health()
    for component in ("jitsi", "coturn"):
        health.set(component, True)
    reconciler = Reconciler(kube, health=health, clock=Clock())  # type: ignore[arg-type]
    bring_up(kube, reconciler, NS, secret_manifest(STRONG_SECRETS, namespace=NS), manifest({}))
    assert kube.of_kind("HTTPRoute") == []
    state = conditions(kube)
    assert "GatewayRouteReady" not in state and "SecurityHeadersServed" not in state
    assert state["Ready"]["status"] == "True"
