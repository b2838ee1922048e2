"""The local control plane is a real Kubernetes: real API server, RBAC, controllers and KWOK nodes."""

from __future__ import annotations

import json
import re
import time

import pytest

import localcluster
from localcluster import LocalCluster

pytestmark = pytest.mark.cluster

MINIMAL_PLATFORM = """
apiVersion: callplatform.io/v1alpha1
kind: CallPlatform
metadata:
  name: roundtrip
spec:
  environment: staging
  jitsi:
    domain: meet.internal.example
    publicHost: meet.example.com
    jwt:
      appId: calls
      secretRef: {name: calls-secrets, key: JITSI_JWT_SECRET}
  turn:
    host: turn.example.com
    credentials:
      mode: static
      secretRef: {name: calls-secrets, usernameKey: TURN_USERNAME, passwordKey: TURN_PASSWORD}
  database:
    urlSecretRef: {name: calls-secrets, key: DATABASE_URL}
  calls:
    image: registry.example.com/calls-backend:1.4.2
"""


def wait_for(kube_cluster: LocalCluster, *args: str, timeout: str = "90s") -> None:
    kube_cluster.kubectl("wait", *args, f"--timeout={timeout}", timeout=200)


def pinned_versions() -> dict[str, str]:
    text = (localcluster.HERE / "versions.env").read_text()
    return dict(re.findall(r"^(\w+)=(\S+)$", text, re.MULTILINE))


def test_api_server_reports_the_built_version(kube_cluster: LocalCluster) -> None:
    wanted = pinned_versions()["KUBERNETES_VERSION"]
    version = json.loads(kube_cluster.kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert version["gitVersion"] == wanted
    assert (version["major"], version["minor"]) == ("1", wanted.split(".")[1])


def test_rbac_is_enforced(kube_cluster: LocalCluster, namespace: str) -> None:
    as_default_sa = f"--as=system:serviceaccount:{namespace}:default"
    allowed = kube_cluster.kubectl(
        "auth", "can-i", "list", "secrets", "-n", namespace, as_default_sa, check=False
    )
    assert allowed.stdout.strip() == "no"
    denied = kube_cluster.kubectl("get", "secrets", "-n", namespace, as_default_sa, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()


def test_crd_is_established_and_a_callplatform_round_trips(
    kube_cluster: LocalCluster, crd_installed: str, namespace: str
) -> None:
    kube_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=MINIMAL_PLATFORM)
    stored = json.loads(kube_cluster.kubectl("get", "cp", "roundtrip", "-n", namespace, "-o", "json").stdout)
    assert stored["kind"] == "CallPlatform"
    assert stored["spec"]["jitsi"]["publicHost"] == "meet.example.com"
    assert stored["spec"]["calls"]["image"] == "registry.example.com/calls-backend:1.4.2"
    table = kube_cluster.kubectl("get", "cp", "-n", namespace).stdout
    assert "roundtrip" in table.splitlines()[1]


def test_kwok_runs_a_deployment_to_available(kube_cluster: LocalCluster, namespace: str) -> None:
    kube_cluster.kubectl(
        "create", "deployment", "web", "-n", namespace, "--image=registry.example.com/web:1", "--replicas=2"
    )
    wait_for(kube_cluster, "--for=condition=Available", "deployment/web", "-n", namespace)
    status = json.loads(
        kube_cluster.kubectl("get", "deployment", "web", "-n", namespace, "-o", "json").stdout
    )
    assert status["status"]["readyReplicas"] == 2
    pods = json.loads(kube_cluster.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
    assert len(pods) == 2
    assert all(pod["spec"]["nodeName"].startswith("kwok-node-") for pod in pods)


def test_kwok_completes_a_job(kube_cluster: LocalCluster, namespace: str) -> None:
    kube_cluster.kubectl("create", "job", "once", "-n", namespace, "--image=registry.example.com/task:1")
    wait_for(kube_cluster, "--for=condition=Complete", "job/once", "-n", namespace)
    job = json.loads(kube_cluster.kubectl("get", "job", "once", "-n", namespace, "-o", "json").stdout)
    assert job["status"]["succeeded"] == 1


def test_kwok_fails_a_job_whose_image_is_marked_failing(kube_cluster: LocalCluster, namespace: str) -> None:
    kube_cluster.kubectl(
        "create", "job", "broken", "-n", namespace, "--image=registry.example.com/task:2-failing-migration"
    )
    kube_cluster.kubectl(
        "patch", "job", "broken", "-n", namespace, "--type=merge", "-p", '{"spec":{"backoffLimit":0}}'
    )
    wait_for(kube_cluster, "--for=condition=Failed", "job/broken", "-n", namespace)
    job = json.loads(kube_cluster.kubectl("get", "job", "broken", "-n", namespace, "-o", "json").stdout)
    assert job["status"].get("succeeded", 0) == 0
    assert job["status"]["failed"] >= 1


def test_garbage_collector_removes_owned_objects(kube_cluster: LocalCluster, namespace: str) -> None:
    owner = json.loads(
        kube_cluster.kubectl("create", "configmap", "owner", "-n", namespace, "-o", "json").stdout
    )
    child = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "child",
            "namespace": namespace,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
            ],
        },
    }
    kube_cluster.kubectl("apply", "-f", "-", input=json.dumps(child))
    kube_cluster.kubectl("delete", "configmap", "owner", "-n", namespace)
    deadline = time.monotonic() + 60
    while kube_cluster.kubectl("get", "configmap", "child", "-n", namespace, check=False).returncode == 0:
        assert time.monotonic() < deadline, "garbage collector did not delete the owned ConfigMap in 60s"
        time.sleep(0.2)


