"""The status rules of ``sync/attendance.py``: every order of the same acts gives the same
status, and each row of the rules' table holds."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.absences import AttendanceStatus, LeaveDecision, MarkStatus, NoticeKind, Reason
from sync.attendance import (
    Act,
    Decision,
    Mark,
    Notice,
    effective_status,
    last_decision,
    school_days,
)

DAY = dt.date(2026, 11, 30)
LESSON = (dt.time(10, 0), dt.time(10, 45))
T0 = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)

acts = st.builds(
    Act,
    occurred_at=st.integers(0, 5).map(lambda m: T0 + dt.timedelta(minutes=m)),
    client_id=st.sampled_from(["teacher-phone", "sub-tablet"]),
    mutation_id=st.integers(1, 1000),
)
marks = st.builds(
    Mark,
    act=acts,
    status=st.sampled_from(MarkStatus),
    actor_id=st.integers(1, 3),
    late_minutes=st.none() | st.integers(1, 30),
)
notices = st.builds(
    Notice,
    id=st.integers(1, 50),
    kind=st.sampled_from(NoticeKind),
    reason=st.sampled_from(Reason),
    act=acts,
    from_date=st.sampled_from([DAY - dt.timedelta(days=1), DAY]),
    to_date=st.sampled_from([DAY, DAY + dt.timedelta(days=1)]),
    from_time=st.none() | st.sampled_from([dt.time(8, 0), dt.time(10, 30), dt.time(12, 0)]),
    to_time=st.none() | st.sampled_from([dt.time(9, 0), dt.time(11, 0)]),
)
# An act is named by its installation and mutation id: two acts never share one.
decisions = st.lists(
    st.builds(Decision, act=acts, decision=st.sampled_from(LeaveDecision)),
    max_size=4,
    unique_by=lambda d: d.act.key()[1:],
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(marks, max_size=5, unique_by=lambda m: m.act.key()[1:]),
    st.lists(st.tuples(notices, decisions), max_size=4, unique_by=lambda n: n[0].id),
    st.randoms(use_true_random=False),
)
def test_every_order_of_the_same_acts_gives_the_same_status(
    mark_list: list[Mark],
    notice_list: list[tuple[Notice, list[Decision]]],
    rnd: object,
) -> None:
    import random

    assert isinstance(rnd, random.Random)

    def status(ms: list[Mark], ns: list[tuple[Notice, list[Decision]]]) -> object:
        decided = [(n, last_decision(ds)) for n, ds in ns]
        return effective_status(ms, decided, DAY, *LESSON)

    expected = status(mark_list, notice_list)
    for _ in range(5):
        ms = list(mark_list)
        rnd.shuffle(ms)
        ns = [(n, rnd.sample(ds, len(ds))) for n, ds in notice_list]
        rnd.shuffle(ns)
        assert status(ms, ns) == expected


def _act(minute: int, mutation: int = 1) -> Act:
    return Act(T0 + dt.timedelta(minutes=minute), "phone", mutation)


def _notice(kind: NoticeKind, **span: object) -> Notice:
    fields: dict[str, object] = {"from_date": DAY, "to_date": DAY, **span}
    return Notice(id=1, kind=kind, reason=Reason.ILLNESS, act=_act(0), **fields)  # type: ignore[arg-type]


def _status(marks_: list[Mark], notices_: list[tuple[Notice, LeaveDecision | None]]) -> object:
    found = effective_status(marks_, notices_, DAY, *LESSON)
    return None if found is None else found.status


ABSENT = Mark(_act(1), MarkStatus.ABSENT, 1)
PRESENT = Mark(_act(1), MarkStatus.PRESENT, 1)
LATE = Mark(_act(1), MarkStatus.LATE, 1, late_minutes=5)
REPORT = (_notice(NoticeKind.REPORT), None)
LEAVE_OK = (_notice(NoticeKind.LEAVE), LeaveDecision.APPROVED)
LEAVE_NO = (_notice(NoticeKind.LEAVE), LeaveDecision.DENIED)
LEAVE_PENDING = (_notice(NoticeKind.LEAVE), None)


def test_the_table_of_rules() -> None:
    s = AttendanceStatus
    assert _status([PRESENT], [REPORT, LEAVE_OK]) == s.PRESENT
    assert _status([LATE], [REPORT]) == s.LATE
    assert _status([ABSENT], [LEAVE_OK, REPORT]) == s.ON_LEAVE
    assert _status([ABSENT], [REPORT]) == s.EXCUSED
    assert _status([ABSENT], []) == s.UNEXPLAINED
    assert _status([ABSENT], [LEAVE_NO, LEAVE_PENDING]) == s.UNEXPLAINED
    assert _status([], [REPORT]) == s.EXPECTED_ABSENT
    assert _status([], [LEAVE_OK]) == s.EXPECTED_ABSENT
    assert _status([], [LEAVE_PENDING]) is None
    assert _status([], []) is None


def test_the_last_mark_made_wins_and_ties_break_on_the_act_itself() -> None:
    later_present = Mark(_act(2), MarkStatus.PRESENT, 2)
    assert _status([later_present, ABSENT], []) == AttendanceStatus.PRESENT
    same_time_higher_id = Mark(_act(1, mutation=2), MarkStatus.PRESENT, 1)
    assert _status([same_time_higher_id, ABSENT], []) == AttendanceStatus.PRESENT


def test_part_of_a_day_covers_only_the_lessons_it_overlaps() -> None:
    morning = (_notice(NoticeKind.REPORT, from_time=dt.time(8, 0), to_time=dt.time(10, 0)), None)
    overlapping = (_notice(NoticeKind.REPORT, to_time=dt.time(10, 1)), None)
    from_noon = (_notice(NoticeKind.REPORT, from_time=dt.time(12, 0)), None)
    assert _status([ABSENT], [morning]) == AttendanceStatus.UNEXPLAINED
    assert _status([ABSENT], [overlapping]) == AttendanceStatus.EXCUSED
    assert _status([ABSENT], [from_noon]) == AttendanceStatus.UNEXPLAINED
    over_two_days = (
        _notice(
            NoticeKind.REPORT,
            from_date=DAY - dt.timedelta(days=1),
            from_time=dt.time(12, 0),
            to_time=dt.time(10, 30),
        ),
        None,
    )
    assert _status([ABSENT], [over_two_days]) == AttendanceStatus.EXCUSED


def test_the_last_leave_decision_stands() -> None:
    approve = Decision(_act(1), LeaveDecision.APPROVED)
    deny = Decision(_act(2), LeaveDecision.DENIED)
    assert last_decision([deny, approve]) == LeaveDecision.DENIED
    assert last_decision([]) is None


def test_school_days_skip_weekends() -> None:
    friday = dt.date(2026, 11, 27)
    assert school_days(friday, friday + dt.timedelta(days=3)) == 2
    assert school_days(friday, friday + dt.timedelta(days=13)) == 10
