"""The coalescing work queue: one pass per burst, never two at once for a platform, retries."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from callplatform.workqueue import (
    BACKOFF_CAP_SECONDS,
    BACKOFF_FLOOR_SECONDS,
    Key,
    PeriodicResync,
    ReconcileQueue,
    retry_delay,
)

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


def _held_worker(started: list[ReconcileQueue]) -> tuple[ReconcileQueue, threading.Event, list[Key]]:
    """A one-worker queue busy with B until the gate is set; the keys it passed, in order."""
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
    return queue, gate, passes


def test_requests_while_waiting_coalesce(started: list[ReconcileQueue]) -> None:
    queue, gate, passes = _held_worker(started)
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

    queue = ReconcileQueue(process, workers=1, max_backoff_seconds=0.2, rng=random.Random(7))
    started.append(queue)
    queue.start()
    queue.request(A)
    _wait(lambda: len(attempts) == 2, timeout=10)
    expected = retry_delay(1, random.Random(7), cap=0.2)  # the same draw the queue made
    assert attempts[1] - attempts[0] >= expected - 0.01  # backed off, not a hot loop
    assert expected >= BACKOFF_FLOOR_SECONDS


def test_retry_delay_grows_exponentially_and_stays_within_its_bounds() -> None:
    rng = random.Random(2026)
    for failures in range(1, 80):
        ceiling = min(BACKOFF_CAP_SECONDS, 2.0 ** (failures - 1))
        delays = [retry_delay(failures, rng) for _ in range(200)]
        assert all(BACKOFF_FLOOR_SECONDS <= d <= ceiling for d in delays), failures
        # Full jitter: the draws cover the window, not only its top (a fixed exponential would).
        if ceiling >= 1:
            assert min(delays) < 0.25 * ceiling and max(delays) > 0.75 * ceiling, failures
    # So a cluster fixed during a long outage is looked at again within the cap: under a minute.
    assert BACKOFF_CAP_SECONDS <= 30
    assert max(retry_delay(1000, rng) for _ in range(1000)) <= BACKOFF_CAP_SECONDS


def test_retry_delay_spreads_platforms_failing_together() -> None:
    """300 platforms failing on the same fault for the 6th time do not retry in lockstep."""
    rng = random.Random(11)
    delays = sorted(retry_delay(6, rng) for _ in range(300))
    assert len({round(d, 2) for d in delays}) > 250
    buckets = [sum(1 for d in delays if k * 8 <= d < (k + 1) * 8) for k in range(4)]  # 0-32 s in 8 s bins
    assert all(40 <= count <= 110 for count in buckets), buckets  # about 75 each: uniform over (0, 30]


def test_retry_delay_is_a_pure_function_of_the_rng() -> None:
    first = [retry_delay(n, random.Random(5)) for n in range(1, 10)]
    assert first == [retry_delay(n, random.Random(5)) for n in range(1, 10)]


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


def test_a_requested_platform_goes_before_a_resync_queued_earlier(started: list[ReconcileQueue]) -> None:
    queue, gate, passes = _held_worker(started)
    resynced = [("ns", f"r{index}") for index in range(50)]
    queue.request_all([*resynced, A], background=True)
    queue.request(A)  # an event for a platform the resync also queued: no longer background
    queue.request(("ns", "event"))
    queue.request(resynced[0], background=True)  # a second resync request changes nothing
    gate.set()
    _wait(lambda: queue.pending() == 0)
    assert passes[:3] == [B, A, ("ns", "event")]
    assert sorted(passes[3:]) == sorted(resynced)
    assert len(passes) == 3 + len(resynced)
