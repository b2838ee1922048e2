"""The pure renderers: valid Kubernetes objects, no secret outside Secrets, restricted pods, CSP."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from reconciler_platforms import STRONG_SECRETS, platform_manifest

from callplatform.model import Platform, parse_platform
from callplatform.render import render_platform
from callplatform.render.labels import MAX_NAME_LENGTH, object_name
from callplatform.render.security_headers import content_security_policy, security_headers
from callplatform.render.turnserver import DENIED_PEER_NETWORKS, render_turnserver_conf
from callplatform.render.workloads import canonical_quantity

SECRETS = {"calls-secrets": dict(STRONG_SECRETS)}


def _platform(**changes: Any) -> Platform:
    manifest = platform_manifest(namespace="calls", environment=changes.pop("environment", "production"))
    manifest["metadata"]["uid"] = "0b4c7e2a-1111-2222-3333-444455556666"
    for path, value in changes.items():
        node = manifest["spec"]
        *parents, leaf = path.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return parse_platform(manifest)


def _objects(platform: Platform) -> list[dict[str, Any]]:
    return render_platform(platform, SECRETS).objects()


def test_every_object_is_valid_for_kubernetes_1_37() -> None:
    for manifest in _objects(_platform()):
        kubernetes_validate.validate(manifest, "1.37.0", strict=True)


def test_every_object_is_owned_and_labelled() -> None:
    for manifest in _objects(_platform()):
        meta = manifest["metadata"]
        assert meta["ownerReferences"][0]["kind"] == "CallPlatform"
        assert meta["ownerReferences"][0]["controller"] is True
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "callplatform-operator"
        assert meta["labels"]["app.kubernetes.io/instance"] == "calls"
        assert meta["name"].startswith("calls-")


def test_no_secret_value_outside_secrets() -> None:
    rendered = json.dumps([m for m in _objects(_platform()) if m["kind"] != "Secret"])
    for key, value in STRONG_SECRETS.items():
        if key != "TURN_USERNAME":  # "calls" is also the platform's name
            assert value not in rendered, key


def test_app_reads_secrets_only_through_secret_key_refs() -> None:
    deployment = next(m for m in _objects(_platform()) if m["kind"] == "Deployment")
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    for name in ("DATABASE_URL", "JITSI_JWT_SECRET", "TURN_USERNAME", "TURN_PASSWORD"):
        assert "value" not in env[name]
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "calls-secrets"
    assert env["JITSI_PUBLIC_HOST"]["value"] == "meet.example.com"
    assert env["TURN_HOST"]["value"] == "turn.example.com"
    assert env["ALLOW_DEMO_SEED"]["value"] == "false"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "npm",
        "run",
        "start:deploy",
    ]


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_pods_follow_the_restricted_profile(kind: str) -> None:
    workload = next(m for m in _objects(_platform()) if m["kind"] == kind)
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}


def test_migration_job_name_is_deterministic_and_follows_the_image() -> None:
    first = render_platform(_platform(), SECRETS).migration_job["metadata"]["name"]
    again = render_platform(_platform(), SECRETS).migration_job["metadata"]["name"]
    other = render_platform(_platform(calls__image="registry.example.com/calls-backend:2.0.0"), SECRETS)
    assert first == again
    assert first != other.migration_job["metadata"]["name"]
    assert first.startswith("calls-migrate-")
    job = render_platform(_platform(), SECRETS).migration_job
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "npx",
        "prisma",
        "migrate",
        "deploy",
    ]
    assert job["spec"]["ttlSecondsAfterFinished"] > 0


def test_demo_seed_job_only_outside_production() -> None:
    assert render_platform(_platform(demoSeed__enabled=True), SECRETS).demo_seed_job is None
    staging = render_platform(_platform(environment="staging", demoSeed__enabled=True), SECRETS)
    assert staging.demo_seed_job is not None
    assert render_platform(_platform(environment="staging"), SECRETS).demo_seed_job is None


def test_secrets_checksum_follows_every_referenced_value() -> None:
    base = render_platform(_platform(), SECRETS).secrets_checksum
    changed = {"calls-secrets": {**STRONG_SECRETS, "DATABASE_URL": STRONG_SECRETS["DATABASE_URL"] + "x"}}
    assert render_platform(_platform(), changed).secrets_checksum != base


def test_long_platform_names_give_valid_object_names() -> None:
    manifest = platform_manifest(name="a" * 60, namespace="calls")
    platform = parse_platform(manifest)
    objects = render_platform(platform, SECRETS).objects()
    names = [(m["kind"], m["metadata"]["name"]) for m in objects]
    assert all(len(name) <= MAX_NAME_LENGTH for _, name in names)
    assert len(set(names)) == len(names)
    assert object_name(platform, "calls") != object_name(platform, "turn")


def test_turnserver_conf_static_and_rest() -> None:
    static = render_turnserver_conf(_platform(), SECRETS)
    assert "lt-cred-mech" in static.splitlines()
    assert f"user=calls:{STRONG_SECRETS['TURN_PASSWORD']}" in static.splitlines()
    assert "use-auth-secret" not in static
    rest = render_turnserver_conf(
        _platform(turn__credentials__mode="rest"), {"calls-secrets": {"TURN_SHARED_SECRET": "s" * 40}}
    )
    assert "use-auth-secret" in rest.splitlines()
    assert f"static-auth-secret={'s' * 40}" in rest.splitlines()
    assert "lt-cred-mech" not in rest


INJECTION = "\nallowed-peer-ip=10.0.0.0-10.255.255.255"


@pytest.mark.parametrize(
    ("mode", "values"),
    [
        ("static", {"TURN_PASSWORD": STRONG_SECRETS["TURN_PASSWORD"] + INJECTION}),
        ("static", {"TURN_PASSWORD": STRONG_SECRETS["TURN_PASSWORD"] + "\n"}),
        ("static", {"TURN_PASSWORD": STRONG_SECRETS["TURN_PASSWORD"] + "\r"}),
        ("static", {"TURN_PASSWORD": STRONG_SECRETS["TURN_PASSWORD"] + "\x00"}),
        ("static", {"TURN_USERNAME": "calls" + INJECTION}),
        ("static", {"TURN_USERNAME": "calls:admin"}),
        ("rest", {"TURN_SHARED_SECRET": "s" * 40 + INJECTION}),
        ("rest", {"TURN_SHARED_SECRET": "s" * 40 + "\n"}),
    ],
)
def test_turnserver_conf_refuses_credentials_that_would_add_lines(mode: str, values: dict[str, str]) -> None:
    # Defence in depth behind CP017: the reconciler renders before its rules gate, so the renderer
    # does not raise; it writes no credential at all (long-term auth without a user admits nobody).
    secrets = {"calls-secrets": {**STRONG_SECRETS, "TURN_SHARED_SECRET": "s" * 40, **values}}
    conf = render_turnserver_conf(_platform(turn__credentials__mode=mode), secrets)
    lines = conf.splitlines()
    assert not any(line.startswith("allowed-peer-ip=") for line in lines)
    assert not any(line.startswith(("user=", "static-auth-secret=", "use-auth-secret")) for line in lines)
    assert "lt-cred-mech" in lines
    assert all(line.isprintable() for line in lines)
    for value in values.values():
        assert value.strip() not in conf
    assert STRONG_SECRETS["TURN_PASSWORD"] not in conf and "s" * 40 not in conf


def test_turnserver_conf_hardening_and_ranges() -> None:
    lines = render_turnserver_conf(
        _platform(turn__relay__allowedPeerCIDRs=["203.0.113.0/24"]), SECRETS
    ).splitlines()
    for option in (
        "no-cli",
        "no-multicast-peers",
        "fingerprint",
        "no-tlsv1",
        "no-tlsv1_1",
        "realm=turn.example.com",
    ):
        assert option in lines
    denied = [line for line in lines if line.startswith("denied-peer-ip=")]
    assert len(denied) == len(DENIED_PEER_NETWORKS)
    assert all("/" not in line for line in denied)  # coturn silently drops CIDR lines
    assert "denied-peer-ip=0.0.0.0-0.255.255.255" in lines
    assert "denied-peer-ip=169.254.0.0-169.254.255.255" in lines
    assert "allowed-peer-ip=203.0.113.0-203.0.113.255" in lines
    assert not any(line.startswith(("prometheus", "no-loopback-peers")) for line in lines)
    with_metrics = render_turnserver_conf(_platform(turn__prometheusPort=9641), SECRETS).splitlines()
    assert "prometheus" in with_metrics and "prometheus-port=9641" in with_metrics


def test_csp_pins_hosts_and_framing() -> None:
    headers = security_headers(_platform())
    default, chat, call = headers["default"], headers["/chat"], headers["/call"]
    csp = default["Content-Security-Policy"]
    assert "frame-src https://meet.example.com" in csp
    assert "https://turn.example.com" in csp
    assert "frame-ancestors 'none'" in csp
    assert "upgrade-insecure-requests" in csp
    assert "frame-ancestors 'self'" in chat["Content-Security-Policy"]
    assert chat["X-Frame-Options"] == "SAMEORIGIN" and default["X-Frame-Options"] == "DENY"
    assert default["Permissions-Policy"].startswith("camera=(), microphone=()")
    assert 'camera=(self "https://meet.example.com")' in call["Permissions-Policy"]
    assert "'unsafe-inline'" in csp
    strict = content_security_policy(_platform(calls__allowUnsafeInlineStyles=False))
    assert "'unsafe-inline'" not in strict


@pytest.mark.parametrize(
    ("spelled", "stored"),
    [
        (1, "1"), (0.5, "500m"), ("0.5", "500m"), ("1500m", "1500m"), ("1000m", "1"), (1000, "1k"),
        ("1024Mi", "1Gi"), ("1G", "1G"), ("1.5G", "1500M"), ("512Mi", "512Mi"), ("1.5Gi", "1536Mi"),
        ("0.5Ki", "512"), ("1e3", "1e3"), ("1.5e3", "1500"), ("100u", "1m"), ("0", "0"),
        ("not-a-quantity", "not-a-quantity"),
    ],
)  # fmt: skip
def test_resource_quantities_are_written_as_the_api_server_stores_them(spelled: Any, stored: str) -> None:
    # The API server's answers (tests/reconciler/test_deployment_roundtrip_cluster.py checks them).
    assert canonical_quantity(spelled) == stored


def test_deployment_omits_what_the_api_server_drops() -> None:
    platform = _platform(
        environment="development",
        jitsi__jwt__appId="",
        calls__command=[],
        calls__resources={"requests": {"cpu": 1, "memory": "1024Mi"}, "limits": {}, "claims": []},
    )
    deployment = render_platform(platform, SECRETS).deployment
    assert deployment is not None
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "command" not in container
    assert {"name": "JITSI_APP_ID"} in container["env"]
    assert all(env.get("value") != "" for env in container["env"])
    assert container["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}}


def test_migration_and_seed_jobs_have_bounded_resources_by_default_and_from_the_spec() -> None:
    from callplatform.render.workloads import render_demo_seed_job, render_migration_job

    platform = _platform()
    for job in (render_migration_job(platform, SECRETS), render_demo_seed_job(platform, SECRETS)):
        resources = job["spec"]["template"]["spec"]["containers"][0]["resources"]
        assert resources == {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        }
    custom = _platform(calls__jobResources={"requests": {"cpu": 0.5}, "limits": {"memory": "1024Mi"}})
    resources = render_migration_job(custom, SECRETS)["spec"]["template"]["spec"]["containers"][0][
        "resources"
    ]
    assert resources == {"requests": {"cpu": "500m"}, "limits": {"memory": "1Gi"}}


def test_the_calls_deployment_gets_an_http_liveness_probe_only_when_a_path_is_set() -> None:
    def container(platform: Any) -> dict[str, Any]:
        deployment = render_platform(platform, SECRETS).deployment
        assert deployment is not None
        return deployment["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]

    assert "livenessProbe" not in container(_platform())
    probe = container(_platform(calls__livenessProbePath="/healthz"))["livenessProbe"]
    assert probe["httpGet"] == {"path": "/healthz", "port": "http", "scheme": "HTTP"}
    assert probe["failureThreshold"] == 3
