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


class ChannelIn(msgspec.Struct, forbid_unknown_fields=True):
    """An apprise URL (``mailto://``, ``json://``, an SMS gateway's) for this person."""

    url: Annotated[str, msgspec.Meta(min_length=6, max_length=2000, pattern=NO_NUL)]
    label: Annotated[str, msgspec.Meta(max_length=100, pattern=NO_NUL)] = ""


class ChannelOut(msgspec.Struct):
    id: int
    scheme: str
    """The URL's scheme only (``mailto``): the rest may hold credentials and is not echoed."""
    label: str


class Preferences(msgspec.Struct, forbid_unknown_fields=True):
    """A person's notification preferences. Times are local (Europe/Helsinki)."""

    webpush: Mode = Mode.INSTANT
    apprise: Mode = Mode.INSTANT
    quiet_start: dt.time | None = dt.time(21, 0)
    """Quiet hours start; None for no quiet hours. Urgent bulletins ignore them."""
    quiet_end: dt.time | None = dt.time(7, 0)
    digest_at: dt.time = dt.time(18, 0)
