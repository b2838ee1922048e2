"""High-water mark with grace window: every event counted exactly once, whatever the arrival order."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from callplatform.calls.watermark import NO_LOWER_BOUND, EventWatermark, Window

T0 = datetime(2026, 11, 27, 12, 0, 0)
GRACE = timedelta(minutes=10)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def visible(rows: list[tuple[str, datetime]], window: Window) -> list[tuple[str, datetime]]:
    """What the page query returns: time >= since, and (time, id) > after when resuming."""
    since = datetime.min if window.since == NO_LOWER_BOUND else window.since
    assert isinstance(since, datetime)
    after = window.after
    return sorted(
        (r for r in rows if r[1] >= since and (after is None or (r[1], r[0]) > after)),
        key=lambda r: (r[1], r[0]),
    )


def test_baseline_excludes_history_and_counts_what_follows() -> None:
    mark = EventWatermark(grace=GRACE)
    mark.set_baseline(at(0))
    assert mark.next_window().since == at(0) + timedelta(microseconds=1)
    history = [("old", at(-5)), ("edge", at(0))]
    assert mark.advance(history, complete=True) == []
    assert mark.advance([("new", at(1))], complete=True) == [("new", at(1))]
    assert mark.next_window().since == at(0) + timedelta(microseconds=1)  # the floor, later than high - grace


def test_empty_table_at_baseline_counts_everything_later() -> None:
    mark = EventWatermark(grace=GRACE)
    mark.set_baseline(None)
    assert mark.next_window().since == NO_LOWER_BOUND
    assert len(mark.advance([("a", at(0)), ("b", at(0))], complete=True)) == 2
    assert mark.advance([("a", at(0)), ("b", at(0))], complete=True) == []


def test_late_row_inside_grace_counts_once_outside_is_lost() -> None:
    mark = EventWatermark(grace=GRACE)
    mark.set_baseline(None)
    mark.advance([("a", at(30))], complete=True)
    assert mark.next_window().since == at(20)
    assert mark.advance([("a", at(30)), ("late", at(25))], complete=True) == [("late", at(25))]
    assert mark.advance([("a", at(30)), ("late", at(25))], complete=True) == []


def test_incomplete_paging_resumes_after_the_last_row() -> None:
    mark = EventWatermark(grace=GRACE)
    mark.set_baseline(None)
    page = [(f"c{i:03}", at(1)) for i in range(5)]
    assert len(mark.advance(page, complete=False)) == 5
    window = mark.next_window()
    assert window.after == (at(1), "c004")
    assert len(mark.advance([("c005", at(1))], complete=True)) == 1
    assert mark.next_window().after is None


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(
        st.tuples(st.integers(0, 600), st.integers(0, 9 * 60)),  # (event minute*10, visibility delay seconds)
        min_size=1,
        max_size=60,
    ),
    poll_every=st.integers(5, 120),
    outage=st.tuples(st.integers(0, 6000), st.integers(0, 3000)),
    page_limit=st.integers(1, 80),
)
def test_every_event_visible_within_grace_is_counted_exactly_once(
    events: list[tuple[int, int]], poll_every: int, outage: tuple[int, int], page_limit: int
) -> None:
    """Events become visible up to 9 minutes after their time (grace is 10); polls stop during an outage;
    a poll reads at most `page_limit` rows and the next one resumes after them."""
    rows = [
        (f"e{i:03}", T0 + timedelta(seconds=t * 10), timedelta(seconds=delay))
        for i, (t, delay) in enumerate(events)
    ]
    mark = EventWatermark(grace=GRACE)
    mark.set_baseline(None)
    counted: list[str] = []
    outage_from, outage_for = outage
    end = max(6000 + 9 * 60, outage_from + outage_for) + poll_every  # one poll after everything is visible
    for now_s in range(0, end + 1, poll_every):
        if outage_from <= now_s < outage_from + outage_for:
            continue
        now = T0 + timedelta(seconds=now_s)
        table = [(r[0], r[1]) for r in rows if r[1] + r[2] <= now]
        page = visible(table, mark.next_window())
        complete = len(page) <= page_limit
        counted += [row[0] for row in mark.advance(page[:page_limit], complete=complete)]
    # Drain what paging left behind once everything is visible.
    for _ in range(len(rows) + 2):
        page = visible([(r[0], r[1]) for r in rows], mark.next_window())
        complete = len(page) <= page_limit
        counted += [row[0] for row in mark.advance(page[:page_limit], complete=complete)]
    assert sorted(counted) == sorted(r[0] for r in rows)
