"""Issue 11: a platform deleted while its pass is in flight is forgotten, on the real API server.

`callplatform run` runs against the local control plane with the test hook
`CALLPLATFORM_TEST_HOLD_PASS_SECONDS` (callplatform.testhooks): every pass that found its platform
waits, after writing the status and before telling the rest of the operator about the platform,
and logs when the hold begins and ends. Each round triggers a pass of one platform (an annotation),
waits for the operator's log to say that pass is being held, deletes the platform, and checks that
the hold had not ended when the delete returned: the race is exercised, not hoped for.

Then, within a deadline, nothing of the deleted platforms is left: no series labelled with them on
/metrics, no entry in the health API, and every registry counted by
`callplatform_platforms_tracked` (Secret index, work queue, health registry, probe scheduler, call
collector, metric series) holds only the platforms that still exist.

The victims are of two kinds. Ready platforms own objects, whose removal by the garbage collector
asks for more passes, and those passes would have cleaned up even after the old forget-on-DELETED
handler. Platforms blocked by a rule error own nothing: no later event comes, so only a pass asked
for by DELETED itself can forget them (the old handler left them exported for good).
Monitoring and call metrics stay off, so nothing leaves loopback; the probe scheduler, health
registry and call collector are therefore checked through their counts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from reconciler_operator import OperatorProcess, apply, condition_is, wait_for
from reconciler_platforms import STRONG_SECRETS, WEAK_JWT_SECRET, platform_manifest, secret_manifest

from callplatform.testhooks import HOLD_PASS_ENV

pytestmark = pytest.mark.cluster

HOLD_SECONDS = 1.0  # far longer than the delete call and kopf's 0.1 s batching of the DELETED event
READY = [f"ready-{i}" for i in range(4)]
BLOCKED = [f"blocked-{i}" for i in range(4)]
SURVIVORS = ["ready-0", "blocked-0"]
VICTIMS = [name for pair in zip(READY[1:], BLOCKED[1:], strict=True) for name in pair]
REGISTRIES = ("work_queue", "health_registry", "probe_scheduler", "call_collector")
GROUP, VERSION, PLURAL = "callplatform.io", "v1alpha1", "callplatforms"


def _find(operator: OperatorProcess, line: str, start: int) -> int | None:
    """Where `line` first appears in the operator's log at or after offset `start`, or None."""
    at = operator.log().find(line, start)
    return None if at < 0 else at


def _poll(check: Callable[[], int | None], what: str, operator: OperatorProcess, timeout: float = 30) -> int:
    """A tighter poll than wait_for's: a hold lasts HOLD_SECONDS, and the delete must land inside it."""
    deadline = time.monotonic() + timeout
    while (found := check()) is None:
        assert operator.alive(), f"operator exited while waiting for {what}:\n{operator.log()[-4000:]}"
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.02)
    return found


