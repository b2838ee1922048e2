"""Platforms for the fault tests, and what a sample of the cluster must never show."""

from __future__ import annotations

import json
from typing import Any

import yaml
from reconciler_platforms import STRONG_SECRETS, platform_manifest, secret_manifest

MIGRATION = "app.kubernetes.io/component=migration"


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
    result = cluster.kubectl("get", *args, "-o", "json", check=False, timeout=30)
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
