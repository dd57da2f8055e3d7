"""Messages, bulletins and read receipts: their synced records and their mutations' args.

``docs/messages.md`` explains the model. In short:

- A **thread** is a conversation between one staff member and one person (a guardian, or a
  pupil). A staff member writing to a class's guardians starts one thread per guardian, so a
  reply goes to the staff member and never to the other families.
- A **bulletin** is a one-way announcement from a school or the city to an audience. It is
  synced to the partition of its community (a group, a school, the city); who is *notified*
  is narrowed by ``roles`` (guardians, pupils, staff). Named-people bulletins go to each
  person's inbox instead.
- A **receipt** says the caller has read a message or a bulletin. It syncs to the reader's
  own devices; staff see who has read through ``GET /bulletins/{id}/status``.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

import msgspec

from schemas.core import NO_NUL, Id

MAX_BODY_CHARS = 10_000
MAX_SUBJECT_CHARS = 200
MAX_RECIPIENTS = 1_000
"""The most named recipients one message or bulletin may list (use a group audience above)."""


class Audience(StrEnum):
    """Where a bulletin lives (which partition), and so who may read it. A community bulletin
    whose ``roles`` leave out pupils lives in the community's ``*-guardians`` partition (its
    guardians and staff read it, its pupils do not); one for staff alone in its staff one."""

    GROUP = "group"
    """A group's community: its pupils, their guardians and its teachers."""
    SCHOOL = "school"
    """A school's community: its pupils, their guardians and its staff."""
    MUNICIPALITY = "municipality"
    """The whole city: everyone with a current tie to one of its schools."""
    PEOPLE = "people"
    """Named people: each one's inbox."""


class AudienceRole(StrEnum):
    """Whom of the audience a bulletin notifies."""

    GUARDIANS = "guardians"
    PUPILS = "pupils"
    STAFF = "staff"


class ItemType(StrEnum):
    MESSAGE = "message"
    BULLETIN = "bulletin"


class Participant(msgspec.Struct):
    id: int
    name: str
    """Given and family name; never contact details."""


class ThreadRecord(msgspec.Struct, tag_field="type", tag="thread", omit_defaults=True):
    """A conversation; synced to the inbox of each participant."""

    id: int
    v: int
    subject: str
    organisation_id: int
    """The school (or city) the conversation belongs to."""
    participants: list[Participant]
    started_at: dt.datetime


class MessageRecord(msgspec.Struct, tag_field="type", tag="message", omit_defaults=True):
    """One message of a thread; synced to the inbox of each participant."""

    id: int
    v: int
    thread_id: int
    sender_id: int
    sender_name: str
    body: str
    sent_at: dt.datetime


class BulletinRecord(msgspec.Struct, tag_field="type", tag="bulletin", omit_defaults=True):
    """An announcement, synced to its community's partition (or named people's inboxes)."""

    id: int
    v: int
    title: str
    body: str
    author_id: int
    author_name: str
    organisation_id: int
    audience: Audience
    roles: list[AudienceRole]
    sent_at: dt.datetime
    urgent: bool = False
    group_id: int | None = None


class ReceiptRecord(msgspec.Struct, tag_field="type", tag="receipt", omit_defaults=True):
    """The caller has read an item; synced to the reader's own inbox."""

    id: int
    v: int
    item_type: ItemType
    item_id: int
    read_at: dt.datetime


Body = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_BODY_CHARS, pattern=NO_NUL)]
Subject = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SUBJECT_CHARS, pattern=NO_NUL)]


class MessageSendArgs(msgspec.Struct, forbid_unknown_fields=True):
    """``message.send``: reply in a thread (``thread_id``) or start threads (``to``).

    Starting: staff may write to people of their schools (pupils, guardians, staff); a
    guardian may write to the staff of their children's schools. Each recipient gets a thread
    of their own with the sender.
    """

    body: Body
    thread_id: Id | None = None
    """A reply: the thread it goes to (then no ``to`` and no ``subject``)."""
    to: Annotated[list[Id], msgspec.Meta(max_length=MAX_RECIPIENTS)] = []
    """A new conversation: the people (ids) to start a thread with, each their own."""
    subject: Subject | None = None
    """A new conversation's subject (required with ``to``)."""


class BulletinSendArgs(msgspec.Struct, forbid_unknown_fields=True):
    """``bulletin.send``: announce to an audience.

    ``audience_id`` names the group, school or municipality; ``people`` the named persons.
    Teachers may send to their groups, principals to their schools (and their groups),
    admins to their city and its schools. Only principals and admins may mark ``urgent``.
    """

    audience: Audience
    title: Subject
    body: Body
    roles: Annotated[list[AudienceRole], msgspec.Meta(min_length=1, max_length=3)] = msgspec.field(
        default_factory=lambda: [AudienceRole.GUARDIANS]
    )
    """Who of the audience it is for (default: the guardians)."""
    audience_id: Id | None = None
    """The group, school or municipality, for those audiences."""
    people: Annotated[list[Id], msgspec.Meta(max_length=MAX_RECIPIENTS)] = []
    """The persons (ids), for the audience ``people``."""
    urgent: bool = False
    """Principals and admins only."""


class ReadArgs(msgspec.Struct, forbid_unknown_fields=True):
    """``message.read`` / ``bulletin.read``: the caller has read the item (idempotent)."""

    id: Id


class RecipientStatus(StrEnum):
    READ = "read"
    """Opened in the app (a receipt arrived)."""
    REACHED = "reached"
    """At least one channel accepted a notification."""
    PENDING = "pending"
    """Notifications are queued or waiting for quiet hours or a digest."""
    NOT_REACHED = "not_reached"
    """No channel took it: no device, every channel off, or every delivery failed. Call them."""


class RecipientReport(msgspec.Struct, omit_defaults=True):
    person_id: int
    name: str
    status: RecipientStatus
    channels: dict[str, str] = {}
    """Per channel (``webpush``, ``apprise``), the best delivery status it reached."""


class ItemStatus(StrEnum):
    EXPANDING = "expanding"
    DONE = "done"


class DeliveryReport(msgspec.Struct):
    """``GET /bulletins/{id}/status``: who was notified, who has read, whom to call."""

    bulletin_id: int
    expansion: ItemStatus
    recipients: int
    counts: dict[str, int]
    """Recipients per :class:`RecipientStatus`."""
    people: list[RecipientReport]
    """Recipients in person-id order, at most ``limit`` of them after ``after``."""
    next_after: int | None = None
    """More recipients follow: ask again with ``after`` set to this."""
