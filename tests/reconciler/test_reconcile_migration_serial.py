"""One migration at a time: a spec change while a migration Job runs renders a new Job name, and
the new Job must wait for the running one. Against the in-memory API."""

from __future__ import annotations

import json
from typing import Any

import pytest
from reconciler_fake_kube import FakeKube, bring_up
from reconciler_platforms import STRONG_SECRETS, platform_manifest, secret_manifest

from callplatform.kube import Kube
from callplatform.reconcile import Reconciler

NS = "calls-ns"
IMAGE_1 = "registry.example.com/calls-backend:1.4.2"
IMAGE_2 = "registry.example.com/calls-backend:1.5.0"


def _platform(kube: FakeKube, name: str = "calls") -> dict[str, Any]:
    platform = kube.obj("CallPlatform", NS, name)
    assert platform is not None
    return platform


def _migration_jobs(kube: FakeKube, instance: str = "calls") -> list[dict[str, Any]]:
    return [
        job
        for job in kube.of_kind("Job")
        if job["metadata"]["labels"]["app.kubernetes.io/component"] == "migration"
        and job["metadata"]["labels"]["app.kubernetes.io/instance"] == instance
    ]


def _running(kube: FakeKube, instance: str = "calls") -> list[str]:
    return [job["metadata"]["name"] for job in _migration_jobs(kube, instance) if not job.get("status")]


def _migrations_complete(kube: FakeKube) -> dict[str, Any]:
    conditions = {c["type"]: c for c in _platform(kube)["status"]["conditions"]}
    condition: dict[str, Any] = conditions["MigrationsComplete"]
    return condition


def _edit(kube: FakeKube, change: Any) -> None:
    platform = _platform(kube)
    change(platform["spec"])
    platform["metadata"]["generation"] += 1


def _bring_up(kube: FakeKube, reconciler: Reconciler) -> None:
    bring_up(
        kube, reconciler, NS, secret_manifest(STRONG_SECRETS, namespace=NS), platform_manifest(namespace=NS)
    )


def _set_migration_command(spec: dict[str, Any]) -> None:
    spec["calls"].setdefault("migration", {})["command"] = ["npx", "prisma", "migrate", "deploy", "--verbose"]


def _set_pull_secret(spec: dict[str, Any]) -> None:
    spec["calls"]["imagePullSecrets"] = [{"name": "registry-credentials"}]


@pytest.mark.parametrize("change", [_set_migration_command, _set_pull_secret], ids=["command", "pull-secret"])
def test_spec_change_during_a_migration_waits_for_the_running_job(
    kube: FakeKube, reconciler: Reconciler, change: Any
) -> None:
    _bring_up(kube, reconciler)
    _edit(kube, lambda spec: spec["calls"].__setitem__("image", IMAGE_2))
    reconciler.reconcile(NS, "calls")
    [first] = _running(kube)

    _edit(kube, change)
    for _ in range(3):
        result = reconciler.reconcile(NS, "calls")
        assert _running(kube) == [first]  # no second migration beside the first
        assert result.converging  # looked at again soon, without a watch event
    condition = _migrations_complete(kube)
    assert condition["status"] == "False"
    assert condition["reason"] == "MigrationRunning"
    assert first in condition["message"]
    assert len(_migration_jobs(kube)) == 2  # the first migration and the one before it; no new Job yet

    kube.finish_job(first, NS, succeeded=True)
    reconciler.reconcile(NS, "calls")
    [second] = _running(kube)  # the migration for the new template runs after the first
    assert second != first
    assert second in _migrations_complete(kube)["message"]
    kube.finish_job(second, NS, succeeded=True)
    reconciler.reconcile(NS, "calls")
    assert _migrations_complete(kube)["reason"] == "MigrationSucceeded"
    deployment = kube.obj("Deployment", NS, "calls-calls")
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE_2


def test_a_failed_earlier_job_does_not_block_the_next_migration(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    _bring_up(kube, reconciler)
    _edit(kube, lambda spec: spec["calls"].__setitem__("image", IMAGE_2))
    reconciler.reconcile(NS, "calls")
    [first] = _running(kube)
    kube.finish_job(first, NS, succeeded=False)
    _edit(kube, _set_migration_command)
    reconciler.reconcile(NS, "calls")
    [second] = _running(kube)
    assert second != first
    assert _migrations_complete(kube)["reason"] == "MigrationRunning"


def test_another_platforms_migration_does_not_block(kube: FakeKube, reconciler: Reconciler) -> None:
    kube.put(secret_manifest(STRONG_SECRETS, namespace=NS))
    kube.put(platform_manifest(namespace=NS, name="other"))
    reconciler.reconcile(NS, "other")
    assert len(_running(kube, "other")) == 1
    kube.put(platform_manifest(namespace=NS))
    reconciler.reconcile(NS, "calls")
    assert len(_running(kube)) == 1
    assert len(_running(kube, "other")) == 1


class _Response:
    status = 200
    data = json.dumps({"items": []}).encode()

    def read(self) -> None:
        return None


class _RecordingApi:
    """Just enough of kubernetes.client.ApiClient for Kube._request."""

    user_agent = ""

    def __init__(self) -> None:
        self.queries: list[list[tuple[str, str]]] = []

    def param_serialize(self, **kwargs: Any) -> tuple[str, str, dict[str, str], Any, None]:
        self.queries.append(list(kwargs["query_params"]))
        return kwargs["method"], kwargs["resource_path"], kwargs["header_params"], kwargs["body"], None

    def call_api(self, *args: Any, **kwargs: Any) -> _Response:
        return _Response()


def test_kube_list_sends_the_label_selector() -> None:
    api = _RecordingApi()
    kube = Kube(api)
    kube.list("batch/v1", "Job", NS, label_selector={"b": "2", "a": "1"})
    kube.list("batch/v1", "Job", NS)
    assert api.queries == [[("labelSelector", "a=1,b=2")], []]
