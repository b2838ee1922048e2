"""A fleet of CallPlatforms on the local control plane: the operator next to the floor, per fleet size.

For each N (one replica per platform, monitoring and call metrics off, so nothing leaves loopback),
on a fresh cluster per side with room for the fleet (KWOK nodes for every pod, a /16 Service range):

- floor: `kubectl apply --server-side` of the platforms' Secrets and of the objects
  `callplatform render` prints for them, then `kubectl wait` for the Jobs (Complete) and the
  Deployments (Available);
- operator: `callplatform run` already running, `kubectl apply --server-side` of the Secrets and
  CallPlatforms, then `kubectl wait` for every platform's Ready. Then, with the fleet idle:
  API requests per platform per resync (reads and writes, from the audit log, which records every
  request), the time a Secret change takes to reach the Deployment's pod template, and the peak RSS
  (VmHWM) of `callplatform run`.

Goals (issue 11, at N = 1000): operator ≤ 1.25x floor, peak RSS ≤ 200 MiB, 0 requests per idle
resync, Secret → pod template ≤ 2 s. The machine's load is printed with the figures: on a shared
2-core machine the absolute times move with it, the ratio less so.

    .venv/bin/python bench/bench_fleet.py                          # N = 100 (what `make bench` runs)
    .venv/bin/python bench/bench_fleet.py --sizes 100,300,1000     # about 45 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
for _path in ("tests/controlplane", "tests/reconciler", "tests/chaos"):
    sys.path.insert(0, str(ROOT / _path))

from chaos_fleet import fleet_manifest  # noqa: E402
from reconciler_operator import OPERATOR_USER_AGENTS, OperatorProcess, wait_for  # noqa: E402

import localcluster  # noqa: E402

IMAGE = "registry.example.com/calls-backend:1.4.2"
CRD = ROOT / "crds" / "callplatform.io_callplatforms.yaml"
CHECKSUM = "callplatform.io/secrets-checksum"
READS = frozenset({"get", "list"})
PASSES_METRIC = "callplatform_reconcile_duration_seconds_count"
GOAL_RATIO, GOAL_RSS_MIB, GOAL_SECRET_SECONDS = 1.25, 200.0, 2.0


class LoadSampler:
    """The 1-minute load average every few seconds, in a thread, while a phase runs."""

    def __init__(self, every: float = 5.0) -> None:
        self.samples: list[float] = []
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self._every):
                return

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        if not self.samples:
            return "-"
        return f"{statistics.mean(self.samples):.1f}/{max(self.samples):.1f}"


@dataclass
class OperatorFigures:
    ready_seconds: float
    reads_per_platform_resync: float
    writes_per_platform_resync: float
    reads_per_pass: float
    idle_passes: int
    secret_seconds: list[float]
    peak_rss_mib: float
    idle_requests: dict[str, int] = field(default_factory=dict)


def platform_names(count: int) -> list[str]:
    return [f"p{index}" for index in range(count)]


def floor_objects(manifest: Path, namespace: str) -> str:
    """The platforms' Secrets and what `callplatform render` prints for them, as one YAML stream."""
    rendered = subprocess.run(
        [str(Path(sys.executable).parent / "callplatform"), "render", "-n", namespace, str(manifest)],
        check=True, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    secrets = [doc for doc in yaml.safe_load_all(manifest.read_text()) if doc and doc["kind"] == "Secret"]
    return yaml.safe_dump_all(secrets) + "---\n" + rendered.stdout


def kubectl_wait(cluster: localcluster.LocalCluster, namespace: str, kind: str, condition: str,
                 timeout: float) -> subprocess.Popen[str]:  # fmt: skip
    return subprocess.Popen(
        [cluster.kubectl_path, "--kubeconfig", str(cluster.kubeconfig), "wait", "-n", namespace,
         f"--for=condition={condition}", kind, "--all", f"--timeout={int(timeout)}s"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def finish(waits: list[subprocess.Popen[str]], timeout: float) -> None:
    for wait in waits:
        _, stderr = wait.communicate(timeout=timeout + 60)
        if wait.returncode != 0:
            raise RuntimeError(f"kubectl wait failed: {stderr.strip()[-2000:]}")


def apply(cluster: localcluster.LocalCluster, namespace: str, documents: str, timeout: float) -> None:
    cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=documents, timeout=timeout)


def measure_floor(
    cluster: localcluster.LocalCluster, namespace: str, manifest: Path, timeout: float
) -> float:
    """Seconds from `kubectl apply --server-side` of the rendered objects to all Jobs and Deployments done."""
    documents = floor_objects(manifest, namespace)
    started = time.monotonic()
    apply(cluster, namespace, documents, timeout)
    finish(
        [kubectl_wait(cluster, namespace, "jobs", "Complete", timeout),
         kubectl_wait(cluster, namespace, "deployments", "Available", timeout)],
        timeout,
    )  # fmt: skip
    return time.monotonic() - started


def metric_total(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        text = response.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def http_port(operator: OperatorProcess) -> int:
    assert operator.process is not None
    command = [str(part) for part in operator.process.args]  # type: ignore[union-attr]
    return int(command[command.index("--http-port") + 1])


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return int(response.status) == 200
    except OSError:
        return False


def operator_requests(
    audit: localcluster.AuditLog, start: int, namespace: str, since: Any, until: Any
) -> dict[str, int]:
    """The operator's requests in the namespace and window, by verb (watches left out: they stay open)."""
    counts = audit.count(
        start=start, since=since, until=until,
        where=lambda r: r.namespace == namespace and r.user_agent.startswith(OPERATOR_USER_AGENTS)
        and r.verb != "watch",
    )  # fmt: skip
    by_verb: dict[str, int] = {}
    for (_, verb, resource), count in counts.items():
        key = f"{verb} {resource}"
        by_verb[key] = by_verb.get(key, 0) + count
    return by_verb


def secret_change_seconds(api: Any, namespace: str, name: str, round_: int, timeout: float = 120) -> float:
    """Seconds from a PATCH of the platform's Secret to the new checksum on its Deployment's pod template."""
    from kubernetes import client

    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)

    def checksum() -> str:
        deployment = apps.read_namespaced_deployment(f"{name}-calls", namespace)
        return str((deployment.spec.template.metadata.annotations or {}).get(CHECKSUM, ""))

    before = checksum()
    value = f"jwt-bench-{round_}-{os.urandom(24).hex()}"
    started = time.monotonic()
    core.patch_namespaced_secret(f"{name}-secrets", namespace, {"stringData": {"JITSI_JWT_SECRET": value}})
    while checksum() in ("", before):
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{name}: the Secret change did not reach the pod template in {timeout}s")
        time.sleep(0.05)  # the sampling rate of the measurement, bounded by the deadline above
    return time.monotonic() - started


def measure_operator(
    cluster: localcluster.LocalCluster,
    namespace: str,
    manifest: Path,
    logs: Path,
    *,
    count: int,
    resync: float,
    secret_samples: int,
    timeout: float,
    settle: float | None = None,
) -> OperatorFigures:
    from kubernetes import config

    operator = OperatorProcess(
        cluster.kubeconfig, logs / f"operator-{namespace}.log",
        "--namespace", namespace, "--standalone", "--resync-seconds", str(resync),
    )  # fmt: skip
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        port = http_port(operator)
        wait_for(lambda: healthy(port), "the operator's /healthz", 120, operator)
        started = time.monotonic()
        apply(cluster, namespace, manifest.read_text(), timeout)
        finish([kubectl_wait(cluster, namespace, "callplatforms", "Ready", timeout)], timeout)
        ready = time.monotonic() - started

        # The rollout's last rechecks pass within a resync period; then one idle window of two.
        time.sleep(max(resync, 15.0) if settle is None else settle)  # the schedule, not a readiness wait
        audit = localcluster.AuditLog(cluster.audit_log)
        start, since, passes_before = (
            audit.position(),
            localcluster.utc_now(),
            metric_total(port, PASSES_METRIC),
        )
        window = 2 * resync
        time.sleep(window)  # the idle window being measured
        until, passes = localcluster.utc_now(), metric_total(port, PASSES_METRIC) - passes_before
        requests = operator_requests(audit, start, namespace, since, until)
        reads = sum(n for key, n in requests.items() if key.split()[0] in READS)
        writes = sum(n for key, n in requests.items() if key.split()[0] in localcluster.WRITE_VERBS)
        resyncs = window / resync

        names = platform_names(count)
        picks = [names[(index * count) // secret_samples] for index in range(secret_samples)]
        latencies = [secret_change_seconds(api, namespace, name, i) for i, name in enumerate(picks)]
        assert operator.process is not None
        return OperatorFigures(
            ready_seconds=ready,
            reads_per_platform_resync=reads / (count * resyncs),
            writes_per_platform_resync=writes / (count * resyncs),
            reads_per_pass=reads / passes if passes else float("nan"),
            idle_passes=int(passes),
            secret_seconds=latencies,
            peak_rss_mib=peak_rss_mib(operator.process.pid),
            idle_requests=requests,
        )
    finally:
        api.close()
        operator.stop()


@contextmanager
def fleet_cluster(label: str, pods: int, bin_dir: Path) -> Iterator[localcluster.LocalCluster]:
    cluster = localcluster.LocalCluster(
        f"cp-bench-fleet-{os.getpid()}-{label}", bin_dir, nodes=localcluster.LocalCluster.nodes_for_pods(pods)
    )
    try:
        cluster.start()
        cluster.kubectl("apply", "--server-side", "-f", str(CRD))
        cluster.kubectl("wait", "--for=condition=Established", "crd/callplatforms.callplatform.io",
                        "--timeout=60s")  # fmt: skip
        cluster.kubectl("create", "namespace", "fleet")
        cluster.wait_for_default_service_account("fleet")
        yield cluster
    finally:
        cluster.stop()


def write_manifest(directory: Path, count: int) -> Path:
    path = directory / f"fleet-{count}.yaml"
    path.write_text(fleet_manifest(platform_names(count), IMAGE))
    return path


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"loadavg {one:.2f} {five:.2f} {fifteen:.2f}, nproc {os.cpu_count()}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100", help="comma-separated fleet sizes (default 100)")
    parser.add_argument(
        "--resync-seconds", type=float, default=60.0, help="the operator's resync (default 60)"
    )
    parser.add_argument("--secret-samples", type=int, default=3, help="Secret changes timed per size")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    bin_dir = localcluster.build_binaries()
    localcluster.reap_stale_clusters(bin_dir)
    print(f"bench_fleet: sizes {sizes}, resync {args.resync_seconds:.0f}s; {load_line()}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in sizes:
            manifest = write_manifest(Path(tmp), count)
            timeout = 600 + 3 * count
            pods = 2 * count + 20  # a Deployment pod and a (completed) migration pod per platform
            with LoadSampler() as floor_load, fleet_cluster(f"floor-{count}", pods, bin_dir) as cluster:
                floor = measure_floor(cluster, "fleet", manifest, timeout)
            print(f"  N={count}: floor {floor:.1f}s (load {floor_load.summary()})", flush=True)
            with LoadSampler() as operator_load, fleet_cluster(f"operator-{count}", pods, bin_dir) as cluster:
                figures = measure_operator(
                    cluster, "fleet", manifest, Path(tmp), count=count, resync=args.resync_seconds,
                    secret_samples=args.secret_samples, timeout=timeout,
                )  # fmt: skip
            print(f"  N={count}: operator {figures.ready_seconds:.1f}s (load {operator_load.summary()}); "
                  f"idle requests {json.dumps(figures.idle_requests)} in {figures.idle_passes} passes",
                  flush=True)  # fmt: skip
            rows.append((count, floor, figures, floor_load.summary(), operator_load.summary()))
    print()
    print(f"{'N':>5} {'floor s':>8} {'operator s':>10} {'ratio':>6} {'peak RSS MiB':>12} "
          f"{'reads/pf/resync':>15} {'writes/pf/resync':>16} {'reads/pass':>10} "
          f"{'Secret->template s (max)':>24} {'load floor':>10} {'load op':>8}")  # fmt: skip
    for count, floor, figures, floor_load_text, operator_load_text in rows:
        secret = f"{statistics.median(figures.secret_seconds):.2f} ({max(figures.secret_seconds):.2f})"
        print(f"{count:>5} {floor:>8.1f} {figures.ready_seconds:>10.1f} {figures.ready_seconds / floor:>6.2f} "
              f"{figures.peak_rss_mib:>12.0f} {figures.reads_per_platform_resync:>15.2f} "
              f"{figures.writes_per_platform_resync:>16.2f} {figures.reads_per_pass:>10.2f} {secret:>24} "
              f"{floor_load_text:>10} {operator_load_text:>8}")  # fmt: skip
    print(f"goals at N=1000: ratio <= {GOAL_RATIO}, peak RSS <= {GOAL_RSS_MIB:.0f} MiB, 0 requests per idle "
          f"resync, Secret->template <= {GOAL_SECRET_SECONDS:.0f} s; load = 1-min loadavg mean/max during "
          f"each side; {load_line()}")  # fmt: skip
    for count, floor, figures, *_ in rows:
        if count >= 1000:
            verdicts = {
                "ratio": figures.ready_seconds / floor <= GOAL_RATIO,
                "rss": figures.peak_rss_mib <= GOAL_RSS_MIB,
                "idle requests": figures.reads_per_platform_resync + figures.writes_per_platform_resync == 0,
                "secret": max(figures.secret_seconds) <= GOAL_SECRET_SECONDS,
            }
            print(
                f"N={count}: " + ", ".join(f"{k} {'met' if ok else 'NOT met'}" for k, ok in verdicts.items())
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
