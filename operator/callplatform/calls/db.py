"""Call-lifecycle metrics read from each platform's own database, on a background loop.

The database belongs to the platform's app, usually in production, so every read
is polite: a pool of at most `max_connections` per platform that holds no
connection between collections, read-only transactions, a statement timeout,
`application_name=callplatform-operator`, and queries only on this loop, never
during a scrape. A database that is down or slow
sets `callplatform_calls_database_up` to 0 and leaves the call gauges at their
last values, dated by the last-success timestamp. Counters use high-water marks
(see calls.watermark), so calls ended during an outage are counted once after it.

The database URL is a secret. It is never logged, never put in an exception or a
metric; failures are reported as a bounded reason (see `failure_reason`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
import psycopg_pool
from psycopg import errors, sql

from callplatform import metrics
from callplatform.calls.rates import RateQuery, build_rate_queries
from callplatform.calls.sql import CallLogQueries, InvalidDatabaseURL, build_queries, database_target
from callplatform.calls.watermark import EventWatermark
from callplatform.model import CallLogSpec

log = logging.getLogger(__name__)

APPLICATION_NAME = "callplatform-operator"
CALL_METRICS = (
    metrics.CALLS_ACTIVE,
    metrics.CALL_PARTICIPANTS_ACTIVE,
    metrics.CALLS_STARTED,
    metrics.CALLS_ENDED,
    metrics.CALL_DURATION,
    metrics.CALLS_DATABASE_UP,
    metrics.CALLS_DATABASE_LAST_SUCCESS,
    metrics.CALLS_COLLECTION_DURATION,
    metrics.CALLS_DATABASE_ERRORS,
    metrics.CALL_EVENTS_PER_MINUTE,
)


class _WithheldDetails(logging.Filter):
    """psycopg's and psycopg_pool's log lines carry libpq messages and connection reprs that name
    the database host and user; keep only that something happened, at which level."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = "%s: %s event (details withheld: they may name the database host or user)"
        record.args = (record.name, record.levelname.lower())
        record.exc_info = None
        record.exc_text = None
        return True


for _logger_name in ("psycopg", "psycopg.pool", "psycopg_pool.sched", "psycopg_pool.sched_async"):
    logging.getLogger(_logger_name).addFilter(_WithheldDetails())


def failure_reason(exc: BaseException) -> str:
    """A bounded label for why a collection failed; never the exception's text."""
    if isinstance(exc, TimeoutError | errors.QueryCanceled):
        return "timeout"
    if isinstance(exc, InvalidDatabaseURL):
        return "invalid_url"
    if isinstance(exc, errors.UndefinedTable):
        return "undefined_table"
    if isinstance(exc, errors.UndefinedColumn):
        return "undefined_column"
    if isinstance(exc, errors.InsufficientPrivilege):
        return "permission_denied"
    if isinstance(exc, psycopg.OperationalError):  # connect failures, PoolTimeout, dropped connections
        return "connection"
    if isinstance(exc, psycopg.Error):
        return "query"
    return "internal"


@dataclass(frozen=True, slots=True)
class CollectorSettings:
    interval_seconds: float = 30.0
    statement_timeout_seconds: float = 5.0
    connect_timeout_seconds: float = 5.0
    max_connections: int = 2
    page_size: int = 5000
    max_pages_per_cycle: int = 20
    grace: timedelta = timedelta(minutes=10)

    @property
    def cycle_timeout_seconds(self) -> float:
        """A bound on a whole collection, in case the server never answers at all."""
        statements = 8 + 2 * self.max_pages_per_cycle  # 4 fixed, up to 4 rates, the pages
        return self.connect_timeout_seconds + statements * self.statement_timeout_seconds


