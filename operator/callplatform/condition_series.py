"""`callplatform_platform_condition`, kept as plain data and rendered at scrape time.

One series per platform, condition type and status (1 for the current status, 0 for the other
two, as kube-state-metrics does) is about 30 series per platform. As prometheus-client Gauge
children, each series costs close to 1 KiB (a child object, a lock, a value, the fast renderer's
cached label string): about 33 MiB at 1000 platforms, a sixth of the operator's memory budget. Here
a platform is one entry (its escaped label prefix and a tuple of (type, status) pairs) and the
series exist only while a scrape renders them.

It is a prometheus-client Collector (so `generate_latest` and `REGISTRY.get_sample_value` see it)
and renders itself for exposition.py's fast path.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from callplatform.exposition import escape_label_value

NAME = "callplatform_platform_condition"
HELP = "1 for the current status of each condition type of a CallPlatform, 0 for the other statuses."
STATUSES = ("True", "False", "Unknown")
LABELS = ["namespace", "platform", "type", "status"]


class ConditionSeries(Collector):
    """The condition statuses of every platform, by (namespace, platform)."""

    def __init__(self) -> None:
        # (namespace, platform) -> (label prefix for the text format, ((type, status), ...))
        self._platforms: dict[tuple[str, str], tuple[str, tuple[tuple[str, str], ...]]] = {}
        self._lock = threading.Lock()

    def replace(self, namespace: str, platform: str, conditions: Mapping[str, str]) -> None:
        """The platform's condition types and their current status; types left out lose their series."""
        prefix = f'namespace="{escape_label_value(namespace)}",platform="{escape_label_value(platform)}",'
        current = tuple(sorted(conditions.items()))
        with self._lock:
            self._platforms[(namespace, platform)] = (prefix, current)

    def forget(self, namespace: str, platform: str) -> None:
        with self._lock:
            self._platforms.pop((namespace, platform), None)

    def platforms(self) -> set[tuple[str, str]]:
        with self._lock:
            return {key for key, (_, current) in self._platforms.items() if current}

    def _snapshot(self) -> list[tuple[tuple[str, str], str, tuple[tuple[str, str], ...]]]:
        with self._lock:
            return [(key, prefix, current) for key, (prefix, current) in self._platforms.items()]

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(NAME, HELP, labels=LABELS)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(NAME, HELP, labels=LABELS)
        for (namespace, platform), _, current in self._snapshot():
            for condition_type, status in current:
                for candidate in STATUSES:
                    value = 1.0 if candidate == status else 0.0
                    family.add_metric([namespace, platform, condition_type, candidate], value)
        yield family

    def render_text(self, out: list[str]) -> None:
        """The family in the Prometheus text format, as generate_latest would write it."""
        out.append(f"# HELP {NAME} {HELP}\n# TYPE {NAME} gauge\n")
        for _, prefix, current in self._snapshot():
            for condition_type, status in current:
                kind = escape_label_value(condition_type)
                for candidate in STATUSES:
                    value = "1.0" if candidate == status else "0.0"
                    out.append(f'{NAME}{{{prefix}status="{candidate}",type="{kind}"}} {value}\n')
