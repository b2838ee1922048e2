"""While the operator is stopped (SIGSTOP), kube-apiserver restarts and then a Secret and the Service the
operator owns are deleted: kopf's watches cannot resume (410 Gone) and list again, with no DELETED
event for them. The watch-fed cache must hear kopf's watches restart and list again itself, and the
platform must get a pass for what that listing found gone, which recreates both; no resync may do it
(--resync-seconds 3600). On a cluster of its own, so no other test sees the restart.

The deleted Secret is the ICE servers Secret: the platform's other labelled Secrets come back in
kopf's listing. The Service is the only managed one in the namespace (and the namespace has no other
Service): kopf's listing of Services is empty, with no event at all to notice the deletion by.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaos_fleet import V1, fleet_manifest, kubectl_json
from reconciler_operator import OPERATOR_USER_AGENTS, OperatorProcess, condition_is, wait_for
from reconciler_platforms import STRONG_SECRETS

import localcluster
from callplatform.cache import RELIST_AFTER_SECONDS

pytestmark = pytest.mark.cluster

NAME = "p0"
DELETED = f"{NAME}-ice-servers"
SERVICE = f"{NAME}-calls"  # the namespace's only Service
MANAGED = f"app.kubernetes.io/managed-by=callplatform-operator,app.kubernetes.io/instance={NAME}"
RELISTED = "v1 {kind} in {namespace}: kopf's watch restarts and lists again: reading through until re-listed"
RECREATE_SECONDS = 60
CRD = Path(__file__).resolve().parents[2] / "crds" / "callplatform.io_callplatforms.yaml"


@pytest.fixture(scope="module")
def gone_cluster() -> Iterator[localcluster.LocalCluster]:
    with localcluster.cluster_of_its_own(f"cp-test-{os.getpid()}-gone", crd=CRD) as cluster:
        yield cluster


def _managed_secrets(cluster: localcluster.LocalCluster, ns: str) -> dict[str, str]:
    """The platform's labelled Secrets: name to uid."""
    items = kubectl_json(cluster, "secrets", "-n", ns, "-l", MANAGED).get("items", [])
    return {item["metadata"]["name"]: item["metadata"]["uid"] for item in items}


def _services(cluster: localcluster.LocalCluster, ns: str) -> dict[str, str]:
    """Every Service of the namespace, labelled or not: name to uid."""
    items = kubectl_json(cluster, "services", "-n", ns).get("items", [])
    return {item["metadata"]["name"]: item["metadata"]["uid"] for item in items}


def test_a_secret_and_the_only_service_deleted_while_the_watch_was_gone_are_recreated_without_a_resync(
    gone_cluster: localcluster.LocalCluster, tmp_path: Path
) -> None:
    cluster = gone_cluster
    ns = cluster.create_namespace("gone")
    audit = localcluster.AuditLog(cluster.audit_log)
    operator = OperatorProcess(
        cluster.kubeconfig, tmp_path / "operator.log",
        "--namespace", ns, "--resync-seconds", "3600", "--standalone",
    )  # fmt: skip
    started = time.monotonic()
    try:
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=fleet_manifest([NAME], V1))
        wait_for(lambda: condition_is(cluster, ns, NAME, "Ready", "True"), "Ready", 180, operator)
        before = wait_for(lambda: _managed_secrets(cluster, ns), "the platform's Secrets", 30, operator)
        assert DELETED in before and len(before) >= 2, before
        services = _services(cluster, ns)
        assert list(services) == [SERVICE], services  # kopf's re-listing of Services will be empty
        # The schedule under test, not readiness: a listing of kopf's within RELIST_AFTER_SECONDS of
        # the cache's own is taken for kopf's first one, so the fault comes after that window.
        wait_for(lambda: time.monotonic() - started > RELIST_AFTER_SECONDS + 2, "the first-listing window",
                 RELIST_AFTER_SECONDS + 10, operator)  # fmt: skip
        resyncs = operator.log().count("resync: queued")
        assert operator.process is not None
        start = audit.position()

        os.kill(operator.process.pid, signal.SIGSTOP)
        try:
            # The restart first: a deletion on the old server could already sit, as a DELETED event,
            # in the stopped operator's socket. The new server's watch cache starts after kopf's
            # resourceVersion, so kopf's resumed watch is answered 410 Gone and kopf lists again.
            cluster.restart_component("kube-apiserver")
            cluster.wait_serving(120)
            cluster.kubectl("delete", "secret", DELETED, "-n", ns, "--wait=true")
            cluster.kubectl("delete", "service", SERVICE, "-n", ns, "--wait=true")
        finally:
            os.kill(operator.process.pid, signal.SIGCONT)
        resumed = time.monotonic()

        recreated = wait_for(
            lambda: (uid := _managed_secrets(cluster, ns).get(DELETED)) and uid != before[DELETED] and uid,
            f"{DELETED} recreated", RECREATE_SECONDS, operator,
        )  # fmt: skip
        service = wait_for(
            lambda: (uid := _services(cluster, ns).get(SERVICE)) and uid != services[SERVICE] and uid,
            f"{SERVICE} recreated", RECREATE_SECONDS, operator,
        )  # fmt: skip
        took = time.monotonic() - resumed
        log_text = operator.log()
        for kind in ("Secret", "Service"):
            assert RELISTED.format(kind=kind, namespace=ns) in log_text, log_text[-4000:]
        assert log_text.count("resync: queued") == resyncs, "a resync ran: it could have repaired it"
        creates = [
            record
            for record in audit.records(start=start)
            if record.user_agent.startswith(OPERATOR_USER_AGENTS) and record.namespace == ns
            and record.resource in ("secrets", "services") and record.verb in ("create", "patch")
            and record.code == 201
        ]  # fmt: skip
        # Once each, and nothing else.
        assert sorted((record.resource, record.name) for record in creates) == [
            ("secrets", DELETED), ("services", SERVICE)], creates  # fmt: skip
        assert _managed_secrets(cluster, ns) == {**before, DELETED: recreated}
        assert _services(cluster, ns) == {SERVICE: service}
        assert condition_is(cluster, ns, NAME, "Ready", "True")
        assert operator.alive() and "Traceback" not in log_text
        # The TURN username ("calls") is a word the log has anyway, not a secret.
        assert not [key for key, value in STRONG_SECRETS.items() if value != "calls" and value in log_text]
        print(
            f"relist: {DELETED} and {SERVICE} deleted during a watch gap recreated {took:.1f}s after the operator"
            " resumed"
        )
    finally:
        operator.stop()
