"""What to probe for a platform: built from its spec and the decoded values of its Secrets.

Configuration problems (a missing Secret key, a weak JWT secret in production)
become `NotRunnable` targets, which report as failing probes with a bounded
reason and a message naming the field, never the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from callplatform.model import Platform, SecretKeyRef
from callplatform.probes.credentials import RestAuth, StaticAuth, TurnAuth
from callplatform.probes.headers import HeadersCheck, headers_targets
from callplatform.probes.jitsi import HttpCheck, JwtMint
from callplatform.probes.tls import DEFAULT_TLS, TlsOptions, tls_from_environment
from callplatform.probes.turn import TurnEndpoint
from callplatform.render.coturn_server import coturn_name, has_tls

MIN_PRODUCTION_JWT_SECRET_LENGTH = 32
DEFAULT_PROBE_TIMEOUT_SECONDS = 5.0
REST_PROBE_TTL_SECONDS = 300


@dataclass(frozen=True, slots=True)
class TurnBindingTarget:
    endpoint: TurnEndpoint

    @property
    def probe(self) -> str:
        return self.endpoint.transport


@dataclass(frozen=True, slots=True)
class TurnAllocateTarget:
    endpoint: TurnEndpoint
    auth: TurnAuth
    probe: str = "allocate"


@dataclass(frozen=True, slots=True)
class TurnAclTarget:
    """After an Allocate with `auth`, every internal peer must be refused (probes/turn_acl.py)."""

    endpoint: TurnEndpoint
    auth: TurnAuth
    probe: str = "acl"


def acl_targets(targets: tuple[ProbeTarget, ...]) -> list[TurnAclTarget]:
    """An ACL probe for every endpoint the platform allocates on, with the same credentials."""
    return [TurnAclTarget(t.endpoint, t.auth) for t in targets if isinstance(t, TurnAllocateTarget)]


@dataclass(frozen=True, slots=True)
class TurnRelayTarget:
    """Two allocations with `auth` relay packets to each other (probes/turn_relay.py)."""

    endpoint: TurnEndpoint
    auth: TurnAuth
    probe: str = "relay"


def relay_targets(targets: tuple[ProbeTarget, ...]) -> list[TurnRelayTarget]:
    """A relay data-path probe for every UDP endpoint the platform allocates on."""
    return [
        TurnRelayTarget(t.endpoint, t.auth)
        for t in targets
        if isinstance(t, TurnAllocateTarget) and t.endpoint.transport == "udp"
    ]


@dataclass(frozen=True, slots=True)
class NotRunnable:
    """A probe that cannot run because of configuration; it reports as this failure."""

    component: str
    probe: str
    reason: str
    message: str


ProbeTarget = (
    TurnBindingTarget
    | TurnAllocateTarget
    | TurnAclTarget
    | TurnRelayTarget
    | HttpCheck
    | HeadersCheck
    | NotRunnable
)


def target_component(target: ProbeTarget) -> str:
    if isinstance(target, TurnBindingTarget | TurnAllocateTarget | TurnRelayTarget):
        return "coturn"
    if isinstance(target, TurnAclTarget):
        return "coturn_acl"
    return target.component


@dataclass(frozen=True, slots=True)
class ProbeTargets:
    targets: tuple[ProbeTarget, ...] = ()
    tls: TlsOptions = DEFAULT_TLS
    timeout_seconds: float = DEFAULT_PROBE_TIMEOUT_SECONDS

    def components(self) -> tuple[str, ...]:
        seen: list[str] = []
        for target in self.targets:
            component = target_component(target)
            if component not in seen:
                seen.append(component)
        return tuple(seen)


def _secret_value(secrets: Mapping[str, Mapping[str, str]], ref: SecretKeyRef) -> str | None:
    value = secrets.get(ref.name, {}).get(ref.key)
    return value if value else None


def _missing(component: str, probe: str, ref: SecretKeyRef) -> NotRunnable:
    return NotRunnable(component, probe, "missing_secret", f"{ref.describe()} is missing or empty")


def turn_probe_host(platform: Platform) -> str:
    """spec.turn.probeHost if set; else a managed coturn's own Service (the operator probes it from
    inside the cluster); else the public spec.turn.host of an external coturn."""
    turn = platform.turn
    if turn.probe_host:
        return turn.probe_host
    if turn.server.managed and platform.namespace:
        return f"{coturn_name(platform)}.{platform.namespace}.svc"
    return turn.host


def coturn_targets(platform: Platform, secrets: Mapping[str, Mapping[str, str]]) -> list[ProbeTarget]:
    turn = platform.turn
    host = turn_probe_host(platform)
    if not host:
        return [NotRunnable("coturn", "udp", "not_configured", "spec.turn.host is empty")]
    targets: list[ProbeTarget] = [
        TurnBindingTarget(TurnEndpoint(host, turn.port, "udp")),
        TurnBindingTarget(TurnEndpoint(host, turn.port, "tcp")),
    ]
    if turn.tls_port and (
        has_tls(platform) or not turn.server.managed
    ):  # a managed coturn: TLS only with a certificate
        targets.append(TurnBindingTarget(TurnEndpoint(host, turn.tls_port, "tls", server_name=turn.host)))
    creds = turn.credentials
    auth: TurnAuth
    if creds.mode == "rest":
        shared = _secret_value(secrets, creds.shared_secret_ref)
        if shared is None:
            return [*targets, _missing("coturn", "allocate", creds.shared_secret_ref)]
        auth = RestAuth(shared, ttl_seconds=REST_PROBE_TTL_SECONDS)
    else:
        username = _secret_value(secrets, creds.username_ref)
        password = _secret_value(secrets, creds.password_ref)
        if username is None:
            return [*targets, _missing("coturn", "allocate", creds.username_ref)]
        if password is None:
            return [*targets, _missing("coturn", "allocate", creds.password_ref)]
        auth = StaticAuth(username, password)
    targets.append(TurnAllocateTarget(TurnEndpoint(host, turn.port, "udp"), auth))
    return targets


def jitsi_setting_checks(platform: Platform) -> list[HttpCheck]:
    """Probes of endpoints a Jitsi default turns off; only when their URL is set (no derived host)."""
    probes = platform.jitsi.probes
    checks = []
    if probes.prosody_health_url:
        checks.append(HttpCheck("prosody", probes.prosody_health_url, service="prosody"))
    if probes.colibri_stats_url:
        checks.append(HttpCheck("colibri", probes.colibri_stats_url, service="colibri"))
    return checks


def jvb_metrics_probe(index: int) -> str:
    return "jvb_metrics" if index == 0 else f"jvb_metrics_{index}"


def jitsi_metrics_checks(platform: Platform) -> list[HttpCheck]:
    """jicofo's and each videobridge's /metrics (spec.jitsi.metrics), read as Prometheus text."""
    spec = platform.jitsi.metrics
    checks = []
    if spec.jicofo_url:
        checks.append(HttpCheck("jicofo_metrics", spec.jicofo_url, kind="metrics", service="jicofo"))
    for index, url in enumerate(spec.jvb_urls):
        checks.append(
            HttpCheck(
                jvb_metrics_probe(index),
                url,
                kind="metrics",
                service="jvb",
                stress_threshold=spec.stress_threshold,
            )
        )
    return checks


def jitsi_targets(platform: Platform, secrets: Mapping[str, Mapping[str, str]]) -> list[ProbeTarget]:
    jitsi = platform.jitsi
    probes = jitsi.probes
    host = jitsi.public_host
    if not host and not (probes.web_url and probes.bosh_url):
        return [NotRunnable("jitsi", "web", "not_configured", "spec.jitsi.publicHost is empty")]
    namespace = platform.namespace or "default"
    targets: list[ProbeTarget] = [
        HttpCheck("web", probes.web_url or f"https://{host}/"),
        HttpCheck(
            "bosh", probes.bosh_url or f"https://{host}/http-bind", kind="bosh", bosh_domain=jitsi.domain
        ),
        HttpCheck(
            "jvb", probes.jvb_health_url or f"http://jvb.{namespace}.svc:8080/about/health", service="jvb"
        ),
        HttpCheck(
            "jicofo",
            probes.jicofo_health_url or f"http://jicofo.{namespace}.svc:8888/about/health",
            service="jicofo",
        ),
        *jitsi_setting_checks(platform),
        *jitsi_metrics_checks(platform),
    ]
    jwt_ref = jitsi.jwt.secret_ref
    secret = _secret_value(secrets, jwt_ref)
    production = platform.environment == "production"
    if secret is None:
        if production or probes.token_url:
            targets.append(_missing("jitsi", "jwt", jwt_ref))
        return targets
    if production and len(secret) < MIN_PRODUCTION_JWT_SECRET_LENGTH:
        targets.append(
            NotRunnable(
                "jitsi",
                "jwt",
                "weak_secret",
                f"the Jitsi JWT secret ({jwt_ref.describe()}) is shorter than "
                f"{MIN_PRODUCTION_JWT_SECRET_LENGTH} characters, which production does not allow",
            )
        )
        return targets
    if probes.token_url:
        mint = JwtMint(
            secret=secret, app_id=jitsi.jwt.app_id, audience=jitsi.jwt.audience, subject=jitsi.domain or "*"
        )
        targets.append(HttpCheck("jwt", probes.token_url, token=mint))
    return targets


def build_targets(
    platform: Platform,
    secrets: Mapping[str, Mapping[str, str]],
    *,
    tls: TlsOptions | None = None,
    timeout_seconds: float = DEFAULT_PROBE_TIMEOUT_SECONDS,
    turn_acl: bool = True,
    turn_relay: bool = True,
) -> ProbeTargets:
    """Every probe of a platform. `secrets` maps Secret name -> key -> decoded value.

    The operator always runs the TURN ACL probe (CoturnSecure) and, unless
    spec.monitoring.turnRelayProbe is false, the relay data-path probe (part of CoturnHealthy);
    the CLI only with --turn-acl and --turn-relay.

    Without `tls`, the operator-wide settings from the environment apply (`tls_from_environment`).
    """
    coturn = tuple(coturn_targets(platform, secrets))
    return ProbeTargets(
        targets=(
            *jitsi_targets(platform, secrets),
            *coturn,
            *(acl_targets(coturn) if turn_acl else ()),
            *(relay_targets(coturn) if turn_relay and platform.monitoring.turn_relay else ()),
            *headers_targets(platform),
        ),
        tls=tls if tls is not None else tls_from_environment(),
        timeout_seconds=timeout_seconds,
    )
