"""In-memory health of every monitored platform, per component (jitsi, coturn).

The scheduler writes probe results here; the reconciler reads `component_health`
to set `JitsiHealthy`/`CoturnHealthy`, and the HTTP server serves it as JSON.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from callplatform.probes.jitsi_degraded import DEGRADED_COMPONENT, degraded_verdict, is_advisory
from callplatform.probes.result import PROBE_ORDER, ProbeResult

HEALTHY_REASON = "ProbesSucceeded"
_COMPONENT_PREFIX = {"coturn": "Turn", "coturn_acl": "Turn", "jitsi": "Jitsi"}


def camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.replace("-", "_").split("_") if part)


def condition_reason(result: ProbeResult) -> str:
    """e.g. TurnAllocateAuthFailed, JitsiJvbTimeout."""
    prefix = _COMPONENT_PREFIX.get(result.component, camel(result.component))
    return f"{prefix}{camel(result.probe)}{camel(result.reason or 'failed')}"


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    healthy: bool
    reason: str  # CamelCase, for a condition
    message: str  # no secret, stable between rounds unless something changed
    checked_at: float  # Unix time of the round
    probes: tuple[ProbeResult, ...] = ()

    def same_verdict(self, other: ComponentHealth | None) -> bool:
        return other is not None and (self.healthy, self.reason, self.message) == (
            other.healthy,
            other.reason,
            other.message,
        )


def _order(component: str, probe: str) -> int:
    order = PROBE_ORDER.get(component, ())
    return order.index(probe) if probe in order else len(order)


def summarise(component: str, results: Sequence[ProbeResult], checked_at: float) -> ComponentHealth:
    """The first failing probe (in PROBE_ORDER) decides the reason."""
    ordered = tuple(sorted(results, key=lambda r: _order(component, r.probe)))
    failing = [r for r in ordered if not r.success and not is_advisory(r.probe)]
    if not failing:
        return ComponentHealth(True, HEALTHY_REASON, f"{len(ordered)} probes succeeded", checked_at, ordered)
    first = failing[0]
    more = f" (and {len(failing) - 1} more failing)" if len(failing) > 1 else ""
    return ComponentHealth(
        False, condition_reason(first), f"{first.probe}: {first.message}{more}", checked_at, ordered
    )


class HealthRegistry:
    def __init__(self) -> None:
        self._health: dict[tuple[str, str], dict[str, ComponentHealth]] = {}
        self._lock = threading.Lock()

    def update(
        self, namespace: str, name: str, component: str, results: Sequence[ProbeResult], checked_at: float
    ) -> bool:
        """Record a round's results; True when the component's verdict changed (or is new)."""
        health = summarise(component, results, checked_at)
        with self._lock:
            components = self._health.setdefault((namespace, name), {})
            changed = not health.same_verdict(components.get(component))
            components[component] = health
            if component == "jitsi":
                changed |= self._update_degraded(components, results, checked_at)
        return changed

    @staticmethod
    def _update_degraded(
        components: dict[str, ComponentHealth], results: Sequence[ProbeResult], checked_at: float
    ) -> bool:
        """JitsiDegraded's verdict, kept as its own entry: `healthy` False means degraded."""
        verdict = degraded_verdict(results)
        if verdict is None:
            return components.pop(DEGRADED_COMPONENT, None) is not None
        entry = ComponentHealth(not verdict.degraded, verdict.reason, verdict.message, checked_at)
        changed = not entry.same_verdict(components.get(DEGRADED_COMPONENT))
        components[DEGRADED_COMPONENT] = entry
        return changed

    def component_health(self, namespace: str, name: str, component: str) -> ComponentHealth | None:
        with self._lock:
            return self._health.get((namespace, name), {}).get(component)

    def platforms(self) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(self._health)

    def platform_count(self) -> int:
        """How many platforms it holds; safe from any thread (one len(), no iteration)."""
        return len(self._health)

    def remove(self, namespace: str, name: str) -> None:
        with self._lock:
            self._health.pop((namespace, name), None)

    def remove_component(self, namespace: str, name: str, component: str) -> None:
        with self._lock:
            components = self._health.get((namespace, name), {})
            components.pop(component, None)
            if component == "jitsi":
                components.pop(DEGRADED_COMPONENT, None)
