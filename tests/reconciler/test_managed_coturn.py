"""A managed coturn (spec.turn.server): what is rendered, and how a pass judges and applies it."""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

from reconciler_fake_kube import FakeKube, bring_up
from reconciler_managed_coturn import TLS_SECRET, managed_manifest, tls_secret_manifest
from reconciler_platforms import STRONG_SECRETS, platform_manifest, secret_manifest

from callplatform.model import parse_platform
from callplatform.probes.targets import TurnAllocateTarget, TurnBindingTarget, coturn_targets
from callplatform.reconcile import Reconciler
from callplatform.render import render_platform
from callplatform.render.coturn_server import CHECKSUM_ANNOTATION, TLS_DIR
from callplatform.render.turnserver import DENIED_PEER_NETWORKS
from callplatform.rules import check_platform

NS = "calls-ns"
SECRETS = {"calls-secrets": dict(STRONG_SECRETS)}
TLS = {"tls.crt": "-----BEGIN CERTIFICATE-----\nMIIB\n", "tls.key": "-----BEGIN PRIVATE KEY-----\nMIIE\n"}


def _render(manifest: dict[str, Any], *, secrets: Any = None, tls: Any = TLS, monitor: bool = False) -> Any:
    platform = parse_platform(
        {**manifest, "metadata": {**manifest["metadata"], "namespace": NS, "uid": "u1"}}
    )
    return render_platform(platform, secrets or SECRETS, turn_tls=tls, service_monitor=monitor)


def _kinds(desired: Any) -> list[str]:
    return [f"{o['kind']}/{o['metadata']['name']}" for o in desired.objects()]


