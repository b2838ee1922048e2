"""What /healthz checks, as pure functions and against real asyncio tasks and a real work queue."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace

from callplatform.liveness import WATCHER_TASK_PREFIX, LivenessFacts, liveness_problems, running_watchers
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
