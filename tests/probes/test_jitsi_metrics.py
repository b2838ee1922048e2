"""Jitsi's own /metrics read into facts, and the reasons that name the Jitsi setting to change.

The exposition text comes from fixtures/jitsi/ (written from Jitsi's documented metric
names, not captured from a live Jitsi)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from callplatform.probes import jitsi_metrics
from callplatform.probes.health import summarise
from callplatform.probes.jitsi import HttpCheck, HttpProber
from callplatform.probes.jitsi_degraded import (
    REASON_DRAINING,
    REASON_NOMINAL,
    REASON_STRESS,
    REASON_UNAVAILABLE,
    degraded_verdict,
)
from callplatform.probes.jitsi_settings import explain
from callplatform.probes.result import ProbeResult, failure
from callplatform.probes.tls import TlsOptions

from .jitsi_stub import JitsiStub, fixture, running_jitsi_stub
from .servers import free_port


@pytest.fixture
async def prober() -> AsyncIterator[HttpProber]:
    prober = HttpProber()
    yield prober
    await prober.aclose()


@pytest.fixture(scope="module")
def stub() -> Iterator[JitsiStub]:
    with running_jitsi_stub() as server:
        yield server


def test_jicofo_fixture_facts_ignore_per_bridge_series() -> None:
    facts = jitsi_metrics.read_facts(fixture("jicofo-healthy.prom"), jitsi_metrics.JICOFO_METRICS)
    assert facts == {
        "bridges_operational": 2.0,
        "bridges": 2.0,
        "bridges_in_shutdown": 0.0,
        "conferences": 4.0,
        "participants": 17.0,
    }


def test_zero_operational_bridges_is_a_problem() -> None:
    reading = jitsi_metrics.read("jicofo", fixture("jicofo-no-bridges.prom"))
    assert reading.problem == "no_operational_bridges"
    assert "0 operational bridge(s) of 1, 1 in graceful shutdown" in reading.summary
    assert jitsi_metrics.read("jicofo", fixture("jicofo-healthy.prom")).problem == ""


@pytest.mark.parametrize(
    ("name", "threshold", "degraded"),
    [
        ("jvb-idle.prom", 0.8, ""),
        ("jvb-draining.prom", 0.8, "draining"),
        ("jvb-stressed.prom", 0.8, "stress_high"),
        ("jvb-stressed.prom", 0.95, ""),
        ("jvb-idle.prom", 0.01, "stress_high"),
    ],
)
def test_jvb_degraded_by_drain_or_stress(name: str, threshold: float, degraded: str) -> None:
    reading = jitsi_metrics.read("jvb", fixture(name), stress_threshold=threshold)
    assert reading.degraded == degraded
    assert reading.problem == ""


@pytest.mark.parametrize(
    "text",
    ["", "<html>404</html>", "jitsi_jvb_stress not-a-number\n", fixture("jicofo-healthy.prom")],
)
def test_text_without_the_needed_metric_is_a_metrics_error(text: str) -> None:
    with pytest.raises(jitsi_metrics.MetricsError):
        jitsi_metrics.read("jvb", text)


def _jvb(probe: str, fixture_name: str = "", *, ok: bool = True) -> ProbeResult:
    if not ok:
        return failure("jitsi", probe, "refused", "GET http://127.0.0.1:1/metrics: connection refused")
    reading = jitsi_metrics.read("jvb", fixture(fixture_name))
    return ProbeResult(
        "jitsi", probe, True, message=reading.summary, facts=reading.facts, degraded=reading.degraded
    )


def test_degraded_verdict_over_several_bridges() -> None:
    assert degraded_verdict([ProbeResult("jitsi", "web", True)]) is None
    idle = degraded_verdict([_jvb("jvb_metrics", "jvb-idle.prom")])
    assert idle is not None and (idle.degraded, idle.reason) == (False, REASON_NOMINAL)
    draining = degraded_verdict(
        [_jvb("jvb_metrics", "jvb-idle.prom"), _jvb("jvb_metrics_1", "jvb-draining.prom")]
    )
    assert draining is not None and (draining.degraded, draining.reason) == (True, REASON_DRAINING)
    assert draining.message.startswith("jvb_metrics_1: ") and "drain_mode" in draining.message
    stressed = degraded_verdict([_jvb("jvb_metrics", "jvb-stressed.prom"), _jvb("jvb_metrics_1", ok=False)])
    assert stressed is not None and stressed.reason == REASON_STRESS
    unknown = degraded_verdict([_jvb("jvb_metrics", "jvb-idle.prom"), _jvb("jvb_metrics_1", ok=False)])
    assert unknown is not None and (unknown.degraded, unknown.reason) == (False, REASON_UNAVAILABLE)


def test_explain_names_the_setting_only_for_the_failure_it_explains() -> None:
    refused = failure("jitsi", "jicofo", "refused", "GET http://127.0.0.1:1/about/health: connection refused")
    assert "JICOFO_ENABLE_REST=1" in explain("jicofo", refused).message
    assert explain("jicofo", refused).reason == "rest_refused"
    assert explain("jvb", refused) == refused
    forbidden = failure("jitsi", "prosody", "http_status", "GET x: HTTP 403", http_status=403)
    assert explain("prosody", forbidden).reason == "not_allowed"
    assert explain(
        "prosody", failure("jitsi", "prosody", "http_status", "HTTP 500", http_status=500)
    ).reason == ("http_status")
    missing = failure("jitsi", "colibri", "http_status", "GET x: HTTP 404", http_status=404)
    assert explain("colibri", missing).reason == "rest_disabled"
    assert "COLIBRI_REST_ENABLED=true" in explain("colibri", missing).message


async def test_jicofo_without_operational_bridges_fails_jitsi(prober: HttpProber, stub: JitsiStub) -> None:
    stub.serve("/jicofo/metrics", "jicofo-no-bridges.prom")
    try:
        check = HttpCheck("jicofo_metrics", stub.url("/jicofo/metrics"), kind="metrics", service="jicofo")
        result = await prober.probe(check, tls=TlsOptions())
    finally:
        stub.serve("/jicofo/metrics", "jicofo-healthy.prom")
    assert not result.success
    assert result.reason == "no_operational_bridges"
    assert result.facts["bridges_operational"] == 0.0
    health = summarise("jitsi", [result], 0.0)
    assert health.reason == "JitsiJicofoMetricsNoOperationalBridges"
    assert "bridge_count_operational is 0" in health.message
    healthy = await prober.probe(check, tls=TlsOptions())
    assert healthy.success and healthy.facts["bridges_operational"] == 2.0, healthy


async def test_draining_jvb_metrics_succeed_but_say_degraded(prober: HttpProber, stub: JitsiStub) -> None:
    stub.serve("/jvb/draining", "jvb-draining.prom")
    check = HttpCheck("jvb_metrics", stub.url("/jvb/draining"), kind="metrics", service="jvb")
    result = await prober.probe(check, tls=TlsOptions())
    assert result.success, result
    assert result.degraded == "draining"
    verdict = degraded_verdict([result])
    assert verdict is not None and verdict.reason == REASON_DRAINING


async def test_metrics_endpoint_answering_html_is_bad_metrics(prober: HttpProber, stub: JitsiStub) -> None:
    check = HttpCheck("jvb_metrics", stub.url("/about/health"), kind="metrics", service="jvb")
    result = await prober.probe(check, tls=TlsOptions())
    assert (result.success, result.reason) == (False, "bad_metrics")
    assert "no jitsi_jvb_stress" in result.message


async def test_refused_jicofo_rest_port_names_jicofo_enable_rest(prober: HttpProber) -> None:
    url = f"http://127.0.0.1:{free_port()}/about/health"  # nothing listens: REST off, as jicofo's default
    for check in (
        HttpCheck("jicofo", url, service="jicofo"),
        HttpCheck("jicofo_metrics", url, kind="metrics", service="jicofo"),
    ):
        result = await prober.probe(check, tls=TlsOptions())
        assert result.reason == "rest_refused", result
        assert "JICOFO_ENABLE_REST=1" in result.message and "loopback" in result.message
    health = summarise("jitsi", [result], 0.0)
    assert health.reason == "JitsiJicofoMetricsRestRefused"


async def test_disabled_colibri_rest_api_names_colibri_rest_enabled(
    prober: HttpProber, stub: JitsiStub
) -> None:
    result = await prober.probe(
        HttpCheck("colibri", stub.url("/colibri/stats"), service="colibri"), tls=TlsOptions()
    )
    assert (result.reason, result.http_status) == ("rest_disabled", 404)
    assert "COLIBRI_REST_ENABLED=true" in result.message
    assert "videobridge.apis.rest.enabled" in result.message
    assert summarise("jitsi", [result], 0.0).reason == "JitsiColibriRestDisabled"
