"""Every admin act is audited (issue 19), reads of people's data too: who listed a school's
people or a person's devices, and when, is an ``account_event`` with the admin as ``actor``.
Sync health is not recorded: it holds counts and bulletin titles, no one's personal data."""

from __future__ import annotations

from typing import Any

from piccolo.engine.base import Engine

from server.db.engine import write_transaction
from server.signin.audit import EventKind, record_event


async def record_people_listed(
    engine: Engine[Any], *, actor: int, school: int, role: str, cursor: int
) -> None:
    async with write_transaction(engine):
        await record_event(
            EventKind.ADMIN_PEOPLE_LISTED,
            actor=actor,
            detail=f"school {school}, role {role}, after {cursor}",
        )


async def record_devices_listed(engine: Engine[Any], *, actor: int, person: int) -> None:
    async with write_transaction(engine):
        await record_event(EventKind.ADMIN_DEVICES_LISTED, person=person, actor=actor)
