"""A coalescing work queue of platforms to reconcile, and the periodic resync that feeds it.

Watch events, Secret changes and the resync all just `request` a platform. A
platform asked for ten times while waiting is reconciled once; a platform is
never reconciled by two workers at the same time; a failed pass is retried with
exponential backoff and full jitter (`retry_delay`).

A resync's requests are *background*: a platform asked for by an event (its Secret changed, its
Deployment drifted) or by its own recheck is picked before every background request, however long
those have waited. Otherwise a resync of 1000 platforms, queued a moment earlier, puts a Secret
change behind 1000 passes (13 s measured with bench/bench_fleet.py's Secret timing, against a 2 s
goal).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)

BACKOFF_BASE_SECONDS = 1.0
# The longest wait between two attempts: a platform failing on a broken cluster is looked at again
# at most this long after the cluster is fixed, so it recovers well within a minute.
BACKOFF_CAP_SECONDS = 30.0
# Never retry at once: a zero draw would make the failing pass a busy loop.
BACKOFF_FLOOR_SECONDS = 0.1


def retry_delay(
    failures: int,
    rng: random.Random,
    *,
    base: float = BACKOFF_BASE_SECONDS,
    cap: float = BACKOFF_CAP_SECONDS,
) -> float:
    """Seconds before attempt `failures + 1`: full jitter (AWS's "exponential backoff and jitter"),
    a uniform draw in (0, min(cap, base * 2**(failures - 1))].

    The jitter spreads many platforms failing on the same fault (a full Service IP range, an API
    server restart) over the window instead of retrying them in lockstep.
    """
    ceiling = min(cap, base * 2.0 ** min(max(failures, 1) - 1, 62))
    return min(ceiling, max(BACKOFF_FLOOR_SECONDS, rng.uniform(0.0, ceiling)))


class ReconcileQueue:
    def __init__(
        self,
        process: Callable[[Key], float | None],
        *,
        workers: int = 2,
        max_backoff_seconds: float = BACKOFF_CAP_SECONDS,
        rng: random.Random | None = None,
    ) -> None:
        """`process(key)` runs one pass; it returns seconds until it wants another look, or None."""
        self._process = process
        self._workers = workers
        self._max_backoff = max_backoff_seconds
        self._rng = rng or random.Random()
        self._due: dict[Key, float] = {}
        self._background: set[Key] = set()  # keys in _due that only a resync asked for
        self._active: set[Key] = set()
        self._active_since: dict[Key, float] = {}
        self._failures: dict[Key, int] = {}
        self._cv = threading.Condition()
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []

    def request(self, key: Key, delay_seconds: float = 0.0, *, background: bool = False) -> None:
        when = time.monotonic() + delay_seconds
        with self._cv:
            current = self._due.get(key)
            if current is None and background:
                self._background.add(key)
            elif not background:
                self._background.discard(key)
            self._due[key] = when if current is None else min(current, when)
            self._cv.notify()

    def request_all(self, keys: Iterable[Key], *, background: bool = False) -> None:
        for key in keys:
            self.request(key, background=background)

    def forget(self, key: Key) -> None:
        with self._cv:
            self._due.pop(key, None)
            self._background.discard(key)
            self._failures.pop(key, None)

    def start(self) -> None:
        for index in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"reconcile-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        with self._cv:
            self._cv.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    def is_alive(self) -> bool:
        return bool(self._threads) and all(thread.is_alive() for thread in self._threads)

    def pending(self) -> int:
        with self._cv:
            return len(self._due) + len(self._active)

    def tracked(self) -> int:
        """Platforms the queue holds anything for: waiting, running, or counting failures."""
        with self._cv:
            return len(self._due.keys() | self._active | self._failures.keys())

    def oldest_wait_seconds(self) -> float:
        """How long the longest-waiting platform has waited: a pass running since, or a request due
        since and not picked up (a platform waiting for its own running pass counts as that pass).
        Backoffs and rechecks not yet due do not count: they wait on purpose."""
        now = time.monotonic()
        with self._cv:
            running = [now - since for since in self._active_since.values()]
            due = [now - when for key, when in self._due.items() if when <= now and key not in self._active]
        return max(running + due, default=0.0)

    def _next(self) -> Key | None:
        with self._cv:
            while not self._stopped.is_set():
                now = time.monotonic()
                ready = [(when, key) for key, when in self._due.items() if key not in self._active]
                due = [item for item in ready if item[0] <= now]
                if due:
                    urgent = [item for item in due if item[1] not in self._background]
                    _, key = min(urgent or due)
                    del self._due[key]
                    self._background.discard(key)
                    self._active.add(key)
                    self._active_since[key] = now
                    return key
                wait = min((when - now for when, _ in ready), default=1.0)
                self._cv.wait(timeout=max(0.01, min(wait, 1.0)))
        return None

    def _work(self) -> None:
        while (key := self._next()) is not None:
            again: float | None = None
            try:
                again = self._process(key)
                self._failures.pop(key, None)
            except Exception as exc:
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                with self._cv:  # workers share the RNG
                    again = retry_delay(failures, self._rng, cap=self._max_backoff)
                # The exception's text only: never a traceback with local variables in it.
                log.warning("reconcile %s/%s failed (%s); retrying in %.1fs", *key, exc, again)
            finally:
                with self._cv:
                    self._active.discard(key)
                    self._active_since.pop(key, None)
                    self._cv.notify_all()
            if again is not None:
                self.request(key, again)


class PeriodicResync:
    """Every `interval_seconds`, request every platform `list_keys` returns."""

    def __init__(
        self, queue: ReconcileQueue, list_keys: Callable[[], list[Key]], interval_seconds: float
    ) -> None:
        self._queue = queue
        self._list_keys = list_keys
        self._interval = interval_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="resync", daemon=True)
        self.last_success_monotonic = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                keys = self._list_keys()
                self._queue.request_all(keys, background=True)
                self.last_success_monotonic = time.monotonic()
                log.info("resync: queued %d platform(s)", len(keys))
            except Exception as exc:
                log.warning("resync could not list platforms: %s", exc)
