"""SIGKILL of the leader among two `callplatform run --leader-elect` replicas while platforms roll out.

Each replica process runs as a ServiceAccount of its own, so the audit log tells the writers apart:
the write intervals of the processes never overlap (a standby writes nothing but the Lease, a killed
leader's successor starts writing only after the kill), no migration Job is created twice, no sampled
moment shows a Deployment on an unmigrated image, and every platform reaches Ready on the last image.

CHAOS_KILLS / CHAOS_PLATFORMS raise the counts (bench/bench_chaos.py); the test command runs small ones.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from chaos_fleet import (
    V1,
    V2,
    all_ready_on,
    fleet_manifest,
    kubectl_json,
    migration_jobs_created,
    migration_jobs_per_version,
    unmigrated_deployments,
    violations_sampled_for,
)
from reconciler_operator import OperatorProcess, wait_for

import localcluster
from shipping.operator_process import service_account_kubeconfig

pytestmark = pytest.mark.cluster

KILLS = int(os.environ.get("CHAOS_KILLS", "2"))
PLATFORMS = int(os.environ.get("CHAOS_PLATFORMS", "3"))
LEASE_FLAGS = ("--lease-duration-seconds=6", "--renew-deadline-seconds=4", "--retry-period-seconds=1")
# A request sent just before SIGKILL can be received by the API server a moment after it.
IN_FLIGHT = timedelta(seconds=1)


@dataclass
class Replica:
    identity: str
    user: str
    process: OperatorProcess
    killed_at: datetime | None = None


@pytest.fixture
def lease_namespace(kube_cluster: Any, crd_installed: str) -> Iterator[str]:
    """A namespace whose ServiceAccounts may do anything in it, and nothing elsewhere."""
    ns = f"chaos-leader-{uuid.uuid4().hex[:6]}"
    kube_cluster.kubectl("create", "namespace", ns)
    kube_cluster.wait_for_default_service_account(ns)
    rbac = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "operator"},
         "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "operator"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "operator"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                       "name": f"system:serviceaccounts:{ns}"}]},
    ]  # fmt: skip
    kube_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(rbac))
    try:
        yield ns
    finally:
        kube_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def _lease_holder(cluster: Any, ns: str) -> str:
    lease = kubectl_json(cluster, "lease", "callplatform-operator", "-n", ns)
    return str(lease.get("spec", {}).get("holderIdentity") or "")


def _start(cluster: Any, ns: str, workdir: Path, index: int) -> Replica:
    identity = f"replica-{index}"
    cluster.kubectl("create", "serviceaccount", identity, "-n", ns)
    kubeconfig = service_account_kubeconfig(cluster, ns, identity, workdir / f"{identity}.kubeconfig")
    process = OperatorProcess(
        kubeconfig, workdir / f"{identity}.log", "--namespace", ns, "--resync-seconds", "2", "--standalone",
        "--leader-elect", f"--lease-namespace={ns}", f"--identity={identity}", *LEASE_FLAGS,
    )  # fmt: skip
    return Replica(identity, f"system:serviceaccount:{ns}:{identity}", process)


def _write_intervals(
    audit: localcluster.AuditLog, start: int, ns: str, users: set[str]
) -> dict[str, tuple[datetime, datetime, int]]:
    """Per replica user: its first and last write in the namespace (the Lease left out) and how many."""
    intervals: dict[str, tuple[datetime, datetime, int]] = {}
    for record in audit.records(start=start):
        if record.namespace != ns or record.user not in users or not record.is_write:
            continue
        if record.resource.startswith("leases"):
            continue
        first, last, count = intervals.get(record.user, (record.received, record.received, 0))
        intervals[record.user] = (min(first, record.received), max(last, record.received), count + 1)
    return intervals


def test_leader_sigkill_during_rollout_keeps_one_writer_and_one_job_per_version(
    kube_cluster: Any, lease_namespace: str, tmp_path: Path
) -> None:
    cluster, ns = kube_cluster, lease_namespace
    names = [f"p{index}" for index in range(PLATFORMS)]
    audit = localcluster.AuditLog(cluster.audit_log)
    start = audit.position()
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "11")))
    replicas: dict[str, Replica] = {}
    violations: list[str] = []
    takeovers: list[float] = []

    def live_holder() -> Replica | None:
        holder = replicas.get(_lease_holder(cluster, ns))
        return holder if holder is not None and holder.process.alive() else None

    try:
        for index in range(2):
            replica = _start(cluster, ns, tmp_path, index)
            replicas[replica.identity] = replica
            if index == 0:
                wait_for(live_holder, "a first leader", 60, replica.process)
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=fleet_manifest(names, V1))
        for kill in range(KILLS):
            if kill == KILLS // 2:  # a second version rolls out through the remaining kills
                cluster.kubectl("apply", "-n", ns, "-f", "-", input=fleet_manifest(names, V2))
            # The kill moment is the fault schedule (random), not a wait for readiness.
            violations += violations_sampled_for(cluster, ns, rng.uniform(0.5, 4.0))
            leader = wait_for(live_holder, "a live leader to kill", 60)
            leader.killed_at = localcluster.utc_now()
            leader.process.stop(kill=True)
            killed = time.monotonic()
            violations += unmigrated_deployments(cluster, ns)
            replacement = _start(cluster, ns, tmp_path, len(replicas))
            replicas[replacement.identity] = replacement
            wait_for(
                lambda leader=leader: (h := live_holder()) is not None and h is not leader, "a new leader", 60
            )
            takeovers.append(time.monotonic() - killed)
        last_kill = time.monotonic()

        def converged() -> bool:
            nonlocal violations
            violations += unmigrated_deployments(cluster, ns)
            return all_ready_on(cluster, ns, names, V2)

        wait_for(converged, f"every platform Ready on {V2}", 300)
        converged_after = time.monotonic() - last_kill
        assert violations == [], violations

        jobs = migration_jobs_per_version(cluster, ns)
        assert all(count == 1 for count in jobs.values()), jobs
        assert {(name, V2) for name in names} <= set(jobs), jobs
        # A create cut off by the SIGKILL can be committed without its 201 in the audit log, so the
        # log may count fewer creates than there are Jobs; a duplicate would make it count more.
        created = migration_jobs_created(audit, start, ns)
        assert created <= len(jobs), (created, jobs)
        duplicates = max(0, created - len(jobs))

        # One writer at any time: the processes' write intervals, ordered by their first write, never
        # overlap, and a killed leader wrote nothing after its kill.
        by_user = {replica.user: replica for replica in replicas.values()}
        intervals = _write_intervals(audit, start, ns, set(by_user))
        assert len(intervals) >= 2, f"the rollout crossed no leader change: {intervals}"
        ordered = sorted(intervals.items(), key=lambda item: item[1][0])
        for (user, (_, last, _)), (next_user, (first, _, _)) in itertools.pairwise(ordered):
            assert last < first, f"{user} still wrote at {last} after {next_user} began at {first}"
        for user, (_, last, _) in intervals.items():
            killed_at = by_user[user].killed_at
            assert killed_at is None or last <= killed_at + IN_FLIGHT, f"{user} wrote after its kill"
        stable = [r for r in replicas.values() if r.killed_at is None and r.process.alive()]
        assert len(stable) == 2, "the replicas that were not killed are still running"
        summary = json.dumps({user.rsplit(":", 1)[1]: count for user, (_, _, count) in ordered})
        print(
            f"chaos: {KILLS} leader SIGKILLs survived with {PLATFORMS} platforms, duplicate migration Jobs "
            f"{duplicates}, takeover after a kill mean {statistics.mean(takeovers):.1f}s max "
            f"{max(takeovers):.1f}s, all Ready on {V2} {converged_after:.1f}s after the last takeover; "
            f"writes per process in order {summary}"
        )
    finally:
        for replica in replicas.values():
            replica.process.stop()