@dataclass(eq=False)
class _Platform:
    namespace: str
    name: str
    database_url: str = field(repr=False)
    call_log: CallLogSpec
    queries: CallLogQueries
    rate_queries: tuple[RateQuery, ...]
    started: EventWatermark
    ended: EventWatermark
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pool: psycopg_pool.AsyncConnectionPool | None = None
    search_path: str = ""
    task: asyncio.Task[None] | None = None
    last_reason: str = ""

    def same_source(self, database_url: str, call_log: CallLogSpec) -> bool:
        return self.database_url == database_url and self.call_log == call_log


@dataclass(frozen=True, slots=True)
class _Snapshot:
    active_calls: int
    active_participants: int | None
    started_rows: list[Sequence[Any]]
    started_complete: bool
    ended_rows: list[Sequence[Any]]
    ended_complete: bool
    newest_started: Any = None
    newest_ended: Any = None
    rates: tuple[tuple[str, str, int], ...] = ()  # (event, scope, events in the last minute)


class CallMetricsCollector:
    """One background loop per platform; `upsert`/`remove` as platforms come and go."""

    def __init__(self, interval_seconds: float = 30.0, *, settings: CollectorSettings | None = None) -> None:
        self._settings = settings or CollectorSettings(interval_seconds=interval_seconds)
        self._platforms: dict[tuple[str, str], _Platform] = {}
        self._running = False
        self._retired: set[asyncio.Task[None]] = set()

    # --- lifecycle ---------------------------------------------------------
    async def start(self) -> None:
        self._running = True
        for entry in self._platforms.values():
            self._launch(entry)

    async def stop(self) -> None:
        self._running = False
        entries = list(self._platforms.values())
        for entry in entries:
            await self._shut(entry)
        if self._retired:
            await asyncio.gather(*self._retired, return_exceptions=True)

    def is_alive(self) -> bool:
        """True while started and every platform loop is still running."""
        return self._running and all(
            entry.task is not None and not entry.task.done() for entry in self._platforms.values()
        )

    # --- platforms ---------------------------------------------------------
    def upsert(self, namespace: str, platform: str, database_url: str, call_log: CallLogSpec) -> None:
        """Watch a platform's database; a changed URL or layout starts counting afresh."""
        key = (namespace, platform)
        current = self._platforms.get(key)
        if current is not None:
            if current.same_source(database_url, call_log):
                return
            self._retire(current)
        entry = _Platform(
            namespace=namespace,
            name=platform,
            database_url=database_url,
            call_log=call_log,
            queries=build_queries(call_log),
            rate_queries=build_rate_queries(call_log),
            started=EventWatermark(grace=self._settings.grace),
            ended=EventWatermark(grace=self._settings.grace),
        )
        self._platforms[key] = entry
        if self._running:
            self._launch(entry)

    def remove(self, namespace: str, platform: str) -> None:
        """Stop watching; the platform's call series disappear from /metrics."""
        entry = self._platforms.pop((namespace, platform), None)
        if entry is not None:
            self._retire(entry)
        selector = {"namespace": namespace, "platform": platform}
        for metric in CALL_METRICS:
            metric.remove_by_labels(selector)

    def platforms(self) -> list[tuple[str, str]]:
        return sorted(self._platforms)

    def platform_count(self) -> int:
        """How many platforms it holds; safe from any thread (one len(), no iteration)."""
        return len(self._platforms)

    async def collect_once(self, namespace: str, platform: str) -> bool:
        """Collect now; True on success. Never raises for database trouble."""
        entry = self._platforms.get((namespace, platform))
        if entry is None:
            raise KeyError(f"platform {namespace}/{platform} is not registered")
        return await self._collect(entry)

    # --- internals ---------------------------------------------------------
    def _launch(self, entry: _Platform) -> None:
        if entry.task is None or entry.task.done():
            entry.task = asyncio.get_running_loop().create_task(
                self._loop(entry), name=f"call-metrics {entry.namespace}/{entry.name}"
            )

    def _retire(self, entry: _Platform) -> None:
        """Shut an entry down in the background (upsert and remove are synchronous)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: nothing was ever started or opened
        task = loop.create_task(self._shut(entry))
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    async def _shut(self, entry: _Platform) -> None:
        if entry.task is not None:
            entry.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await entry.task
        async with entry.lock:
            if entry.pool is not None:
                await entry.pool.close()
                entry.pool = None

    async def _loop(self, entry: _Platform) -> None:
        interval = self._settings.interval_seconds
        # Spread platforms over the interval so 500 of them do not query at once.
        await asyncio.sleep(random.uniform(0, interval / 10))
        while True:
            await self._collect(entry)
            await asyncio.sleep(interval * random.uniform(0.9, 1.1))

    async def _collect(self, entry: _Platform) -> bool:
        labels = (entry.namespace, entry.name)
        began = time.monotonic()
        async with entry.lock:
            # A cancelled collection (platform removed or replaced) records nothing,
            # so it cannot resurrect series that remove() just deleted.
            try:
                async with asyncio.timeout(self._settings.cycle_timeout_seconds):
                    snapshot = await self._read(entry)
                # Only after the whole read succeeded: a failure part-way counts nothing.
                self._apply(entry, snapshot)
            except Exception as exc:  # the loop must outlive anything a foreign database does
                metrics.CALLS_COLLECTION_DURATION.labels(*labels).set(time.monotonic() - began)
                self._record_failure(entry, failure_reason(exc))
                return False
            metrics.CALLS_COLLECTION_DURATION.labels(*labels).set(time.monotonic() - began)
        return True

    def _record_failure(self, entry: _Platform, reason: str) -> None:
        labels = (entry.namespace, entry.name)
        metrics.CALLS_DATABASE_UP.labels(*labels).set(0)
        metrics.CALLS_DATABASE_ERRORS.labels(*labels, reason).inc()
        level = logging.DEBUG if reason == entry.last_reason else logging.WARNING
        log.log(level, "call metrics for %s/%s: database unavailable (%s)", *labels, reason)
        entry.last_reason = reason

    def _apply(self, entry: _Platform, snapshot: _Snapshot) -> None:
        labels = (entry.namespace, entry.name)
        if not entry.started.baselined:
            entry.started.set_baseline(snapshot.newest_started)
            entry.ended.set_baseline(snapshot.newest_ended)
        started = entry.started.advance(snapshot.started_rows, snapshot.started_complete)
        ended = entry.ended.advance(snapshot.ended_rows, snapshot.ended_complete)
        metrics.CALLS_ACTIVE.labels(*labels).set(snapshot.active_calls)
        if snapshot.active_participants is not None:
            metrics.CALL_PARTICIPANTS_ACTIVE.labels(*labels).set(snapshot.active_participants)
        metrics.CALLS_STARTED.labels(*labels).inc(len(started))
        metrics.CALLS_ENDED.labels(*labels).inc(len(ended))
        histogram = metrics.CALL_DURATION.labels(*labels)
        for row in ended:
            if row[2] is not None:
                histogram.observe(max(float(row[2]), 0.0))
        for event, scope, count in snapshot.rates:
            metrics.CALL_EVENTS_PER_MINUTE.labels(*labels, event, scope).set(count)
        metrics.CALLS_DATABASE_UP.labels(*labels).set(1)
        metrics.CALLS_DATABASE_LAST_SUCCESS.labels(*labels).set_to_current_time()
        if entry.last_reason:
            log.info("call metrics for %s/%s: database reachable again", *labels)
            entry.last_reason = ""

    async def _pool(self, entry: _Platform) -> psycopg_pool.AsyncConnectionPool:
        if entry.pool is None:
            target = database_target(entry.database_url)
            settings = self._settings
            pool = psycopg_pool.AsyncConnectionPool(
                target.conninfo,
                # No connection held between collections: 500 platforms on one shared
                # cluster would otherwise pin 500 backends (the default max_connections is 100).
                min_size=0,
                max_idle=max(5.0, settings.interval_seconds / 2),
                max_size=settings.max_connections,
                open=False,
                timeout=settings.connect_timeout_seconds,
                kwargs={
                    "application_name": APPLICATION_NAME,
                    "connect_timeout": max(1, round(settings.connect_timeout_seconds)),
                    "prepare_threshold": None,  # safe behind PgBouncer in transaction mode
                },
                configure=_configure_connection,
                check=psycopg_pool.AsyncConnectionPool.check_connection,
                name=f"call-metrics-{entry.namespace}-{entry.name}",
            )
            await pool.open(wait=False)
            entry.pool = pool
            entry.search_path = target.search_path
        return entry.pool

    async def _read(self, entry: _Platform) -> _Snapshot:
        pool = await self._pool(entry)
        queries = entry.queries
        timeout_ms = f"{round(self._settings.statement_timeout_seconds * 1000)}ms"
        async with pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.execute("SELECT set_config('statement_timeout', %s, true)", [timeout_ms])
            # Prisma stores UTC in `timestamp without time zone`; compare those with now() in UTC.
            await cur.execute("SELECT set_config('TimeZone', 'UTC', true)")
            if entry.search_path:
                await cur.execute("SELECT set_config('search_path', %s, true)", [entry.search_path])
            newest_started = newest_ended = None
            if not entry.started.baselined:
                newest_started = await _scalar(cur, queries.latest_started)
                newest_ended = await _scalar(cur, queries.latest_ended)
                baseline_started = EventWatermark(grace=entry.started.grace)
                baseline_started.set_baseline(newest_started)
                baseline_ended = EventWatermark(grace=entry.ended.grace)
                baseline_ended.set_baseline(newest_ended)
            else:
                baseline_started, baseline_ended = entry.started, entry.ended
            active_calls = int(await _scalar(cur, queries.active_calls) or 0)
            participants = (
                None
                if queries.active_participants is None
                else int(await _scalar(cur, queries.active_participants) or 0)
            )
            started_rows, started_complete = await self._pages(
                cur, baseline_started, queries.started_page, queries.started_page_after
            )
            ended_rows, ended_complete = await self._pages(
                cur, baseline_ended, queries.ended_page, queries.ended_page_after
            )
            rates = []
            for rate in entry.rate_queries:
                rates.append((rate.event, rate.scope, int(await _scalar(cur, rate.statement) or 0)))
        return _Snapshot(
            active_calls=active_calls,
            active_participants=participants,
            started_rows=started_rows,
            started_complete=started_complete,
            ended_rows=ended_rows,
            ended_complete=ended_complete,
            newest_started=newest_started,
            newest_ended=newest_ended,
            rates=tuple(rates),
        )

    async def _pages(
        self,
        cur: psycopg.AsyncCursor[Any],
        watermark: EventWatermark,
        first: sql.Composed,
        after: sql.Composed,
    ) -> tuple[list[Sequence[Any]], bool]:
        """Rows in the watermark's window, in (time, id) order, up to the per-cycle page limit."""
        window = watermark.next_window()
        limit = self._settings.page_size
        rows: list[Sequence[Any]] = []
        resume = window.after
        for _ in range(self._settings.max_pages_per_cycle):
            params: dict[str, Any] = {"since": window.since, "limit": limit}
            if resume is not None:
                params.update(after_at=resume[0], after_id=resume[1])
            await cur.execute(first if resume is None else after, params)
            page = await cur.fetchall()
            rows.extend(page)
            if len(page) < limit:
                return rows, True
            resume = (page[-1][1], page[-1][0])
        return rows, False


async def _configure_connection(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.set_read_only(True)


async def _scalar(cur: psycopg.AsyncCursor[Any], query: sql.Composed) -> Any:
    await cur.execute(query)
    row = await cur.fetchone()
    return None if row is None else row[0]
