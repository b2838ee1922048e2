"""Leader election on a coordination.k8s.io Lease: of several operator replicas, exactly one reconciles.

The algorithm is client-go's leaderelection:
- a candidate takes the Lease when it has no holder, or when the holder has not renewed it for a
  whole lease duration *as observed by the candidate's own clock* (no clock comparison between
  machines);
- the leader renews every retry period; if it cannot renew within the renew deadline, it has lost
  the Lease and must stop at once (`callplatform run` exits; the kubelet restarts it as a standby);
- every write carries the resourceVersion it read, so two candidates can never both win;
- on a clean exit the leader releases the Lease, and a standby takes over within a retry period.

Worst-case takeover after a leader is killed without a clean exit: lease duration + retry period.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from callplatform.httpserver import OperatorHttpServer
from callplatform.threadbridge import off_loop

log = logging.getLogger(__name__)

LEASE_API = "/apis/coordination.k8s.io/v1"
ENDPOINT_ANNOTATION = "callplatform.io/leader-endpoint"


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    name: str
    namespace: str
    identity: str
    lease_duration_seconds: int = 15
    renew_deadline_seconds: float = 10.0
    retry_period_seconds: float = 2.0
    # host:port of this replica's HTTP server, published in the Lease so that standbys can pass
    # health API requests on to the leader. Empty: not published.
    endpoint: str = ""

    def __post_init__(self) -> None:
        if not self.retry_period_seconds < self.renew_deadline_seconds < self.lease_duration_seconds:
            raise ValueError("need retry period < renew deadline < lease duration")

    @property
    def worst_case_takeover_seconds(self) -> float:
        return self.lease_duration_seconds + self.retry_period_seconds


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The parts of a Lease the election reads."""

    holder: str
    renew_time: str
    lease_duration_seconds: int
    transitions: int
    resource_version: str
    endpoint: str = ""
    # Kept so that a PUT never drops what others put there (Helm's ownership annotations).
    labels: Mapping[str, str] = field(default_factory=dict, compare=False)
    annotations: Mapping[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def from_lease(cls, lease: dict[str, Any]) -> LeaseRecord:
        spec = lease.get("spec") or {}
        metadata = lease.get("metadata") or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            renew_time=str(spec.get("renewTime") or ""),
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            transitions=int(spec.get("leaseTransitions") or 0),
            resource_version=str(metadata.get("resourceVersion") or ""),
            endpoint=str((metadata.get("annotations") or {}).get(ENDPOINT_ANNOTATION) or ""),
            labels=dict(metadata.get("labels") or {}),
            annotations=dict(metadata.get("annotations") or {}),
        )


class Observation:
    """When this candidate last saw the Lease change (holder or renew time), on its own clock."""

    def __init__(self) -> None:
        self._seen: tuple[str, str] | None = None
        self._since = 0.0

    def update(self, record: LeaseRecord, now: float) -> float:
        """Record `record` as seen at `now`; return for how long it has been unchanged."""
        key = (record.holder, record.renew_time)
        if key != self._seen:
            self._seen, self._since = key, now
        return now - self._since


def may_acquire(record: LeaseRecord | None, identity: str, unchanged_for: float) -> bool:
    """Whether `identity` may write itself into the Lease now."""
    if record is None or not record.holder or record.holder == identity:
        return True
    # A holder that stopped renewing: expired after its own lease duration (at least 1 s).
    return unchanged_for >= max(record.lease_duration_seconds, 1)