def _http_get(port: int, path: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()
    except OSError:
        return 0, ""


def _samples(port: int) -> list[Any]:
    status, text = _http_get(port, "/metrics")
    assert status == 200, status
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def _tracked(samples: list[Any]) -> dict[str, float]:
    return {s.labels["registry"]: s.value for s in samples if s.name == "callplatform_platforms_tracked"}


def _platforms_in_series(samples: list[Any], namespace: str) -> set[str]:
    return {
        s.labels["platform"]
        for s in samples
        if s.labels.get("namespace") == namespace and "platform" in s.labels
    }


def _health_api_platforms(port: int, namespace: str) -> set[str]:
    listed = set()
    for component in ("jitsi", "coturn"):
        status, body = _http_get(port, f"/api/calls/health/{component}")
        assert status in (200, 503), (status, body)
        listed |= {p["name"] for p in json.loads(body)["platforms"] if p["namespace"] == namespace}
    return listed


@pytest.fixture
def operator(
    kube_cluster: Any, crd_installed: str, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    weak = dict(STRONG_SECRETS, JITSI_JWT_SECRET=WEAK_JWT_SECRET)  # CP001: an error in production
    documents: list[dict[str, Any]] = [
        secret_manifest(STRONG_SECRETS, name="calls-secrets"),
        secret_manifest(weak, name="weak-secrets"),
    ]
    for name in READY + BLOCKED:
        platform = platform_manifest(name=name)
        platform["spec"]["calls"]["replicas"] = 1
        if name in BLOCKED:
            text = json.dumps(platform).replace('"calls-secrets"', '"weak-secrets"')
            platform = json.loads(text)
        documents.append(platform)
    apply(kube_cluster, namespace, *documents)
    # A resync far beyond the test, so only watch events ask for passes.
    process = OperatorProcess(
        kube_cluster.kubeconfig,
        tmp_path / "operator.log",
        "--namespace", namespace, "--resync-seconds", "600",
        env={HOLD_PASS_ENV: str(HOLD_SECONDS)},
    )  # fmt: skip
    try:
        yield process
    finally:
        process.stop()


def test_platforms_deleted_while_their_pass_is_in_flight_leave_nothing_behind(
    kube_cluster: Any, namespace: str, operator: OperatorProcess, k8s_api: Any
) -> None:
    from kubernetes import client

    api = client.CustomObjectsApi(k8s_api)
    ns = namespace

    def settled() -> bool:
        return all(condition_is(kube_cluster, ns, n, "Ready", "True") for n in READY) and all(
            condition_is(kube_cluster, ns, n, "SecretsValid", "False", "RulesFailed") for n in BLOCKED
        )

    wait_for(settled, "ready-* Ready and blocked-* RulesFailed", 120, operator)
    everyone = set(READY + BLOCKED)
    wait_for(lambda: _platforms_in_series(_samples(operator.http_port), ns) == everyone,
             "every platform's series", 30, operator)  # fmt: skip

    in_flight = []
    for round_number, name in enumerate(VICTIMS):
        start = len(operator.log())
        holding, released = f"holding the pass of {ns}/{name} ", f"released the pass of {ns}/{name}\n"
        # Any change asks for a pass; an annotation is the smallest one.
        body = {"metadata": {"annotations": {"test.callplatform.io/round": str(round_number)}}}
        api.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name, body)
        held_at = _poll(lambda: _find(operator, holding, start), f"the pass of {name} held", operator)  # noqa: B023
        api.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
        deleted_at = time.monotonic()
        # That pass had read the platform, and had not ended when the platform was gone.
        if _find(operator, released, held_at) is None:
            in_flight.append(name)
        _poll(lambda: _find(operator, released, held_at), f"the pass of {name} released", operator)  # noqa: B023
        print(f"{name}: deleted during its pass; the pass ended {time.monotonic() - deleted_at:.2f}s later")
    assert in_flight == VICTIMS, f"deleted while the pass was in flight: {in_flight} of {VICTIMS}"

    survivors = set(SURVIVORS)
    # Monitoring and call metrics are off: those registries never held these platforms.
    expected = dict.fromkeys(REGISTRIES, 0.0) | {
        "secret_index": float(len(survivors)),
        "metric_series": float(len(survivors)),
    }
    last: dict[str, Any] = {}

    def forgotten() -> bool:
        samples = _samples(operator.http_port)
        last.update(
            series=_platforms_in_series(samples, ns),
            tracked=_tracked(samples),
            health=_health_api_platforms(operator.http_port, ns),
        )
        return last["series"] == survivors and last["tracked"] == expected and not last["health"]

    began = time.monotonic()
    try:
        wait_for(forgotten, "the deleted platforms forgotten", 30, operator)
    except TimeoutError as error:
        raise AssertionError(f"deleted platforms still in the operator's memory: {last}") from error
    # The survivors still have their series: what went is what was deleted, not everything.
    samples = _samples(operator.http_port)
    for name in SURVIVORS:
        ready = [s for s in samples if s.name == "callplatform_platform_condition" and s.labels["platform"] == name
                 and s.labels["type"] == "Ready" and s.value == 1]  # fmt: skip
        assert ready, f"{name} lost its condition series"
    print(
        f"{len(in_flight)} platforms deleted mid-pass; forgotten everywhere {time.monotonic() - began:.1f}s later"
    )
