"""Rendering /metrics fast enough for hundreds of platforms.

prometheus-client's `generate_latest` builds a Sample object per value and
re-validates and re-escapes every label name on every scrape: about 100,000
samples for 500 platforms, over a second of CPU (bench/bench_scrape.py). This
renderer produces the same text format, but formats each series' label set once
and reuses it until the series is removed, so a scrape is mostly float
formatting. Collectors of ours that keep their series as plain data
(condition_series.py) render themselves (`RendersText`).

It reads the children of prometheus-client's metric objects, which is not public
API. Anything it does not recognise (another metric type, other collectors on the
registry, a prometheus-client whose internals changed) goes through
`generate_latest` unchanged, and tests/metrics/test_exposition.py checks the
output parses to exactly what `generate_latest` gives.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, cast, runtime_checkable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

_go_float = cast(Callable[[float], str], floatToGoString)


def _format_value(value: float) -> str:
    """floatToGoString, with a shortcut for the small whole numbers most samples are (counts, 0/1)."""
    if -1e6 < value < 1e6 and float(value).is_integer():
        return f"{int(value)}.0"
    return _go_float(value)


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@runtime_checkable
class RendersText(Protocol):
    """What writes its families in the text format: `_FastMetric` for prometheus-client's metric
    objects, and collectors of ours that keep their series as data (condition_series.py)."""

    def render_text(self, out: list[str]) -> None: ...


def escape_label_value(value: str) -> str:
    """A label value as the text format writes it (backslash, newline and double quote escaped)."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


class _Collectors:
    """A registry view over some collectors, for generate_latest."""

    def __init__(self, collectors: Iterable[Collector]) -> None:
        self._collectors = list(collectors)

    def collect(self) -> Iterator[Any]:
        for collector in self._collectors:
            yield from collector.collect()


class _FastMetric:
    """Renders one labelled Counter, Gauge or Histogram, caching each child's label string."""

    def __init__(self, metric: MetricWrapperBase) -> None:
        self._metric = metric
        self._name: str = metric._name
        self._labelnames: tuple[str, ...] = tuple(metric._labelnames)
        self._label_strings: dict[tuple[str, ...], str] = {}
        documentation = _escape_help(metric._documentation)
        if isinstance(metric, Counter):
            self._kind = "counter"
            header_name = self._name + "_total"
        elif isinstance(metric, Histogram):
            self._kind = "histogram"
            header_name = self._name
            bounds = metric._upper_bounds
            self._bucket_labels = [f'le="{_go_float(bound)}"' for bound in bounds]
        else:
            self._kind = "gauge"
            header_name = self._name
        self._header = f"# HELP {header_name} {documentation}\n# TYPE {header_name} {self._kind}\n"

    @staticmethod
    def supports(metric: MetricWrapperBase) -> bool:
        return (
            type(metric) in (Counter, Gauge, Histogram)
            and bool(getattr(metric, "_labelnames", ()))
            and isinstance(getattr(metric, "_metrics", None), dict)
            and getattr(metric, "_multiprocess_mode", "all") in ("all", "")
        )

    def _labels(self, values: tuple[str, ...]) -> str:
        text = self._label_strings.get(values)
        if text is None:
            text = ",".join(
                f'{name}="{escape_label_value(value)}"'
                for name, value in sorted(zip(self._labelnames, values, strict=True))
            )
            self._label_strings[values] = text
        return text

    def render_text(self, out: list[str]) -> None:
        out.append(self._header)
        metric = self._metric
        with metric._lock:
            children = cast(list[tuple[tuple[str, ...], Any]], list(metric._metrics.items()))
        if len(self._label_strings) > 2 * len(children) + 64:
            live = {values for values, _ in children}
            self._label_strings = {k: v for k, v in self._label_strings.items() if k in live}
        name = self._name
        if self._kind == "histogram":
            for values, child in children:
                labels = self._labels(values)
                prefix = f"{name}_bucket{{{labels},"
                total = 0.0
                for bucket_label, bucket in zip(self._bucket_labels, child._buckets, strict=True):
                    total += bucket.get()
                    out.append(f"{prefix}{bucket_label}}} {_format_value(total)}\n")
                out.append(f"{name}_count{{{labels}}} {_format_value(total)}\n")
                out.append(f"{name}_sum{{{labels}}} {_format_value(child._sum.get())}\n")
        else:
            sample_name = name + "_total" if self._kind == "counter" else name
            for values, child in children:
                out.append(f"{sample_name}{{{self._labels(values)}}} {_format_value(child._value.get())}\n")


class Exposition:
    """Renders a registry: known metric objects fast, everything else through generate_latest."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self._registry = registry
        self._fast: dict[int, _FastMetric] = {}
        self._lock = threading.Lock()

    def _plan(self) -> tuple[list[RendersText], list[Collector]]:
        try:
            with self._registry._lock:
                collectors = list(self._registry._collector_to_names)
        except AttributeError:
            return [], [self._registry]
        fast: list[RendersText] = []
        slow: list[Collector] = []
        for collector in collectors:
            if isinstance(collector, RendersText):
                fast.append(collector)
            elif isinstance(collector, MetricWrapperBase) and _FastMetric.supports(collector):
                renderer = self._fast.get(id(collector))
                if renderer is None:
                    renderer = self._fast[id(collector)] = _FastMetric(collector)
                fast.append(renderer)
            else:
                slow.append(collector)
        return fast, slow

    def render(self) -> bytes:
        with self._lock:
            fast, slow = self._plan()
            out: list[str] = []
            for renderer in fast:
                renderer.render_text(out)
        rest = generate_latest(cast(CollectorRegistry, _Collectors(slow))) if slow else b""
        return "".join(out).encode() + rest


_default = Exposition()


def render_latest() -> bytes:
    """The default registry in the Prometheus text format (serve with CONTENT_TYPE)."""
    return _default.render()
