"""The README's first command: `make demo` brings the example platform to Ready and cleans up on Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import localcluster

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.cluster, pytest.mark.coturn, pytest.mark.postgres, pytest.mark.prosody]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_reaches_ready_and_cleans_up_on_ctrl_c(
    kube_cluster: localcluster.LocalCluster, tmp_path: Path
) -> None:
    """Runs beside the session's cluster (whose build it reuses) with a cluster of its own."""
    name = f"{kube_cluster.name}-demo"
    env = dict(os.environ, DEMO_CLUSTER_NAME=name, DEMO_HTTP_PORT=str(free_port()))
    output = tmp_path / "demo.out"
    with output.open("wb") as out:
        demo = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "demo.py")],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
    try:
        deadline = time.monotonic() + 240
        while "[demo] running; press Ctrl-C" not in output.read_text():
            assert demo.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.5)
        text = output.read_text()
        assert "CallPlatform production is Ready" in text, text
        assert "production   production    True    True    True" in text, text
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=120) == 0, output.read_text()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
            localcluster.LocalCluster(name, kube_cluster.bin_dir).stop()
    assert not (localcluster.CLUSTERS / name).exists()
    assert "Traceback" not in output.read_text()
