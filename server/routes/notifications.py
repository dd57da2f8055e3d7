"""Push subscriptions, notification channels and preferences (the caller's own), and the
staff's delivery report of a bulletin.

Subscriptions, channels and preferences belong to the caller: every query is bound to the
caller's person (and device), so another person's are neither readable nor removable, and an
id that is not the caller's answers 404 like one that does not exist.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections import defaultdict
from typing import Annotated, Any

from cryptography.hazmat.primitives.asymmetric import ec
from litestar import Request, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, QueryParameter
from piccolo.columns import Column

from notifications.channels import normalise
from notifications.webpush import origin_of
from schemas.core import MAX_ID
from schemas.errors import ErrorCode
from schemas.messages import (
    DeliveryReport,
    ItemStatus,
    ItemType,
    RecipientReport,
    RecipientStatus,
)
from schemas.notifications import (
    ChannelIn,
    ChannelKind,
    ChannelOut,
    DeviceIn,
    DeviceOut,
    Mode,
    NativePlatform,
    Preferences,
    SubscriptionIn,
    SubscriptionOut,
    VapidKey,
)
from server.access import load_access_facts
from server.channels import channel_plugin, offers
from server.clock import school_today, utc_now
from server.db.engine import DUPLICATE, write_transaction
from server.db.message_tables import Bulletin, ReadReceipt
from server.db.notify_tables import (
    Delivery,
    NativeDevice,
    NotifyChannel,
    NotifyPreference,
    Outbox,
    PushSubscription,
)
from server.db.tables import Organisation
from server.errors import ReppuError
from server.fanout import delete_native_devices, delete_subscriptions, forget_targets
from server.identity import Principal
from server.messaging import names
from server.push_endpoints import endpoint_allowed
from server.routes.ids import PathId
from server.settings import Settings
from server.state import AppState
from sync.policy import AccessFacts, Action, SentRef, decide


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check_keys(body: SubscriptionIn) -> None:
    try:
        point = _b64(body.keys.p256dh)
        auth = _b64(body.keys.auth)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except (ValueError, binascii.Error):
        raise ReppuError(
            ErrorCode.PUSH_INVALID_KEYS, "p256dh is not a P-256 public key.", field="$.keys.p256dh"
        ) from None
    if len(point) != 65 or len(auth) != 16:
        raise ReppuError(
            ErrorCode.PUSH_INVALID_KEYS,
            "p256dh must be 65 bytes and auth 16 bytes.",
            field="$.keys",
        )


@get("/push/vapid-public-key", tags=["notifications"], summary="The key to subscribe with")
async def vapid_public_key(app_state: NamedDependency[AppState]) -> VapidKey:
    """The application server key for ``pushManager.subscribe({applicationServerKey})``."""
    return VapidKey(public_key=app_state.settings.vapid_public_key)


@post(
    "/push/subscriptions",
    tags=["notifications"],
    summary="Subscribe this device",
    error_codes=[ErrorCode.PUSH_ENDPOINT_NOT_ALLOWED, ErrorCode.PUSH_INVALID_KEYS],
)
async def subscribe(
    request: Request[Principal, Any, Any],
    data: JSONBody[SubscriptionIn],
    app_state: NamedDependency[AppState],
) -> SubscriptionOut:
    """Store the Web Push subscription of the calling device, replacing its earlier one."""
    if not endpoint_allowed(app_state.settings, data.endpoint):
        raise ReppuError(
            ErrorCode.PUSH_ENDPOINT_NOT_ALLOWED,
            "This server does not send to that push service.",
            field="$.endpoint",
        )
    _check_keys(data)
    principal = request.user
    now = utc_now()
    row = PushSubscription(
        person=principal.person_id,
        device=principal.token_id,
        endpoint=data.endpoint,
        p256dh=data.keys.p256dh,
        auth=data.keys.auth,
        created_at=now,
    )
    for attempt in range(2):
        try:
            async with write_transaction(app_state.engine):
                # One subscription per device, and one device per endpoint: a browser shared
                # by two people (or logged in twice) must not get the news of both, or twice.
                await delete_subscriptions(
                    (PushSubscription.device == principal.token_id)
                    | (PushSubscription.endpoint == data.endpoint)
                )
                await row.save()
            break
        except DUPLICATE:
            if attempt:
                raise  # pragma: no cover (two retries racing twice)
            row.id = None  # a concurrent subscribe of this device won: replace it
    return SubscriptionOut(id=int(row.id), endpoint_origin=origin_of(data.endpoint), created_at=now)


@delete("/push/subscriptions", tags=["notifications"], summary="Unsubscribe this device")
async def unsubscribe(
    request: Request[Principal, Any, Any], app_state: NamedDependency[AppState]
) -> None:
    """Forget the calling device's subscription (nothing happens if it has none)."""
    async with write_transaction(app_state.engine):
        await delete_subscriptions(PushSubscription.device == request.user.token_id)


