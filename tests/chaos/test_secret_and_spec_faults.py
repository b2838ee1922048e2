"""A referenced Secret deleted and recreated, and the CallPlatform edited during a running migration.

- Secret: the platform reports the missing Secret (SecretsValid=False/RulesFailed naming CP010, a
  Warning Event, Ready=False) without a crash, and once the Secret is back with a new value it is
  Ready again with that value's checksum on the pod template (the one `callplatform render` prints).
- Edit mid-migration: the migration Job of a new image is held Pending (every node cordoned), the
  platform is edited to a third image, then the nodes come back. Exactly one migration Job per
  platform version (Jobs and the audit log's 201s), no sampled moment shows a Deployment on an
  unmigrated image, and every platform converges on the last image.

CHAOS_PLATFORMS raises the number of platforms edited at once (bench/bench_chaos.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from chaos_fleet import (
    CHECKSUM,
    V1,
    V2,
    V3,
    all_ready_on,
    fleet_manifest,
    kubectl_json,
    migration_jobs_created,
    migration_jobs_per_version,
    pod_template_checksum,
    unmigrated_deployments,
)
from reconciler_operator import (
    CALLPLATFORM,
    OperatorProcess,
    condition_is,
    conditions,
    events,
    wait_for,
)
from reconciler_platforms import STRONG_SECRETS, secret_manifest

import localcluster

pytestmark = pytest.mark.cluster

PLATFORMS = int(os.environ.get("CHAOS_PLATFORMS", "2"))
READY_TIMEOUT = 240


def _operator(cluster: Any, ns: str, log: Path) -> OperatorProcess:
    return OperatorProcess(
        cluster.kubeconfig, log, "--namespace", ns, "--resync-seconds", "2", "--standalone"
    )


def _rendered_checksum(manifest: str, ns: str) -> str:
    """The checksum `callplatform render` prints for the manifest's Deployment (no generated values)."""
    rendered = subprocess.run(
        [str(CALLPLATFORM), "render", "-n", ns, "-"], input=manifest, capture_output=True, text=True,
        check=True, timeout=60,
    )  # fmt: skip
    (deployment,) = [
        doc for doc in yaml.safe_load_all(rendered.stdout) if doc and doc["kind"] == "Deployment"
    ]
    return str(deployment["spec"]["template"]["metadata"]["annotations"][CHECKSUM])


def test_deleted_secret_is_reported_and_its_recreation_converges(
    kube_cluster: Any, namespace: str, crd_installed: str, tmp_path: Path
) -> None:
    cluster, ns, name = kube_cluster, namespace, "p0"
    operator = _operator(cluster, ns, tmp_path / "operator.log")
    try:
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=fleet_manifest([name], V1))
        wait_for(lambda: condition_is(cluster, ns, name, "Ready", "True"), "Ready", READY_TIMEOUT, operator)
        before = pod_template_checksum(cluster, ns, name)

        cluster.kubectl("delete", "secret", f"{name}-secrets", "-n", ns)
        wait_for(
            lambda: condition_is(cluster, ns, name, "SecretsValid", "False", "RulesFailed"),
            "SecretsValid=False for the missing Secret", 60, operator,
        )  # fmt: skip
        current = conditions(cluster, ns, name)
        assert "CP010" in current["SecretsValid"]["message"], current["SecretsValid"]
        assert f"{name}-secrets" in current["SecretsValid"]["message"], current["SecretsValid"]
        assert current["Ready"]["status"] == "False"
        warnings = [e for e in events(cluster, ns) if e["type"] == "Warning" and e["reason"] == "RulesFailed"]
        assert warnings and "CP010" in warnings[0]["message"], warnings
        # What already runs keeps running: the Deployment is neither removed nor changed.
        assert pod_template_checksum(cluster, ns, name) == before

        values = {**STRONG_SECRETS, "JITSI_JWT_SECRET": f"jwt-recreated-{uuid.uuid4().hex}{uuid.uuid4().hex}"}
        recreated = secret_manifest(values, name=f"{name}-secrets")
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(recreated))
        wait_for(lambda: condition_is(cluster, ns, name, "Ready", "True"), "Ready again", 60, operator)
        expected = _rendered_checksum(
            yaml.safe_dump_all([recreated, *(
                doc for doc in yaml.safe_load_all(fleet_manifest([name], V1)) if doc["kind"] == "CallPlatform"
            )]),
            ns,
        )  # fmt: skip
        wait_for(lambda: pod_template_checksum(cluster, ns, name) == expected,
                 "the recreated Secret's value on the pod template", 30, operator)  # fmt: skip
        assert expected != before
        assert operator.alive() and "Traceback" not in operator.log()
        assert values["JITSI_JWT_SECRET"] not in operator.log()
    finally:
        operator.stop()


