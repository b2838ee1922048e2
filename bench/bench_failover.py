"""Leader failover of `callplatform run --leader-elect`, measured on the local control plane.

Two operator processes share one Lease. Each round kills the leader, either without a clean exit
(SIGKILL: the standby waits for the Lease to expire) or cleanly (SIGTERM: the leader releases it),
and times how long until the Lease names the standby. Prints the figures next to the bound
docs/production-guide.md gives (lease duration + retry period), in one run.

    .venv/bin/python bench/bench_failover.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "controlplane"))

import localcluster  # noqa: E402

LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 6, 4, 1
NAMESPACE = "failover-bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(cluster: localcluster.LocalCluster, identity: str, logs: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env["KUBECONFIG"] = str(cluster.kubeconfig)
    args = [
        str(Path(sys.executable).parent / "callplatform"), "run", "--all-namespaces", "--standalone",
        "--http-host", "127.0.0.1", "--http-port", str(free_port()),
        "--leader-elect", f"--lease-namespace={NAMESPACE}", f"--identity={identity}",
        f"--lease-duration-seconds={LEASE_DURATION}", f"--renew-deadline-seconds={RENEW_DEADLINE}",
        f"--retry-period-seconds={RETRY_PERIOD}",
    ]  # fmt: skip
    log = (logs / f"{identity}.log").open("wb")
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def holder(cluster: localcluster.LocalCluster) -> str:
    result = cluster.kubectl(
        "get", "lease", "callplatform-operator", "-n", NAMESPACE, "-o", "json", check=False
    )
    if result.returncode != 0:
        return ""
    return str(json.loads(result.stdout)["spec"].get("holderIdentity") or "")


def wait_holder(cluster: localcluster.LocalCluster, identity: str, timeout: float) -> float:
    started = time.monotonic()
    while holder(cluster) != identity:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{identity} did not take the Lease within {timeout}s")
        time.sleep(0.1)
    return time.monotonic() - started


def one_round(cluster: localcluster.LocalCluster, logs: Path, round_id: str, sig: signal.Signals) -> float:
    leader = start(cluster, f"{round_id}-a", logs)
    standby: subprocess.Popen[bytes] | None = None
    try:
        wait_holder(cluster, f"{round_id}-a", 60)
        standby = start(cluster, f"{round_id}-b", logs)
        time.sleep(RETRY_PERIOD * 3)  # let the standby observe the renewals
        os.killpg(leader.pid, sig)
        return wait_holder(cluster, f"{round_id}-b", LEASE_DURATION * 4)
    finally:
        for process in (leader, standby):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    cluster = localcluster.LocalCluster(f"cp-bench-failover-{os.getpid()}", localcluster.build_binaries())
    try:
        cluster.start()
        cluster.kubectl("create", "namespace", NAMESPACE)
        with tempfile.TemporaryDirectory() as tmp:
            results = {
                name: [one_round(cluster, Path(tmp), f"{name.lower()}-{i}", sig) for i in range(rounds)]
                for name, sig in (("SIGKILL", signal.SIGKILL), ("SIGTERM", signal.SIGTERM))
            }
    finally:
        cluster.stop()
    bound = LEASE_DURATION + RETRY_PERIOD
    print(
        f"lease {LEASE_DURATION}s, renew deadline {RENEW_DEADLINE}s, retry {RETRY_PERIOD}s; {rounds} rounds each"
    )
    print(f"{'leader exit':<12} {'mean s':>8} {'max s':>8} {'bound s':>8} {'max/bound':>10}")
    for name, times in results.items():
        print(
            f"{name:<12} {statistics.mean(times):8.2f} {max(times):8.2f} {bound:8.2f} {max(times) / bound:10.2f}"
        )
    kill, term = statistics.mean(results["SIGKILL"]), statistics.mean(results["SIGTERM"])
    print(f"clean exit hands over {kill / term:.1f}x faster than a killed leader is replaced")
    return 0


if __name__ == "__main__":
    sys.exit(main())
