"""The rules engine: a Platform (or an env file) and the secret values it references, in; findings, out.

Pure and total: every input, however malformed, yields a list of findings and
never an exception. Secret values are read to be judged and never copied into a
message: messages name the Secret and key, or the variable, instead.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from callplatform.findings import Finding
from callplatform.model import ENVIRONMENTS, SERVER_MODES, SERVICE_TYPES, Platform, SecretKeyRef
from callplatform.rules.catalogue import RULES
from callplatform.rules.coturn_conf import credential_problem
from callplatform.rules.secret_values import (
    MIN_GUESSES_LOG10,
    bcrypt_problem,
    meaningful_length,
    padding_problem,
    strength,
)
from callplatform.rules.text_fields import spec_text_problems
from callplatform.rules.values import (
    hostname_problem,
    image_unpinned,
    inspect_database_url,
    is_bare_hostname,
    judge_peer_cidr,
    parse_bool,
    weakness,
)

MIN_JWT_SECRET_LENGTH = 32
MIN_TURN_PASSWORD_LENGTH = 16
MIN_TURN_SHARED_SECRET_LENGTH = 32
CREDENTIAL_MODES = ("static", "rest")


class SecretLookup(Protocol):
    """Returns a Secret's decoded key -> value data, or None when the Secret does not exist."""

    def __call__(self, name: str) -> Mapping[str, str] | None: ...


Secrets = Mapping[str, Mapping[str, str]] | SecretLookup


@dataclass(frozen=True, slots=True)
class _Value:
    """One checklist variable as resolved from its source."""

    field: str  # where the user fixes it: a spec path or an env variable name
    source: str  # how messages refer to it, e.g. "Secret 'calls-secrets' key 'TURN_PASSWORD'"
    value: str | None  # None: unresolved (absent, or already reported as CP010)
    absent_is_missing: bool = True  # False when absence was already reported (CP010)


@dataclass(slots=True)
class _Collector:
    object: str
    environment: str
    allow_missing_secrets: bool = False
    findings: list[Finding] = field(default_factory=list)

    def applies(self, rule_id: str) -> bool:
        return RULES[rule_id].severity_in(self.environment) is not None

    def add(self, rule_id: str, field_path: str, message: str) -> None:
        severity = RULES[rule_id].severity_in(self.environment)
        if severity is not None:
            self.findings.append(Finding(rule_id, severity, self.object, field_path, message))


@dataclass(frozen=True, slots=True)
class _Checklist:
    """The production checklist's variables, whatever their source."""

    database_url: _Value
    jwt_secret: _Value
    jitsi_domain: _Value
    public_host: _Value
    turn_host: _Value
    credentials_mode: str
    turn_username: _Value
    turn_password: _Value
    turn_shared_secret: _Value
    demo_password: _Value
    demo_seed_enabled: bool
    demo_seed_field: str


def check_platform(
    platform: Platform,
    secrets: Secrets,
    environment: str | None = None,
    *,
    allow_missing_secrets: bool = False,
) -> list[Finding]:
    """Every finding for a CallPlatform, given the Secrets of its namespace.

    With `allow_missing_secrets`, a Secret absent from `secrets` is taken to exist elsewhere (a
    pipeline that keeps Secrets out of Git): no CP010, and its values are not judged.
    """
    env = environment if environment is not None else platform.environment
    out = _Collector(platform.object_ref, env, allow_missing_secrets)
    try:
        lookup = _as_lookup(secrets)
        _check_environment(out, env, "--environment" if environment is not None else "spec.environment")
        for path, problem in platform.malformed:
            out.add("CP011", path, f"{path} {problem}.")
        checklist = _checklist_from_platform(platform, lookup, out)
        _check_checklist(out, checklist)
        _check_spec(out, platform)
    except Exception:  # never leak an exception (or the value inside it) to callers
        out.add(
            "CP011", "spec", "The platform could not be checked completely; a value has an unexpected type."
        )
    return _sorted(out.findings)


def check_env(env_vars: Mapping[str, str], environment: str, source: str = "env file") -> list[Finding]:
    """Every finding for the production checklist given as environment variables."""
    out = _Collector(source, environment)
    try:
        _check_environment(out, environment, "--environment")
        checklist = _checklist_from_env(env_vars, out)
        _check_checklist(out, checklist)
    except Exception:  # never leak an exception (or the value inside it) to callers
        out.add(
            "CP011", "env", "The env file could not be checked completely; a value has an unexpected type."
        )
    return _sorted(out.findings)


