"""Messages, bulletins and read receipts. ``docs/messages.md`` explains the model."""

from __future__ import annotations

from piccolo.columns import (
    BigInt,
    Boolean,
    ForeignKey,
    OnDelete,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from server.db.tables import Organisation, Person, SchoolGroup


class Thread(Table, tablename="thread"):
    """A conversation between one staff member and one other person."""

    id = Serial(primary_key=True)

    school = ForeignKey(references=Organisation, on_delete=OnDelete.restrict, index=True)
    subject = Varchar(length=200)
    started_by = ForeignKey(references=Person, on_delete=OnDelete.restrict, index=True)
    started_at = Timestamptz()


class ThreadParticipant(Table, tablename="thread_participant"):
    id = Serial(primary_key=True)

    thread = ForeignKey(references=Thread, on_delete=OnDelete.restrict, index=True)
    person = ForeignKey(references=Person, on_delete=OnDelete.restrict, index=True)


class Message(Table, tablename="message"):
    id = Serial(primary_key=True)

    thread = ForeignKey(references=Thread, on_delete=OnDelete.restrict, index=True)
    sender = ForeignKey(references=Person, on_delete=OnDelete.restrict, index=True)
    body = Text()
    sent_at = Timestamptz()


class Bulletin(Table, tablename="bulletin"):
    """An announcement to an audience (``schemas.messages.Audience``)."""

    id = Serial(primary_key=True)

    author = ForeignKey(references=Person, on_delete=OnDelete.restrict, index=True)
    organisation = ForeignKey(references=Organisation, on_delete=OnDelete.restrict, index=True)
    """The school or municipality it speaks for."""
    group = ForeignKey(references=SchoolGroup, null=True, on_delete=OnDelete.restrict, index=True)
    audience = Varchar(length=16)
    roles = Varchar(length=40)
    """Space-separated ``AudienceRole`` values: whom it notifies."""
    title = Varchar(length=200)
    body = Text()
    urgent = Boolean(default=False)
    sent_at = Timestamptz()


class BulletinRecipient(Table, tablename="bulletin_recipient"):
    """A named recipient of a ``people`` bulletin."""

    id = Serial(primary_key=True)

    bulletin = ForeignKey(references=Bulletin, on_delete=OnDelete.restrict, index=True)
    person = ForeignKey(references=Person, on_delete=OnDelete.restrict, index=True)


class ReadReceipt(Table, tablename="read_receipt"):
    """``person`` has read an item; one row per person and item."""

    id = Serial(primary_key=True)

    person = ForeignKey(references=Person, on_delete=OnDelete.restrict, index=False)
    item_type = Varchar(length=16)
    item_id = BigInt()
    read_at = Timestamptz()


MESSAGE_TABLES: tuple[type[Table], ...] = (
    Thread,
    ThreadParticipant,
    Message,
    Bulletin,
    BulletinRecipient,
    ReadReceipt,
)
