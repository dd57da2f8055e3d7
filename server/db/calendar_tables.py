"""Timetable calendar feeds (``docs/calendar.md``): one row per secret feed URL.

Only the HMAC-SHA-256 of a feed's token is stored (as for bearer tokens,
``server/identity.py``), so a copy of the database opens no feed. ``state`` is what the feed
last served (``sync.calendar.EventState`` per event, as JSON): it gives each event its
``SEQUENCE`` and time stamps, and the feed its ``Last-Modified``.
"""

from __future__ import annotations

from piccolo.columns import ForeignKey, OnDelete, Serial, Text, Timestamptz, Varchar
from piccolo.table import Table

from server.db.tables import Person


class CalendarFeed(Table, tablename="calendar_feed"):
    """A secret feed URL of ``owner``'s showing ``subject``'s timetable (self or a child)."""

    id = Serial(primary_key=True)

    owner = ForeignKey(references=Person, null=False, on_delete=OnDelete.restrict, index=True)
    subject = ForeignKey(references=Person, null=False, on_delete=OnDelete.restrict, index=True)
    token_hash = Varchar(length=64, unique=True, index=True)
    created_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)
    state = Text(default="{}")
    """JSON: event key -> [fingerprint, sequence, changed_at (Unix seconds)]."""


CALENDAR_TABLES: tuple[type[Table], ...] = (CalendarFeed,)
