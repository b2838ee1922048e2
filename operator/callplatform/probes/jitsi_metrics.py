"""Facts from Jitsi's own Prometheus endpoints: jicofo's and the videobridges' `/metrics`.

Pure functions: exposition text in, numbers and verdicts out. Parsing is
prometheus-client's text parser; only unlabelled gauges are read, so nothing
from a per-bridge or per-room label can reach a condition or a metric label.
Metric names are the ones jicofo (namespace `jitsi_jicofo`) and
jitsi-videobridge (namespace `jitsi_jvb`) register.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

DEFAULT_STRESS_THRESHOLD = 0.8

# fact -> metric name. The first entry of each table is required.
JICOFO_METRICS: Mapping[str, str] = {
    "bridges_operational": "jitsi_jicofo_bridge_selector_bridge_count_operational",
    "bridges": "jitsi_jicofo_bridge_selector_bridge_count",
    "bridges_in_shutdown": "jitsi_jicofo_bridge_selector_bridge_count_in_shutdown",
    "conferences": "jitsi_jicofo_conferences",
    "participants": "jitsi_jicofo_participants_current",
}
JVB_METRICS: Mapping[str, str] = {
    "stress": "jitsi_jvb_stress",
    "drain_mode": "jitsi_jvb_drain_mode",
    "graceful_shutdown": "jitsi_jvb_graceful_shutdown",
    "shutting_down": "jitsi_jvb_shutting_down",
    "conferences": "jitsi_jvb_conferences",
    "participants": "jitsi_jvb_local_endpoints",
}
METRICS_BY_SOURCE: Mapping[str, Mapping[str, str]] = {"jicofo": JICOFO_METRICS, "jvb": JVB_METRICS}


class MetricsError(ValueError):
    """The text is not Prometheus exposition, or lacks the metric a verdict needs."""


def read_facts(text: str, metrics: Mapping[str, str]) -> dict[str, float]:
    """The unlabelled value of each metric in `metrics` that the text has, by fact name."""
    by_metric = {metric: fact for fact, metric in metrics.items()}
    facts: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                fact = by_metric.get(sample.name)
                if fact is not None and not sample.labels and fact not in facts:
                    facts[fact] = float(sample.value)
    except (ValueError, TypeError, IndexError) as exc:
        raise MetricsError(f"not Prometheus text exposition ({type(exc).__name__})") from None
    required_fact, required_metric = next(iter(metrics.items()))
    if required_fact not in facts:
        raise MetricsError(f"no {required_metric} in the exposition")
    return facts


@dataclass(frozen=True, slots=True)
class Reading:
    """What one /metrics answer says. `problem` fails JitsiHealthy; `degraded` sets JitsiDegraded."""

    facts: dict[str, float]
    summary: str
    problem: str = ""  # a bounded reason (probes/result.py REASONS), or ""
    degraded: str = ""  # "draining" or "stress_high", or ""


def _count(facts: Mapping[str, float], fact: str) -> str:
    return f"{facts[fact]:g}" if fact in facts else "?"


def jicofo_reading(facts: dict[str, float]) -> Reading:
    operational = facts["bridges_operational"]
    summary = (
        f"jicofo sees {operational:g} operational bridge(s) of {_count(facts, 'bridges')}, "
        f"{_count(facts, 'bridges_in_shutdown')} in graceful shutdown"
    )
    if operational <= 0:
        return Reading(
            facts,
            f"{summary}: new conferences cannot be allocated a videobridge "
            "(jitsi_jicofo_bridge_selector_bridge_count_operational is 0)",
            problem="no_operational_bridges",
        )
    return Reading(facts, summary)


def jvb_reading(facts: dict[str, float], stress_threshold: float) -> Reading:
    stress = facts["stress"]
    summary = (
        f"videobridge stress {stress:.2f}, {_count(facts, 'conferences')} conference(s), "
        f"{_count(facts, 'participants')} local endpoint(s)"
    )
    modes = [mode for mode in ("drain_mode", "graceful_shutdown", "shutting_down") if facts.get(mode, 0) > 0]
    if modes:
        return Reading(
            facts,
            f"{summary}; the bridge is in {', '.join(modes)} and takes no new conferences",
            degraded="draining",
        )
    if stress > stress_threshold:
        return Reading(
            facts,
            f"{summary}; stress is above spec.jitsi.metrics.stressThreshold ({stress_threshold:g})",
            degraded="stress_high",
        )
    return Reading(facts, summary)


def read(source: str, text: str, *, stress_threshold: float = DEFAULT_STRESS_THRESHOLD) -> Reading:
    """`source` is "jicofo" or "jvb". Raises MetricsError."""
    facts = read_facts(text, METRICS_BY_SOURCE[source])
    if source == "jicofo":
        return jicofo_reading(facts)
    return jvb_reading(facts, stress_threshold)
