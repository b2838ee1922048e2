"""A `status.turnConfigChecksum` written by an older operator does not survive the CRD upgrade.

The CRD no longer names the field, so the API server prunes it: the hash of turnserver.conf
(which allows offline guessing of the TURN secret) stops being served.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from reconciler_platforms import platform_manifest

pytestmark = pytest.mark.cluster

CRD_FILE = Path(__file__).resolve().parents[2] / "crds" / "callplatform.io_callplatforms.yaml"


def _crd_with_old_status_field() -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load(CRD_FILE.read_text(encoding="utf-8"))
    for version in crd["spec"]["versions"]:
        status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert "turnConfigChecksum" not in status["properties"]
        status["properties"]["turnConfigChecksum"] = {"type": "string"}
    return crd


def _status(cluster: Any, namespace: str) -> dict[str, Any]:
    live = json.loads(cluster.kubectl("-n", namespace, "get", "callplatform", "calls", "-o", "json").stdout)
    status: dict[str, Any] = live.get("status") or {}
    return status


def test_an_old_status_checksum_is_pruned_once_the_crd_no_longer_names_it(
    kube_cluster: Any, crd_installed: str, namespace: str
) -> None:
    old_hash = "a" * 64
    try:
        kube_cluster.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            "-",
            input=json.dumps(_crd_with_old_status_field()),
        )
        kube_cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(platform_manifest()))
        patch = json.dumps({"status": {"turnConfigChecksum": old_hash, "migrationJob": "calls-migrate-x"}})
        kube_cluster.kubectl(
            "-n",
            namespace,
            "patch",
            "callplatform",
            "calls",
            "--subresource=status",
            "--type=merge",
            "-p",
            patch,
        )
        assert _status(kube_cluster, namespace)["turnConfigChecksum"] == old_hash
    finally:
        kube_cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    # Served without it once the API server has the new schema (pruned on read, no write needed);
    # the CRD update reaches the serving handler asynchronously, so poll for it with a deadline.
    deadline = time.monotonic() + 30
    while "turnConfigChecksum" in _status(kube_cluster, namespace):
        assert time.monotonic() < deadline, "status.turnConfigChecksum still served 30s after the CRD upgrade"
        time.sleep(0.2)
    patch = json.dumps({"status": {"migrationJob": "calls-migrate-y"}})
    kube_cluster.kubectl(
        "-n", namespace, "patch", "callplatform", "calls", "--subresource=status", "--type=merge", "-p", patch
    )
    status = _status(kube_cluster, namespace)
    assert "turnConfigChecksum" not in status and old_hash not in json.dumps(status)
