"""A Prisma-style call log with a generated history, in a fresh database of a test PostgreSQL."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import psycopg
from callmetrics_pg import PostgresServer
from psycopg import sql

from callplatform.calls.sql import recommended_indexes
from callplatform.model import CallLogSpec

READER = "calls_reader"

SCHEMA = """
CREATE TABLE "callLog" (
    id text PRIMARY KEY,
    room text NOT NULL,
    started_at timestamp(3) NOT NULL,
    ended_at timestamp(3),
    duration_seconds integer,
    participant_count integer NOT NULL DEFAULT 0
);
CREATE TABLE "callParticipant" (
    id bigserial PRIMARY KEY,
    call_id text NOT NULL REFERENCES "callLog"(id),
    user_id text NOT NULL,
    joined_at timestamp(3) NOT NULL,
    left_at timestamp(3)
);
"""

# A call history: `calls` calls over the last 30 days, the newest `active` ones
# still running. Participants: 2-6 per call, some of whom left early.
HISTORY = (
    "SELECT setseed(0.42)",
    """
INSERT INTO "callLog" (id, room, started_at, ended_at, duration_seconds, participant_count)
SELECT 'h' || lpad(n::text, 9, '0'),
       'room-' || (n %% 97),
       s,
       CASE WHEN n > %(calls)s - %(active)s THEN NULL ELSE s + d * interval '1 second' END,
       CASE WHEN n > %(calls)s - %(active)s THEN NULL ELSE d END,
       2 + n %% 5
FROM generate_series(1, %(calls)s) AS n,
     LATERAL (SELECT now()::timestamp(3) - interval '30 days' + n * (interval '30 days' / %(calls)s)
                     - interval '3 hours' AS s,
                     (60 + floor(random() * 7200))::int AS d) AS g
""",
    """
INSERT INTO "callParticipant" (call_id, user_id, joined_at, left_at)
SELECT c.id, 'u' || k, c.started_at,
       CASE WHEN c.ended_at IS NOT NULL THEN c.ended_at WHEN k = 1 THEN c.started_at + interval '1 minute' END
FROM "callLog" c, generate_series(1, c.participant_count) AS k
""",
    'ANALYZE "callLog"',
    'ANALYZE "callParticipant"',
)

SPEC = CallLogSpec(participants_table="callParticipant")


@dataclass(frozen=True)
class CallDatabase:
    server: PostgresServer
    dbname: str
    reader_password: str

    @property
    def admin_url(self) -> str:
        return self.server.url(self.dbname)

    @property
    def reader_url(self) -> str:
        return self.server.url(self.dbname, user=READER, password=self.reader_password)

    def execute(self, statement: str | sql.Composable, params: object = None) -> list[tuple[object, ...]]:
        with psycopg.connect(self.admin_url, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(statement, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def scalar(self, statement: str, params: object = None) -> object:
        return self.execute(statement, params)[0][0]


def create_call_database(
    server: PostgresServer, *, calls: int, active: int, indexes: bool = True
) -> CallDatabase:
    dbname = f"calls_{secrets.token_hex(4)}"
    reader_password = secrets.token_urlsafe(12)
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [READER]).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(READER), sql.Literal(reader_password)
            )
        )
    database = CallDatabase(server, dbname, reader_password)
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        for statement in HISTORY:
            conn.execute(statement, {"calls": calls, "active": active} if "%(" in statement else None)
        if indexes:
            for statement in recommended_indexes(SPEC):
                conn.execute(statement)
        conn.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(sql.Identifier(READER))
        )
    return database
