"""Observed call start and join rates: events in the trailing minute, in total and for the busiest user.

What spec.calls.rateLimits is compared with (alert CallRateLimitExceeded). Each rate
needs its columns: starts the call log's start time (per user also `startedByColumn`),
joins a participants table with `participantsJoinedAtColumn` (per user also
`participantsUserColumn`). A rate whose columns are not configured is not queried, so
a call log without them keeps working exactly as before. The windows are
`now() - 1 minute < t <= now()`, which the recommended (started_at) index serves.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from callplatform.calls.sql import table_identifier
from callplatform.model import CallLogSpec

EVENTS = ("starts", "joins")
SCOPES = ("global", "per_user")
_WINDOW = sql.SQL("{column} > now() - interval '1 minute' AND {column} <= now()")


@dataclass(frozen=True, slots=True)
class RateQuery:
    event: str  # starts | joins
    scope: str  # global | per_user
    statement: sql.Composed


def _queries_for(event: str, table: sql.Identifier, at_column: str, user_column: str) -> list[RateQuery]:
    at = sql.Identifier(at_column)
    window = _WINDOW.format(column=at)
    queries = [
        RateQuery(
            event,
            "global",
            sql.SQL("SELECT count(*) FROM {table} WHERE {window}").format(table=table, window=window),
        )
    ]
    if user_column:
        user = sql.Identifier(user_column)
        queries.append(
            RateQuery(
                event,
                "per_user",
                sql.SQL(
                    "SELECT COALESCE(max(n), 0) FROM (SELECT count(*) AS n FROM {table}"
                    " WHERE {window} AND {user} IS NOT NULL GROUP BY {user}) AS per_user"
                ).format(table=table, window=window, user=user),
            )
        )
    return queries


def build_rate_queries(spec: CallLogSpec) -> tuple[RateQuery, ...]:
    queries = _queries_for(
        "starts", table_identifier(spec.table), spec.started_at_column, spec.started_by_column
    )
    if spec.participants_table and spec.participants_joined_at_column:
        queries += _queries_for(
            "joins",
            table_identifier(spec.participants_table),
            spec.participants_joined_at_column,
            spec.participants_user_column,
        )
    return tuple(queries)
