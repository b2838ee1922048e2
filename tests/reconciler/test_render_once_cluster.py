"""On the real API server, every pass renders the platform exactly once, the migration and the
Deployment's image having been decided from what the pass observed (the unit test,
test_render_once.py, drives the same flow on the fake)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from reconciler_platforms import STRONG_SECRETS, platform_manifest, secret_manifest

from callplatform import reconcile
from callplatform.kube import Kube
from callplatform.render import DesiredObjects
from callplatform.render import render_platform as real_render_platform

pytestmark = pytest.mark.cluster

IMAGE_1 = "registry.example.com/calls-backend:1.4.2"
IMAGE_2 = "registry.example.com/calls-backend:1.5.0"
DEPLOYMENT = "calls-calls"


def _deployment_image(kube: Kube, namespace: str) -> str | None:
    live = kube.get("apps/v1", "Deployment", namespace, DEPLOYMENT)
    if live is None:
        return None
    containers: list[dict[str, Any]] = live["spec"]["template"]["spec"]["containers"]
    return str(next(c for c in containers if c["name"] == "calls")["image"])


def test_every_pass_on_the_real_api_server_renders_once_and_decides_the_image_first(
    kube_cluster: Any, crd_installed: str, namespace: str, k8s_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []

    def counted(*args: Any, **kwargs: Any) -> DesiredObjects:
        calls.append(kwargs)
        return real_render_platform(*args, **kwargs)

    monkeypatch.setattr(reconcile, "render_platform", counted)
    manifest = platform_manifest(namespace=namespace, image=IMAGE_1)
    manifest["spec"]["calls"]["replicas"] = 1
    manifest["spec"]["jitsi"]["jwt"]["generate"] = True  # the generated Secret is decided, not rendered
    for document in (secret_manifest(STRONG_SECRETS, namespace=namespace), manifest):
        kube_cluster.kubectl("apply", "-f", "-", input=json.dumps(document))
    kube = Kube(k8s_api)
    reconciler = reconcile.Reconciler(kube)

    def one_pass() -> dict[str, Any]:
        calls.clear()
        reconciler.reconcile(namespace, "calls")
        assert len(calls) == 1, f"{len(calls)} renders in one pass"
        return calls[0]

    def until(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, what
            time.sleep(0.5)  # the polling interval; the deadline bounds the wait

    first = one_pass()
    assert first["include_deployment"] is False  # the first migration runs before any Deployment
    until(lambda: one_pass()["deployment_image"] == IMAGE_1 and _deployment_image(kube, namespace) == IMAGE_1,
          "the Deployment was never created on the migrated image")  # fmt: skip

    manifest["spec"]["calls"]["image"] = IMAGE_2
    kube_cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    held = one_pass()  # the new version's migration Job starts; the Deployment stays where it is
    assert held["deployment_image"] == IMAGE_1
    assert _deployment_image(kube, namespace) == IMAGE_1

    def rolled() -> bool:
        decided = one_pass()["deployment_image"]
        live = _deployment_image(kube, namespace)
        assert live in (IMAGE_1, IMAGE_2)
        # Never the new image on the Deployment while the pass still decided the old one.
        assert not (decided == IMAGE_1 and live == IMAGE_2)
        return bool(decided == IMAGE_2 and live == IMAGE_2)

    until(rolled, "the Deployment never moved to the new image after its migration")
    jobs = kube.list(
        "batch/v1", "Job", namespace, label_selector={"app.kubernetes.io/component": "migration"}
    )
    images = sorted(job["spec"]["template"]["spec"]["containers"][0]["image"] for job in jobs)
    assert images == [IMAGE_1, IMAGE_2]  # one migration Job per version, none rendered twice
