"""JitsiDegraded on a pass (in-memory API): shown only with spec.jitsi.metrics.jvb, never part of Ready,
and a Warning Event when a bridge starts draining."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reconciler"))
from reconciler_fake_kube import Clock, FakeKube, bring_up
from reconciler_platforms import STRONG_SECRETS, platform_manifest, secret_manifest

from callplatform.model import parse_platform
from callplatform.probes.health import HealthRegistry
from callplatform.probes.jitsi_degraded import DEGRADED_COMPONENT
from callplatform.probes.result import ProbeResult
from callplatform.probes.targets import build_targets
from callplatform.probes.tls import TlsOptions
from callplatform.reconcile import Reconciler

NS = "calls"


def manifest(metrics: dict[str, Any] | None) -> dict[str, Any]:
    platform = platform_manifest(namespace=NS)
    platform["spec"]["monitoring"] = {"enabled": True}
    if metrics is not None:
        platform["spec"]["jitsi"]["metrics"] = metrics
    return platform


def conditions(kube: FakeKube) -> dict[str, dict[str, Any]]:
    live = kube.obj("CallPlatform", NS, "calls") or {}
    return {c["type"]: c for c in live["status"]["conditions"]}


def round_of(registry: HealthRegistry, *, degraded: str) -> bool:
    ok = [ProbeResult("jitsi", probe, True) for probe in ("web", "bosh", "jvb", "jicofo")]
    bridge = ProbeResult("jitsi", "jvb_metrics", True, message="videobridge stress 0.02", degraded=degraded)
    registry.update(NS, "calls", "coturn", [ProbeResult("coturn", "udp", True)], 1.0)
    return registry.update(NS, "calls", "jitsi", [*ok, bridge], 1.0)


def test_metrics_spec_adds_metrics_probes_with_the_threshold() -> None:
    spec = {"jicofo": "http://127.0.0.1:1/metrics", "jvb": ["http://127.0.0.1:2/m", "http://127.0.0.1:3/m"]}
    platform = parse_platform(manifest({**spec, "stressThreshold": 0.5}))
    checks = {t.probe: t for t in build_targets(platform, {}, tls=TlsOptions()).targets}
    assert checks["jicofo_metrics"].kind == "metrics"  # type: ignore[union-attr]
    assert [checks[p].url for p in ("jvb_metrics", "jvb_metrics_1")] == spec["jvb"]  # type: ignore[union-attr]
    assert checks["jvb_metrics_1"].stress_threshold == 0.5  # type: ignore[union-attr]
    assert "prosody" not in checks and "colibri" not in checks  # only when their URL is set
    plain = {t.probe for t in build_targets(parse_platform(manifest(None)), {}, tls=TlsOptions()).targets}
    assert not {"jicofo_metrics", "jvb_metrics"} & plain


def test_malformed_threshold_is_reported() -> None:
    platform = parse_platform(manifest({"jvb": ["http://127.0.0.1:2/m"], "stressThreshold": "high"}))
    assert platform.jitsi.metrics.stress_threshold == 0.8
    assert ("spec.jitsi.metrics.stressThreshold", "must be a number") in platform.malformed


def test_jitsi_degraded_follows_the_bridges_and_never_gates_ready() -> None:
    kube, registry = FakeKube(), HealthRegistry()
    reconciler = Reconciler(kube, health=registry.component_health, clock=Clock())
    round_of(registry, degraded="")
    platform = manifest({"jvb": ["http://127.0.0.1:2/metrics"]})
    bring_up(kube, reconciler, NS, secret_manifest(STRONG_SECRETS, namespace=NS), platform)
    state = conditions(kube)
    assert (state["JitsiDegraded"]["status"], state["JitsiDegraded"]["reason"]) == (
        "False",
        "JitsiBridgesNominal",
    )
    assert state["Ready"]["status"] == "True"

    assert round_of(registry, degraded="draining")  # a change the scheduler reports
    reconciler.reconcile(NS, "calls")
    state = conditions(kube)
    assert (state["JitsiDegraded"]["status"], state["JitsiDegraded"]["reason"]) == (
        "True",
        "JitsiBridgeDraining",
    )
    assert state["Ready"]["status"] == "True"
    assert state["JitsiHealthy"]["status"] == "True"
    events = [e for e in kube.events if e.get("reason") == "JitsiBridgeDraining"]
    assert events and events[0]["type"] == "Warning"


def test_unreadable_videobridge_metrics_leave_jitsi_healthy() -> None:
    registry = HealthRegistry()
    ok = [ProbeResult("jitsi", probe, True) for probe in ("web", "bosh", "jvb", "jicofo")]
    unreadable = ProbeResult("jitsi", "jvb_metrics", False, "refused", message="connection refused")
    registry.update(NS, "calls", "jitsi", [*ok, unreadable], 1.0)
    jitsi = registry.component_health(NS, "calls", "jitsi")
    degraded = registry.component_health(NS, "calls", DEGRADED_COMPONENT)
    assert jitsi is not None and jitsi.healthy, jitsi
    assert degraded is not None and degraded.reason == "JitsiJvbMetricsUnavailable"


def test_no_jitsi_degraded_without_videobridge_metrics() -> None:
    kube, registry = FakeKube(), HealthRegistry()
    reconciler = Reconciler(kube, health=registry.component_health, clock=Clock())
    round_of(registry, degraded="")
    registry.update(NS, "calls", "jitsi", [ProbeResult("jitsi", "web", True)], 2.0)  # metrics removed
    assert registry.component_health(NS, "calls", DEGRADED_COMPONENT) is None
    bring_up(kube, reconciler, NS, secret_manifest(STRONG_SECRETS, namespace=NS), manifest(None))
    assert "JitsiDegraded" not in conditions(kube)
