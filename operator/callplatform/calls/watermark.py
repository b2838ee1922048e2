"""Counting each call event once: a high-water mark with a grace window.

The collector reads rows whose event time (started_at or ended_at) is at or after
`high - grace`, where `high` is the latest event time counted so far. Rows in that
window that were already counted are recognised by id, so the grace window
catches rows that became visible late (long transactions, clock skew between app
servers) without counting anything twice. The state lives in memory across
database outages: after one, the window still starts where counting stopped, so
calls that ended meanwhile are counted once.

The first successful contact sets a floor at the newest existing event: history
before the operator started watching is not counted (a counter starts at 0).

Pure: no I/O. The collector fetches the pages `next_window` asks for and hands
them to `advance` only after its whole transaction succeeded.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

NO_LOWER_BOUND = "-infinity"  # PostgreSQL accepts it for timestamp and timestamptz
_RESOLUTION = timedelta(microseconds=1)  # PostgreSQL's timestamp resolution


@dataclass(frozen=True, slots=True)
class Window:
    """Rows to read: event time >= since, and (time, id) > after when resuming an unfinished catch-up."""

    since: datetime | str
    after: tuple[datetime, Any] | None = None


@dataclass(slots=True)
class EventWatermark:
    grace: timedelta
    baselined: bool = False
    floor: datetime | None = None  # events at or before it predate the operator's watch
    high: datetime | None = None  # latest event time seen
    seen: dict[Hashable, datetime] = field(default_factory=dict)
    resume_after: tuple[datetime, Any] | None = None

    def set_baseline(self, newest: datetime | None) -> None:
        """Called once, with max(event time) at the first successful contact."""
        self.baselined = True
        self.floor = newest
        self.high = newest

    def next_window(self) -> Window:
        if self.resume_after is not None:
            return Window(since=self.resume_after[0], after=self.resume_after)
        bounds = [b for b in (self._floor_bound(), self._grace_bound()) if b is not None]
        return Window(since=max(bounds) if bounds else NO_LOWER_BOUND)

    def advance(self, rows: Sequence[Sequence[Any]], complete: bool) -> list[Sequence[Any]]:
        """Record fetched rows (id, event time, ...) in (time, id) order; return those not counted before.

        `complete` is False when the collector stopped paging at its per-cycle
        limit; the next window then resumes after the last row instead of
        rescanning the grace window, so a large backlog always makes progress.
        """
        new_rows: list[Sequence[Any]] = []
        for row in rows:
            call_id, at = row[0], row[1]
            if call_id in self.seen or (self.floor is not None and at <= self.floor):
                continue
            self.seen[call_id] = at
            new_rows.append(row)
            if self.high is None or at > self.high:
                self.high = at
        self.resume_after = (rows[-1][1], rows[-1][0]) if rows and not complete else None
        self._forget_outside_grace()
        return new_rows

    def _floor_bound(self) -> datetime | None:
        return None if self.floor is None else self.floor + _RESOLUTION

    def _grace_bound(self) -> datetime | None:
        return None if self.high is None else self.high - self.grace

    def _forget_outside_grace(self) -> None:
        bound = self._grace_bound()
        if bound is None:
            return
        self.seen = {call_id: at for call_id, at in self.seen.items() if at >= bound}
