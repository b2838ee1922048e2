"""On the real control plane: an idle resync of Ready platforms makes no API request at all (reads
included, counted by the API server's audit log), and a Secret change is reconciled from the
watch-fed cache with the new value, not a stale one."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from reconciler_operator import OPERATOR_USER_AGENTS, OperatorProcess, condition_is, get_json, wait_for
from reconciler_operator import apply as kubectl_apply
from reconciler_platforms import STRONG_SECRETS, platform_manifest, secret_manifest

import localcluster
from callplatform.model import parse_platform
from callplatform.render import render_platform

pytestmark = pytest.mark.cluster

NAMES = ("alpha", "beta")
CHECKSUM = "callplatform.io/secrets-checksum"
NEW_JWT_SECRET = "jwt-9Rt4wQ2zX7nM5bV8cK1hJ6fL3pS0dG4aE9"


@dataclass
class Fleet:
    cluster: Any
    namespace: str
    operator: OperatorProcess

    def resyncs(self) -> int:
        return self.operator.log().count("resync: queued")

    def wait_resyncs(self, count: int) -> None:
        target = self.resyncs() + count
        wait_for(lambda: self.resyncs() >= target, f"{count} resyncs", 60, self.operator)

    def ready(self) -> bool:
        return all(condition_is(self.cluster, self.namespace, name, "Ready", "True") for name in NAMES)

    def checksum(self, name: str) -> str:
        deployment = get_json(self.cluster, "deployment", f"{name}-calls", "-n", self.namespace) or {}
        annotations = (
            deployment.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations", {})
        )
        return str(annotations.get(CHECKSUM, ""))


def _operator_requests(
    audit: localcluster.AuditLog, start: int, namespace: str
) -> Counter[tuple[str, str, str]]:
    """Every request of the operator (its client and kopf's) since `start`, but the long-lived watch
    streams kopf renews every few minutes: by (verb, resource, name)."""
    return Counter(
        (record.verb, record.resource, record.name)
        for record in audit.records(start=start)
        if record.user_agent.startswith(OPERATOR_USER_AGENTS)
        and record.verb != "watch"
        and record.namespace in (namespace, "")
    )


@pytest.fixture(scope="module")
def fleet(kube_cluster: Any, crd_installed: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    namespace = f"cache-{uuid.uuid4().hex[:6]}"
    kube_cluster.kubectl("create", "namespace", namespace)
    kube_cluster.wait_for_default_service_account(namespace)
    documents = [secret_manifest(STRONG_SECRETS)] + [platform_manifest(name=name) for name in NAMES]
    operator = OperatorProcess(
        kube_cluster.kubeconfig, tmp_path_factory.mktemp("cache") / "operator.log",
        "--namespace", namespace, "--resync-seconds", "2", "--standalone",
    )  # fmt: skip
    fleet = Fleet(kube_cluster, namespace, operator)
    try:
        kubectl_apply(kube_cluster, namespace, *documents)
        wait_for(fleet.ready, "both platforms Ready", 180, operator)
        yield fleet
    finally:
        operator.stop()
        kube_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_an_idle_resync_of_ready_platforms_makes_no_request_at_all(fleet: Fleet, kube_cluster: Any) -> None:
    audit = localcluster.AuditLog(kube_cluster.audit_log)
    fleet.wait_resyncs(2)  # let anything still settling finish
    start = audit.position()
    since = datetime.now().astimezone()
    fleet.wait_resyncs(4)  # at least three complete passes of each platform
    requests = _operator_requests(audit, start, fleet.namespace)
    assert requests == Counter(), f"requests of the operator during idle resyncs: {dict(requests)}"
    passes = fleet.operator.log().count("resync: queued")
    assert passes >= 4 and fleet.ready()
    # The log itself recorded the window: kube-apiserver requests from others are there.
    assert any(record.received >= since for record in audit.records(start=start))


def test_a_secret_change_is_reconciled_from_the_cache_with_its_new_value(
    fleet: Fleet, kube_cluster: Any
) -> None:
    audit = localcluster.AuditLog(kube_cluster.audit_log)
    before = {name: fleet.checksum(name) for name in NAMES}
    assert all(before.values())
    new_values = {**STRONG_SECRETS, "JITSI_JWT_SECRET": NEW_JWT_SECRET}
    expected = {}
    for name in NAMES:
        live = get_json(kube_cluster, "callplatform", name, "-n", fleet.namespace) or {}
        desired = render_platform(parse_platform(live), {"calls-secrets": new_values})
        assert desired.deployment is not None
        expected[name] = desired.deployment["spec"]["template"]["metadata"]["annotations"][CHECKSUM]
        assert expected[name] != before[name]
    start = audit.position()
    kubectl_apply(kube_cluster, fleet.namespace, secret_manifest(new_values))
    wait_for(
        lambda: all(fleet.checksum(name) == expected[name] for name in NAMES),
        "the new Secret's checksum on both pod templates", 60, fleet.operator,
    )  # fmt: skip
    requests = _operator_requests(audit, start, fleet.namespace)
    print(f"Secret change: {dict(requests)}")
    reads = {key: count for key, count in requests.items() if key[0] in ("get", "list")}
    assert reads == {}, f"the passes read from the API server: {reads}"
    patched = sorted({key[2] for key in requests if key[:2] == ("patch", "deployments")})
    assert patched == [f"{name}-calls" for name in NAMES]


def test_a_spec_change_is_applied_without_reading_the_api_server(fleet: Fleet, kube_cluster: Any) -> None:
    audit = localcluster.AuditLog(kube_cluster.audit_log)
    name = NAMES[0]
    wait_for(fleet.ready, "both platforms Ready", 120, fleet.operator)
    fleet.wait_resyncs(2)  # a rollout of the previous test settled
    start = audit.position()
    kube_cluster.kubectl(
        "patch", "callplatform", name, "-n", fleet.namespace, "--type=merge", "-p",
        '{"spec": {"calls": {"replicas": 3}}}',
    )  # fmt: skip
    wait_for(
        lambda: (get_json(kube_cluster, "deployment", f"{name}-calls", "-n", fleet.namespace) or {})
        .get("spec", {}).get("replicas") == 3,
        "3 replicas", 60, fleet.operator,
    )  # fmt: skip
    wait_for(fleet.ready, "both platforms Ready again", 120, fleet.operator)
    requests = _operator_requests(audit, start, fleet.namespace)
    print(f"spec change: {dict(requests)}")
    reads = {key: count for key, count in requests.items() if key[0] in ("get", "list")}
    assert reads == {}, f"the passes read from the API server: {reads}"
    assert requests[("patch", "deployments", f"{name}-calls")] == 1
