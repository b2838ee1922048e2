"""The coalescing work queue: one pass per burst, never two at once for a platform, retries."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from callplatform.workqueue import Key, PeriodicResync, ReconcileQueue

A, B = ("ns", "a"), ("ns", "b")


def _wait(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def started() -> Iterator[list[ReconcileQueue]]:
    queues: list[ReconcileQueue] = []
    yield queues
    for queue in queues:
        queue.stop()


def test_requests_while_waiting_coalesce(started: list[ReconcileQueue]) -> None:
    gate = threading.Event()
    passes: list[Key] = []

    def process(key: Key) -> None:
        gate.wait(5)
        passes.append(key)

    queue = ReconcileQueue(process, workers=1)
    started.append(queue)
    queue.start()
    queue.request(B)  # occupies the only worker until the gate opens
    _wait(lambda: queue.pending() == 1 and not queue._due)
    for _ in range(10):
        queue.request(A)
    gate.set()
    _wait(lambda: queue.pending() == 0)
    assert passes == [B, A]


def test_one_platform_is_never_reconciled_twice_at_once(started: list[ReconcileQueue]) -> None:
    running = 0
    overlap: list[int] = []
    lock = threading.Lock()

    def process(key: Key) -> None:
        nonlocal running
        with lock:
            running += 1
            overlap.append(running)
        time.sleep(0.02)  # a pass that takes a while, so an overlap would show
        with lock:
            running -= 1

    queue = ReconcileQueue(process, workers=4)
    started.append(queue)
    queue.start()
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        queue.request(A)
        time.sleep(0.001)
    _wait(lambda: queue.pending() == 0)
    assert len(overlap) >= 3
    assert max(overlap) == 1


def test_a_failed_pass_is_retried(started: list[ReconcileQueue]) -> None:
    attempts: list[float] = []

    def process(key: Key) -> None:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            raise RuntimeError("API down")

    queue = ReconcileQueue(process, workers=1, max_backoff_seconds=0.2)
    started.append(queue)
    queue.start()
    queue.request(A)
    _wait(lambda: len(attempts) == 2, timeout=10)
    assert attempts[1] - attempts[0] >= 0.15  # backed off, not a hot loop


def test_periodic_resync_requests_every_platform(started: list[ReconcileQueue]) -> None:
    seen: set[Key] = set()
    queue = ReconcileQueue(lambda key: seen.add(key), workers=1)
    started.append(queue)
    queue.start()
    resync = PeriodicResync(queue, lambda: [A, B], interval_seconds=0.05)
    resync.start()
    try:
        _wait(lambda: seen == {A, B})
    finally:
        resync.stop()