def _pod(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def test_external_coturn_stays_the_default() -> None:
    desired = _render(platform_manifest())
    assert desired.coturn is None
    assert not any("coturn" in name for name in _kinds(desired))


def test_managed_deployment_renders_workload_service_pdb_and_network_policy() -> None:
    desired = _render(managed_manifest())
    assert {"Deployment/calls-coturn", "Service/calls-coturn", "PodDisruptionBudget/calls-coturn",
            "NetworkPolicy/calls-coturn"} <= set(_kinds(desired))  # fmt: skip
    assert not any(o["kind"] == "ServiceMonitor" for o in desired.objects())
    workload = desired.coturn.workload
    assert workload["spec"]["replicas"] == 2
    for manifest in desired.coturn.objects():
        assert manifest["metadata"]["ownerReferences"][0]["uid"] == "u1"
    pod = _pod(workload)
    container = pod["containers"][0]
    assert container["image"] == "coturn/coturn:4.6.3"
    assert container["command"] == ["turnserver"]
    assert container["args"][:2] == ["-c", "/etc/coturn/conf/turnserver.conf"]
    assert "--cert" in container["args"] and "--no-tls" not in container["args"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/etc/coturn/conf"]["readOnly"] and mounts[TLS_DIR]["readOnly"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["turn-conf"]["secret"]["secretName"] == "calls-turn"
    assert volumes["turn-tls"]["secret"]["secretName"] == TLS_SECRET
    assert "hostNetwork" not in pod
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    assert security["capabilities"] == {"drop": ["ALL"]} and pod["securityContext"]["runAsNonRoot"]
    assert pod["terminationGracePeriodSeconds"] == 300


def test_service_carries_udp_and_tcp_on_the_listening_and_tls_ports() -> None:
    service = _render(managed_manifest(service={"type": "NodePort"})).coturn.service
    assert service["spec"]["type"] == "NodePort"
    ports = {(p["port"], p["protocol"]) for p in service["spec"]["ports"]}
    assert ports == {(3478, "UDP"), (3478, "TCP"), (5349, "TCP"), (5349, "UDP")}
    without_tls = _render(managed_manifest(tls=False), tls=None).coturn
    assert {p["port"] for p in without_tls.service["spec"]["ports"]} == {3478}
    assert "--no-tls" in _pod(without_tls.workload)["containers"][0]["args"]


def test_daemonset_mode_uses_host_network_with_explicit_host_ports() -> None:
    workload = _render(managed_manifest(mode="DaemonSet")).coturn.workload
    assert workload["kind"] == "DaemonSet" and "replicas" not in workload["spec"]
    pod = _pod(workload)
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert all(p["hostPort"] == p["containerPort"] for p in pod["containers"][0]["ports"])


def test_image_digest_pins_the_image() -> None:
    digest = "sha256:" + "a" * 64
    workload = _render(managed_manifest(image={"tag": "4.6.3", "digest": digest})).coturn.workload
    assert _pod(workload)["containers"][0]["image"] == f"coturn/coturn:4.6.3@{digest}"


def test_checksum_changes_with_the_password_and_the_tls_secret_and_nothing_else() -> None:
    def checksum(**changes: Any) -> str:
        manifest = managed_manifest()
        if "image" in changes:
            manifest["spec"]["calls"]["image"] = changes["image"]
        secrets = {"calls-secrets": {**STRONG_SECRETS, **changes.get("secret", {})}}
        desired = _render(manifest, secrets=secrets, tls=changes.get("tls", TLS))
        annotation: str = desired.coturn.workload["spec"]["template"]["metadata"]["annotations"][
            CHECKSUM_ANNOTATION
        ]
        return annotation

    base = checksum()
    assert checksum() == base
    assert checksum(image="registry.example.com/calls-backend:9.9.9") == base
    assert checksum(secret={"JITSI_JWT_SECRET": "another-jwt-secret-of-sufficient-length-123"}) == base
    assert checksum(secret={"TURN_PASSWORD": "turn-Another-Password-8Kq2"}) != base
    assert checksum(tls={**TLS, "tls.crt": "-----BEGIN CERTIFICATE-----\nMIIC\n"}) != base


def test_network_policy_reaches_public_peers_allowed_cidrs_and_the_relay_range_only() -> None:
    manifest = managed_manifest()
    manifest["spec"]["turn"]["relay"] = {
        "allowedPeerCIDRs": ["203.0.113.0/24"],
        "minPort": 50000,
        "maxPort": 50100,
    }
    policy = _render(manifest).coturn.network_policy["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    blocks = [peer["ipBlock"] for rule in policy["egress"] for peer in rule["to"] if "ipBlock" in peer]
    public = {block["cidr"]: block.get("except", []) for block in blocks}
    assert set(public["0.0.0.0/0"]) | set(public["::/0"]) == set(DENIED_PEER_NETWORKS) - {"::ffff:0:0/96"}
    assert "203.0.113.0/24" in public
    for cidr, excepted in public.items():  # every exception lies inside its block, as the API requires
        network = ipaddress.ip_network(cidr)
        assert all(ipaddress.ip_network(e).subnet_of(network) for e in excepted)  # type: ignore[arg-type]
    relay = [rule for rule in policy["egress"] if "ports" in rule]
    assert relay == [
        {
            "to": [{"podSelector": policy["podSelector"]}],
            "ports": [{"protocol": "UDP", "port": 50000, "endPort": 50100}],
        }
    ]
    assert all("ports" not in rule or rule["ports"][0]["protocol"] == "UDP" for rule in policy["egress"])


def test_prometheus_listener_and_service_monitor_only_when_asked_and_served() -> None:
    off = _render(managed_manifest()).coturn
    assert off.metrics_service is None and off.service_monitor is None
    manifest = managed_manifest()
    manifest["spec"]["turn"]["prometheusPort"] = 9641
    on = _render(manifest).coturn
    ports = {p["name"]: p["containerPort"] for p in _pod(on.workload)["containers"][0]["ports"]}
    assert ports["metrics"] == 9641
    assert on.metrics_service is not None and on.service_monitor is None  # the CRD is not served
    assert 9641 not in {p["port"] for p in on.service["spec"]["ports"]}  # never on the public Service
    served = _render(manifest, monitor=True).coturn
    assert served.service_monitor is not None
    assert served.service_monitor["spec"]["selector"]["matchLabels"].items() <= (
        served.metrics_service["metadata"]["labels"].items()
    )


def test_probes_target_the_managed_service_unless_probe_host_is_set() -> None:
    platform = parse_platform({**managed_manifest(), "metadata": {"name": "calls", "namespace": NS}})
    targets = coturn_targets(platform, SECRETS)
    hosts = {t.endpoint.host for t in targets if isinstance(t, TurnBindingTarget | TurnAllocateTarget)}
    assert hosts == {f"calls-coturn.{NS}.svc"}
    explicit = managed_manifest()
    explicit["spec"]["turn"]["probeHost"] = "turn-probe.example.com"
    platform = parse_platform({**explicit, "metadata": {"name": "calls", "namespace": NS}})
    targets = coturn_targets(platform, SECRETS)
    assert {t.endpoint.host for t in targets if isinstance(t, TurnBindingTarget)} == {
        "turn-probe.example.com"
    }


def test_rules_judge_the_server_spec_only_when_managed() -> None:
    bad = managed_manifest(image={"tag": "latest", "digest": "sha256:nothex"}, mode="Pod")
    findings = {(f.rule, f.field) for f in check_platform(parse_platform(bad), SECRETS)}
    assert ("CP011", "spec.turn.server.mode") in findings
    assert ("CP011", "spec.turn.server.image.digest") in findings
    unpinned = managed_manifest(image={"tag": "latest"})
    assert ("CP018", "spec.turn.server.image.tag") in {
        (f.rule, f.field) for f in check_platform(parse_platform(unpinned), SECRETS)
    }
    external = platform_manifest()
    external["spec"]["turn"]["server"] = {"managed": False, "mode": "Pod"}
    assert not any(
        f.field.startswith("spec.turn.server") for f in check_platform(parse_platform(external), SECRETS)
    )


# --- the reconcile pass, on the in-memory API ------------------------------------------------


def _namespace(level: str = "") -> dict[str, Any]:
    labels = {"pod-security.kubernetes.io/enforce": level} if level else {}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": labels}}


def _up(kube: FakeKube, reconciler: Reconciler, manifest: dict[str, Any], *extra: dict[str, Any]) -> None:
    manifest = copy.deepcopy(manifest)
    manifest["metadata"]["namespace"] = NS
    bring_up(kube, reconciler, NS, secret_manifest(STRONG_SECRETS, namespace=NS), *extra, manifest)


def _condition(kube: FakeKube, condition: str) -> dict[str, Any]:
    platform = kube.obj("CallPlatform", NS, "calls") or {}
    return next(c for c in platform["status"]["conditions"] if c["type"] == condition)


def _make_available(kube: FakeKube, kind: str) -> None:
    workload = kube.obj(kind, NS, "calls-coturn")
    assert workload is not None
    generation = workload["metadata"]["generation"]
    if kind == "Deployment":
        kube.make_deployment_available(NS, "calls-coturn")
    else:
        workload["status"] = {"observedGeneration": generation, "desiredNumberScheduled": 3,
                              "numberAvailable": 3, "updatedNumberScheduled": 3}  # fmt: skip


def test_pass_applies_coturn_and_gates_ready_on_it(kube: FakeKube, reconciler: Reconciler) -> None:
    _up(kube, reconciler, managed_manifest(), tls_secret_manifest("cert", "key", namespace=NS))
    assert _condition(kube, "TurnServerReady")["reason"] == "TurnServerProgressing"
    assert _condition(kube, "Ready")["status"] == "False"
    for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy", "Deployment"):
        assert kube.obj(kind, NS, "calls-coturn") is not None, kind
    _make_available(kube, "Deployment")
    reconciler.reconcile(NS, "calls")
    assert _condition(kube, "TurnServerReady")["status"] == "True"
    assert _condition(kube, "Ready")["status"] == "True"
    writes = len(kube.writes)
    reconciler.reconcile(NS, "calls")
    assert kube.writes[writes:] == []  # an idle pass writes nothing, the coturn objects included


def test_missing_tls_secret_is_a_condition_not_a_stuck_pod(kube: FakeKube, reconciler: Reconciler) -> None:
    _up(kube, reconciler, managed_manifest())
    state = _condition(kube, "TurnServerReady")
    assert (state["status"], state["reason"]) == ("False", "TlsSecretMissing")
    assert TLS_SECRET in state["message"]
    assert kube.obj("Deployment", NS, "calls-coturn") is None
    assert any(e["reason"] == "TlsSecretMissing" for e in kube.events)
    kube.put(tls_secret_manifest("cert", "key", namespace=NS))
    reconciler.reconcile(NS, "calls")
    assert kube.obj("Deployment", NS, "calls-coturn") is not None


def test_host_network_in_a_restricted_namespace_is_refused_with_a_reason(
    kube: FakeKube, reconciler: Reconciler
) -> None:
    kube.put(_namespace("baseline"))
    _up(kube, reconciler, managed_manifest(mode="DaemonSet"), tls_secret_manifest("c", "k", namespace=NS))
    state = _condition(kube, "TurnServerReady")
    assert (state["status"], state["reason"]) == ("False", "PodSecurityForbidsHostNetwork")
    assert "'baseline'" in state["message"] and "privileged" in state["message"]
    assert kube.obj("DaemonSet", NS, "calls-coturn") is None
    kube.put(_namespace("privileged"))
    reconciler.reconcile(NS, "calls")
    _make_available(kube, "DaemonSet")
    reconciler.reconcile(NS, "calls")
    assert _condition(kube, "TurnServerReady")["status"] == "True"


def test_tls_secret_is_watched_through_the_secret_index(kube: FakeKube, reconciler: Reconciler) -> None:
    manifest = managed_manifest()
    manifest["metadata"]["namespace"] = NS
    kube.put(secret_manifest(STRONG_SECRETS, namespace=NS))
    kube.put(manifest)
    result = reconciler.reconcile(NS, "calls")
    assert TLS_SECRET in result.referenced_secrets
