"""Every metric the operator exports, on prometheus_client's default registry.

Label values are bounded: namespace, platform, component, probe, reason, rule,
severity, condition type and status, outcome. Never a user, room, call id or
secret. `forget_platform` removes every series of a deleted platform, so the
series count follows the number of live platforms.

The catalogue, with the alerts that use each metric, is in docs/metrics.md.
"""

from __future__ import annotations

import re
import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Protocol, cast

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from callplatform import __version__
from callplatform.condition_series import ConditionSeries
from callplatform.findings import Finding

RECONCILE_RESULTS = ("success", "error", "blocked", "requeued")
MIGRATION_OUTCOMES = ("succeeded", "failed")
OTHER = "other"

# Probe and call-duration buckets are deliberately few: every bucket is one
# series per platform and probe, and a scrape of 500 platforms must stay fast.
PROBE_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RECONCILE_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CALL_DURATION_BUCKETS = (30.0, 60.0, 300.0, 600.0, 900.0, 1800.0, 2700.0, 3600.0, 5400.0, 7200.0, 14400.0)

# `_created` series double the counter and histogram series and nothing here uses them.
cast(Callable[[], None], disable_created_metrics)()

PLATFORM = ("namespace", "platform")
PROBE = (*PLATFORM, "component", "probe")

# --- operator --------------------------------------------------------------
BUILD_INFO = Gauge(
    "callplatform_build_info",
    "Always 1 while the operator runs; the OperatorAbsent alert fires when it disappears.",
    ["version"],
)
RECONCILES = Counter(
    "callplatform_reconciles_total",
    "Reconciles of a CallPlatform, by result (success, error, blocked, requeued).",
    [*PLATFORM, "result"],
)
RECONCILE_DURATION = Histogram(
    "callplatform_reconcile_duration_seconds",
    "Wall time of one reconcile, all platforms.",
    buckets=RECONCILE_DURATION_BUCKETS,
)
API_ERRORS = Counter(
    "callplatform_kubernetes_api_errors_total",
    "Failed Kubernetes API requests, by operation (apply, patch_status, read_secret, ...).",
    ["operation"],
)
# Not a Gauge: about 30 series per platform, kept as data (condition_series.py).
PLATFORM_CONDITION = ConditionSeries()
REGISTRY.register(PLATFORM_CONDITION)
FINDINGS = Gauge(
    "callplatform_validation_findings",
    "Production-rule findings of a CallPlatform at its last reconcile, by rule and severity.",
    [*PLATFORM, "rule", "severity"],
)
MIGRATIONS = Counter(
    "callplatform_migration_jobs_total",
    "Finished database migration Jobs, by outcome (succeeded, failed).",
    [*PLATFORM, "outcome"],
)
MIGRATION_FAILING = Gauge(
    "callplatform_migration_failing",
    "1 while the platform's MigrationsComplete condition says MigrationFailed, else 0 (set every reconcile).",
    list(PLATFORM),
)

# --- probes ----------------------------------------------------------------
PROBE_SUCCESS = Gauge(
    "callplatform_probe_success",
    "1 if the last probe succeeded, 0 if it failed.",
    list(PROBE),
)
PROBE_DURATION = Histogram(
    "callplatform_probe_duration_seconds",
    "Duration of probes, successful or not.",
    list(PROBE),
    buckets=PROBE_DURATION_BUCKETS,
)
PROBE_FAILURES = Counter(
    "callplatform_probe_failures_total",
    "Failed probes, by reason (timeout, refused, tls_error, auth_failed, ...).",
    [*PROBE, "reason"],
)
PROBE_LAST_SUCCESS = Gauge(
    "callplatform_probe_last_success_timestamp_seconds",
    "Unix time of the last successful probe.",
    list(PROBE),
)
PROBE_CERT_EXPIRY = Gauge(
    "callplatform_probe_certificate_expiry_timestamp_seconds",
    "Unix time when the TLS certificate the probe saw expires (notAfter).",
    list(PROBE),
)

