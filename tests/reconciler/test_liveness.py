"""What /healthz checks, as pure functions and against real asyncio tasks and a real work queue."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import replace

import kopf
from reconciler_fake_kube import FakeKube

from callplatform.handlers import (
    OPTIONAL_OWNED_KINDS,
    OWNED_KINDS,
    Operator,
    OperatorOptions,
    UnresolvedOnce,
    expected_watchers,
    optional_kinds_watched,
)
from callplatform.liveness import (
    WATCH_START_GRACE_SECONDS,
    WATCHER_TASK_PREFIX,
    LivenessFacts,
    liveness_problems,
    running_watchers,
)
from callplatform.workqueue import ReconcileQueue

ALIVE = LivenessFacts(
    watchers_running=9,
    watchers_expected=9,
    workers_alive=True,
    resync_alive=True,
    probe_scheduler_alive=True,
    collector_alive=True,
    oldest_wait_seconds=3.0,
    stuck_after_seconds=600.0,
)


def test_an_alive_operator_has_no_problem() -> None:
    assert liveness_problems(ALIVE) == []


def test_watch_streams_still_starting_fail_readiness_only() -> None:
    starting = replace(ALIVE, watchers_running=0, watchers_starting=True)
    assert liveness_problems(starting) == []
    assert liveness_problems(starting, readiness=True) == ["watch streams: 0 of 9 running"]
    assert liveness_problems(replace(starting, watchers_starting=False)) == ["watch streams: 0 of 9 running"]


def test_each_dead_part_is_named() -> None:
    assert liveness_problems(replace(ALIVE, watchers_running=8)) == ["watch streams: 8 of 9 running"]
    assert liveness_problems(replace(ALIVE, workers_alive=False)) == ["reconcile workers are not running"]
    assert liveness_problems(replace(ALIVE, resync_alive=False)) == ["the periodic resync is not running"]
    assert len(liveness_problems(replace(ALIVE, probe_scheduler_alive=False, collector_alive=False))) == 2
    assert liveness_problems(replace(ALIVE, oldest_wait_seconds=601.0)) == [
        "a platform has waited 601s for its pass (limit 600s)"
    ]


async def test_running_watchers_counts_kopfs_watch_stream_tasks_until_one_dies() -> None:
    async def stream() -> None:
        await asyncio.Event().wait()

    async def dies() -> None:
        raise RuntimeError("403 Forbidden")

    tasks = [
        asyncio.create_task(stream(), name=f"{WATCHER_TASK_PREFIX}{kind}@calls")
        for kind in ("secrets", "jobs")
    ]
    other = asyncio.create_task(
        stream(), name="worker for calls/p0"
    )  # kopf's per-object workers do not count
    dying = asyncio.create_task(dies(), name=f"{WATCHER_TASK_PREFIX}configmaps@calls")
    await asyncio.sleep(0)
    try:
        assert running_watchers(asyncio.all_tasks()) == ["jobs@calls", "secrets@calls"]
        assert dying.done()
        tasks[0].cancel()
        await asyncio.sleep(0)
        assert running_watchers(asyncio.all_tasks()) == ["jobs@calls"]
    finally:
        for task in (*tasks, other):
            task.cancel()
        await asyncio.gather(*tasks, other, dying, return_exceptions=True)


def test_a_pass_running_too_long_is_stuck_but_a_backoff_is_not() -> None:
    release = threading.Event()
    queue = ReconcileQueue(lambda key: release.wait(10) and None, workers=1)
    queue.start()
    try:
        queue.request(("ns", "later"), delay_seconds=3600)  # waits on purpose: not stuck
        assert queue.oldest_wait_seconds() == 0.0
        queue.request(("ns", "hung"))
        deadline = time.monotonic() + 5
        while queue.oldest_wait_seconds() < 0.2:
            assert time.monotonic() < deadline, "the running pass was not counted"
            time.sleep(0.01)
        queue.request(("ns", "waiting"))  # due, but the only worker is busy: it waits too
        assert queue.oldest_wait_seconds() >= 0.2
    finally:
        release.set()
        queue.stop()


def test_expected_streams_count_the_optional_kinds_kopf_watches_and_only_those() -> None:
    core = 2 + len(OWNED_KINDS)  # CallPlatforms, Secrets, the always-served owned kinds
    assert optional_kinds_watched([("apps", "v1", "deployments"), ("", "v1", "secrets")]) == []
    route = ("gateway.networking.k8s.io", "v1", "httproutes")
    assert optional_kinds_watched([route, ("apps", "v1", "deployments")]) == [
        ("gateway.networking.k8s.io/v1", "HTTPRoute")
    ]
    assert len(optional_kinds_watched(OPTIONAL_OWNED_KINDS)) == len(OPTIONAL_OWNED_KINDS) == 2
    assert expected_watchers(0, 0) == core  # cluster-wide, no CRDs
    assert expected_watchers(2, 0) == core + 2
    assert expected_watchers(1, 3) == (core + 1) * 3  # one stream per kind and namespace


async def _streams(names: list[str]) -> list[asyncio.Task[None]]:
    tasks = [
        asyncio.create_task(asyncio.Event().wait(), name=f"{WATCHER_TASK_PREFIX}{n}@calls") for n in names
    ]  # type: ignore[arg-type]
    await asyncio.sleep(0)
    return tasks


def _stream_problems(operator: Operator) -> list[str]:
    """The watch-stream lines of /healthz and /readyz (the workers and loops are not started here)."""
    found = operator.liveness() + operator.readiness()
    return [problem for problem in found if problem.startswith("watch streams")]


async def test_healthz_ignores_a_missing_crd_and_catches_a_dead_stream_of_a_served_one() -> None:
    operator = Operator(OperatorOptions(namespaces=("calls",)), kube=FakeKube())  # type: ignore[arg-type]
    operator._started_monotonic -= WATCH_START_GRACE_SECONDS  # past the start-up grace
    core = [f"kind{i}" for i in range(2 + len(OWNED_KINDS))]
    tasks = await _streams(core)
    try:
        # No CRDs: kopf watches neither optional kind, so the core streams are all there is.
        assert _stream_problems(operator) == []
        # The Gateway API CRDs are served: kopf watches HTTPRoutes, and that stream must run.
        operator.insights.watched_resources.add(
            kopf.Resource("gateway.networking.k8s.io", "v1", "httproutes")
        )
        expected = f"watch streams: {len(core)} of {len(core) + 1} running"
        assert _stream_problems(operator) == [expected, expected]
        tasks += await _streams(["httproutes.v1.gateway.networking.k8s.io"])
        assert _stream_problems(operator) == []
        tasks[-1].cancel()  # its stream died
        await asyncio.sleep(0)
        assert _stream_problems(operator) == [expected, expected]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def test_kopfs_unresolved_resources_warning_is_logged_once_per_distinct_message() -> None:
    only = UnresolvedOnce()

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("kopf._core.reactor.observation", logging.WARNING, "", 0, message, (), None)

    missing = "Unresolved resources cannot be served (try creating their CRDs): httproutes, servicemonitors"
    assert only.filter(record(missing))
    assert not any(only.filter(record(missing)) for _ in range(40))  # every later CRD event
    assert only.filter(
        record("Unresolved resources cannot be served (try creating their CRDs): servicemonitors")
    )
    assert all(only.filter(record("Not enough permissions to watch for resources")) for _ in range(2))
