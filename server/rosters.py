"""Rosters: each group's pupils today, synced to its teachers for roll call offline.

A roster is one record per group (``roster``, the group's id) in the group's staff
partition (``group-staff:<id>``), which the policy gives to the group's teachers. Pupils
join and leave groups by dated memberships, so a roster changes on the days memberships
start or end: :func:`roll_rosters` rewrites those (and any group that has no roster yet);
the delivery worker runs it once a day, beside the lesson changes' window. Whoever writes
memberships (the demo loader, an import) should call :func:`roster_writes` for the groups
it touched, in the same transaction.

A roster also goes to the inboxes of the group's substitutes named by lesson changes in the
sync window who may still cover them today (``server/cover.py``), so a substitute takes the
roll call offline too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from piccolo.engine.base import Engine

from schemas.absences import RosterPupil, RosterRecord
from schemas.core import MembershipRole, PartitionKind
from server.access import marks
from server.clock import school_today
from server.cover import inboxes, substitutes
from server.db.engine import write_transaction
from server.db.tables import Membership, SchoolGroup
from server.sync_store import RecordWrite, write_records

ROLL_BATCH = 200
_PUPILS = (
    'SELECT m."group" AS group_id, p.id, p.given_name, p.family_name FROM membership m '
    "JOIN person p ON p.id = m.person WHERE m.role = {{}} AND m.valid_from <= {{}} "
    "AND (m.valid_to IS NULL OR m.valid_to >= {{}}) {where}"
    'ORDER BY m."group", p.family_name, p.given_name, p.id'
)
"""``where`` is empty or a list of bound-parameter placeholders."""


async def roster_writes(
    group_ids: Iterable[int] | None = None, today: dt.date | None = None
) -> list[RecordWrite]:
    """The rosters of ``group_ids`` (every group if None) as they stand on ``today``."""
    today = today or school_today()
    wanted = None if group_ids is None else sorted(set(group_ids))
    if wanted == []:
        return []
    where = "" if wanted is None else f'AND m."group" IN ({marks(len(wanted))}) '
    rows = await Membership.raw(
        _PUPILS.format(where=where),
        MembershipRole.PUPIL.value,
        today,
        today,
        *(wanted or []),
    )
    pupils: dict[int, list[RosterPupil]] = {}
    for r in rows:
        pupils.setdefault(r["group_id"], []).append(
            RosterPupil(id=r["id"], name=f"{r['given_name']} {r['family_name']}")
        )
    groups = wanted
    if groups is None:
        groups = [int(g["id"]) for g in await SchoolGroup.select(SchoolGroup.id)]
    _, subs = await substitutes(today, group_ids=wanted)
    return [
        RecordWrite(
            "roster",
            group,
            RosterRecord(id=group, v=0, pupils=pupils.get(group, [])),
            frozenset({f"{PartitionKind.GROUP_STAFF.value}:{group}"})
            | inboxes(subs.get(group, set())),
        )
        for group in groups
    ]


async def _groups_to_roll(today: dt.date) -> list[int]:
    """Groups whose pupils changed today (a membership starting today or ended yesterday),
    and groups without a roster record yet."""
    yesterday = today - dt.timedelta(days=1)
    rows: list[dict[str, Any]] = await Membership.raw(
        'SELECT DISTINCT m."group" AS group_id FROM membership m WHERE m.role = {} '
        "AND (m.valid_from = {} OR m.valid_to = {}) "
        "UNION SELECT g.id AS group_id FROM school_group g LEFT JOIN sync_record s "
        "ON s.record_type = 'roster' AND s.record_id = g.id WHERE s.id IS NULL",
        MembershipRole.PUPIL.value,
        today,
        yesterday,
    )
    return sorted({int(r["group_id"]) for r in rows})


async def roll_rosters(engine: Engine[Any], today: dt.date | None = None) -> int:
    """Rewrite the rosters that changed today; returns how many were written."""
    today = today or school_today()
    groups = await _groups_to_roll(today)
    for first in range(0, len(groups), ROLL_BATCH):
        async with write_transaction(engine):
            await write_records(
                engine, await roster_writes(groups[first : first + ROLL_BATCH], today)
            )
    return len(groups)
