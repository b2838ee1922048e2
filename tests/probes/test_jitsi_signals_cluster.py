"""Acceptance on the local control plane: `callplatform run` reads jicofo's and a videobridge's
/metrics from a stub on 127.0.0.1 (fixtures/jitsi/, written from Jitsi's documented metric
names, not a live Jitsi): zero operational bridges flips JitsiHealthy to False with reason
JitsiJicofoMetricsNoOperationalBridges within two probe intervals; a draining bridge sets
JitsiDegraded=True. BOSH is Debian's prosody; coturn is not under test (a closed port)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from .jitsi_stub import running_jitsi_stub
from .platforms import platform_manifest
from .servers import free_port, running_prosody

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reconciler"))
from reconciler_operator import OperatorProcess, apply, condition_is, conditions, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.prosody]

NAME = "signals"
INTERVAL_SECONDS = 3
SECRET_VALUES = {
    "TURN_USERNAME": "probeuser",
    "TURN_PASSWORD": "probe-password-0123456789",
    "JITSI_JWT_SECRET": "jwt-secret-for-the-signals-acceptance-test-0123",
    "DATABASE_URL": "postgresql://calls:Hf3Kd7Ls2QpW9xVb4Nm8@127.0.0.1:1/calls",
}


def _documents(namespace: str, stub_url: str, bosh_url: str) -> list[dict[str, Any]]:
    manifest = platform_manifest(
        name=NAME, namespace=namespace, environment="development", turn_port=free_port(),
        tls_port=free_port(), interval=INTERVAL_SECONDS,
        probes={
            "webURL": f"{stub_url}/about/health", "boshURL": bosh_url,
            "jvbHealthURL": f"{stub_url}/about/health", "jicofoHealthURL": f"{stub_url}/about/health",
        },
    )  # fmt: skip
    manifest["spec"]["jitsi"]["metrics"] = {
        "jicofo": f"{stub_url}/jicofo/metrics",
        "jvb": [f"{stub_url}/jvb/metrics"],
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "calls-secrets", "namespace": namespace},
        "stringData": SECRET_VALUES,
    }
    return [secret, manifest]


def test_jitsi_signals_reach_the_conditions(
    kube_cluster: Any, crd_installed: str, namespace: str, tmp_path: Path
) -> None:
    http_port = free_port()
    operator = OperatorProcess(
        kube_cluster.kubeconfig, tmp_path / "operator.log", "--namespace", namespace, "--standalone",
        "--http-port", str(http_port),
    )  # fmt: skip

    def condition(kind: str, status: str, reason: str = "") -> bool:
        return condition_is(kube_cluster, namespace, NAME, kind, status, reason)

    try:
        with running_jitsi_stub() as stub, running_prosody(tmp_path / "prosody") as prosody:
            apply(kube_cluster, namespace, *_documents(namespace, stub.base_url, prosody.bosh_url))
            wait_for(lambda: condition("JitsiHealthy", "True"), "JitsiHealthy=True", 180, operator)
            wait_for(
                lambda: condition("JitsiDegraded", "False", "JitsiBridgesNominal"),
                "JitsiDegraded=False",
                30,
                operator,
            )

            stub.serve("/jicofo/metrics", "jicofo-no-bridges.prom")
            changed = time.monotonic()
            reason = "JitsiJicofoMetricsNoOperationalBridges"
            wait_for(lambda: condition("JitsiHealthy", "False", reason), reason, 60, operator)
            elapsed = time.monotonic() - changed
            assert elapsed <= 2 * INTERVAL_SECONDS * 1.1 + 2, f"took {elapsed:.1f}s"
            state = conditions(kube_cluster, namespace, NAME)
            assert "0 operational bridge(s) of 1" in state["JitsiHealthy"]["message"]
            assert state["Ready"]["status"] == "False"

            stub.serve("/jvb/metrics", "jvb-draining.prom")
            wait_for(
                lambda: condition("JitsiDegraded", "True", "JitsiBridgeDraining"),
                "JitsiDegraded=True",
                60,
                operator,
            )
            assert "drain_mode" in conditions(kube_cluster, namespace, NAME)["JitsiDegraded"]["message"]

            exposition = httpx.get(f"http://127.0.0.1:{http_port}/metrics", timeout=5).text
            labels = f'component="jicofo",namespace="{namespace}",platform="{NAME}"'
            assert f"callplatform_jitsi_bridges_operational{{{labels}}} 0.0" in exposition
            assert "jvb-0" not in exposition  # jicofo's per-bridge label never becomes ours
        log = operator.log()
        assert SECRET_VALUES["JITSI_JWT_SECRET"] not in log and SECRET_VALUES["TURN_PASSWORD"] not in log
    finally:
        operator.stop()