_APNS_TOKEN = re.compile(r"(?:[0-9a-fA-F]{2}){32,100}")
"""Hex of whole bytes (Apple's tokens are 32 bytes today, up to 100 allowed for): an odd
number of digits is no byte string at all, and Apple would answer ``BadDeviceToken``."""
_FCM_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")
"""Printable ASCII without spaces: FCM's registration tokens are base64url-ish with ``:``."""


def _check_device(settings: Settings, data: DeviceIn) -> str:
    """Refuse a platform without credentials, an app not configured, or a malformed token;
    returns the token as stored (APNs' hex in lower case)."""
    if data.platform is NativePlatform.FCM:
        configured = settings.fcm.app_id if settings.fcm is not None else None
        valid = _FCM_TOKEN.fullmatch(data.token) is not None
        token = data.token
    else:
        configured = settings.apns.topic if settings.apns is not None else None
        valid = _APNS_TOKEN.fullmatch(data.token) is not None
        token = data.token.lower()
    if configured is None:
        raise ReppuError(
            ErrorCode.PUSH_NATIVE_UNAVAILABLE,
            f"This server does not send through {data.platform.value}.",
            field="$.platform",
        )
    if data.app_id != configured:
        raise ReppuError(
            ErrorCode.PUSH_UNKNOWN_APP, "This server does not send to that app.", field="$.app_id"
        )
    if not valid:
        raise ReppuError(
            ErrorCode.PUSH_INVALID_DEVICE_TOKEN,
            "FCM tokens are printable ASCII (at most 4,096 characters)."
            if data.platform is NativePlatform.FCM
            else "APNs device tokens are 64 to 200 hexadecimal digits, an even number.",
            field="$.token",
        )
    return token


@post(
    "/push/devices",
    tags=["notifications"],
    summary="Register this phone app for native push",
    error_codes=[
        ErrorCode.PUSH_NATIVE_UNAVAILABLE,
        ErrorCode.PUSH_UNKNOWN_APP,
        ErrorCode.PUSH_INVALID_DEVICE_TOKEN,
    ],
)
async def register_device(
    request: Request[Principal, Any, Any],
    data: JSONBody[DeviceIn],
    app_state: NamedDependency[AppState],
) -> DeviceOut:
    """Store the calling app's FCM or APNs token. Registering the same token again answers
    the same device; a new token (the platform rotated it) replaces this login's earlier one
    in place (same id; deliveries waiting for it go to the new token), and a token
    registered by another login (a phone handed on) moves to this one."""
    token = _check_device(app_state.settings, data)
    principal = request.user
    for attempt in range(2):
        try:
            async with write_transaction(app_state.engine):
                same = (
                    await NativeDevice.select()
                    .where(
                        (NativeDevice.platform == data.platform.value)
                        & (NativeDevice.token == token)
                        & (NativeDevice.device == principal.token_id)
                        & (NativeDevice.person == principal.person_id)
                        & (NativeDevice.app_id == data.app_id)
                    )
                    .first()
                )
                if same is not None:
                    return DeviceOut(
                        id=int(same["id"]),
                        platform=data.platform,
                        app_id=data.app_id,
                        created_at=same["created_at"],
                    )
                # One native device per login and platform, and one login per token: a phone
                # shared by two people (or logged in twice) must not get the news of both.
                mine = (
                    await NativeDevice.select(NativeDevice.id, NativeDevice.created_at)
                    .where(
                        (NativeDevice.device == principal.token_id)
                        & (NativeDevice.platform == data.platform.value)
                    )
                    .first()
                )
                held_elsewhere = (NativeDevice.platform == data.platform.value) & (
                    NativeDevice.token == token
                )
                if mine is not None:
                    held_elsewhere &= NativeDevice.id != mine["id"]
                await delete_native_devices(held_elsewhere)
                if mine is not None:
                    # The platform rotated this login's token: the same device with a new
                    # token, so what waits for it (quiet hours, a retry) goes to the new one.
                    await NativeDevice.update(
                        {
                            NativeDevice.token: token,
                            NativeDevice.app_id: data.app_id,
                            NativeDevice.person: principal.person_id,
                        }
                    ).where(NativeDevice.id == mine["id"])
                    return DeviceOut(
                        id=int(mine["id"]),
                        platform=data.platform,
                        app_id=data.app_id,
                        created_at=mine["created_at"],
                    )
                now = utc_now()
                row = NativeDevice(
                    person=principal.person_id,
                    device=principal.token_id,
                    platform=data.platform.value,
                    token=token,
                    app_id=data.app_id,
                    created_at=now,
                )
                await row.save()
            break
        except DUPLICATE:
            if attempt:
                raise  # pragma: no cover (two retries racing twice)
    return DeviceOut(id=int(row.id), platform=data.platform, app_id=data.app_id, created_at=now)


