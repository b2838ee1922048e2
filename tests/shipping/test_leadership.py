"""Leader election on a Lease: the pure decisions, and the elector against an in-memory Lease store
that behaves like the API server (resourceVersion conflicts)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from callplatform.httpserver import OperatorHttpServer
from callplatform.leadership import (
    ENDPOINT_ANNOTATION,
    LeaderElector,
    LeaseClient,
    LeaseConflict,
    LeaseRecord,
    LeaseSettings,
    Observation,
    desired_spec,
    may_acquire,
    micro_time,
)
from callplatform.probes.health import HealthRegistry

NOW = datetime(2026, 11, 27, 14, 0, 0, tzinfo=UTC)


def record(holder: str, renew: str = "t1", duration: int = 15, version: str = "1") -> LeaseRecord:
    return LeaseRecord(holder, renew, duration, 0, version)


class FakeLeases:
    """One Lease with optimistic concurrency, like the API server."""

    def __init__(self) -> None:
        self.spec: dict[str, Any] | None = None
        self.version = 0
        self.lock = threading.Lock()

    def client(self) -> Any:
        store = self

        class Client:
            def read(self) -> LeaseRecord | None:
                with store.lock:
                    if store.spec is None:
                        return None
                    return LeaseRecord.from_lease(
                        {"spec": store.spec, "metadata": {"resourceVersion": str(store.version)}}
                    )

            def write(self, current: LeaseRecord | None, spec: dict[str, Any]) -> LeaseRecord:
                with store.lock:
                    if (current is None) != (store.spec is None):
                        raise LeaseConflict("exists" if current is None else "gone")
                    if current is not None and current.resource_version != str(store.version):
                        raise LeaseConflict("stale")
                    store.spec = dict(spec)
                    store.version += 1
                    return LeaseRecord.from_lease(
                        {"spec": store.spec, "metadata": {"resourceVersion": str(store.version)}}
                    )

        return Client()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def settings(identity: str) -> LeaseSettings:
    return LeaseSettings(name="callplatform-operator", namespace="ops", identity=identity)


def test_settings_reject_a_renew_deadline_beyond_the_lease() -> None:
    with pytest.raises(ValueError):
        LeaseSettings("l", "ns", "me", lease_duration_seconds=10, renew_deadline_seconds=12)
    assert settings("a").worst_case_takeover_seconds == 17


def test_free_own_or_absent_lease_may_be_taken() -> None:
    assert may_acquire(None, "me", 0)
    assert may_acquire(record(""), "me", 0)
    assert may_acquire(record("me"), "me", 0)


def test_someone_elses_lease_only_after_it_went_unrenewed_for_its_duration() -> None:
    assert not may_acquire(record("other", duration=15), "me", 14.9)
    assert may_acquire(record("other", duration=15), "me", 15.0)
    assert may_acquire(record("other", duration=0), "me", 1.0)  # a broken record still expires


def test_observation_measures_on_the_local_clock_and_resets_on_change() -> None:
    observation = Observation()
    assert observation.update(record("a", "t1"), 100.0) == 0
    assert observation.update(record("a", "t1"), 110.0) == 10
    assert observation.update(record("a", "t2"), 111.0) == 0  # renewed
    assert observation.update(record("b", "t2"), 112.0) == 0  # new holder


def test_desired_spec_counts_transitions_and_releases() -> None:
    mine = settings("me")
    first = desired_spec(None, mine, NOW)
    assert first["holderIdentity"] == "me" and first["leaseTransitions"] == 0
    assert first["acquireTime"] == first["renewTime"] == "2026-11-27T14:00:00.000000Z"
    taken = desired_spec(record("other"), mine, NOW)
    assert taken["leaseTransitions"] == 1 and "acquireTime" in taken
    renewed = desired_spec(record("me"), mine, NOW)
    assert renewed["leaseTransitions"] == 0 and "acquireTime" not in renewed
    released = desired_spec(record("me"), mine, NOW, release=True)
    assert released["holderIdentity"] == "" and released["leaseDurationSeconds"] == 1


def test_micro_time_always_has_six_fractional_digits() -> None:
    assert micro_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000000Z"


def test_only_one_of_two_candidates_leads_and_the_other_takes_over_after_expiry() -> None:
    leases, clock = FakeLeases(), Clock()
    lost: list[str] = []
    first = LeaderElector(leases.client(), settings("a"), on_lost=lambda: lost.append("a"), clock=clock)
    second = LeaderElector(leases.client(), settings("b"), on_lost=lambda: lost.append("b"), clock=clock)
    assert first.try_acquire_or_renew()
    assert not second.try_acquire_or_renew()
    clock.now += 10
    assert first.try_acquire_or_renew()  # renewal: the record changes, the standby's timer restarts
    clock.now += 1
    assert not second.try_acquire_or_renew()  # `b` sees the renewed record: its timer restarts
    clock.now += 14.5
    assert not second.try_acquire_or_renew()
    clock.now += 0.5  # `a` has not renewed for 15 s, as `b` saw it
    assert second.try_acquire_or_renew()
    assert leases.spec is not None and leases.spec["holderIdentity"] == "b"
    assert leases.spec["leaseTransitions"] == 1
    assert not first.try_acquire_or_renew()  # `a` comes back: it is not the holder any more
    assert lost == []


def test_a_stale_write_loses_the_race() -> None:
    leases = FakeLeases()
    client = leases.client()
    assert client.write(None, desired_spec(None, settings("a"), NOW)).holder == "a"
    stale = client.read()
    assert stale is not None
    client.write(stale, desired_spec(stale, settings("a"), NOW))
    with pytest.raises(LeaseConflict):
        client.write(stale, desired_spec(stale, settings("b"), NOW))


def test_release_hands_over_at_once() -> None:
    leases, clock = FakeLeases(), Clock()
    first = LeaderElector(leases.client(), settings("a"), on_lost=lambda: None, clock=clock)
    second = LeaderElector(leases.client(), settings("b"), on_lost=lambda: None, clock=clock)
    assert first.acquire()
    assert not second.try_acquire_or_renew()
    first.release()
    assert leases.spec is not None and leases.spec["holderIdentity"] == ""
    assert second.try_acquire_or_renew()  # no waiting for expiry


def test_leader_that_cannot_renew_gives_up_within_the_renew_deadline() -> None:
    leases = FakeLeases()
    fast = LeaseSettings(
        "l", "ns", "a", lease_duration_seconds=3, renew_deadline_seconds=0.4, retry_period_seconds=0.1
    )
    lost = threading.Event()
    elector = LeaderElector(leases.client(), fast, on_lost=lost.set)
    assert elector.acquire()
    broken = leases.client()

    def failing_read() -> LeaseRecord | None:
        raise RuntimeError("apiserver unreachable")

    broken.read = failing_read
    elector._client = broken
    assert lost.wait(timeout=3), "on_lost was not called"
    assert not elector.leading.is_set()


async def test_standby_mode_answers_probes_and_metrics() -> None:
    server = OperatorHttpServer(host="127.0.0.1", port=0)
    server.serve_standby(lambda: "")
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            for path in ("/healthz", "/readyz"):
                response = await client.get(path)
                assert (response.status_code, response.text) == (
                    200,
                    "standby: waiting for the leader Lease\n",
                )
            metrics = await client.get("/metrics")
            families = {f.name for f in text_string_to_metric_families(metrics.text)}
            assert "process_cpu_seconds" in families or "python_info" in families
            assert (await client.get("/debug")).status_code == 404
    finally:
        await server.stop()


async def test_the_one_server_switches_from_standby_to_operator_on_the_same_port() -> None:
    server = OperatorHttpServer(host="127.0.0.1", port=0)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        await server.start()
        client.base_url = httpx.URL(f"http://127.0.0.1:{server.port}")
        try:
            assert (await client.get("/healthz")).status_code == 503  # no mode yet: starting
            server.serve_standby(lambda: "")
            assert (await client.get("/healthz")).text.startswith("standby")
            server.serve_operator(HealthRegistry(), liveness=lambda: ["watch streams: 0 of 9 running"],
                                  readiness=lambda: [])  # fmt: skip
            alive = await client.get("/healthz")
            assert (alive.status_code, alive.text) == (503, "watch streams: 0 of 9 running\n")
            assert (await client.get("/readyz")).status_code == 200
            health = await client.get("/api/calls/health/jitsi")
            assert health.status_code == 200 and health.json()["platforms"] == []  # its own answer
        finally:
            await server.stop()


class LeaderHealthApi(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "platforms": {"calls/production": "unhealthy"}}).encode()
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


async def test_standby_passes_the_health_api_on_to_the_leader() -> None:
    leader = ThreadingHTTPServer(("127.0.0.1", 0), LeaderHealthApi)
    threading.Thread(target=leader.serve_forever, daemon=True).start()
    endpoint = {"value": ""}
    standby = OperatorHttpServer(host="127.0.0.1", port=0)
    standby.serve_standby(lambda: endpoint["value"])
    await standby.start()
    url = f"http://127.0.0.1:{standby.port}/api/calls/health/coturn?platform=production"
    try:
        async with httpx.AsyncClient(timeout=15) as client:
            unknown = await client.get(url)
            assert unknown.status_code == 503
            assert unknown.json()["standby"] is True

            endpoint["value"] = f"127.0.0.1:{leader.server_address[1]}"
            forwarded = await client.get(url)
            assert forwarded.status_code == 503  # the leader's answer, status and body
            assert forwarded.json() == {
                "path": "/api/calls/health/coturn?platform=production",
                "platforms": {"calls/production": "unhealthy"},
            }

            leader.shutdown()
            leader.server_close()
            gone = await client.get(url)
            assert gone.status_code == 503
            assert gone.json()["error"] == "the leader did not answer"
    finally:
        await standby.stop()


def test_lease_record_reads_the_leader_endpoint() -> None:
    lease = {
        "metadata": {"resourceVersion": "7", "annotations": {ENDPOINT_ANNOTATION: "10.0.0.5:8080"}},
        "spec": {"holderIdentity": "pod-a", "renewTime": "t", "leaseDurationSeconds": 15},
    }
    assert LeaseRecord.from_lease(lease).endpoint == "10.0.0.5:8080"
    assert LeaseRecord.from_lease({"spec": {}}).endpoint == ""


def test_the_leader_endpoint_is_never_this_replicas_own() -> None:
    elector = LeaderElector(FakeLeases().client(), settings("b"), on_lost=lambda: None, clock=Clock())
    elector.last_seen = LeaseRecord("a", "t1", 15, 0, "1", endpoint="10.0.0.5:8080")
    assert elector.leader_endpoint() == "10.0.0.5:8080"
    elector.last_seen = LeaseRecord("", "t1", 15, 0, "2", endpoint="10.0.0.5:8080")  # released
    assert elector.leader_endpoint() == ""
    # Elected, its renewals read its own record: a standby server passing requests on would reach itself.
    elector.last_seen = LeaseRecord("b", "t2", 15, 1, "3", endpoint="10.0.0.6:8080")
    assert elector.leader_endpoint() == ""


class RecordingApiClient:
    """Stands in for kubernetes.client.ApiClient: records requests, answers 200 with the body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []

    def param_serialize(self, **kwargs: Any) -> tuple[str, str, dict[str, str], Any, None]:
        return kwargs["method"], kwargs["resource_path"], kwargs["header_params"], kwargs["body"], None

    def call_api(
        self, method: str, url: str, header_params: Any = None, body: Any = None, _request_timeout: Any = None
    ) -> Any:
        assert _request_timeout is not None and 0 < _request_timeout <= 2.5, "Lease calls are bounded"
        self.requests.append((method, url, body))

        class Response:
            status = 200
            data = json.dumps(body).encode()

            def read(self) -> None:
                pass

        return Response()


