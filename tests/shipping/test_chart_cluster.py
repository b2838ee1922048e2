"""The chart in a real control plane: `helm install` succeeds under the restricted Pod Security
profile; its RBAC is enough for the operator (run locally as the chart's ServiceAccount) to bring
the production example to Ready; `kubectl auth can-i` proves it is not more than that."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from .conftest import CHART, PSA_RESTRICTED, Release, create_namespace, run_helm
from .operator_process import (
    OperatorProcess,
    http_get,
    platform_condition,
    production_example,
    start_leader_elected,
    wait_for,
)

pytestmark = pytest.mark.cluster

READY_TIMEOUT = 240.0

# Nobody needs these to run the operator; each must be refused wherever it is asked.
NEVER_ALLOWED = [
    ("*", "*"),
    ("create", "namespaces"),
    ("delete", "namespaces"),
    ("create", "nodes"),
    ("patch", "nodes"),
    ("create", "persistentvolumes"),
    ("create", "customresourcedefinitions.apiextensions.k8s.io"),
    ("patch", "customresourcedefinitions.apiextensions.k8s.io"),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("create", "roles.rbac.authorization.k8s.io"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("escalate", "clusterroles.rbac.authorization.k8s.io"),
    ("escalate", "roles.rbac.authorization.k8s.io"),
    ("bind", "clusterroles.rbac.authorization.k8s.io"),
    ("bind", "roles.rbac.authorization.k8s.io"),
    ("impersonate", "users"),
    ("impersonate", "groups"),
    ("impersonate", "serviceaccounts"),
    ("create", "validatingwebhookconfigurations.admissionregistration.k8s.io"),
    ("create", "pods"),
    ("create", "pods/exec"),
    ("create", "serviceaccounts/token"),
    ("delete", "secrets"),
    ("deletecollection", "secrets"),
    ("update", "secrets"),
    ("delete", "deployments.apps"),
    ("create", "leases.coordination.k8s.io"),
    ("patch", "callplatforms.callplatform.io"),
    ("delete", "callplatforms.callplatform.io"),
]


def can_i(cluster: Any, release: Release, verb: str, resource: str, *scope: str) -> bool:
    result = cluster.kubectl("auth", "can-i", verb, resource, "--as", release.user, *scope, check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), result.stderr
    return answer == "yes"


def test_helm_install_deploys_pods_that_pass_the_restricted_profile(
    kube_cluster: Any, cluster_wide_release: Release
) -> None:
    release = cluster_wide_release
    deployment = json.loads(
        kube_cluster.kubectl(
            "get", "deployment", release.fullname, "-n", release.namespace, "-o", "json"
        ).stdout
    )
    assert deployment["status"].get("availableReplicas") == 2
    pods = json.loads(
        kube_cluster.kubectl(
            "get",
            "pods",
            "-n",
            release.namespace,
            "-l",
            "app.kubernetes.io/name=callplatform-operator",
            "-o",
            "json",
        ).stdout
    )["items"]
    assert len(pods) == 2  # admitted by a namespace that enforces `restricted`
    labels = json.loads(kube_cluster.kubectl("get", "namespace", release.namespace, "-o", "json").stdout)
    assert labels["metadata"]["labels"].items() >= PSA_RESTRICTED.items()


def test_the_namespace_really_enforces_restricted(kube_cluster: Any, cluster_wide_release: Release) -> None:
    """Control for the test above: a root pod is refused in the same namespace."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "root-pod", "namespace": cluster_wide_release.namespace},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "securityContext": {"runAsUser": 0}}]},
    }
    result = kube_cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(pod), check=False
    )
    assert result.returncode != 0
    assert "violates PodSecurity" in result.stderr


def test_cluster_wide_rbac_allows_what_the_operator_does(
    kube_cluster: Any, cluster_wide_release: Release
) -> None:
    release = cluster_wide_release
    anywhere = ("-n", "some-team")
    for verb, resource in [
        ("get", "secrets"),
        ("watch", "secrets"),
        ("patch", "secrets"),
        ("create", "jobs.batch"),
        ("patch", "deployments.apps"),
        ("create", "events"),
        ("list", "callplatforms.callplatform.io"),
    ]:
        assert can_i(kube_cluster, release, verb, resource, *anywhere), (verb, resource)
    assert can_i(
        kube_cluster, release, "patch", "callplatforms.callplatform.io", "--subresource=status", *anywhere
    )
    assert can_i(kube_cluster, release, "list", "customresourcedefinitions.apiextensions.k8s.io")
    lease = ("-n", release.namespace)
    assert can_i(kube_cluster, release, "update", "leases.coordination.k8s.io/callplatform-operator", *lease)
    assert not can_i(kube_cluster, release, "update", "leases.coordination.k8s.io/kube-scheduler", *lease)
    assert not can_i(
        kube_cluster, release, "get", "leases.coordination.k8s.io/callplatform-operator", "-n", "kube-system"
    )


@pytest.mark.parametrize(("verb", "resource"), NEVER_ALLOWED)
def test_cluster_wide_rbac_refuses_everything_else(
    kube_cluster: Any, cluster_wide_release: Release, verb: str, resource: str
) -> None:
    for scope in (("-n", "some-team"), ("-n", cluster_wide_release.namespace), ("--all-namespaces",)):
        assert not can_i(kube_cluster, cluster_wide_release, verb, resource, *scope), (verb, resource, scope)


@pytest.mark.parametrize(("verb", "resource"), NEVER_ALLOWED)
def test_namespaced_rbac_refuses_everything_else(
    kube_cluster: Any, namespaced_release: Release, verb: str, resource: str
) -> None:
    (watched,) = namespaced_release.watch_namespaces
    for scope in (("-n", watched), ("-n", namespaced_release.namespace), ("--all-namespaces",)):
        assert not can_i(kube_cluster, namespaced_release, verb, resource, *scope), (verb, resource, scope)


