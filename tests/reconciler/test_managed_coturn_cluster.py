"""A managed coturn on the real control plane (kube-apiserver, controllers, KWOK), with the
operator running as `callplatform run`.

One operator watches two namespaces: a `restricted` one with a Deployment-mode platform (the
pods must pass the profile), and a `baseline` one with a DaemonSet-mode (hostNetwork) platform,
refused with a condition until the namespace allows host networking.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from reconciler_managed_coturn import managed_manifest, tls_secret_manifest
from reconciler_operator import AuditLog, OperatorProcess, condition_is, conditions, get_json, wait_for
from reconciler_operator import apply as kubectl_apply
from reconciler_platforms import STRONG_SECRETS, secret_manifest

from callplatform.render.coturn_server import CHECKSUM_ANNOTATION

pytestmark = pytest.mark.cluster

NAME = "calls"
COTURN = f"{NAME}-coturn"
ENFORCE = "pod-security.kubernetes.io/enforce"
TIMEOUT = 180
COTURN_PODS = "app.kubernetes.io/component=coturn"
OWNED = "deployments,daemonsets,services,poddisruptionbudgets,networkpolicies,secrets,configmaps,jobs"
INSTANCE = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/managed-by=callplatform-operator"
METRICS_PORT = 9641
# Just enough of prometheus-operator's CRD for the API server to serve ServiceMonitors.
SERVICE_MONITOR_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {"kind": "ServiceMonitor", "plural": "servicemonitors", "singular": "servicemonitor"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}


@dataclass
class Managed:
    cluster: Any
    operator: OperatorProcess
    deployment_ns: str
    daemonset_ns: str

    def wait(self, namespace: str, condition: str, status: str, reason: str = "") -> None:
        wait_for(
            lambda: condition_is(self.cluster, namespace, NAME, condition, status, reason),
            f"{namespace}/{NAME} {condition}={status} {reason}",
            TIMEOUT,
            self.operator,
        )

    def wait_resyncs(self, count: int) -> None:
        target = self.operator.log().count("resync: queued") + count
        wait_for(lambda: self.operator.log().count("resync: queued") >= target, "resyncs", 60, self.operator)


def _namespace(cluster: Any, prefix: str, level: str) -> str:
    namespace = f"{prefix}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl("label", "namespace", namespace, f"{ENFORCE}={level}", f"{ENFORCE}-version=latest")
    cluster.wait_for_default_service_account(namespace)
    return namespace


def _tls(serial: str) -> dict[str, str]:
    # The API server checks that a kubernetes.io/tls Secret has both keys, not their contents;
    # coturn is not really started here (KWOK), the same-command-line test runs it.
    return {
        "cert": f"-----BEGIN CERTIFICATE-----\n{serial}\n",
        "key": f"-----BEGIN PRIVATE KEY-----\n{serial}\n",
    }


@pytest.fixture(scope="module")
def managed(
    kube_cluster: Any, crd_installed: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Managed]:
    tmp = tmp_path_factory.mktemp("managed-coturn")
    kube_cluster.kubectl("apply", "-f", "-", input=json.dumps(SERVICE_MONITOR_CRD))
    crd = "crd/servicemonitors.monitoring.coreos.com"
    kube_cluster.kubectl("wait", "--for=condition=Established", crd, "--timeout=60s")
    deployment_ns = _namespace(kube_cluster, "coturn-deploy", "restricted")
    daemonset_ns = _namespace(kube_cluster, "coturn-ds", "baseline")
    for namespace, mode in ((deployment_ns, "Deployment"), (daemonset_ns, "DaemonSet")):
        tls = _tls("v1")
        platform = managed_manifest(name=NAME, mode=mode, service={"type": "NodePort"})
        if mode == "Deployment":
            platform["spec"]["turn"]["prometheusPort"] = METRICS_PORT
        kubectl_apply(
            kube_cluster,
            namespace,
            secret_manifest(STRONG_SECRETS),
            tls_secret_manifest(tls["cert"], tls["key"]),
            platform,
        )
    operator = OperatorProcess(
        kube_cluster.kubeconfig, tmp / "operator.log", "--namespace", deployment_ns, "--namespace", daemonset_ns,
        "--resync-seconds", "2", "--standalone",
    )  # fmt: skip
    try:
        yield Managed(kube_cluster, operator, deployment_ns, daemonset_ns)
    finally:
        operator.stop()
        for namespace in (deployment_ns, daemonset_ns):
            kube_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        kube_cluster.kubectl("delete", crd, "--wait=false", check=False)


def _ready_pods(cluster: Any, namespace: str) -> list[str]:
    pods = (get_json(cluster, "pods", "-n", namespace, "-l", COTURN_PODS) or {}).get("items", [])
    return [
        pod["metadata"]["name"]
        for pod in pods
        if not pod["metadata"].get("deletionTimestamp")
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in pod.get("status", {}).get("conditions", [])
        )
    ]


def _replica_sets(cluster: Any, namespace: str) -> list[str]:
    listed = (get_json(cluster, "replicasets", "-n", namespace, "-l", COTURN_PODS) or {}).get("items", [])
    return sorted(rs["metadata"]["name"] for rs in listed)


def _deployment(cluster: Any, namespace: str) -> dict[str, Any]:
    deployment = get_json(cluster, "deployment", COTURN, "-n", namespace)
    assert deployment is not None
    return deployment


def test_managed_coturn_platform_is_ready_with_pods_ready_under_kwok(managed: Managed) -> None:
    cluster, ns = managed.cluster, managed.deployment_ns
    managed.wait(ns, "Ready", "True")
    assert conditions(cluster, ns, NAME)["TurnServerReady"]["reason"] == "TurnServerAvailable"
    assert len(_ready_pods(cluster, ns)) == 2  # admitted by `restricted` Pod Security
    for kind in ("service", "poddisruptionbudget", "networkpolicy"):
        live = get_json(cluster, kind, COTURN, "-n", ns)
        assert live is not None, kind
        assert live["metadata"]["ownerReferences"][0]["kind"] == "CallPlatform"
    service = get_json(cluster, "service", COTURN, "-n", ns) or {}
    assert {(p["port"], p["protocol"]) for p in service["spec"]["ports"]} == {
        (3478, "UDP"), (3478, "TCP"), (5349, "TCP"), (5349, "UDP"),
    }  # fmt: skip
    assert all(p.get("nodePort") for p in service["spec"]["ports"])


def test_prometheus_listener_gets_a_private_service_and_a_service_monitor(managed: Managed) -> None:
    cluster, ns = managed.cluster, managed.deployment_ns
    managed.wait(ns, "Ready", "True")
    metrics = get_json(cluster, "service", f"{COTURN}-metrics", "-n", ns) or {}
    assert metrics["spec"]["type"] == "ClusterIP"
    assert [p["port"] for p in metrics["spec"]["ports"]] == [METRICS_PORT]
    monitor = get_json(cluster, "servicemonitor", f"{COTURN}-metrics", "-n", ns) or {}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= metrics["metadata"]["labels"].items()
    public = get_json(cluster, "service", COTURN, "-n", ns) or {}
    assert METRICS_PORT not in {p["port"] for p in public["spec"]["ports"]}


def test_the_api_server_refuses_a_bad_digest_with_the_rule_id(managed: Managed) -> None:
    platform = managed_manifest(name="bad-digest", image={"tag": "4.6.3", "digest": "sha256:abc"})
    result = managed.cluster.kubectl(
        "apply",
        "--dry-run=server",
        "-n",
        managed.deployment_ns,
        "-f",
        "-",
        input=json.dumps(platform),
        check=False,
    )
    assert result.returncode != 0 and "CP011: turn.server.image.digest" in result.stderr


def test_host_network_in_a_baseline_namespace_is_a_condition_until_it_is_allowed(managed: Managed) -> None:
    cluster, ns = managed.cluster, managed.daemonset_ns
    managed.wait(ns, "TurnServerReady", "False", "PodSecurityForbidsHostNetwork")
    assert get_json(cluster, "daemonset", COTURN, "-n", ns) is None
    message = conditions(cluster, ns, NAME)["Ready"]["message"]
    assert "PodSecurityForbidsHostNetwork" in message
    events = (get_json(cluster, "events", "-n", ns) or {}).get("items", [])
    assert any(e["reason"] == "PodSecurityForbidsHostNetwork" and e["type"] == "Warning" for e in events)

    cluster.kubectl("label", "namespace", ns, f"{ENFORCE}=privileged", "--overwrite")
    managed.wait(ns, "Ready", "True")  # the periodic resync sees the label; the DaemonSet runs on every node
    daemonset = get_json(cluster, "daemonset", COTURN, "-n", ns) or {}
    assert daemonset["spec"]["template"]["spec"]["hostNetwork"] is True
    assert daemonset["status"]["numberAvailable"] == daemonset["status"]["desiredNumberScheduled"] > 0


def test_idle_resync_of_a_managed_coturn_makes_zero_write_requests(managed: Managed) -> None:
    """Every coturn object as rendered matches what the API server stored (defaults included)."""
    for ns in (managed.deployment_ns, managed.daemonset_ns):
        managed.wait(ns, "Ready", "True")
    managed.wait_resyncs(2)
    audit = AuditLog(managed.cluster.audit_log)
    audit.mark()
    managed.wait_resyncs(4)
    for ns in (managed.deployment_ns, managed.daemonset_ns):
        assert audit.operator_writes_since_mark(ns) == [], ns


def _rolls_once(managed: Managed, change: Any) -> None:
    cluster, ns = managed.cluster, managed.deployment_ns
    managed.wait(ns, "Ready", "True")
    managed.wait_resyncs(2)
    before = _deployment(cluster, ns)
    replica_sets = _replica_sets(cluster, ns)
    audit = AuditLog(cluster.audit_log)
    audit.mark()
    change()
    wait_for(
        lambda: _deployment(cluster, ns)["metadata"]["generation"] > before["metadata"]["generation"],
        "the coturn Deployment to change", TIMEOUT, managed.operator,
    )  # fmt: skip
    managed.wait(ns, "TurnServerReady", "True")
    managed.wait(ns, "Ready", "True")
    managed.wait_resyncs(3)  # and nothing more happens
    after = _deployment(cluster, ns)
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    checksum = CHECKSUM_ANNOTATION
    old, new = (d["spec"]["template"]["metadata"]["annotations"][checksum] for d in (before, after))
    assert old != new
    assert len(_replica_sets(cluster, ns)) == len(replica_sets) + 1  # exactly one new ReplicaSet
    writes = [w for w in audit.operator_writes_since_mark(ns) if w.endswith(f"deployments/{COTURN}")]
    assert writes == [f"patch deployments/{COTURN}"], writes
    wait_for(
        lambda: len(_ready_pods(cluster, ns)) == 2 or None, "2 coturn pods Ready", TIMEOUT, managed.operator
    )


def test_a_new_turn_password_rolls_the_coturn_pods_exactly_once(managed: Managed) -> None:
    values = {**STRONG_SECRETS, "TURN_PASSWORD": "turn-Rotated-Password-4Wq8Zx"}
    _rolls_once(
        managed, lambda: kubectl_apply(managed.cluster, managed.deployment_ns, secret_manifest(values))
    )
    log = managed.operator.log()
    assert "turn-Rotated-Password-4Wq8Zx" not in log and STRONG_SECRETS["TURN_PASSWORD"] not in log


def test_a_renewed_tls_secret_rolls_the_coturn_pods_exactly_once(managed: Managed) -> None:
    tls = _tls("v2")
    _rolls_once(
        managed,
        lambda: kubectl_apply(
            managed.cluster, managed.deployment_ns, tls_secret_manifest(tls["cert"], tls["key"])
        ),
    )


def test_deleting_the_platform_removes_every_coturn_object(managed: Managed) -> None:
    cluster = managed.cluster
    for ns in (managed.deployment_ns, managed.daemonset_ns):
        managed.wait(ns, "Ready", "True")

    def owned(ns: str) -> list[str]:
        listed = get_json(cluster, OWNED, "-n", ns, "-l", INSTANCE) or {}
        return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in listed.get("items", []))

    assert {f"PodDisruptionBudget/{COTURN}", f"NetworkPolicy/{COTURN}", f"Deployment/{COTURN}"} <= set(
        owned(managed.deployment_ns)
    )
    assert f"DaemonSet/{COTURN}" in owned(managed.daemonset_ns)
    managed.operator.stop()
    for ns in (managed.deployment_ns, managed.daemonset_ns):
        cluster.kubectl("delete", "callplatform", NAME, "-n", ns, "--timeout=30s")
    for ns in (managed.deployment_ns, managed.daemonset_ns):
        wait_for(lambda ns=ns: owned(ns) == [] or None, f"garbage collection in {ns}", 120)  # type: ignore[misc]
        wait_for(lambda ns=ns: _ready_pods(cluster, ns) == [] or None, f"coturn pods gone in {ns}", 120)  # type: ignore[misc]
