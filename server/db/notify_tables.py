"""The notification fan-out's tables: subscriptions, channels, preferences, outbox, deliveries,
and the delivery workers' heartbeats.

``docs/notifications.md`` explains how they are used; ``server/fanout.py`` writes the outbox
and the deliveries, ``server/deliver.py`` works them off.
"""

from __future__ import annotations

from piccolo.columns import (
    BigInt,
    BigSerial,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    OnDelete,
    Serial,
    Text,
    Time,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from server.db.tables import AuthToken, Person


class PushSubscription(Table, tablename="push_subscription"):
    """A device's Web Push subscription; one per device (auth token)."""

    id = Serial(primary_key=True)

    person = ForeignKey(references=Person, on_delete=OnDelete.restrict, index=True)
    device = ForeignKey(references=AuthToken, on_delete=OnDelete.restrict, index=False)
    endpoint = Varchar(length=1000)
    p256dh = Varchar(length=100)
    auth = Varchar(length=40)
    created_at = Timestamptz()


class NativeDevice(Table, tablename="native_device"):
    """A phone app's token at Firebase Cloud Messaging or the Apple Push Notification service;
    tied to the auth token it registered with, so signing out removes it."""

    id = Serial(primary_key=True)

    person = ForeignKey(references=Person, on_delete=OnDelete.restrict, index=True)
    device = ForeignKey(references=AuthToken, on_delete=OnDelete.restrict, index=True)
    platform = Varchar(length=8)
    """``fcm`` or ``apns`` (``schemas.notifications.NativePlatform``); also the delivery's
    channel."""
    token = Varchar(length=4096)
    app_id = Varchar(length=255)
    """The Android package or the iOS bundle id; one the operator configured."""
    created_at = Timestamptz()


class NotifyChannel(Table, tablename="notify_channel"):
    """A person's e-mail address or phone number. Only the address: the worker sends through
    the operator's mail server or SMS gateway (``server/channels.py``), never a stored host."""

    id = Serial(primary_key=True)

    person = ForeignKey(references=Person, on_delete=OnDelete.restrict, index=True)
    kind = Varchar(length=8, default="email")
    """``email`` or ``sms`` (``schemas.notifications.ChannelKind``)."""
    address = Text()
    """The e-mail address (domain in lower case) or the E.164 number."""
    label = Varchar(length=100, default="")
    created_at = Timestamptz()


class NotifyPreference(Table, tablename="notify_preference"):
    """A person's preferences; a person without a row has ``schemas.notifications`` defaults."""

    id = Serial(primary_key=True)

    person = ForeignKey(references=Person, on_delete=OnDelete.restrict, index=False)
    webpush = Varchar(length=8, default="instant")
    apprise = Varchar(length=8, default="instant")
    quiet_start = Time(null=True, default=None)
    quiet_end = Time(null=True, default=None)
    digest_at = Time()


class Outbox(Table, tablename="outbox"):
    """Something that must notify, written in the same transaction as the thing itself.

    A worker takes an entry with a lease, expands its audience in batches of people (through
    the access policy) into deliveries, and remembers how far it got (``expanded_to``), so a
    worker killed mid-expansion leaves the rest to the next one.
    """

    id = BigSerial(primary_key=True)

    kind = Varchar(length=20)
    item_id = BigInt()
    urgent = Boolean(default=False)
    created_at = Timestamptz()
    expires_at = Timestamptz()
    """After this, nothing is sent any more (the news is stale)."""
    expanded_to = BigInt(default=0)
    """Recipients with person ids up to this one have their deliveries."""
    lease_until = Timestamptz(null=True, default=None)
    done_at = Timestamptz(null=True, default=None)


class Delivery(Table, tablename="delivery"):
    """One notification to one recipient by one channel target, or one digest.

    ``key`` is unique: an item's delivery is ``<outbox>:<person>:<channel>:<target>``, a digest
    ``digest:<day>:<person>:<channel>:<target>``, so a retried expansion never notifies twice.
    """

    id = BigSerial(primary_key=True)

    key = Varchar(length=120)
    outbox = BigInt(null=True, default=None)
    """None for a digest."""
    person = Integer()
    channel = Varchar(length=10)
    """``webpush``, ``fcm``, ``apns``, ``apprise``, or ``none`` (the recipient has no channel:
    staff must call)."""
    target = BigInt(default=0)
    """The push subscription's, native device's or channel's id."""
    urgent = Boolean(default=False)
    status = Varchar(length=12)
    """``queued``, ``digest`` (waiting for its digest), ``digested``, ``sent``, ``failed``,
    ``gone`` (subscription removed), ``expired``, ``off`` (preference), ``unreachable``."""
    digest_day = Date(null=True, default=None)
    digest = BigInt(null=True, default=None)
    """The digest delivery this item went out in."""
    item_count = Integer(default=1)
    not_before = Timestamptz()
    expires_at = Timestamptz()
    lease_until = Timestamptz(null=True, default=None)
    claim = Varchar(length=32, null=True, default=None)
    """The claim that holds the lease: outcomes are written only under the same claim, so a
    worker whose lease ran out can never overwrite what the next worker did."""
    attempts = Integer(default=0)
    last_status = Integer(null=True, default=None)
    detail = Varchar(length=200, default="")
    updated_at = Timestamptz()


class WorkerHeartbeat(Table, tablename="worker_heartbeat"):
    """A delivery worker that runs, or ran: each beats every few seconds, so readiness and
    ``/metrics`` can tell whether one is alive (``server/worker_presence.py``)."""

    id = Varchar(length=80, primary_key=True)
    """``<host>:<pid>:<random>``, new for each start."""
    host = Varchar(length=255)
    pid = Integer()
    started_at = Timestamptz()
    beat_at = Timestamptz()


NOTIFY_TABLES: tuple[type[Table], ...] = (
    PushSubscription,
    NativeDevice,
    NotifyChannel,
    NotifyPreference,
    Outbox,
    Delivery,
    WorkerHeartbeat,
)
