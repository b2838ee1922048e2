"""Measures how long the event loop was blocked: the worst oversleep of a 10 ms ticker."""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import TracebackType

TICK_SECONDS = 0.01


class LoopLag:
    def __init__(self) -> None:
        self.max_seconds = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(TICK_SECONDS)
            self.max_seconds = max(self.max_seconds, time.monotonic() - before - TICK_SECONDS)

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
