"""Runs every platform's probes on its interval, with jitter and one global concurrency limit.

One asyncio task per platform; each probe holds a slot of a shared semaphore
only while it talks to the network, so hundreds of platforms share a bounded
number of sockets and a slow or dead server delays only its own platform.
Everything is asyncio: nothing blocks the event loop kopf runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from callplatform.probes.health import HealthRegistry
from callplatform.probes.jitsi import HttpProber
from callplatform.probes.result import COMPONENTS, ProbeResult
from callplatform.probes.runner import HARD_DEADLINE_MARGIN_SECONDS, run_targets
from callplatform.probes.targets import ProbeTargets
from callplatform.probes.tls import TlsConfigError, tls_from_environment, warm_context

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 256  # sockets in flight; a dead server holds one for the whole deadline
JITTER_FRACTION = 0.1
MIN_INTERVAL_SECONDS = 1.0

OnChange = Callable[[str, str], Awaitable[None] | None]  # a coroutine function, or a plain function
Record = Callable[[str, str, ProbeResult], None]


@dataclass(slots=True)
class _Platform:
    targets: ProbeTargets
    interval_seconds: float
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    last_progress: float = field(default_factory=time.monotonic)
    rounds: int = 0


class ProbeScheduler:
    def __init__(
        self,
        registry: HealthRegistry,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        on_change: OnChange | None = None,
        record: Record | None = None,
        first_round_spread_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._concurrency = concurrency
        self._on_change = on_change
        self._record = record
        self._first_round_spread = first_round_spread_seconds
        self._clock = clock
        self._platforms: dict[tuple[str, str], _Platform] = {}
        self._semaphore: asyncio.Semaphore | None = None
        self._http: HttpProber | None = None
        self._running = False

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        if self._running:
            return
        self._semaphore = asyncio.Semaphore(self._concurrency)
        self._http = HttpProber(clock=self._clock)
        # Loading a trust store holds the GIL for ~0.1 s: pay it at start-up, not mid-round.
        try:
            await warm_context(tls_from_environment())
        except TlsConfigError as exc:
            # Keep running: probes that need TLS report tls_error until the file is fixed.
            log.error("%s; TLS probes will fail with reason tls_error", exc)
        self._running = True
        for key in self._platforms:
            self._spawn(key)

    async def stop(self) -> None:
        self._running = False
        tasks = [p.task for p in self._platforms.values() if p.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for platform in self._platforms.values():
            platform.task = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def is_alive(self) -> bool:
        """Started, and every platform loop is running and has made progress recently."""
        if not self._running:
            return False
        now = time.monotonic()
        for platform in self._platforms.values():
            if platform.task is None or platform.task.done():
                return False
            if now - platform.last_progress > self._stall_limit(platform):
                return False
        return True

    def _stall_limit(self, platform: _Platform) -> float:
        per_probe = platform.targets.timeout_seconds + HARD_DEADLINE_MARGIN_SECONDS
        return 3 * platform.interval_seconds + 3 * per_probe + self._first_round_spread

    # -- platforms -------------------------------------------------------------------

    def upsert(self, namespace: str, name: str, targets: ProbeTargets, interval_seconds: float) -> None:
        """Add a platform or change what it probes; a change is probed at once."""
        key = (namespace, name)
        interval = max(float(interval_seconds), MIN_INTERVAL_SECONDS)
        platform = self._platforms.get(key)
        if platform is None:
            self._platforms[key] = _Platform(targets, interval)
            if self._running:
                self._spawn(key)
            return
        changed = platform.targets != targets
        platform.interval_seconds = interval
        if changed:
            platform.targets = targets
            for component in self._components_dropped(key, targets):
                self._registry.remove_component(namespace, name, component)
            platform.wake.set()

    def _components_dropped(self, key: tuple[str, str], targets: ProbeTargets) -> list[str]:
        wanted = set(targets.components())
        return [c for c in COMPONENTS if c not in wanted and self._registry.component_health(*key, c)]

    def remove(self, namespace: str, name: str) -> None:
        platform = self._platforms.pop((namespace, name), None)
        if platform is not None and platform.task is not None:
            platform.task.cancel()
        self._registry.remove(namespace, name)

    def platforms(self) -> list[tuple[str, str]]:
        return sorted(self._platforms)

    def platform_count(self) -> int:
        """How many platforms it holds; safe from any thread (one len(), no iteration)."""
        return len(self._platforms)

    def rounds(self, namespace: str, name: str) -> int:
        platform = self._platforms.get((namespace, name))
        return platform.rounds if platform else 0

    # -- the loop --------------------------------------------------------------------

    def _spawn(self, key: tuple[str, str]) -> None:
        platform = self._platforms[key]
        platform.last_progress = time.monotonic()
        platform.task = asyncio.create_task(self._loop(key, platform), name=f"probe {key[0]}/{key[1]}")

    async def _loop(self, key: tuple[str, str], platform: _Platform) -> None:
        # Spread the first rounds so a restart does not probe every platform at once.
        await self._sleep_or_wake(platform, random.uniform(0, self._first_round_spread))
        while self._platforms.get(key) is platform:
            platform.wake.clear()
            platform.last_progress = time.monotonic()
            try:
                await self._round(key, platform)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("probe round of %s/%s failed", *key)
            platform.rounds += 1
            platform.last_progress = time.monotonic()
            interval = platform.interval_seconds
            await self._sleep_or_wake(
                platform, interval * random.uniform(1 - JITTER_FRACTION, 1 + JITTER_FRACTION)
            )

    async def _sleep_or_wake(self, platform: _Platform, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(platform.wake.wait(), seconds)

    async def _round(self, key: tuple[str, str], platform: _Platform) -> None:
        assert self._http is not None and self._semaphore is not None
        targets = platform.targets
        results = await run_targets(targets, self._http, semaphore=self._semaphore)
        if self._platforms.get(key) is not platform:
            return  # removed while probing
        checked_at = self._clock()
        namespace, name = key
        changed = False
        for component in targets.components():
            component_results = [r for r in results if r.component == component]
            changed |= self._registry.update(namespace, name, component, component_results, checked_at)
        if self._record is not None:
            for result in results:
                try:
                    self._record(namespace, name, result)
                except Exception:
                    log.exception("recording a probe result of %s/%s failed", namespace, name)
        if changed and self._on_change is not None:
            try:
                outcome = self._on_change(namespace, name)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                log.exception("health change callback for %s/%s failed", namespace, name)
