"""Timetable calendar feeds as the API speaks them (``docs/calendar.md``)."""

from __future__ import annotations

import datetime as dt

import msgspec

from schemas.core import Id


class FeedIn(msgspec.Struct, forbid_unknown_fields=True):
    """Make a feed of ``person_id``'s timetable: oneself, or a child one is guardian of."""

    person_id: Id


class FeedCreated(msgspec.Struct):
    """A new feed. ``url`` holds its secret token and is shown this once only."""

    id: int
    person_id: int
    url: str
    """``https://<host>/calendar/<token>.ics``: subscribe to it (or its ``webcal://`` form)."""
    created_at: dt.datetime


class FeedOut(msgspec.Struct):
    """A feed as listed: never its token (the database does not keep it)."""

    id: int
    person_id: int
    person_name: str
    created_at: dt.datetime
