"""The server's one reading of the wall clock, and the school's calendar day.

Every server module asks :func:`utc_now` for "now" instead of calling ``datetime.now`` itself,
so that there is one place to look when time matters and one place a test can see being
frozen (the suite freezes the whole process's clock with time-machine, ``tests/conftest.py``).
The engines (``sync/``, ``notifications/``) never read the clock: they take ``now`` as an
argument.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

SCHOOL_TIMEZONE = ZoneInfo("Europe/Helsinki")


def utc_now() -> dt.datetime:
    """Now, as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


def school_today(now: dt.datetime | None = None) -> dt.date:
    """Today's date where the schools are: validity periods and school weeks are Helsinki days."""
    return (now or utc_now()).astimezone(SCHOOL_TIMEZONE).date()
