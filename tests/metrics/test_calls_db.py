"""The call-lifecycle collector against a real PostgreSQL: metric values equal SQL ground truth."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import psycopg
import pytest
from callmetrics_db import SPEC, CallDatabase, create_call_database
from callmetrics_pg import running_postgres
from psycopg import sql
from scrape_parse import platform_series, scrape, value

from callplatform import metrics
from callplatform.calls.db import APPLICATION_NAME, CallMetricsCollector, CollectorSettings
from callplatform.calls.sql import build_queries
from callplatform.model import CallLogSpec

pytestmark = pytest.mark.postgres

FAST = CollectorSettings(interval_seconds=0.2, statement_timeout_seconds=2.0, connect_timeout_seconds=1.0)


def new_platform() -> tuple[str, str]:
    return "ns-" + uuid.uuid4().hex[:8], "cp-" + uuid.uuid4().hex[:8]


def add_calls(db: CallDatabase, prefix: str, count: int, *, ended: bool, ago: str = "1 minute") -> None:
    """`count` calls that started `ago` plus 10 min; ended ones have durations 17*n seconds."""
    db.execute(
        """
        INSERT INTO "callLog" (id, room, started_at, ended_at, duration_seconds, participant_count)
        SELECT %(prefix)s || lpad(n::text, 6, '0'), 'r', now()::timestamp(3) - %(ago)s::interval - interval '10 minutes',
               CASE WHEN %(ended)s THEN now()::timestamp(3) - %(ago)s::interval END,
               CASE WHEN %(ended)s THEN 17 * n END, 3
        FROM generate_series(1, %(count)s) AS n
        """,
        {"prefix": prefix, "ago": ago, "ended": ended, "count": count},
    )


def bucket_truth(db: CallDatabase, id_prefix: str) -> dict[str, float]:
    """Cumulative bucket counts of the calls with this id prefix, computed by PostgreSQL."""
    truth: dict[str, float] = {}
    for bound in metrics.CALL_DURATION_BUCKETS:
        truth[str(bound)] = float(
            db.scalar(  # type: ignore[arg-type]
                'SELECT count(*) FROM "callLog" WHERE id LIKE %s AND ended_at IS NOT NULL AND duration_seconds <= %s',
                [id_prefix + "%", bound],
            )
        )
    return truth


def histogram(namespace: str, platform: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for bound in metrics.CALL_DURATION_BUCKETS:
        sample = value(
            "callplatform_call_duration_seconds_bucket", namespace=namespace, platform=platform, le=str(bound)
        )
        found[str(bound)] = sample if sample is not None else -1.0
    return found


def labels(namespace: str, platform: str) -> dict[str, str]:
    return {"namespace": namespace, "platform": platform}


@contextlib.asynccontextmanager
async def watched(
    url: str, spec: CallLogSpec, settings: CollectorSettings = FAST
) -> AsyncIterator[tuple[CallMetricsCollector, str, str]]:
    """A collector watching one new platform; stopped and its series removed afterwards."""
    ns, name = new_platform()
    collector = CallMetricsCollector(settings=settings)
    collector.upsert(ns, name, url, spec)
    try:
        yield collector, ns, name
    finally:
        await collector.stop()
        collector.remove(ns, name)


async def test_gauges_and_counters_equal_sql_ground_truth(call_db: CallDatabase) -> None:
    async with watched(call_db.reader_url, SPEC) as (collector, ns, name):
        assert await collector.collect_once(ns, name)
        active_truth = call_db.scalar('SELECT count(*) FROM "callLog" WHERE ended_at IS NULL')
        participants_truth = call_db.scalar(
            'SELECT count(*) FROM "callParticipant" p JOIN "callLog" c ON p.call_id = c.id'
            " WHERE c.ended_at IS NULL AND p.left_at IS NULL"
        )
        assert value("callplatform_calls_active", **labels(ns, name)) == active_truth == 40
        assert value("callplatform_call_participants_active", **labels(ns, name)) == participants_truth
        # History before the operator started watching is not counted.
        assert value("callplatform_calls_started_total", **labels(ns, name)) == 0
        assert value("callplatform_calls_ended_total", **labels(ns, name)) == 0
        assert value("callplatform_calls_database_up", **labels(ns, name)) == 1

        add_calls(call_db, "done-", 300, ended=True)
        add_calls(call_db, "live-", 25, ended=False)
        assert await collector.collect_once(ns, name)
        assert value("callplatform_calls_started_total", **labels(ns, name)) == 325
        assert value("callplatform_calls_ended_total", **labels(ns, name)) == 300
        assert value("callplatform_calls_active", **labels(ns, name)) == 65
        assert histogram(ns, name) == bucket_truth(call_db, "done-")
        assert value("callplatform_call_duration_seconds_count", **labels(ns, name)) == 300
        assert value("callplatform_call_duration_seconds_sum", **labels(ns, name)) == call_db.scalar(
            """SELECT sum(duration_seconds)::float8 FROM "callLog" WHERE id LIKE 'done-%'"""
        )

        # A row that becomes visible late, with an end time inside the grace window, counts once.
        add_calls(call_db, "late-", 1, ended=True, ago="5 minutes")
        # The live calls end: each is counted as ended now, but was already counted as started.
        call_db.execute(
            """UPDATE "callLog" SET ended_at = now()::timestamp(3), duration_seconds = 4000 WHERE id LIKE 'live-%'"""
        )
        for _ in range(3):
            assert await collector.collect_once(ns, name)
        assert value("callplatform_calls_started_total", **labels(ns, name)) == 326
        assert value("callplatform_calls_ended_total", **labels(ns, name)) == 326
        assert value("callplatform_call_duration_seconds_count", **labels(ns, name)) == 326
        assert value("callplatform_calls_active", **labels(ns, name)) == 40
    assert platform_series(ns, name) == []


async def test_paging_catches_up_across_cycles_without_double_counting(call_db: CallDatabase) -> None:
    settings = CollectorSettings(page_size=50, max_pages_per_cycle=2, statement_timeout_seconds=2.0)
    async with watched(call_db.reader_url, SPEC, settings) as (collector, ns, name):
        assert await collector.collect_once(ns, name)
        # 700 calls sharing ONE end timestamp: paging must order by (ended_at, id), not ended_at alone.
        add_calls(call_db, "burst-", 700, ended=True)
        cycles = 0
        while value("callplatform_calls_ended_total", **labels(ns, name)) != 700:
            assert await collector.collect_once(ns, name)
            cycles += 1
            assert cycles <= 10, value("callplatform_calls_ended_total", **labels(ns, name))
        assert cycles == 7  # 100 rows per cycle
        assert await collector.collect_once(ns, name)
        assert value("callplatform_calls_ended_total", **labels(ns, name)) == 700
        assert value("callplatform_calls_started_total", **labels(ns, name)) == 700
        assert histogram(ns, name) == bucket_truth(call_db, "burst-")


async def test_count_column_and_computed_duration(call_db: CallDatabase) -> None:
    """participantsColumn instead of a table; no duration column: ended_at - started_at."""
    spec = CallLogSpec(participants_column="participant_count", duration_column="")
    async with watched(call_db.reader_url, spec) as (collector, ns, name):
        assert await collector.collect_once(ns, name)
        assert value("callplatform_call_participants_active", **labels(ns, name)) == call_db.scalar(
            'SELECT sum(participant_count)::int FROM "callLog" WHERE ended_at IS NULL'
        )
        add_calls(call_db, "cmp-", 10, ended=True)  # started 10 minutes before they ended
        assert await collector.collect_once(ns, name)
        assert value("callplatform_call_duration_seconds_sum", **labels(ns, name)) == 10 * 600.0


async def test_prisma_url_parameters_and_schema(postgres_server) -> None:  # type: ignore[no-untyped-def]
    db = create_call_database(postgres_server, calls=100, active=7, indexes=False)
    db.execute(
        'CREATE SCHEMA app; ALTER TABLE "callLog" SET SCHEMA app; ALTER TABLE "callParticipant" SET SCHEMA app'
    )
    db.execute(
        "GRANT USAGE ON SCHEMA app TO calls_reader; GRANT SELECT ON ALL TABLES IN SCHEMA app TO calls_reader"
    )
    ns, name = new_platform()
    collector = CallMetricsCollector(settings=FAST)
    collector.upsert(
        ns, name, db.reader_url + "?schema=app&connection_limit=5&pgbouncer=true&sslmode=disable", SPEC
    )
    try:
        assert await collector.collect_once(ns, name)
        assert value("callplatform_calls_active", **labels(ns, name)) == 7
    finally:
        await collector.stop()


async def test_reads_are_read_only_named_and_time_limited(call_db: CallDatabase) -> None:
    ns, name = new_platform()
    collector = CallMetricsCollector(settings=FAST)
    collector.upsert(ns, name, call_db.reader_url, SPEC)
    try:
        assert await collector.collect_once(ns, name)
        names = call_db.execute(
            "SELECT DISTINCT application_name FROM pg_stat_activity WHERE usename = 'calls_reader'"
        )
        assert names == [(APPLICATION_NAME,)]
        pool = collector._platforms[(ns, name)].pool
        assert pool is not None
        async with pool.connection() as conn:
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                await conn.execute("""DELETE FROM "callLog" """)
    finally:
        await collector.stop()
    assert call_db.scalar('SELECT count(*) FROM "callLog"') == 2000

    # A call log that takes longer than the statement timeout: database_up 0, reason timeout, quickly.
    call_db.execute('CREATE VIEW "slowLog" AS SELECT c.* FROM "callLog" c, pg_sleep(5) AS s')
    call_db.execute('GRANT SELECT ON "slowLog" TO calls_reader')
    slow = CallMetricsCollector(settings=CollectorSettings(statement_timeout_seconds=0.3))
    slow.upsert(ns, name, call_db.reader_url, CallLogSpec(table="slowLog"))
    began = time.monotonic()
    try:
        assert not await slow.collect_once(ns, name)
    finally:
        await slow.stop()
    assert time.monotonic() - began < 3
    assert value("callplatform_calls_database_up", **labels(ns, name)) == 0
    assert value("callplatform_calls_database_errors_total", reason="timeout", **labels(ns, name)) == 1


async def test_table_names_are_identifiers_not_sql(call_db: CallDatabase) -> None:
    ns, name = new_platform()
    collector = CallMetricsCollector(settings=FAST)
    evil = CallLogSpec(table='callLog" WHERE false; DROP TABLE "callParticipant"; --')
    collector.upsert(ns, name, call_db.admin_url, evil)
    try:
        assert not await collector.collect_once(ns, name)
    finally:
        await collector.stop()
    assert (
        value("callplatform_calls_database_errors_total", reason="undefined_table", **labels(ns, name)) == 1
    )
    assert call_db.scalar("""SELECT to_regclass('"callParticipant"') IS NOT NULL""") is True


async def test_database_url_never_leaks(call_db: CallDatabase, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ns, name = new_platform()
    wrong_password = "Wr0ng-" + uuid.uuid4().hex
    bad_url = call_db.server.url(call_db.dbname, user="calls_reader", password=wrong_password)
    unreachable_url = f"postgresql://ghost:{wrong_password}@127.0.0.1:1/nowhere"
    invalid_url = f"mysql://ghost:{wrong_password}@db.internal/nowhere"
    collector = CallMetricsCollector(settings=FAST)
    try:
        for url, reason in (
            (bad_url, "connection"),
            (unreachable_url, "connection"),
            (invalid_url, "invalid_url"),
        ):
            collector.upsert(ns, name, url, SPEC)
            assert not await collector.collect_once(ns, name)
            assert (
                value("callplatform_calls_database_errors_total", reason=reason, **labels(ns, name))
                is not None
            )
            await asyncio.sleep(0)  # let the retired pool close
        text = scrape()
        logged = "\n".join(
            record.getMessage() + (record.exc_text or "") + str(record.exc_info or "")
            for record in caplog.records
        )
        shown = repr(collector) + repr(collector._platforms)
        assert caplog.records, "the failures should have been logged"
        for secret in (
            wrong_password,
            "ghost",
            "calls_reader",
            "db.internal",
            call_db.dbname,
            str(call_db.server.port),
        ):
            assert secret not in text
            assert secret not in logged
            assert secret not in shown
    finally:
        await collector.stop()
        collector.remove(ns, name)


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_outage_flips_database_up_and_loses_or_repeats_nothing(
    call_db: CallDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    """Stop PostgreSQL under a running collector; other platforms carry on; after restart every call counts once."""
    caplog.set_level(logging.DEBUG)
    with running_postgres() as own_server:
        db = create_call_database(own_server, calls=500, active=10)
        ns, name = new_platform()
        other_ns, other = new_platform()
        collector = CallMetricsCollector(settings=FAST)
        collector.upsert(ns, name, db.reader_url, SPEC)
        collector.upsert(other_ns, other, call_db.reader_url, SPEC)
        await collector.start()
        try:

            def ended() -> float | None:
                return value("callplatform_calls_ended_total", **labels(ns, name))

            def up() -> float | None:
                return value("callplatform_calls_database_up", **labels(ns, name))

            await wait_for(lambda: up() == 1, "first collection")
            add_calls(db, "before-", 120, ended=True)
            await wait_for(lambda: ended() == 120, "calls ended before the outage")
            # Calls that end after the last successful read but before the server goes away.
            add_calls(db, "edge-", 30, ended=True)
            own_server.stop()
            await wait_for(lambda: up() == 0, "database_up to drop")
            down_since = value(
                "callplatform_calls_database_last_success_timestamp_seconds", **labels(ns, name)
            )
            assert collector.is_alive()
            assert value("callplatform_calls_active", **labels(ns, name)) is not None  # stale, still exported
            other_success = value(
                "callplatform_calls_database_last_success_timestamp_seconds", **labels(other_ns, other)
            )
            await wait_for(
                lambda: (
                    (
                        value(
                            "callplatform_calls_database_last_success_timestamp_seconds",
                            **labels(other_ns, other),
                        )
                        or 0
                    )
                    > (other_success or 0)
                ),
                "the other platform to keep collecting",
            )
            assert value("callplatform_calls_database_up", **labels(other_ns, other)) == 1

            own_server.start()
            add_calls(db, "after-", 45, ended=True, ago="2 minutes")
            await wait_for(lambda: up() == 1, "database_up to recover")
            await wait_for(lambda: ended() == 195, "every call ended around the outage")
            assert (
                value("callplatform_calls_database_last_success_timestamp_seconds", **labels(ns, name)) or 0
            ) > (down_since or 0)
            # Several more cycles change nothing.
            seen = (
                value("callplatform_calls_database_last_success_timestamp_seconds", **labels(ns, name)) or 0
            )
            await wait_for(
                lambda: (
                    (
                        value(
                            "callplatform_calls_database_last_success_timestamp_seconds", **labels(ns, name)
                        )
                        or 0
                    )
                    > seen + 0.5
                ),
                "more cycles",
            )
            assert ended() == 195
            assert value("callplatform_calls_started_total", **labels(ns, name)) == 195
            truth = {
                k: a + b + c
                for (k, a), b, c in zip(
                    bucket_truth(db, "before-").items(),
                    bucket_truth(db, "edge-").values(),
                    bucket_truth(db, "after-").values(),
                    strict=True,
                )
            }
            assert histogram(ns, name) == truth
            assert collector.is_alive()
        finally:
            await collector.stop()
            collector.remove(ns, name)
            collector.remove(other_ns, other)
        assert not collector.is_alive()
    # The outage is a warning with a reason, not an error or a traceback.
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "callplatform.calls.db"
    ]
    assert warnings, "the outage should be logged"
    assert set(warnings) == {f"call metrics for {ns}/{name}: database unavailable (connection)"}


def test_grace_default_covers_late_rows() -> None:
    assert CollectorSettings().grace >= timedelta(minutes=5)


def test_planner_uses_the_recommended_indexes(call_db: CallDatabase) -> None:
    """With sequential scans priced out, every query must still find an index: proof the WHERE
    clauses imply the partial-index predicates (the planner ignores a partial index otherwise)."""
    queries = build_queries(SPEC)
    params = {"since": "2026-01-01", "limit": 100, "after_at": "2026-01-01", "after_id": "x"}
    with psycopg.connect(call_db.admin_url) as conn:
        conn.execute("SET enable_seqscan = off")
        for field in (
            "active_calls",
            "active_participants",
            "latest_started",
            "latest_ended",
            "started_page",
            "started_page_after",
            "ended_page",
            "ended_page_after",
        ):
            statement = getattr(queries, field)
            plan = "\n".join(
                row[0]
                for row in conn.execute(
                    sql.SQL("EXPLAIN ") + statement, params if "%(" in statement.as_string() else None
                )
            )
            assert "Seq Scan" not in plan, f"{field}:\n{plan}"
            assert "callLog_" in plan, f"{field}:\n{plan}"


async def test_upsert_is_idempotent_and_a_new_source_starts_afresh() -> None:
    ns, name = new_platform()
    collector = CallMetricsCollector(settings=FAST)
    collector.upsert(ns, name, "postgresql://a@127.0.0.1:1/x", SPEC)
    first = collector._platforms[(ns, name)]
    collector.upsert(ns, name, "postgresql://a@127.0.0.1:1/x", SPEC)
    assert collector._platforms[(ns, name)] is first
    collector.upsert(ns, name, "postgresql://b@127.0.0.1:1/x", SPEC)
    assert collector._platforms[(ns, name)] is not first
    collector.upsert(ns, name, "postgresql://b@127.0.0.1:1/x", CallLogSpec(table="calls"))
    assert collector._platforms[(ns, name)].call_log.table == "calls"
    assert collector.platforms() == [(ns, name)]
    assert not collector.is_alive()  # not started
    await collector.start()
    assert collector.is_alive()
    collector.remove(ns, name)
    assert collector.platforms() == []
    await collector.stop()
    assert not collector.is_alive()
    with pytest.raises(KeyError):
        await collector.collect_once(ns, name)


async def test_no_connection_is_held_between_collections(call_db: CallDatabase) -> None:
    ns, name = new_platform()
    collector = CallMetricsCollector(settings=CollectorSettings(interval_seconds=10.0))
    collector.upsert(ns, name, call_db.reader_url, SPEC)

    def reader_connections() -> int:
        return int(
            call_db.scalar(  # type: ignore[call-overload]
                "SELECT count(*) FROM pg_stat_activity WHERE usename = 'calls_reader' AND datname = %s",
                [call_db.dbname],
            )
        )

    try:
        assert await collector.collect_once(ns, name)
        assert reader_connections() == 1
        await wait_for(lambda: reader_connections() == 0, "the idle connection to close", timeout=30)
        assert await collector.collect_once(ns, name)  # and the next collection reconnects
    finally:
        await collector.stop()
        collector.remove(ns, name)


async def test_uuid_ids_and_timestamptz_columns_page_correctly(call_db: CallDatabase) -> None:
    """Another common layout: uuid ids, timestamptz, camelCase names, no duration column."""
    call_db.execute(
        'CREATE TABLE "Call" ("callId" uuid PRIMARY KEY DEFAULT gen_random_uuid(),'
        ' "startedAt" timestamptz NOT NULL, "endedAt" timestamptz, "people" int NOT NULL DEFAULT 2)'
    )
    call_db.execute('GRANT SELECT ON "Call" TO calls_reader')
    call_db.execute(
        """INSERT INTO "Call" ("startedAt", "endedAt")
           SELECT now() - interval '2 days', now() - interval '1 day' FROM generate_series(1, 50)"""
    )
    spec = CallLogSpec(
        table="Call",
        id_column="callId",
        started_at_column="startedAt",
        ended_at_column="endedAt",
        duration_column="",
        participants_column="people",
    )
    async with watched(call_db.reader_url, spec, CollectorSettings(page_size=7, max_pages_per_cycle=3)) as (
        collector,
        ns,
        name,
    ):
        assert await collector.collect_once(ns, name)
        # 40 calls ending at the same instant, 30 minutes long, and 5 still running.
        call_db.execute(
            """INSERT INTO "Call" ("startedAt", "endedAt")
               SELECT now() - interval '31 minutes', now() - interval '1 minute' FROM generate_series(1, 40)"""
        )
        call_db.execute(
            """INSERT INTO "Call" ("startedAt", "people") SELECT now(), 4 FROM generate_series(1, 5)"""
        )
        for _ in range(4):
            assert await collector.collect_once(ns, name)
        assert value("callplatform_calls_ended_total", **labels(ns, name)) == 40
        assert value("callplatform_calls_started_total", **labels(ns, name)) == 45
        assert value("callplatform_calls_active", **labels(ns, name)) == 5
        assert value("callplatform_call_participants_active", **labels(ns, name)) == 20
        assert value("callplatform_call_duration_seconds_sum", **labels(ns, name)) == pytest.approx(
            40 * 1800.0
        )


async def test_a_row_dated_in_the_future_does_not_hide_current_calls(call_db: CallDatabase) -> None:
    async with watched(call_db.reader_url, SPEC) as (collector, ns, name):
        assert await collector.collect_once(ns, name)
        call_db.execute(
            """INSERT INTO "callLog" (id, room, started_at, ended_at, duration_seconds)
               VALUES ('scheduled', 'r', now()::timestamp + interval '1 day', now()::timestamp + interval '25 hours', 3600)"""
        )
        assert await collector.collect_once(ns, name)
        add_calls(call_db, "now-", 12, ended=True)
        assert await collector.collect_once(ns, name)
        assert value("callplatform_calls_ended_total", **labels(ns, name)) == 12
        assert value("callplatform_calls_started_total", **labels(ns, name)) == 12
        assert (
            value("callplatform_calls_active", **labels(ns, name)) == 40
        )  # the scheduled call has not started


async def test_removing_a_platform_mid_collection_leaves_no_series(call_db: CallDatabase) -> None:
    """remove() while a slow collection runs: the cancelled collection must not re-create series."""
    call_db.execute('CREATE VIEW "sleepyLog" AS SELECT c.* FROM "callLog" c, pg_sleep(0.5) AS s')
    call_db.execute('GRANT SELECT ON "sleepyLog" TO calls_reader')
    ns, name = new_platform()
    collector = CallMetricsCollector(settings=CollectorSettings(interval_seconds=0.1))
    collector.upsert(ns, name, call_db.reader_url, CallLogSpec(table="sleepyLog"))
    await collector.start()
    try:
        await wait_for(
            lambda: (
                call_db.scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = 'calls_reader' AND state = 'active'"
                )
                == 1
            ),
            "a collection to be running",
        )
        collector.remove(ns, name)
        await asyncio.sleep(0)
    finally:
        await collector.stop()
    assert platform_series(ns, name) == []


async def test_a_slow_database_never_holds_up_a_scrape(call_db: CallDatabase) -> None:
    call_db.execute('CREATE VIEW "stuckLog" AS SELECT c.* FROM "callLog" c, pg_sleep(3) AS s')
    call_db.execute('GRANT SELECT ON "stuckLog" TO calls_reader')
    ns, name = new_platform()
    collector = CallMetricsCollector(
        settings=CollectorSettings(interval_seconds=0.1, statement_timeout_seconds=10)
    )
    collector.upsert(ns, name, call_db.reader_url, CallLogSpec(table="stuckLog"))
    await collector.start()
    try:
        await wait_for(
            lambda: (
                call_db.scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = 'calls_reader' AND state = 'active'"
                )
                == 1
            ),
            "a collection to be stuck in the database",
        )
        began = time.monotonic()
        body = scrape()
        assert time.monotonic() - began < 1.0
        assert "callplatform_build_info" in body
        assert (
            call_db.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = 'calls_reader' AND state = 'active'"
            )
            == 1
        ), "the query should still be running while the scrape is served"
    finally:
        await collector.stop()
        collector.remove(ns, name)
