"""kube-apiserver paused (SIGSTOP) then resumed, kube-apiserver restarted, etcd restarted: the operator keeps
running (no crash loop), /healthz answers during the outage, and a Secret change made after recovery reaches
the Deployment's pod template within 30 s. On a cluster of its own, so no other test sees the outages.

CHAOS_PAUSE_SECONDS sets the pause (bench/bench_chaos.py uses 60).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chaos_fleet import V1, fleet_manifest, pod_template_checksum
from reconciler_operator import OperatorProcess, condition_is, http_status, wait_for
from reconciler_platforms import STRONG_SECRETS, secret_manifest

import localcluster

pytestmark = pytest.mark.cluster

PAUSE_SECONDS = float(os.environ.get("CHAOS_PAUSE_SECONDS", "10"))
RECOVERY_SECONDS = 30
NAME = "p0"
CRD = Path(__file__).resolve().parents[2] / "crds" / "callplatform.io_callplatforms.yaml"


@pytest.fixture(scope="module")
def fault_cluster() -> Iterator[localcluster.LocalCluster]:
    with localcluster.cluster_of_its_own(f"cp-test-{os.getpid()}-chaos", crd=CRD) as cluster:
        yield cluster


def _checksum(cluster: Any, ns: str) -> str:
    return pod_template_checksum(cluster, ns, NAME)


def _secret_change_reaches_deployment(cluster: Any, ns: str, operator: OperatorProcess, round_: int) -> float:
    # The current checksum, once the API server answers again (a read can hang after a restart).
    before = wait_for(lambda: _checksum(cluster, ns) or None, "the Deployment's current checksum",
                      RECOVERY_SECONDS, operator)  # fmt: skip
    values = {**STRONG_SECRETS, "JITSI_JWT_SECRET": f"jwt-{round_}-{secrets.token_urlsafe(32)}"}
    cluster.kubectl(
        "apply", "-n", ns, "-f", "-", input=json.dumps(secret_manifest(values, name=f"{NAME}-secrets"))
    )
    changed = time.monotonic()
    wait_for(lambda: _checksum(cluster, ns) not in ("", before), "the Secret change on the pod template",
             RECOVERY_SECONDS, operator)  # fmt: skip
    return time.monotonic() - changed


def test_api_server_and_etcd_outages_recover(
    fault_cluster: localcluster.LocalCluster, tmp_path: Path
) -> None:
    cluster = fault_cluster
    ns = cluster.create_namespace("faults")
    operator = OperatorProcess(
        cluster.kubeconfig,
        tmp_path / "operator.log",
        "--namespace",
        ns,
        "--resync-seconds",
        "5",
        "--standalone",
    )
    try:
        cluster.kubectl(
            "apply",
            "-n",
            ns,
            "-f",
            "-",
            input=fleet_manifest([NAME], V1),
        )
        wait_for(lambda: condition_is(cluster, ns, NAME, "Ready", "True"), "Ready", 180, operator)
        assert operator.process is not None
        pid = operator.process.pid
        command = list(operator.process.args)  # type: ignore[arg-type]
        http_port = int(command[command.index("--http-port") + 1])

        healthz: list[int] = []
        with cluster.paused("kube-apiserver"):
            until = time.monotonic() + PAUSE_SECONDS
            while time.monotonic() < until:
                healthz.append(http_status(http_port, "/healthz"))
                time.sleep(1)  # the sampling rate of /healthz during the outage, not a readiness wait
        assert healthz and all(code in (200, 503) for code in healthz), healthz  # answered, never hung
        cluster.wait_serving()
        paused = _secret_change_reaches_deployment(cluster, ns, operator, 1)

        cluster.restart_component("kube-apiserver")
        cluster.wait_serving(120)
        restarted = _secret_change_reaches_deployment(cluster, ns, operator, 2)

        cluster.restart_component("etcd", grace=0)
        cluster.wait_serving(120)
        etcd = _secret_change_reaches_deployment(cluster, ns, operator, 3)

        assert operator.alive() and operator.process is not None and operator.process.pid == pid, "no crash"
        assert "Traceback" not in operator.log()
        print(
            f"chaos: Secret change to pod template after recovery: API server paused {PAUSE_SECONDS:.0f}s "
            f"{paused:.1f}s, API server restarted {restarted:.1f}s, etcd restarted {etcd:.1f}s; "
            f"/healthz during the pause {sorted(set(healthz))}"
        )
    finally:
        operator.stop()
