"""Observed start and join rates (spec.calls.rateLimits) against a real PostgreSQL: gauges equal SQL truth."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from callmetrics_db import SPEC, CallDatabase, create_call_database
from callmetrics_pg import PostgresServer
from scrape_parse import value

from callplatform import metrics
from callplatform.calls.db import CallMetricsCollector, CollectorSettings
from callplatform.calls.rates import build_rate_queries

pytestmark = pytest.mark.postgres

FAST = CollectorSettings(interval_seconds=0.2, statement_timeout_seconds=2.0, connect_timeout_seconds=1.0)
RATES_SPEC = replace(
    SPEC,
    started_by_column="started_by",
    participants_joined_at_column="joined_at",
    participants_user_column="user_id",
)


@pytest.fixture
def rate_db(postgres_server: PostgresServer) -> CallDatabase:
    db = create_call_database(postgres_server, calls=200, active=10)
    db.execute('ALTER TABLE "callLog" ADD COLUMN started_by text')
    return db


def start_calls(db: CallDatabase, prefix: str, user: str, count: int, ago: str) -> None:
    db.execute(
        """INSERT INTO "callLog" (id, room, started_at, started_by)
           SELECT %(prefix)s || n, 'r', now()::timestamp(3) - %(ago)s::interval, %(user)s
           FROM generate_series(1, %(count)s) AS n""",
        {"prefix": prefix, "user": user, "count": count, "ago": ago},
    )


def join(db: CallDatabase, call_prefix: str, user: str, count: int, ago: str) -> None:
    db.execute(
        """INSERT INTO "callParticipant" (call_id, user_id, joined_at)
           SELECT id, %(user)s, now()::timestamp(3) - %(ago)s::interval
           FROM "callLog" WHERE id LIKE %(prefix)s ORDER BY id LIMIT %(count)s""",
        {"prefix": call_prefix + "%", "user": user, "count": count, "ago": ago},
    )


def truth(db: CallDatabase, statement: str) -> float:
    return float(db.scalar(statement))  # type: ignore[arg-type]


def rate(ns: str, name: str, event: str, scope: str) -> float | None:
    return value("callplatform_call_events_per_minute", namespace=ns, platform=name, event=event, scope=scope)


async def test_observed_rates_equal_sql_ground_truth(rate_db: CallDatabase) -> None:
    start_calls(rate_db, "a-", "alice", 7, "10 seconds")
    start_calls(rate_db, "b-", "bob", 3, "20 seconds")
    start_calls(rate_db, "old-", "alice", 50, "2 minutes")  # outside the window
    start_calls(rate_db, "future-", "alice", 5, "-5 minutes")  # a skewed clock: not counted yet
    join(rate_db, "a-", "carol", 6, "5 seconds")
    join(rate_db, "b-", "dave", 2, "30 seconds")
    join(rate_db, "old-", "carol", 40, "3 minutes")

    ns, name = "ns-" + uuid.uuid4().hex[:8], "cp-" + uuid.uuid4().hex[:8]
    collector = CallMetricsCollector(settings=FAST)
    collector.upsert(ns, name, rate_db.reader_url, RATES_SPEC)
    try:
        assert await collector.collect_once(ns, name)
        starts = truth(
            rate_db,
            """SELECT count(*) FROM "callLog"
               WHERE started_at > now() - interval '1 minute' AND started_at <= now()""",
        )
        joins = truth(
            rate_db,
            """SELECT count(*) FROM "callParticipant"
               WHERE joined_at > now() - interval '1 minute' AND joined_at <= now()""",
        )
        assert (starts, joins) == (10, 8)  # the fixture's own history is older than a minute
        assert rate(ns, name, "starts", "global") == starts
        assert rate(ns, name, "starts", "per_user") == 7  # alice, the busiest starter
        assert rate(ns, name, "joins", "global") == joins
        assert rate(ns, name, "joins", "per_user") == 6  # carol
    finally:
        await collector.stop()
        collector.remove(ns, name)
    assert rate(ns, name, "starts", "global") is None  # removed with the platform


async def test_unconfigured_columns_are_not_queried_and_collection_still_works(rate_db: CallDatabase) -> None:
    """The default call-log spec has no user or joined-at column: only the global start rate."""
    assert [(q.event, q.scope) for q in build_rate_queries(SPEC)] == [("starts", "global")]
    ns, name = "ns-" + uuid.uuid4().hex[:8], "cp-" + uuid.uuid4().hex[:8]
    collector = CallMetricsCollector(settings=FAST)
    collector.upsert(ns, name, rate_db.reader_url, SPEC)
    try:
        assert await collector.collect_once(ns, name)
        assert rate(ns, name, "starts", "global") == 0
        assert rate(ns, name, "joins", "global") is None
        assert value("callplatform_calls_database_up", namespace=ns, platform=name) == 1
    finally:
        await collector.stop()
        collector.remove(ns, name)


def test_configured_limits_are_published_and_unset_ones_are_not() -> None:
    ns, name = "ns-" + uuid.uuid4().hex[:8], "cp-x"
    limits = {
        ("starts", "global"): 100,
        ("starts", "per_user"): 5,
        ("joins", "global"): 0,
        ("joins", "per_user"): 0,
    }
    metrics.set_rate_limits(ns, name, limits)
    series = {"namespace": ns, "platform": name}
    assert value("callplatform_call_rate_limit_per_minute", **series, event="starts", scope="per_user") == 5
    assert value("callplatform_call_rate_limit_per_minute", **series, event="joins", scope="global") is None
    metrics.set_rate_limits(ns, name, {**limits, ("starts", "per_user"): 0})
    assert (
        value("callplatform_call_rate_limit_per_minute", **series, event="starts", scope="per_user") is None
    )
    metrics.forget_platform(ns, name)
    assert value("callplatform_call_rate_limit_per_minute", **series, event="starts", scope="global") is None
