"""callplatform_jitsi_* gauges: several videobridges add up to one series per component; labels stay bounded."""

from __future__ import annotations

import uuid
from pathlib import Path

from prometheus_client import REGISTRY, generate_latest

from callplatform import metrics
from callplatform.probes import jitsi_metrics
from callplatform.probes.result import ProbeResult, failure

FIXTURES = Path(__file__).resolve().parents[1] / "probes" / "fixtures" / "jitsi"


def reading(source: str, name: str, probe: str) -> ProbeResult:
    read = jitsi_metrics.read(source, (FIXTURES / name).read_text())
    return ProbeResult(
        "jitsi", probe, not read.problem, read.problem, facts=read.facts, degraded=read.degraded
    )


def value(name: str, ns: str, component: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"namespace": ns, "platform": "p", "component": component})


def test_bridges_add_up_and_a_failed_read_is_metrics_up_zero() -> None:
    ns = f"ns-{uuid.uuid4().hex[:8]}"
    metrics.record_probe(ns, "p", reading("jicofo", "jicofo-no-bridges.prom", "jicofo_metrics"))
    metrics.record_probe(ns, "p", reading("jvb", "jvb-idle.prom", "jvb_metrics"))
    metrics.record_probe(ns, "p", reading("jvb", "jvb-draining.prom", "jvb_metrics_1"))
    assert value("callplatform_jitsi_bridges_operational", ns, "jicofo") == 0
    assert value("callplatform_jitsi_bridges_in_shutdown", ns, "jicofo") == 1
    assert value("callplatform_jitsi_metrics_up", ns, "jicofo") == 1  # read fine; the fact is bad
    assert value("callplatform_jitsi_bridges_draining", ns, "jvb") == 1
    assert value("callplatform_jitsi_stress", ns, "jvb") == 0.043
    assert value("callplatform_jitsi_conferences", ns, "jvb") == 3 + 1
    assert value("callplatform_jitsi_participants", ns, "jvb") == 11 + 2
    metrics.record_probe(ns, "p", failure("jitsi", "jvb_metrics_1", "refused", "connection refused"))
    assert value("callplatform_jitsi_metrics_up", ns, "jvb") == 0
    assert value("callplatform_jitsi_stress", ns, "jvb") == 0.043

    text = generate_latest(REGISTRY).decode()
    for line in text.splitlines():
        if line.startswith("callplatform_jitsi_") and ns in line:
            labels = line[line.index("{") + 1 : line.index("}")]
            assert {pair.split("=")[0] for pair in labels.split(",")} == {
                "namespace",
                "platform",
                "component",
            }
            assert "jvb-0" not in line and "http" not in line

    metrics.forget_platform(ns, "p")
    assert value("callplatform_jitsi_stress", ns, "jvb") is None