def micro_time(moment: datetime) -> str:
    """A Kubernetes MicroTime: RFC 3339 with exactly six fractional digits."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def desired_spec(
    record: LeaseRecord | None, settings: LeaseSettings, now: datetime, *, release: bool = False
) -> dict[str, Any]:
    """The Lease spec after this candidate acquires, renews or (with `release`) gives it up."""
    taking_over = record is None or record.holder != settings.identity
    transitions = 0 if record is None else record.transitions + (1 if taking_over and record.holder else 0)
    spec: dict[str, Any] = {
        "holderIdentity": settings.identity,
        "leaseDurationSeconds": settings.lease_duration_seconds,
        "renewTime": micro_time(now),
        "leaseTransitions": transitions,
    }
    if taking_over:
        spec["acquireTime"] = micro_time(now)
    if release:
        # client-go's release: no holder, and a one-second lease, so a standby takes over at once.
        spec.update(holderIdentity="", leaseDurationSeconds=1)
    return spec


class LeaseConflict(Exception):
    """Someone else wrote the Lease between our read and our write."""


class LeaseClient:
    """GET/PUT/POST of one Lease with the `kubernetes` ApiClient; raises on anything but success."""

    def __init__(self, api_client: Any, settings: LeaseSettings) -> None:
        self._api = api_client
        self._settings = settings

    def _path(self, name: str | None = None) -> str:
        base = f"{LEASE_API}/namespaces/{self._settings.namespace}/leases"
        return f"{base}/{name}" if name else base

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        import json

        method_, url, headers, body_, _ = self._api.param_serialize(
            method=method,
            resource_path=path,
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        # A request that hangs must not keep a cut-off leader believing it still leads: bounded so
        # that the leader gives up (renew deadline) before a standby may take over (lease duration).
        timeout = max(
            0.5, (self._settings.lease_duration_seconds - self._settings.renew_deadline_seconds) / 2
        )
        response = self._api.call_api(
            method_, url, header_params=headers, body=body_, _request_timeout=timeout
        )
        response.read()
        data = json.loads(response.data) if response.data else {}
        return int(response.status), data

    def read(self) -> LeaseRecord | None:
        status, data = self._call("GET", self._path(self._settings.name))
        if status == 404:
            return None
        if status >= 400:
            raise RuntimeError(f"get Lease {self._settings.namespace}/{self._settings.name}: HTTP {status}")
        return LeaseRecord.from_lease(data)

    def write(self, record: LeaseRecord | None, spec: dict[str, Any]) -> LeaseRecord:
        metadata: dict[str, Any] = {"name": self._settings.name, "namespace": self._settings.namespace}
        endpoint = self._settings.endpoint if spec.get("holderIdentity") else ""
        if record is not None:
            metadata["labels"] = dict(record.labels)
        metadata["annotations"] = {**(record.annotations if record else {}), ENDPOINT_ANNOTATION: endpoint}
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}
        if record is None:
            status, data = self._call("POST", self._path(), body)
        else:
            metadata["resourceVersion"] = record.resource_version
            status, data = self._call("PUT", self._path(self._settings.name), body)
        if status == 409:
            raise LeaseConflict(self._settings.name)
        if status >= 400:
            verb = "create" if record is None else "update"
            raise RuntimeError(
                f"{verb} Lease {self._settings.namespace}/{self._settings.name}: HTTP {status}"
            )
        return LeaseRecord.from_lease(data)


class LeaderElector:
    """Blocks in `acquire()` until this process leads, then renews on a thread until `release()`."""

    def __init__(
        self,
        client: LeaseClient,
        settings: LeaseSettings,
        *,
        on_lost: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._settings = settings
        self._on_lost = on_lost
        self._clock = clock
        self._wall_clock = wall_clock
        self._observation = Observation()
        self._record: LeaseRecord | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.leading = threading.Event()
        self.last_seen: LeaseRecord | None = None

    def leader_endpoint(self) -> str:
        """host:port of the current leader's HTTP server, as last read from the Lease."""
        record = self.last_seen
        if record is None or not record.holder or record.holder == self._settings.identity:
            return ""  # never this replica's own server: a request would be passed on to itself
        return record.endpoint

    def try_acquire_or_renew(self) -> bool:
        """One round of the election; True when this process holds the Lease afterwards."""
        record = self._client.read()
        self.last_seen = record
        unchanged_for = 0.0 if record is None else self._observation.update(record, self._clock())
        if not may_acquire(record, self._settings.identity, unchanged_for):
            return False
        try:
            self._record = self._client.write(
                record, desired_spec(record, self._settings, self._wall_clock())
            )
        except LeaseConflict:
            return False
        return True

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Wait until elected (True) or until `stop` is set (False)."""
        stop = stop or threading.Event()
        announced = False
        while not stop.is_set():
            try:
                if self.try_acquire_or_renew():
                    log.info(
                        "leading: Lease %s/%s held by %s",
                        self._settings.namespace,
                        self._settings.name,
                        self._settings.identity,
                    )
                    self.leading.set()
                    self._renewer = threading.Thread(target=self._renew_loop, name="lease-renew", daemon=True)
                    self._renewer.start()
                    return True
                if not announced:
                    log.info(
                        "standing by: Lease %s/%s is held by another replica",
                        self._settings.namespace,
                        self._settings.name,
                    )
                    announced = True
            except Exception as exc:
                log.warning("leader election: %s", exc)
            stop.wait(self._settings.retry_period_seconds)
        return False

    def _renew_loop(self) -> None:
        last_renewal = self._clock()
        while not self._stop.wait(self._settings.retry_period_seconds):
            try:
                if self.try_acquire_or_renew():
                    last_renewal = self._clock()
                    continue
                log.error("lost the Lease to another replica")
            except Exception as exc:
                log.warning("could not renew the Lease: %s", exc)
                if self._clock() - last_renewal < self._settings.renew_deadline_seconds:
                    continue
                log.error("could not renew the Lease for %.0fs", self._clock() - last_renewal)
            self.leading.clear()
            self._on_lost()
            return

    def release(self) -> None:
        """Stop renewing and hand the Lease over (best effort: an expired Lease is taken over anyway)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=self._settings.retry_period_seconds + 5)
        if not self.leading.is_set():
            return
        self.leading.clear()
        try:
            record = self._client.read()
            if record is not None and record.holder == self._settings.identity:
                self._client.write(
                    record, desired_spec(record, self._settings, self._wall_clock(), release=True)
                )
                log.info("released the Lease %s/%s", self._settings.namespace, self._settings.name)
        except Exception as exc:
            log.warning("could not release the Lease (a standby takes over when it expires): %s", exc)