@delete("/push/devices/{device_id:int}", tags=["notifications"], summary="Unregister a device")
async def unregister_device(
    request: Request[Principal, Any, Any],
    device_id: PathId,
    app_state: NamedDependency[AppState],
) -> None:
    """Forget one of the caller's native devices (another person's answers 404, like one that
    does not exist)."""
    async with write_transaction(app_state.engine):
        mine = (NativeDevice.id == device_id) & (NativeDevice.person == request.user.person_id)
        if not await NativeDevice.exists().where(mine):
            raise ReppuError(ErrorCode.NOT_FOUND, "No such device.")
        await delete_native_devices(mine)


def _scheme(kind: str) -> str:
    return "mailto" if kind == ChannelKind.EMAIL.value else kind


@get("/me/channels", tags=["notifications"], summary="My notification channels")
async def list_channels(request: Request[Principal, Any, Any]) -> list[ChannelOut]:
    rows = (
        await NotifyChannel.select(
            NotifyChannel.id, NotifyChannel.kind, NotifyChannel.address, NotifyChannel.label
        )
        .where(NotifyChannel.person == request.user.person_id)
        .order_by(NotifyChannel.id)
    )
    return [
        ChannelOut(
            id=r["id"],
            scheme=_scheme(r["kind"]),
            label=r["label"],
            kind=ChannelKind(r["kind"]),
            address=r["address"],
        )
        for r in rows
    ]


@post(
    "/me/channels",
    tags=["notifications"],
    summary="Add an e-mail address or phone number",
    error_codes=[ErrorCode.CHANNEL_UNSUPPORTED, ErrorCode.CHANNEL_INVALID_ADDRESS],
)
async def add_channel(
    request: Request[Principal, Any, Any],
    data: JSONBody[ChannelIn],
    app_state: NamedDependency[AppState],
) -> ChannelOut:
    """Add the caller's e-mail address or phone number (E.164). The server sends through its
    operator's mail server or SMS gateway; a person never chooses where it connects."""
    settings = app_state.settings
    if not offers(settings, data.kind):
        raise ReppuError(
            ErrorCode.CHANNEL_UNSUPPORTED,
            "This server does not send e-mail."
            if data.kind is ChannelKind.EMAIL
            else "This server does not send text messages.",
            field="$.kind",
        )
    address = normalise(data.kind, data.address)
    if address is None or channel_plugin(settings, data.kind, address) is None:
        raise ReppuError(
            ErrorCode.CHANNEL_INVALID_ADDRESS,
            "Give one e-mail address (name@example.fi)."
            if data.kind is ChannelKind.EMAIL
            else "Give one phone number in international form (+358401234567).",
            field="$.address",
        )
    async with write_transaction(app_state.engine):
        row = NotifyChannel(
            person=request.user.person_id,
            kind=data.kind.value,
            address=address,
            label=data.label,
            created_at=utc_now(),
        )
        await row.save()
    return ChannelOut(
        id=int(row.id),
        scheme=_scheme(data.kind.value),
        label=data.label,
        kind=data.kind,
        address=address,
    )


