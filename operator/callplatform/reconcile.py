"""The one reconcile pass: read the platform and its Secrets, judge, render, apply, report.

Level-triggered: every pass starts from what is in the cluster now. It never
asks what changed; whatever triggered it (a watch event, a Secret, the periodic
resync) gets the same pass. A pass that finds everything as it should be makes
no write request at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from callplatform.cache import DirectReader, ObjectReader
from callplatform.conditions import (
    COTURN_HEALTHY,
    COTURN_SECURE,
    DEPLOYMENT_AVAILABLE,
    FALSE,
    JITSI_DEGRADED,
    JITSI_HEALTHY,
    MIGRATIONS_COMPLETE,
    READY,
    SECRETS_VALID,
    SECURITY_HEADERS_SERVED,
    TRUE,
    TURN_CONFIGURED,
    TURN_SERVER_READY,
    UNKNOWN,
    ConditionState,
    Transition,
    build_conditions,
    transitions,
)
from callplatform.findings import Finding, Severity
from callplatform.gateway_status import not_installed_state, rejected_state, route_state
from callplatform.kube import Kube, KubeError, Manifest, decode_secret_data, now_rfc3339
from callplatform.managed_coturn import pod_security_state, tls_secret_state, workload_state
from callplatform.model import Platform, parse_platform
from callplatform.probes.jitsi_degraded import degraded_state
from callplatform.probes.result import HealthLookup
from callplatform.render import DesiredObjects, demo_seed_allowed, render_platform
from callplatform.render.coturn_server import CoturnObjects
from callplatform.render.labels import COMPONENT_LABEL, INSTANCE_LABEL
from callplatform.render.secrets import (
    SecretValues,
    effective_secrets,
    generatable_refs,
    generated_secret_name,
    missing_generated_keys,
    new_secret_value,
)
from callplatform.render.workloads import CALLS_CONTAINER, IMAGE_ANNOTATION, calls_name, migration_job_name
from callplatform.rules import check_platform

log = logging.getLogger(__name__)

CALLPLATFORM_API = "callplatform.io/v1alpha1"

# Condition reasons that mean "still getting there" rather than "something is wrong".
PROGRESS_REASONS = frozenset(
    {
        "MigrationRunning",
        "DeploymentProgressing",
        "DeploymentNotCreated",
        "AwaitingFirstProbe",
        "TurnServerProgressing",
    }
)
MIGRATION_FAILED = "MigrationFailed"
MIGRATION_COMPONENT = "migration"  # the component label of migration Jobs (render/workloads.py)
BLOCKED_BY_RULES = "BlockedByRules"


def _ignore_migration(namespace: str, name: str, outcome: str | None, failing: bool) -> None:
    return None


@dataclass
class Hooks:
    """What a pass tells the rest of the operator (metrics, probe scheduler, call metrics)."""

    on_pass: Callable[[Platform, SecretValues, list[Finding], list[dict[str, Any]]], None] = (
        lambda platform, secrets, findings, conditions: None
    )
    # Every pass: (namespace, name, outcome, failing). `outcome` is "succeeded"/"failed" on the pass
    # that saw a migration Job finish, else None; `failing` is whether MigrationsComplete says
    # MigrationFailed now, so a restarted operator reports a failure it did not see happen.
    on_migration: Callable[[str, str, str | None, bool], None] = _ignore_migration
    on_gone: Callable[[str, str], None] = lambda namespace, name: None


@dataclass
class PassResult:
    namespace: str
    name: str
    found: bool = True
    ready: bool = False
    blocked: bool = False
    writes: list[str] = field(default_factory=list)
    referenced_secrets: frozenset[str] = frozenset()
    converging: bool = False  # waiting on a Job or a rollout: worth another look soon


def _container_image(deployment: Mapping[str, Any] | None) -> str | None:
    if deployment is None:
        return None
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    for container in containers:
        if container.get("name") == CALLS_CONTAINER:
            return str(container.get("image", ""))
    return None


def _job_outcome(job: Mapping[str, Any]) -> str:
    """ "succeeded", "failed" or "running", from the Job's own conditions."""
    for condition in job.get("status", {}).get("conditions", []) or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return "succeeded"
        if condition.get("type") == "Failed":
            return "failed"
    return "running"