# --- `callplatform run --leader-elect` ---------------------------------------------------------

SERVICE_ACCOUNT_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def add_arguments(parser: Any) -> None:
    """The `callplatform run` flags of leader election (an argparse parser or group)."""
    group = parser.add_argument_group("leader election (several replicas, one reconciles)")
    group.add_argument(
        "--leader-elect",
        action="store_true",
        help="Reconcile only while holding a coordination.k8s.io Lease.",
    )
    group.add_argument("--lease-name", default="callplatform-operator", help="Name of the Lease.")
    group.add_argument(
        "--lease-namespace",
        default="",
        help="Namespace of the Lease (default: $POD_NAMESPACE, or the pod's service account namespace).",
    )
    group.add_argument("--lease-duration-seconds", type=int, default=15, help="How long a Lease stays valid.")
    group.add_argument(
        "--renew-deadline-seconds", type=float, default=10.0, help="Give up leading after this."
    )
    group.add_argument("--retry-period-seconds", type=float, default=2.0, help="Renew and retry interval.")
    group.add_argument(
        "--identity", default="", help="This replica's name in the Lease (default: $POD_NAME)."
    )


def settings_from_arguments(args: Any) -> LeaseSettings:
    import os
    import socket
    import uuid
    from pathlib import Path

    namespace = args.lease_namespace or os.environ.get("POD_NAMESPACE", "")
    if not namespace and Path(SERVICE_ACCOUNT_NAMESPACE_FILE).is_file():
        namespace = Path(SERVICE_ACCOUNT_NAMESPACE_FILE).read_text().strip()
    if not namespace:
        raise ValueError("--leader-elect needs --lease-namespace (or $POD_NAMESPACE)")
    identity = args.identity or os.environ.get("POD_NAME") or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    # Where standbys reach this replica: the pod IP in a cluster, the bound address otherwise.
    host = os.environ.get("POD_IP") or ("" if args.http_host in ("0.0.0.0", "::") else args.http_host)  # noqa: S104
    endpoint = f"[{host}]:{args.http_port}" if ":" in host else f"{host}:{args.http_port}" if host else ""
    return LeaseSettings(
        name=args.lease_name,
        namespace=namespace,
        identity=identity,
        lease_duration_seconds=args.lease_duration_seconds,
        renew_deadline_seconds=args.renew_deadline_seconds,
        retry_period_seconds=args.retry_period_seconds,
        endpoint=endpoint,
    )


async def run_while_leading(
    args: Any, server: OperatorHttpServer, operate: Callable[[], Awaitable[None]]
) -> None:
    """Without --leader-elect: `operate()`. With it: stand by until elected, then `operate()`.

    While standing by, `server` (the operator's one HTTP server) runs in standby mode; the operator
    switches it to its own mode when it starts. Losing the Lease ends the process at once (exit
    code 1), so a replica that is no longer the leader never makes another write; the kubelet
    restarts it as a standby.
    """
    if not getattr(args, "leader_elect", False):
        await operate()
        return
    import os

    from kubernetes import config as k8s_config

    settings = settings_from_arguments(args)
    try:
        k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
        from kubernetes import client as k8s_client

        api_client = k8s_client.ApiClient()
    except k8s_config.ConfigException:
        api_client = k8s_config.new_client_from_config()  # type: ignore[no-untyped-call]

    def lost() -> None:
        log.critical("lost leadership: exiting so that only the new leader reconciles")
        logging.shutdown()
        os._exit(1)

    elector = LeaderElector(LeaseClient(api_client, settings), settings, on_lost=lost)
    server.serve_standby(elector.leader_endpoint)
    await server.start()
    stop = threading.Event()
    try:
        await off_loop(elector.acquire, stop)
    except BaseException:
        stop.set()  # the election thread ends within a retry period, so the process can exit
        await server.stop()
        raise
    server.serve_starting()
    try:
        await operate()
    finally:
        await off_loop(elector.release)
