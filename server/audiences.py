"""Where messages and bulletins live: the partitions that hold them.

Both the synced records (``server/messaging.py``) and the fan-out's policy check
(``server/fanout.py``) ask here, so that who may read an item and who is notified of it can
never drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from schemas.core import PartitionKind
from schemas.messages import Audience, AudienceRole


def inbox(person_id: int) -> str:
    return f"{PartitionKind.INBOX.value}:{person_id}"


def staff_only(roles: Iterable[str]) -> bool:
    return set(roles) == {AudienceRole.STAFF.value}


_KINDS = {
    # audience: (for everyone, for its adults: guardians and staff, for its staff alone)
    Audience.GROUP: (PartitionKind.GROUP, PartitionKind.GROUP_GUARDIANS, PartitionKind.GROUP_STAFF),
    Audience.SCHOOL: (
        PartitionKind.SCHOOL,
        PartitionKind.SCHOOL_GUARDIANS,
        PartitionKind.SCHOOL_STAFF,
    ),
    Audience.MUNICIPALITY: (
        PartitionKind.MUNICIPALITY,
        PartitionKind.MUNICIPALITY_GUARDIANS,
        None,  # refused when sent (docs/messages.md)
    ),
}


def bulletin_partitions(row: dict[str, Any], people: Iterable[int]) -> frozenset[str]:
    """Where a bulletin lives: the named people's inboxes and the author's; or its community's
    partition, narrowed to the community's guardians and staff when it is not for pupils, and
    to its staff when it is for staff alone."""
    audience = Audience(row["audience"])
    if audience == Audience.PEOPLE:
        return frozenset({inbox(p) for p in people} | {inbox(row["author"])})
    roles = set(row["roles"].split())
    everyone, adults, staff = _KINDS[audience]
    if staff is not None and staff_only(roles):
        kind = staff
    elif AudienceRole.PUPILS.value in roles:
        kind = everyone
    else:
        kind = adults
    key = row["group"] if audience == Audience.GROUP else row["organisation"]
    return frozenset({f"{kind.value}:{key}"})
