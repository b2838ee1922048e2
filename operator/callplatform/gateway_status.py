"""GatewayRouteReady from the HTTPRoute the API server returned (pure).

Without a Gateway controller nobody fills in `status.parents`: the route is then
applied but unjudged, and SecurityHeadersServed (the headers probe) is what proves
the headers reach browsers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callplatform.conditions import FALSE, GATEWAY_ROUTE_READY, TRUE, ConditionState

NOT_INSTALLED = "GatewayAPINotInstalled"


def not_installed_state(route_name: str) -> ConditionState:
    """The cluster does not serve HTTPRoute: say so, and let the rest of the platform run."""
    return ConditionState(
        GATEWAY_ROUTE_READY,
        FALSE,
        NOT_INSTALLED,
        f"HTTPRoute {route_name} was not applied: this cluster does not serve gateway.networking.k8s.io/v1 "
        "HTTPRoute. Install the Gateway API standard-channel CRDs (and a Gateway controller); "
        "everything else of the platform is applied.",
        gates_ready=False,
    )


def rejected_state(route_name: str, detail: str) -> ConditionState:
    return ConditionState(
        GATEWAY_ROUTE_READY,
        FALSE,
        "RouteRejected",
        f"The API server rejected HTTPRoute {route_name}: {detail}",
    )


def _parent_label(parent: Mapping[str, Any]) -> str:
    ref = parent.get("parentRef") or {}
    namespace = f"{ref['namespace']}/" if ref.get("namespace") else ""
    return f"Gateway {namespace}{ref.get('name', '?')}"


def route_state(route: Mapping[str, Any]) -> ConditionState:
    """Accepted by every parent that reported: True; refused by one: False naming it."""
    name = str(route.get("metadata", {}).get("name", ""))
    parents = (route.get("status") or {}).get("parents") or []
    accepted = []
    for parent in parents:
        for condition in parent.get("conditions") or []:
            if condition.get("type") not in ("Accepted", "ResolvedRefs"):
                continue
            if condition.get("status") == "False":
                return ConditionState(
                    GATEWAY_ROUTE_READY,
                    FALSE,
                    "RouteNotAccepted" if condition["type"] == "Accepted" else "RouteRefsNotResolved",
                    f"{_parent_label(parent)} reports {condition['type']}=False on HTTPRoute {name} "
                    f"({condition.get('reason', '')}): {condition.get('message', '')}",
                )
            if condition.get("type") == "Accepted" and condition.get("status") == "True":
                accepted.append(_parent_label(parent))
    if accepted:
        return ConditionState(
            GATEWAY_ROUTE_READY, TRUE, "RouteAccepted", f"HTTPRoute {name} accepted by {', '.join(accepted)}."
        )
    return ConditionState(
        GATEWAY_ROUTE_READY,
        TRUE,
        "RouteApplied",
        f"HTTPRoute {name} is applied; no Gateway controller has reported on it yet.",
    )
