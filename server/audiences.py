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


def bulletin_partitions(row: dict[str, Any], people: Iterable[int]) -> frozenset[str]:
    """Where a bulletin lives: its community's partition (its staff partition when it is for
    staff only), or the named people's inboxes and the author's."""
    audience = Audience(row["audience"])
    for_staff = staff_only(row["roles"].split())
    if audience == Audience.GROUP:
        kind = PartitionKind.GROUP_STAFF if for_staff else PartitionKind.GROUP
        return frozenset({f"{kind.value}:{row['group']}"})
    if audience == Audience.SCHOOL:
        kind = PartitionKind.SCHOOL_STAFF if for_staff else PartitionKind.SCHOOL
        return frozenset({f"{kind.value}:{row['organisation']}"})
    if audience == Audience.MUNICIPALITY:
        return frozenset({f"{PartitionKind.MUNICIPALITY.value}:{row['organisation']}"})
    return frozenset({inbox(p) for p in people} | {inbox(row["author"])})