# --- the TURN relay data path (probe "relay": two allocations echo packets through the relay) ---
TURN_RELAY_RTT = Gauge(
    "callplatform_turn_relay_rtt_seconds",
    "Median round trip of the last relay probe's packets (allocation A to B and back: two relay hops); "
    "absent when none came back.",
    list(PLATFORM),
)
TURN_RELAY_LOSS = Gauge(
    "callplatform_turn_relay_loss_ratio",
    "Share of the last relay probe's packets that did not come back (0 to 1); absent when the probe "
    'failed before sending (see callplatform_probe_success{probe="relay"}).',
    list(PLATFORM),
)

# --- Jitsi's own signals (from jicofo's and the videobridges' /metrics) ---
JITSI = (*PLATFORM, "component")  # component: jicofo or jvb; never a bridge, room or URL
JITSI_METRICS_UP = Gauge(
    "callplatform_jitsi_metrics_up",
    "1 if the last read of the component's /metrics (every configured videobridge, for jvb) succeeded.",
    list(JITSI),
)
JITSI_BRIDGES = Gauge(
    "callplatform_jitsi_bridges",
    "Videobridges jicofo knows (jitsi_jicofo_bridge_selector_bridge_count).",
    list(JITSI),
)
JITSI_BRIDGES_OPERATIONAL = Gauge(
    "callplatform_jitsi_bridges_operational",
    "Videobridges jicofo can allocate conferences on (jitsi_jicofo_bridge_selector_bridge_count_operational).",
    list(JITSI),
)
JITSI_BRIDGES_IN_SHUTDOWN = Gauge(
    "callplatform_jitsi_bridges_in_shutdown",
    "Videobridges jicofo sees in graceful shutdown (jitsi_jicofo_bridge_selector_bridge_count_in_shutdown).",
    list(JITSI),
)
JITSI_BRIDGES_DRAINING = Gauge(
    "callplatform_jitsi_bridges_draining",
    "Configured videobridges whose /metrics report drain mode, graceful shutdown or shutting down.",
    list(JITSI),
)
JITSI_STRESS = Gauge(
    "callplatform_jitsi_stress",
    "The highest jitsi_jvb_stress of the configured videobridges (0 to 1; above 1 is overload).",
    list(JITSI),
)
JITSI_CONFERENCES = Gauge(
    "callplatform_jitsi_conferences",
    "Conferences: jicofo's count, or the sum over the configured videobridges.",
    list(JITSI),
)
JITSI_PARTICIPANTS = Gauge(
    "callplatform_jitsi_participants",
    "Participants: jicofo's current participants, or the videobridges' local endpoints summed.",
    list(JITSI),
)
JITSI_METRICS: tuple[Gauge, ...] = (
    JITSI_METRICS_UP,
    JITSI_BRIDGES,
    JITSI_BRIDGES_OPERATIONAL,
    JITSI_BRIDGES_IN_SHUTDOWN,
    JITSI_BRIDGES_DRAINING,
    JITSI_STRESS,
    JITSI_CONFERENCES,
    JITSI_PARTICIPANTS,
)

# --- call lifecycle (written by callplatform.calls.db) ---------------------
CALLS_ACTIVE = Gauge(
    "callplatform_calls_active",
    "Calls started and not ended, at the last successful collection.",
    list(PLATFORM),
)
CALL_PARTICIPANTS_ACTIVE = Gauge(
    "callplatform_call_participants_active",
    "Participants in active calls, at the last successful collection.",
    list(PLATFORM),
)
CALLS_STARTED = Counter(
    "callplatform_calls_started_total",
    "Calls started, counted once each since the operator began watching the platform's database.",
    list(PLATFORM),
)
CALLS_ENDED = Counter(
    "callplatform_calls_ended_total",
    "Calls ended, counted once each since the operator began watching the platform's database.",
    list(PLATFORM),
)
CALL_DURATION = Histogram(
    "callplatform_call_duration_seconds",
    "Duration of ended calls, observed once per call when it ends.",
    list(PLATFORM),
    buckets=CALL_DURATION_BUCKETS,
)
CALLS_DATABASE_UP = Gauge(
    "callplatform_calls_database_up",
    "1 if the last call-metrics collection from the platform's database succeeded, else 0.",
    list(PLATFORM),
)
CALLS_DATABASE_LAST_SUCCESS = Gauge(
    "callplatform_calls_database_last_success_timestamp_seconds",
    "Unix time of the last successful call-metrics collection; call gauges are as old as this.",
    list(PLATFORM),
)
CALLS_COLLECTION_DURATION = Gauge(
    "callplatform_calls_collection_duration_seconds",
    "Wall time of the last call-metrics collection, successful or not.",
    list(PLATFORM),
)
CALLS_DATABASE_ERRORS = Counter(
    "callplatform_calls_database_errors_total",
    "Failed call-metrics collections, by reason (connection, timeout, undefined_table, ...).",
    [*PLATFORM, "reason"],
)