def _sorted(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.object, f.rule, f.field, f.message))


def _as_lookup(secrets: Secrets) -> Callable[[str], Mapping[str, str] | None]:
    if isinstance(secrets, Mapping):
        mapping = secrets
        return lambda name: mapping.get(name)
    return secrets


def _check_environment(out: _Collector, environment: str, field_path: str) -> None:
    if environment not in ENVIRONMENTS:
        out.add(
            "CP011",
            field_path,
            f"Environment must be one of {', '.join(ENVIRONMENTS)}; judged as production until it is.",
        )


# -- sources ------------------------------------------------------------------------------------


def _resolve(
    lookup: Callable[[str], Mapping[str, str] | None], ref: SecretKeyRef, path: str, out: _Collector
) -> _Value:
    source = ref.describe()
    if not ref.name or not ref.key:
        out.add("CP011", path, f"{path} needs both a Secret name and a key.")
        return _Value(path, source, None, absent_is_missing=False)
    data = lookup(ref.name)
    if data is None and out.allow_missing_secrets:
        return _Value(path, source, None, absent_is_missing=False)
    if data is None:
        out.add(
            "CP010",
            path,
            f"Secret {ref.name!r} does not exist in the platform's namespace; create it with key {ref.key!r}.",
        )
        return _Value(path, source, None, absent_is_missing=False)
    value = data.get(ref.key)
    if value is None:
        out.add("CP010", path, f"Secret {ref.name!r} has no key {ref.key!r}; add it or fix {path}.")
        return _Value(path, source, None, absent_is_missing=False)
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    elif not isinstance(value, str):
        out.add("CP011", path, f"{source} must hold a string value.")
        return _Value(path, source, None, absent_is_missing=False)
    return _Value(path, source, value)


def _spec_value(value: str, path: str) -> _Value:
    return _Value(path, path, value)


def _checklist_from_platform(
    platform: Platform, lookup: Callable[[str], Mapping[str, str] | None], out: _Collector
) -> _Checklist:
    creds = platform.turn.credentials
    rest = creds.mode == "rest"
    cred_path = "spec.turn.credentials.secretRef"
    unused = _Value("", "", None, absent_is_missing=False)
    demo_ref = platform.demo_seed.password_ref
    return _Checklist(
        database_url=_resolve(lookup, platform.database.url_ref, "spec.database.urlSecretRef", out),
        jwt_secret=_resolve(lookup, platform.jitsi.jwt.secret_ref, "spec.jitsi.jwt.secretRef", out),
        jitsi_domain=_spec_value(platform.jitsi.domain, "spec.jitsi.domain"),
        public_host=_spec_value(platform.jitsi.public_host, "spec.jitsi.publicHost"),
        turn_host=_spec_value(platform.turn.host, "spec.turn.host"),
        credentials_mode=creds.mode,
        turn_username=unused
        if rest
        else _resolve(lookup, creds.username_ref, f"{cred_path}.usernameKey", out),
        turn_password=unused
        if rest
        else _resolve(lookup, creds.password_ref, f"{cred_path}.passwordKey", out),
        turn_shared_secret=(
            _resolve(lookup, creds.shared_secret_ref, f"{cred_path}.sharedSecretKey", out) if rest else unused
        ),
        demo_password=(
            unused if demo_ref is None else _resolve(lookup, demo_ref, "spec.demoSeed.passwordSecretRef", out)
        ),
        demo_seed_enabled=platform.demo_seed.enabled,
        demo_seed_field="spec.demoSeed.enabled",
    )


def _env_value(env_vars: Mapping[str, str], name: str) -> _Value:
    value = env_vars.get(name)
    return _Value(name, f"variable {name}", value if isinstance(value, str) else None)