def _job_failure_reason(job: Mapping[str, Any]) -> str:
    for condition in job.get("status", {}).get("conditions", []) or []:
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            return str(condition.get("reason") or "Failed")
    return "Failed"


def _condition(conditions: Sequence[Mapping[str, Any]], condition_type: str) -> Mapping[str, Any]:
    return next((c for c in conditions if c.get("type") == condition_type), {})


def findings_summary(findings: Sequence[Finding]) -> str:
    """Rule, object and field of each finding, with its message (messages never hold values)."""
    return "; ".join(f"{f.rule} {f.field} ({f.object}): {f.message}" for f in findings)


def secrets_valid_state(findings: Sequence[Finding]) -> ConditionState:
    errors = [f for f in findings if f.severity is Severity.ERROR]
    warnings = [f for f in findings if f.severity is Severity.WARNING]
    if errors:
        return ConditionState(
            SECRETS_VALID, FALSE, "RulesFailed", f"{len(errors)} rule error(s): {findings_summary(errors)}"
        )
    note = f" {len(warnings)} warning(s): {', '.join(f.rule for f in warnings)}." if warnings else ""
    return ConditionState(SECRETS_VALID, TRUE, "RulesPassed", f"No rule errors.{note}")


def deployment_state(deployment: Mapping[str, Any] | None, desired_image: str) -> ConditionState:
    if deployment is None:
        return ConditionState(
            DEPLOYMENT_AVAILABLE,
            FALSE,
            "DeploymentNotCreated",
            "The calls Deployment is created after migrations.",
        )
    name = deployment["metadata"]["name"]
    spec_replicas = int(deployment.get("spec", {}).get("replicas", 1))
    status = deployment.get("status", {}) or {}
    available = any(
        c.get("type") == "Available" and c.get("status") == "True" for c in status.get("conditions", []) or []
    )
    observed = int(status.get("observedGeneration", 0)) >= int(deployment["metadata"].get("generation", 0))
    updated = int(status.get("updatedReplicas", 0)) >= spec_replicas
    ready = int(status.get("availableReplicas", 0)) >= spec_replicas
    old = int(status.get("replicas", 0)) > spec_replicas
    image = _container_image(deployment) or ""
    if available and observed and updated and ready and not old:
        note = "" if image == desired_image else f" (previous image; {desired_image} waits for its migration)"
        return ConditionState(
            DEPLOYMENT_AVAILABLE,
            TRUE,
            "DeploymentAvailable",
            f"Deployment {name} has {spec_replicas} available replica(s) of {image}{note}.",
        )
    return ConditionState(
        DEPLOYMENT_AVAILABLE,
        FALSE,
        "DeploymentProgressing",
        f"Deployment {name}: {status.get('availableReplicas', 0)}/{spec_replicas} available, "
        f"{status.get('updatedReplicas', 0)} updated to {image}.",
    )


def health_state(
    platform: Platform,
    component: str,
    condition_type: str,
    health: HealthLookup | None,
    previous: Mapping[str, Any] | None = None,
) -> ConditionState:
    """The component's condition from the health registry.

    The registry lives in memory: after a restart or a leader failover it knows
    nothing until the first probe. Until then the previous verdict stands (as
    the platform's own status recorded it), so a restart does not flip every
    platform to Ready=False and back. AwaitingFirstProbe is only for a component
    never judged while monitored: a new platform, or monitoring just enabled.
    """
    if not platform.monitoring.enabled:
        return ConditionState(
            condition_type,
            UNKNOWN,
            "MonitoringDisabled",
            "spec.monitoring.enabled is false: not probed, and not part of Ready.",
            gates_ready=False,
        )
    result = health(platform.namespace, platform.name, component) if health else None
    if result is None:
        if previous and previous.get("reason") not in (None, "", "MonitoringDisabled"):
            return ConditionState(
                condition_type,
                str(previous.get("status") or UNKNOWN),
                str(previous["reason"]),
                str(previous.get("message") or ""),
            )
        return ConditionState(
            condition_type, UNKNOWN, "AwaitingFirstProbe", f"{component} has not been probed yet."
        )
    if result.healthy:
        return ConditionState(condition_type, TRUE, result.reason or "Healthy", result.message or "Healthy.")
    return ConditionState(condition_type, FALSE, result.reason or "Unhealthy", result.message or "Unhealthy.")


