"""The one place where the operator's two runtimes meet.

The operator runs on two sides:
- kopf's asyncio event loop: the watches, the probe scheduler, the call-metrics collector and the
  HTTP server;
- the reconcile workers and the periodic resync: threads, because a pass makes blocking API calls
  with the `kubernetes` client (bounded by its request timeout, so a hung API server holds one
  worker, never the loop).

Only this module moves work across. `to_loop` hands a call from a worker to the loop
(`call_soon_threadsafe`): the scheduler's and collector's `upsert`/`remove` must run where their
tasks live; `on_loop_and_wait` does the same and waits until it ran (forgetting a deleted platform
must not race a probe round still recording on the loop). `off_loop` runs a blocking call on a thread and awaits it (`run_in_executor`): stopping
the workers, rendering /metrics. The other way in is the work queue's `request`, which is
thread-safe by itself (a lock), so watch handlers and probe callbacks call it from either side.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

log = logging.getLogger(__name__)

P = ParamSpec("P")
WAIT_SECONDS = 10.0
T = TypeVar("T")


class LoopBridge:
    """Bound to the event loop at start-up (`bind`). Before that, calls run at once on the caller's
    thread: nothing runs on the loop yet (the scheduler and collector are not started, so their
    `upsert` only records the platform)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def to_loop(self, fn: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> None:
        """Run `fn(*args)` on the loop, soon; never waits for it. Dropped once the loop is closed."""
        loop = self._loop
        if loop is None:
            fn(*args, **kwargs)
            return
        try:
            loop.call_soon_threadsafe(functools.partial(fn, *args, **kwargs))
        except RuntimeError:  # the loop is closed: the operator is shutting down
            log.debug("event loop closed: dropped %s", getattr(fn, "__qualname__", fn))

    def on_loop_and_wait(self, fn: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> None:
        """Run `fn(*args)` on the loop and wait until it has run (at most WAIT_SECONDS: a loop that
        does not get to it is shutting down). Everything handed over earlier with `to_loop` runs
        first. Never call it from the loop itself."""
        loop = self._loop
        if loop is None:
            fn(*args, **kwargs)
            return
        done = threading.Event()

        def run() -> None:
            try:
                fn(*args, **kwargs)
            finally:
                done.set()

        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:
            log.debug("event loop closed: dropped %s", getattr(fn, "__qualname__", fn))
            return
        if not done.wait(WAIT_SECONDS):
            log.warning(
                "event loop did not run %s within %.0fs", getattr(fn, "__qualname__", fn), WAIT_SECONDS
            )


async def off_loop(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run the blocking `fn(*args)` on a thread of the loop's default executor and await its result."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))
