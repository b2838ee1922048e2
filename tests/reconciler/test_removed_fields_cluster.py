"""A field the operator stops setting disappears from the live object (real API server, not the fake).

The field comparison alone is a subset test: a cleared `spec.jitsi.jwt.appId`, dropped
`resources.limits` or `imagePullSecrets` all still "match" the old live Deployment. The applied-hash
annotation changes with them, so the pass applies, and server-side apply removes what this field
manager no longer sets. An unchanged platform still makes no write.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from reconciler_platforms import STRONG_SECRETS, platform_manifest, secret_manifest

from callplatform.kube import APPLIED_HASH_ANNOTATION, Kube
from callplatform.reconcile import Reconciler

pytestmark = pytest.mark.cluster

DEPLOYMENT = "calls-calls"


def _platform(namespace: str) -> dict[str, Any]:
    manifest = platform_manifest(namespace=namespace, environment="development")
    calls = manifest["spec"]["calls"]
    calls["replicas"] = 1
    calls["resources"] = {"requests": {"cpu": "100m"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    calls["imagePullSecrets"] = [{"name": "registry-credentials"}]
    return manifest


def _deployment(kube: Kube, namespace: str) -> dict[str, Any] | None:
    return kube.get("apps/v1", "Deployment", namespace, DEPLOYMENT)


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "calls")


def test_fields_the_platform_no_longer_sets_are_removed_from_the_live_deployment(
    kube_cluster: Any, crd_installed: str, namespace: str, k8s_api: Any
) -> None:
    manifest = _platform(namespace)
    for document in (secret_manifest(STRONG_SECRETS, namespace=namespace), manifest):
        kube_cluster.kubectl("apply", "-f", "-", input=json.dumps(document))
    kube = Kube(k8s_api)
    reconciler = Reconciler(kube)
    deadline = time.monotonic() + 90
    while (live := _deployment(kube, namespace)) is None:  # created once the migration Job completes
        assert time.monotonic() < deadline, "the calls Deployment was never created"
        reconciler.reconcile(namespace, "calls")
        time.sleep(0.5)
    env = {e["name"]: e.get("value") for e in _container(live)["env"]}
    assert env["JITSI_APP_ID"] == "calls"
    assert _container(live)["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    assert live["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "registry-credentials"}]

    manifest["spec"]["jitsi"]["jwt"]["appId"] = ""
    del manifest["spec"]["calls"]["resources"]["limits"]
    del manifest["spec"]["calls"]["imagePullSecrets"]
    kube_cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    result = reconciler.reconcile(namespace, "calls")

    assert f"Deployment/{DEPLOYMENT}" in result.writes
    live = _deployment(kube, namespace)
    assert live is not None
    container = _container(live)
    assert {"name": "JITSI_APP_ID"} in container["env"], "the old appId value is still live"
    assert "limits" not in container["resources"], "the dropped resources.limits are still live"
    assert "imagePullSecrets" not in live["spec"]["template"]["spec"]
    assert APPLIED_HASH_ANNOTATION in live["metadata"]["annotations"]
    again = reconciler.reconcile(namespace, "calls")
    assert not [w for w in again.writes if not w.startswith(("CallPlatform/status", "Event/"))]
