"""The CallPlatform spec as typed, immutable values.

`parse_platform` never raises: a field of the wrong type falls back to its
default and is recorded in `Platform.malformed`, which the rules engine reports
as CP011. The API server's schema catches most of these at `kubectl apply`; the
offline validator and the operator must still survive whatever they are given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

ENVIRONMENTS = ("production", "staging", "development")
DEFAULT_SECRET_NAME = "calls-secrets"
# The migration and demo seed Jobs: enough for `prisma migrate deploy`, bounded so a runaway
# migration cannot starve the namespace.
DEFAULT_JOB_RESOURCES: Mapping[str, Any] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"cpu": "1", "memory": "512Mi"},
}


@dataclass(frozen=True, slots=True)
class SecretKeyRef:
    name: str
    key: str

    def describe(self) -> str:
        return f"Secret {self.name!r} key {self.key!r}"


@dataclass(frozen=True, slots=True)
class JwtSpec:
    app_id: str
    secret_ref: SecretKeyRef
    audience: str = "jitsi"
    generate: bool = False


@dataclass(frozen=True, slots=True)
class JitsiProbeSpec:
    """Where the health monitor looks. Empty means derived from the public host."""

    web_url: str = ""
    bosh_url: str = ""
    jvb_health_url: str = ""
    jicofo_health_url: str = ""
    token_url: str = ""
    prosody_health_url: str = ""  # prosody's mod_http_health /health; empty skips the probe
    colibri_stats_url: str = ""  # the videobridge's /colibri/stats; empty skips the probe


@dataclass(frozen=True, slots=True)
class JitsiMetricsSpec:
    """Jitsi's own /metrics, read on every probe round. Empty means not read."""

    jicofo_url: str = ""
    jvb_urls: tuple[str, ...] = ()
    stress_threshold: float = 0.8

    @property
    def enabled(self) -> bool:
        return bool(self.jicofo_url or self.jvb_urls)


@dataclass(frozen=True, slots=True)
class JitsiSpec:
    domain: str
    public_host: str
    jwt: JwtSpec
    probes: JitsiProbeSpec = JitsiProbeSpec()
    metrics: JitsiMetricsSpec = JitsiMetricsSpec()


@dataclass(frozen=True, slots=True)
class TurnCredentialsSpec:
    mode: str  # "static" | "rest"
    secret_name: str
    username_key: str = "TURN_USERNAME"
    password_key: str = "TURN_PASSWORD"
    shared_secret_key: str = "TURN_SHARED_SECRET"
    generate: bool = False
    rest_ttl_seconds: int = 86400

    @property
    def username_ref(self) -> SecretKeyRef:
        return SecretKeyRef(self.secret_name, self.username_key)

    @property
    def password_ref(self) -> SecretKeyRef:
        return SecretKeyRef(self.secret_name, self.password_key)

    @property
    def shared_secret_ref(self) -> SecretKeyRef:
        return SecretKeyRef(self.secret_name, self.shared_secret_key)


@dataclass(frozen=True, slots=True)
class TurnRelaySpec:
    allowed_peer_cidrs: tuple[str, ...] = ()
    min_port: int = 49152
    max_port: int = 65535
    user_quota: int = 12
    total_quota: int = 1200


SERVER_MODES = ("Deployment", "DaemonSet")
SERVICE_TYPES = ("LoadBalancer", "NodePort")
DEFAULT_COTURN_IMAGE = "coturn/coturn"
DEFAULT_COTURN_TAG = "4.6.3"


