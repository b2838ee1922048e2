"""Scrape the real /metrics of a running `callplatform run` reconciling a platform whose call log is
in a real PostgreSQL, and parse it with prometheus-client's parser."""

from __future__ import annotations

import copy
import socket
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from callmetrics_db import CallDatabase
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "reconciler"))
from reconciler_operator import OperatorProcess, apply, wait_for  # noqa: E402

pytestmark = [pytest.mark.cluster, pytest.mark.postgres]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def closed_loopback_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def example_documents(namespace: str, database_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all((ROOT / "examples" / "production.yaml").read_text()) if doc]
    secret = copy.deepcopy(next(doc for doc in docs if doc["kind"] == "Secret"))
    platform = copy.deepcopy(next(doc for doc in docs if doc["kind"] == "CallPlatform"))
    for doc in (secret, platform):
        doc["metadata"]["namespace"] = namespace
    secret["stringData"]["DATABASE_URL"] = database_url
    spec = platform["spec"]
    closed = closed_loopback_url()  # nothing listens: the probes fail fast and stay on loopback
    spec["jitsi"]["probes"] = {
        k: f"{closed}/{k}" for k in ("webURL", "boshURL", "jvbHealthURL", "jicofoHealthURL")
    }
    closed_port = int(closed.rsplit(":", 1)[1])
    spec["turn"].update(probeHost="127.0.0.1", port=closed_port, tlsPort=closed_port)
    spec["database"]["callLog"] = {"participantsTable": "callParticipant"}
    spec["monitoring"]["probeIntervalSeconds"] = 5
    return secret, platform


def scrape(url: str) -> tuple[str, Samples]:
    body = httpx.get(url, timeout=10).text
    samples: Samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return body, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def series_of(samples: Samples, platform: str) -> list[str]:
    return sorted({name for name, labels in samples if ("platform", platform) in labels})


def test_running_operator_exports_reconcile_probe_and_call_metrics(
    kube_cluster: Any, crd_installed: str, namespace: str, call_db: CallDatabase, tmp_path: Path
) -> None:
    secret, platform = example_documents(namespace, call_db.reader_url)
    name = platform["metadata"]["name"]
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    http_port = port.getsockname()[1]
    port.close()
    operator = OperatorProcess(
        kube_cluster.kubeconfig, tmp_path / "operator.log",
        "--namespace", namespace, "--standalone", "--http-port", str(http_port),
    )  # fmt: skip
    url = f"http://127.0.0.1:{http_port}/metrics"
    try:
        apply(kube_cluster, namespace, secret, platform)
        ours = {"namespace": namespace, "platform": name}
        active = int(call_db.scalar('SELECT count(*) FROM "callLog" WHERE ended_at IS NULL'))  # type: ignore[call-overload]
        participants = int(
            call_db.scalar(  # type: ignore[call-overload]
                'SELECT count(*) FROM "callParticipant" p JOIN "callLog" c ON c.id = p.call_id '
                "WHERE c.ended_at IS NULL AND p.left_at IS NULL"
            )
        )

        def collected() -> tuple[str, Samples] | None:
            try:
                body, samples = scrape(url)
            except httpx.HTTPError:
                return None
            ready = (
                value(samples, "callplatform_calls_database_up", **ours) == 1
                and value(samples, "callplatform_probe_success", **ours, component="coturn", probe="allocate")
                is not None
                and value(samples, "callplatform_platform_condition", **ours, type="Ready", status="False")
                == 1
            )
            return (body, samples) if ready else None

        body, samples = wait_for(collected, "call, probe and condition metrics on /metrics", 120, operator)

        assert value(samples, "callplatform_calls_active", **ours) == active > 0
        assert value(samples, "callplatform_call_participants_active", **ours) == participants > 0
        assert (
            value(samples, "callplatform_platform_condition", **ours, type="SecretsValid", status="True") == 1
        )
        assert (
            value(samples, "callplatform_validation_findings", **ours, rule="CP012", severity="warning") == 1
        )
        successes = sum(
            v for (metric, labels), v in samples.items()
            if metric == "callplatform_reconciles_total" and ("platform", name) in labels and ("result", "success") in labels
        )  # fmt: skip
        assert successes >= 1
        for probe in ("web", "bosh", "jvb", "jicofo"):
            assert value(samples, "callplatform_probe_success", **ours, component="jitsi", probe=probe) == 0
        assert any(metric == "callplatform_build_info" for metric, _ in samples)
        for key in ("DATABASE_URL", "JITSI_JWT_SECRET", "TURN_PASSWORD"):  # TURN_USERNAME is no secret
            assert secret["stringData"][key] not in body
        assert call_db.reader_password not in body

        kube_cluster.kubectl("delete", "cp", name, "-n", namespace)
        wait_for(
            lambda: True if not series_of(scrape(url)[1], name) else None,
            "every series of the deleted platform to disappear",
            60,
            operator,
        )
    finally:
        operator.stop()
    assert "Traceback" not in operator.log()
