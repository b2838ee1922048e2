"""Status conditions as pure functions: the full list, rebuilt on every pass.

`lastTransitionTime` is carried over from the previous list unless the status
changed, and `Ready` is the conjunction of every condition that gates it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"

READY = "Ready"
SECRETS_VALID = "SecretsValid"
TURN_CONFIGURED = "TurnConfigured"
TURN_SERVER_READY = "TurnServerReady"  # only with spec.turn.server.managed
MIGRATIONS_COMPLETE = "MigrationsComplete"
DEPLOYMENT_AVAILABLE = "DeploymentAvailable"
JITSI_HEALTHY = "JitsiHealthy"
JITSI_DEGRADED = "JitsiDegraded"  # never gates Ready
COTURN_HEALTHY = "CoturnHealthy"
COTURN_SECURE = "CoturnSecure"  # the ACL probe: TURN refuses internal peers
GATEWAY_ROUTE_READY = "GatewayRouteReady"
SECURITY_HEADERS_SERVED = "SecurityHeadersServed"

# The order `kubectl describe` shows them in.
CONDITION_ORDER = (
    READY,
    SECRETS_VALID,
    TURN_CONFIGURED,
    TURN_SERVER_READY,
    MIGRATIONS_COMPLETE,
    DEPLOYMENT_AVAILABLE,
    JITSI_HEALTHY,
    JITSI_DEGRADED,
    COTURN_HEALTHY,
    COTURN_SECURE,
    GATEWAY_ROUTE_READY,
    SECURITY_HEADERS_SERVED,
)


@dataclass(frozen=True, slots=True)
class ConditionState:
    type: str
    status: str
    reason: str
    message: str
    gates_ready: bool = True


def ready_condition(states: Iterable[ConditionState]) -> ConditionState:
    """True only when every gating condition is True; otherwise names the ones that are not."""
    blocking = [state for state in states if state.gates_ready and state.status != TRUE]
    if not blocking:
        return ConditionState(READY, TRUE, "AllConditionsMet", "All conditions are met.")
    first = blocking[0]
    names = ", ".join(f"{state.type}={state.status} ({state.reason})" for state in blocking)
    return ConditionState(READY, FALSE, first.reason, f"Not ready: {names}.")


def build_conditions(
    states: Sequence[ConditionState],
    previous: Sequence[Mapping[str, Any]],
    *,
    generation: int,
    now: str,
) -> list[dict[str, Any]]:
    """The full `status.conditions` list, Ready first, with transition times carried over."""
    all_states = [ready_condition(states), *states]
    by_type = {state.type: state for state in all_states}
    ordered = [by_type[t] for t in CONDITION_ORDER if t in by_type]
    ordered += [state for state in all_states if state.type not in CONDITION_ORDER]
    previous_by_type = {str(c.get("type")): c for c in previous if isinstance(c, Mapping)}
    conditions = []
    for state in ordered:
        before = previous_by_type.get(state.type)
        unchanged = before is not None and before.get("status") == state.status
        transition = str(before.get("lastTransitionTime")) if unchanged and before else now
        conditions.append(
            {
                "type": state.type,
                "status": state.status,
                "reason": state.reason,
                "message": state.message,
                "observedGeneration": generation,
                "lastTransitionTime": transition,
            }
        )
    return conditions


@dataclass(frozen=True, slots=True)
class Transition:
    type: str
    status: str
    reason: str
    message: str
    previous_status: str | None


def transitions(
    previous: Sequence[Mapping[str, Any]], current: Sequence[Mapping[str, Any]]
) -> list[Transition]:
    """Conditions whose status or reason changed: the only moments worth an Event."""
    before = {str(c.get("type")): c for c in previous if isinstance(c, Mapping)}
    changed = []
    for condition in current:
        old = before.get(condition["type"])
        if (
            old is not None
            and old.get("status") == condition["status"]
            and old.get("reason") == condition["reason"]
        ):
            continue
        changed.append(
            Transition(
                type=condition["type"],
                status=condition["status"],
                reason=condition["reason"],
                message=condition["message"],
                previous_status=None if old is None else str(old.get("status")),
            )
        )
    return changed


def condition_statuses(conditions: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    return {str(c["type"]): str(c["status"]) for c in conditions}