@dataclass(frozen=True, slots=True)
class TurnServerSpec:
    """coturn run by the operator (`managed`), or by the platform team (the default)."""

    managed: bool = False
    mode: str = "Deployment"  # or "DaemonSet" (hostNetwork: the relay range on the nodes' addresses)
    repository: str = DEFAULT_COTURN_IMAGE
    tag: str = DEFAULT_COTURN_TAG
    digest: str = ""  # sha256:...; pins the image whatever the tag points at
    replicas: int = 2
    service_type: str = "LoadBalancer"
    termination_grace_period_seconds: int = 300
    external_ip: str = ""  # coturn's external-ip: the public address behind a NAT or load balancer
    resources: Mapping[str, Any] = field(default_factory=dict)

    @property
    def image(self) -> str:
        reference = f"{self.repository}:{self.tag}" if self.tag else self.repository
        return f"{reference}@{self.digest}" if self.digest else reference

    @property
    def host_network(self) -> bool:
        return self.mode == "DaemonSet"


@dataclass(frozen=True, slots=True)
class TurnSpec:
    host: str
    credentials: TurnCredentialsSpec
    port: int = 3478
    tls_port: int = 5349
    realm: str = ""
    relay: TurnRelaySpec = TurnRelaySpec()
    probe_host: str = ""  # address the monitor probes; defaults to host
    prometheus_port: int = 0  # 0: no Prometheus listener (Debian's coturn has no support)
    tls_secret_name: str = ""  # spec.turn.tls.secretRef.name: a kubernetes.io/tls Secret (tls.crt, tls.key)
    server: TurnServerSpec = TurnServerSpec()

    @property
    def effective_realm(self) -> str:
        return self.realm or self.host

    @property
    def effective_probe_host(self) -> str:
        return self.probe_host or self.host


@dataclass(frozen=True, slots=True)
class CallLogSpec:
    table: str = "callLog"
    started_at_column: str = "started_at"
    ended_at_column: str = "ended_at"
    duration_column: str = "duration_seconds"
    participants_column: str = ""  # a count column on the call log, if any
    participants_table: str = ""  # or a table with one row per participant
    participants_call_id_column: str = "call_id"
    participants_left_at_column: str = "left_at"
    id_column: str = "id"
    # For the observed start and join rates (spec.calls.rateLimits); empty: that rate is not observed.
    started_by_column: str = ""  # the user who started the call
    participants_joined_at_column: str = ""  # when a participant joined (participants table)
    participants_user_column: str = ""  # the participant's user (participants table)


@dataclass(frozen=True, slots=True)
class DatabaseSpec:
    url_ref: SecretKeyRef
    call_log: CallLogSpec = CallLogSpec()
    metrics_enabled: bool = True


