"""High availability: two `callplatform run --leader-elect` processes against one cluster.

Exactly one reconciles; the other stands by. Killed without a clean exit, the leader is replaced
within lease duration + retry period; a clean exit hands over within about a retry period. The
migration Job is never duplicated.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import Release
from .operator_process import (
    OperatorProcess,
    http_get,
    platform_condition,
    production_example,
    start_leader_elected,
    wait_for,
)

pytestmark = pytest.mark.cluster

LEASE_DURATION = 6
RENEW_DEADLINE = 4
RETRY_PERIOD = 1
WORST_CASE_TAKEOVER = LEASE_DURATION + RETRY_PERIOD
# Polling, process start-up and a loaded 2-core machine.
SLACK = 8.0
WRITE_LINE = re.compile(r"\b(applied|wrote) ")


def lease_holder(cluster: Any, release: Release) -> str:
    lease = json.loads(
        cluster.kubectl("get", "lease", "callplatform-operator", "-n", release.namespace, "-o", "json").stdout
    )
    return str(lease["spec"].get("holderIdentity") or "")


def migration_jobs(cluster: Any, namespace: str) -> list[str]:
    jobs = json.loads(cluster.kubectl("get", "jobs", "-n", namespace, "-o", "json").stdout)["items"]
    return sorted(job["metadata"]["name"] for job in jobs)


def deployment_replicas(cluster: Any, namespace: str) -> list[int]:
    items = json.loads(cluster.kubectl("get", "deployments", "-n", namespace, "-o", "json").stdout)["items"]
    return [int(item["spec"]["replicas"]) for item in items]


def test_one_of_two_operators_reconciles_and_the_other_takes_over(
    kube_cluster: Any, cluster_wide_release: Release, namespace: str, tmp_path: Path
) -> None:
    release = cluster_wide_release

    def start(identity: str) -> OperatorProcess:
        return start_leader_elected(
            kube_cluster,
            release.namespace,
            release.service_account,
            tmp_path,
            identity,
            "--all-namespaces",
            f"--lease-duration-seconds={LEASE_DURATION}",
            f"--renew-deadline-seconds={RENEW_DEADLINE}",
            f"--retry-period-seconds={RETRY_PERIOD}",
        )

    processes: list[OperatorProcess] = []
    try:
        first = start("replica-a")
        processes.append(first)
        wait_for("replica-a to lead", lambda: lease_holder(kube_cluster, release) == "replica-a", 60)
        second = start("replica-b")
        processes.append(second)
        wait_for("replica-b to stand by", lambda: "standing by" in second.log(), 60)

        documents, _ = production_example(namespace)
        kube_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(documents))
        wait_for(
            "Ready=True",
            lambda: platform_condition(kube_cluster, namespace, "production", "Ready") == "True",
            240,
            interval=1.0,
        )
        assert WRITE_LINE.search(first.log()), "the leader reconciled"
        assert not WRITE_LINE.search(second.log()), "the standby wrote nothing:\n" + second.log()[-3000:]
        assert second.alive()
        # The standby is alive and ready, and answers the health API with the leader's answer.
        assert http_get(second.http_port, "/healthz") == (200, b"standby: waiting for the leader Lease\n")
        assert http_get(second.http_port, "/readyz")[0] == 200
        for component in ("jitsi", "coturn"):
            path = f"/api/calls/health/{component}"
            assert http_get(second.http_port, path) == http_get(first.http_port, path)
        jobs = migration_jobs(kube_cluster, namespace)
        assert len(jobs) == 1

        # Killed without a clean exit: the Lease must expire first.
        first.kill()
        killed_at = time.monotonic()
        wait_for(
            "replica-b to take over",
            lambda: lease_holder(kube_cluster, release) == "replica-b",
            WORST_CASE_TAKEOVER + SLACK,
            interval=0.2,
        )
        takeover = time.monotonic() - killed_at
        assert takeover <= WORST_CASE_TAKEOVER + SLACK
        # The operator's own HTTP server has replaced the standby's, on the same port.
        wait_for(
            "replica-b to serve the health API itself",
            lambda: (
                b"standby" not in http_get(second.http_port, "/api/calls/health/jitsi")[1]
                and http_get(second.http_port, "/healthz")[0] == 200
            ),
            60,
        )

        # The new leader reconciles: a spec change reaches the Deployment.
        kube_cluster.kubectl(
            "patch", "callplatform", "production", "-n", namespace, "--type=merge",
            "-p", json.dumps({"spec": {"calls": {"replicas": 3}}}),
        )  # fmt: skip
        wait_for(
            "the new leader to scale the Deployment",
            lambda: deployment_replicas(kube_cluster, namespace) == [3],
            60,
        )
        # The "applied" line is logged after the API call returns, so it can trail the Deployment.
        wait_for("replica-b to log its write", lambda: WRITE_LINE.search(second.log()) is not None, 10)

        # A clean exit hands over at once, to a replica started meanwhile.
        third = start("replica-c")
        processes.append(third)
        wait_for("replica-c to stand by", lambda: "standing by" in third.log(), 60)
        # The leader keeps the Lease while it shuts down (it still holds it, so no one else acts);
        # the handover is timed from its exit.
        assert second.terminate() == 0
        stopped_at = time.monotonic()
        wait_for(
            "replica-c to take over",
            lambda: lease_holder(kube_cluster, release) == "replica-c",
            RETRY_PERIOD + SLACK,
            interval=0.2,
        )
        handover = time.monotonic() - stopped_at
        assert handover < LEASE_DURATION, "a clean exit does not wait for the Lease to expire"
        assert not second.alive()

        wait_for(
            "Ready=True under replica-c",
            lambda: platform_condition(kube_cluster, namespace, "production", "Ready") == "True",
            120,
            interval=1.0,
        )
        assert migration_jobs(kube_cluster, namespace) == jobs, "no duplicate migration Job"
        print(f"takeover after SIGKILL: {takeover:.1f}s; handover after a clean exit: {handover:.1f}s")
    finally:
        for process in processes:
            process.terminate()  # a clean exit leaves the Lease free for later tests
