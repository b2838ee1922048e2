"""What a pass does right after an operator restart or leader failover: in-memory state is empty,
the cluster (status, Jobs) is not. Against the in-memory API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY
from reconciler_fake_kube import Clock, FakeKube, bring_up
from reconciler_platforms import STRONG_SECRETS, platform_manifest, secret_manifest

from callplatform import metrics
from callplatform.reconcile import Hooks, Reconciler

NS = "calls-ns"


@dataclass(frozen=True)
class _Health:
    healthy: bool
    reason: str
    message: str
    checked_at: float = 0.0


def _conditions(kube: FakeKube) -> dict[str, dict[str, Any]]:
    platform = kube.obj("CallPlatform", NS, "calls")
    assert platform is not None
    return {c["type"]: c for c in platform["status"]["conditions"]}


def _reconciler(kube: FakeKube, health: dict[str, _Health]) -> Reconciler:
    return Reconciler(
        kube,  # type: ignore[arg-type]
        health=lambda namespace, name, component: health.get(component),
        clock=Clock(),
    )


def _monitored_ready(kube: FakeKube, health: dict[str, _Health]) -> None:
    reconciler = _reconciler(kube, health)
    manifest = platform_manifest(namespace=NS)
    manifest["spec"]["monitoring"]["enabled"] = True
    bring_up(kube, reconciler, NS, secret_manifest(STRONG_SECRETS, namespace=NS), manifest)


HEALTHY = {
    "jitsi": _Health(True, "ProbesSucceeded", "All Jitsi probes passed."),
    "coturn": _Health(True, "ProbesSucceeded", "All coturn probes passed."),
}


def test_restart_with_an_empty_health_registry_writes_nothing_and_posts_no_event(kube: FakeKube) -> None:
    _monitored_ready(kube, HEALTHY)
    before = _conditions(kube)
    assert before["Ready"]["status"] == "True"
    kube.writes.clear()
    kube.events.clear()
    restarted = _reconciler(kube, {})  # a new operator process: the registry knows nothing yet
    result = restarted.reconcile(NS, "calls")
    assert result.ready
    assert result.writes == []
    assert kube.writes == []
    assert kube.events == []
    assert _conditions(kube) == before


def test_restart_keeps_an_unhealthy_verdict_and_its_transition_time(kube: FakeKube) -> None:
    health = dict(HEALTHY)
    health["coturn"] = _Health(False, "TurnAllocateFailed", "Allocate was refused.")
    _monitored_ready(kube, health)
    before = _conditions(kube)
    assert before["Ready"]["status"] == "False"
    kube.events.clear()
    restarted = _reconciler(kube, {})
    restarted.reconcile(NS, "calls")
    after = _conditions(kube)
    assert after["CoturnHealthy"] == before["CoturnHealthy"]
    assert after["Ready"] == before["Ready"]
    assert kube.events == []
    # The first probe after the restart decides again, as usual.
    health["coturn"] = HEALTHY["coturn"]
    kube.events.clear()
    _reconciler(kube, health).reconcile(NS, "calls")
    assert _conditions(kube)["Ready"]["status"] == "True"
    assert ("Normal", "Ready") in {(e["type"], e["reason"]) for e in kube.events}


def test_monitoring_just_enabled_awaits_the_first_probe(kube: FakeKube) -> None:
    reconciler = _reconciler(kube, {})
    kube.put(secret_manifest(STRONG_SECRETS, namespace=NS))
    kube.put(platform_manifest(namespace=NS))  # monitoring disabled
    reconciler.reconcile(NS, "calls")
    assert _conditions(kube)["JitsiHealthy"]["reason"] == "MonitoringDisabled"
    platform = kube.obj("CallPlatform", NS, "calls")
    assert platform is not None
    platform["spec"]["monitoring"]["enabled"] = True
    platform["metadata"]["generation"] += 1
    reconciler.reconcile(NS, "calls")
    conditions = _conditions(kube)
    assert conditions["JitsiHealthy"]["status"] == "Unknown"
    assert conditions["JitsiHealthy"]["reason"] == "AwaitingFirstProbe"
    assert conditions["CoturnHealthy"]["reason"] == "AwaitingFirstProbe"


def _metric(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_restart_reports_a_migration_that_is_still_failed(kube: FakeKube) -> None:
    ns, name = NS, "calls"
    before = Reconciler(kube, clock=Clock())  # type: ignore[arg-type]  # the operator before the restart
    kube.put(secret_manifest(STRONG_SECRETS, namespace=ns))
    kube.put(platform_manifest(namespace=ns))
    before.reconcile(ns, name)
    kube.finish_job("calls-migrate-", ns, succeeded=False)
    before.reconcile(ns, name)
    assert _conditions(kube)["MigrationsComplete"]["reason"] == "MigrationFailed"

    metrics.forget_platform(ns, name)  # a fresh process: no series for this platform
    labels = {"namespace": ns, "platform": name}
    restarted = Reconciler(
        kube,  # type: ignore[arg-type]
        hooks=Hooks(on_migration=metrics.record_migration),
        clock=Clock(),
    )
    restarted.reconcile(ns, name)
    assert _metric("callplatform_migration_failing", **labels) == 1
    restarted.reconcile(ns, name)
    assert _metric("callplatform_migration_failing", **labels) == 1
    # The outcome counter still counts Jobs this process saw finish, and it saw none.
    assert _metric("callplatform_migration_jobs_total", **labels, outcome="failed") is None

    platform = kube.obj("CallPlatform", ns, name)
    assert platform is not None
    platform["spec"]["calls"]["image"] = "registry.example.com/calls-backend:1.4.3"
    platform["metadata"]["generation"] += 1
    restarted.reconcile(ns, name)
    assert _metric("callplatform_migration_failing", **labels) == 0  # the fix is migrating
    kube.finish_job("calls-migrate-", ns, succeeded=True)
    restarted.reconcile(ns, name)
    assert _conditions(kube)["MigrationsComplete"]["status"] == "True"
    assert _metric("callplatform_migration_failing", **labels) == 0
    assert _metric("callplatform_migration_jobs_total", **labels, outcome="succeeded") == 1
    metrics.forget_platform(ns, name)
