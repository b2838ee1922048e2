"""Acceptance on the local control plane: `callplatform run` probes a real coturn and sets
CoturnHealthy; stopping coturn flips it within two probe intervals, starting it recovers."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .platforms import platform_manifest
from .servers import STATIC_PASSWORD, STATIC_USER, free_port, make_self_signed, running_coturn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reconciler"))
from reconciler_operator import OperatorProcess, condition_is, conditions, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.coturn]

NAME = "probed"
INTERVAL_SECONDS = 3
TURN_NAME = "turn.probe.test"


def _documents(namespace: str, turn_port: int, tls_port: int) -> list[dict[str, Any]]:
    closed = f"http://127.0.0.1:{free_port()}"  # Jitsi is not under test here; keep it on loopback
    manifest = platform_manifest(
        name=NAME, namespace=namespace, environment="development", turn_name=TURN_NAME,
        turn_port=turn_port, tls_port=tls_port, interval=INTERVAL_SECONDS,
        probes={key: f"{closed}/{key}" for key in ("webURL", "boshURL", "jvbHealthURL", "jicofoHealthURL")},
    )  # fmt: skip
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "calls-secrets", "namespace": namespace},
        "stringData": {
            "TURN_USERNAME": STATIC_USER,
            "TURN_PASSWORD": STATIC_PASSWORD,
            "JITSI_JWT_SECRET": "jwt-secret-for-the-health-acceptance-test-0123",
            "DATABASE_URL": "postgresql://calls:Hf3Kd7Ls2QpW9xVb4Nm8@127.0.0.1:1/calls",
        },
    }
    return [secret, manifest]


def test_coturn_health_follows_a_real_coturn(
    kube_cluster: Any, crd_installed: str, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls_files = make_self_signed(tmp_path / "tls", name=TURN_NAME)
    monkeypatch.setenv(
        "CALLPLATFORM_PROBE_CA_FILE", str(tls_files.cert)
    )  # how an operator trusts a private CA
    ports = (free_port(), free_port(), free_port())
    http_port = free_port()
    health_url = f"http://127.0.0.1:{http_port}/api/calls/health/coturn"
    operator = OperatorProcess(
        kube_cluster.kubeconfig, tmp_path / "operator.log", "--namespace", namespace, "--standalone",
        "--http-port", str(http_port),
    )  # fmt: skip

    def coturn_condition(status: str) -> bool:
        return condition_is(kube_cluster, namespace, NAME, "CoturnHealthy", status)

    try:
        # loopback_peers: the relay probe's two allocations on 127.0.0.1 must reach each other.
        with running_coturn(tmp_path / "coturn-1", "static", ports=ports, tls=tls_files, loopback_peers=True):
            kube_cluster.kubectl(
                "apply",
                "-n",
                namespace,
                "-f",
                "-",
                input=yaml.safe_dump_all(_documents(namespace, *ports[:2])),
            )
            wait_for(lambda: coturn_condition("True"), "CoturnHealthy=True", 180, operator)
            # The test coturn has no deny list and allows loopback: the ACL probe catches 127.0.0.1 and 10.0.0.1.
            wait_for(
                lambda: condition_is(kube_cluster, namespace, NAME, "CoturnSecure", "False"),
                "CoturnSecure=False",
                60,
                operator,
            )
            secure = conditions(kube_cluster, namespace, NAME)["CoturnSecure"]
            assert secure["reason"] == "TurnAclInternalPeerAllowed", secure
            assert "10.0.0.1" in secure["message"] and "169.254.169.254" in secure["message"], secure
            response = httpx.get(health_url, params={"namespace": namespace, "name": NAME}, timeout=5)
            assert response.status_code == 200, response.text
            platform_health = response.json()["platforms"][0]
            assert platform_health["reason"] == "ProbesSucceeded"
            (relay,) = [p for p in platform_health["probes"] if p["probe"] == "relay"]
            assert relay["success"] and relay["facts"]["loss_ratio"] == 0.0, relay
            assert (platform_health["acl"]["healthy"], platform_health["acl"]["reason"]) == (
                False,
                "TurnAclInternalPeerAllowed",
            )
        stopped = time.monotonic()
        wait_for(lambda: coturn_condition("False"), "CoturnHealthy=False", 60, operator)
        elapsed = time.monotonic() - stopped
        assert elapsed <= 2 * INTERVAL_SECONDS * 1.1 + 2, f"took {elapsed:.1f}s"
        condition = conditions(kube_cluster, namespace, NAME)["CoturnHealthy"]
        assert condition["reason"] in ("TurnUdpRefused", "TurnUdpTimeout"), condition
        assert STATIC_PASSWORD not in str(condition)
        response = httpx.get(health_url, timeout=5)
        assert response.status_code == 503
        assert STATIC_PASSWORD not in response.text
        with running_coturn(tmp_path / "coturn-2", "static", ports=ports, tls=tls_files, loopback_peers=True):
            wait_for(lambda: coturn_condition("True"), "CoturnHealthy=True again", 60, operator)
            assert httpx.get(health_url, params={"namespace": namespace}, timeout=5).status_code == 200
        assert STATIC_PASSWORD not in operator.log()
    finally:
        operator.stop()