@delete("/me/channels/{channel_id:int}", tags=["notifications"], summary="Remove a channel")
async def remove_channel(
    request: Request[Principal, Any, Any],
    channel_id: PathId,
    app_state: NamedDependency[AppState],
) -> None:
    async with write_transaction(app_state.engine):
        mine = (NotifyChannel.id == channel_id) & (NotifyChannel.person == request.user.person_id)
        if not await NotifyChannel.exists().where(mine):
            raise ReppuError(ErrorCode.NOT_FOUND, "No such channel.")
        await forget_targets("apprise", [channel_id])
        await NotifyChannel.delete().where(mine)


def _hh_mm(value: dt.time | None) -> str | None:
    """A stored time as the API speaks it (``HH:MM``, as ``docs/notifications.md`` says)."""
    return None if value is None else value.strftime("%H:%M")


def _time(value: str | None) -> dt.time | None:
    """``HH:MM`` or ``HH:MM:SS`` (the schema's pattern) to the minute: seconds are dropped."""
    return None if value is None else dt.time.fromisoformat(value[:5])


async def _preferences(person_id: int) -> Preferences:
    row = await NotifyPreference.select().where(NotifyPreference.person == person_id).first()
    if row is None:
        return Preferences()
    return Preferences(
        webpush=Mode(row["webpush"]),
        apprise=Mode(row["apprise"]),
        quiet_start=_hh_mm(row["quiet_start"]),
        quiet_end=_hh_mm(row["quiet_end"]),
        digest_at=_hh_mm(row["digest_at"]) or "18:00",
    )


@get("/me/notifications", tags=["notifications"], summary="My notification preferences")
async def get_preferences(request: Request[Principal, Any, Any]) -> Preferences:
    return await _preferences(request.user.person_id)


@put("/me/notifications", tags=["notifications"], summary="Set my notification preferences")
async def set_preferences(
    request: Request[Principal, Any, Any],
    data: JSONBody[Preferences],
    app_state: NamedDependency[AppState],
) -> Preferences:
    """Replace the caller's preferences; quiet hours need both ends or neither. Times are
    ``HH:MM`` local (Helsinki) times; the schema refuses one with an offset or seconds."""
    if (data.quiet_start is None) != (data.quiet_end is None):
        raise ReppuError(
            ErrorCode.REQUEST_INVALID,
            "Give both ends of the quiet hours, or neither.",
            field="$.quiet_end",
        )
    values: dict[Column | str, Any] = {
        NotifyPreference.webpush: data.webpush.value,
        NotifyPreference.apprise: data.apprise.value,
        NotifyPreference.quiet_start: _time(data.quiet_start),
        NotifyPreference.quiet_end: _time(data.quiet_end),
        NotifyPreference.digest_at: _time(data.digest_at),
    }
    person = request.user.person_id
    async with write_transaction(app_state.engine):
        if await NotifyPreference.exists().where(NotifyPreference.person == person):
            await NotifyPreference.update(values).where(NotifyPreference.person == person)
        else:
            row = NotifyPreference(person=person)
            for column, value in values.items():
                assert isinstance(column, Column)
                setattr(row, column._meta.name, value)
            await row.save()
    return Preferences(
        webpush=data.webpush,
        apprise=data.apprise,
        quiet_start=_hh_mm(_time(data.quiet_start)),
        quiet_end=_hh_mm(_time(data.quiet_end)),
        digest_at=_hh_mm(_time(data.digest_at)) or "18:00",
    )


_RANK = {
    "sent": 4,
    "queued": 3,
    "digest": 3,
    "digested": 3,
    "failed": 1,
    "gone": 1,
    "expired": 1,
    "off": 0,
    "unreachable": 0,
}


