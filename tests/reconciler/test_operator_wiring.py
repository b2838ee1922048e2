"""The Operator's wiring without kopf: a health verdict change reaches the status promptly."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from reconciler_fake_kube import FakeKube
from reconciler_platforms import STRONG_SECRETS, platform_manifest, secret_manifest

from callplatform.handlers import Operator, OperatorOptions
from callplatform.probes.result import ProbeResult

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
