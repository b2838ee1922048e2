"""The CRD against the real API server: it installs, the examples are accepted and shown with the
printer columns, and invalid manifests are refused with a message naming the rule."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from rules_fixtures import EXAMPLES, set_path

from callplatform.inputs import load_manifests
from callplatform.model import parse_platform
from callplatform.rules import check_platform

pytestmark = pytest.mark.cluster

PRODUCTION = EXAMPLES / "production.yaml"


def production_platform() -> dict[str, Any]:
    docs = list(yaml.safe_load_all(PRODUCTION.read_text()))
    platform: dict[str, Any] = next(d for d in docs if d["kind"] == "CallPlatform")
    return platform


def apply(kube_cluster: Any, namespace: str, obj: dict[str, Any]) -> Any:
    return kube_cluster.kubectl("-n", namespace, "apply", "-f", "-", input=yaml.safe_dump(obj), check=False)


def test_crd_is_served_with_short_name_and_categories(kube_cluster: Any, crd_installed: str) -> None:
    crd = json.loads(kube_cluster.kubectl("get", "crd", crd_installed, "-o", "json").stdout)
    assert crd["status"]["acceptedNames"]["shortNames"] == ["cp"]
    assert crd["status"]["acceptedNames"]["categories"] == ["callplatforms", "calls"]
    resources = kube_cluster.kubectl("api-resources", "--api-group=callplatform.io", "-o", "wide").stdout
    assert "callplatforms" in resources and "cp" in resources
    explained = kube_cluster.kubectl("explain", "cp.spec.turn.relay.maxPort").stdout
    assert "Highest UDP relay port" in explained


def test_examples_are_accepted_and_printer_columns_are_shown(
    kube_cluster: Any, crd_installed: str, namespace: str
) -> None:
    for example in ("production.yaml", "staging.yaml"):
        kube_cluster.kubectl("-n", namespace, "apply", "-f", str(EXAMPLES / example))
    conditions = [
        {"type": "Ready", "status": "False", "reason": "MigrationsPending", "message": "waiting for the Job"},
        {"type": "JitsiHealthy", "status": "True", "reason": "ProbesPassed", "message": "all probes passed"},
        {
            "type": "CoturnHealthy",
            "status": "Unknown",
            "reason": "NotProbedYet",
            "message": "first probe pending",
        },
    ]
    for condition in conditions:
        condition["lastTransitionTime"] = "2026-01-01T00:00:00Z"
    patch = json.dumps({"status": {"observedGeneration": 1, "conditions": conditions}})
    kube_cluster.kubectl(
        "-n", namespace, "patch", "cp", "production", "--subresource=status", "--type=merge", "-p", patch
    )
    table = kube_cluster.kubectl("-n", namespace, "get", "cp").stdout.splitlines()
    assert table[0].split() == ["NAME", "ENVIRONMENT", "READY", "JITSI", "TURN", "AGE"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["production"][1:5] == ["production", "False", "True", "Unknown"]
    assert rows["staging"][1] == "staging"
    wide = kube_cluster.kubectl("-n", namespace, "get", "callplatforms", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "ENVIRONMENT", "READY", "JITSI", "TURN", "REASON", "AGE"]
    assert "MigrationsPending" in next(line for line in wide if line.startswith("production"))
    by_category = kube_cluster.kubectl("-n", namespace, "get", "calls", "-o", "name").stdout.split()
    assert sorted(by_category) == [
        "callplatform.callplatform.io/production",
        "callplatform.callplatform.io/staging",
    ]


def test_stored_object_judges_the_same_as_the_file(
    kube_cluster: Any, crd_installed: str, namespace: str
) -> None:
    """The API server's defaults agree with the model's: the stored platform yields the same findings."""
    kube_cluster.kubectl("-n", namespace, "apply", "-f", str(PRODUCTION))
    stored = json.loads(kube_cluster.kubectl("-n", namespace, "get", "cp", "production", "-o", "json").stdout)
    assert stored["spec"]["turn"]["relay"]["userQuota"] == 12  # a default the file does not set
    [offline] = load_manifests([str(PRODUCTION)])
    from_server = parse_platform(stored)
    assert from_server.malformed == ()
    assert from_server.turn == offline.platform.turn
    assert from_server.calls == offline.platform.calls

    def judged(platform: Any) -> list[tuple[str, str, str, str]]:
        return [(f.rule, f.severity, f.field, f.message) for f in check_platform(platform, offline.secrets)]

    assert judged(from_server) == judged(offline.platform)


INVALID = [
    ("CP003", "demo-seed-in-production", {"spec.demoSeed.enabled": True}),
    ("CP007", "public-host-with-scheme", {"spec.jitsi.publicHost": "https://meet.example.com"}),
    ("CP007", "public-host-wildcard", {"spec.jitsi.publicHost": "*.example.com"}),
    ("CP007", "turn-host-with-port", {"spec.turn.host": "turn.example.com:3478"}),
    ("CP008", "private-peer-range-in-production", {"spec.turn.relay.allowedPeerCIDRs": ["10.0.0.0/8"]}),
    ("CP008", "metadata-peer-in-production", {"spec.turn.relay.allowedPeerCIDRs": ["169.254.169.254/32"]}),
    ("CP008", "everything-in-production", {"spec.turn.relay.allowedPeerCIDRs": ["0.0.0.0/0"]}),
    ("CP011", "relay-range-inverted", {"spec.turn.relay.minPort": 60000, "spec.turn.relay.maxPort": 50000}),
    ("CP011", "peer-cidr-garbage", {"spec.turn.relay.allowedPeerCIDRs": ["not-a-cidr"]}),
    ("CP011", "jitsi-domain-url", {"spec.jitsi.domain": "https://meet.internal.example"}),
    ("CP008", "local-nat64-in-production", {"spec.turn.relay.allowedPeerCIDRs": ["64:ff9b:1::/48"]}),
    ("CP008", "around-ipv4-mapped", {"spec.turn.relay.allowedPeerCIDRs": ["::fffe:0:0/95"]}),
    ("CP008", "documentation-range", {"spec.turn.relay.allowedPeerCIDRs": ["203.0.113.0/24"]}),
    (
        "CP019",
        "realm-injection",
        {"spec.turn.realm": "turn.example.com\nallowed-peer-ip=10.0.0.0-10.255.255.255"},
    ),
    ("CP019", "secret-name-with-space", {"spec.database.urlSecretRef.name": "calls secrets"}),
    ("CP019", "sql-identifier", {"spec.database.callLog.table": 'callLog"; drop table x; --'}),
    ("CP019", "probe-url-space", {"spec.jitsi.probes.webURL": "https://meet.example.com/ x"}),
    ("CP019", "command-control", {"spec.calls.command": ["npm", "run\u001b[2J"]}),
    ("CP019", "liveness-path", {"spec.calls.livenessProbePath": "healthz"}),
]


@pytest.mark.parametrize(("rule", "name", "changes"), INVALID, ids=[f"{r}-{n}" for r, n, _ in INVALID])
def test_invalid_manifests_are_refused_naming_the_rule(
    kube_cluster: Any, crd_installed: str, namespace: str, rule: str, name: str, changes: dict[str, Any]
) -> None:
    obj = set_path(production_platform(), "metadata.name", name)
    for path, value in changes.items():
        obj = set_path(obj, path, value)
    result = apply(kube_cluster, namespace, obj)
    assert result.returncode != 0, f"{name} was accepted"
    assert f"{rule}:" in result.stderr, result.stderr
    assert kube_cluster.kubectl("-n", namespace, "get", "cp", name, check=False).returncode != 0


@pytest.mark.parametrize(
    ("path", "value"), [("spec.environment", "prod"), ("spec.turn.credentials.mode", "ldap")]
)
def test_enum_violations_are_refused_listing_the_allowed_values(
    kube_cluster: Any, crd_installed: str, namespace: str, path: str, value: str
) -> None:
    obj = set_path(production_platform(), path, value)
    result = apply(kube_cluster, namespace, obj)
    assert result.returncode != 0
    assert f'{path}: Unsupported value: "{value}"' in result.stderr


def test_private_peer_range_is_allowed_outside_production(
    kube_cluster: Any, crd_installed: str, namespace: str
) -> None:
    """CP008 is a warning in staging: the API server accepts it and validate reports it."""
    obj = set_path(production_platform(), "spec.environment", "staging")
    obj = set_path(obj, "spec.turn.relay.allowedPeerCIDRs", ["10.20.0.0/16"])
    result = apply(kube_cluster, namespace, obj)
    assert result.returncode == 0, result.stderr


def test_broken_example_is_refused_naming_every_spec_rule_it_breaks(
    kube_cluster: Any, crd_installed: str, namespace: str
) -> None:
    result = kube_cluster.kubectl("-n", namespace, "apply", "-f", str(EXAMPLES / "broken.yaml"), check=False)
    assert result.returncode != 0
    for rule in ("CP003:", "CP007:", "CP008:", "CP011:"):
        assert rule in result.stderr, result.stderr
    assert kube_cluster.kubectl("-n", namespace, "get", "cp", "broken", check=False).returncode != 0
