"""/healthz of a running `callplatform run`: ok while every kopf watch stream runs, and a 503 that
names the dead stream when one fails (kopf does not restart it, so only a restart of the pod would
bring that kind's events back).

The dead stream is real: the operator runs as a ServiceAccount that may read and write ConfigMaps
but not list or watch them, so kopf's ConfigMap watch stream fails at its first list (after kopf's
retries, about a minute).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from callplatform.liveness import WATCH_START_GRACE_SECONDS

from .operator_process import OperatorProcess, http_get, service_account_kubeconfig, wait_for

pytestmark = pytest.mark.cluster

# Everything the operator touches in its namespace, all verbs, except listing and watching ConfigMaps.
RULES_WITHOUT_CONFIGMAP_WATCH: list[dict[str, Any]] = [
    {
        "apiGroups": ["callplatform.io"],
        "resources": ["callplatforms", "callplatforms/status"],
        "verbs": ["*"],
    },
    {"apiGroups": [""], "resources": ["secrets", "services", "events"], "verbs": ["*"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "patch", "update"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "daemonsets"], "verbs": ["*"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["*"]},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["*"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["*"]},
]


def _service_account_without_configmap_watch(cluster: Any, namespace: str, path: Path) -> Path:
    name = "no-configmap-watch"
    documents = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": name, "namespace": namespace}, "rules": RULES_WITHOUT_CONFIGMAP_WATCH},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": name, "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]},
    ]  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(documents))
    return service_account_kubeconfig(cluster, namespace, name, path)


def test_healthz_is_ok_while_every_watch_stream_runs(kube_cluster: Any, crd_installed: str, namespace: str,
                                                    tmp_path: Path) -> None:  # fmt: skip
    operator = OperatorProcess(kube_cluster.kubeconfig, tmp_path / "operator.log", "--namespace", namespace,
                               "--standalone")  # fmt: skip
    try:
        took = wait_for("/healthz ok", lambda: http_get(operator.http_port, "/healthz") == (200, b"ok\n"), 90)
        assert http_get(operator.http_port, "/readyz") == (200, b"ready\n")
        assert operator.alive()
        print(f"liveness: /healthz ok {took:.1f}s after the first poll")
    finally:
        operator.terminate()


def test_healthz_names_a_dead_watch_stream(kube_cluster: Any, crd_installed: str, namespace: str,
                                          tmp_path: Path) -> None:  # fmt: skip
    kubeconfig = _service_account_without_configmap_watch(kube_cluster, namespace, tmp_path / "sa.kubeconfig")
    operator = OperatorProcess(
        kubeconfig, tmp_path / "operator.log", "--namespace", namespace, "--standalone"
    )
    try:
        dead = (503, b"watch streams: 8 of 9 running\n")
        # kopf retries the refused list for about a minute (its error backoffs), then the stream ends.
        wait_for("/readyz to name the dead ConfigMap watch stream",
                 lambda: http_get(operator.http_port, "/readyz") == dead, 150)  # fmt: skip
        # Liveness waits out the start-up grace (a slow start is not a dead stream), then fails too.
        wait_for("/healthz to name it", lambda: http_get(operator.http_port, "/healthz") == dead,
                 WATCH_START_GRACE_SECONDS + 30)  # fmt: skip
        assert operator.alive(), "the process keeps running: only the probe can restart it"
    finally:
        operator.terminate()
