"""A pass that fails on an API error: Ready=False/ApplyFailed naming the object, code and reason,
one Warning Event on the transition, no writes while retries fail the same way, and a failing
status write that is logged instead of raised."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from reconciler_fake_kube import Clock, FakeKube, bring_up
from reconciler_platforms import STRONG_SECRETS, platform_manifest, secret_manifest

from callplatform.apply_failure import APPLY_FAILED, failed_pass_conditions, report_failed_pass
from callplatform.handlers import Operator, OperatorOptions
from callplatform.kube import KubeError, ObjectRef

NS = "failing"
RANGE_FULL = KubeError(
    "apply Service",
    500,
    "InternalError",
    target=ObjectRef("Service", NS, "calls-calls"),
    detail="Internal error occurred: failed to allocate a serviceIP: range is full",
)


class RefusingKube(FakeKube):
    """The fake API, refusing to apply one kind the way the API server does with a full IP range."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse: str | None = None
        self.refuse_status = False

    def apply(self, desired: dict[str, Any], live: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
        if desired["kind"] == self.refuse:
            raise RANGE_FULL
        return super().apply(desired, live)

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        if self.refuse_status:
            raise KubeError("patch CallPlatform status", 0, "ProtocolError")
        return super().patch_status(namespace, name, status)


def _ready(kube: FakeKube) -> dict[str, Any]:
    platform = kube.obj("CallPlatform", NS, "calls") or {}
    return next(c for c in platform["status"]["conditions"] if c["type"] == "Ready")


@pytest.fixture
def operator() -> tuple[Operator, RefusingKube]:
    kube = RefusingKube()
    op = Operator(OperatorOptions(namespaces=(NS,)), kube=kube)  # type: ignore[arg-type]
    op.reconciler.clock = Clock()
    return op, kube


def test_failed_pass_conditions_replace_only_ready() -> None:
    previous = [
        {"type": "Ready", "status": "True", "reason": "AllConditionsMet", "message": "", "observedGeneration": 1,
         "lastTransitionTime": "T0"},
        {"type": "SecretsValid", "status": "True", "reason": "RulesPassed", "message": "ok", "observedGeneration": 1,
         "lastTransitionTime": "T0"},
    ]  # fmt: skip
    conditions = failed_pass_conditions(previous, RANGE_FULL, generation=2, now="T1")
    assert conditions[0] == {
        "type": "Ready",
        "status": "False",
        "reason": APPLY_FAILED,
        "message": f"The last pass failed: apply Service {NS}/calls-calls: HTTP 500 InternalError. Retrying with backoff.",
        "observedGeneration": 2,
        "lastTransitionTime": "T1",
    }
    assert conditions[1:] == previous[1:]
    # Already False: the transition time stays; a platform never reconciled gets Ready alone.
    again = failed_pass_conditions(conditions, RANGE_FULL, generation=2, now="T2")
    assert again == conditions
    assert [c["type"] for c in failed_pass_conditions([], RANGE_FULL, generation=1, now="T1")] == ["Ready"]
    assert "range is full" not in str(conditions)  # the server's message is for the log only


def test_an_api_error_becomes_status_and_one_event(operator: tuple[Operator, RefusingKube]) -> None:
    op, kube = operator
    bring_up(
        kube,
        op.reconciler,
        NS,
        secret_manifest(STRONG_SECRETS, namespace=NS),
        platform_manifest(namespace=NS),
    )
    assert _ready(kube)["status"] == "True"
    other_conditions = [
        c for c in kube.obj("CallPlatform", NS, "calls")["status"]["conditions"] if c["type"] != "Ready"
    ]  # type: ignore[index]
    kube.refuse = "Service"
    kube.objects.pop(("Service", NS, "calls-calls"))  # so the pass must apply it
    kube.writes.clear()
    kube.events.clear()

    for _ in range(4):  # the first failure and three retries
        with pytest.raises(KubeError):
            op._process((NS, "calls"))
    ready = _ready(kube)
    assert (ready["status"], ready["reason"]) == ("False", APPLY_FAILED)
    assert f"Service {NS}/calls-calls" in ready["message"] and "HTTP 500 InternalError" in ready["message"]
    assert [e["reason"] for e in kube.events if e["type"] == "Warning"] == [APPLY_FAILED]
    assert kube.writes.count("status") == 1  # the retries found the same status: nothing written
    conditions = kube.obj("CallPlatform", NS, "calls")["status"]["conditions"]  # type: ignore[index]
    assert [c for c in conditions if c["type"] != "Ready"] == other_conditions

    kube.refuse = None  # the cause is removed: the next pass converges and says so once
    op._process((NS, "calls"))
    ready = _ready(kube)
    assert (ready["status"], ready["reason"]) == ("True", "AllConditionsMet")
    assert [e["reason"] for e in kube.events] == [APPLY_FAILED, "Ready"]


def test_a_failing_status_write_is_logged_not_raised(
    operator: tuple[Operator, RefusingKube], caplog: pytest.LogCaptureFixture
) -> None:
    op, kube = operator
    kube.put(secret_manifest(STRONG_SECRETS, namespace=NS))
    kube.put(platform_manifest(namespace=NS))
    kube.refuse, kube.refuse_status = "Service", True
    with caplog.at_level(logging.WARNING, logger="callplatform.apply_failure"):
        assert report_failed_pass(kube, NS, "calls", RANGE_FULL, clock=Clock()) is None  # type: ignore[arg-type]
    assert "cannot write the ApplyFailed status" in caplog.text
    assert kube.events == []
    with pytest.raises(KubeError) as raised:  # the pass's own error goes on to the queue's backoff
        op._process((NS, "calls"))
    assert raised.value is RANGE_FULL


def test_a_platform_gone_meanwhile_gets_no_status(operator: tuple[Operator, RefusingKube]) -> None:
    _, kube = operator
    assert report_failed_pass(kube, NS, "calls", RANGE_FULL, clock=Clock()) is None  # type: ignore[arg-type]
    assert kube.writes == []
