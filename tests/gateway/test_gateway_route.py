"""The HTTPRoute carries exactly the headers `callplatform csp --all-headers` prints, per scope."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from gateway_platforms import gateway_manifest, gateway_platform, manifest_file

from callplatform.cli import main
from callplatform.commands.csp import SCOPES
from callplatform.model import parse_platform
from callplatform.render import render_platform
from callplatform.render.gateway_route import SCOPE_PATHS, render_gateway_route, route_headers

SECRETS = {"calls-secrets": {"DATABASE_URL": "postgresql://u:p@127.0.0.1/db", "JITSI_JWT_SECRET": "x" * 40}}


def csp_all_headers(path: str, scope: str, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    assert main(["csp", "--allow-missing-secrets", path, "--all-headers", "--scope", scope]) == 0
    lines = capsys.readouterr().out.splitlines()
    return dict(line.split(": ", 1) for line in lines)


@pytest.mark.parametrize("environment", ["production", "development"])
def test_route_filters_are_what_csp_all_headers_prints(
    environment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = gateway_manifest(environment=environment)
    path = manifest_file(tmp_path, manifest)
    route = render_gateway_route(parse_platform(manifest))
    assert route is not None
    served = route_headers(route)
    assert set(served) == set(SCOPES)
    for scope in SCOPES:
        printed = csp_all_headers(path, scope, capsys)
        assert served[scope] == printed, scope
        # Order too: a reviewer diffing `kubectl get httproute -o yaml` with the CLI sees the same list.
        assert list(served[scope]) == list(printed), scope


def test_scopes_differ_where_the_checklist_says() -> None:
    served = route_headers(render_gateway_route(gateway_platform()) or {})
    assert served["/chat"]["X-Frame-Options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in served["/chat"]["Content-Security-Policy"]
    assert served["default"]["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in served["default"]["Content-Security-Policy"]
    assert 'camera=(self "https://meet.calls.test")' in served["/call"]["Permissions-Policy"]
    assert "camera=()" in served["default"]["Permissions-Policy"]
    assert served["default"]["Strict-Transport-Security"].startswith("max-age=")


def test_route_shape_parents_hostname_backend() -> None:
    route = render_gateway_route(gateway_platform())
    assert route is not None
    spec = route["spec"]
    assert spec["hostnames"] == ["app.calls.test"]
    assert spec["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "public",
            "namespace": "gateways",
            "sectionName": "https",
        }
    ]
    paths = [rule["matches"][0]["path"] for rule in spec["rules"]]
    assert paths == [{"type": "PathPrefix", "value": p} for p in SCOPE_PATHS.values()]
    for rule in spec["rules"]:
        assert rule["backendRefs"][0]["name"] == "prod-calls"
        assert rule["backendRefs"][0]["port"] == 3000
        # Gateway API allows at most 16 headers per modifier.
        assert len(rule["filters"][0]["responseHeaderModifier"]["set"]) <= 16
    assert route["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "callplatform-operator"


def test_parent_ref_shorthand_and_opt_in() -> None:
    short = gateway_platform(gateway={"parentRef": {"name": "edge"}, "hostname": "a.test"})
    route = render_gateway_route(short)
    assert route is not None
    assert route["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "edge"}
    ]
    # No parent: no route (probe-only, or nothing at all).
    assert render_gateway_route(gateway_platform(gateway={"hostname": "a.test"})) is None
    assert render_gateway_route(gateway_platform(gateway={})) is None
    assert render_platform(gateway_platform(gateway={}), SECRETS).gateway_route is None


def test_route_is_among_the_rendered_objects() -> None:
    """`callplatform render` prints objects(), so the route shows up offline too."""
    kinds = [manifest["kind"] for manifest in render_platform(gateway_platform(), SECRETS).objects()]
    assert kinds.count("HTTPRoute") == 1


def test_malformed_parent_refs_are_reported_not_raised() -> None:
    platform = gateway_platform(gateway={"parentRefs": [{"namespace": "x"}], "hostname": "a.test"})
    assert ("spec.gateway.parentRefs[0].name", "is required") in platform.malformed
    assert render_gateway_route(platform) is None
    bad = gateway_platform(gateway={"parentRefs": "edge"})
    assert ("spec.gateway.parentRefs", "must be a list") in bad.malformed


def test_csp_output_parses_into_header_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The comparison above is only as good as the parse: every printed line became a header."""
    path = manifest_file(tmp_path, gateway_manifest())
    assert main(["csp", "--allow-missing-secrets", path, "--all-headers"]) == 0
    out = io.StringIO(capsys.readouterr().out).read().splitlines()
    assert len(out) == len(csp_all_headers(path, "default", capsys)) >= 6
