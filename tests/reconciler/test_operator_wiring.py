"""The Operator's wiring without kopf: a health verdict change reaches the status promptly."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from reconciler_fake_kube import FakeKube
from reconciler_platforms import STRONG_SECRETS, platform_manifest, secret_manifest

from callplatform import handlers, metrics
from callplatform.cache import Dropped
from callplatform.exposition import render_latest
from callplatform.handlers import Operator, OperatorOptions, platforms_owning
from callplatform.model import parse_platform
from callplatform.probes.result import ProbeResult
from callplatform.probes.targets import build_targets

NS = "wired"


def _wait(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.fixture
def operator() -> Iterator[tuple[Operator, FakeKube]]:
    kube = FakeKube()
    op = Operator(OperatorOptions(namespaces=(NS,)), kube=kube)  # type: ignore[arg-type]
    op.queue.start()
    try:
        yield op, kube
    finally:
        op.queue.stop()


def _condition(kube: FakeKube, condition: str) -> tuple[str, str]:
    platform = kube.obj("CallPlatform", NS, "calls") or {}
    for item in (platform.get("status") or {}).get("conditions", []):
        if item["type"] == condition:
            return item["status"], item["reason"]
    return "", ""


def test_health_change_updates_the_condition_promptly(operator: tuple[Operator, FakeKube]) -> None:
    op, kube = operator
    assert op.health_registry is not None and op.probe_scheduler is not None
    manifest = platform_manifest(namespace=NS)
    manifest["spec"]["monitoring"]["enabled"] = True
    kube.put(secret_manifest(STRONG_SECRETS, namespace=NS))
    kube.put(manifest)
    op.queue.request((NS, "calls"))
    _wait(lambda: _condition(kube, "JitsiHealthy") == ("Unknown", "AwaitingFirstProbe"), "AwaitingFirstProbe")

    result = ProbeResult("jitsi", "web", False, reason="timeout", message="no answer within 5s")
    assert op.health_registry.update(NS, "calls", "jitsi", [result], time.time())
    op._on_health_change(NS, "calls")  # what the ProbeScheduler calls on a verdict change
    _wait(lambda: _condition(kube, "JitsiHealthy")[0] == "False", "JitsiHealthy=False")
    assert _condition(kube, "JitsiHealthy")[1] == "JitsiWebTimeout"


def test_platforms_are_found_by_the_secrets_they_reference(operator: tuple[Operator, FakeKube]) -> None:
    op, kube = operator
    kube.put(secret_manifest(STRONG_SECRETS, namespace=NS))
    kube.put(platform_manifest(namespace=NS))
    op.queue.request((NS, "calls"))
    _wait(lambda: op.platforms_referencing(NS, "calls-secrets") == [(NS, "calls")], "the Secret index")
    assert op.platforms_referencing(NS, "other") == []
    assert op.platforms_referencing("elsewhere", "calls-secrets") == []


def test_a_platform_deleted_while_its_pass_is_in_flight_is_forgotten_by_the_next_pass(
    operator: tuple[Operator, FakeKube], monkeypatch: pytest.MonkeyPatch
) -> None:
    op, kube = operator
    # Only the pass the DELETED event asks for may notice: no converging recheck.
    monkeypatch.setattr(handlers, "CONVERGING_RECHECK_SECONDS", 3600.0)
    entered, release = threading.Event(), threading.Event()
    patch_status = kube.patch_status

    def held_patch_status(namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        patched = patch_status(namespace, name, status)
        if not entered.is_set():
            entered.set()
            assert release.wait(10)
        return patched

    kube.patch_status = held_patch_status  # type: ignore[method-assign]
    finished: list[bool] = []  # one entry per pass that ran to its end, with whether it found the platform
    reconcile = op.reconciler.reconcile

    def counted_reconcile(namespace: str, name: str) -> Any:
        result = reconcile(namespace, name)
        finished.append(result.found)
        return result

    op.reconciler.reconcile = counted_reconcile  # type: ignore[method-assign]
    kube.put(secret_manifest(STRONG_SECRETS, namespace=NS))
    kube.put(platform_manifest(namespace=NS))
    op.on_platform_event(NS, "calls")
    assert entered.wait(10)
    del kube.objects[("CallPlatform", NS, "calls")]
    op.on_platform_event(NS, "calls")  # DELETED, while the first pass is still in flight
    release.set()

    def forgotten() -> bool:
        text = render_latest().decode()
        series = [
            s
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.labels.get("namespace") == NS and s.labels.get("platform") == "calls"
        ]
        return not series and not op.platforms_referencing(NS, "calls-secrets")

    _wait(lambda: finished == [True, False], "the in-flight pass, then one that finds the platform gone")
    assert forgotten(), "the in-flight pass registered the deleted platform again"


def _series_of(namespace: str, name: str) -> list[str]:
    return [
        s.name
        for family in text_string_to_metric_families(render_latest().decode())
        for s in family.samples
        if s.labels.get("namespace") == namespace and s.labels.get("platform") == name
    ]


def test_forgetting_a_platform_stops_its_probes_on_the_loop_before_dropping_its_series(
    operator: tuple[Operator, FakeKube],
) -> None:
    """A probe round that ends on the loop just before the platform is forgotten records its series
    (it still finds the platform in the scheduler); the forgetting must come after it, or those
    series would stay exported for a platform that no longer exists."""
    op, _ = operator
    name = "probed"
    manifest = platform_manifest(name=name, namespace=NS)
    manifest["spec"]["monitoring"]["enabled"] = True
    targets = build_targets(parse_platform(manifest), {"calls-secrets": STRONG_SECRETS})
    loop = asyncio.new_event_loop()
    loop_thread = threading.Thread(target=loop.run_forever, daemon=True)
    loop_thread.start()
    gate = threading.Event()
    try:
        op._bridge.bind(loop)
        op._bridge.on_loop_and_wait(op.probe_scheduler.upsert, NS, name, targets, 30)
        result = ProbeResult("jitsi", "web", True, reason="ok", message="200")
        metrics.record_probe(NS, name, result)
        assert _series_of(NS, name)
        loop.call_soon_threadsafe(gate.wait, 10)  # the loop is busy until the gate opens

        def round_ends() -> None:  # what ProbeScheduler._round does once its probes answered
            if (NS, name) in op.probe_scheduler.platforms():
                metrics.record_probe(NS, name, result)

        loop.call_soon_threadsafe(round_ends)
        forgetting = threading.Thread(target=op._forget, args=(NS, name))
        forgetting.start()
        forgetting.join(1.0)  # a forget that did not wait for the loop would be done by now
        gate.set()
        forgetting.join(10)
        assert not forgetting.is_alive()
        op._bridge.on_loop_and_wait(lambda: None)  # whatever the loop still had queued has run
        assert _series_of(NS, name) == [], "a probe round recorded series after the platform was forgotten"
        assert op.probe_scheduler.platform_count() == 0 and op.health_registry.platform_count() == 0
    finally:
        gate.set()
        loop.call_soon_threadsafe(loop.stop)
        loop_thread.join(5)
        loop.close()


def test_platforms_tracked_counts_every_registry(operator: tuple[Operator, FakeKube]) -> None:
    op, kube = operator
    kube.put(secret_manifest(STRONG_SECRETS, namespace=NS))
    kube.put(platform_manifest(namespace=NS))
    op.on_platform_event(NS, "calls")

    def tracked() -> dict[str, float]:
        families = text_string_to_metric_families(render_latest().decode())
        return {
            s.labels["registry"]: s.value
            for family in families
            for s in family.samples
            if s.name == "callplatform_platforms_tracked"
        }

    _wait(lambda: tracked().get("secret_index") == 1, "one platform tracked")
    assert tracked()["metric_series"] >= 1
    del kube.objects[("CallPlatform", NS, "calls")]
    op.on_platform_event(NS, "calls")
    _wait(lambda: tracked()["secret_index"] == tracked()["work_queue"] == 0, "the deleted platform forgotten")
    assert tracked() == dict.fromkeys(
        ("secret_index", "work_queue", "health_registry", "probe_scheduler", "call_collector"), 0.0
    ) | {"metric_series": tracked()["metric_series"]}
    assert _series_of(NS, "calls") == []


def test_switching_monitoring_off_drops_the_probe_series_and_keeps_the_others(
    operator: tuple[Operator, FakeKube],
) -> None:
    op, _ = operator
    name = "unmonitored"
    metrics.record_probe(NS, name, ProbeResult("jitsi", "web", True, reason="ok"))
    metrics.record_probe(NS, name, ProbeResult("coturn", "relay", True, facts={"rtt_p50_seconds": 0.01,
                                                                               "loss_ratio": 0.0}))  # fmt: skip
    metrics.record_probe(NS, name, ProbeResult("jitsi", "jicofo_metrics", True, facts={"bridges": 2.0}))
    probe_series = {"callplatform_probe_success", "callplatform_turn_relay_rtt_seconds",
                    "callplatform_turn_relay_loss_ratio", "callplatform_jitsi_bridges"}  # fmt: skip
    assert probe_series <= set(_series_of(NS, name))
    platform = parse_platform(platform_manifest(name=name, namespace=NS))  # monitoring off
    assert not platform.monitoring.enabled
    conditions = [{"type": "Ready", "status": "True"}]
    op._after_pass(platform, {"calls-secrets": STRONG_SECRETS}, [], conditions)  # no loop: runs inline
    left = set(_series_of(NS, name))
    assert not {s for s in left if s.startswith(("callplatform_probe_", "callplatform_turn_relay_",
                                                  "callplatform_jitsi_"))}, left  # fmt: skip
    assert "callplatform_platform_condition" in left
    metrics.forget_platform(NS, name)


def _gone(kind: str, name: str, labels: dict[str, str] | None = None, namespace: str = NS) -> Dropped:
    return Dropped(
        "v1" if kind != "CallPlatform" else "callplatform.io/v1alpha1", kind, namespace, name, labels or {}
    )


def test_objects_a_listing_dropped_ask_for_the_passes_of_the_platforms_owning_them() -> None:
    managed = {"app.kubernetes.io/managed-by": "callplatform-operator", "app.kubernetes.io/instance": "a"}
    referencing = {(NS, "shared"): [(NS, "b"), (NS, "c")]}
    dropped = [
        _gone("Service", "a-calls", managed),
        _gone("Secret", "a-turn", managed),
        _gone("Secret", "shared"),  # referenced by b and c
        _gone("CallPlatform", "d"),
        _gone("ConfigMap", "unlabelled", {"app.kubernetes.io/instance": "e"}),  # not ours
        _gone("Service", "foreign", {**managed, "app.kubernetes.io/managed-by": "helm"}),
    ]
    keys = platforms_owning(dropped, lambda ns, name: referencing.get((ns, name), []))
    assert keys == [(NS, "a"), (NS, "b"), (NS, "c"), (NS, "d")]


def test_the_syncer_asks_for_a_pass_of_the_platform_whose_service_went_unseen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kube = FakeKube()
    op = Operator(OperatorOptions(namespaces=(NS,)), kube=kube)  # type: ignore[arg-type]
    requested: list[tuple[str, str]] = []
    monkeypatch.setattr(op.queue, "request", lambda key, *_, **__: requested.append(key))
    assert op.cache_syncer.sync_once() and requested == []
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "calls-calls", "namespace": NS, "labels": {
                   "app.kubernetes.io/managed-by": "callplatform-operator", "app.kubernetes.io/instance": "calls"}}}  # fmt: skip
    op.observe({"type": "ADDED", "object": service})  # then deleted while kopf's watch was gone
    handlers_log = logging.getLogger("kopf._cogs.clients.watching")
    op.watch_restarts.install()
    try:
        handlers_log.debug(f"Restarting the watch-stream for services.v1 in {NS!r}.")
    finally:
        op.watch_restarts.uninstall()
    assert not op.cache.synced("v1", "Service", NS)
    assert op.cache_syncer.sync_once() and requested == [(NS, "calls")]
    assert op.cache.synced("v1", "Service", NS) and op.cache.get("v1", "Service", NS, "calls-calls") is None