def test_audit_log_records_writes(kube_cluster: LocalCluster, namespace: str) -> None:
    kube_cluster.kubectl("create", "configmap", "audited", "-n", namespace)
    deadline = time.monotonic() + 30
    while True:
        text = kube_cluster.audit_log.read_text() if kube_cluster.audit_log.exists() else ""
        if f'"namespace":"{namespace}","name":"audited"' in text.replace(" ", ""):
            break
        assert time.monotonic() < deadline, "audit log has no entry for the ConfigMap create"
        time.sleep(0.2)


def test_audit_log_counts_reads_and_writes_by_user_verb_and_resource(
    kube_cluster: LocalCluster, namespace: str
) -> None:
    audit = localcluster.AuditLog(kube_cluster.audit_log)
    start, since = audit.position(), localcluster.utc_now()
    kube_cluster.kubectl("create", "configmap", "counted", "-n", namespace)
    for _ in range(3):
        kube_cluster.kubectl("get", "configmap", "counted", "-n", namespace)
    kube_cluster.kubectl("get", "configmaps", "-n", namespace)

    def ours(record: localcluster.AuditRecord) -> bool:
        return record.namespace == namespace and record.resource == "configmaps"

    deadline = time.monotonic() + 30
    while True:
        counted = audit.count(start=start, since=since, where=ours)
        by_verb = {verb: n for (_, verb, _), n in counted.items()}
        if by_verb == {"create": 1, "get": 3, "list": 1}:
            break
        assert time.monotonic() < deadline, f"audit counts {by_verb}"
        time.sleep(0.2)
    assert len({user for user, _, _ in counted}) == 1, counted
    assert audit.count(start=start, since=localcluster.utc_now(), where=ours) == {}


def test_service_ip_range_has_room_for_a_fleet(kube_cluster: LocalCluster, namespace: str) -> None:
    """kwokctl's default /24 is full at the 255th Service; the /16 takes an address far beyond it."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "far", "namespace": namespace},
        "spec": {"clusterIP": "10.96.200.7", "ports": [{"port": 80}]},
    }
    kube_cluster.kubectl("apply", "-f", "-", input=json.dumps(service))
    assert localcluster.LocalCluster.nodes_for_pods(1000) * localcluster.PODS_PER_NODE >= 1000
