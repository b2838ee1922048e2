"""kopf wiring: thin handlers that only ask for a reconcile pass, and the operator's lifecycle.

Handlers:
- CallPlatform watch events (created, changed, resumed at startup, deleted);
- Secrets: the platform's own (by label) and those a platform references (by an
  index the passes keep);
- owned Deployments, Jobs, Services and ConfigMaps, and a managed coturn's DaemonSet, PDB and
  NetworkPolicy (by label), so drift is repaired; owned HTTPRoutes and ServiceMonitors too, where
  the cluster serves their CRDs (kopf's resource scan leaves the handler idle where it does not);
- a periodic resync of every platform (our own thread, not `@kopf.timer`, because
  kopf puts a finalizer on objects with timers, and a finalizer would block deletion
  whenever the operator is down).

No handler writes kopf state to the CallPlatform: `on.event` handlers keep no
progress or last-handled-configuration annotations, so an idle platform sees no
writes at all.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import kopf
from kopf._cogs.structs.references import Insights  # kopf.operator(insights=...) takes it; not re-exported

from callplatform import metrics
from callplatform.apply_failure import report_failed_pass
from callplatform.cache import CachedReader, CacheSyncer, Dropped, ObjectCache, WatchedKind
from callplatform.calls.db import CallMetricsCollector
from callplatform.conditions import condition_statuses
from callplatform.findings import Finding
from callplatform.httpserver import OperatorHttpServer
from callplatform.kube import RESOURCES, Kube, KubeError
from callplatform.liveness import (
    WATCH_START_GRACE_SECONDS,
    LivenessFacts,
    liveness_problems,
    running_watchers,
)
from callplatform.model import Platform
from callplatform.probes.health import HealthRegistry
from callplatform.probes.scheduler import ProbeScheduler
from callplatform.probes.targets import build_targets
from callplatform.reconcile import CALLPLATFORM_API, Hooks, Reconciler
from callplatform.render.labels import INSTANCE_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from callplatform.render.secrets import SecretValues
from callplatform.testhooks import hold_pass, hold_pass_seconds
from callplatform.threadbridge import LoopBridge, off_loop
from callplatform.watch_restarts import WatchRestarts, kopf_resource_name
from callplatform.workqueue import Key, PeriodicResync, ReconcileQueue

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "callplatform.io", "v1alpha1", "callplatforms"
# While a Job runs or a rollout progresses, look again this soon even without a watch event.
CONVERGING_RECHECK_SECONDS = 10.0
OWNED_KINDS = (
    ("apps", "v1", "deployments"),
    ("batch", "v1", "jobs"),
    ("", "v1", "services"),
    ("", "v1", "configmaps"),
    # A managed coturn (spec.turn.server).
    ("apps", "v1", "daemonsets"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("networking.k8s.io", "v1", "networkpolicies"),
)
# Owned kinds whose CRDs a cluster may not have: a managed coturn's ServiceMonitor and the HTTPRoute
# of spec.gateway. Their handlers are registered all the same; kopf watches them only where its
# resource scan finds them served (at start, and in all-namespaces mode when a CRD appears or goes:
# kopf watches CRDs there). Where kopf does not watch one, a pass reads it through a 5-minute memo
# (cache.Memo), so a resync repairs its drift once that has expired.
OPTIONAL_OWNED_KINDS = (
    ("monitoring.coreos.com", "v1", "servicemonitors"),
    ("gateway.networking.k8s.io", "v1", "httproutes"),
)


def cached_kinds() -> list[WatchedKind]:
    """What kopf watches, as the cache keeps it: every CallPlatform and Secret of the watched
    namespaces, and the owned kinds' objects that carry our managed-by label."""
    managed = ((MANAGED_BY_LABEL, MANAGED_BY),)
    kinds = [WatchedKind(CALLPLATFORM_API, "CallPlatform"), WatchedKind("v1", "Secret")]
    for group, version, plural in OWNED_KINDS + OPTIONAL_OWNED_KINDS:
        api_version, kind = _kind_of(group, version, plural)
        optional = (group, version, plural) in OPTIONAL_OWNED_KINDS
        kinds.append(WatchedKind(api_version, kind, managed, optional=optional))
    return kinds