# --- call rates (spec.calls.rateLimits) ---------------------------------------
RATE_EVENTS = ("starts", "joins")
RATE_SCOPES = ("global", "per_user")
CALL_EVENTS_PER_MINUTE = Gauge(
    "callplatform_call_events_per_minute",
    "Calls started (event=starts) or joined (event=joins) in the trailing minute, in the database: in total "
    "(scope=global) or by the busiest user (scope=per_user), at the last successful collection.",
    [*PLATFORM, "event", "scope"],
)
CALL_RATE_LIMIT = Gauge(
    "callplatform_call_rate_limit_per_minute",
    "The configured spec.calls.rateLimits, events per minute (only limits that are set).",
    [*PLATFORM, "event", "scope"],
)

# Every series record_probe sets: what forget_probes drops when a platform's monitoring goes off.
PROBE_DERIVED_METRICS: tuple[MetricWrapperBase, ...] = (
    PROBE_SUCCESS,
    PROBE_DURATION,
    PROBE_FAILURES,
    PROBE_LAST_SUCCESS,
    PROBE_CERT_EXPIRY,
    TURN_RELAY_RTT,
    TURN_RELAY_LOSS,
    *JITSI_METRICS,
)
PLATFORM_METRICS: tuple[MetricWrapperBase, ...] = (
    RECONCILES,
    FINDINGS,
    MIGRATIONS,
    MIGRATION_FAILING,
    *PROBE_DERIVED_METRICS,
    CALLS_ACTIVE,
    CALL_PARTICIPANTS_ACTIVE,
    CALLS_STARTED,
    CALLS_ENDED,
    CALL_DURATION,
    CALLS_DATABASE_UP,
    CALLS_DATABASE_LAST_SUCCESS,
    CALLS_COLLECTION_DURATION,
    CALLS_DATABASE_ERRORS,
    CALL_EVENTS_PER_MINUTE,
    CALL_RATE_LIMIT,
)

BUILD_INFO.labels(version=__version__).set(1)

TRACKED_HELP = (
    "Platforms the operator holds state for, by registry (secret_index, work_queue, health_registry, "
    "probe_scheduler, call_collector, metric_series). Every one of them follows the CallPlatforms "
    "that exist: a deleted platform leaves all of them on its last pass."
)


class _TrackedPlatforms(Collector):
    """`callplatform_platforms_tracked`, counted at scrape time from the registries themselves."""

    def __init__(self) -> None:
        self.sources: dict[str, Callable[[], int]] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("callplatform_platforms_tracked", TRACKED_HELP, labels=["registry"])
        for registry, count in sorted(self.sources.items()):
            family.add_metric([registry], float(count()))
        yield family


_tracked = _TrackedPlatforms()
REGISTRY.register(_tracked)


def track_platforms(sources: Mapping[str, Callable[[], int]]) -> None:
    """The operator's per-platform registries, each with a function counting its platforms."""
    _tracked.sources = dict(sources)


def platforms_with_series() -> int:
    """(namespace, platform) pairs that have at least one series of a per-platform metric."""
    platforms = PLATFORM_CONDITION.platforms()
    for metric in PLATFORM_METRICS:
        children = cast(dict[tuple[str, ...], object], getattr(metric, "_metrics", {}))
        with metric._lock:
            platforms.update((values[0], values[1]) for values in children)
    return len(platforms)


class ProbeOutcome(Protocol):
    """What record_probe reads from the health monitor's ProbeResult."""

    @property
    def component(self) -> str: ...
    @property
    def probe(self) -> str: ...
    @property
    def success(self) -> bool: ...
    @property
    def reason(self) -> str: ...
    @property
    def duration_seconds(self) -> float: ...
    @property
    def cert_not_after(self) -> float | None: ...


