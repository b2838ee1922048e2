"""A pass observes, decides, then renders exactly once: the migration and the Deployment's image
are decided before `render_platform`, never by rendering twice."""

from __future__ import annotations

from typing import Any

import pytest
from reconciler_fake_kube import Clock, FakeKube
from reconciler_platforms import STRONG_SECRETS, WEAK_JWT_SECRET, platform_manifest, secret_manifest

from callplatform import reconcile
from callplatform.render import DesiredObjects
from callplatform.render import render_platform as real_render_platform

NS = "once"
IMAGE_2 = "registry.example.com/calls-backend:1.5.0"


def test_every_pass_renders_the_platform_exactly_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def counted(*args: Any, **kwargs: Any) -> DesiredObjects:
        calls.append(kwargs)
        return real_render_platform(*args, **kwargs)

    monkeypatch.setattr(reconcile, "render_platform", counted)
    kube = FakeKube()
    reconciler = reconcile.Reconciler(kube, clock=Clock())  # type: ignore[arg-type]
    kube.put(secret_manifest(STRONG_SECRETS, namespace=NS))
    manifest = platform_manifest(namespace=NS)
    manifest["spec"]["jitsi"]["jwt"]["generate"] = True  # the generated Secret is decided, not rendered twice
    kube.put(manifest)

    def one_pass() -> dict[str, Any]:
        calls.clear()
        reconciler.reconcile(NS, "calls")
        assert len(calls) == 1, calls
        return calls[0]

    assert one_pass()["include_deployment"] is False  # the first migration runs: no Deployment yet
    kube.finish_job("calls-migrate-", NS, succeeded=True)
    first = one_pass()
    assert first["deployment_image"] == "registry.example.com/calls-backend:1.4.2"
    kube.make_deployment_available(NS, "calls-calls")
    one_pass()
    one_pass()  # idle

    platform = kube.obj("CallPlatform", NS, "calls")
    assert platform is not None
    platform["spec"]["calls"]["image"] = IMAGE_2
    platform["metadata"]["generation"] += 1
    held = one_pass()  # the new version's migration runs: the Deployment stays on the old image
    assert held["deployment_image"] == "registry.example.com/calls-backend:1.4.2"
    kube.finish_job("calls-migrate-", NS, succeeded=True)
    assert one_pass()["deployment_image"] == IMAGE_2

    kube.put(secret_manifest({**STRONG_SECRETS, "JITSI_JWT_SECRET": WEAK_JWT_SECRET}, namespace=NS))
    one_pass()  # blocked by the rules: still one render, nothing applied from it