def _kind_of(group: str, version: str, plural: str) -> tuple[str, str]:
    """(apiVersion, kind) of a resource kopf names by (group, version, plural)."""
    wanted = (f"{group}/{version}" if group else version, plural)
    return next(
        key for key, resource in RESOURCES.items() if (resource.group_version, resource.plural) == wanted
    )


def kopf_resources() -> dict[str, tuple[str, str]]:
    """Each cached kind by the name kopf's log lines give its resource (callplatform.watch_restarts)."""
    resources = {
        kopf_resource_name(GROUP, VERSION, PLURAL): (CALLPLATFORM_API, "CallPlatform"),
        kopf_resource_name("", "v1", "secrets"): ("v1", "Secret"),
    }
    for resource in OWNED_KINDS + OPTIONAL_OWNED_KINDS:
        resources[kopf_resource_name(*resource)] = _kind_of(*resource)
    return resources


def platforms_owning(
    dropped: Iterable[Dropped], referencing: Callable[[str, str], Iterable[Key]]
) -> list[Key]:
    """The platforms a pass must look at again for objects gone from the cache: a CallPlatform
    itself, the instance label of what we manage, and the platforms referencing a Secret."""
    keys: set[Key] = set()
    for gone in dropped:
        if gone.kind == "CallPlatform":
            keys.add((gone.namespace, gone.name))
            continue
        if gone.labels.get(MANAGED_BY_LABEL) == MANAGED_BY and INSTANCE_LABEL in gone.labels:
            keys.add((gone.namespace, gone.labels[INSTANCE_LABEL]))
        if gone.kind == "Secret":
            keys.update(referencing(gone.namespace, gone.name))
    return sorted(keys)