def _checklist_from_env(env_vars: Mapping[str, str], out: _Collector) -> _Checklist:
    rest = "TURN_SHARED_SECRET" in env_vars and "TURN_PASSWORD" not in env_vars
    unused = _Value("", "", None, absent_is_missing=False)
    demo_flag = env_vars.get("ALLOW_DEMO_SEED", "")
    demo_enabled = parse_bool(demo_flag) if isinstance(demo_flag, str) else None
    if demo_enabled is None:
        out.add("CP011", "ALLOW_DEMO_SEED", "ALLOW_DEMO_SEED must be true or false (or 1/0, yes/no).")
    demo_password = _env_value(env_vars, "DEMO_USER_PASSWORD")
    return _Checklist(
        database_url=_env_value(env_vars, "DATABASE_URL"),
        jwt_secret=_env_value(env_vars, "JITSI_JWT_SECRET"),
        jitsi_domain=_env_value(env_vars, "JITSI_DOMAIN"),
        public_host=_env_value(env_vars, "JITSI_PUBLIC_HOST"),
        turn_host=_env_value(env_vars, "TURN_HOST"),
        credentials_mode="rest" if rest else "static",
        turn_username=unused if rest else _env_value(env_vars, "TURN_USERNAME"),
        turn_password=unused if rest else _env_value(env_vars, "TURN_PASSWORD"),
        turn_shared_secret=_env_value(env_vars, "TURN_SHARED_SECRET") if rest else unused,
        demo_password=demo_password if demo_password.value is not None else unused,
        demo_seed_enabled=bool(demo_enabled),
        demo_seed_field="ALLOW_DEMO_SEED",
    )


# -- checklist rules (both sources) -------------------------------------------------------------


def _check_checklist(out: _Collector, c: _Checklist) -> None:
    required = [c.database_url, c.jwt_secret, c.jitsi_domain, c.public_host, c.turn_host]
    required += [c.turn_shared_secret] if c.credentials_mode == "rest" else [c.turn_username, c.turn_password]
    for item in required:
        if item.value is None and item.absent_is_missing:
            out.add("CP002", item.field, f"{item.source} is not set; the platform needs it to run calls.")
        elif item.value is not None and not item.value.strip():
            out.add("CP002", item.field, f"{item.source} is empty; the platform needs it to run calls.")

    _check_secret_strength(out, c)
    _check_turn_credential_syntax(out, c)
    _check_database_url(out, c.database_url)
    _check_secret_reuse(out, c)

    for item in (c.public_host, c.turn_host):
        if item.value and not is_bare_hostname(item.value):
            out.add(
                "CP007",
                item.field,
                f"{item.source} {hostname_problem(item.value)}; give a bare hostname such as "
                "meet.example.com so it can be pinned in the Content-Security-Policy.",
            )
    if c.jitsi_domain.value and not is_bare_hostname(c.jitsi_domain.value):
        out.add(
            "CP011",
            c.jitsi_domain.field,
            f"{c.jitsi_domain.source} {hostname_problem(c.jitsi_domain.value)}; the XMPP domain must be a "
            "bare DNS name such as meet.internal.example.",
        )

    if c.demo_seed_enabled:
        out.add(
            "CP003",
            c.demo_seed_field,
            "The demo seed creates users with a known password; disable it in production.",
        )
    bcrypt = bcrypt_problem(c.demo_password.value) if c.demo_password.value else None
    if bcrypt is not None:
        out.add("CP004", c.demo_password.field, f"{c.demo_password.source} {bcrypt}.")


def _check_secret_strength(out: _Collector, c: _Checklist) -> None:
    """Secrets as the app uses them (rules/secret_values.py says exactly what is counted)."""
    for item in (c.jwt_secret, c.database_url, c.demo_password):  # TURN values: CP017 covers it
        if item.value and item.value.strip():
            padding = padding_problem(item.value)
            if padding is not None:
                out.add("CP021", item.field, f"{item.source} {padding}; store the value without it.")
    jwt = c.jwt_secret.value
    if jwt and jwt.strip() and meaningful_length(jwt) < MIN_JWT_SECRET_LENGTH:
        out.add(
            "CP001",
            c.jwt_secret.field,
            f"{c.jwt_secret.source} has {meaningful_length(jwt)} characters (whitespace and control "
            f"characters not counted); use at least {MIN_JWT_SECRET_LENGTH} random characters.",
        )
    minimums = (
        (c.jwt_secret, 0),
        (c.turn_password, MIN_TURN_PASSWORD_LENGTH),
        (c.turn_shared_secret, MIN_TURN_SHARED_SECRET_LENGTH),
    )
    for item, minimum in minimums:
        if item.value and item.value.strip():
            _check_strength(out, item.field, item.source, item.value, minimum)