class BoundedLabel:
    """Passes through short identifier-like values, up to `limit` distinct ones; the rest become "other".

    A label fed from code we do not own (probe reasons, rule ids, operation names)
    stays bounded even if that code starts producing free text.
    """

    _SHAPE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,39}")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if not self._SHAPE.fullmatch(value):
            return OTHER
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self._limit:
                return OTHER
            self._seen.add(value)
            return value


_component_label = BoundedLabel(8)
_probe_label = BoundedLabel(32)
_reason_label = BoundedLabel(64)
_rule_label = BoundedLabel(200)
_condition_label = BoundedLabel(32)
_operation_label = BoundedLabel(64)


def _choice(value: str, allowed: Sequence[str]) -> str:
    return value if value in allowed else OTHER


def record_reconcile(namespace: str, platform: str, result: str, duration_seconds: float) -> None:
    RECONCILES.labels(namespace, platform, _choice(result, RECONCILE_RESULTS)).inc()
    RECONCILE_DURATION.observe(max(duration_seconds, 0.0))


def record_api_error(operation: str) -> None:
    API_ERRORS.labels(_operation_label(operation)).inc()


class _LabelSetsByPlatform:
    """The extra label values each platform last set on a gauge, so stale series can be removed
    without a moment in which a concurrent scrape sees none."""

    def __init__(self, gauge: Gauge) -> None:
        self._gauge = gauge
        self._current: dict[tuple[str, str], set[tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def replace(self, namespace: str, platform: str, values: Mapping[tuple[str, ...], float]) -> None:
        with self._lock:
            for extra, value in values.items():
                self._gauge.labels(namespace, platform, *extra).set(value)
            stale = self._current.get((namespace, platform), set()) - values.keys()
            for extra in stale:
                self._gauge.remove(namespace, platform, *extra)
            self._current[(namespace, platform)] = set(values)

    def forget(self, namespace: str, platform: str) -> None:
        with self._lock:
            self._current.pop((namespace, platform), None)


_rate_limits_by_platform = _LabelSetsByPlatform(CALL_RATE_LIMIT)
_findings_by_platform = _LabelSetsByPlatform(FINDINGS)


def set_platform_conditions(namespace: str, platform: str, conditions: Mapping[str, str]) -> None:
    """One series per condition type and status: 1 for the current status, 0 for the others."""
    bounded = {_condition_label(condition_type): current for condition_type, current in conditions.items()}
    PLATFORM_CONDITION.replace(namespace, platform, bounded)


def set_rate_limits(namespace: str, platform: str, limits: Mapping[tuple[str, str], int]) -> None:
    """(event, scope) -> limit per minute; 0 (no limit) has no series, so the alert cannot fire on it."""
    values: dict[tuple[str, ...], float] = {
        (_choice(event, RATE_EVENTS), _choice(scope, RATE_SCOPES)): float(limit)
        for (event, scope), limit in limits.items()
        if limit > 0
    }
    _rate_limits_by_platform.replace(namespace, platform, values)


def set_findings(namespace: str, platform: str, findings: Sequence[Finding]) -> None:
    """Replace the platform's finding counts; rules no longer broken disappear."""
    counts = Tally((_rule_label(f.rule), str(f.severity)) for f in findings)
    _findings_by_platform.replace(namespace, platform, {key: float(n) for key, n in counts.items()})


def record_migration(namespace: str, platform: str, outcome: str | None, failing: bool | None = None) -> None:
    """Count a finished migration Job (`outcome`, only on the pass that saw it finish) and set the
    failing gauge. The reconciler passes `failing` on every pass, from the MigrationsComplete
    condition, so the gauge survives an operator restart; without it, the outcome decides."""
    if outcome is not None:
        MIGRATIONS.labels(namespace, platform, _choice(outcome, MIGRATION_OUTCOMES)).inc()
    if failing is None:
        if outcome not in MIGRATION_OUTCOMES:
            return
        failing = outcome == "failed"
    MIGRATION_FAILING.labels(namespace, platform).set(1 if failing else 0)


def record_probe(namespace: str, platform: str, result: ProbeOutcome) -> None:
    labels = (namespace, platform, _component_label(result.component), _probe_label(result.probe))
    PROBE_SUCCESS.labels(*labels).set(1 if result.success else 0)
    PROBE_DURATION.labels(*labels).observe(max(result.duration_seconds, 0.0))
    if result.success:
        PROBE_LAST_SUCCESS.labels(*labels).set_to_current_time()
    else:
        PROBE_FAILURES.labels(*labels, _reason_label(result.reason or "unknown")).inc()
    if result.cert_not_after is not None:
        PROBE_CERT_EXPIRY.labels(*labels).set(result.cert_not_after)
    if result.component == "jitsi" and is_jitsi_metrics_probe(result.probe):
        _jitsi_readings.record(namespace, platform, result)
    if result.component == "coturn" and result.probe == "relay":
        _record_relay(namespace, platform, getattr(result, "facts", None) or {})


def _record_relay(namespace: str, platform: str, facts: Mapping[str, float]) -> None:
    """The last round's figures, or no series: a stale figure would look like a working relay."""
    for gauge, fact in ((TURN_RELAY_RTT, "rtt_p50_seconds"), (TURN_RELAY_LOSS, "loss_ratio")):
        if fact in facts:
            gauge.labels(namespace, platform).set(facts[fact])
        else:
            gauge.remove(namespace, platform)


class _JitsiReadings:
    """The last facts of each Jitsi /metrics probe of each platform, so several videobridges
    add up to one series per platform and component."""

    _DRAINING = ("drain_mode", "graceful_shutdown", "shutting_down")

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], dict[str, tuple[bool, Mapping[str, float]]]] = {}
        self._lock = threading.Lock()

    def record(self, namespace: str, platform: str, result: ProbeOutcome) -> None:
        component = "jicofo" if result.probe == "jicofo_metrics" else "jvb"
        facts: Mapping[str, float] = getattr(result, "facts", None) or {}
        with self._lock:
            readings = self._last.setdefault((namespace, platform), {})
            readings[result.probe] = (bool(facts), facts)
            mine = [
                reading
                for probe, reading in readings.items()
                if (probe == "jicofo_metrics") == (component == "jicofo")
            ]
        labels = (namespace, platform, component)
        JITSI_METRICS_UP.labels(*labels).set(1 if all(ok for ok, _ in mine) else 0)
        read = [facts for ok, facts in mine if ok]
        if not read:
            return
        if component == "jicofo":
            for gauge, fact in (
                (JITSI_BRIDGES, "bridges"),
                (JITSI_BRIDGES_OPERATIONAL, "bridges_operational"),
                (JITSI_BRIDGES_IN_SHUTDOWN, "bridges_in_shutdown"),
            ):
                if fact in read[0]:
                    gauge.labels(*labels).set(read[0][fact])
        else:
            JITSI_STRESS.labels(*labels).set(max(facts.get("stress", 0.0) for facts in read))
            draining = sum(1 for facts in read if any(facts.get(mode, 0) > 0 for mode in self._DRAINING))
            JITSI_BRIDGES_DRAINING.labels(*labels).set(draining)
        JITSI_CONFERENCES.labels(*labels).set(sum(facts.get("conferences", 0.0) for facts in read))
        JITSI_PARTICIPANTS.labels(*labels).set(sum(facts.get("participants", 0.0) for facts in read))

    def forget(self, namespace: str, platform: str) -> None:
        with self._lock:
            self._last.pop((namespace, platform), None)


_jitsi_readings = _JitsiReadings()


def is_jitsi_metrics_probe(probe: str) -> bool:
    return probe == "jicofo_metrics" or probe.startswith("jvb_metrics")


def forget_platform(namespace: str, platform: str) -> None:
    """Remove every series of a deleted platform, call metrics included."""
    _jitsi_readings.forget(namespace, platform)
    PLATFORM_CONDITION.forget(namespace, platform)
    _findings_by_platform.forget(namespace, platform)
    _rate_limits_by_platform.forget(namespace, platform)
    _remove_series(PLATFORM_METRICS, namespace, platform)


def forget_probes(namespace: str, platform: str) -> None:
    """Remove the series a platform's probes recorded (its monitoring was switched off); its
    other series (conditions, findings, call metrics) stay."""
    _jitsi_readings.forget(namespace, platform)
    _remove_series(PROBE_DERIVED_METRICS, namespace, platform)


def _remove_series(metrics: Iterable[MetricWrapperBase], namespace: str, platform: str) -> None:
    selector = {"namespace": namespace, "platform": platform}
    for metric in metrics:
        metric.remove_by_labels(selector)
