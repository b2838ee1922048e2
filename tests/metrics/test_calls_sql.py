"""SQL building and DATABASE_URL handling, without a database."""

from __future__ import annotations

import pytest

from callplatform.calls.sql import InvalidDatabaseURL, build_queries, database_target, recommended_indexes
from callplatform.model import CallLogSpec


def test_prisma_parameters_are_dropped_and_schema_becomes_search_path() -> None:
    target = database_target(
        "postgresql://app:s3cret@db:5432/calls?schema=app&connection_limit=5&pgbouncer=true&sslmode=require"
    )
    assert target.conninfo == "postgresql://app:s3cret@db:5432/calls?sslmode=require"
    assert target.search_path == "app"
    assert "s3cret" not in repr(target)


@pytest.mark.parametrize("url", ["mysql://u:s3cret@h/db", "s3cret", "postgresql://u:s3cret@[::1/db"])
def test_unusable_urls_are_rejected_without_repeating_them(url: str) -> None:
    with pytest.raises(InvalidDatabaseURL) as caught:
        database_target(url)
    assert "s3cret" not in str(caught.value)
    assert caught.value.__cause__ is None


def test_names_are_quoted_identifiers() -> None:
    queries = build_queries(CallLogSpec(table='evil"; DROP TABLE x; --', started_at_column="startedAt"))
    text = queries.active_calls.as_string()
    assert (
        text
        == 'SELECT count(*) FROM "evil""; DROP TABLE x; --" WHERE "ended_at" IS NULL AND "startedAt" <= now()'
    )


def test_schema_qualified_table_and_participant_variants() -> None:
    qualified = build_queries(CallLogSpec(table="app.callLog", participants_column="n"))
    assert 'FROM "app"."callLog"' in qualified.active_calls.as_string()
    assert qualified.active_participants is not None
    assert 'sum("n")' in qualified.active_participants.as_string()
    assert build_queries(CallLogSpec()).active_participants is None
    no_left = build_queries(CallLogSpec(participants_table="p", participants_left_at_column=""))
    assert no_left.active_participants is not None
    assert "left_at" not in no_left.active_participants.as_string()


def test_where_clauses_imply_the_partial_index_predicates() -> None:
    spec = CallLogSpec()
    queries = build_queries(spec)
    active_index, ended_index, _ = (s.as_string() for s in recommended_indexes(spec))
    assert active_index.endswith('WHERE "ended_at" IS NULL')
    assert '"ended_at" IS NULL' in queries.active_calls.as_string()
    assert ended_index.endswith('WHERE "ended_at" IS NOT NULL')
    assert '"ended_at" IS NOT NULL' in queries.ended_page.as_string()
    assert '"ended_at" IS NOT NULL' in queries.latest_ended.as_string()


def test_docs_print_the_recommended_indexes() -> None:
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    for statement in recommended_indexes(CallLogSpec(participants_table="callParticipant")):
        assert statement.as_string() + ";" in docs