def _health_status(conditions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """`status.health`: lastProbeTime is when the current status was established, so it stays put."""
    summary: dict[str, Any] = {}
    for component, condition_type in (("jitsi", JITSI_HEALTHY), ("coturn", COTURN_HEALTHY)):
        condition = _condition(conditions, condition_type)
        entry = {
            "status": condition.get("status", UNKNOWN),
            "reason": condition.get("reason", ""),
            "message": condition.get("message", ""),
            "lastProbeTime": condition.get("lastTransitionTime", ""),
        }
        summary[component] = entry
    return summary


def event_for(transition: Transition) -> tuple[str, str] | None:
    """(type, reason) of the Event a condition transition deserves, or None for no Event."""
    if transition.status == UNKNOWN or transition.reason == BLOCKED_BY_RULES:
        return None  # blocked conditions follow from the RulesFailed Event; one Warning is enough
    if transition.type == JITSI_DEGRADED:  # True is the bad news here
        if transition.status == TRUE:
            return "Warning", transition.reason
        return ("Normal", transition.reason) if transition.previous_status == TRUE else None
    if transition.type == READY:
        if transition.status == TRUE:
            return "Normal", "Ready"
        return ("Warning", "NotReady") if transition.previous_status == TRUE else None
    if transition.status == FALSE and transition.reason not in PROGRESS_REASONS:
        return "Warning", transition.reason
    if transition.status == FALSE and transition.previous_status is not None:
        return None
    return "Normal", transition.reason


@dataclass(frozen=True)
class _Migration:
    state: ConditionState
    migrated: bool
    migrated_image: str
    migration_job: str
    outcome: str | None = None  # "succeeded"/"failed" when this pass saw the Job finish
    apply_job: bool = False  # create the Job, or repair its drift
    live_job: Manifest | None = None


@dataclass(frozen=True)
class Observed:
    """What a pass starts from: the platform and the objects it decides by."""

    live: Manifest
    platform: Platform
    user_secrets: dict[str, dict[str, str]]
    generated_secret: Manifest | None
    deployment: Manifest | None
    turn_tls: Mapping[str, str] | None
    serves_service_monitors: bool
    referenced_secrets: frozenset[str]

    @property
    def status(self) -> Mapping[str, Any]:
        return self.live.get("status") or {}

    @property
    def previous_conditions(self) -> list[Mapping[str, Any]]:
        return list(self.status.get("conditions") or [])


@dataclass(frozen=True)
class Decision:
    """What the pass decided from `Observed`, before it renders: the render's inputs."""

    generated: dict[str, str]  # the generated Secret's values, new ones included
    new_generated_keys: list[str]
    findings: list[Finding]
    migration_job: str  # the name of this version's migration Job
    migration: _Migration | None = None  # None: a rule error blocks the rollout
    deployment_image: str | None = None  # None: no Deployment yet (its first migration runs)


class Reconciler:
    def __init__(
        self,
        kube: Kube,
        *,
        health: HealthLookup | None = None,
        hooks: Hooks | None = None,
        clock: Callable[[], str] = now_rfc3339,
        reader: ObjectReader | None = None,
    ) -> None:
        """`kube` makes the writes; `reader` the reads (the operator's watch-fed cache; by default
        straight from the API server)."""
        self.kube = kube
        self.reader: ObjectReader = reader or DirectReader(kube)
        self.health = health
        self.hooks = hooks or Hooks()
        self.clock = clock

    def reconcile(self, namespace: str, name: str) -> PassResult:
        """Observe, decide, render once, apply, report."""
        result = PassResult(namespace, name)
        observed = self._observe(namespace, name)
        if observed is None:
            result.found = False
            self.hooks.on_gone(namespace, name)
            return result
        platform = observed.platform
        result.referenced_secrets = observed.referenced_secrets
        decision = self._decide(observed)
        desired = render_platform(
            platform,
            observed.user_secrets,
            generated=decision.generated,
            deployment_image=decision.deployment_image,
            include_deployment=decision.deployment_image is not None,
            turn_tls=observed.turn_tls,
            service_monitor=observed.serves_service_monitors,
        )
        states = [secrets_valid_state(decision.findings)]
        new_status: dict[str, Any] = {}
        if desired.generated_secret is not None:  # even when blocked: a generated value is kept
            self._apply(desired.generated_secret, result, observed.generated_secret)
        if decision.new_generated_keys:
            log.info(
                "generated %d secret value(s) for %s", len(decision.new_generated_keys), platform.object_ref
            )
        migration = decision.migration
        if migration is None:
            result.blocked = True
            states += self._blocked_states(platform, observed.status, decision.migration_job)
            deployment = observed.deployment
        else:
            states += self._apply_platform(observed, decision, migration, desired, result)
            new_status.update(migratedImage=migration.migrated_image, migrationJob=migration.migration_job)
            deployment = observed.deployment
            if desired.deployment is not None:
                deployment = self._apply(desired.deployment, result, observed.deployment)
            if migration.migrated:
                new_status["seededImage"] = self._seed(platform, observed.status, desired, result)
            result.converging = result.converging or migration.state.reason == "MigrationRunning"
        self._report(observed, decision, deployment, states, new_status, result)
        return result

    # --- observe -------------------------------------------------------------

    def _observe(self, namespace: str, name: str) -> Observed | None:
        """The platform and what it judges and decides by (from the reader: the watch-fed cache)."""
        live = self.reader.get(CALLPLATFORM_API, "CallPlatform", namespace, name)
        if live is None or live.get("metadata", {}).get("deletionTimestamp"):
            return None
        platform = parse_platform(live)
        tls_secret = platform.turn.tls_secret_name if platform.turn.server.managed else ""
        user_secrets: dict[str, dict[str, str]] = {}
        for secret_name in sorted(platform.secret_names()):
            data = self._read_secret(namespace, secret_name)
            if data is not None:
                user_secrets[secret_name] = data
        generated_secret = None
        if generatable_refs(platform):
            generated_secret = self.reader.get("v1", "Secret", namespace, generated_secret_name(platform))
        return Observed(
            live=live,
            platform=platform,
            user_secrets=user_secrets,
            generated_secret=generated_secret,
            deployment=self.reader.get("apps/v1", "Deployment", namespace, calls_name(platform)),
            turn_tls=self._read_secret(namespace, tls_secret) if tls_secret else None,
            serves_service_monitors=self._serves_service_monitors(platform),
            referenced_secrets=frozenset(platform.secret_names() | ({tls_secret} - {""})),
        )

    # --- decide --------------------------------------------------------------

    def _decide(self, observed: Observed) -> Decision:
        """Generated values, the rules' verdict, the migration and the Deployment's image."""
        platform = observed.platform
        existing = {} if observed.generated_secret is None else decode_secret_data(observed.generated_secret)
        missing = missing_generated_keys(platform, observed.user_secrets, existing)
        generated = {**existing, **{key: new_secret_value() for key in missing}}
        findings = check_platform(platform, effective_secrets(platform, observed.user_secrets, generated))
        job_name = migration_job_name(platform, observed.user_secrets)
        decision = Decision(generated, missing, findings, job_name)
        if any(f.severity is Severity.ERROR for f in findings):
            return decision  # blocked: no migration decision, nothing applied but the generated Secret
        migration = self._decide_migration(observed, job_name)
        if migration.migrated:
            image: str | None = platform.calls.image
        else:  # held back on what it runs now, or not created before its first migration
            image = _container_image(observed.deployment)
        return replace(decision, migration=migration, deployment_image=image)

    def _decide_migration(self, observed: Observed, job_name: str) -> _Migration:
        platform, status = observed.platform, observed.status
        previous_conditions = observed.previous_conditions
        image = platform.calls.image
        running_image = _container_image(observed.deployment)
        done = f"Migration Job {job_name} completed for {image}."
        if (
            status.get("migratedImage") == image and status.get("migrationJob") == job_name
        ) or running_image == image:
            return _Migration(
                ConditionState(MIGRATIONS_COMPLETE, TRUE, "MigrationSucceeded", done), True, image, job_name
            )
        previous_image = str(status.get("migratedImage") or "")
        stays = (
            f"the Deployment stays on {running_image}"
            if running_image
            else "the Deployment is created once it completes"
        )
        live_job = self.reader.get("batch/v1", "Job", platform.namespace, job_name)
        if live_job is None:
            failed_before = (
                status.get("migrationJob") == job_name
                and _condition(previous_conditions, MIGRATIONS_COMPLETE).get("reason") == MIGRATION_FAILED
            )
            if failed_before:  # the failed Job was cleaned up; running it again needs a new image
                message = f"Migration Job {job_name} for {image} failed; {stays}."
                state = ConditionState(MIGRATIONS_COMPLETE, FALSE, MIGRATION_FAILED, message)
                return _Migration(state, False, previous_image, job_name)
            running = self._running_migration(platform, job_name)
            if running is not None:  # one migration at a time against the database
                other = running["metadata"]["name"]
                other_image = (running["metadata"].get("annotations") or {}).get(IMAGE_ANNOTATION, "")
                of_image = f" for {other_image}" if other_image else ""
                message = (
                    f"Migration Job {other}{of_image} is still running; the migration for {image} "
                    f"(Job {job_name}) starts once it finishes; {stays}."
                )
                state = ConditionState(MIGRATIONS_COMPLETE, FALSE, "MigrationRunning", message)
                return _Migration(state, False, previous_image, job_name)
        # The Job is applied (created, or its drift repaired); applying never changes its status,
        # so its outcome is what was observed (a Job about to be created is running).
        outcome = "running" if live_job is None else _job_outcome(live_job)
        if outcome == "succeeded":
            state = ConditionState(MIGRATIONS_COMPLETE, TRUE, "MigrationSucceeded", done)
            return _Migration(state, True, image, job_name, "succeeded", True, live_job)
        if outcome == "failed":
            assert live_job is not None
            reason = _job_failure_reason(live_job)
            message = f"Migration Job {job_name} for {image} failed ({reason}); {stays}."
            state = ConditionState(MIGRATIONS_COMPLETE, FALSE, MIGRATION_FAILED, message)
            newly = status.get("migrationJob") != job_name or (
                _condition(previous_conditions, MIGRATIONS_COMPLETE).get("reason") != MIGRATION_FAILED
            )
            return _Migration(
                state, False, previous_image, job_name, "failed" if newly else None, True, live_job
            )
        message = f"Migration Job {job_name} is running for {image}; {stays}."
        state = ConditionState(MIGRATIONS_COMPLETE, FALSE, "MigrationRunning", message)
        return _Migration(state, False, previous_image, job_name, None, True, live_job)

    # --- apply ---------------------------------------------------------------

    def _apply_platform(
        self,
        observed: Observed,
        decision: Decision,
        migration: _Migration,
        desired: DesiredObjects,
        result: PassResult,
    ) -> list[ConditionState]:
        """Apply what a platform without rule errors owns, but its Deployment; returns the conditions."""
        platform = observed.platform
        states: list[ConditionState] = []
        if migration.apply_job:
            assert desired.migration_job["metadata"]["name"] == migration.migration_job
            self._apply(desired.migration_job, result, migration.live_job)
        turn_secret = desired.turn_config_secret
        self._apply(turn_secret, result)
        turn_server = None
        if desired.coturn is not None:
            turn_server = self._run_coturn(platform, desired.coturn, observed.turn_tls, result)
            result.converging = turn_server.reason == "TurnServerProgressing"
        for manifest in (desired.ice_servers_secret, desired.security_headers, desired.service):
            self._apply(manifest, result)
        if desired.gateway_route is not None:
            states.append(self._gateway_route(desired.gateway_route, result))
        states += [
            ConditionState(
                TURN_CONFIGURED,
                TRUE,
                "TurnConfigApplied",
                f"turnserver.conf ({platform.turn.credentials.mode} credentials) is in Secret "
                f"{turn_secret['metadata']['name']}.",
            ),
            *([turn_server] if turn_server is not None else []),
            migration.state,
        ]
        return states

    # --- status --------------------------------------------------------------

    def _report(
        self,
        observed: Observed,
        decision: Decision,
        deployment: Manifest | None,
        states: list[ConditionState],
        new_status: dict[str, Any],
        result: PassResult,
    ) -> None:
        """Conditions, status (written only when it differs), Events on transitions, hooks."""
        platform, status, live = observed.platform, observed.status, observed.live
        previous_conditions = observed.previous_conditions
        namespace, name = platform.namespace, platform.name
        deployment_condition = deployment_state(deployment, platform.calls.image)
        # A blocked or failed platform waits for a change (a watch event), not for time.
        result.converging = result.converging or deployment_condition.reason == "DeploymentProgressing"
        states += [
            deployment_condition,
            health_state(
                platform, "jitsi", JITSI_HEALTHY, self.health, _condition(previous_conditions, JITSI_HEALTHY)
            ),
            health_state(
                platform,
                "coturn",
                COTURN_HEALTHY,
                self.health,
                _condition(previous_conditions, COTURN_HEALTHY),
            ),
        ]
        degraded = degraded_state(platform, self.health, _condition(previous_conditions, JITSI_DEGRADED))
        if degraded is not None:  # only with spec.jitsi.metrics.jvb; never part of Ready
            states.append(degraded)
        # Not part of Ready: a relay into the cluster is a security alert (TurnRelaysToInternalPeers),
        # while the platform still serves calls.
        states.append(
            replace(
                health_state(
                    platform,
                    "coturn_acl",
                    COTURN_SECURE,
                    self.health,
                    _condition(previous_conditions, COTURN_SECURE),
                ),
                gates_ready=False,
            )
        )
        if platform.gateway.headers_probe_enabled:  # part of Ready only when asked for
            states.append(
                health_state(
                    platform,
                    "headers",
                    SECURITY_HEADERS_SERVED,
                    self.health,
                    _condition(previous_conditions, SECURITY_HEADERS_SERVED),
                )
            )
        conditions = build_conditions(
            states, previous_conditions, generation=platform.generation, now=self.clock()
        )
        new_status.update(
            observedGeneration=platform.generation,
            conditions=conditions,
            findings=[f.as_dict() for f in decision.findings],
            health=_health_status(conditions),
        )
        image = _container_image(deployment)
        if image:
            new_status["appliedImage"] = image
        if any(status.get(key) != value for key, value in new_status.items()):
            self.reader.remember(self.kube.patch_status(namespace, name, new_status))
            result.writes.append("CallPlatform/status")
        for transition in transitions(previous_conditions, conditions):
            event = event_for(transition)
            if event is not None:
                self.kube.post_event(
                    live,
                    event_type=event[0],
                    reason=event[1],
                    message=f"{transition.type}: {transition.message}",
                )
                result.writes.append(f"Event/{event[1]}")
        result.ready = _condition(conditions, READY).get("status") == TRUE
        failing = _condition(conditions, MIGRATIONS_COMPLETE).get("reason") == MIGRATION_FAILED
        migration = decision.migration
        self.hooks.on_migration(namespace, name, migration.outcome if migration else None, failing)
        values = effective_secrets(platform, observed.user_secrets, decision.generated)
        self.hooks.on_pass(platform, values, decision.findings, conditions)

    # --- steps ---------------------------------------------------------------

    def _read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        secret = self.reader.get("v1", "Secret", namespace, name)
        return None if secret is None else decode_secret_data(secret)

    def _apply(self, manifest: Manifest, result: PassResult, live: Manifest | None = None) -> Manifest:
        meta = manifest["metadata"]
        if live is None:
            live = self.reader.get(manifest["apiVersion"], manifest["kind"], meta["namespace"], meta["name"])
        applied, wrote = self.kube.apply(manifest, live)
        if wrote:
            result.writes.append(f"{manifest['kind']}/{meta['name']}")
            self.reader.remember(applied)
        return applied

    def _gateway_route(self, route: Manifest, result: PassResult) -> ConditionState:
        """Apply the HTTPRoute; a cluster without the Gateway API CRDs gets a condition, not a failure."""
        name = route["metadata"]["name"]
        try:
            state = route_state(self._apply(route, result))
        except KubeError as exc:
            if exc.status == 404:
                return not_installed_state(name)
            if exc.status in (400, 422):
                return rejected_state(name, str(exc))
            raise
        if state.status != TRUE or state.reason != "RouteAccepted":
            # Until the Gateway controller accepts it, read the route afresh on every pass.
            self.reader.forget(route["apiVersion"], route["kind"], route["metadata"]["namespace"], name)
        return state

    def _serves_service_monitors(self, platform: Platform) -> bool:
        if not (platform.turn.server.managed and platform.turn.prometheus_port):
            return False
        return self.reader.serves("monitoring.coreos.com/v1", "servicemonitors")

    def _run_coturn(
        self,
        platform: Platform,
        coturn: CoturnObjects,
        tls: Mapping[str, str] | None,
        result: PassResult,
    ) -> ConditionState:
        """Apply the managed coturn's objects; the workload only where its pods can start."""
        for manifest in coturn.objects():
            if manifest is not coturn.workload:
                self._apply(manifest, result)
        meta = coturn.workload["metadata"]
        live = self.reader.get("apps/v1", coturn.workload["kind"], meta["namespace"], meta["name"])
        blocker = tls_secret_state(platform, tls)
        if blocker is None and platform.turn.server.host_network:
            try:
                namespace = self.reader.get("v1", "Namespace", "", platform.namespace)
            except KubeError as exc:
                return ConditionState(
                    TURN_SERVER_READY,
                    UNKNOWN,
                    "NamespaceUnreadable",
                    f"Cannot read Namespace {platform.namespace} to check its Pod Security level "
                    f"for hostNetwork (HTTP {exc.status}); grant the operator get on namespaces.",
                )
            blocker = pod_security_state(platform, namespace)
            if blocker is not None:  # look again next pass: a relabelled namespace lets coturn start
                self.reader.forget("v1", "Namespace", "", platform.namespace)
        if blocker is not None:
            log.warning("%s: %s: %s", platform.object_ref, blocker.reason, blocker.message)
            return blocker  # what already runs keeps running
        return workload_state(self._apply(coturn.workload, result, live))

    def _blocked_states(
        self, platform: Platform, status: Mapping[str, Any], job: str
    ) -> list[ConditionState]:
        blocked = "Not applied while SecretsValid is False; what already runs keeps running."
        states = [ConditionState(TURN_CONFIGURED, FALSE, BLOCKED_BY_RULES, blocked)]
        if platform.turn.server.managed:
            states.append(ConditionState(TURN_SERVER_READY, FALSE, BLOCKED_BY_RULES, blocked))
        if status.get("migratedImage") == platform.calls.image and status.get("migrationJob") == job:
            states.append(
                ConditionState(
                    MIGRATIONS_COMPLETE, TRUE, "MigrationSucceeded", f"Migration Job {job} completed."
                )
            )
        else:
            states.append(ConditionState(MIGRATIONS_COMPLETE, FALSE, BLOCKED_BY_RULES, blocked))
        return states

    def _running_migration(self, platform: Platform, job_name: str) -> Manifest | None:
        """Another migration Job of this platform that has not finished (the Job name hashes the pod
        template, so a spec change while a migration runs renders a new name)."""
        selector = {INSTANCE_LABEL: platform.name, COMPONENT_LABEL: MIGRATION_COMPONENT}
        jobs = self.reader.list("batch/v1", "Job", platform.namespace, label_selector=selector)
        running = [
            job for job in jobs if job["metadata"]["name"] != job_name and _job_outcome(job) == "running"
        ]
        return (
            min(running, key=lambda job: str(job["metadata"].get("creationTimestamp", "")))
            if running
            else None
        )

    def _seed(
        self, platform: Platform, status: Mapping[str, Any], desired: DesiredObjects, result: PassResult
    ) -> str:
        """Run the demo seed Job once per image, after migrations. Returns the seeded image."""
        seeded = str(status.get("seededImage") or "")
        if desired.demo_seed_job is None or not demo_seed_allowed(platform) or seeded == platform.calls.image:
            return seeded
        meta = desired.demo_seed_job["metadata"]
        live_job = self.reader.get("batch/v1", "Job", platform.namespace, meta["name"])
        live_job = self._apply(desired.demo_seed_job, result, live_job)
        outcome = _job_outcome(live_job)
        if outcome == "succeeded":
            return platform.calls.image
        if outcome == "failed":
            log.warning("demo seed Job %s failed for %s", meta["name"], platform.object_ref)
        return seeded
