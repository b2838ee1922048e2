"""The issue's fleet case on the real API server: a full Service IP range.

On a cluster of its own with a /28 Service range, filled with Services first, the API server refuses
the platform's Service with `HTTP 500 InternalError` ("failed to allocate a serviceIP: range is
full") on every pass. The platform must say so: Ready=False/ApplyFailed naming the Service, the
code and the reason, with exactly one Warning Event however often the pass is retried. Once one
Service is deleted (the range has room again), the work queue's bounded backoff brings the platform
to Ready within 60 s, with the periodic resync too slow to be what rescued it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reconciler_operator import OperatorProcess, condition_is, conditions, events, wait_for
from reconciler_platforms import STRONG_SECRETS, platform_manifest, secret_manifest

import localcluster

pytestmark = pytest.mark.cluster

CRD = Path(__file__).resolve().parents[2] / "crds" / "callplatform.io_callplatforms.yaml"
SERVICE_IP_RANGE = "10.96.0.0/28"  # 14 addresses, one taken by the `kubernetes` Service
NAME = "p0"
RECOVERY_SECONDS = 60


@pytest.fixture(scope="module")
def small_range_cluster() -> Iterator[localcluster.LocalCluster]:
    with localcluster.cluster_of_its_own(
        f"cp-test-{os.getpid()}-iprange", crd=CRD, service_ip_range=SERVICE_IP_RANGE
    ) as cluster:
        yield cluster


def _fill_service_range(cluster: Any, namespace: str) -> list[str]:
    """Create Services until the API server refuses one because the range is full."""
    created = []
    for index in range(32):
        name = f"filler-{index}"
        result = cluster.kubectl(
            "create", "service", "clusterip", name, "--tcp=80:80", "-n", namespace, check=False
        )
        if result.returncode != 0:
            assert "range is full" in result.stderr, result.stderr
            return created
        created.append(name)
    raise AssertionError(f"a {SERVICE_IP_RANGE} Service range never filled")


def _failures_logged(operator: OperatorProcess, namespace: str) -> int:
    return operator.log().count(f"reconcile {namespace}/{NAME} failed")


def _apply_failed_events(cluster: Any, namespace: str) -> list[dict[str, Any]]:
    return [e for e in events(cluster, namespace) if e.get("reason") == "ApplyFailed"]


def test_a_full_service_ip_range_becomes_status_then_recovers(
    small_range_cluster: localcluster.LocalCluster, tmp_path: Path
) -> None:
    cluster = small_range_cluster
    ns = cluster.create_namespace("iprange")
    fillers = _fill_service_range(cluster, ns)
    platform = platform_manifest(name=NAME)
    platform["spec"]["calls"]["replicas"] = 1
    cluster.kubectl(
        "apply", "-n", ns, "-f", "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List",
                          "items": [secret_manifest(STRONG_SECRETS, name="calls-secrets"), platform]}),
    )  # fmt: skip
    # A resync far beyond the test: only the work queue's backoff retries the failed pass.
    operator = OperatorProcess(
        cluster.kubeconfig, tmp_path / "operator.log", "--namespace", ns, "--resync-seconds", "600"
    )
    try:
        wait_for(lambda: condition_is(cluster, ns, NAME, "Ready", "False", "ApplyFailed"),
                 "Ready=False/ApplyFailed", 120, operator)  # fmt: skip
        message = conditions(cluster, ns, NAME)["Ready"]["message"]
        assert f"apply Service {ns}/{NAME}-calls: HTTP 500 InternalError" in message, message
        assert "range is full" in operator.log()  # the server's explanation goes to the log only
        # Retried with backoff (1 s, then up to 2, 4, 8 s): still one Warning Event, no new status.
        wait_for(lambda: _failures_logged(operator, ns) >= 4, "four failed passes", 60, operator)
        failed = _apply_failed_events(cluster, ns)
        assert len(failed) == 1, failed
        assert failed[0]["type"] == "Warning"
        assert f"Service {ns}/{NAME}-calls" in failed[0]["message"]
        assert failed[0]["involvedObject"]["name"] == NAME

        cluster.kubectl("delete", "service", fillers[0], "-n", ns)  # the range has room again
        freed = time.monotonic()
        wait_for(lambda: condition_is(cluster, ns, NAME, "Ready", "True"), "Ready after the range was freed",
                 RECOVERY_SECONDS, operator)  # fmt: skip
        recovery = time.monotonic() - freed
        assert len(_apply_failed_events(cluster, ns)) == 1
        print(
            f"apply failed: {_failures_logged(operator, ns)} failed passes, 1 ApplyFailed Event; "
            f"Ready {recovery:.1f}s after one Service IP was freed (bound {RECOVERY_SECONDS}s)"
        )
    finally:
        operator.stop()
