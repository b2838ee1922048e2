"""The fast /metrics renderer says exactly what prometheus-client's generate_latest says."""

from __future__ import annotations

import uuid

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, Summary, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from callplatform import metrics
from callplatform.condition_series import ConditionSeries
from callplatform.exposition import Exposition, render_latest


def samples(body: bytes) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
    return sorted(
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    )


def test_same_samples_and_types_as_generate_latest_on_a_private_registry() -> None:
    registry = CollectorRegistry()
    counter = Counter(
        "t_requests_total", "Requests\nwith a \\ newline", ["namespace", "platform"], registry=registry
    )
    gauge = Gauge("t_up", "Up", ["platform"], registry=registry)
    histogram = Histogram("t_seconds", "Time", ["platform"], buckets=(0.1, 1.0), registry=registry)
    Gauge("t_plain", "No labels", registry=registry).set(3)
    Summary("t_summary", "A summary", ["x"], registry=registry).labels("a").observe(2)
    counter.labels("ns", 'quote"back\\slash\nnewline').inc(2)
    counter.labels("ns", "ünïcode").inc()
    gauge.labels("a").set(float("nan"))
    gauge.labels("b").set(float("inf"))
    gauge.labels("c").set(-1.5e-7)
    histogram.labels("a").observe(0.05)
    histogram.labels("a").observe(5)
    exposition = Exposition(registry)
    assert samples(exposition.render()) == samples(generate_latest(registry)) or _nan_equal(
        samples(exposition.render()), samples(generate_latest(registry))
    )
    types_fast = {f.name: f.type for f in text_string_to_metric_families(exposition.render().decode())}
    types_reference = {
        f.name: f.type for f in text_string_to_metric_families(generate_latest(registry).decode())
    }
    assert types_fast == types_reference
    # A removed series disappears; a new one appears.
    gauge.remove("b")
    histogram.labels("z").observe(0.5)
    assert _nan_equal(samples(exposition.render()), samples(generate_latest(registry)))


def _nan_equal(
    a: list[tuple[str, tuple[tuple[str, str], ...], float]],
    b: list[tuple[str, tuple[tuple[str, str], ...], float]],
) -> bool:
    return len(a) == len(b) and all(
        x[:2] == y[:2] and (x[2] == y[2] or (x[2] != x[2] and y[2] != y[2]))
        for x, y in zip(a, b, strict=True)
    )


def test_default_registry_renders_like_generate_latest() -> None:
    ns, name = "ns-" + uuid.uuid4().hex[:6], "cp-" + uuid.uuid4().hex[:6]
    metrics.record_reconcile(ns, name, "success", 0.4)
    metrics.set_platform_conditions(ns, name, {"Ready": "True"})
    metrics.CALL_DURATION.labels(ns, name).observe(100)
    fast, reference = render_latest(), generate_latest(REGISTRY)

    def ours(body: bytes) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
        # process_* and python_* samples move between the two renders.
        return [s for s in samples(body) if s[0].startswith("callplatform_")]

    assert len(ours(fast)) > 10
    assert _nan_equal(ours(fast), ours(reference))
    assert {s[0] for s in samples(fast)} == {s[0] for s in samples(reference)}
    assert f'platform="{name}"' in fast.decode()
    metrics.forget_platform(ns, name)
    assert f'platform="{name}"' not in render_latest().decode()


def test_condition_series_render_like_generate_latest_and_drop_what_is_left_out() -> None:
    registry = CollectorRegistry()
    series = ConditionSeries()
    registry.register(series)
    series.replace("ns", 'quote"back\\slash', {"Ready": "True", "SecretsValid": "False"})
    series.replace("ns", "b", {"Ready": "Unknown", "Odd": "Maybe"})  # no status matches: all 0
    exposition = Exposition(registry)
    assert samples(exposition.render()) == samples(generate_latest(registry))
    assert ("callplatform_platform_condition", (("namespace", "ns"), ("platform", "b"), ("status", "Unknown"),
            ("type", "Ready")), 1.0) in samples(exposition.render())  # fmt: skip
    series.replace("ns", "b", {"Ready": "True"})
    series.forget("ns", 'quote"back\\slash')
    rendered = samples(exposition.render())
    assert rendered == samples(generate_latest(registry))
    assert {dict(labels)["platform"] for _, labels, _ in rendered} == {"b"}
    assert len(rendered) == 3  # Ready's three statuses; Odd is gone
    assert series.platforms() == {("ns", "b")}
