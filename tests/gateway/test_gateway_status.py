"""GatewayRouteReady from what Gateway controllers write into the HTTPRoute's status."""

from __future__ import annotations

from typing import Any

from callplatform.conditions import FALSE, TRUE
from callplatform.gateway_status import NOT_INSTALLED, not_installed_state, route_state


def route(*parents: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "prod-calls"}, "status": {"parents": list(parents)}}


def parent(name: str, **conditions: str) -> dict[str, Any]:
    return {
        "parentRef": {"name": name, "namespace": "gateways"},
        "controllerName": "example.test/gateway",
        "conditions": [
            {"type": t, "status": s, "reason": "R" + t, "message": f"{t} is {s}"}
            for t, s in conditions.items()
        ],
    }


def test_no_controller_yet_is_applied_not_accepted() -> None:
    state = route_state({"metadata": {"name": "prod-calls"}})
    assert (state.status, state.reason) == (TRUE, "RouteApplied")
    assert "no Gateway controller" in state.message


def test_accepted_by_every_parent() -> None:
    state = route_state(
        route(parent("a", Accepted="True", ResolvedRefs="True"), parent("b", Accepted="True"))
    )
    assert (state.status, state.reason) == (TRUE, "RouteAccepted")
    assert "gateways/a" in state.message and "gateways/b" in state.message


def test_one_refusing_parent_fails_naming_it() -> None:
    state = route_state(route(parent("a", Accepted="True"), parent("b", Accepted="False")))
    assert (state.status, state.reason) == (FALSE, "RouteNotAccepted")
    assert "Gateway gateways/b" in state.message and "RAccepted" in state.message
    refs = route_state(route(parent("a", Accepted="True", ResolvedRefs="False")))
    assert (refs.status, refs.reason) == (FALSE, "RouteRefsNotResolved")


def test_not_installed_does_not_gate_ready() -> None:
    state = not_installed_state("prod-calls")
    assert (state.status, state.reason, state.gates_ready) == (FALSE, NOT_INSTALLED, False)
    assert "Gateway API standard-channel CRDs" in state.message
