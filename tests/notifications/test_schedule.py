"""When a notification may go out: properties over any time and preferences, then cases.

The cases pin the DST nights: Europe/Helsinki springs forward on the last Sunday of March
(03:00 EET -> 04:00 EEST, at 01:00 UTC) and falls back on the last Sunday of October
(04:00 EEST -> 03:00 EET, at 01:00 UTC).
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifications.schedule import (
    HELSINKI,
    Channel,
    Mode,
    Plan,
    Preferences,
    in_quiet_hours,
    local_instant,
    plan,
    quiet_hours_end,
)

UTC = dt.UTC
SPRING = dt.date(2025, 3, 30)
AUTUMN = dt.date(2025, 10, 26)
MICROSECOND = dt.timedelta(microseconds=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


def helsinki(
    year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0, *, fold: int = 0
) -> dt.datetime:
    """A Helsinki wall time as a UTC instant (fold=1: the second of a repeated hour)."""
    wall = dt.datetime(year, month, day, hour, minute, second, tzinfo=HELSINKI, fold=fold)
    return wall.astimezone(UTC)


# Any instant over several years, plus instants crowded around the DST nights, where the
# interesting cases are.
_any_now = st.datetimes(
    min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2030, 12, 31), timezones=st.just(UTC)
)
_dst_now = st.builds(
    lambda day, minutes: dt.datetime.combine(day, dt.time(12), tzinfo=UTC)
    + dt.timedelta(minutes=minutes),
    st.sampled_from(
        [SPRING, AUTUMN, dt.date(2026, 3, 29), dt.date(2026, 10, 25), dt.date(2024, 3, 31)]
    ),
    st.integers(min_value=-48 * 60, max_value=36 * 60),
)
nows = st.one_of(_any_now, _dst_now)
# Quarter hours, so that starts, ends and the digest time often land in the skipped or the
# repeated hour, plus arbitrary times.
_times = st.one_of(
    st.builds(dt.time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45])), st.times()
)
preferences = st.builds(
    Preferences,
    webpush=st.sampled_from(Mode),
    apprise=st.sampled_from(Mode),
    quiet_start=st.none() | _times,
    quiet_end=st.none() | _times,
    digest_at=_times,
)
channels = st.sampled_from(Channel)


@given(preferences, channels, st.booleans(), nows)
def test_plan_is_never_earlier_than_now(
    prefs: Preferences, channel: Channel, urgent: bool, now: dt.datetime
) -> None:
    planned = plan(prefs, channel, urgent=urgent, now=now)
    if planned is not None:
        assert planned.not_before >= now
        assert planned.not_before.tzinfo is UTC


@given(preferences, channels, nows)
def test_off_means_none_even_when_urgent(
    prefs: Preferences, channel: Channel, now: dt.datetime
) -> None:
    for urgent in (False, True):
        planned = plan(prefs, channel, urgent=urgent, now=now)
        assert (planned is None) == (prefs.mode_for(channel) is Mode.OFF)


@given(preferences, channels, nows)
def test_urgent_goes_now(prefs: Preferences, channel: Channel, now: dt.datetime) -> None:
    planned = plan(prefs, channel, urgent=True, now=now)
    if prefs.mode_for(channel) is not Mode.OFF:
        assert planned == Plan(now, None)


@given(preferences, nows)
def test_instant_never_lands_in_quiet_hours(prefs: Preferences, now: dt.datetime) -> None:
    prefs = Preferences(
        webpush=Mode.INSTANT,
        quiet_start=prefs.quiet_start,
        quiet_end=prefs.quiet_end,
    )
    planned = plan(prefs, Channel.WEBPUSH, urgent=False, now=now)
    assert planned is not None
    assert planned.digest_day is None
    assert not in_quiet_hours(prefs, planned.not_before)
    assert (planned.not_before == now) == (not in_quiet_hours(prefs, now))


@given(preferences, nows)
def test_quiet_hours_end_is_the_earliest_way_out(prefs: Preferences, now: dt.datetime) -> None:
    end = quiet_hours_end(prefs, now)
    assert end >= now
    assert not in_quiet_hours(prefs, end)
    if end > now:
        # Quiet all the way from now to just before the end.
        assert in_quiet_hours(prefs, now)
        assert in_quiet_hours(prefs, end - MICROSECOND)


@given(preferences, nows, st.floats(min_value=0.0, max_value=1.0))
def test_one_digest_per_day(prefs: Preferences, now: dt.datetime, fraction: float) -> None:
    """Every `now` in (yesterday's digest time, today's] gets the same plan: one digest."""
    prefs = Preferences(
        apprise=Mode.DIGEST,
        quiet_start=prefs.quiet_start,
        quiet_end=prefs.quiet_end,
        digest_at=prefs.digest_at,
    )
    planned = plan(prefs, Channel.APPRISE, urgent=False, now=now)
    assert planned is not None
    assert planned.digest_day is not None
    due = local_instant(planned.digest_day, prefs.digest_at)
    previous = local_instant(planned.digest_day - dt.timedelta(days=1), prefs.digest_at)
    assert previous < now <= due
    assert planned.not_before == quiet_hours_end(prefs, due)
    assert not in_quiet_hours(prefs, planned.not_before)

    # Any other moment in the same window, the window's end included.
    other = due - (due - previous) * fraction
    if other == previous:
        other += MICROSECOND
    assert plan(prefs, Channel.APPRISE, urgent=False, now=other) == planned
    # Just after the digest time, the item waits for the next day's digest.
    later = plan(prefs, Channel.APPRISE, urgent=False, now=due + MICROSECOND)
    assert later is not None
    assert later.digest_day == planned.digest_day + dt.timedelta(days=1)


NIGHT = Preferences()  # quiet 21:00-07:00, digest at 18:00
LUNCH = Preferences(quiet_start=dt.time(13), quiet_end=dt.time(14))


@pytest.mark.parametrize(
    ("prefs", "now", "quiet_until"),
    [
        pytest.param(NIGHT, helsinki(2025, 6, 2, 12), None, id="midday"),
        pytest.param(NIGHT, helsinki(2025, 6, 2, 21), helsinki(2025, 6, 3, 7), id="at-start"),
        pytest.param(NIGHT, helsinki(2025, 6, 2, 23, 30), helsinki(2025, 6, 3, 7), id="late"),
        pytest.param(NIGHT, helsinki(2025, 6, 3, 6, 59), helsinki(2025, 6, 3, 7), id="early"),
        pytest.param(NIGHT, helsinki(2025, 6, 3, 7), None, id="at-end"),
        pytest.param(LUNCH, helsinki(2025, 6, 2, 13, 30), helsinki(2025, 6, 2, 14), id="lunch"),
        pytest.param(LUNCH, helsinki(2025, 6, 2, 23), None, id="not-wrapping"),
        pytest.param(
            Preferences(quiet_start=dt.time(8), quiet_end=dt.time(8)),
            helsinki(2025, 6, 2, 8),
            None,
            id="start-equals-end",
        ),
        pytest.param(
            Preferences(quiet_start=None, quiet_end=dt.time(7)),
            helsinki(2025, 6, 2, 3),
            None,
            id="none",
        ),
        # Spring forward: the night is an hour shorter; 07:00 EEST is 04:00 UTC.
        pytest.param(NIGHT, helsinki(2025, 3, 29, 22), utc(2025, 3, 30, 4), id="spring-night"),
        # Fall back: the night is an hour longer; 07:00 EET is 05:00 UTC.
        pytest.param(NIGHT, helsinki(2025, 10, 25, 22), utc(2025, 10, 26, 5), id="autumn-night"),
        # A quiet end inside the skipped hour is read with the winter offset: 03:30 EET is
        # 01:30 UTC, which the clocks show as 04:30 EEST.
        pytest.param(
            Preferences(quiet_end=dt.time(3, 30)),
            utc(2025, 3, 30, 0, 59),  # 02:59 EET
            utc(2025, 3, 30, 1, 30),
            id="spring-end-in-gap",
        ),
        pytest.param(
            Preferences(quiet_end=dt.time(3, 30)),
            utc(2025, 3, 30, 1, 10),  # 04:10 EEST: past 03:30 by the clock, yet still quiet
            utc(2025, 3, 30, 1, 30),
            id="spring-after-gap",
        ),
        # A quiet end inside the repeated hour means its first occurrence (03:30 EEST)...
        pytest.param(
            Preferences(quiet_end=dt.time(3, 30)),
            helsinki(2025, 10, 26, 3, 15),
            utc(2025, 10, 26, 0, 30),
            id="autumn-end-first-pass",
        ),
        # ...and the second pass through 03:15 (EET) is not quiet again.
        pytest.param(
            Preferences(quiet_end=dt.time(3, 30)),
            helsinki(2025, 10, 26, 3, 15, fold=1),
            None,
            id="autumn-end-second-pass",
        ),
        # A quiet start inside the repeated hour: from its first occurrence on.
        pytest.param(
            Preferences(quiet_start=dt.time(3, 30), quiet_end=dt.time(5)),
            helsinki(2025, 10, 26, 3, 45, fold=1),
            helsinki(2025, 10, 26, 5),
            id="autumn-start-in-repeat",
        ),
    ],
)
def test_quiet_hours(prefs: Preferences, now: dt.datetime, quiet_until: dt.datetime | None) -> None:
    assert in_quiet_hours(prefs, now) == (quiet_until is not None)
    assert quiet_hours_end(prefs, now) == (quiet_until or now)
    instant = plan(prefs, Channel.WEBPUSH, urgent=False, now=now)
    assert instant == Plan(quiet_until or now, None)
    assert plan(prefs, Channel.WEBPUSH, urgent=True, now=now) == Plan(now, None)


DIGEST = Preferences(webpush=Mode.DIGEST)


@pytest.mark.parametrize(
    ("prefs", "now", "expected"),
    [
        pytest.param(
            DIGEST,
            helsinki(2025, 6, 2, 10),
            Plan(helsinki(2025, 6, 2, 18), dt.date(2025, 6, 2)),
            id="morning",
        ),
        pytest.param(
            DIGEST,
            helsinki(2025, 6, 2, 18),
            Plan(helsinki(2025, 6, 2, 18), dt.date(2025, 6, 2)),
            id="at-digest-time",
        ),
        pytest.param(
            DIGEST,
            helsinki(2025, 6, 2, 18, 0, 1),
            Plan(helsinki(2025, 6, 3, 18), dt.date(2025, 6, 3)),
            id="just-after",
        ),
        pytest.param(
            DIGEST,
            helsinki(2025, 6, 2, 23),  # in quiet hours: still waits for the digest, not 07:00
            Plan(helsinki(2025, 6, 3, 18), dt.date(2025, 6, 3)),
            id="at-night",
        ),
        # A digest time inside quiet hours waits until they end, but keeps its day.
        pytest.param(
            Preferences(webpush=Mode.DIGEST, digest_at=dt.time(22)),
            helsinki(2025, 6, 2, 12),
            Plan(helsinki(2025, 6, 3, 7), dt.date(2025, 6, 2)),
            id="digest-in-quiet-hours",
        ),
        # 18:00 is 16:00 UTC in winter and 15:00 UTC in summer: the DST days themselves.
        pytest.param(
            DIGEST,
            utc(2025, 3, 29, 20),
            Plan(utc(2025, 3, 30, 15), SPRING),
            id="spring-day",
        ),
        pytest.param(
            DIGEST,
            utc(2025, 10, 25, 20),
            Plan(utc(2025, 10, 26, 16), AUTUMN),
            id="autumn-day",
        ),
        # A digest time in the skipped hour is read with the winter offset (03:30 EET).
        pytest.param(
            Preferences(webpush=Mode.DIGEST, digest_at=dt.time(3, 30), quiet_start=None),
            utc(2025, 3, 29, 22),
            Plan(utc(2025, 3, 30, 1, 30), SPRING),
            id="digest-in-gap",
        ),
        # A digest time in the repeated hour goes out once, at its first occurrence.
        pytest.param(
            Preferences(webpush=Mode.DIGEST, digest_at=dt.time(3, 30), quiet_start=None),
            utc(2025, 10, 25, 22),
            Plan(utc(2025, 10, 26, 0, 30), AUTUMN),
            id="digest-in-repeat",
        ),
        pytest.param(
            Preferences(webpush=Mode.DIGEST, digest_at=dt.time(3, 30), quiet_start=None),
            helsinki(2025, 10, 26, 3, 15, fold=1),
            Plan(helsinki(2025, 10, 27, 3, 30), dt.date(2025, 10, 27)),
            id="repeat-second-pass-is-tomorrow",
        ),
    ],
)
def test_digest(prefs: Preferences, now: dt.datetime, expected: Plan) -> None:
    assert plan(prefs, Channel.WEBPUSH, urgent=False, now=now) == expected
    # The other channel stays instant (quiet hours apply), and urgent ignores the digest.
    assert plan(prefs, Channel.APPRISE, urgent=False, now=now) == Plan(
        quiet_hours_end(prefs, now), None
    )
    assert plan(prefs, Channel.WEBPUSH, urgent=True, now=now) == Plan(now, None)


def test_mode_for_each_channel() -> None:
    prefs = Preferences(webpush=Mode.OFF, apprise=Mode.DIGEST)
    assert prefs.mode_for(Channel.WEBPUSH) is Mode.OFF
    assert prefs.mode_for(Channel.APPRISE) is Mode.DIGEST


def test_aware_input_is_required() -> None:
    with pytest.raises(ValueError, match="aware"):
        plan(NIGHT, Channel.WEBPUSH, urgent=False, now=dt.datetime(2025, 6, 2, 12))
    with pytest.raises(ValueError, match="naive Helsinki"):
        Preferences(digest_at=dt.time(18, tzinfo=UTC))


def test_other_zones_are_normalised_to_utc() -> None:
    now = dt.datetime(2025, 6, 2, 23, 30, tzinfo=HELSINKI)
    planned = plan(NIGHT, Channel.WEBPUSH, urgent=False, now=now)
    assert planned == Plan(utc(2025, 6, 3, 4), None)
    assert planned.not_before.tzinfo is UTC
    assert plan(NIGHT, Channel.WEBPUSH, urgent=True, now=now) == Plan(utc(2025, 6, 2, 20, 30), None)
