"""Retention's own bookkeeping (``server/retention.py``, ``docs/retention.md``)."""

from __future__ import annotations

from piccolo.columns import BigInt, Date, Serial, Timestamptz
from piccolo.table import Table


class RetentionMark(Table, tablename="retention_mark"):
    """One row per Helsinki day on which retention ran (by the worker or ``reppu retain``).

    The change log has no timestamps, only positions; the head recorded here each day is how
    "changes older than N days" becomes a position. ``daily_claimed_at`` is set by the one
    worker that runs the day's job, so that several workers run it once.
    """

    id = Serial(primary_key=True)
    day = Date(unique=True, index=True)
    change_log_head = BigInt()
    """The newest change-log position when the day's first run began."""
    recorded_at = Timestamptz()
    daily_claimed_at = Timestamptz(null=True, default=None)


RETENTION_TABLES: tuple[type[Table], ...] = (RetentionMark,)
