"""Convergence over the real stack: whatever happens, a device that syncs ends up holding
exactly what a fresh device of the same person receives (zulip's "initial state plus
applied events equals state fetched afresh").

Several devices of different roles; random lesson changes and restorations, a pupil moving
class and back, a guardianship ending and starting again, compaction, random page sizes,
random offline periods and interrupted syncs; runs on SQLite and on PostgreSQL, with a fixed
set of seeds so that a failure can be replayed.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import httpx
import pytest
from piccolo.engine.base import Engine

from server.compaction import compact
from server.db.tables import Guardianship, Membership
from tests.city import City
from tests.devices import device, next_weekday

PEOPLE = ("aino", "eero", "olli", "mother", "father", "teacher", "principal")
STEPS = 60


async def _toggle_class(c: City, moved: bool) -> bool:
    """Olli leaves 5A for 5B today, or comes back."""
    yesterday = c.today - dt.timedelta(days=1)
    await Membership.delete().where(Membership.person == c.olli)
    old, new = (c.class_5a, c.class_5b) if not moved else (c.class_5b, c.class_5a)
    await Membership.insert(
        Membership(
            group=old,
            person=c.olli,
            role="pupil",
            valid_from=c.today - dt.timedelta(90),
            valid_to=yesterday,
        ),
        Membership(group=new, person=c.olli, role="pupil", valid_from=c.today),
    )
    return not moved


async def _toggle_custody(c: City, ended: bool) -> bool:
    """The mother's guardianship of Eero ends yesterday, or is open again."""
    end = None if ended else c.today - dt.timedelta(days=1)
    await Guardianship.update({Guardianship.valid_to: end}).where(
        (Guardianship.guardian == c.mother) & (Guardianship.pupil == c.eero)
    )
    return not ended


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
async def test_every_device_converges_to_a_fresh_copy(
    fx_db: Engine[Any],
    fx_client: httpx.AsyncClient,
    fx_city: City,
    fx_timetable: dict[str, int],
    seed: int,
) -> None:
    rng = random.Random(seed)
    c = fx_city
    devices = {
        name: await device(fx_client, name, page_limit=rng.choice([2, 5, 500])) for name in PEOPLE
    }
    teacher = await device(fx_client, "teacher")
    lessons = sorted(fx_timetable.items())
    moved = ended = False
    for _ in range(STEPS):
        action = rng.random()
        if action < 0.45:
            key, lesson = rng.choice(lessons)
            weekday = int(key.rsplit("-", 1)[1])
            day = next_weekday(c.today, weekday)  # few dates: restorations hit changes
            if rng.random() < 0.5:
                what = rng.choice([{"cancelled": True}, {"room": "B2"}, {"note": "Trip"}])
                teacher.queue(
                    "lesson.change", {"lesson_id": lesson, "on_date": day.isoformat(), **what}
                )
            else:
                teacher.queue("lesson.restore", {"lesson_id": lesson, "on_date": day.isoformat()})
            if rng.random() < 0.6:  # sometimes the teacher stays offline for a while
                await teacher.push()
        elif action < 0.55:
            moved = await _toggle_class(c, moved)
        elif action < 0.65:
            ended = await _toggle_custody(c, ended)
        elif action < 0.72:
            await compact(fx_db, keep_positions=rng.choice([0, 5, 1_000_000]))
        else:
            name = rng.choice(PEOPLE)
            if rng.random() < 0.3:
                await devices[name].pull()  # one page, then the connection drops
            else:
                await devices[name].sync()
    await teacher.push()
    for name, phone in devices.items():
        report = await phone.sync()
        fresh = await device(fx_client, name)
        await fresh.sync()
        assert phone.store.records() == fresh.store.records(), name
        assert phone.store.partitions() == fresh.store.partitions(), name
        assert report.repaired == [], name