def _check_strength(out: _Collector, field_path: str, source: str, value: str, minimum: int) -> None:
    if not out.applies("CP006"):
        return  # zxcvbn costs milliseconds: only where the rule is on
    why = weakness(value.strip())
    if why is not None:
        out.add("CP006", field_path, f"{source} {why}; replace it with a random value.")
        return
    length = meaningful_length(value)
    if length < minimum:
        out.add(
            "CP006",
            field_path,
            f"{source} has {length} characters; use at least {minimum} random characters.",
        )
        return
    estimate = strength(value)
    if estimate.weak and estimate.guesses_log10 is not None:
        out.add(
            "CP006",
            field_path,
            f"{source} is guessable in about 10^{estimate.guesses_log10:.0f} tries by zxcvbn's estimate "
            f"(repetition, dictionary words, keyboard or date patterns; at least 10^{MIN_GUESSES_LOG10:.0f} "
            "needed); replace it with a random value.",
        )


def _check_turn_credential_syntax(out: _Collector, c: _Checklist) -> None:
    for item, username in ((c.turn_username, True), (c.turn_password, False), (c.turn_shared_secret, False)):
        if not item.value:
            continue
        problem = credential_problem(item.value, username=username)
        if problem is not None:
            out.add(
                "CP017",
                item.field,
                f"{item.source} {problem}; coturn would not read it as written (see CP017).",
            )
        if not item.value.isascii():
            out.add(
                "CP020",
                item.field,
                f"{item.source} has non-ASCII characters; browsers and TURN servers disagree on how to "
                "encode them, so some clients will fail to authenticate. Use ASCII characters only.",
            )


def _check_secret_reuse(out: _Collector, c: _Checklist) -> None:
    db_password = inspect_database_url(c.database_url.value).password if c.database_url.value else ""
    secrets = [
        (c.jwt_secret.field, c.jwt_secret.source, c.jwt_secret.value),
        (c.turn_password.field, c.turn_password.source, c.turn_password.value),
        (c.turn_shared_secret.field, c.turn_shared_secret.source, c.turn_shared_secret.value),
        (c.database_url.field, f"the database password in {c.database_url.source}", db_password),
    ]
    present = [
        (field_path, source, value) for field_path, source, value in secrets if value and value.strip()
    ]
    for index, (_, source, value) in enumerate(present):
        for other_field, other_source, other_value in present[index + 1 :]:
            if value == other_value:
                out.add(
                    "CP016",
                    other_field,
                    f"{other_source} has the same value as {source}; give each purpose its own random value.",
                )


def _check_database_url(out: _Collector, item: _Value) -> None:
    if not item.value or not item.value.strip():
        return
    url = inspect_database_url(item.value)
    for problem in url.problems:
        out.add("CP005", item.field, f"The PostgreSQL URL in {item.source} {problem}.")
    if url.password:
        _check_strength(out, item.field, f"The database password in {item.source}", url.password, 0)
    if url.sslmode == "disable":
        out.add(
            "CP009",
            item.field,
            f"The PostgreSQL URL in {item.source} sets sslmode=disable; use sslmode=require or verify-full.",
        )


# -- spec-only rules ----------------------------------------------------------------------------


def _check_port(out: _Collector, value: int, path: str, allow_zero: bool = False) -> None:
    if allow_zero and value == 0:
        return
    if not 1 <= value <= 65535:
        out.add("CP011", path, f"{path} must be a port number in 1-65535, got {value}.")


def _check_at_least(out: _Collector, value: int, path: str, minimum: int) -> None:
    if value < minimum:
        out.add("CP011", path, f"{path} must be at least {minimum}, got {value}.")


def _check_turn_server(out: _Collector, platform: Platform) -> None:
    """spec.turn.server, judged only when the operator runs coturn."""
    server, path = platform.turn.server, "spec.turn.server"
    if not server.managed:
        return
    if server.mode not in SERVER_MODES:
        out.add("CP011", f"{path}.mode", f"{path}.mode must be one of {', '.join(SERVER_MODES)}.")
    if server.service_type not in SERVICE_TYPES:
        out.add(
            "CP011", f"{path}.service.type", f"{path}.service.type must be one of {', '.join(SERVICE_TYPES)}."
        )
    _check_at_least(out, server.replicas, f"{path}.replicas", 1)
    _check_at_least(out, server.termination_grace_period_seconds, f"{path}.terminationGracePeriodSeconds", 0)
    if not server.repository.strip():
        out.add("CP011", f"{path}.image.repository", f"{path}.image.repository is required.")
    if server.digest and not _DIGEST.fullmatch(server.digest):
        out.add(
            "CP011",
            f"{path}.image.digest",
            f"{path}.image.digest must be sha256: followed by 64 lowercase hex digits.",
        )
    if server.external_ip and not _is_ip(server.external_ip):
        out.add("CP011", f"{path}.externalIP", f"{path}.externalIP must be an IP address.")
    if not server.digest and server.tag.strip() in ("", "latest"):
        why = "is empty" if not server.tag.strip() else "is latest"
        out.add("CP018", f"{path}.image.tag", f"{path}.image.tag {why}; pin a coturn version (and a digest).")