def test_namespaced_rbac_reaches_secrets_only_where_it_watches(
    kube_cluster: Any, namespaced_release: Release
) -> None:
    release = namespaced_release
    (watched,) = release.watch_namespaces
    for verb in ("get", "list", "watch", "create", "patch"):
        assert can_i(kube_cluster, release, verb, "secrets", "-n", watched), verb
        assert not can_i(kube_cluster, release, verb, "secrets", "-n", "default"), verb
        assert not can_i(kube_cluster, release, verb, "secrets", "-n", release.namespace), verb
        assert not can_i(kube_cluster, release, verb, "secrets", "--all-namespaces"), verb
    assert can_i(kube_cluster, release, "create", "deployments.apps", "-n", watched)
    assert not can_i(kube_cluster, release, "create", "deployments.apps", "-n", "default")
    # Its own namespace's Pod Security label (a managed hostNetwork coturn), and no other namespace.
    assert can_i(kube_cluster, release, "get", f"namespaces/{watched}", "-n", watched)
    assert not can_i(kube_cluster, release, "get", "namespaces/default", "-n", "default")
    # No cluster-scoped right at all.
    assert not can_i(kube_cluster, release, "list", "customresourcedefinitions.apiextensions.k8s.io")
    assert not can_i(kube_cluster, release, "list", "namespaces")


def run_operator_to_ready(
    kube_cluster: Any, release: Release, workload_namespace: str, tmp_path: Path, *scope: str
) -> OperatorProcess:
    documents, secret_values = production_example(workload_namespace)
    kube_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(documents))
    operator = start_leader_elected(
        kube_cluster, release.namespace, release.service_account, tmp_path, "test-operator", *scope
    )
    try:
        wait_for(
            "Ready=True on the production example",
            lambda: (
                operator.alive()
                and platform_condition(kube_cluster, workload_namespace, "production", "Ready") == "True"
            ),
            READY_TIMEOUT,
            interval=1.0,
        )
    except AssertionError:
        operator.terminate()
        raise AssertionError("operator log:\n" + operator.log()[-4000:]) from None
    log = operator.log()
    assert "403" not in log and "Forbidden" not in log, log[-4000:]
    for value in secret_values.values():
        assert value not in log
    return operator


def test_operator_as_the_service_account_reconciles_to_ready(
    kube_cluster: Any, cluster_wide_release: Release, namespace: str, tmp_path: Path
) -> None:
    operator = run_operator_to_ready(
        kube_cluster, cluster_wide_release, namespace, tmp_path, "--all-namespaces"
    )
    try:
        # The endpoints the chart's probes and ServiceMonitor use.
        assert http_get(operator.http_port, "/healthz")[0] == 200
        assert http_get(operator.http_port, "/readyz")[0] == 200
        status, body = http_get(operator.http_port, "/metrics")
        assert status == 200
        assert "callplatform_build_info" in {f.name for f in text_string_to_metric_families(body.decode())}
        jobs = json.loads(kube_cluster.kubectl("get", "jobs", "-n", namespace, "-o", "json").stdout)["items"]
        assert len(jobs) == 1 and jobs[0]["status"].get("succeeded") == 1
        deployments = json.loads(
            kube_cluster.kubectl("get", "deployments", "-n", namespace, "-o", "json").stdout
        )
        assert [d["status"].get("availableReplicas") for d in deployments["items"]] == [2]
    finally:
        assert operator.terminate() == 0
    lease = json.loads(
        kube_cluster.kubectl(
            "get", "lease", "callplatform-operator", "-n", cluster_wide_release.namespace, "-o", "json"
        ).stdout
    )
    assert lease["spec"].get("holderIdentity", "") == "", "a clean exit releases the Lease"


def test_operator_with_namespaced_roles_only_reconciles_to_ready(
    kube_cluster: Any, namespaced_release: Release, tmp_path: Path
) -> None:
    (watched,) = namespaced_release.watch_namespaces
    create_namespace(kube_cluster, watched)
    operator = run_operator_to_ready(
        kube_cluster, namespaced_release, watched, tmp_path, f"--namespace={watched}"
    )
    assert operator.terminate() == 0


def test_helm_upgrade_keeps_the_lease_its_holder_and_helms_ownership(
    kube_cluster: Any, cluster_wide_release: Release, tmp_path: Path
) -> None:
    """The operator writes the Lease Helm created; a later `helm upgrade` must still own it."""
    release = cluster_wide_release
    operator = start_leader_elected(
        kube_cluster, release.namespace, release.service_account, tmp_path, "upgrade-test", "--all-namespaces"
    )

    def lease() -> dict[str, Any]:
        result = kube_cluster.kubectl(
            "get", "lease", "callplatform-operator", "-n", release.namespace, "-o", "json"
        )
        lease_object: dict[str, Any] = json.loads(result.stdout)
        return lease_object

    try:
        wait_for("the operator to lead", lambda: lease()["spec"].get("holderIdentity") == "upgrade-test", 60)
        run_helm(
            Path(kube_cluster.bin_dir) / "helm",
            "upgrade", release.name, str(CHART),
            "--kubeconfig", str(kube_cluster.kubeconfig), "--namespace", release.namespace,
            "--reuse-values", "--set", "podAnnotations.upgraded=yes", "--wait", "--timeout", "180s",
        )  # fmt: skip
        after = lease()
        assert after["spec"]["holderIdentity"] == "upgrade-test"
        assert after["metadata"]["annotations"]["meta.helm.sh/release-name"] == release.name
        assert operator.alive()
    finally:
        assert operator.terminate() == 0
