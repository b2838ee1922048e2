"""Read metric values the way Prometheus does: from what /metrics serves, parsed by prometheus-client's parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from callplatform.exposition import render_latest


def scrape() -> str:
    return render_latest().decode()


def samples(name: str, **labels: str) -> list[Sample]:
    return [
        s
        for family in text_string_to_metric_families(scrape())
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def value(name: str, **labels: str) -> float | None:
    """The one sample matching; None when the series does not exist."""
    found = samples(name, **labels)
    assert len(found) <= 1, f"{name} {labels} matches {len(found)} series"
    return found[0].value if found else None


def platform_series(namespace: str, platform: str) -> list[Sample]:
    return [
        s
        for family in text_string_to_metric_families(scrape())
        for s in family.samples
        if s.labels.get("namespace") == namespace and s.labels.get("platform") == platform
    ]