async def _may_see_report(viewer: AccessFacts, bulletin: dict[str, Any]) -> bool:
    """The school's principals and the city's admins; its author only while a tie of today
    still lets them serve its audience (``sync.policy.Action.READ_DELIVERY``)."""
    org = (
        await Organisation.select(Organisation.kind, Organisation.parent)
        .where(Organisation.id == bulletin["organisation"])
        .first()
    )
    if org is None:
        return False
    if org["kind"] == "school":
        sent = SentRef(
            bulletin["author"], org["parent"], bulletin["organisation"], bulletin["group"]
        )
    else:
        sent = SentRef(bulletin["author"], bulletin["organisation"])
    return bool(decide(viewer, Action.READ_DELIVERY, sent, school_today()))


@get("/bulletins/{bulletin_id:int}/status", tags=["notifications"], summary="Who was reached")
async def bulletin_status(
    request: Request[Principal, Any, Any],
    bulletin_id: PathId,
    only: FromQuery[RecipientStatus | None] = None,
    after: Annotated[int, QueryParameter(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=5000)] = 500,
) -> DeliveryReport:
    """Per recipient: read, reached, pending or not reached (call them), with each channel's
    best status. For the school's principals, the city's admins, and the author while they
    still teach the group or work at the school (or, for a city's bulletin, in the city)."""
    viewer_id = request.user.person_id
    viewer = (await load_access_facts([viewer_id])).get(viewer_id, AccessFacts(viewer_id))
    bulletin = await Bulletin.select().where(Bulletin.id == bulletin_id).first()
    if bulletin is None or not await _may_see_report(viewer, bulletin):
        raise ReppuError(ErrorCode.NOT_FOUND, "No such bulletin, or not yours to see.")
    entry = (
        await Outbox.select(Outbox.id, Outbox.done_at)
        .where((Outbox.kind == "bulletin") & (Outbox.item_id == bulletin_id))
        .first()
    )
    channels: dict[int, dict[str, str]] = defaultdict(dict)
    if entry is not None:
        rows = await Delivery.raw(
            "SELECT d.person, d.channel, d.status, g.status AS digest_status FROM delivery d "
            "LEFT JOIN delivery g ON g.id = d.digest WHERE d.outbox = {}",
            entry["id"],
        )
        for r in rows:
            status = r["status"]
            if status == "digested":
                status = r["digest_status"] if r["digest_status"] != "queued" else "digested"
            best = channels[r["person"]].get(r["channel"])
            if best is None or _RANK.get(status, 0) > _RANK.get(best, 0):
                channels[r["person"]][r["channel"]] = status
    readers = {
        r["person"]
        for r in await ReadReceipt.select(ReadReceipt.person).where(
            (ReadReceipt.item_type == ItemType.BULLETIN.value)
            & (ReadReceipt.item_id == bulletin_id)
        )
    }
    page: list[tuple[int, RecipientStatus]] = []
    counts = {s.value: 0 for s in RecipientStatus}
    for person in sorted(channels):
        seen = set(channels[person].values())
        if person in readers:
            status = RecipientStatus.READ
        elif "sent" in seen:
            status = RecipientStatus.REACHED
        elif seen & {"queued", "digest", "digested"}:
            status = RecipientStatus.PENDING
        else:
            status = RecipientStatus.NOT_REACHED
        counts[status.value] += 1
        if person > after and (only is None or only == status):
            page.append((person, status))
    next_after = None
    if len(page) > limit:
        page = page[:limit]
        next_after = page[-1][0]
    who = await names(person for person, _ in page)
    people = [
        RecipientReport(
            person_id=person,
            name=who.get(person, ""),
            status=status,
            channels={k: v for k, v in channels[person].items() if k != "none"},
        )
        for person, status in page
    ]
    return DeliveryReport(
        next_after=next_after,
        bulletin_id=bulletin_id,
        expansion=ItemStatus.DONE
        if entry is not None and entry["done_at"]
        else ItemStatus.EXPANDING,
        recipients=len(channels),
        counts=counts,
        people=people,
    )


NOTIFICATION_ROUTES = [
    vapid_public_key,
    subscribe,
    unsubscribe,
    register_device,
    unregister_device,
    list_channels,
    add_channel,
    remove_channel,
    get_preferences,
    set_preferences,
    bulletin_status,
]
