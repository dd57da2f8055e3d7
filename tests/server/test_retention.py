"""Retention removes what is older than its period and nothing that is still needed; runs on
SQLite and on PostgreSQL, with the clock frozen and ``now`` given to the job."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from piccolo.engine.base import Engine

from schemas.core import GroupKind
from schemas.sync import GroupRecord
from server.clock import SCHOOL_TIMEZONE, utc_now
from server.db.absence_tables import AbsenceNotice, LeaveDecisionRow, RollMark
from server.db.engine import write_transaction
from server.db.form_tables import FormRequest, FormResponse, FormSignature
from server.db.notify_tables import Delivery, Outbox
from server.db.retention_tables import RetentionMark
from server.db.signin_tables import AccountEvent
from server.db.sync_tables import ChangeLog, PartitionState
from server.deliver import Worker
from server.retention import DailyRetention, RetentionPolicy, retain
from server.settings import Settings
from server.sync_store import RecordWrite, SqlPullStore, write_records
from sync.pull import pull
from tests.city import City
from tests.conftest import log_in_as
from tests.devices import change, device, records
from tests.sync.test_forms import GOOD, every_kind

KEEP_ALL = RetentionPolicy(audit_days=0, deliveries_days=0, changes_days=0, signed_forms_years=0)


def _policy(**periods: int) -> RetentionPolicy:
    values = {
        "audit_days": 0,
        "deliveries_days": 0,
        "changes_days": 0,
        "signed_forms_years": 0,
        **periods,
    }
    return RetentionPolicy(**values)


async def _counts() -> dict[str, int]:
    return {
        "roll_mark": await RollMark.count(),
        "leave_decision": await LeaveDecisionRow.count(),
        "account_event": await AccountEvent.count(),
        "delivery": await Delivery.count(),
        "outbox": await Outbox.count(),
        "form_request": await FormRequest.count(),
        "form_response": await FormResponse.count(),
        "form_signature": await FormSignature.count(),
        "change_log": await ChangeLog.count(),
    }


# --- audit trails ------------------------------------------------------------------------


async def _mark(c: City, lesson: int, on_date: dt.date) -> int:
    at = dt.datetime.combine(on_date, dt.time(9), SCHOOL_TIMEZONE)
    row = RollMark(
        pupil=c.aino,
        lesson=lesson,
        on_date=on_date,
        status="absent",
        actor=c.teacher,
        client_id="c",
        mutation_id=1,
        device="t",
        occurred_at=at,
        received_at=at,
    )
    await row.save()
    return int(row.id)


async def _leave(c: City, from_date: dt.date, to_date: dt.date) -> int:
    at = dt.datetime.combine(from_date, dt.time(9), SCHOOL_TIMEZONE)
    common: dict[str, Any] = {
        "client_id": "c",
        "mutation_id": 1,
        "device": "t",
        "occurred_at": at,
        "received_at": at,
    }
    notice = AbsenceNotice(
        pupil=c.aino,
        kind="leave",
        from_date=from_date,
        to_date=to_date,
        reason="other",
        author=c.mother,
        decision="granted",
        decided_by=c.teacher,
        **common,
    )
    await notice.save()
    await LeaveDecisionRow(notice=notice.id, decision="granted", actor=c.teacher, **common).save()
    return int(notice.id)


async def _event(at: dt.datetime) -> int:
    row = AccountEvent(at=at, kind="signin", person=None, actor=None)
    await row.save()
    return int(row.id)


async def test_audit_trails_older_than_the_period_go_and_the_rest_stays(
    fx_db: Engine[Any], fx_city: City, fx_timetable: dict[str, int]
) -> None:
    c, lesson = fx_city, fx_timetable["5b-1"]
    now = utc_now() + dt.timedelta(days=400)  # the job runs 400 days from the suite's today
    old_day, young_day = c.today - dt.timedelta(days=40), c.today + dt.timedelta(days=100)
    old_mark = await _mark(c, lesson, old_day)
    old_leave = await _leave(c, old_day, old_day + dt.timedelta(days=2))
    # A leave that began before the cutoff but ended after it keeps its decisions.
    straddling = await _leave(c, c.today + dt.timedelta(days=30), young_day)
    old_event = await _event(utc_now() - dt.timedelta(days=40))
    young_mark = await _mark(c, lesson, young_day)
    young_event = await _event(now - dt.timedelta(days=1))
    before = await _counts()

    policy = _policy(audit_days=365)
    dry = await retain(fx_db, policy, now, dry_run=True)
    assert dry.removed == {"roll_mark": 1, "leave_decision": 1, "account_event": 1}
    assert await _counts() == before  # a dry run removes nothing
    assert await RetentionMark.count() == 0  # ... and records nothing

    done = await retain(fx_db, policy, now)
    assert done.removed == dry.removed
    marks = {r["id"] for r in await RollMark.select(RollMark.id)}
    assert old_mark not in marks
    assert young_mark in marks
    decided = {r["notice"] for r in await LeaveDecisionRow.select(LeaveDecisionRow.notice)}
    assert decided == {straddling}
    # The notices themselves (the school's record of the absence) are not audit trail.
    assert await AbsenceNotice.exists().where(AbsenceNotice.id == old_leave)
    events = {r["id"] for r in await AccountEvent.select(AccountEvent.id)}
    assert old_event not in events
    assert young_event in events

    again = await retain(fx_db, policy, now)
    assert again.total == 0
    # 0 keeps everything: nothing is even looked at.
    assert (await retain(fx_db, KEEP_ALL, now + dt.timedelta(days=10_000))).removed == {}


async def test_the_newest_row_of_a_table_stays(fx_db: Engine[Any]) -> None:
    """SQLite would hand the newest id out again; the live stream watches events by id."""
    only = await _event(utc_now() - dt.timedelta(days=4000))
    report = await retain(fx_db, _policy(audit_days=365), utc_now())
    assert report.removed["account_event"] == 0
    assert [r["id"] for r in await AccountEvent.select(AccountEvent.id)] == [only]


async def test_rows_go_in_batches_with_progress(fx_db: Engine[Any]) -> None:
    old = [await _event(utc_now() - dt.timedelta(days=900 - i)) for i in range(5)]
    await _event(utc_now())
    seen: list[tuple[str, int]] = []

    def progress(table: str, done: int) -> None:
        seen.append((table, done))

    report = await retain(fx_db, _policy(audit_days=365), utc_now(), progress=progress, batch=2)
    assert report.removed["account_event"] == 5
    assert seen == [("account_event", 2), ("account_event", 4), ("account_event", 5)]
    left = [r["id"] for r in await AccountEvent.select(AccountEvent.id)]
    assert not set(old) & set(left)
    assert len(left) == 1


# --- deliveries ----------------------------------------------------------------------------


async def _outbox(created: dt.datetime, *, done: bool) -> int:
    row = Outbox(
        kind="bulletin",
        item_id=1,
        created_at=created,
        expires_at=created + dt.timedelta(days=1),
        done_at=created if done else None,
    )
    await row.save()
    return int(row.id)


async def _delivery(key: str, outbox: int | None, status: str, at: dt.datetime) -> int:
    row = Delivery(
        key=key,
        outbox=outbox,
        person=1,
        channel="webpush",
        status=status,
        not_before=at,
        expires_at=at + dt.timedelta(days=1),
        updated_at=at,
    )
    await row.save()
    return int(row.id)


async def test_finished_deliveries_go_and_undelivered_ones_stay(fx_db: Engine[Any]) -> None:
    now = utc_now()
    old, young = now - dt.timedelta(days=120), now - dt.timedelta(days=5)
    done_old = await _outbox(old, done=True)
    expanding = await _outbox(old, done=False)  # still being expanded (a stuck worker)
    sent_old = await _delivery("a", done_old, "sent", old)
    queued_old = await _delivery("b", done_old, "queued", old)
    digest_waiting = await _delivery("c", None, "digest", old)
    of_expanding = await _delivery("d", expanding, "sent", old)
    gone_old = await _delivery("e", None, "gone", old)
    emptied = await _outbox(old, done=True)
    young_outbox = await _outbox(young, done=True)
    young_sent = await _delivery("f", young_outbox, "sent", young)
    before = await _counts()

    policy = _policy(deliveries_days=90)
    dry = await retain(fx_db, policy, now, dry_run=True)
    assert dry.removed == {"delivery": 2, "outbox": 1}
    assert await _counts() == before

    done = await retain(fx_db, policy, now)
    # The queued row keeps its outbox entry; the entry with nothing left goes after its rows.
    assert done.removed == {"delivery": 2, "outbox": 1}
    left = {r["id"] for r in await Delivery.select(Delivery.id)}
    assert left == {queued_old, digest_waiting, of_expanding, young_sent}
    assert sent_old not in left
    assert gone_old not in left
    entries = {r["id"] for r in await Outbox.select(Outbox.id)}
    assert entries == {done_old, expanding, young_outbox}
    assert emptied not in entries

    assert (await retain(fx_db, policy, now)).total == 0


# --- signed forms --------------------------------------------------------------------------


async def _send_form(http: httpx.AsyncClient, c: City, due_on: dt.date) -> int:
    made = await http.post(
        "/forms/definitions",
        json={"organisation_id": c.school_a, "definition": every_kind()},
        headers=await log_in_as(http, "principal"),
    )
    assert made.status_code == 201, made.text
    teacher = await device(http, "teacher")
    sent = await change(
        teacher,
        "form.request",
        definition_id=int(made.json()["id"]),
        group_id=c.class_5b,
        due_on=due_on,
    )
    assert sent["status"] == "applied", sent
    newest = await FormRequest.select(FormRequest.id).order_by(FormRequest.id, ascending=False)
    return int(newest[0]["id"])


async def test_closed_forms_leave_through_the_write_path_and_devices_follow(
    fx_db: Engine[Any], fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    c = fx_city
    closed = await _send_form(fx_client, c, c.today + dt.timedelta(days=7))
    mother = await device(fx_client, "mother")
    answer = {"request_id": closed, "pupil_id": c.aino, "definition_version": 1, "answers": GOOD}
    assert (await change(mother, "form.submit", **answer))["status"] == "applied"
    assert (await change(mother, "form.sign", **answer))["status"] == "applied"
    # Still open when the job runs: due after the cutoff, although sent as long ago.
    still_open = await _send_form(fx_client, c, c.today + dt.timedelta(days=400))
    await mother.sync()
    assert set(records(mother, "form_request")) == {closed, still_open}
    responses = {r["request_id"]: i for i, r in records(mother, "form_response").items()}
    teacher = await device(fx_client, "teacher")
    await teacher.sync()
    before = await _counts()

    now = utc_now() + dt.timedelta(days=6 * 365 + 30)
    policy = _policy(signed_forms_years=6)
    dry = await retain(fx_db, policy, now, dry_run=True)
    pupils = await FormResponse.count().where(FormResponse.request == closed)
    assert dry.removed == {"form_request": 1, "form_response": pupils, "form_signature": 1}
    assert await _counts() == before

    done = await retain(fx_db, policy, now, form_batch=1)
    assert done.removed == dry.removed
    assert [r["id"] for r in await FormRequest.select(FormRequest.id)] == [still_open]
    assert not await FormResponse.exists().where(FormResponse.request == closed)
    assert await FormSignature.count() == 0
    # Devices that held the records drop them on their next pull; the open form stays, and
    # what they hold is what a new device receives.
    await mother.sync()
    assert set(records(mother, "form_request")) == {still_open}
    assert set(records(mother, "form_response")) == {responses[still_open]}
    await teacher.sync()
    assert set(records(teacher, "form_request")) == {still_open}
    for who, synced in (("mother", mother), ("teacher", teacher)):
        fresh = await device(fx_client, who)
        await fresh.sync()
        assert fresh.store.records() == synced.store.records()

    assert (await retain(fx_db, policy, now)).total == 0


async def test_a_recent_act_keeps_an_old_form(
    fx_db: Engine[Any], fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    c = fx_city
    request = await _send_form(fx_client, c, c.today + dt.timedelta(days=7))
    now = utc_now() + dt.timedelta(days=3 * 365)
    # A signature voided a year before the job runs (answers changed late): the form stays.
    (response,) = await FormResponse.select(FormResponse.id).where(
        (FormResponse.request == request) & (FormResponse.pupil == c.aino)
    )
    await FormSignature(
        response=response["id"],
        signer=c.mother,
        signed_at=utc_now(),
        received_at=utc_now(),
        device="t",
        client_id="c",
        mutation_id=1,
        answers_hash="0" * 64,
        voided_at=now - dt.timedelta(days=365),
    ).save()
    report = await retain(fx_db, _policy(signed_forms_years=2), now)
    assert report.removed == {"form_request": 0, "form_response": 0, "form_signature": 0}
    assert await FormRequest.exists().where(FormRequest.id == request)


# --- change log ----------------------------------------------------------------------------


async def _write_group(engine: Engine[Any], record_id: int, keep: bool) -> None:
    record = GroupRecord(
        id=record_id, v=0, name="1A", kind=GroupKind.HOME_CLASS, school_id=1, school_name="S"
    )
    async with write_transaction(engine):
        await write_records(
            engine,
            [
                RecordWrite(
                    "group",
                    record_id,
                    record if keep else None,
                    frozenset({"group:1"}) if keep else frozenset(),
                )
            ],
        )


async def test_old_deletions_leave_the_change_log_and_a_client_behind_starts_afresh(
    fx_db: Engine[Any],
) -> None:
    store = SqlPullStore()
    now = utc_now()
    await _write_group(fx_db, 1, keep=True)
    await _write_group(fx_db, 2, keep=True)
    behind = await pull(store, readable={"group:1"}, positions=None, limit=100)
    await _write_group(fx_db, 1, keep=False)  # the deletion that will age out
    policy = _policy(changes_days=180)
    # The first run records where the log stands today; nothing is old enough yet.
    assert (await retain(fx_db, policy, now)).removed == {"change_log": 0}
    await _write_group(fx_db, 3, keep=True)
    await _write_group(fx_db, 3, keep=False)  # a deletion made after today's mark

    later = now + dt.timedelta(days=181)
    dry = await retain(fx_db, policy, later, dry_run=True)
    assert dry.removed == {"change_log": 1}
    rows = await ChangeLog.count()
    done = await retain(fx_db, policy, later)
    assert done.removed == {"change_log": 1}
    # The deletion and the change it superseded (group 1's first state) are gone.
    assert await ChangeLog.count() == rows - 2
    tombstones = await ChangeLog.select(ChangeLog.record_id).where(ChangeLog.data.is_null())
    assert [r["record_id"] for r in tombstones] == [3]  # the young deletion stays
    (state,) = await PartitionState.select(PartitionState.horizon)
    assert state["horizon"] > 0

    # The client that was behind the deletion is sent the partition afresh: group 2 only.
    answer = await pull(store, readable={"group:1"}, positions=behind.positions, limit=100)
    assert answer.added == ["group:1"]
    current = {e.record_id for e in answer.entries if e.data is not None}
    assert current == {2}
    assert (await retain(fx_db, policy, later)).removed == {"change_log": 0}


# --- the daily run -------------------------------------------------------------------------


def _helsinki(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), SCHOOL_TIMEZONE)


async def test_the_daily_run_runs_once_a_day_from_three_in_one_worker_of_many(
    fx_db: Engine[Any],
) -> None:
    policy = _policy(audit_days=365)
    first, second = DailyRetention(fx_db, policy), DailyRetention(fx_db, policy)
    day = dt.date(2026, 11, 25)
    for _ in range(3):  # old enough at every run below; the newest event stays
        await _event(_helsinki(day, 12) - dt.timedelta(days=800))
    await _event(_helsinki(day, 12))
    assert await first.run_if_due(_helsinki(day, 2, 59)) is None  # not yet
    assert await AccountEvent.count() == 4
    report = await first.run_if_due(_helsinki(day, 3, 0))
    assert report is not None
    assert report.removed["account_event"] == 3
    # Another worker (or the same one again) the same day: already claimed.
    assert await second.run_if_due(_helsinki(day, 3, 1)) is None
    assert await first.run_if_due(_helsinki(day, 23, 59)) is None
    # The next day, whichever worker looks first runs it.
    await _event(_helsinki(day, 12) - dt.timedelta(days=800))
    await _event(_helsinki(day, 13))
    report = await second.run_if_due(_helsinki(day + dt.timedelta(days=1), 9, 30))
    assert report is not None
    assert report.removed["account_event"] == 1
    assert await first.run_if_due(_helsinki(day + dt.timedelta(days=1), 10)) is None
    claimed = await RetentionMark.select(RetentionMark.day).where(
        RetentionMark.daily_claimed_at.is_not_null()
    )
    assert sorted(r["day"] for r in claimed) == [day, day + dt.timedelta(days=1)]


# --- reppu retain and the worker -------------------------------------------------------------


def test_reppu_retain_counts_in_a_dry_run_then_removes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from server.cli import main

    database = tmp_path / "retain.sqlite3"
    monkeypatch.setenv("REPPU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REPPU_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("REPPU_RETAIN_AUDIT_DAYS", "365")
    assert main(["migrate"]) == 0
    old = str(utc_now() - dt.timedelta(days=800))
    with sqlite3.connect(database) as conn:
        for at in (old, old, str(utc_now())):
            conn.execute(
                "INSERT INTO account_event (at, kind, provider, address, detail) "
                "VALUES (?, 'signin', '', '', '')",
                (at,),
            )
    capsys.readouterr()

    def rows(table: str) -> int:
        with sqlite3.connect(database) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608

    assert main(["retain", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Would remove (dry run):" in out
    assert re.search(r"account_event +2\n", out)
    assert (rows("account_event"), rows("retention_mark")) == (3, 0)

    assert main(["retain"]) == 0
    captured = capsys.readouterr()
    assert re.search(r"account_event +2\n", captured.out)
    assert "account_event: 2 removed so far" in captured.err  # progress, batch by batch
    assert (rows("account_event"), rows("retention_mark")) == (1, 1)
    assert main(["retain"]) == 0
    assert re.search(r"account_event +0\n", capsys.readouterr().out)


async def test_every_worker_carries_the_daily_run_with_the_settings(
    fx_db: Engine[Any], fx_settings: Settings
) -> None:
    worker = Worker(fx_db, fx_settings)
    try:
        assert worker.retention.policy == RetentionPolicy.from_settings(fx_settings)
        assert worker.retention.at == dt.time(3, 0)
    finally:
        await worker.push.close()
