"""The Gateway API HTTPRoute that serves the calls backend with its security headers.

One rule per header scope (`/chat`, `/call`, everything else), each with a
`ResponseHeaderModifier` filter that sets exactly the headers of that scope from
`security_headers`, the function `callplatform csp --all-headers` prints. The
Gateway picks the rule with the longest matching path prefix, so the rules'
order does not matter; `PathPrefix /call` matches `/call` and `/call/x`, not `/callback`.
"""

from __future__ import annotations

from typing import Any

from callplatform.model import Platform
from callplatform.render.labels import metadata, object_name
from callplatform.render.security_headers import CALL_SCOPE, CHAT_SCOPE, security_headers
from callplatform.render.workloads import calls_name

GATEWAY_API_GROUP = "gateway.networking.k8s.io"
HTTPROUTE_API_VERSION = f"{GATEWAY_API_GROUP}/v1"
HTTPROUTE_KIND = "HTTPRoute"
HTTPROUTE_PLURAL = "httproutes"
# Scope -> path prefix of its rule. The default scope catches everything the other two do not.
SCOPE_PATHS = {"default": "/", CALL_SCOPE: CALL_SCOPE, CHAT_SCOPE: CHAT_SCOPE}


def gateway_route_name(platform: Platform) -> str:
    return object_name(platform, "calls")


def _parent_ref(platform: Platform, index: int) -> dict[str, Any]:
    ref = platform.gateway.parent_refs[index]
    parent: dict[str, Any] = {"group": GATEWAY_API_GROUP, "kind": "Gateway", "name": ref.name}
    if ref.namespace:
        parent["namespace"] = ref.namespace
    if ref.section_name:
        parent["sectionName"] = ref.section_name
    return parent


def _rule(platform: Platform, path: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "matches": [{"path": {"type": "PathPrefix", "value": path}}],
        "filters": [
            {
                "type": "ResponseHeaderModifier",
                "responseHeaderModifier": {
                    "set": [{"name": name, "value": value} for name, value in headers.items()]
                },
            }
        ],
        "backendRefs": [
            {
                "group": "",
                "kind": "Service",
                "name": calls_name(platform),
                "port": platform.calls.port,
                "weight": 1,
            }
        ],
    }


def route_headers(route: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Scope -> the headers a rendered (or live) HTTPRoute sets for it: what a test compares."""
    by_path = {path: scope for scope, path in SCOPE_PATHS.items()}
    result: dict[str, dict[str, str]] = {}
    for rule in route.get("spec", {}).get("rules", []):
        path = rule["matches"][0]["path"]["value"]
        for filter_ in rule.get("filters", []):
            if filter_.get("type") == "ResponseHeaderModifier":
                entries = filter_["responseHeaderModifier"].get("set", [])
                result[by_path[path]] = {entry["name"]: entry["value"] for entry in entries}
    return result


def render_gateway_route(platform: Platform) -> dict[str, Any] | None:
    """The HTTPRoute, or None when spec.gateway names no parent Gateway (the route is opt-in)."""
    gateway = platform.gateway
    if not gateway.route_enabled:
        return None
    headers = security_headers(platform)
    spec: dict[str, Any] = {
        "parentRefs": [_parent_ref(platform, index) for index in range(len(gateway.parent_refs))],
        "rules": [_rule(platform, path, headers[scope]) for scope, path in SCOPE_PATHS.items()],
    }
    if gateway.hostname:
        spec["hostnames"] = [gateway.hostname]
    return {
        "apiVersion": HTTPROUTE_API_VERSION,
        "kind": HTTPROUTE_KIND,
        "metadata": metadata(platform, gateway_route_name(platform), "calls"),
        "spec": spec,
    }
