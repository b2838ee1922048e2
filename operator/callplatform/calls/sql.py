"""The SQL the call-metrics collector runs, built from the configurable `CallLogSpec`.

Every table and column name is a `psycopg.sql.Identifier`, so a name from the
spec can never become SQL; values are always bound parameters. Each WHERE clause
implies the predicate of the partial index docs/metrics.md recommends for it
(the planner uses a partial index only then), and the paging queries repeat the
plain lower bound next to the row comparison so a BRIN or single-column index
still applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from psycopg import pq, sql

from callplatform.model import CallLogSpec


class InvalidDatabaseURL(ValueError):
    """The platform's DATABASE_URL cannot be used. The message never repeats the URL."""


@dataclass(frozen=True, slots=True)
class DatabaseTarget:
    """A libpq-ready URL plus the schema an ORM-style `?schema=` parameter asked for."""

    conninfo: str
    search_path: str

    def __repr__(self) -> str:
        return "DatabaseTarget(<redacted>)"


_LIBPQ_KEYWORDS = frozenset(d.keyword.decode() for d in pq.Conninfo.get_defaults())


def database_target(url: str) -> DatabaseTarget:
    """Turn an application's DATABASE_URL (often written for Prisma) into something libpq accepts.

    Prisma adds query parameters libpq rejects (`schema`, `connection_limit`,
    `pgbouncer`, ...). `schema` becomes the search path; the others configure
    Prisma's own pool and are dropped.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        raise InvalidDatabaseURL("the database URL is not a valid URL") from None
    if parts.scheme not in ("postgres", "postgresql"):
        raise InvalidDatabaseURL("the database URL must start with postgresql:// or postgres://")
    params = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in params if key == "schema"), "")
    kept = [(key, value) for key, value in params if key in _LIBPQ_KEYWORDS]
    return DatabaseTarget(
        conninfo=urlunsplit(parts._replace(query=urlencode(kept))),
        search_path=schema,
    )


def _table(name: str) -> sql.Identifier:
    """`schema.table` addresses a table in another schema; a bare name uses the search path."""
    schema, dot, table = name.partition(".")
    return sql.Identifier(schema, table) if dot and schema and table else sql.Identifier(name)


table_identifier = _table  # for the rate queries (calls/rates.py)


@dataclass(frozen=True, slots=True)
class CallLogQueries:
    """The statements for one call-log layout. Build once per spec; they are immutable."""

    active_calls: sql.Composed
    active_participants: sql.Composed | None
    latest_started: sql.Composed
    latest_ended: sql.Composed
    started_page: sql.Composed
    started_page_after: sql.Composed
    ended_page: sql.Composed
    ended_page_after: sql.Composed


def build_queries(spec: CallLogSpec) -> CallLogQueries:
    table = _table(spec.table)
    call_id = sql.Identifier(spec.id_column)
    started = sql.Identifier(spec.started_at_column)
    ended = sql.Identifier(spec.ended_at_column)
    # Calls the app never marked as started, or scheduled for later, are not
    # active; the partial index predicate `ended_at IS NULL` is still implied.
    active_where = sql.SQL("{ended} IS NULL AND {started} <= now()").format(ended=ended, started=started)
    computed_duration = sql.SQL("EXTRACT(EPOCH FROM ({ended} - {started}))::float8").format(
        ended=ended, started=started
    )
    duration = (
        sql.SQL("COALESCE({column}::float8, {computed})").format(
            column=sql.Identifier(spec.duration_column), computed=computed_duration
        )
        if spec.duration_column
        else computed_duration
    )

    def page(column: sql.Identifier, extra: sql.Composable, after: bool) -> sql.Composed:
        keyset = (
            sql.SQL(" AND ({column}, {call_id}) > (%(after_at)s, %(after_id)s)").format(
                column=column, call_id=call_id
            )
            if after
            else sql.SQL("")
        )
        # `<= now()`: one row dated in the future (a scheduled call, a skewed
        # clock) must not lift the high-water mark past the calls happening now.
        return sql.SQL(
            "SELECT {call_id}, {column}{extra} FROM {table}"
            " WHERE {column} IS NOT NULL AND {column} >= %(since)s AND {column} <= now(){keyset}"
            " ORDER BY {column}, {call_id} LIMIT %(limit)s"
        ).format(call_id=call_id, column=column, extra=extra, table=table, keyset=keyset)

    def latest(column: sql.Identifier) -> sql.Composed:
        return sql.SQL(
            "SELECT max({column}) FROM {table} WHERE {column} IS NOT NULL AND {column} <= now()"
        ).format(column=column, table=table)

    ended_extra = sql.SQL(", {duration}").format(duration=duration)
    return CallLogQueries(
        active_calls=sql.SQL("SELECT count(*) FROM {table} WHERE {where}").format(
            table=table, where=active_where
        ),
        active_participants=_participants_query(spec, table, call_id, ended, started),
        latest_started=latest(started),
        latest_ended=latest(ended),
        started_page=page(started, sql.SQL(""), after=False),
        started_page_after=page(started, sql.SQL(""), after=True),
        ended_page=page(ended, ended_extra, after=False),
        ended_page_after=page(ended, ended_extra, after=True),
    )


def _participants_query(
    spec: CallLogSpec,
    table: sql.Identifier,
    call_id: sql.Identifier,
    ended: sql.Identifier,
    started: sql.Identifier,
) -> sql.Composed | None:
    """A participants table (one row per participant, `left_at` NULL while present) wins over a count column."""
    if spec.participants_table:
        still_present = (
            sql.SQL(" AND p.{left_at} IS NULL").format(
                left_at=sql.Identifier(spec.participants_left_at_column)
            )
            if spec.participants_left_at_column
            else sql.SQL("")
        )
        return sql.SQL(
            "SELECT count(*) FROM {participants} AS p JOIN {table} AS c ON p.{p_call} = c.{call_id}"
            " WHERE c.{ended} IS NULL AND c.{started} <= now(){still_present}"
        ).format(
            participants=_table(spec.participants_table),
            table=table,
            p_call=sql.Identifier(spec.participants_call_id_column),
            call_id=call_id,
            ended=ended,
            started=started,
            still_present=still_present,
        )
    if spec.participants_column:
        return sql.SQL(
            "SELECT COALESCE(sum({count}), 0) FROM {table} WHERE {ended} IS NULL AND {started} <= now()"
        ).format(count=sql.Identifier(spec.participants_column), table=table, ended=ended, started=started)
    return None


def _index_name(*parts: str) -> sql.Identifier:
    name = "_".join(part.replace(".", "_") for part in parts if part)
    return sql.Identifier(name[:63])


def recommended_indexes(spec: CallLogSpec) -> list[sql.Composed]:
    """The indexes that make every collector query an index scan (docs/metrics.md prints them).

    CONCURRENTLY keeps the app writing while they build; it cannot run inside a transaction.
    """
    table = _table(spec.table)
    call_id = sql.Identifier(spec.id_column)
    started = sql.Identifier(spec.started_at_column)
    ended = sql.Identifier(spec.ended_at_column)
    base = spec.table.rpartition(".")[2]
    statements = [
        sql.SQL(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} ({started}) WHERE {ended} IS NULL"
        ).format(
            name=_index_name(base, spec.started_at_column, "active_idx"),
            table=table,
            started=started,
            ended=ended,
        ),
        sql.SQL(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} ({ended}, {call_id}) WHERE {ended} IS NOT NULL"
        ).format(
            name=_index_name(base, spec.ended_at_column, "idx"), table=table, ended=ended, call_id=call_id
        ),
        sql.SQL("CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} ({started}, {call_id})").format(
            name=_index_name(base, spec.started_at_column, "idx"),
            table=table,
            started=started,
            call_id=call_id,
        ),
    ]
    if spec.participants_table:
        p_call = sql.Identifier(spec.participants_call_id_column)
        predicate = (
            sql.SQL(" WHERE {left_at} IS NULL").format(
                left_at=sql.Identifier(spec.participants_left_at_column)
            )
            if spec.participants_left_at_column
            else sql.SQL("")
        )
        statements.append(
            sql.SQL(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {participants} ({p_call}){predicate}"
            ).format(
                name=_index_name(
                    spec.participants_table.rpartition(".")[2],
                    spec.participants_call_id_column,
                    "present_idx",
                ),
                participants=_table(spec.participants_table),
                p_call=p_call,
                predicate=predicate,
            )
        )
    return statements
