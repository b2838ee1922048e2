"""Property-based: random specs, Secrets and env files never make the rules engine raise."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from rules_fixtures import valid_manifest

from callplatform.findings import Severity
from callplatform.model import parse_platform
from callplatform.rules import RULES, check_env, check_platform

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(
        ["production", "staging", "rest", "static", "10.0.0.0/8", "::1/128", "meet.example.com", ""]
    ),
)
JSON_LIKE = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
SPEC_KEYS = ["environment", "jitsi", "turn", "database", "calls", "demoSeed", "monitoring"]
FIELD_PATHS = [
    "spec.environment", "spec.jitsi.domain", "spec.jitsi.publicHost", "spec.jitsi.jwt", "spec.jitsi.jwt.appId",
    "spec.jitsi.jwt.secretRef", "spec.jitsi.jwt.secretRef.key", "spec.turn.host", "spec.turn.port",
    "spec.turn.credentials", "spec.turn.credentials.mode", "spec.turn.credentials.secretRef",
    "spec.turn.relay", "spec.turn.relay.allowedPeerCIDRs", "spec.turn.relay.minPort", "spec.turn.relay.maxPort",
    "spec.database.urlSecretRef", "spec.calls", "spec.calls.image", "spec.calls.replicas",
    "spec.calls.imagePullSecrets", "spec.calls.resources", "spec.demoSeed", "spec.demoSeed.enabled",
    "spec.demoSeed.passwordSecretRef", "spec.monitoring.probeIntervalSeconds", "metadata", "metadata.name",
]  # fmt: skip
SECRET_DATA = st.dictionaries(
    st.sampled_from(["DATABASE_URL", "JITSI_JWT_SECRET", "TURN_USERNAME", "TURN_PASSWORD", "TURN_SHARED_SECRET",
                     "DEMO_USER_PASSWORD", "OTHER"]),
    st.one_of(st.text(max_size=60), st.sampled_from(["postgresql://u:p@h/d?sslmode=disable", "changeme", "$2b$"])),
)  # fmt: skip
ENV_NAMES = ["production", "staging", "development", "prod", ""]


def set_anywhere(manifest: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    node: Any = manifest
    *parents, last = path.split(".")
    for key in parents:
        if not isinstance(node, dict):
            return manifest
        node = node.setdefault(key, {})
    if isinstance(node, dict):
        node[last] = value
    return manifest


def assert_well_formed(findings: list[Any]) -> None:
    for finding in findings:
        assert finding.rule in RULES
        assert finding.severity in (Severity.ERROR, Severity.WARNING)
        assert finding.message.strip()
        assert finding.field


@settings(max_examples=200, deadline=None)
@given(
    replacements=st.lists(st.tuples(st.sampled_from(FIELD_PATHS), JSON_LIKE), max_size=6),
    secrets=st.dictionaries(st.sampled_from(["calls-secrets", "other"]), SECRET_DATA, max_size=2),
    environment=st.one_of(st.none(), st.sampled_from(ENV_NAMES)),
)
def test_random_specs_never_raise(
    replacements: list[tuple[str, Any]], secrets: dict[str, dict[str, str]], environment: str | None
) -> None:
    manifest = valid_manifest()
    for path, value in replacements:
        manifest = set_anywhere(manifest, path, value)
    findings = check_platform(parse_platform(manifest), secrets, environment)
    assert_well_formed(findings)


@settings(max_examples=200, deadline=None)
@given(
    manifest=st.dictionaries(st.sampled_from(["spec", "metadata", "kind"]), JSON_LIKE),
    env=st.sampled_from(ENV_NAMES),
)
def test_arbitrary_objects_never_raise(manifest: dict[str, Any], env: str) -> None:
    assert_well_formed(check_platform(parse_platform(manifest), {}, env))


@settings(max_examples=200, deadline=None)
@given(
    env_vars=st.dictionaries(
        st.one_of(
            st.sampled_from(["DATABASE_URL", "JITSI_JWT_SECRET", "JITSI_DOMAIN", "JITSI_PUBLIC_HOST", "TURN_HOST",
                             "TURN_USERNAME", "TURN_PASSWORD", "TURN_SHARED_SECRET", "DEMO_USER_PASSWORD",
                             "ALLOW_DEMO_SEED"]),
            st.text(max_size=10),
        ),
        st.text(max_size=80),
    ),
    environment=st.sampled_from(ENV_NAMES),
)  # fmt: skip
def test_random_env_files_never_raise(env_vars: dict[str, str], environment: str) -> None:
    findings = check_env(env_vars, environment)
    assert_well_formed(findings)
    if environment == "production":
        required = ("DATABASE_URL", "JITSI_JWT_SECRET", "JITSI_DOMAIN", "JITSI_PUBLIC_HOST", "TURN_HOST")
        missing = {name for name in required if not env_vars.get(name, "").strip()}
        assert missing <= {f.field for f in findings if f.rule == "CP002"}
