"""Every rule, in every environment, on a CallPlatform and the Secrets it references."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from rules_fixtures import GOOD_SECRETS, set_path, valid_manifest

from callplatform.findings import Finding, Severity
from callplatform.model import ENVIRONMENTS, parse_platform
from callplatform.rules import RULES, check_platform

E, W = Severity.ERROR, Severity.WARNING
REMOVE = object()


@dataclass(frozen=True)
class Case:
    rule: str
    name: str
    spec: dict[str, Any] = field(default_factory=dict)  # dotted path under the manifest -> value
    secret: dict[str, Any] = field(default_factory=dict)  # key of calls-secrets -> value or REMOVE
    severities: tuple[Severity | None, Severity | None, Severity | None] = (E, E, E)
    field: str = ""  # the finding's field, when the case pins it

    def build(self) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
        manifest = valid_manifest()
        for path, value in self.spec.items():
            manifest = set_path(manifest, path, value)
        data = dict(GOOD_SECRETS)
        for key, value in self.secret.items():
            if value is REMOVE:
                del data[key]
            else:
                data[key] = value
        return manifest, {"calls-secrets": data}


REST = {"spec.turn.credentials.mode": "rest"}
CASES = [
    Case("CP001", "jwt-24-chars", secret={"JITSI_JWT_SECRET": "Ab3dE6gH9jK2mN5pQ8sT1vW4"}, severities=(E, W, None),
         field="spec.jitsi.jwt.secretRef"),
    Case("CP002", "jwt-empty", secret={"JITSI_JWT_SECRET": ""}, severities=(E, W, None), field="spec.jitsi.jwt.secretRef"),
    Case("CP002", "db-url-blank", secret={"DATABASE_URL": "  "}, severities=(E, W, None)),
    Case("CP002", "turn-password-empty", secret={"TURN_PASSWORD": ""}, severities=(E, W, None)),
    Case("CP002", "turn-username-empty", secret={"TURN_USERNAME": ""}, severities=(E, W, None)),
    Case("CP002", "shared-secret-empty-rest", spec=REST, secret={"TURN_SHARED_SECRET": ""}, severities=(E, W, None),
         field="spec.turn.credentials.secretRef.sharedSecretKey"),
    Case("CP002", "jitsi-domain-empty", spec={"spec.jitsi.domain": ""}, severities=(E, W, None), field="spec.jitsi.domain"),
    Case("CP002", "public-host-empty", spec={"spec.jitsi.publicHost": ""}, severities=(E, W, None)),
    Case("CP002", "turn-host-missing", spec={"spec.turn.host": None}, severities=(E, W, None), field="spec.turn.host"),
    Case("CP003", "demo-seed-enabled", spec={"spec.demoSeed.enabled": True}, severities=(E, None, None),
         field="spec.demoSeed.enabled"),
    Case("CP004", "demo-password-plain", secret={"DEMO_USER_PASSWORD": "hunter2hunter2"}),
    Case("CP004", "demo-password-bad-cost", secret={"DEMO_USER_PASSWORD": "$2b$99$" + "a" * 53}),
    Case("CP005", "db-url-mysql", secret={"DATABASE_URL": "mysql://calls:Zr8pQ2vLx7Nd4KwT@db:3306/calls"}),
    Case("CP005", "db-url-no-host", secret={"DATABASE_URL": "postgresql:///calls"}),
    Case("CP005", "db-url-no-database", secret={"DATABASE_URL": "postgresql://calls:Zr8pQ2vLx7Nd4KwT@db:5432/"}),
    Case("CP005", "db-url-bad-port", secret={"DATABASE_URL": "postgresql://calls:Zr8pQ2vLx7Nd4KwT@db:99999/calls"}),
    Case("CP005", "db-url-not-a-url", secret={"DATABASE_URL": "host=db dbname=calls"}),
    Case("CP006", "turn-password-changeme", secret={"TURN_PASSWORD": "changeme"}, severities=(E, W, None)),
    Case("CP006", "turn-password-short", secret={"TURN_PASSWORD": "Ab3dE6gH9j"}, severities=(E, W, None)),
    Case("CP006", "jwt-repeated-char", secret={"JITSI_JWT_SECRET": "x" * 40}, severities=(E, W, None)),
    Case("CP006", "jwt-keepthissecret", secret={"JITSI_JWT_SECRET": "KeepThisSecret"}, severities=(E, W, None)),
    Case("CP006", "shared-secret-short", spec=REST, secret={"TURN_SHARED_SECRET": "Ts4Gh8Jk2Lq6Wp9Er3Ty"},
         severities=(E, W, None)),
    Case("CP006", "db-password-weak", secret={"DATABASE_URL": "postgresql://calls:password@db:5432/calls"},
         severities=(E, W, None), field="spec.database.urlSecretRef"),
    Case("CP007", "public-host-scheme", spec={"spec.jitsi.publicHost": "https://meet.example.com"}),
    Case("CP007", "public-host-port", spec={"spec.jitsi.publicHost": "meet.example.com:443"}),
    Case("CP007", "public-host-wildcard", spec={"spec.jitsi.publicHost": "*.example.com"}),
    Case("CP007", "public-host-space", spec={"spec.jitsi.publicHost": "meet example.com"}),
    Case("CP007", "public-host-path", spec={"spec.jitsi.publicHost": "meet.example.com/room"}),
    Case("CP007", "turn-host-scheme", spec={"spec.turn.host": "turns://turn.example.com"}, field="spec.turn.host"),
    Case("CP007", "turn-host-trailing-dot", spec={"spec.turn.host": "turn.example.com."}),
    Case("CP008", "private-10", spec={"spec.turn.relay.allowedPeerCIDRs": ["10.0.0.0/8"]}, severities=(E, W, W),
         field="spec.turn.relay.allowedPeerCIDRs[0]"),
    Case("CP008", "metadata", spec={"spec.turn.relay.allowedPeerCIDRs": ["8.8.8.0/24", "169.254.169.254/32"]},
         severities=(E, W, W), field="spec.turn.relay.allowedPeerCIDRs[1]"),
    Case("CP008", "loopback", spec={"spec.turn.relay.allowedPeerCIDRs": ["127.0.0.1/32"]}, severities=(E, W, W)),
    Case("CP008", "everything", spec={"spec.turn.relay.allowedPeerCIDRs": ["0.0.0.0/0"]}, severities=(E, W, W)),
    Case("CP008", "this-network", spec={"spec.turn.relay.allowedPeerCIDRs": ["0.0.0.0/32"]}, severities=(E, W, W)),
    Case("CP008", "ipv6-ula-metadata", spec={"spec.turn.relay.allowedPeerCIDRs": ["fd00:ec2::254/128"]},
         severities=(E, W, W)),
    Case("CP008", "ipv4-mapped", spec={"spec.turn.relay.allowedPeerCIDRs": ["::ffff:127.0.0.1/128"]},
         severities=(E, W, W)),
    Case("CP008", "cgnat", spec={"spec.turn.relay.allowedPeerCIDRs": ["100.64.0.0/10"]}, severities=(E, W, W)),
    Case("CP009", "sslmode-disable",
         secret={"DATABASE_URL": "postgresql://calls:Zr8pQ2vLx7Nd4KwT@db:5432/calls?sslmode=disable"},
         severities=(W, None, None)),
    Case("CP010", "secret-missing", spec={"spec.database.urlSecretRef.name": "no-such-secret"},
         field="spec.database.urlSecretRef"),
    Case("CP010", "key-missing", secret={"TURN_PASSWORD": REMOVE}, field="spec.turn.credentials.secretRef.passwordKey"),
    Case("CP010", "demo-key-missing", secret={"DEMO_USER_PASSWORD": REMOVE}, field="spec.demoSeed.passwordSecretRef"),
    Case("CP010", "shared-secret-missing-rest", spec=REST, secret={"TURN_SHARED_SECRET": REMOVE}),
    Case("CP011", "mode-unknown", spec={"spec.turn.credentials.mode": "ldap"}, field="spec.turn.credentials.mode"),
    Case("CP011", "turn-port-out-of-range", spec={"spec.turn.port": 70000}, field="spec.turn.port"),
    Case("CP011", "calls-port-zero", spec={"spec.calls.port": 0}),
    Case("CP011", "relay-range-inverted", spec={"spec.turn.relay.minPort": 60000, "spec.turn.relay.maxPort": 50000},
         field="spec.turn.relay"),
    Case("CP011", "relay-port-out-of-range", spec={"spec.turn.relay.maxPort": 65536}),
    Case("CP011", "cidr-garbage", spec={"spec.turn.relay.allowedPeerCIDRs": ["not-a-cidr"]}),
    Case("CP011", "cidr-without-prefix", spec={"spec.turn.relay.allowedPeerCIDRs": ["8.8.8.8"]}),
    Case("CP011", "cidr-with-whitespace", spec={"spec.turn.relay.allowedPeerCIDRs": [" 8.8.8.0/24"]}),
    Case("CP011", "replicas-not-integer", spec={"spec.calls.replicas": "two"}, field="spec.calls.replicas"),
    Case("CP011", "demo-enabled-not-boolean", spec={"spec.demoSeed.enabled": "maybe"}),
    Case("CP011", "spec-not-object", spec={"spec.jitsi": ["meet.example.com"]}, field="spec.jitsi"),
    Case("CP011", "image-missing", spec={"spec.calls.image": ""}, field="spec.calls.image"),
    Case("CP011", "jitsi-domain-url", spec={"spec.jitsi.domain": "https://meet.internal.example"}),
    Case("CP011", "secret-ref-without-key", spec={"spec.database.urlSecretRef.key": ""}),
    Case("CP011", "probe-interval-zero", spec={"spec.monitoring.probeIntervalSeconds": 0}),
    Case("CP012", "unsafe-inline-styles", spec={"spec.calls.allowUnsafeInlineStyles": True}, severities=(W, W, None)),
    Case("CP012", "unsafe-inline-styles-default", spec={"spec.calls.allowUnsafeInlineStyles": None},
         severities=(W, W, None)),
    Case("CP013", "app-id-empty", spec={"spec.jitsi.jwt.appId": ""}, severities=(E, E, W)),
    Case("CP014", "one-replica", spec={"spec.calls.replicas": 1}, severities=(W, None, None)),
    Case("CP015", "image-latest", spec={"spec.calls.image": "registry.example.com/calls-backend:latest"},
         severities=(W, None, None)),
    Case("CP016", "jwt-secret-is-turn-password", secret={"TURN_PASSWORD": GOOD_SECRETS["JITSI_JWT_SECRET"]},
         severities=(E, W, None), field="spec.turn.credentials.secretRef.passwordKey"),
    Case("CP016", "db-password-is-shared-secret", spec=REST,
         secret={"DATABASE_URL": f"postgresql://calls:{GOOD_SECRETS['TURN_SHARED_SECRET']}@db:5432/calls"},
         severities=(E, W, None), field="spec.database.urlSecretRef"),
    Case("CP017", "turn-password-injects-a-line",
         secret={"TURN_PASSWORD": GOOD_SECRETS["TURN_PASSWORD"] + "\nallowed-peer-ip=10.0.0.0-10.255.255.255"},
         field="spec.turn.credentials.secretRef.passwordKey"),
    Case("CP017", "turn-password-trailing-newline", secret={"TURN_PASSWORD": GOOD_SECRETS["TURN_PASSWORD"] + "\n"},
         field="spec.turn.credentials.secretRef.passwordKey"),
    Case("CP017", "turn-password-carriage-return", secret={"TURN_PASSWORD": GOOD_SECRETS["TURN_PASSWORD"] + "\r"}),
    Case("CP017", "turn-password-nul", secret={"TURN_PASSWORD": "Tp9Lk3Mn7\x00Bv2Cx5Zq8W"}),
    Case("CP017", "turn-password-unicode-line-separator", secret={"TURN_PASSWORD": "Tp9Lk3Mn7\u2028Bv2Cx5Zq8W"}),
    Case("CP017", "turn-username-newline", secret={"TURN_USERNAME": "calls\nno-auth"},
         field="spec.turn.credentials.secretRef.usernameKey"),
    Case("CP017", "turn-username-colon", secret={"TURN_USERNAME": "calls:turn"},
         field="spec.turn.credentials.secretRef.usernameKey"),
    Case("CP017", "shared-secret-newline-rest", spec=REST,
         secret={"TURN_SHARED_SECRET": GOOD_SECRETS["TURN_SHARED_SECRET"] + "\nallowed-peer-ip=10.0.0.0-10.255.255.255"},
         field="spec.turn.credentials.secretRef.sharedSecretKey"),
    Case("CP017", "shared-secret-tab-rest", spec=REST, secret={"TURN_SHARED_SECRET": "Ts4Gh8Jk2Lq6\tWp9Er3Ty7Ui1Op5As0Df"}),
    Case("CP018", "managed-coturn-latest", spec={"spec.turn.server": {"managed": True, "image": {"tag": "latest"}}},
         severities=(W, W, None), field="spec.turn.server.image.tag"),
    Case("CP017", "turn-password-pushes-a-directive-past-coturns-line-buffer",
         secret={"TURN_PASSWORD": "Tp9Lk3Mn7Bv2Cx5Zq8W" * 53 + "allowed-peer-ip=10.0.0.0-10.255.255.255"}),
    Case("CP017", "shared-secret-past-the-line-buffer", spec=REST,
         secret={"TURN_SHARED_SECRET": "Ts4Gh8Jk2Lq6Wp9Er3Ty7Ui1Op5As0Df" * 32 + "allowed-peer-ip=169.254.169.254"}),
    Case("CP017", "turn-password-hash-sign", secret={"TURN_PASSWORD": "Tp9Lk3Mn7#Bv2Cx5Zq8W"}),
    Case("CP017", "turn-password-leading-space", secret={"TURN_PASSWORD": " Tp9Lk3Mn7Bv2Cx5Zq8W"}),
    Case("CP017", "turn-password-hex-key-prefix", secret={"TURN_PASSWORD": "0x9Lk3Mn7Bv2Cx5Zq8Wab"}),
    Case("CP019", "realm-injects-a-line", spec={"spec.turn.realm": "turn.example.com\nallowed-peer-ip=10.0.0.0-10.255.255.255"},
         field="spec.turn.realm"),
    Case("CP019", "realm-too-long-for-coturn", spec={"spec.turn.realm": "r" * 127}, field="spec.turn.realm"),
    Case("CP019", "default-realm-too-long", spec={"spec.turn.host": ("t" * 60 + ".") * 2 + "example.com"},
         field="spec.turn.realm"),
    Case("CP019", "secret-name-with-newline", spec={"spec.database.urlSecretRef.name": "calls-secrets\nx"},
         field="spec.database.urlSecretRef.name"),
    Case("CP019", "app-id-bidi", spec={"spec.jitsi.jwt.appId": "calls\u202e"}, field="spec.jitsi.jwt.appId"),
    Case("CP019", "call-log-sql", spec={"spec.database.callLog.table": 'x"; drop table y'}),
    Case("CP019", "probe-url-newline", spec={"spec.jitsi.probes.webURL": "https://meet.example.com/\r\nX: y"}),
    Case("CP019", "command-escape", spec={"spec.calls.command": ["npm", "start\x1b[2J"]}, field="spec.calls.command[1]"),
    Case("CP020", "turn-password-no-break-space", secret={"TURN_PASSWORD": "Tp9Lk3Mn7\u00a0Bv2Cx5Zq8W"},
         severities=(W, W, W)),
    Case("CP020", "turn-username-accent", secret={"TURN_USERNAME": "cafe\u0301"}, severities=(W, W, W)),
    Case("CP021", "jwt-secret-nul-padding", secret={"JITSI_JWT_SECRET": "abc" + "\x00" * 29}, severities=(E, E, W)),
    Case("CP021", "jwt-secret-trailing-newline", secret={"JITSI_JWT_SECRET": GOOD_SECRETS["JITSI_JWT_SECRET"] + "\n"},
         severities=(E, E, W)),
    Case("CP001", "jwt-3-chars-29-spaces", secret={"JITSI_JWT_SECRET": "S3c" + " " * 29}, severities=(E, W, None)),
    Case("CP001", "jwt-31-chars-newline", secret={"JITSI_JWT_SECRET": "S3cr3t-JWT-value-Wq9Xe4Rt7Yu2Io\n"},
         severities=(E, W, None)),
    Case("CP006", "jwt-changeme-four-times", secret={"JITSI_JWT_SECRET": "changeme" * 4}, severities=(E, W, None)),
    Case("CP006", "turn-password-dictionary-words", secret={"TURN_PASSWORD": "dragonmonkeyfootball"},
         severities=(E, W, None)),
    Case("CP004", "demo-password-2x", secret={"DEMO_USER_PASSWORD": "$2x$12$hVVaKfWbHsIlyLtR6iowbeGsclHAcuiqtf36hr7Y7C3KnpQbshypu"}),
    Case("CP004", "demo-password-cost-04", secret={"DEMO_USER_PASSWORD": "$2b$04$hVVaKfWbHsIlyLtR6iowbeGsclHAcuiqtf36hr7Y7C3KnpQbshypu"}),
    Case("CP004", "demo-password-cost-31", secret={"DEMO_USER_PASSWORD": "$2b$31$hVVaKfWbHsIlyLtR6iowbeGsclHAcuiqtf36hr7Y7C3KnpQbshypu"}),
    Case("CP004", "demo-password-trailing-newline",
         secret={"DEMO_USER_PASSWORD": GOOD_SECRETS["DEMO_USER_PASSWORD"] + "\n"}),
    Case("CP008", "local-use-nat64", spec={"spec.turn.relay.allowedPeerCIDRs": ["64:ff9b:1::/48"]}, severities=(E, W, W)),
    Case("CP008", "around-ipv4-mapped", spec={"spec.turn.relay.allowedPeerCIDRs": ["::fffe:0:0/95"]}, severities=(E, W, W)),
    Case("CP008", "documentation-range-is-denied-too", spec={"spec.turn.relay.allowedPeerCIDRs": ["203.0.113.0/24"]},
         severities=(E, W, W)),
    Case("CP015", "image-untagged", spec={"spec.calls.image": "registry.example.com:5000/calls-backend"},
         severities=(W, None, None)),
]  # fmt: skip


def findings_for(case: Case, environment: str) -> list[Finding]:
    manifest, secrets = case.build()
    return check_platform(parse_platform(manifest), secrets, environment)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_valid_platform_has_no_findings(environment: str) -> None:
    manifest = set_path(valid_manifest(), "spec.environment", environment)
    secrets = {"calls-secrets": dict(GOOD_SECRETS)}
    assert check_platform(parse_platform(manifest), secrets) == []


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.rule}-{c.name}")
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_rule_fires_with_its_severity_per_environment(case: Case, environment: str) -> None:
    expected = case.severities[ENVIRONMENTS.index(environment)]
    findings = findings_for(case, environment)
    hits = [f for f in findings if f.rule == case.rule]
    if expected is None:
        assert hits == []
        return
    assert hits, f"{case.rule} did not fire; got {findings}"
    assert {f.severity for f in hits} == {expected}
    assert all(f.object == "CallPlatform team-a/calls" and f.message for f in hits)
    if case.field:
        assert case.field in {f.field for f in hits}


def test_every_catalogue_rule_has_a_case() -> None:
    assert {case.rule for case in CASES} == set(RULES)


def test_severities_in_cases_match_the_catalogue() -> None:
    for case in CASES:
        assert tuple(RULES[case.rule].severity_in(env) for env in ENVIRONMENTS) == case.severities, case.name


def test_unknown_environment_is_cp011_and_judged_as_production() -> None:
    manifest = set_path(valid_manifest(), "spec.environment", "prod")
    manifest = set_path(manifest, "spec.demoSeed.enabled", True)
    findings = check_platform(parse_platform(manifest), {"calls-secrets": dict(GOOD_SECRETS)})
    assert [(f.rule, f.severity, f.field) for f in findings] == [
        ("CP003", E, "spec.demoSeed.enabled"),
        ("CP011", E, "spec.environment"),
    ]


def test_environment_argument_overrides_the_spec() -> None:
    manifest = set_path(valid_manifest("development"), "spec.demoSeed.enabled", True)
    platform = parse_platform(manifest)
    secrets = {"calls-secrets": dict(GOOD_SECRETS)}
    assert check_platform(platform, secrets) == []
    assert [f.rule for f in check_platform(platform, secrets, "production")] == ["CP003"]


def test_a_missing_secret_is_reported_once_per_reference_not_as_empty() -> None:
    findings = check_platform(parse_platform(valid_manifest()), {}, "production")
    assert {f.rule for f in findings} == {"CP010"}
    assert sorted(f.field for f in findings) == [
        "spec.database.urlSecretRef",
        "spec.demoSeed.passwordSecretRef",
        "spec.jitsi.jwt.secretRef",
        "spec.turn.credentials.secretRef.passwordKey",
        "spec.turn.credentials.secretRef.usernameKey",
    ]


def test_secrets_can_be_looked_up_by_a_function() -> None:
    asked: list[str] = []

    def lookup(name: str) -> dict[str, str] | None:
        asked.append(name)
        return dict(GOOD_SECRETS) if name == "calls-secrets" else None

    assert check_platform(parse_platform(valid_manifest()), lookup) == []
    assert set(asked) == {"calls-secrets"}


def test_findings_are_sorted_and_deterministic() -> None:
    manifest = set_path(valid_manifest(), "spec.turn.relay.allowedPeerCIDRs", ["10.0.0.0/8", "127.0.0.0/8"])
    manifest = set_path(manifest, "spec.demoSeed.enabled", True)
    platform = parse_platform(manifest)
    first = check_platform(platform, {"calls-secrets": {"JITSI_JWT_SECRET": "changeme"}})
    assert first == check_platform(platform, {"calls-secrets": {"JITSI_JWT_SECRET": "changeme"}})
    keys = [(f.object, f.rule, f.field, f.message) for f in first]
    assert keys == sorted(keys)


def test_rest_mode_does_not_ask_for_static_credentials() -> None:
    manifest = set_path(valid_manifest(), "spec.turn.credentials.mode", "rest")
    data = {k: v for k, v in GOOD_SECRETS.items() if k not in ("TURN_USERNAME", "TURN_PASSWORD")}
    assert check_platform(parse_platform(manifest), {"calls-secrets": data}) == []


def test_public_cidr_and_digest_image_pass() -> None:
    manifest = set_path(
        valid_manifest(), "spec.turn.relay.allowedPeerCIDRs", ["8.8.8.0/24", "2606:4700::/32"]
    )
    manifest = set_path(manifest, "spec.calls.image", "registry.example.com/calls@sha256:" + "a" * 64)
    assert check_platform(parse_platform(manifest), {"calls-secrets": dict(GOOD_SECRETS)}) == []


def test_a_secret_value_of_the_wrong_type_does_not_raise() -> None:
    broken: dict[str, Any] = {"calls-secrets": {"DATABASE_URL": 42, "JITSI_JWT_SECRET": b"\xff" * 40}}
    findings = check_platform(parse_platform(valid_manifest()), broken)
    assert any(f.rule == "CP011" and f.field == "spec.database.urlSecretRef" for f in findings)


def test_cp017_never_quotes_the_value_and_allows_a_colon_in_the_password() -> None:
    value = "Tp9Lk3Mn7Bv2Cx5Zq8W\nallowed-peer-ip=10.0.0.0-10.255.255.255"
    case = Case("CP017", "x", secret={"TURN_PASSWORD": value, "TURN_USERNAME": "calls:x"})
    for environment in ENVIRONMENTS:
        hits = [f for f in findings_for(case, environment) if f.rule == "CP017"]
        assert len(hits) == 2
        for finding in hits:
            assert "Tp9Lk3" not in finding.message and "allowed-peer-ip=10" not in finding.message
            assert "calls:x" not in finding.message
    fine = Case("CP017", "colon-in-password", secret={"TURN_PASSWORD": "Tp9Lk3:Mn7Bv2Cx5Zq8W"})
    assert [f for f in findings_for(fine, "production") if f.rule == "CP017"] == []


def test_cp019_judges_the_namespace_too() -> None:
    manifest = set_path(valid_manifest(), "metadata.namespace", "Team A\nx")
    findings = check_platform(parse_platform(manifest), {"calls-secrets": dict(GOOD_SECRETS)})
    assert [(f.rule, f.field) for f in findings] == [("CP019", "metadata.namespace")]


def test_bcrypt_hashes_at_allowed_costs_pass_and_others_fail() -> None:
    """The CP004 pattern accepts what the bcrypt library produces, and only sane costs."""
    import bcrypt

    from callplatform.rules.secret_values import MAX_BCRYPT_COST, MIN_BCRYPT_COST, bcrypt_problem

    for cost in (MIN_BCRYPT_COST, 11):
        hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(cost)).decode()
        assert bcrypt_problem(hashed) is None
    for cost in (4, MIN_BCRYPT_COST - 1, MAX_BCRYPT_COST + 1):
        hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode().replace("$04$", f"${cost:02d}$", 1)
        assert bcrypt_problem(hashed) is not None


@pytest.mark.parametrize(
    "value",
    ["changeme" * 4, "dragonmonkeyfootball", "Tr0ub4dor&3", "drowssap-summer2024", "qwertyuiop",
     "aaaaaaaaaaaaaaaa", "abcdefgh12345678", "P@ssw0rd!", "S3cr3t-JWT-value-Wq9Xe4Rt7Yu2Io5Pa8", "é" * 20, "x"],
)  # fmt: skip
def test_the_merged_dictionary_estimate_is_zxcvbns_own(value: str) -> None:
    from zxcvbn import zxcvbn

    from callplatform.rules.secret_values import zxcvbn_guesses_log10

    assert zxcvbn_guesses_log10(value) == pytest.approx(zxcvbn(value)["guesses_log10"], abs=1e-9)
