"""When a notification may go out: channel modes, quiet hours and the daily digest.

A person chooses, per channel, to get news at once (``instant``), gathered into one daily
digest (``digest``) or not at all (``off``), and may set quiet hours. Those local rules are
read in Europe/Helsinki wall-clock time, but every instant this module takes or returns is a
UTC-aware datetime, so callers compare and store one kind of time only.

Daylight saving time. Helsinki moves its clocks on the last Sunday of March (03:00 -> 04:00,
so 03:00-03:59 does not exist) and of October (04:00 -> 03:00, so 03:00-03:59 happens twice).
Every wall time is turned into an instant by one rule, :func:`local_instant`:

* a wall time that happens twice means its first occurrence (zoneinfo ``fold=0``);
* a wall time that does not exist is read with the offset in force before the jump, so it
  lands that much later (03:30 on the spring-forward day is 04:30 EEST). This is what zoneinfo
  gives for ``fold=0``, and what Java's ``ZonedDateTime`` and dateutil's
  ``resolve_imaginary`` do.

Quiet hours are then intervals between such instants, not comparisons of clock readings, so
the repeated autumn hour cannot start a second quiet period, and ``in_quiet_hours`` and
``quiet_hours_end`` always agree with each other.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

HELSINKI = ZoneInfo("Europe/Helsinki")
"""The zone every local rule (quiet hours, digest time, digest day) is read in."""


class Mode(StrEnum):
    """How a person wants one channel to reach them."""

    INSTANT = "instant"
    DIGEST = "digest"
    OFF = "off"


class Channel(StrEnum):
    """A way to reach a person: a browser or app via Web Push, or anything apprise speaks."""

    WEBPUSH = "webpush"
    APPRISE = "apprise"


@dataclass(frozen=True, slots=True)
class Preferences:
    """One person's delivery preferences.

    Quiet hours apply only when both ``quiet_start`` and ``quiet_end`` are set and differ; they
    wrap midnight when the start is later than the end (21:00-07:00). All times are naive
    Helsinki wall-clock times.
    """

    webpush: Mode = Mode.INSTANT
    apprise: Mode = Mode.INSTANT
    quiet_start: dt.time | None = dt.time(21, 0)
    quiet_end: dt.time | None = dt.time(7, 0)
    digest_at: dt.time = dt.time(18, 0)

    def __post_init__(self) -> None:
        # An aware time here would silently mean a different zone than the one every rule is
        # documented in; refuse it where it is made, not where it misbehaves.
        for name in ("quiet_start", "quiet_end", "digest_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is not None:
                raise ValueError(f"{name} must be a naive Helsinki wall-clock time")

    def mode_for(self, channel: Channel) -> Mode:
        """The mode this person chose for ``channel``."""
        return self.webpush if channel is Channel.WEBPUSH else self.apprise

    @property
    def has_quiet_hours(self) -> bool:
        return (
            self.quiet_start is not None
            and self.quiet_end is not None
            and self.quiet_start != self.quiet_end
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """When one item may be sent on one channel.

    ``not_before`` is a UTC-aware instant. ``digest_day`` is set when the item belongs to that
    Helsinki day's digest: the sender gathers every item with the same recipient and day into
    one message, sent at ``not_before`` (the same for all of them).
    """

    not_before: dt.datetime
    digest_day: dt.date | None


def plan(prefs: Preferences, channel: Channel, *, urgent: bool, now: dt.datetime) -> Plan | None:
    """Decide when an item may go out on ``channel``; None means not on this channel at all.

    A channel turned off stays off even for urgent news: that person is reached by another
    channel or shown to staff as unreached, never pushed against their choice. Urgent news
    (a school closed today) otherwise goes at once, through quiet hours and past digests.
    """
    now = _utc(now)
    mode = prefs.mode_for(channel)
    if mode is Mode.OFF:
        return None
    if urgent:
        return Plan(now, None)
    if mode is Mode.INSTANT:
        return Plan(quiet_hours_end(prefs, now), None)
    day, at = _next_digest(prefs, now)
    return Plan(quiet_hours_end(prefs, at), day)


def in_quiet_hours(prefs: Preferences, now: dt.datetime) -> bool:
    """Whether ``now`` falls inside one of this person's quiet periods."""
    return _quiet_period_containing(prefs, _utc(now)) is not None


def quiet_hours_end(prefs: Preferences, now: dt.datetime) -> dt.datetime:
    """The UTC instant the quiet period around ``now`` ends; ``now`` itself when not quiet.

    So the result is always the earliest instant at or after ``now`` outside quiet hours.
    """
    moment = _utc(now)
    # Periods normally never touch, but a DST shift can make one night's end overlap the next
    # period's start (quiet 04:05-03:15 on the spring-forward day), so hop until outside. Each
    # hop moves strictly forward; an exhaustive run over 20-minute settings around the DST
    # days never needed more than two, so the bound is only a guard against a loop.
    for _ in range(4):
        period = _quiet_period_containing(prefs, moment)
        if period is None:
            break
        moment = period[1]
    return moment


def local_instant(day: dt.date, at: dt.time) -> dt.datetime:
    """The UTC instant at which Helsinki clocks show ``at`` on ``day`` (DST rule: module doc)."""
    wall = dt.datetime.combine(day, at.replace(tzinfo=None, fold=0), tzinfo=HELSINKI)
    return wall.astimezone(dt.UTC)


def local_date(moment: dt.datetime) -> dt.date:
    """The Helsinki calendar date at ``moment``."""
    return _utc(moment).astimezone(HELSINKI).date()


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("expected an aware datetime (UTC), got a naive one")
    return moment.astimezone(dt.UTC)


def _quiet_period(prefs: Preferences, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
    """The quiet period that starts on local ``day``, as [start, end) in UTC."""
    start, end = prefs.quiet_start, prefs.quiet_end
    if start is None or end is None or start == end:
        return None
    end_day = day + dt.timedelta(days=1) if start > end else day
    return local_instant(day, start), local_instant(end_day, end)


def _quiet_period_containing(
    prefs: Preferences, moment: dt.datetime
) -> tuple[dt.datetime, dt.datetime] | None:
    if not prefs.has_quiet_hours:
        return None
    today = local_date(moment)
    # A period starting yesterday may wrap into today; one starting tomorrow cannot have begun.
    for day in (today - dt.timedelta(days=1), today):
        period = _quiet_period(prefs, day)
        # A period can come out empty (end <= start) when the skipped spring hour swallows it;
        # then that night simply has no quiet hours.
        if period is not None and period[0] <= moment < period[1]:
            return period
    return None


def _next_digest(prefs: Preferences, now: dt.datetime) -> tuple[dt.date, dt.datetime]:
    """The local day and UTC instant of the first digest time at or after ``now``.

    Every ``now`` in (yesterday's digest time, today's digest time] gives the same answer,
    which is what makes it one digest per day.
    """
    day = local_date(now)
    at = local_instant(day, prefs.digest_at)
    if at < now:
        day += dt.timedelta(days=1)
        at = local_instant(day, prefs.digest_at)
    return day, at
