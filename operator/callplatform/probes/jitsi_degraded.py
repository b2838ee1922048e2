"""JitsiDegraded: the videobridges work but are draining, shutting down or under stress.

Derived from the `jvb_metrics*` probes of a round. It is not part of Ready: a
draining bridge is planned maintenance and a stressed one still serves calls,
but both mean less headroom, which an operator should see before users do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from callplatform.conditions import FALSE, JITSI_DEGRADED, TRUE, UNKNOWN, ConditionState
from callplatform.model import Platform
from callplatform.probes.result import HealthLookup, ProbeResult

DEGRADED_COMPONENT = "jitsi_degraded"  # its registry entry, next to "jitsi"
JVB_METRICS_PREFIX = "jvb_metrics"
REASON_DRAINING = "JitsiBridgeDraining"
REASON_STRESS = "JitsiBridgeStressHigh"
REASON_UNAVAILABLE = "JitsiJvbMetricsUnavailable"
REASON_NOMINAL = "JitsiBridgesNominal"


@dataclass(frozen=True, slots=True)
class DegradedVerdict:
    degraded: bool
    reason: str
    message: str


def is_advisory(probe: str) -> bool:
    """A videobridge's /metrics feeds JitsiDegraded only: its failure never fails JitsiHealthy."""
    return probe.startswith(JVB_METRICS_PREFIX)


def jvb_results(results: Sequence[ProbeResult]) -> list[ProbeResult]:
    return [r for r in results if r.probe.startswith(JVB_METRICS_PREFIX)]


def degraded_verdict(results: Sequence[ProbeResult]) -> DegradedVerdict | None:
    """None when no videobridge /metrics is configured (the condition is then not shown)."""
    bridges = jvb_results(results)
    if not bridges:
        return None
    for kind, reason in (("draining", REASON_DRAINING), ("stress_high", REASON_STRESS)):
        hit = [r for r in bridges if r.success and r.degraded == kind]
        if hit:
            more = f" (and {len(hit) - 1} more)" if len(hit) > 1 else ""
            return DegradedVerdict(True, reason, f"{hit[0].probe}: {hit[0].message}{more}")
    failing = [r for r in bridges if not r.success]
    if failing:
        return DegradedVerdict(False, REASON_UNAVAILABLE, f"{failing[0].probe}: {failing[0].message}")
    stress = max(r.facts.get("stress", 0.0) for r in bridges)
    return DegradedVerdict(
        False, REASON_NOMINAL, f"{len(bridges)} videobridge(s), highest stress {stress:.2f}, none draining"
    )


def degraded_state(
    platform: Platform,
    lookup: HealthLookup | None,
    previous: Mapping[str, Any] | None = None,
) -> ConditionState | None:
    """The JitsiDegraded condition (never part of Ready), or None when no videobridge /metrics is set."""
    if not platform.monitoring.enabled or not platform.jitsi.metrics.jvb_urls:
        return None
    entry = lookup(platform.namespace, platform.name, DEGRADED_COMPONENT) if lookup else None
    if entry is None:
        if previous and previous.get("reason"):  # the registry is empty after a restart
            return ConditionState(
                JITSI_DEGRADED,
                str(previous.get("status") or UNKNOWN),
                str(previous["reason"]),
                str(previous.get("message") or ""),
                gates_ready=False,
            )
        return ConditionState(
            JITSI_DEGRADED, UNKNOWN, "AwaitingFirstProbe", "The videobridges' /metrics have not been read yet.",
            gates_ready=False,
        )  # fmt: skip
    status = UNKNOWN if entry.reason == REASON_UNAVAILABLE else FALSE if entry.healthy else TRUE
    return ConditionState(JITSI_DEGRADED, status, entry.reason, entry.message, gates_ready=False)