_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _check_spec(out: _Collector, platform: Platform) -> None:
    turn, calls, relay = platform.turn, platform.calls, platform.turn.relay
    if turn.credentials.mode not in CREDENTIAL_MODES:
        out.add(
            "CP011",
            "spec.turn.credentials.mode",
            "spec.turn.credentials.mode must be static or rest; judged as static until it is.",
        )
    _check_port(out, turn.port, "spec.turn.port")
    _check_port(out, turn.tls_port, "spec.turn.tlsPort")
    _check_port(out, turn.prometheus_port, "spec.turn.prometheusPort", allow_zero=True)
    _check_port(out, calls.port, "spec.calls.port")
    _check_port(out, relay.min_port, "spec.turn.relay.minPort")
    _check_port(out, relay.max_port, "spec.turn.relay.maxPort")
    if relay.min_port > relay.max_port:
        out.add(
            "CP011",
            "spec.turn.relay",
            f"spec.turn.relay.minPort ({relay.min_port}) must not exceed maxPort ({relay.max_port}).",
        )
    _check_at_least(out, relay.user_quota, "spec.turn.relay.userQuota", 0)
    _check_at_least(out, relay.total_quota, "spec.turn.relay.totalQuota", 0)
    _check_at_least(out, turn.credentials.rest_ttl_seconds, "spec.turn.credentials.restTTLSeconds", 60)
    _check_at_least(out, calls.replicas, "spec.calls.replicas", 0)
    _check_at_least(out, calls.migration.backoff_limit, "spec.calls.migration.backoffLimit", 0)
    _check_at_least(
        out, calls.migration.active_deadline_seconds, "spec.calls.migration.activeDeadlineSeconds", 1
    )
    _check_at_least(
        out, calls.migration.ttl_seconds_after_finished, "spec.calls.migration.ttlSecondsAfterFinished", 0
    )
    _check_at_least(
        out, platform.monitoring.probe_interval_seconds, "spec.monitoring.probeIntervalSeconds", 1
    )
    for path, problem in spec_text_problems(platform):
        out.add("CP019", path, f"{path} {problem}.")
    if turn.probe_host and not is_bare_hostname(turn.probe_host):
        out.add("CP011", "spec.turn.probeHost", f"spec.turn.probeHost {hostname_problem(turn.probe_host)}.")

    for index, cidr in enumerate(relay.allowed_peer_cidrs):
        path = f"spec.turn.relay.allowedPeerCIDRs[{index}]"
        verdict = judge_peer_cidr(cidr)
        if not verdict.parsed:
            out.add("CP011", path, f"{path} is not a CIDR such as 203.0.113.0/24.")
        elif verdict.opens:
            out.add(
                "CP008",
                path,
                f"{path} ({cidr.strip()}) lets the TURN relay reach {', '.join(verdict.opens)}; "
                "remove it from allowedPeerCIDRs.",
            )

    _check_turn_server(out, platform)

    if calls.allow_unsafe_inline_styles:
        out.add(
            "CP012",
            "spec.calls.allowUnsafeInlineStyles",
            "The CSP allows style-src 'unsafe-inline' (security debt); set allowUnsafeInlineStyles: false "
            "once the frontend no longer needs inline styles.",
        )
    if not platform.jitsi.jwt.app_id.strip():
        out.add(
            "CP013",
            "spec.jitsi.jwt.appId",
            "spec.jitsi.jwt.appId is empty; set the JWT issuer Jitsi accepts.",
        )
    if calls.replicas < 2:
        out.add("CP014", "spec.calls.replicas", f"spec.calls.replicas is {calls.replicas}; run at least 2.")
    if not calls.image.strip():
        out.add("CP011", "spec.calls.image", "spec.calls.image is required: the calls backend image to run.")
    else:
        why = image_unpinned(calls.image)
        if why is not None:
            out.add(
                "CP015",
                "spec.calls.image",
                f"spec.calls.image {why}; pin a version tag or a digest.",
            )