def _set_nodes_schedulable(cluster: Any, schedulable: bool) -> None:
    nodes = [item["metadata"]["name"] for item in kubectl_json(cluster, "nodes").get("items", [])]
    cluster.kubectl("uncordon" if schedulable else "cordon", *nodes)


def _generation(cluster: Any, ns: str, name: str) -> int:
    return int(kubectl_json(cluster, "callplatform", name, "-n", ns).get("metadata", {}).get("generation", 0))


def _holds_back_for_running_migration(cluster: Any, ns: str, name: str, generation: int) -> bool:
    """The pass for `generation` has seen the spec edit and waits on the earlier, still running Job."""
    migrations = conditions(cluster, ns, name).get("MigrationsComplete") or {}
    return (
        migrations.get("reason") == "MigrationRunning"
        and int(migrations.get("observedGeneration", 0)) >= generation
    )


def test_edit_during_a_running_migration_runs_one_job_per_version(
    kube_cluster: Any, namespace: str, crd_installed: str, tmp_path: Path
) -> None:
    cluster, ns = kube_cluster, namespace
    names = [f"p{index}" for index in range(PLATFORMS)]
    audit = localcluster.AuditLog(cluster.audit_log)
    start = audit.position()
    operator = _operator(cluster, ns, tmp_path / "operator.log")
    violations: list[str] = []
    try:
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=fleet_manifest(names, V1))
        for name in names:
            wait_for(lambda name=name: condition_is(cluster, ns, name, "Ready", "True"), f"{name} Ready",
                     READY_TIMEOUT, operator)  # fmt: skip

        _set_nodes_schedulable(cluster, False)  # V2's migration pods stay Pending: the Jobs keep running
        try:
            cluster.kubectl("apply", "-n", ns, "-f", "-", input=fleet_manifest(names, V2))
            for name in names:
                wait_for(
                    lambda name=name: condition_is(cluster, ns, name, "MigrationsComplete", "False",
                                                   "MigrationRunning"),
                    f"{name}'s V2 migration running", 60, operator,
                )  # fmt: skip
            violations += unmigrated_deployments(cluster, ns)
            cluster.kubectl("apply", "-n", ns, "-f", "-", input=fleet_manifest(names, V3))
            for name in names:
                generation = _generation(cluster, ns, name)
                wait_for(
                    lambda name=name, generation=generation: _holds_back_for_running_migration(
                        cluster, ns, name, generation
                    ),
                    f"{name} to see the V3 edit while V2 migrates", 60, operator,
                )  # fmt: skip
                violations += unmigrated_deployments(cluster, ns)
            held = migration_jobs_per_version(cluster, ns)
            assert all(image != V3 for _, image in held), f"a V3 Job started while V2 migrated: {held}"
        finally:
            _set_nodes_schedulable(cluster, True)

        def converged() -> bool:
            nonlocal violations
            violations += unmigrated_deployments(cluster, ns)
            return all_ready_on(cluster, ns, names, V3)

        wait_for(converged, f"every platform Ready on {V3}", READY_TIMEOUT, operator)
        assert violations == [], violations
        jobs = migration_jobs_per_version(cluster, ns)
        expected = {(name, image) for name in names for image in (V1, V2, V3)}
        assert set(jobs) == expected and all(count == 1 for count in jobs.values()), jobs
        created = migration_jobs_created(audit, start, ns)
        assert created == len(expected), created
        assert operator.alive() and "Traceback" not in operator.log()
        print(f"chaos: {PLATFORMS} platforms edited to V3 while V2 migrated; migration Jobs created "
              f"{created} for {len(expected)} versions; 0 unmigrated Deployments sampled")  # fmt: skip
    finally:
        operator.stop()
