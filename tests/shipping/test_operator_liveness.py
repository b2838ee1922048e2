"""/healthz of a running `callplatform run`: ok once every kopf watch stream runs (the count it
expects is the one kopf really starts), and a dead stream never goes unnoticed.

The dead stream is real: the operator runs as a ServiceAccount that may read and write ConfigMaps
but not list or watch them, so kopf's ConfigMap watch stream fails at its first list (after kopf's
retries, about a minute). kopf 1.45 then ends the whole operator (exit 1: the pod restarts); a
stream gone without that is what `/healthz` reports (`watch streams: 8 of 9 running`).
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


def _dead_stream_noticed(operator: OperatorProcess) -> bool:
    """kopf 1.45 ends the operator when a watch stream fails (the pod restarts); should a kopf
    version keep running without the stream, /healthz must say so."""
    if not operator.alive():
        return operator.process.returncode != 0
    return http_get(operator.http_port, "/healthz") == (503, b"watch streams: 8 of 9 running\n")


def test_a_dead_watch_stream_never_goes_unnoticed(kube_cluster: Any, crd_installed: str, namespace: str,
                                                 tmp_path: Path) -> None:  # fmt: skip
    kubeconfig = _service_account_without_configmap_watch(kube_cluster, namespace, tmp_path / "sa.kubeconfig")
    operator = OperatorProcess(
        kubeconfig, tmp_path / "operator.log", "--namespace", namespace, "--standalone"
    )
    try:
        # While kopf retries the refused list (about a minute, its error backoffs), the stream counts.
        wait_for("/healthz ok", lambda: http_get(operator.http_port, "/healthz") == (200, b"ok\n"), 60)
        took = wait_for("the dead ConfigMap watch stream to be noticed", lambda: _dead_stream_noticed(operator),
                        WATCH_START_GRACE_SECONDS + 120)  # fmt: skip
        assert "Watcher for configmaps" in operator.log()
        how = "the operator exited" if not operator.alive() else "/healthz failed"
        print(f"liveness: dead watch stream noticed after {took:.0f}s: {how}")
    finally:
        operator.terminate()
