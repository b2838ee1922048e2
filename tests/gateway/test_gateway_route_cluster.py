"""On the real API server: without the Gateway API CRDs a pass reports GatewayAPINotInstalled and applies
everything else, and a running operator stays healthy; with the standard-channel CRDs the HTTPRoute is
accepted (its CEL rules included), carries exactly what `callplatform csp --all-headers` prints, and is
watched: the operator puts back a deleted or edited route at once, not after the 5-minute memo."""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway_api import pinned_version, standard_crds

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reconciler"))
from reconciler_operator import OperatorProcess, condition_is, get_json, http_status, wait_for
from reconciler_platforms import STRONG_SECRETS, platform_manifest, secret_manifest

from callplatform.cli import main
from callplatform.commands.csp import SCOPES
from callplatform.kube import Kube, KubeError
from callplatform.model import parse_platform
from callplatform.reconcile import Reconciler
from callplatform.render.gateway_route import render_gateway_route, route_headers

pytestmark = pytest.mark.cluster

HTTPROUTE_CRD = "httproutes.gateway.networking.k8s.io"
GATEWAY = {"parentRefs": [{"name": "public", "sectionName": "https"}], "hostname": "app.calls.test"}
# Far beyond every deadline below: a route put back in time came from the watch, not a resync.
NO_RESYNC = "3600"
REPAIR_DEADLINE_SECONDS = 30.0


def platform(namespace: str) -> dict[str, Any]:
    manifest = platform_manifest(namespace=namespace)
    manifest["spec"]["gateway"] = copy.deepcopy(GATEWAY)
    manifest["spec"]["gateway"]["headersProbe"] = {"enabled": False}  # nothing here serves the host
    return manifest


def create(kube_cluster: Any, namespace: str) -> dict[str, Any]:
    manifest = platform(namespace)
    for document in (secret_manifest(STRONG_SECRETS, namespace=namespace), manifest):
        kube_cluster.kubectl("apply", "-f", "-", input=json.dumps(document))
    return manifest


def conditions(kube: Kube, namespace: str) -> dict[str, dict[str, Any]]:
    live = kube.get("callplatform.io/v1alpha1", "CallPlatform", namespace, "calls") or {}
    return {c["type"]: c for c in live["status"]["conditions"]}


def start_operator(kube_cluster: Any, log_dir: Path, *scope: str) -> OperatorProcess:
    return OperatorProcess(
        kube_cluster.kubeconfig, log_dir / "operator.log",
        *scope, "--resync-seconds", NO_RESYNC, "--standalone",
    )  # fmt: skip


def route_of(kube_cluster: Any, namespace: str) -> dict[str, Any] | None:
    return get_json(kube_cluster, "httproute", "calls-calls", "-n", namespace)


def delete_route_and_wait_until_back(kube_cluster: Any, namespace: str, operator: OperatorProcess) -> None:
    uid = (route_of(kube_cluster, namespace) or {})["metadata"]["uid"]
    kube_cluster.kubectl("-n", namespace, "delete", "httproute", "calls-calls", "--wait=true")
    back = wait_for(
        lambda: (found := route_of(kube_cluster, namespace)) is not None
        and found["metadata"]["uid"] != uid and found,
        "the deleted HTTPRoute put back", REPAIR_DEADLINE_SECONDS, operator,
    )  # fmt: skip
    assert back["spec"]["hostnames"] == ["app.calls.test"]


def wait_not_installed(kube_cluster: Any, namespace: str, operator: OperatorProcess) -> None:
    wait_for(
        lambda: condition_is(
            kube_cluster, namespace, "calls", "GatewayRouteReady", "False", "GatewayAPINotInstalled"
        ),
        "GatewayRouteReady=False/GatewayAPINotInstalled", 90, operator,
    )  # fmt: skip


def wait_healthy(operator: OperatorProcess) -> None:
    """/readyz 200 (every watch stream has run), then /healthz 200."""
    for path in ("/readyz", "/healthz"):
        wait_for(lambda p=path: http_status(operator.http_port, p) == 200, f"{path} 200", 90, operator)


@pytest.fixture(scope="module")
def gateway_api(kube_cluster: Any) -> Iterator[str]:
    """Installs the pinned standard channel, and removes it again so other tests see a plain cluster."""
    files = standard_crds()
    for path in files:
        kube_cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    kube_cluster.kubectl("wait", "--for=condition=Established", f"crd/{HTTPROUTE_CRD}", "--timeout=60s")
    try:
        yield pinned_version()
    finally:
        for path in files:
            kube_cluster.kubectl("delete", "-f", str(path), "--wait=true", "--ignore-not-found", check=False)


def test_without_the_crds_the_platform_runs_and_says_why(
    kube_cluster: Any, namespace: str, crd_installed: str, k8s_api: Any
) -> None:
    # Runs before the module fixture installs them (file order), and the fixture removes them again.
    assert kube_cluster.kubectl("get", "crd", HTTPROUTE_CRD, check=False).returncode != 0
    create(kube_cluster, namespace)
    kube = Kube(k8s_api)
    result = Reconciler(kube).reconcile(namespace, "calls")
    state = conditions(kube, namespace)["GatewayRouteReady"]
    assert (state["status"], state["reason"]) == ("False", "GatewayAPINotInstalled")
    assert "Gateway API standard-channel CRDs" in state["message"]
    assert "Service/calls-calls" in result.writes  # everything else was applied
    events = kube_cluster.kubectl("-n", namespace, "get", "events", "-o", "json").stdout
    assert "GatewayAPINotInstalled" in events


