"""Push subscriptions, channels and notification preferences, as the API speaks them."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Literal

import msgspec

from schemas.core import NO_NUL

B64URL = r"^[A-Za-z0-9_-]+={0,2}$"


class PushKind(StrEnum):
    """What a Web Push is about; decides its TTL and Urgency (``docs/notifications.md``)."""

    URGENT = "urgent"
    BULLETIN = "bulletin"
    MESSAGE = "message"
    LESSON_CHANGE = "lesson_change"
    DIGEST = "digest"
    ABSENCE = "absence"
    """A child was marked absent today and nothing explains it."""
    FORM_DUE = "form_due"
    """A form about a child is due tomorrow and still needs this guardian."""


class PushPayload(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The decrypted body of every Web Push Reppu sends; the service worker reads it.

    ``pull`` (always 1): pull now. ``kind``: what it is about. ``id``: the item, when it is
    about one. ``count``: how many items a digest gathers. ``title``, ``body``: the text to
    show, left out when empty (a push resent shorter after a 413 carries ids only: show a
    generic notice). New fields get defaults, so older service workers keep working.
    """

    # No default, so omit_defaults never leaves it out: it is the one field every client needs.
    pull: Literal[1]
    kind: PushKind
    id: int | None = None
    count: int | None = None
    title: str = ""
    body: str = ""


class Mode(StrEnum):
    """How a person wants a channel's non-urgent notifications."""

    INSTANT = "instant"
    DIGEST = "digest"
    """Gathered into one message a day per household (at ``digest_at``)."""
    OFF = "off"


class SubscriptionKeys(msgspec.Struct):
    p256dh: Annotated[str, msgspec.Meta(min_length=80, max_length=100, pattern=B64URL)]
    """The browser's P-256 public key (65 bytes, base64url)."""
    auth: Annotated[str, msgspec.Meta(min_length=16, max_length=30, pattern=B64URL)]
    """The browser's 16-byte auth secret (base64url)."""


class SubscriptionIn(msgspec.Struct):
    """What the browser's ``PushSubscription.toJSON()`` gives; unknown fields are ignored."""

    endpoint: Annotated[str, msgspec.Meta(min_length=10, max_length=1000, pattern=NO_NUL)]
    keys: SubscriptionKeys
    expirationTime: int | None = None  # noqa: N815 (the browser's spelling)


class SubscriptionOut(msgspec.Struct):
    id: int
    endpoint_origin: str
    """Only the push service's origin: the full endpoint is a capability and is not echoed."""
    created_at: dt.datetime


class VapidKey(msgspec.Struct):
    public_key: str
    """The application server key for ``pushManager.subscribe`` (base64url, uncompressed)."""


class ChannelKind(StrEnum):
    """What a person may be reached by besides the app. The server sends through the
    operator's mail server or SMS gateway; a person never names a host."""

    EMAIL = "email"
    SMS = "sms"


class ChannelIn(msgspec.Struct, forbid_unknown_fields=True):
    """An e-mail address or a phone number of this person's (``docs/notifications.md``).

    Only the address: no URL, no host, no port, no credentials. An e-mail address is one plain
    ``name@domain``; a phone number is E.164 (``+358401234567``).
    """

    kind: ChannelKind
    address: Annotated[str, msgspec.Meta(min_length=3, max_length=254, pattern=NO_NUL)]
    label: Annotated[str, msgspec.Meta(max_length=100, pattern=NO_NUL)] = ""


class ChannelOut(msgspec.Struct):
    id: int
    scheme: str
    """``mailto`` for e-mail, ``sms`` for a phone number: kept for apps older than ``kind``."""
    label: str
    kind: ChannelKind = ChannelKind.EMAIL
    address: str = ""
    """The caller's own address or number, as stored (an e-mail domain in lower case)."""


LocalTime = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
        description="A local time in Helsinki, HH:MM (HH:MM:SS is taken, its seconds "
        "dropped); no offset.",
        examples=["21:00"],
    ),
]
"""A wall-clock time of day in Europe/Helsinki as the API speaks it: ``HH:MM``."""


class Preferences(msgspec.Struct, forbid_unknown_fields=True):
    """A person's notification preferences. Times are local (Europe/Helsinki), ``HH:MM``:
    the server answers ``"21:00"`` and takes ``"21:00"`` or ``"21:00:00"`` (seconds dropped)."""

    webpush: Mode = Mode.INSTANT
    apprise: Mode = Mode.INSTANT
    quiet_start: LocalTime | None = "21:00"
    """Quiet hours start; None for no quiet hours. Urgent bulletins ignore them."""
    quiet_end: LocalTime | None = "07:00"
    digest_at: LocalTime = "18:00"


class NativePlatform(StrEnum):
    """Where a phone app's notifications go through."""

    FCM = "fcm"
    """Firebase Cloud Messaging (Android)."""
    APNS = "apns"
    """The Apple Push Notification service (iOS)."""


class DeviceIn(msgspec.Struct, forbid_unknown_fields=True):
    """A phone app's registration for native push (``POST /push/devices``)."""

    platform: NativePlatform
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
    """The token the platform gave the app (checked per platform: ``push.invalid_device_token``)."""
    app_id: Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=NO_NUL)]
    """The Android package or the iOS bundle id."""


class DeviceOut(msgspec.Struct):
    id: int
    platform: NativePlatform
    app_id: str
    created_at: dt.datetime
