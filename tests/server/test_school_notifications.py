"""Notifications that absences and forms raise: an unexplained absence today tells the
pupil's guardians once, and a form due tomorrow reminds the custodians it still needs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from piccolo.engine.base import Engine

from server.db.notify_tables import Outbox
from server.settings import Settings
from tests.conftest import log_in_as
from tests.devices import change, device
from tests.notify_world import PUSH_ORIGIN, make_worker, pushes, subscribed_device, time_passes
from tests.push_service import PushService
from tests.server.test_absences import RawDevice, School, _lesson, fx_school
from tests.server.test_forms import _define

__all__ = ["fx_school"]


@pytest.fixture
def fx_push() -> PushService:
    return PushService(PUSH_ORIGIN)


async def _deliver(engine: Engine[Any], settings: Settings, service: PushService) -> None:
    """Run the worker until nothing is left, quiet hours or not."""
    await make_worker(engine, settings, service).drain()
    await time_passes()
    await make_worker(engine, settings, service).drain()


async def test_an_unexplained_absence_tells_the_guardians_once_a_day(
    fx_client: httpx.AsyncClient,
    fx_school: School,
    fx_db: Engine[Any],
    fx_settings: Settings,
    fx_push: PushService,
) -> None:
    s, c = fx_school, fx_school.city
    _, mother = await subscribed_device(fx_client, fx_push, "mother")
    _, father = await subscribed_device(fx_client, fx_push, "father")
    _, other_family = await subscribed_device(fx_client, fx_push, "olli_parent")
    _, teacher_phone = await subscribed_device(fx_client, fx_push, "teacher")
    second_lesson = await _lesson(c.class_5b, c.teacher, s.today.isoweekday(), s.today)
    teacher = await RawDevice.log_in(fx_client, "teacher")
    for lesson in (s.lesson_5b, second_lesson):
        result = await teacher.do(
            "attendance.mark", lesson_id=lesson, on_date=s.today, pupil_id=c.aino, status="absent"
        )
        assert result["status"] == "applied", result
    # Each reads it in their language: the mother as the roster says (Finnish), the father
    # in the Swedish he chose (PUT /me/language).
    chosen = await fx_client.put(
        "/me/language", json={"language": "sv"}, headers=await log_in_as(fx_client, "father")
    )
    assert chosen.status_code == 200, chosen.text
    await _deliver(fx_db, fx_settings, fx_push)
    for token, title, body in (
        (mother, "Poissaolo", "Aino merkittiin tänään poissaolevaksi"),
        (father, "Frånvaro", "Aino markerades frånvarande i dag"),  # information only: told too
    ):
        (payload,) = pushes(fx_push, token)
        assert payload["kind"] == "absence"
        assert payload["title"] == title
        assert payload["body"].startswith(body)
        assert payload["pull"] == 1
    assert pushes(fx_push, other_family) == []
    assert pushes(fx_push, teacher_phone) == []


async def test_no_word_when_the_absence_is_corrected_or_was_reported(
    fx_client: httpx.AsyncClient,
    fx_school: School,
    fx_db: Engine[Any],
    fx_settings: Settings,
    fx_push: PushService,
) -> None:
    s, c = fx_school, fx_school.city
    _, mother = await subscribed_device(fx_client, fx_push, "mother")
    _, olli_parent = await subscribed_device(fx_client, fx_push, "olli_parent")
    teacher = await RawDevice.log_in(fx_client, "teacher")
    aino = {"lesson_id": s.lesson_5b, "on_date": s.today, "pupil_id": c.aino}
    await teacher.do("attendance.mark", status="absent", **aino)
    await teacher.do("attendance.mark", status="present", **aino)  # she was at the nurse's
    parent = await RawDevice.log_in(fx_client, "olli_parent")
    await parent.do(
        "absence.report", pupil_id=c.olli, from_date=s.today, to_date=s.today, reason="illness"
    )
    olli = {"lesson_id": s.lesson_5a, "on_date": s.today, "pupil_id": c.olli}
    assert (await teacher.do("attendance.mark", status="absent", **olli))["status"] == "applied"
    await _deliver(fx_db, fx_settings, fx_push)
    assert pushes(fx_push, mother) == []
    assert pushes(fx_push, olli_parent) == []
    assert await Outbox.count() == 1  # Aino's, dropped when it came to be sent


async def test_a_form_due_tomorrow_reminds_the_custodians_who_have_not_signed(
    fx_client: httpx.AsyncClient,
    fx_school: School,
    fx_db: Engine[Any],
    fx_settings: Settings,
    fx_push: PushService,
) -> None:
    s, c = fx_school, fx_school.city
    _, mother = await subscribed_device(fx_client, fx_push, "mother")
    _, father = await subscribed_device(fx_client, fx_push, "father")
    _, olli_parent = await subscribed_device(fx_client, fx_push, "olli_parent")
    made = await _define(fx_client, "principal", c.school_a)
    assert made.status_code == 201, made.text
    teacher = await device(fx_client, "teacher")
    for due in (s.today + dt.timedelta(days=1), s.today + dt.timedelta(days=2)):
        result = await change(
            teacher,
            "form.request",
            definition_id=made.json()["id"],
            group_id=c.class_5b,
            due_on=due,
        )
        assert result["status"] == "applied", result
    await _deliver(fx_db, fx_settings, fx_push)
    (payload,) = pushes(fx_push, mother)
    assert (payload["kind"], payload["title"]) == ("form_due", "Lomakkeen määräpäivä on huomenna")
    assert pushes(fx_push, father) == []  # information only: never signs
    assert pushes(fx_push, olli_parent) == []  # Olli is in 5A
    # Another worker, another day's roll of the same day: no second reminder.
    await _deliver(fx_db, fx_settings, fx_push)
    assert len(pushes(fx_push, mother)) == 1
    assert await Outbox.count().where(Outbox.kind == "form_due") == 1


async def test_a_real_absence_after_a_corrected_one_is_still_told(
    fx_client: httpx.AsyncClient,
    fx_school: School,
    fx_db: Engine[Any],
    fx_settings: Settings,
    fx_push: PushService,
) -> None:
    s, c = fx_school, fx_school.city
    _, mother = await subscribed_device(fx_client, fx_push, "mother")
    second_lesson = await _lesson(c.class_5b, c.teacher, s.today.isoweekday(), s.today)
    teacher = await RawDevice.log_in(fx_client, "teacher")
    first = {"lesson_id": s.lesson_5b, "on_date": s.today, "pupil_id": c.aino}
    await teacher.do("attendance.mark", status="absent", **first)
    await teacher.do("attendance.mark", status="present", **first)  # a slip of the finger
    later = {"lesson_id": second_lesson, "on_date": s.today, "pupil_id": c.aino}
    assert (await teacher.do("attendance.mark", status="absent", **later))["status"] == "applied"
    await _deliver(fx_db, fx_settings, fx_push)
    (payload,) = pushes(fx_push, mother)
    assert payload["kind"] == "absence"