def test_without_the_crds_a_running_operator_stays_healthy_and_says_why(
    kube_cluster: Any, namespace: str, crd_installed: str, tmp_path: Path
) -> None:
    assert kube_cluster.kubectl("get", "crd", HTTPROUTE_CRD, check=False).returncode != 0
    create(kube_cluster, namespace)
    operator = start_operator(kube_cluster, tmp_path, "--namespace", namespace)
    try:
        wait_not_installed(kube_cluster, namespace, operator)
        wait_healthy(operator)  # the streams kopf left out (no CRD) are not missed
    finally:
        operator.stop()
    log = operator.log()
    assert "Traceback" not in log, log[-4000:]
    assert log.count("httproutes") <= 2, log[-4000:]  # kopf's one warning at start, no retry loop


def test_crds_installed_while_the_operator_runs_are_watched_in_all_namespaces_mode(
    kube_cluster: Any, namespace: str, crd_installed: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """kopf watches CRDs cluster-wide: the HTTPRoute stream starts without a restart, and the cache
    takes the kind over from the memo."""
    assert kube_cluster.kubectl("get", "crd", HTTPROUTE_CRD, check=False).returncode != 0
    create(kube_cluster, namespace)
    operator = start_operator(kube_cluster, tmp_path, "--all-namespaces")
    try:
        wait_not_installed(kube_cluster, namespace, operator)
        wait_healthy(operator)
        request.getfixturevalue("gateway_api")  # installs the CRDs now (and removes them after the module)
        wait_for(
            lambda: "HTTPRoute is watched now" in operator.log(), "kopf to watch HTTPRoutes", 60, operator
        )
        wait_healthy(operator)  # its stream counts now, and runs
        # A change of the platform asks for a pass: the route is applied now that the CRD is served.
        kube_cluster.kubectl("-n", namespace, "annotate", "callplatform", "calls", "touched=1")
        wait_for(lambda: route_of(kube_cluster, namespace), "the HTTPRoute", 60, operator)
        delete_route_and_wait_until_back(kube_cluster, namespace, operator)
        assert "resync: queued" not in operator.log()
    finally:
        operator.stop()
    # kopf warns on every CRD event while servicemonitors stay unresolved: each distinct text once.
    assert operator.log().count("Unresolved resources") <= 3, operator.log()[-4000:]


def test_route_is_accepted_and_carries_the_csp_cli_headers(
    kube_cluster: Any,
    namespace: str,
    crd_installed: str,
    gateway_api: str,
    k8s_api: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    manifest = create(kube_cluster, namespace)
    kube = Kube(k8s_api)
    reconciler = Reconciler(kube)
    first = reconciler.reconcile(namespace, "calls")
    assert "HTTPRoute/calls-calls" in first.writes
    state = conditions(kube, namespace)["GatewayRouteReady"]
    assert (state["status"], state["reason"]) == ("True", "RouteApplied")  # no Gateway controller here

    live = json.loads(
        kube_cluster.kubectl("-n", namespace, "get", "httproute", "calls-calls", "-o", "json").stdout
    )
    served = route_headers(live)
    path = tmp_path / "platform.yaml"
    # The Secret too: `csp` refuses to print headers for a platform that breaks a rule (CP010).
    secret = secret_manifest(STRONG_SECRETS, namespace=namespace)
    path.write_text(json.dumps(secret) + "\n---\n" + json.dumps(manifest))
    for scope in SCOPES:
        assert main(["csp", "--allow-missing-secrets", str(path), "--all-headers", "--scope", scope]) == 0
        printed = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
        assert served[scope] == printed, scope
    assert live["metadata"]["ownerReferences"][0]["kind"] == "CallPlatform"

    # The stored route reads back as rendered (server defaults included), so idle passes write nothing.
    second = reconciler.reconcile(namespace, "calls")
    assert not [w for w in second.writes if w.startswith("HTTPRoute")], second.writes


def test_the_crds_cel_rules_are_enforced(namespace: str, gateway_api: str, k8s_api: Any) -> None:
    """The accepted route passed real validation: the same route with a broken filter is refused by CEL."""
    route = render_gateway_route(parse_platform(platform(namespace)))
    assert route is not None
    broken = copy.deepcopy(route)
    broken["metadata"]["name"] = "broken"
    del broken["spec"]["rules"][0]["filters"][0]["responseHeaderModifier"]
    with pytest.raises(KubeError) as refused:
        Kube(k8s_api).apply(broken, None)
    assert refused.value.status == 422
    assert "responseHeaderModifier must be specified" in str(refused.value)


def test_a_deleted_or_edited_route_is_put_back_from_the_watch(
    kube_cluster: Any, namespace: str, crd_installed: str, gateway_api: str, tmp_path: Path
) -> None:
    create(kube_cluster, namespace)
    operator = start_operator(kube_cluster, tmp_path, "--namespace", namespace)

    def route() -> dict[str, Any] | None:
        return route_of(kube_cluster, namespace)

    try:
        wait_for(route, "the HTTPRoute", 90, operator)
        wait_healthy(operator)  # the HTTPRoute stream counts now, and runs
        delete_route_and_wait_until_back(kube_cluster, namespace, operator)

        patch = json.dumps({"spec": {"hostnames": ["elsewhere.calls.test"]}})
        kube_cluster.kubectl(
            "-n", namespace, "patch", "httproute", "calls-calls", "--type=merge", "-p", patch
        )
        wait_for(
            lambda: (found := route()) is not None and found["spec"]["hostnames"] == ["app.calls.test"],
            "the edited HTTPRoute put back", REPAIR_DEADLINE_SECONDS, operator,
        )  # fmt: skip
        assert "resync: queued" not in operator.log()  # no resync ran: the watch did it
        assert http_status(operator.http_port, "/healthz") == 200
    finally:
        operator.stop()