@dataclass(frozen=True, slots=True)
class MigrationSpec:
    command: tuple[str, ...] = ("npx", "prisma", "migrate", "deploy")
    backoff_limit: int = 1
    active_deadline_seconds: int = 600
    ttl_seconds_after_finished: int = 3600


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Events per minute; 0 means no limit."""

    per_user_per_minute: int = 0
    global_per_minute: int = 0


@dataclass(frozen=True, slots=True)
class CallRateLimits:
    """How often calls may be started and joined (the app enforces them; the operator watches)."""

    starts: RateLimit = RateLimit()
    joins: RateLimit = RateLimit()

    def by_event_and_scope(self) -> dict[tuple[str, str], int]:
        """(starts|joins, global|per_user) -> per minute, 0 meaning no limit (metric labels use these)."""
        return {
            ("starts", "global"): self.starts.global_per_minute,
            ("starts", "per_user"): self.starts.per_user_per_minute,
            ("joins", "global"): self.joins.global_per_minute,
            ("joins", "per_user"): self.joins.per_user_per_minute,
        }


@dataclass(frozen=True, slots=True)
class CallsSpec:
    image: str
    replicas: int = 2
    port: int = 3000
    command: tuple[str, ...] = ("npm", "run", "start:deploy")
    migration: MigrationSpec = MigrationSpec()
    resources: Mapping[str, Any] = field(default_factory=dict)
    image_pull_secrets: tuple[str, ...] = ()
    allow_unsafe_inline_styles: bool = True
    rate_limits: CallRateLimits = CallRateLimits()
    liveness_probe_path: str = ""  # empty: no liveness probe (readiness is a TCP check)
    job_resources: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_JOB_RESOURCES))


@dataclass(frozen=True, slots=True)
class DemoSeedSpec:
    enabled: bool = False
    password_ref: SecretKeyRef | None = None
    command: tuple[str, ...] = ("npm", "run", "seed:demo")


@dataclass(frozen=True, slots=True)
class MonitoringSpec:
    enabled: bool = True
    probe_interval_seconds: int = 30
    turn_relay: bool = True  # the relay data-path probe (part of CoturnHealthy)


@dataclass(frozen=True, slots=True)
class GatewayParentRef:
    """A Gateway the HTTPRoute attaches to (Gateway API `parentRefs` entry)."""

    name: str
    namespace: str = ""  # empty: the platform's namespace
    section_name: str = ""  # a listener of that Gateway, or empty for all


@dataclass(frozen=True, slots=True)
class HeadersProbeSpec:
    """Where the headers probe fetches each scope. Empty URLs derive from the gateway hostname."""

    enabled: bool = True
    root_url: str = ""
    call_url: str = ""
    chat_url: str = ""


@dataclass(frozen=True, slots=True)
class GatewaySpec:
    """Serve the security headers through a Gateway API HTTPRoute (opt-in: no parent, no route)."""

    parent_refs: tuple[GatewayParentRef, ...] = ()
    hostname: str = ""
    headers_probe: HeadersProbeSpec = HeadersProbeSpec()

    @property
    def route_enabled(self) -> bool:
        return bool(self.parent_refs)

    def probe_urls(self) -> dict[str, str]:
        """Scope -> URL the headers probe fetches; empty when there is nothing to fetch."""
        probe = self.headers_probe
        base = f"https://{self.hostname}" if self.hostname else ""
        urls = {
            "default": probe.root_url or (f"{base}/" if base else ""),
            "/call": probe.call_url or (f"{base}/call" if base else ""),
            "/chat": probe.chat_url or (f"{base}/chat" if base else ""),
        }
        return {scope: url for scope, url in urls.items() if url}

    @property
    def headers_probe_enabled(self) -> bool:
        """A hostname (or explicit URLs) alone, without parentRefs, probes an ingress the operator
        does not manage: the check is the same either way."""
        return self.headers_probe.enabled and bool(self.probe_urls())


@dataclass(frozen=True, slots=True)
class Platform:
    namespace: str
    name: str
    environment: str
    jitsi: JitsiSpec
    turn: TurnSpec
    database: DatabaseSpec
    calls: CallsSpec
    demo_seed: DemoSeedSpec
    monitoring: MonitoringSpec
    gateway: GatewaySpec = GatewaySpec()
    generation: int = 0
    uid: str = ""
    malformed: tuple[tuple[str, str], ...] = ()  # (field path, what is wrong)

    @property
    def object_ref(self) -> str:
        return f"CallPlatform {self.namespace}/{self.name}" if self.namespace else f"CallPlatform {self.name}"

    def secret_refs(self) -> list[tuple[str, SecretKeyRef]]:
        """Every (spec field, reference) the platform reads, in a stable order."""
        creds = self.turn.credentials
        refs: list[tuple[str, SecretKeyRef]] = [
            ("spec.database.urlSecretRef", self.database.url_ref),
            ("spec.jitsi.jwt.secretRef", self.jitsi.jwt.secret_ref),
        ]
        if creds.mode == "rest":
            refs.append(("spec.turn.credentials.secretRef.sharedSecretKey", creds.shared_secret_ref))
        else:
            refs.append(("spec.turn.credentials.secretRef.usernameKey", creds.username_ref))
            refs.append(("spec.turn.credentials.secretRef.passwordKey", creds.password_ref))
        if self.demo_seed.password_ref is not None:
            refs.append(("spec.demoSeed.passwordSecretRef", self.demo_seed.password_ref))
        return refs

    def secret_names(self) -> set[str]:
        return {ref.name for _, ref in self.secret_refs()}


class _Reader:
    """Reads typed values out of an untyped mapping, recording what is malformed."""

    def __init__(self) -> None:
        self.malformed: list[tuple[str, str]] = []

    def section(self, data: Any, path: str) -> Mapping[str, Any]:
        if data is None:
            return {}
        if isinstance(data, Mapping):
            return data
        self.malformed.append((path, "must be an object"))
        return {}

    def string(self, data: Mapping[str, Any], key: str, path: str, default: str = "") -> str:
        value = data.get(key)
        if value is None:
            return default
        if isinstance(value, str):
            return value
        if isinstance(value, bool | int | float):
            self.malformed.append((f"{path}.{key}", "must be a string"))
            return str(value)
        self.malformed.append((f"{path}.{key}", "must be a string"))
        return default

    def integer(self, data: Mapping[str, Any], key: str, path: str, default: int) -> int:
        value = data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.malformed.append((f"{path}.{key}", "must be an integer"))
            return default
        return value

    def number(self, data: Mapping[str, Any], key: str, path: str, default: float) -> float:
        value = data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.malformed.append((f"{path}.{key}", "must be a number"))
            return default
        return float(value)

    def boolean(self, data: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        value = data.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        self.malformed.append((f"{path}.{key}", "must be true or false"))
        return default

    def strings(
        self, data: Mapping[str, Any], key: str, path: str, default: tuple[str, ...]
    ) -> tuple[str, ...]:
        value = data.get(key)
        if value is None:
            return default
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        self.malformed.append((f"{path}.{key}", "must be a list of strings"))
        return default

    def rate_limit(self, data: Mapping[str, Any], key: str, path: str) -> RateLimit:
        section = self.section(data.get(key), f"{path}.{key}")
        return RateLimit(
            per_user_per_minute=self.integer(section, "perUserPerMinute", f"{path}.{key}", 0),
            global_per_minute=self.integer(section, "globalPerMinute", f"{path}.{key}", 0),
        )

    def parent_refs(self, data: Mapping[str, Any], path: str) -> tuple[GatewayParentRef, ...]:
        """The single `parentRef` shorthand first, then the `parentRefs` list."""
        raw: list[tuple[str, Any]] = []
        if data.get("parentRef") is not None:
            raw.append((f"{path}.parentRef", data.get("parentRef")))
        listed = data.get("parentRefs")
        if isinstance(listed, list):
            raw += [(f"{path}.parentRefs[{index}]", item) for index, item in enumerate(listed)]
        elif listed is not None:
            self.malformed.append((f"{path}.parentRefs", "must be a list"))
        refs = []
        for where, item in raw:
            ref = self.section(item, where)
            name = self.string(ref, "name", where)
            if not name:
                self.malformed.append((f"{where}.name", "is required"))
                continue
            refs.append(
                GatewayParentRef(
                    name=name,
                    namespace=self.string(ref, "namespace", where),
                    section_name=self.string(ref, "sectionName", where),
                )
            )
        return tuple(refs)

    def key_ref(self, data: Mapping[str, Any], key: str, path: str, default_key: str) -> SecretKeyRef:
        ref = self.section(data.get(key), f"{path}.{key}")
        return SecretKeyRef(
            name=self.string(ref, "name", f"{path}.{key}", DEFAULT_SECRET_NAME),
            key=self.string(ref, "key", f"{path}.{key}", default_key),
        )


def parse_platform(manifest: Mapping[str, Any]) -> Platform:
    """Build a Platform from a CallPlatform object (a manifest or an API response)."""
    r = _Reader()
    metadata = r.section(manifest.get("metadata"), "metadata")
    spec = r.section(manifest.get("spec"), "spec")

    jitsi = r.section(spec.get("jitsi"), "spec.jitsi")
    jwt = r.section(jitsi.get("jwt"), "spec.jitsi.jwt")
    jitsi_probes = r.section(jitsi.get("probes"), "spec.jitsi.probes")
    jitsi_metrics = r.section(jitsi.get("metrics"), "spec.jitsi.metrics")
    turn = r.section(spec.get("turn"), "spec.turn")
    creds = r.section(turn.get("credentials"), "spec.turn.credentials")
    creds_ref = r.section(creds.get("secretRef"), "spec.turn.credentials.secretRef")
    relay = r.section(turn.get("relay"), "spec.turn.relay")
    turn_tls = r.section(turn.get("tls"), "spec.turn.tls")
    turn_tls_ref = r.section(turn_tls.get("secretRef"), "spec.turn.tls.secretRef")
    server = r.section(turn.get("server"), "spec.turn.server")
    server_image = r.section(server.get("image"), "spec.turn.server.image")
    server_service = r.section(server.get("service"), "spec.turn.server.service")
    database = r.section(spec.get("database"), "spec.database")
    call_log = r.section(database.get("callLog"), "spec.database.callLog")
    calls = r.section(spec.get("calls"), "spec.calls")
    migration = r.section(calls.get("migration"), "spec.calls.migration")
    demo = r.section(spec.get("demoSeed"), "spec.demoSeed")
    monitoring = r.section(spec.get("monitoring"), "spec.monitoring")
    rate_limits = r.section(calls.get("rateLimits"), "spec.calls.rateLimits")
    gateway = r.section(spec.get("gateway"), "spec.gateway")
    headers_probe = r.section(gateway.get("headersProbe"), "spec.gateway.headersProbe")

    pull_secrets = calls.get("imagePullSecrets") or []
    pull_secret_names: tuple[str, ...] = ()
    if isinstance(pull_secrets, list):
        pull_secret_names = tuple(
            str(item.get("name")) if isinstance(item, Mapping) else str(item) for item in pull_secrets
        )
    else:
        r.malformed.append(("spec.calls.imagePullSecrets", "must be a list"))

    demo_ref = None
    if demo.get("passwordSecretRef") is not None:
        demo_ref = r.key_ref(demo, "passwordSecretRef", "spec.demoSeed", "DEMO_USER_PASSWORD")

    m = MigrationSpec()
    platform = Platform(
        namespace=r.string(metadata, "namespace", "metadata"),
        name=r.string(metadata, "name", "metadata"),
        generation=r.integer(metadata, "generation", "metadata", 0),
        uid=r.string(metadata, "uid", "metadata"),
        environment=r.string(spec, "environment", "spec", "production"),
        jitsi=JitsiSpec(
            domain=r.string(jitsi, "domain", "spec.jitsi"),
            public_host=r.string(jitsi, "publicHost", "spec.jitsi"),
            jwt=JwtSpec(
                app_id=r.string(jwt, "appId", "spec.jitsi.jwt"),
                secret_ref=r.key_ref(jwt, "secretRef", "spec.jitsi.jwt", "JITSI_JWT_SECRET"),
                audience=r.string(jwt, "audience", "spec.jitsi.jwt", "jitsi"),
                generate=r.boolean(jwt, "generate", "spec.jitsi.jwt", False),
            ),
            probes=JitsiProbeSpec(
                web_url=r.string(jitsi_probes, "webURL", "spec.jitsi.probes"),
                bosh_url=r.string(jitsi_probes, "boshURL", "spec.jitsi.probes"),
                jvb_health_url=r.string(jitsi_probes, "jvbHealthURL", "spec.jitsi.probes"),
                jicofo_health_url=r.string(jitsi_probes, "jicofoHealthURL", "spec.jitsi.probes"),
                token_url=r.string(jitsi_probes, "tokenURL", "spec.jitsi.probes"),
                prosody_health_url=r.string(jitsi_probes, "prosodyHealthURL", "spec.jitsi.probes"),
                colibri_stats_url=r.string(jitsi_probes, "colibriStatsURL", "spec.jitsi.probes"),
            ),
            metrics=JitsiMetricsSpec(
                jicofo_url=r.string(jitsi_metrics, "jicofo", "spec.jitsi.metrics"),
                jvb_urls=r.strings(jitsi_metrics, "jvb", "spec.jitsi.metrics", ()),
                stress_threshold=r.number(jitsi_metrics, "stressThreshold", "spec.jitsi.metrics", 0.8),
            ),
        ),
        turn=TurnSpec(
            host=r.string(turn, "host", "spec.turn"),
            port=r.integer(turn, "port", "spec.turn", 3478),
            tls_port=r.integer(turn, "tlsPort", "spec.turn", 5349),
            realm=r.string(turn, "realm", "spec.turn"),
            probe_host=r.string(turn, "probeHost", "spec.turn"),
            prometheus_port=r.integer(turn, "prometheusPort", "spec.turn", 0),
            tls_secret_name=r.string(turn_tls_ref, "name", "spec.turn.tls.secretRef"),
            server=TurnServerSpec(
                managed=r.boolean(server, "managed", "spec.turn.server", False),
                mode=r.string(server, "mode", "spec.turn.server", "Deployment"),
                repository=r.string(
                    server_image, "repository", "spec.turn.server.image", DEFAULT_COTURN_IMAGE
                ),
                tag=r.string(server_image, "tag", "spec.turn.server.image", DEFAULT_COTURN_TAG),
                digest=r.string(server_image, "digest", "spec.turn.server.image"),
                replicas=r.integer(server, "replicas", "spec.turn.server", 2),
                service_type=r.string(server_service, "type", "spec.turn.server.service", "LoadBalancer"),
                termination_grace_period_seconds=r.integer(
                    server, "terminationGracePeriodSeconds", "spec.turn.server", 300
                ),
                external_ip=r.string(server, "externalIP", "spec.turn.server"),
                resources=r.section(server.get("resources"), "spec.turn.server.resources"),
            ),
            credentials=TurnCredentialsSpec(
                mode=r.string(creds, "mode", "spec.turn.credentials", "static"),
                secret_name=r.string(
                    creds_ref, "name", "spec.turn.credentials.secretRef", DEFAULT_SECRET_NAME
                ),
                username_key=r.string(
                    creds_ref, "usernameKey", "spec.turn.credentials.secretRef", "TURN_USERNAME"
                ),
                password_key=r.string(
                    creds_ref, "passwordKey", "spec.turn.credentials.secretRef", "TURN_PASSWORD"
                ),
                shared_secret_key=r.string(
                    creds_ref, "sharedSecretKey", "spec.turn.credentials.secretRef", "TURN_SHARED_SECRET"
                ),
                generate=r.boolean(creds, "generate", "spec.turn.credentials", False),
                rest_ttl_seconds=r.integer(creds, "restTTLSeconds", "spec.turn.credentials", 86400),
            ),
            relay=TurnRelaySpec(
                allowed_peer_cidrs=r.strings(relay, "allowedPeerCIDRs", "spec.turn.relay", ()),
                min_port=r.integer(relay, "minPort", "spec.turn.relay", 49152),
                max_port=r.integer(relay, "maxPort", "spec.turn.relay", 65535),
                user_quota=r.integer(relay, "userQuota", "spec.turn.relay", 12),
                total_quota=r.integer(relay, "totalQuota", "spec.turn.relay", 1200),
            ),
        ),
        database=DatabaseSpec(
            url_ref=r.key_ref(database, "urlSecretRef", "spec.database", "DATABASE_URL"),
            metrics_enabled=r.boolean(database, "metricsEnabled", "spec.database", True),
            call_log=CallLogSpec(
                table=r.string(call_log, "table", "spec.database.callLog", "callLog"),
                started_at_column=r.string(
                    call_log, "startedAtColumn", "spec.database.callLog", "started_at"
                ),
                ended_at_column=r.string(call_log, "endedAtColumn", "spec.database.callLog", "ended_at"),
                duration_column=r.string(
                    call_log, "durationColumn", "spec.database.callLog", "duration_seconds"
                ),
                participants_column=r.string(call_log, "participantsColumn", "spec.database.callLog"),
                participants_table=r.string(call_log, "participantsTable", "spec.database.callLog"),
                participants_call_id_column=r.string(
                    call_log, "participantsCallIdColumn", "spec.database.callLog", "call_id"
                ),
                participants_left_at_column=r.string(
                    call_log, "participantsLeftAtColumn", "spec.database.callLog", "left_at"
                ),
                id_column=r.string(call_log, "idColumn", "spec.database.callLog", "id"),
                started_by_column=r.string(call_log, "startedByColumn", "spec.database.callLog"),
                participants_joined_at_column=r.string(
                    call_log, "participantsJoinedAtColumn", "spec.database.callLog"
                ),
                participants_user_column=r.string(
                    call_log, "participantsUserColumn", "spec.database.callLog"
                ),
            ),
        ),
        calls=CallsSpec(
            image=r.string(calls, "image", "spec.calls"),
            replicas=r.integer(calls, "replicas", "spec.calls", 2),
            port=r.integer(calls, "port", "spec.calls", 3000),
            command=r.strings(calls, "command", "spec.calls", ("npm", "run", "start:deploy")),
            migration=MigrationSpec(
                command=r.strings(migration, "command", "spec.calls.migration", m.command),
                backoff_limit=r.integer(migration, "backoffLimit", "spec.calls.migration", m.backoff_limit),
                active_deadline_seconds=r.integer(
                    migration, "activeDeadlineSeconds", "spec.calls.migration", m.active_deadline_seconds
                ),
                ttl_seconds_after_finished=r.integer(
                    migration, "ttlSecondsAfterFinished", "spec.calls.migration", m.ttl_seconds_after_finished
                ),
            ),
            resources=r.section(calls.get("resources"), "spec.calls.resources"),
            image_pull_secrets=pull_secret_names,
            allow_unsafe_inline_styles=r.boolean(calls, "allowUnsafeInlineStyles", "spec.calls", True),
            rate_limits=CallRateLimits(
                starts=r.rate_limit(rate_limits, "starts", "spec.calls.rateLimits"),
                joins=r.rate_limit(rate_limits, "joins", "spec.calls.rateLimits"),
            ),
            liveness_probe_path=r.string(calls, "livenessProbePath", "spec.calls"),
            job_resources=r.section(calls.get("jobResources"), "spec.calls.jobResources")
            or dict(DEFAULT_JOB_RESOURCES),
        ),
        demo_seed=DemoSeedSpec(
            enabled=r.boolean(demo, "enabled", "spec.demoSeed", False),
            password_ref=demo_ref,
            command=r.strings(demo, "command", "spec.demoSeed", ("npm", "run", "seed:demo")),
        ),
        monitoring=MonitoringSpec(
            enabled=r.boolean(monitoring, "enabled", "spec.monitoring", True),
            probe_interval_seconds=r.integer(monitoring, "probeIntervalSeconds", "spec.monitoring", 30),
            turn_relay=r.boolean(monitoring, "turnRelayProbe", "spec.monitoring", True),
        ),
        gateway=GatewaySpec(
            parent_refs=r.parent_refs(gateway, "spec.gateway"),
            hostname=r.string(gateway, "hostname", "spec.gateway"),
            headers_probe=HeadersProbeSpec(
                enabled=r.boolean(headers_probe, "enabled", "spec.gateway.headersProbe", True),
                root_url=r.string(headers_probe, "rootURL", "spec.gateway.headersProbe"),
                call_url=r.string(headers_probe, "callURL", "spec.gateway.headersProbe"),
                chat_url=r.string(headers_probe, "chatURL", "spec.gateway.headersProbe"),
            ),
        ),
    )
    if r.malformed:
        platform = replace(platform, malformed=tuple(r.malformed))
    return platform
