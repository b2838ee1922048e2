"""bench/bench_fleet.py at N=2 on the session cluster, so the bench's measuring code cannot rot.

It checks that each figure is measured (not that it meets the goals, which is the bench's job at
fleet size), plus the one goal that already holds at any size: an idle resync writes nothing.
"""

from __future__ import annotations

import math
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import bench_fleet

pytestmark = pytest.mark.cluster

COUNT = 2
TIMEOUT = 300  # generous: the machine is shared, and this checks the bench's code, not its speed


@pytest.mark.timeout(900)
def test_fleet_bench_measures_every_figure_at_two_platforms(
    kube_cluster: Any, crd_installed: str, tmp_path: Path
) -> None:
    manifest = bench_fleet.write_manifest(tmp_path, COUNT)
    namespaces = {side: f"fleet-{side}-{uuid.uuid4().hex[:6]}" for side in ("floor", "operator")}
    for ns in namespaces.values():
        kube_cluster.kubectl("create", "namespace", ns)
        kube_cluster.wait_for_default_service_account(ns)
    try:
        floor = bench_fleet.measure_floor(kube_cluster, namespaces["floor"], manifest, timeout=TIMEOUT)
        figures = bench_fleet.measure_operator(
            kube_cluster, namespaces["operator"], manifest, tmp_path,
            count=COUNT, resync=2, secret_samples=1, timeout=TIMEOUT, settle=2,
        )  # fmt: skip
    finally:
        for ns in namespaces.values():
            kube_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    assert 0 < floor < TIMEOUT
    assert 0 < figures.ready_seconds < TIMEOUT
    assert 0 < figures.peak_rss_mib < 1024
    assert figures.idle_passes >= COUNT, "the idle window saw a resync of every platform"
    assert not math.isnan(figures.reads_per_pass)
    assert figures.writes_per_platform_resync == 0, figures.idle_requests
    assert len(figures.secret_seconds) == 1 and 0 < figures.secret_seconds[0] < 30