def test_lease_update_keeps_helms_annotations_and_labels() -> None:
    """Helm owns the Lease it created; a PUT that dropped its annotations would break upgrades."""
    api = RecordingApiClient()
    mine = LeaseSettings("callplatform-operator", "ops", "pod-a", endpoint="10.0.0.5:8080")
    client = LeaseClient(api, mine)
    helm_owned = LeaseRecord.from_lease(
        {
            "metadata": {
                "resourceVersion": "42",
                "labels": {"app.kubernetes.io/managed-by": "Helm"},
                "annotations": {"meta.helm.sh/release-name": "cp", "meta.helm.sh/release-namespace": "ops"},
            },
            "spec": {},
        }
    )
    written = client.write(helm_owned, desired_spec(helm_owned, mine, NOW))
    method, url, body = api.requests[-1]
    assert (method, url) == (
        "PUT",
        "/apis/coordination.k8s.io/v1/namespaces/ops/leases/callplatform-operator",
    )
    assert body["metadata"]["resourceVersion"] == "42"
    assert body["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "Helm"}
    assert body["metadata"]["annotations"] == {
        "meta.helm.sh/release-name": "cp",
        "meta.helm.sh/release-namespace": "ops",
        ENDPOINT_ANNOTATION: "10.0.0.5:8080",
    }
    assert written.holder == "pod-a" and written.endpoint == "10.0.0.5:8080"
    released = client.write(written, desired_spec(written, mine, NOW, release=True))
    assert released.holder == "" and released.endpoint == ""
    assert api.requests[-1][2]["metadata"]["annotations"]["meta.helm.sh/release-name"] == "cp"
