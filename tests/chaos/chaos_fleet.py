"""Platforms for the fault tests, and what a sample of the cluster must never show."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import yaml
from reconciler_operator import condition_is, deployment_image
from reconciler_platforms import STRONG_SECRETS, platform_manifest, secret_manifest

MIGRATION = "app.kubernetes.io/component=migration"
CHECKSUM = "callplatform.io/secrets-checksum"
# The versions the fault tests roll out (their migration Jobs complete on KWOK).
V1 = "registry.example.com/calls-backend:1.4.2"
V2 = "registry.example.com/calls-backend:1.5.1"
V3 = "registry.example.com/calls-backend:1.6.0"


def fleet_manifest(names: list[str], image: str) -> str:
    documents: list[dict[str, Any]] = []
    for name in names:
        platform = platform_manifest(name=name, image=image)
        platform["spec"]["calls"]["replicas"] = 1
        for ref in (platform["spec"]["jitsi"]["jwt"]["secretRef"], platform["spec"]["turn"]["credentials"]["secretRef"],
                    platform["spec"]["database"]["urlSecretRef"]):  # fmt: skip
            ref["name"] = f"{name}-secrets"
        documents += [secret_manifest(STRONG_SECRETS, name=f"{name}-secrets"), platform]
    return yaml.safe_dump_all(documents)


def kubectl_json(cluster: Any, *args: str) -> dict[str, Any]:
    """The object or list, or {} while the API server does not answer (e.g. just after an etcd
    restart a GET can hang): callers wait on what they read with a deadline."""
    try:
        result = cluster.kubectl("get", *args, "-o", "json", check=False, timeout=30)
    except subprocess.TimeoutExpired:
        return {}
    loaded: dict[str, Any] = json.loads(result.stdout) if result.returncode == 0 else {}
    return loaded


def unmigrated_deployments(cluster: Any, namespace: str) -> list[str]:
    """Deployments whose image has no Complete migration Job: each one is a violation.

    Deployments are read before Jobs: a Job's Complete never reverts, so a Job still incomplete at the
    second read was incomplete when the Deployment was seen. Read the other way round, a Job finishing
    and the operator rolling the Deployment between the two reads looks like a violation.
    """
    deployments = kubectl_json(cluster, "deployments", "-n", namespace).get("items", [])
    migrated = set()
    for job in kubectl_json(cluster, "jobs", "-n", namespace, "-l", MIGRATION).get("items", []):
        done = any(
            c["type"] == "Complete" and c["status"] == "True"
            for c in job.get("status", {}).get("conditions") or []
        )
        if done:
            instance = job["metadata"]["labels"].get("app.kubernetes.io/instance", "")
            migrated.add((instance, job["spec"]["template"]["spec"]["containers"][0]["image"]))
    bad = []
    for deployment in deployments:
        instance = deployment["metadata"].get("labels", {}).get("app.kubernetes.io/instance", "")
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        if (instance, image) not in migrated:
            bad.append(f"{deployment['metadata']['name']} on {image}")
    return bad


def migration_jobs_per_version(cluster: Any, namespace: str) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for job in kubectl_json(cluster, "jobs", "-n", namespace, "-l", MIGRATION).get("items", []):
        key = (
            job["metadata"]["labels"].get("app.kubernetes.io/instance", ""),
            job["spec"]["template"]["spec"]["containers"][0]["image"],
        )
        counts[key] = counts.get(key, 0) + 1
    return counts


def migration_jobs_created(audit: Any, start: int, namespace: str) -> int:
    """Migration Jobs created in the namespace since `start`, from the audit log: server-side apply
    creates with a PATCH answered 201 Created, so each Job counts once, and a second one would show."""
    created = audit.count(
        start=start,
        where=lambda r: r.namespace == namespace and r.verb in ("create", "patch") and r.resource == "jobs"
        and r.code == 201,
    )  # fmt: skip
    return int(sum(created.values()))


def all_ready_on(cluster: Any, namespace: str, names: list[str], image: str) -> bool:
    return all(
        condition_is(cluster, namespace, name, "Ready", "True")
        and deployment_image(cluster, namespace, f"{name}-calls") == image
        for name in names
    )


def violations_sampled_for(cluster: Any, namespace: str, seconds: float) -> list[str]:
    """Sample `unmigrated_deployments` back to back for `seconds` (the time to the next fault)."""
    violations: list[str] = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        violations += unmigrated_deployments(cluster, namespace)
    return violations


def pod_template_checksum(cluster: Any, namespace: str, name: str) -> str:
    """The platform's Deployment's secrets checksum annotation ("" while there is none)."""
    deployment = kubectl_json(cluster, "deployment", f"{name}-calls", "-n", namespace)
    annotations = deployment.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations") or {}
    return str(annotations.get(CHECKSUM, ""))
