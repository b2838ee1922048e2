"""How long rendering /metrics takes with 500 platforms' series, side by side with 50 and 1000.

Every platform gets the series a fully monitored platform has: reconciles, 7
conditions, findings, a migration, 9 probes (success, duration histogram, a
failure reason, last success, certificate expiry on the TLS probes) and the call
metrics. The scrape cost is `generate_latest` on the default registry, which is
what prometheus-client's own handlers serve, side by side with
`callplatform.exposition.render_latest`, which the operator's /metrics serves.

    .venv/bin/python bench/bench_scrape.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import REGISTRY, generate_latest

from callplatform import metrics
from callplatform.exposition import render_latest
from callplatform.findings import Finding, Severity

PROBES = {"jitsi": ("web", "bosh", "jvb", "jicofo", "jwt"), "coturn": ("udp", "tcp", "tls", "allocate")}
CONDITIONS = (
    "Ready",
    "SecretsValid",
    "TurnConfigured",
    "MigrationsComplete",
    "DeploymentAvailable",
    "JitsiHealthy",
    "CoturnHealthy",
)


@dataclass(frozen=True)
class Result:
    component: str
    probe: str
    success: bool
    reason: str
    duration_seconds: float
    cert_not_after: float | None


def populate(count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        ns, name = f"team-{i % 40}", f"platform-{i}"
        metrics.record_reconcile(ns, name, "success", 0.2)
        metrics.record_reconcile(ns, name, "error", 0.5)
        metrics.set_platform_conditions(ns, name, dict.fromkeys(CONDITIONS, "True"))
        metrics.set_findings(ns, name, [Finding("CP007", Severity.WARNING, "o", "f", "m")])
        metrics.record_migration(ns, name, "succeeded")
        for component, probes in PROBES.items():
            for probe in probes:
                tls = probe in ("web", "tls")
                metrics.record_probe(ns, name, Result(component, probe, True, "", 0.05, 2e9 if tls else None))
                metrics.record_probe(ns, name, Result(component, probe, False, "timeout", 5.0, None))
        labels = (ns, name)
        metrics.CALLS_ACTIVE.labels(*labels).set(12)
        metrics.CALL_PARTICIPANTS_ACTIVE.labels(*labels).set(40)
        metrics.CALLS_STARTED.labels(*labels).inc(100)
        metrics.CALLS_ENDED.labels(*labels).inc(88)
        metrics.CALL_DURATION.labels(*labels).observe(1800)
        metrics.CALLS_DATABASE_UP.labels(*labels).set(1)
        metrics.CALLS_DATABASE_LAST_SUCCESS.labels(*labels).set_to_current_time()
        metrics.CALLS_COLLECTION_DURATION.labels(*labels).set(0.01)


def forget(count: int, start: int) -> None:
    for i in range(start, start + count):
        metrics.forget_platform(f"team-{i % 40}", f"platform-{i}")


def measure(render: Callable[[], bytes], runs: int) -> tuple[float, float, int, int]:
    """Median and p90 render time in ms, exposition bytes, sample lines."""
    timings = []
    body = b""
    for _ in range(runs):
        began = time.perf_counter()
        body = render()
        timings.append((time.perf_counter() - began) * 1000)
    timings.sort()
    lines = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    return statistics.median(timings), timings[max(int(len(timings) * 0.9) - 1, 0)], len(body), lines


def reference() -> bytes:
    return generate_latest(REGISTRY)


def main() -> None:
    print(
        f"{'platforms':>9} {'samples':>8} {'KiB':>7} | {'generate_latest ms':>18} {'p90':>7} | {'render_latest ms':>16} {'p90':>7} | {'speed-up':>8}"
    )
    populated = 0
    for platforms, runs in ((50, 15), (500, 9), (1000, 5)):
        populate(platforms - populated, start=populated)
        populated = platforms
        # Interleave the two renderers so machine load hits both alike.
        slow_runs, fast_runs = [], []
        for _ in range(runs):
            slow_runs.append(measure(reference, 1))
            fast_runs.append(measure(render_latest, 1))
        slow = statistics.median(r[0] for r in slow_runs), max(r[0] for r in slow_runs)
        fast = statistics.median(r[0] for r in fast_runs), max(r[0] for r in fast_runs)
        size, lines = fast_runs[0][2], fast_runs[0][3]
        print(
            f"{platforms:>9} {lines:>8} {size / 1024:>7.0f} | {slow[0]:>18.1f} {slow[1]:>7.1f} |"
            f" {fast[0]:>16.1f} {fast[1]:>7.1f} | {slow[0] / fast[0]:>7.1f}x"
        )
    forget(500, start=500)
    after = measure(render_latest, 9)
    print(f"\nafter forgetting 500 of 1000 platforms: {after[3]} samples, render_latest {after[0]:.1f} ms")
    print("(p90 column: slowest run; load from other processes on the machine shows up there)")


if __name__ == "__main__":
    main()