def optional_kinds_watched(watched: Iterable[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """The optional owned kinds among the resources kopf watches (group, version, plural), as
    (apiVersion, kind)."""
    return sorted(_kind_of(*resource) for resource in set(watched) & set(OPTIONAL_OWNED_KINDS))


def expected_watchers(optional_watched: int, namespaces: int) -> int:
    """One watch stream per watched kind (the platforms, Secrets, the owned kinds, and the optional
    ones kopf watches) and namespace; cluster-wide (no namespaces), one per kind."""
    return (2 + len(OWNED_KINDS) + optional_watched) * max(1, namespaces)


@dataclass(frozen=True, slots=True)
class OperatorOptions:
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    resync_seconds: float = 60.0
    workers: int = 2
    http_host: str = "0.0.0.0"  # noqa: S104 - the probe endpoints must be reachable by the kubelet
    http_port: int = 8080
    # A pass older than this (while the queue is busy) makes /healthz fail.
    stuck_after_seconds: float = 600.0


class Operator:
    def __init__(
        self,
        options: OperatorOptions,
        kube: Kube | None = None,
        *,
        http_server: OperatorHttpServer | None = None,
    ) -> None:
        self.options = options
        self.kube = kube or Kube.from_environment(on_error=metrics.record_api_error)
        self._bridge = LoopBridge()
        self._secret_index: dict[Key, frozenset[str]] = {}
        self._index_lock = threading.Lock()
        self.health_registry = HealthRegistry()
        self.probe_scheduler = ProbeScheduler(
            self.health_registry, on_change=self._on_health_change, record=metrics.record_probe
        )
        self.collector = CallMetricsCollector()
        self.http_server = http_server
        self._started_monotonic = time.monotonic()
        self._all_watching = False  # every watch stream has run at least once
        # What kopf serves: given to kopf.operator (commands/run.py), read for the optional kinds.
        self.insights = Insights()
        # Fed by the kopf handlers below, listed once per kind by the syncer: passes read here.
        self.cache = ObjectCache(cached_kinds(), options.namespaces or (None,))
        self.cache_syncer = CacheSyncer(
            self.kube, self.cache, kopf_watches=self.optional_kinds_watched, on_dropped=self._on_dropped
        )
        # kopf's watch restarting (410 Gone) re-lists with no DELETED events: the cache must know.
        self.watch_restarts = WatchRestarts(kopf_resources(), self.cache.relisting)
        self.reconciler = Reconciler(
            self.kube,
            reader=CachedReader(self.kube, self.cache),
            health=self.health_registry.component_health,
            hooks=Hooks(
                on_pass=self._after_pass, on_migration=metrics.record_migration, on_gone=self._forget
            ),
        )
        self.queue = ReconcileQueue(self._process, workers=options.workers)
        self.resync = PeriodicResync(self.queue, self._list_keys, options.resync_seconds)
        self._hold_pass_seconds = hold_pass_seconds()
        metrics.track_platforms(
            {
                "secret_index": lambda: len(self._secret_index),
                "work_queue": self.queue.tracked,
                "health_registry": self.health_registry.platform_count,
                "probe_scheduler": self.probe_scheduler.platform_count,
                "call_collector": self.collector.platform_count,
                "metric_series": metrics.platforms_with_series,
            }
        )

    # --- wiring of the other parts of the operator ---------------------------

    def _on_health_change(self, namespace: str, name: str, *_: object) -> None:
        self.queue.request((namespace, name))

    def _after_pass(
        self,
        platform: Platform,
        secrets: SecretValues,
        findings: list[Finding],
        conditions: list[dict[str, Any]],
    ) -> None:
        namespace, name = platform.namespace, platform.name
        if self._hold_pass_seconds > 0:
            hold_pass(namespace, name, self._hold_pass_seconds)
        metrics.set_platform_conditions(namespace, name, {c["type"]: c["status"] for c in conditions})
        metrics.set_findings(namespace, name, findings)
        metrics.set_rate_limits(namespace, name, platform.calls.rate_limits.by_event_and_scope())
        # The probe scheduler and the call-metrics collector live on kopf's event loop.
        if platform.monitoring.enabled:
            targets = build_targets(platform, secrets)
            interval = platform.monitoring.probe_interval_seconds
            self._bridge.to_loop(self.probe_scheduler.upsert, namespace, name, targets, interval)
        else:
            self._bridge.to_loop(self._stop_probing, namespace, name)
        ref = platform.database.url_ref
        url = secrets.get(ref.name, {}).get(ref.key, "")
        valid = not any(str(f.severity) == "error" for f in findings)
        if platform.database.metrics_enabled and valid and url:
            self._bridge.to_loop(self.collector.upsert, namespace, name, url, platform.database.call_log)
        else:
            self._bridge.to_loop(self.collector.remove, namespace, name)

    def on_platform_event(self, namespace: str, name: str) -> None:
        """Any CallPlatform watch event, DELETED included, only asks for a pass.

        The pass that finds the platform gone is the one place that forgets it. Forgetting here
        instead would race a pass already in flight, which would register the platform again
        (Secret index, probes, call metrics, its condition series) after the forgetting. The
        queue never runs two passes of one platform at once, so the pass asked for here runs
        after any in-flight one and has the last word.
        """
        self.queue.request((namespace, name))

    def _on_dropped(self, dropped: list[Dropped]) -> None:
        """On the cache syncer's thread: objects a re-listing found gone, which no event reported."""
        self.queue.request_all(platforms_owning(dropped, self.platforms_referencing))

    def observe(self, event: Mapping[str, Any]) -> None:
        """A kopf watch event into the cache (type None is kopf's listing)."""
        self.cache.observe(event.get("type"), event.get("object") or {})

    def _forget(self, namespace: str, name: str) -> None:
        """Called by the pass that found the platform gone (Hooks.on_gone), nowhere else.

        The probes and the call collector stop first, on the loop, and only then go the metric
        series: a probe round finishing on the loop in between would record its series again.
        """
        with self._index_lock:
            self._secret_index.pop((namespace, name), None)
        self._bridge.on_loop_and_wait(self._stop_watching, namespace, name)
        metrics.forget_platform(namespace, name)

    def _stop_probing(self, namespace: str, name: str) -> None:
        """Monitoring switched off: no probes, and none of their series left behind. On the loop,
        after the scheduler let go of the platform, so no probe round records them again."""
        self.probe_scheduler.remove(namespace, name)  # and its health registry entry
        metrics.forget_probes(namespace, name)

    def _stop_watching(self, namespace: str, name: str) -> None:
        self.probe_scheduler.remove(namespace, name)  # and its health registry entry
        self.collector.remove(namespace, name)

    # --- passes ----------------------------------------------------------------

    def _process(self, key: Key) -> float | None:
        namespace, name = key
        started = time.monotonic()
        try:
            result = self.reconciler.reconcile(namespace, name)
        except KubeError as error:
            metrics.record_reconcile(namespace, name, "error", time.monotonic() - started)
            # Ready=False/ApplyFailed and one Warning Event; the queue then backs off with jitter.
            conditions = report_failed_pass(self.kube, namespace, name, error, clock=self.reconciler.clock)
            if conditions is not None:
                metrics.set_platform_conditions(namespace, name, condition_statuses(conditions))
            raise
        except Exception:
            metrics.record_reconcile(namespace, name, "error", time.monotonic() - started)
            raise
        duration = time.monotonic() - started
        if not result.found:
            return None
        metrics.record_reconcile(namespace, name, "blocked" if result.blocked else "success", duration)
        with self._index_lock:
            self._secret_index[key] = result.referenced_secrets
        if result.writes:
            log.info(
                "reconciled %s/%s in %.2fs: wrote %s", namespace, name, duration, ", ".join(result.writes)
            )
        return CONVERGING_RECHECK_SECONDS if result.converging else None

    def _list_keys(self) -> list[Key]:
        namespaces: tuple[str | None, ...] = self.options.namespaces or (None,)
        keys: list[Key] = []
        for namespace in namespaces:
            if self.cache.synced(CALLPLATFORM_API, "CallPlatform", namespace):
                keys += self.cache.keys(CALLPLATFORM_API, "CallPlatform", namespace)
                continue
            for item in self.reconciler.reader.list(CALLPLATFORM_API, "CallPlatform", namespace):
                meta = item.get("metadata", {})
                keys.append((str(meta.get("namespace")), str(meta.get("name"))))
        return keys

    def platforms_referencing(self, namespace: str, secret_name: str) -> list[Key]:
        with self._index_lock:
            return [
                key
                for key, names in self._secret_index.items()
                if key[0] == namespace and secret_name in names
            ]

    def liveness(self) -> list[str]:
        """What `/healthz` reports (`callplatform.liveness`): empty while alive. Runs on the event
        loop, where kopf's watch-stream tasks are."""
        return liveness_problems(self._liveness_facts())

    def readiness(self) -> list[str]:
        """What `/readyz` reports: the same, and not ready until every watch stream has started."""
        return liveness_problems(self._liveness_facts(), readiness=True)

    def optional_kinds_watched(self) -> list[tuple[str, str]]:
        """The optional owned kinds kopf watches now. Also called on the cache syncer's thread:
        tuple() copies kopf's set in one step that runs no Python code, so the loop cannot change
        the set during the copy. A copy taken in the middle of a rescan of the kind's API group
        (kopf removes the group's resources, then adds back the served ones) costs one re-listing."""
        resources = tuple(self.insights.watched_resources)
        return optional_kinds_watched((r.group, r.version, r.plural) for r in resources)

    def _liveness_facts(self) -> LivenessFacts:
        running = len(running_watchers(asyncio.all_tasks()))
        # A kind kopf decided to watch (a served CRD) counts, so its dead stream is caught; one it
        # left out (no CRD) does not.
        expected = expected_watchers(len(self.optional_kinds_watched()), len(self.options.namespaces))
        if running >= expected:
            self._all_watching = True
        in_grace = time.monotonic() - self._started_monotonic < WATCH_START_GRACE_SECONDS
        return LivenessFacts(
            watchers_running=running,
            watchers_expected=expected,
            workers_alive=self.queue.is_alive(),
            resync_alive=self.resync.is_alive(),
            probe_scheduler_alive=self.probe_scheduler.is_alive(),
            collector_alive=self.collector.is_alive(),
            oldest_wait_seconds=self.queue.oldest_wait_seconds(),
            stuck_after_seconds=self.options.stuck_after_seconds,
            watchers_starting=not self._all_watching and in_grace,
        )

    # --- lifecycle -----------------------------------------------------------

    async def startup(self, settings: kopf.OperatorSettings) -> None:
        configure_settings(settings)
        self._bridge.bind(asyncio.get_running_loop())
        self._started_monotonic = time.monotonic()
        self.watch_restarts.install()  # after run.py configured logging: --verbose keeps kopf's DEBUG
        self.cache_syncer.start()
        self.queue.start()
        self.resync.start()
        await self.probe_scheduler.start()
        await self.collector.start()
        # With --leader-elect, the server already runs (in standby mode) and switches over here.
        if self.http_server is None:
            self.http_server = OperatorHttpServer(host=self.options.http_host, port=self.options.http_port)
        self.http_server.serve_operator(
            self.health_registry, liveness=self.liveness, readiness=self.readiness
        )
        if not self.http_server.started:
            await self.http_server.start()

    async def cleanup(self) -> None:
        if self.http_server is not None:
            await self.http_server.stop()
        await self.probe_scheduler.stop()
        await self.collector.stop()
        await off_loop(self.resync.stop)
        await off_loop(self.queue.stop)
        await off_loop(self.cache_syncer.stop)
        self.watch_restarts.uninstall()

    def register(self, registry: kopf.OperatorRegistry) -> None:
        @kopf.on.login(registry=registry)
        def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
            # A private registry gets none of kopf's default login handlers: same credentials as
            # callplatform.kube (in-cluster service account, else the KUBECONFIG context).
            info: kopf.ConnectionInfo | None = kopf.login_via_client(**kwargs)
            return info

        @kopf.on.startup(registry=registry)
        async def start(settings: kopf.OperatorSettings, **_: Any) -> None:
            await self.startup(settings)

        @kopf.on.cleanup(registry=registry)
        async def stop(**_: Any) -> None:
            await self.cleanup()

        @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
        def platform_event(**kwargs: Any) -> None:
            self.observe(kwargs["event"])  # before asking: the pass reads at least this version
            self.on_platform_event(str(kwargs["namespace"]), str(kwargs["name"]))

        @kopf.on.event("", "v1", "secrets", registry=registry)
        def secret_event(**kwargs: Any) -> None:
            self.observe(kwargs["event"])
            namespace, name, labels = str(kwargs["namespace"]), str(kwargs["name"]), kwargs["labels"]
            keys = set(self.platforms_referencing(namespace, name))
            if labels.get(MANAGED_BY_LABEL) == MANAGED_BY and INSTANCE_LABEL in labels:
                keys.add((namespace, labels[INSTANCE_LABEL]))
            self.queue.request_all(sorted(keys))

        for group, version, plural in OWNED_KINDS + OPTIONAL_OWNED_KINDS:
            # Unfiltered (kopf filters labels on its side of the same watch): the cache must see
            # an object lose our label.
            @kopf.on.event(group, version, plural, id=f"owned-{plural}", registry=registry)
            def owned_event(**kwargs: Any) -> None:
                self.observe(kwargs["event"])
                labels = kwargs["labels"]
                if labels.get(MANAGED_BY_LABEL) == MANAGED_BY and INSTANCE_LABEL in labels:
                    self.queue.request((str(kwargs["namespace"]), labels[INSTANCE_LABEL]))


class UnresolvedOnce(logging.Filter):
    """Lets each distinct "Unresolved resources" warning of kopf's through once. kopf repeats it on
    every CRD event in the cluster (all-namespaces mode) while an optional kind's CRD is absent."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()  # one per set of unresolved kinds: a handful at most

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith("Unresolved resources"):
            return True
        if message in self._seen:
            return False
        self._seen.add(message)
        return True


def configure_settings(settings: kopf.OperatorSettings) -> None:
    # Watches that silently stop are kopf's most reported production failure: renew them often.
    settings.watching.server_timeout = 5 * 60
    settings.watching.client_timeout = 6 * 60
    settings.watching.connect_timeout = 30
    # kopf would turn handler log lines into Events; the operator posts its own, on transitions only.
    settings.posting.enabled = False
    settings.posting.level = logging.WARNING
    # Our handlers block on the API (through the work queue), not on kopf's executor.
    settings.execution.max_workers = 4
    # kopf logs "Handler ... succeeded" at INFO for every watch event of every watched kind.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    logging.getLogger("kopf._core.reactor.observation").addFilter(UnresolvedOnce())
