"""Call-metrics collection time on a callLog of 1M and 10M rows, with and without the recommended indexes.

For each size: a throwaway PostgreSQL 15 (tests/metrics/callmetrics_pg.py), a
call history generated in SQL with generate_series (a year of calls, 60 still
running, a participant count column), the primary key Prisma would create, and
nothing else. The collector (the operator's own code path) then runs:

- its first collection (finds the newest events, reads the grace window);
- steady collections, each after 100 calls started and ended, as in production.

Then the recommended indexes from docs/metrics.md are built and a fresh
collector measured the same way. The statement timeout is raised to 10 minutes
so slow plans finish and can be timed; the operator's default is 5 s, and the
table marks runs that would have hit it.

    .venv/bin/python bench/bench_call_metrics.py            # 1M and 10M rows, a few minutes
    .venv/bin/python bench/bench_call_metrics.py --sizes 100000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "metrics"))

from callmetrics_db import SCHEMA  # the test suite's Prisma-style tables
from callmetrics_pg import PostgresServer, running_postgres

from callplatform.calls.db import CallMetricsCollector, CollectorSettings
from callplatform.calls.sql import recommended_indexes
from callplatform.model import CallLogSpec

SPEC = CallLogSpec(participants_column="participant_count")
DEFAULT_STATEMENT_TIMEOUT = CollectorSettings().statement_timeout_seconds
SERVER_SETTINGS = {"shared_buffers": "256MB", "maintenance_work_mem": "512MB", "max_wal_size": "8GB"}

# Rows in started_at order over the last year; the newest 60 are still running.
HISTORY = """
INSERT INTO "callLog" (id, room, started_at, ended_at, duration_seconds, participant_count)
SELECT 'c' || n, 'room-' || (n %% 5000), s,
       CASE WHEN n > %(rows)s - 60 THEN NULL ELSE s + d * interval '1 second' END,
       CASE WHEN n > %(rows)s - 60 THEN NULL ELSE d END,
       2 + n %% 7
FROM generate_series(1, %(rows)s) AS n,
     LATERAL (SELECT now()::timestamp(3) - interval '365 days' + n * (interval '365 days' / %(rows)s)
                     - interval '3 hours' AS s,
                     (60 + (n::bigint * 7919) %% 7200)::int AS d) AS g
"""
NEW_CALLS = """
INSERT INTO "callLog" (id, room, started_at, ended_at, duration_seconds, participant_count)
SELECT 'new-' || %(round)s || '-' || n, 'r', now()::timestamp(3) - interval '20 minutes',
       now()::timestamp(3), 1200, 3
FROM generate_series(1, 100) AS n
"""


@dataclass(frozen=True)
class Timing:
    first_ms: float
    steady_ms: float
    steady_max_ms: float
    default_timeout_ok: bool  # a first collection with the operator's default settings succeeded


def build_table(server: PostgresServer, dbname: str, rows: int) -> float:
    began = time.perf_counter()
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    with psycopg.connect(server.url(dbname), autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(HISTORY, {"rows": rows})
        conn.execute('VACUUM ANALYZE "callLog"')
    return time.perf_counter() - began


def build_indexes(server: PostgresServer, dbname: str) -> float:
    began = time.perf_counter()
    with psycopg.connect(server.url(dbname), autocommit=True) as conn:
        for statement in recommended_indexes(SPEC):
            # Plain CREATE INDEX: nobody writes meanwhile, and it is twice as fast to build.
            conn.execute(sql.SQL(statement.as_string().replace(" CONCURRENTLY", "")))  # type: ignore[arg-type]
        conn.execute('VACUUM ANALYZE "callLog"')
    return time.perf_counter() - began


async def succeeds_with_defaults(server: PostgresServer, dbname: str, label: str) -> bool:
    collector = CallMetricsCollector()
    collector.upsert("bench", label, server.url(dbname), SPEC)
    try:
        return await collector.collect_once("bench", label) and await collector.collect_once("bench", label)
    finally:
        await collector.stop()
        collector.remove("bench", label)


async def time_collector(server: PostgresServer, dbname: str, label: str, steady_runs: int) -> Timing:
    settings = CollectorSettings(statement_timeout_seconds=600, connect_timeout_seconds=10)
    collector = CallMetricsCollector(settings=settings)
    collector.upsert("bench", label, server.url(dbname), SPEC)
    try:
        began = time.perf_counter()
        assert await collector.collect_once("bench", label), "first collection failed"
        first = (time.perf_counter() - began) * 1000
        steady: list[float] = []
        for round_number in range(steady_runs):
            with psycopg.connect(server.url(dbname), autocommit=True) as conn:
                conn.execute(NEW_CALLS, {"round": f"{label}-{round_number}"})
            began = time.perf_counter()
            assert await collector.collect_once("bench", label), "collection failed"
            steady.append((time.perf_counter() - began) * 1000)
    finally:
        await collector.stop()
        collector.remove("bench", label)
    default_ok = await succeeds_with_defaults(server, dbname, label + "-defaults")
    return Timing(first, statistics.median(steady), max(steady), default_ok)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated row counts")
    parser.add_argument("--steady-runs", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    steady_runs = args.steady_runs
    results: list[tuple[int, Timing, Timing, float, float]] = []
    with running_postgres(SERVER_SETTINGS) as server:
        for rows in sizes:
            dbname = f"bench_{rows}"
            generated = build_table(server, dbname, rows)
            print(f"{rows:>10} rows generated in {generated:.1f} s", flush=True)
            without = await time_collector(server, dbname, f"plain-{rows}", args.steady_runs)
            indexed_in = build_indexes(server, dbname)
            print(f"{rows:>10} rows: recommended indexes built in {indexed_in:.1f} s", flush=True)
            indexed = await time_collector(server, dbname, f"indexed-{rows}", args.steady_runs)
            results.append((rows, without, indexed, generated, indexed_in))
            with psycopg.connect(server.url(), autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(dbname)))

    print()
    header = f"{'rows':>10}  {'collection':<10} {'no index':>10} {'indexed':>10} {'ratio':>7}"
    print(header)
    for rows, without, indexed, _, _ in results:
        for label, plain, fast in (
            ("first", without.first_ms, indexed.first_ms),
            ("steady", without.steady_ms, indexed.steady_ms),
            ("steady max", without.steady_max_ms, indexed.steady_max_ms),
        ):
            print(f"{rows:>10}  {label:<10} {plain:>7.0f} ms {fast:>7.1f} ms {plain / fast:>6.0f}x")
        verdict = {True: "succeeds", False: "FAILS (timeout)"}
        print(
            f"{rows:>10}  with the default {DEFAULT_STATEMENT_TIMEOUT:.0f} s statement timeout:"
            f" {verdict[without.default_timeout_ok]} without indexes, {verdict[indexed.default_timeout_ok]} with them"
        )
    print(
        f"\nfirst = the first collection of a new collector (connect, newest events, grace window);"
        f" steady = median of {steady_runs} collections, each after 100 new calls."
    )


if __name__ == "__main__":
    asyncio.run(main())
