"""Admin over HTTP: accounts and sync health, for a city's admins (``docs/admin.md``).

No answer here carries a token, a token's hash, a password, a message or bulletin body, or a
person's contact details: a device is its id and name, a bulletin its id and title.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import msgspec

from schemas.core import Role

MAX_PEOPLE_PAGE = 500
"""The most people one page of ``GET /admin/people`` holds."""
MAX_BULLETINS = 100
"""The most bulletins one ``GET /admin/sync-health`` reports on."""


class AccountState(StrEnum):
    NONE = "none"
    """The person has no account (no password set yet, or signs in only through a provider)."""
    ACTIVE = "active"
    DISABLED = "disabled"
    """An admin disabled it: it signs in nowhere until enabled."""


class AdminPerson(msgspec.Struct):
    id: int
    given_name: str
    family_name: str
    roles: list[Role]
    """Every role the person has today, anywhere (a teacher may be a guardian too)."""
    account: AccountState
    devices: int
    """Devices signed in now: tokens neither revoked nor expired."""


class PeoplePage(msgspec.Struct):
    """``GET /admin/people``: a school's people of one role, in id order."""

    school_id: int
    role: Role
    people: list[AdminPerson]
    next_cursor: int | None = None
    """More people follow: ask again with ``cursor`` set to this."""


class Device(msgspec.Struct, omit_defaults=True):
    """A signed-in device: one live token, never the token or its hash."""

    id: int
    """The token's id: ``DELETE /admin/people/{person}/devices/{id}`` signs it out."""
    name: str
    """The name the device gave when it signed in."""
    created_at: dt.datetime
    expires_at: dt.datetime
    provider: str | None = None
    """The sign-in provider the token came from; absent for a password or activation code."""


class Devices(msgspec.Struct):
    person_id: int
    devices: list[Device]
    """Newest first."""


class OutboxLane(msgspec.Struct):
    name: str
    """``urgent``, ``normal`` (Web Push), ``apprise:urgent``, ``apprise:normal``, as
    ``/metrics`` names them; ``expand`` for outbox entries not yet expanded into deliveries."""
    depth: int
    oldest_due_seconds: float
    """How long the oldest due entry has waited; 0 when none is due."""


class BulletinDelivery(msgspec.Struct):
    """How one bulletin's notifications went. Counts of deliveries (one per device or channel
    of each recipient), but ``recipients`` and ``unreached`` count people."""

    bulletin_id: int
    title: str
    organisation_id: int
    sent_at: dt.datetime
    expanded: bool
    """Whether its outbox entry was expanded into deliveries (False: still to do)."""
    recipients: int
    sent: int
    queued: int
    """Waiting: queued, or held for quiet hours or a digest."""
    failed: int
    """Failed for good, or expired before it could go."""
    gone: int
    """The push service said the device is gone (its subscription was deleted)."""
    unreached: int
    """Recipients no channel reached or will reach: no device, channels off, or all failed."""


class LastCompaction(msgspec.Struct):
    finished_at: dt.datetime
    superseded: int
    tombstones: int
    partitions_with_new_horizon: int
    rows_left: int


class SyncHealth(msgspec.Struct):
    """``GET /admin/sync-health``."""

    lanes: list[OutboxLane]
    bulletins: list[BulletinDelivery]
    """The most recent bulletins of the admin's cities and their schools, newest first."""
    last_compaction: LastCompaction | None = None
    """None: ``reppu compact`` has not run since compaction runs were recorded."""
