"""SIGKILL of `callplatform run` at random moments while platforms roll out, restarting it each time.

CHAOS_KILLS / CHAOS_PLATFORMS raise the counts (bench/bench_chaos.py); the test command runs small ones.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from chaos_fleet import (
    V1,
    V2,
    fleet_manifest,
    migration_jobs_created,
    migration_jobs_per_version,
    unmigrated_deployments,
    violations_sampled_for,
)
from reconciler_operator import OperatorProcess, condition_is, deployment_image, wait_for

import localcluster

pytestmark = pytest.mark.cluster

KILLS = int(os.environ.get("CHAOS_KILLS", "5"))
PLATFORMS = int(os.environ.get("CHAOS_PLATFORMS", "3"))


def test_sigkill_during_rollouts_converges_with_one_migration_per_version(
    kube_cluster: Any, crd_installed: str, tmp_path: Path
) -> None:
    ns = f"chaos-kill-{uuid.uuid4().hex[:6]}"
    kube_cluster.kubectl("create", "namespace", ns)
    kube_cluster.wait_for_default_service_account(ns)
    names = [f"p{index}" for index in range(PLATFORMS)]
    audit = localcluster.AuditLog(kube_cluster.audit_log)
    start = audit.position()
    operator = OperatorProcess(
        kube_cluster.kubeconfig,
        tmp_path / "operator.log",
        "--namespace",
        ns,
        "--resync-seconds",
        "2",
        "--standalone",
    )
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "11")))
    violations: list[str] = []
    try:
        kube_cluster.kubectl("apply", "-n", ns, "-f", "-", input=fleet_manifest(names, V1))
        for kill in range(KILLS):
            if kill == KILLS // 2:  # a second version rolls out through the remaining kills
                kube_cluster.kubectl("apply", "-n", ns, "-f", "-", input=fleet_manifest(names, V2))
            # The kill moment is the fault schedule (random), not a wait for readiness.
            violations += violations_sampled_for(kube_cluster, ns, rng.uniform(0.5, 4.0))
            operator.stop(kill=True)
            violations += unmigrated_deployments(kube_cluster, ns)
            operator.start()
        last_kill = time.monotonic()
        for name in names:
            wait_for(
                lambda name=name: condition_is(kube_cluster, ns, name, "Ready", "True")
                and deployment_image(kube_cluster, ns, f"{name}-calls") == V2,
                f"{name} Ready on {V2}", 240, operator,
            )  # fmt: skip
        converged = time.monotonic() - last_kill
        violations += unmigrated_deployments(kube_cluster, ns)
        assert violations == [], violations
        expected = {(name, image): 1 for name in names for image in (V1, V2)}
        jobs = migration_jobs_per_version(kube_cluster, ns)
        # V1's migration may be skipped if V2 arrived before it started; never run twice.
        assert all(count == 1 for count in jobs.values()), jobs
        assert {key for key in expected if key[1] == V2} <= set(jobs), jobs
        created = migration_jobs_created(audit, start, ns)
        assert created == len(jobs), (created, jobs)
        print(
            f"chaos: {KILLS} SIGKILLs survived with {PLATFORMS} platforms, duplicate migration Jobs "
            f"{created - len(jobs)}, all Ready on {V2} {converged:.1f}s after the last restart"
        )
    finally:
        operator.stop()
        kube_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
