"""The recording functions others call: bounded labels, resets, and forgetting a platform."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families
from scrape_parse import platform_series, samples, scrape, value

from callplatform import metrics
from callplatform.findings import Finding, Severity


@dataclass(frozen=True)
class FakeProbeResult:
    component: str
    probe: str
    success: bool
    reason: str
    duration_seconds: float
    cert_not_after: float | None = None
    message: str = ""


def platform() -> tuple[str, str]:
    return "ns-" + uuid.uuid4().hex[:8], "cp-" + uuid.uuid4().hex[:8]


def test_exposition_parses_and_every_name_is_prefixed() -> None:
    ns, name = platform()
    metrics.record_reconcile(ns, name, "success", 0.3)
    families = list(text_string_to_metric_families(scrape()))
    ours = [f for f in families if f.name.startswith("callplatform_")]
    assert {f.name for f in ours} >= {
        "callplatform_build_info",
        "callplatform_reconciles",
        "callplatform_reconcile_duration_seconds",
    }
    for family in ours:
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
    assert value("callplatform_build_info") == 1


def test_reconciles_by_result_and_unknown_results_are_bounded() -> None:
    ns, name = platform()
    before = value("callplatform_reconcile_duration_seconds_count") or 0
    metrics.record_reconcile(ns, name, "success", 0.2)
    metrics.record_reconcile(ns, name, "error", 1.5)
    metrics.record_reconcile(ns, name, "error", 0.1)
    metrics.record_reconcile(ns, name, "exploded: token=abc", 0.1)
    assert value("callplatform_reconciles_total", namespace=ns, platform=name, result="success") == 1
    assert value("callplatform_reconciles_total", namespace=ns, platform=name, result="error") == 2
    assert value("callplatform_reconciles_total", namespace=ns, platform=name, result="other") == 1
    assert value("callplatform_reconcile_duration_seconds_count") == before + 4
    assert "token=abc" not in scrape()


def test_api_errors_by_operation() -> None:
    op = "apply_" + uuid.uuid4().hex[:6]
    metrics.record_api_error(op)
    metrics.record_api_error(op)
    assert value("callplatform_kubernetes_api_errors_total", operation=op) == 2
    metrics.record_api_error("GET /api/v1/namespaces/x/secrets/y?token=zzz")
    assert "token=zzz" not in scrape()


def test_conditions_one_hot_and_replaced() -> None:
    ns, name = platform()
    metrics.set_platform_conditions(ns, name, {"Ready": "False", "SecretsValid": "True", "Gone": "Unknown"})
    assert (
        value("callplatform_platform_condition", namespace=ns, platform=name, type="Ready", status="False")
        == 1
    )
    assert (
        value("callplatform_platform_condition", namespace=ns, platform=name, type="Ready", status="True")
        == 0
    )
    assert (
        value("callplatform_platform_condition", namespace=ns, platform=name, type="Gone", status="Unknown")
        == 1
    )
    metrics.set_platform_conditions(ns, name, {"Ready": "True", "SecretsValid": "True"})
    assert (
        value("callplatform_platform_condition", namespace=ns, platform=name, type="Ready", status="True")
        == 1
    )
    assert (
        value("callplatform_platform_condition", namespace=ns, platform=name, type="Ready", status="False")
        == 0
    )
    assert samples("callplatform_platform_condition", namespace=ns, platform=name, type="Gone") == []


def test_findings_counted_by_rule_and_severity_and_reset() -> None:
    ns, name = platform()
    secret_value = "hunter2-" + uuid.uuid4().hex

    def finding(rule: str, severity: Severity) -> Finding:
        return Finding(rule, severity, f"CallPlatform {ns}/{name}", "spec.x", f"value {secret_value} is weak")

    metrics.set_findings(
        ns,
        name,
        [
            finding("CP001", Severity.ERROR),
            finding("CP001", Severity.ERROR),
            finding("CP007", Severity.WARNING),
        ],
    )
    assert (
        value("callplatform_validation_findings", namespace=ns, platform=name, rule="CP001", severity="error")
        == 2
    )
    assert (
        value(
            "callplatform_validation_findings", namespace=ns, platform=name, rule="CP007", severity="warning"
        )
        == 1
    )
    assert secret_value not in scrape()
    metrics.set_findings(ns, name, [finding("CP007", Severity.WARNING)])
    assert samples("callplatform_validation_findings", namespace=ns, platform=name, rule="CP001") == []
    metrics.set_findings(ns, name, [])
    assert samples("callplatform_validation_findings", namespace=ns, platform=name) == []


def test_migration_outcomes_and_failing_flag() -> None:
    ns, name = platform()
    metrics.record_migration(ns, name, "failed")
    assert value("callplatform_migration_failing", namespace=ns, platform=name) == 1
    metrics.record_migration(ns, name, "succeeded")
    assert value("callplatform_migration_failing", namespace=ns, platform=name) == 0
    assert value("callplatform_migration_jobs_total", namespace=ns, platform=name, outcome="failed") == 1
    assert value("callplatform_migration_jobs_total", namespace=ns, platform=name, outcome="succeeded") == 1


def test_probe_results() -> None:
    ns, name = platform()
    probe = {"namespace": ns, "platform": name, "component": "coturn", "probe": "allocate"}
    metrics.record_probe(
        ns, name, FakeProbeResult("coturn", "allocate", True, "", 0.12, cert_not_after=1_900_000_000.0)
    )
    assert value("callplatform_probe_success", **probe) == 1
    last_success = value("callplatform_probe_last_success_timestamp_seconds", **probe)
    assert last_success is not None and last_success > 1_700_000_000
    assert value("callplatform_probe_certificate_expiry_timestamp_seconds", **probe) == 1_900_000_000.0
    metrics.record_probe(ns, name, FakeProbeResult("coturn", "allocate", False, "auth_failed", 0.4))
    metrics.record_probe(ns, name, FakeProbeResult("coturn", "allocate", False, "auth_failed", 0.6))
    assert value("callplatform_probe_success", **probe) == 0
    assert value("callplatform_probe_failures_total", reason="auth_failed", **probe) == 2
    assert value("callplatform_probe_last_success_timestamp_seconds", **probe) == last_success
    assert value("callplatform_probe_duration_seconds_count", **probe) == 3
    assert value("callplatform_probe_duration_seconds_bucket", le="0.25", **probe) == 1
    assert value("callplatform_probe_duration_seconds_bucket", le="0.5", **probe) == 2


def test_free_text_reasons_become_other_and_cardinality_is_capped() -> None:
    ns, name = platform()
    metrics.record_probe(
        ns, name, FakeProbeResult("jitsi", "web", False, "HTTP 500 from https://user:pw@x/", 1.0)
    )
    assert (
        value(
            "callplatform_probe_failures_total",
            namespace=ns,
            platform=name,
            reason="other",
            component="jitsi",
            probe="web",
        )
        == 1
    )
    label = metrics.BoundedLabel(3)
    assert [label(v) for v in ("a", "b", "c", "d", "a", "e")] == ["a", "b", "c", "other", "a", "other"]


def test_forget_platform_removes_every_series_and_only_those() -> None:
    ns, name = platform()
    _, neighbour = platform()
    for target in (name, neighbour):
        metrics.record_reconcile(ns, target, "success", 0.1)
        metrics.set_platform_conditions(ns, target, {"Ready": "True"})
        metrics.set_findings(ns, target, [Finding("CP001", Severity.ERROR, "o", "f", "m")])
        metrics.record_migration(ns, target, "failed")
        metrics.record_probe(ns, target, FakeProbeResult("jitsi", "jvb", False, "timeout", 5.0, 2e9))
        metrics.record_probe(ns, target, FakeProbeResult("jitsi", "jvb", True, "", 0.1))
        metrics.CALLS_ACTIVE.labels(ns, target).set(3)
        metrics.CALL_DURATION.labels(ns, target).observe(60)
        metrics.CALLS_DATABASE_UP.labels(ns, target).set(1)
    names_with_platform = {s.name for s in platform_series(ns, name)}
    assert len(names_with_platform) > 15
    metrics.forget_platform(ns, name)
    assert platform_series(ns, name) == []
    assert {s.name for s in platform_series(ns, neighbour)} == names_with_platform
    # Recording again after forgetting starts clean (conditions tracker forgot too).
    metrics.set_platform_conditions(ns, name, {"Ready": "False"})
    assert (
        value("callplatform_platform_condition", namespace=ns, platform=name, type="Ready", status="False")
        == 1
    )
    metrics.forget_platform(ns, name)
    metrics.forget_platform(ns, neighbour)


def test_every_platform_metric_is_forgotten() -> None:
    """A metric with namespace/platform labels that forget_platform does not know would leak series."""
    from prometheus_client import REGISTRY

    labelled = {
        family.name
        for collector in list(REGISTRY._collector_to_names)
        if isinstance(collector, metrics.MetricWrapperBase) and "platform" in collector._labelnames
        for family in collector.describe()
    }
    known = {family.name for metric in metrics.PLATFORM_METRICS for family in metric.describe()}
    assert labelled == known


def test_record_probe_accepts_the_health_monitors_probe_result() -> None:
    from callplatform.probes.result import ProbeResult

    ns, name = platform()
    result = ProbeResult(
        "coturn", "tls", False, "tls_error", 0.3, cert_not_after=1.9e9, message="detail", target="t:5349"
    )
    metrics.record_probe(ns, name, result)
    labels = {"namespace": ns, "platform": name, "component": "coturn", "probe": "tls"}
    assert value("callplatform_probe_failures_total", reason="tls_error", **labels) == 1
    assert value("callplatform_probe_certificate_expiry_timestamp_seconds", **labels) == 1.9e9
    assert "t:5349" not in scrape()


def test_relay_probe_sets_rtt_and_loss_and_clears_what_it_did_not_measure() -> None:
    from dataclasses import replace

    from callplatform.probes.result import ProbeResult, failure

    ns, name = platform()
    facts = {"loss_ratio": 0.2, "rtt_p50_seconds": 0.0012, "packets_sent": 5.0, "packets_received": 4.0}
    metrics.record_probe(ns, name, ProbeResult("coturn", "relay", True, facts=facts))
    assert value("callplatform_turn_relay_rtt_seconds", namespace=ns, platform=name) == 0.0012
    assert value("callplatform_turn_relay_loss_ratio", namespace=ns, platform=name) == 0.2
    lost = replace(failure("coturn", "relay", "packets_lost", "0 of 5 came back"), facts={"loss_ratio": 1.0})
    metrics.record_probe(ns, name, lost)
    assert (
        value("callplatform_turn_relay_rtt_seconds", namespace=ns, platform=name) is None
    )  # no packet: no RTT
    assert value("callplatform_turn_relay_loss_ratio", namespace=ns, platform=name) == 1.0
    metrics.record_probe(ns, name, failure("coturn", "relay", "forbidden", "403 before sending"))
    assert value("callplatform_turn_relay_loss_ratio", namespace=ns, platform=name) is None  # not measured
    metrics.record_probe(ns, name, ProbeResult("coturn", "relay", True, facts=facts))
    metrics.forget_platform(ns, name)
    assert value("callplatform_turn_relay_rtt_seconds", namespace=ns, platform=name) is None
