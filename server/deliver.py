"""The delivery worker: claims due deliveries with leases and sends them.

A worker runs the **expander** (outbox entries to deliveries, ``server/fanout.py``, and
digests) beside its lanes' loops: the **urgent lane** and the **normal lane** (two loops each)
of Web Push, the apprise lane, and the native lanes ``fcm`` and ``apns``
(``server/native_push.py``). Each lane claims a batch of due deliveries of its kind with a
lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer, so its claim is a
plain update in ``BEGIN IMMEDIATE``) and reads what sending needs in the same transaction,
sends them concurrently, and records every outcome in one transaction; a Web Push lane has
two batches in hand at once, so its pushes keep flowing while the other batch is claimed or
recorded.
Several workers in several processes and machines share the work through the leases. A
worker that is stopped records what it has sent before it exits; one that is killed leaves its
leases to run out, and the deliveries it had not recorded are sent again by another worker (at
least once: the push's ``Topic`` collapses a repeat on the push service, and the app shows one
notification per item). A lease is short (``HOLD``, seconds) and renewed while its batch is
in hand (``server/leases.py``), so a slow batch keeps its rows and a killed worker's rows are
taken over within ``HOLD``, not after minutes; the urgent lane's loops take urgent rows first.

Web Push goes through kept-alive HTTP/1.1 connections per push service
(``server/push_transport.KeepAliveTransport``), at most ``push_connections_per_origin``
requests at once per push service; its outcome is judged by
``notifications.webpush.judge``. Apprise notifications run in apprise's thread pool, at most
``apprise_concurrency`` at once, with apprise's hidden per-instance throttle set explicitly.
Message bodies never leave in a push: a message's push names the sender and the thread.
Beside the lanes, every worker looks once a minute whether the day's retention run is due
(``server/retention.py``); one worker of many runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import apprise
import httpx
import msgspec
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

from notifications.payload import encode_payload, shorter
from notifications.texts import push_text
from notifications.webpush import (
    TTL_SECONDS,
    Kind,
    PushBuilder,
    Subscription,
    VapidSigner,
    Verdict,
    backoff_delay,
    judge,
    origin_of,
)
from schemas.forms import FormDefinition
from schemas.notifications import ChannelKind
from server.access import marks
from server.channels import channel_plugin, offers
from server.clock import school_today, utc_now
from server.db.bulk import run_sql
from server.db.engine import write_transaction
from server.db.notify_tables import Delivery, NativeDevice, PushSubscription
from server.fanout import (
    EXPAND_BATCH,
    assemble_digests,
    delete_native_devices,
    delete_subscriptions,
    expand_next,
    kind_of,
    remind_forms_due,
)
from server.language import effective_language
from server.leases import Heartbeat, to_the_end
from server.metrics import count_delivery
from server.native_push import Answer, NativeSender, NativeText
from server.push_endpoints import endpoint_allowed
from server.push_transport import KeepAliveTransport, PushTransport, PushTransportError
from server.retention import DailyRetention, RetentionPolicy
from server.rosters import roll_rosters
from server.settings import Settings
from server.timetable import roll_window
from server.worker_presence import Presence

log = logging.getLogger("reppu.deliver")
_form_definition = msgspec.json.Decoder(FormDefinition)
# Their lines carry push endpoints, channel URLs, e-mail addresses and phone numbers (a
# protected person's too): silenced. Each delivery's own status says what happened.
logging.getLogger("apprise").setLevel(logging.CRITICAL + 1)
logging.getLogger("httpx").setLevel(logging.WARNING)

CLAIM_BATCH = 200
PUSH_TIMEOUT = 10.0
PREVIEW_BYTES = 1024
"""A push carries ids and a short preview (the app pulls the rest): a storm bulletin to
300,000 devices is then about 0.3 GB of requests, not 1.2 GB."""
MIN_TTL = 60


@dataclass(slots=True)
class Outcome:
    delivery_id: int
    status: str
    """``sent``, ``queued`` (retry at ``not_before``), ``gone``, ``failed`` or ``expired``."""
    not_before: dt.datetime | None = None
    last_status: int | None = None
    detail: str = ""


@dataclass(slots=True)
class Stats:
    planned: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Lane:
    """A queue of deliveries one loop of the worker works off."""

    name: str
    channel: str
    urgent: tuple[bool, ...]
    """The urgencies it takes, urgent first (each one an ordered scan of the partial index
    ``delivery_claim_queued``, which holds only queued deliveries)."""
    lease: dt.timedelta
    """How long a claim holds its rows unless renewed: renewed every ``lease / 4`` while the
    batch is in hand (however long its requests take), so it only runs out for a worker that
    died or froze, and then another takes the rows over within ``lease``."""
    loops: int = 1
    """Batches in hand at once: while one is claimed or its outcomes recorded (a database
    round trip, on SQLite a wait for the writer), another keeps the pushes flowing."""


HOLD = dt.timedelta(seconds=20)
"""A claim's lease: a killed worker's deliveries wait at most this long for another worker.
Renewed four times in it, so a renewal stuck a few seconds behind SQLite's writer still lands."""
URGENT = Lane("urgent", "webpush", (True,), HOLD, loops=2)
NORMAL = Lane("normal", "webpush", (False,), HOLD, loops=2)
APPRISE = Lane("apprise", "apprise", (True, False), HOLD)
"""E-mail and SMS gateways are slow (seconds each): their own lane, small batches, urgent
first, so they never hold up Web Push."""
FCM = Lane("fcm", "fcm", (True, False), HOLD)
APNS = Lane("apns", "apns", (True, False), HOLD)
"""Native push (``server/native_push.py``): a lane per service, urgent first, so a slow or
throttling FCM or APNs never holds up Web Push, nor one the other."""
NATIVE_CHANNELS = ("fcm", "apns")
LANES = (URGENT, NORMAL, APPRISE, FCM, APNS)


@dataclass(frozen=True, slots=True)
class Claim:
    token: str
    ids: list[int]
    rows: list[dict[str, Any]] = field(default_factory=list)
    """What sending needs of each claimed delivery (``_DETAILS``), read in the claim's
    transaction."""


_CLAIM = (
    "UPDATE delivery SET lease_until = {}, claim = {}, attempts = attempts + 1 "
    "WHERE id IN (SELECT id FROM delivery WHERE status = 'queued' "
    "AND channel = {} AND urgent = {} AND not_before <= {} "
    "AND (lease_until IS NULL OR lease_until < {}) "
    "ORDER BY not_before, id LIMIT {}{skip}) RETURNING id"
)
_CLAIM_SQL = {
    "sqlite": _CLAIM.replace("{skip}", ""),
    "postgres": _CLAIM.replace("{skip}", " FOR UPDATE SKIP LOCKED"),
}


async def claim(engine: Engine[Any], lane: Lane, *, limit: int) -> Claim:
    """Lease up to ``limit`` due deliveries of ``lane`` to a new claim, with their details."""
    token = secrets.token_hex(16)
    sql = _CLAIM_SQL["postgres" if isinstance(engine, PostgresEngine) else "sqlite"]
    ids: list[int] = []
    async with write_transaction(engine):
        now = utc_now()  # once the writer is ours: the lease is not shortened by the wait
        for urgent in lane.urgent:
            if len(ids) >= limit:
                break
            rows = await run_sql(
                sql, now + lane.lease, token, lane.channel, urgent, now, now, limit - len(ids)
            )
            ids.extend(int(r["id"]) for r in rows)
        ids.sort()
        details = await run_sql(_DETAILS.replace("{ids}", marks(len(ids))), *ids) if ids else []
    return Claim(token, ids, details)


async def renew_claim(engine: Engine[Any], lane: Lane, token: str) -> None:
    """Renew the lease of the rows ``token`` still holds (a recorded row, or one another
    worker took over after this one froze, is left alone)."""
    async with write_transaction(engine):
        await run_sql(
            "UPDATE delivery SET lease_until = {} WHERE claim = {}", utc_now() + lane.lease, token
        )


_DETAILS = (
    "SELECT d.id, d.person, d.channel, d.target, d.outbox, d.item_count, d.expires_at, "
    "d.attempts, d.urgent, o.kind, o.item_id, s.endpoint, s.p256dh, s.auth, "
    "c.kind AS channel_kind, c.address AS channel_address, n.token AS device_token, "
    "p.language AS roster_language, p.ui_language "
    "FROM delivery d LEFT JOIN outbox o ON o.id = d.outbox "
    "LEFT JOIN person p ON p.id = d.person "
    # The person must match too: an id the database hands out again never reaches another
    # person's device with this person's news.
    "LEFT JOIN push_subscription s ON d.channel = 'webpush' AND s.id = d.target "
    "AND s.person = d.person "
    "LEFT JOIN notify_channel c ON d.channel = 'apprise' AND c.id = d.target "
    "AND c.person = d.person "
    "LEFT JOIN native_device n ON d.channel IN ('fcm', 'apns') AND n.platform = d.channel "
    "AND n.id = d.target AND n.person = d.person "
    "WHERE d.id IN ({ids})"
)


@dataclass(frozen=True, slots=True)
class Text:
    kind: Kind
    item_id: int | None
    title: str
    body: str
    topic: str


class Texts:
    """What each item's notification says, read once per item and kept (bounded)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, bool, str], asyncio.Future[Text | None]] = {}

    async def get(self, row: dict[str, Any]) -> Text | None:
        # In the recipient's language: each (item, language) is read once.
        language = effective_language(row.get("ui_language"), row.get("roster_language"))
        if row["outbox"] is None:
            count = int(row["item_count"])
            return Text(
                Kind.DIGEST, None, "Reppu", push_text(language, "digest", count=count), "digest"
            )
        key = (row["kind"], int(row["item_id"]), bool(row["urgent"]), language)
        loading = self._cache.get(key)
        if loading is None or (
            loading.done() and (loading.cancelled() or loading.exception() is not None)
        ):
            if len(self._cache) > 10_000:
                self._cache.clear()
            # One read per item, however many of a batch's sends ask for it at once (the
            # first batch of a storm asks 200 times before the first answer is back).
            loading = self._cache[key] = asyncio.ensure_future(self._load(*key))
        return await asyncio.shield(loading)

    @staticmethod
    async def _load(kind: str, item_id: int, urgent: bool, language: str) -> Text | None:
        push_kind = kind_of(kind, urgent)
        if kind == "bulletin":
            rows = await Delivery.raw("SELECT title, body FROM bulletin WHERE id = {}", item_id)
            if not rows:
                return None
            return Text(push_kind, item_id, rows[0]["title"], rows[0]["body"], f"b{item_id}")
        if kind == "message":
            rows = await Delivery.raw(
                "SELECT t.id AS thread, t.subject, p.given_name, p.family_name FROM message m "
                "JOIN thread t ON t.id = m.thread JOIN person p ON p.id = m.sender "
                "WHERE m.id = {}",
                item_id,
            )
            if not rows:
                return None
            r = rows[0]
            sender = f"{r['given_name']} {r['family_name']}"
            # Never the message's body: it stays in the app, behind the login.
            return Text(
                push_kind,
                item_id,
                r["subject"],
                push_text(language, "message", sender=sender),
                f"t{r['thread']}",
            )
        if kind == "absence":
            return await _absence_text(push_kind, item_id, language)
        if kind == "form_due":
            return await _form_due_text(push_kind, item_id, language)
        rows = await Delivery.raw(
            "SELECT c.on_date, c.cancelled, l.subject FROM lesson_change c "
            "JOIN lesson l ON l.id = c.lesson WHERE c.id = {}",
            item_id,
        )
        if not rows:
            return None
        r = rows[0]
        what = "change_cancelled" if r["cancelled"] else "change_changed"
        return Text(
            push_kind,
            item_id,
            push_text(language, "change_title"),
            push_text(language, what, subject=r["subject"], day=r["on_date"]),
            f"l{item_id}",
        )


async def _absence_text(kind: Kind, attendance_id: int, language: str) -> Text | None:
    rows = await Delivery.raw(
        "SELECT a.status, a.pupil, a.on_date, l.subject, l.starts_at, p.given_name "
        "FROM attendance a JOIN lesson l ON l.id = a.lesson JOIN person p ON p.id = a.pupil "
        "WHERE a.id = {}",
        attendance_id,
    )
    # Corrected or explained since it was queued: nothing to tell.
    if not rows or rows[0]["status"] != "unexplained":
        return None
    r = rows[0]
    starts = str(r["starts_at"])[:5]
    return Text(
        kind,
        attendance_id,
        push_text(language, "absence_title"),
        push_text(
            language, "absence_body", name=r["given_name"], subject=r["subject"], starts=starts
        ),
        f"a{r['pupil']}-{r['on_date']}",
    )


async def _form_due_text(kind: Kind, request_id: int, language: str) -> Text | None:
    rows = await Delivery.raw(
        "SELECT d.body, r.due_on FROM form_request r "
        "JOIN form_definition d ON d.id = r.definition WHERE r.id = {}",
        request_id,
    )
    if not rows:
        return None
    definition = _form_definition.decode(rows[0]["body"])
    # The form's own title in the reader's language if the form has one in it.
    title = (
        definition.title.get(language)
        or definition.title.get(definition.languages[0])
        or next(iter(definition.title.values()))
    )
    return Text(kind, request_id, push_text(language, "form_due"), title, f"f{request_id}")


class PushSender:
    """Web Push over one shared HTTP client, at most N requests at once per push service."""

    def __init__(self, settings: Settings, transport: PushTransport | None = None) -> None:
        self.builder = PushBuilder(VapidSigner(settings.vapid_private_key, settings.vapid_subject))
        self.transport: PushTransport = transport or KeepAliveTransport(
            timeout=PUSH_TIMEOUT, per_host=settings.push_connections_per_origin
        )
        self._settings = settings
        self._per_origin = settings.push_connections_per_origin
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._allowed: dict[str, bool] = {}
        """Push services (origins) on the operator's list now, asked once per worker."""
        self._payloads: dict[tuple[Text, int], bytes] = {}
        """The plaintext of each item's push (a storm bulletin's is the same for every device:
        encoded once, not 300,000 times)."""
        self._paused: dict[str, dt.datetime] = {}
        """Origins that answered 429, until when: nothing is sent to them before."""
        self._reported: set[str] = set()

    async def close(self) -> None:
        await self.transport.aclose()

    async def _post(
        self, origin: str, endpoint: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str]]:
        gate = self._gates.get(origin)
        if gate is None:
            gate = self._gates[origin] = asyncio.Semaphore(self._per_origin)
        async with gate:
            return await self.transport.post(endpoint, headers, body)

    def _payload(self, text: Text, count: int) -> bytes:
        key = (text, count)
        payload = self._payloads.get(key)
        if payload is None:
            if len(self._payloads) > 10_000:
                self._payloads.clear()
            payload = self._payloads[key] = encode_payload(
                text.kind,
                item_id=text.item_id,
                title=text.title,
                body=text.body,
                count=count,
                limit=PREVIEW_BYTES,
            )
        return payload

    async def send(self, row: dict[str, Any], text: Text) -> Outcome:
        now = utc_now()
        if row["endpoint"] is None:
            return Outcome(row["id"], "gone", detail="subscription removed")
        origin = origin_of(row["endpoint"])
        allowed = self._allowed.get(origin)
        if allowed is None:
            # The endpoint was checked when it was stored; this catches a list the operator
            # has narrowed since, and rows stored under an older, looser check.
            allowed = self._allowed[origin] = endpoint_allowed(self._settings, origin + "/")
        if not allowed:
            return Outcome(row["id"], "failed", detail="push service not on REPPU_PUSH_HOSTS")
        paused = self._paused.get(origin)
        if paused is not None and paused > now:
            return Outcome(row["id"], "queued", not_before=paused, detail="push service paused")
        subscription = Subscription(row["endpoint"], row["p256dh"], row["auth"])
        payload = self._payload(text, int(row["item_count"]))
        # What is left of the item's life, not a fresh full TTL: a retry in the evening of
        # a morning's news must not sit on a push service until the small hours.
        ttl = max(
            MIN_TTL, min(TTL_SECONDS[text.kind], int((row["expires_at"] - now).total_seconds()))
        )
        status: int | None = None
        headers: dict[str, str] = {}
        for attempt_payload in (payload, shorter(payload)):
            push = self.builder.build(
                subscription, attempt_payload, text.kind, topic=text.topic, ttl=ttl, origin=origin
            )
            try:
                status, headers = await self._post(origin, push.endpoint, push.headers, push.body)
            except PushTransportError as exc:
                status, headers = None, {"x-reppu-error": str(exc)}
                break
            if status != 413:
                break
        judgement = judge(
            status, headers, now=now, attempt=int(row["attempts"]), expires_at=row["expires_at"]
        )
        return self._outcome(
            row, origin, status, judgement.verdict, judgement.retry_at, judgement.detail
        )

    def _outcome(
        self,
        row: dict[str, Any],
        origin: str,
        status: int | None,
        verdict: Verdict,
        retry_at: dt.datetime | None,
        detail: str,
    ) -> Outcome:
        ident = row["id"]
        if verdict == Verdict.DELIVERED:
            return Outcome(ident, "sent", last_status=status)
        if verdict == Verdict.GONE:
            return Outcome(ident, "gone", last_status=status, detail=detail)
        if verdict == Verdict.TOO_LARGE:
            return Outcome(ident, "failed", last_status=status, detail="too large even when short")
        if verdict == Verdict.CONFIG_ERROR:
            if origin not in self._reported:
                self._reported.add(origin)
                log.error(
                    "push service %s refused our request with %s (%s): check the VAPID keys "
                    "and REPPU_VAPID_SUBJECT",
                    origin,
                    status,
                    detail,
                )
            return Outcome(ident, "failed", last_status=status, detail=detail)
        if verdict == Verdict.EXPIRED or retry_at is None:
            return Outcome(ident, "expired", last_status=status, detail=detail)
        if verdict == Verdict.RETRY_AT:
            self._paused[origin] = max(retry_at, self._paused.get(origin, retry_at))
        return Outcome(ident, "queued", not_before=retry_at, last_status=status, detail=detail)


class AppriseSender:
    """E-mail, SMS gateways and chat through apprise, off the event loop, N at once."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._gate = asyncio.Semaphore(settings.apprise_concurrency)
        self._rate = float(settings.apprise_rate_per_sec)

    async def send(self, row: dict[str, Any], text: Text) -> Outcome:
        if row["channel_address"] is None:
            return Outcome(row["id"], "gone", detail="channel removed")
        # The URL is built now from the operator's settings and the person's address only,
        # so a changed mail server applies to every channel at once and no stored text ever
        # chooses where the worker connects.
        kind = ChannelKind(row["channel_kind"])
        plugin = channel_plugin(self._settings, kind, row["channel_address"])
        if plugin is None:
            reason = "this server sends no e-mail" if kind is ChannelKind.EMAIL else "no SMS"
            if offers(self._settings, kind):
                reason = "apprise cannot use the channel's address"
            return Outcome(row["id"], "failed", detail=reason)
        # Apprise waits request_rate_per_sec between two sends through one plugin instance
        # (5.5 s for e-mail); a fresh instance per send never waits, so set it explicitly.
        plugin.request_rate_per_sec = self._rate
        sender = apprise.Apprise()
        sender.add(plugin)
        async with self._gate:
            try:
                # Apprise reports failure as a falsy result, never by raising: test it.
                ok = bool(await sender.async_notify(title=text.title, body=text.body))
            except Exception as exc:  # a plugin's bug must not stop the lane
                ok, reason = False, type(exc).__name__
            else:
                reason = "apprise reported a failure"
        if ok:
            return Outcome(row["id"], "sent")
        # Apprise says only "it failed": retry with backoff until the item is stale.
        now = utc_now()
        retry_at = now + dt.timedelta(seconds=backoff_delay(int(row["attempts"])))
        if retry_at > row["expires_at"]:
            return Outcome(row["id"], "failed", detail=reason)
        return Outcome(row["id"], "queued", not_before=retry_at, detail=reason)


# A batch's outcomes are one statement per chunk of rows, whatever their mix (sent, gone,
# failed, retry later): a statement per outcome cost the database (and the worker) a round
# trip per push. Only rows still held by the claim are written. ``{rows}`` becomes one
# ``(id, status, not_before, last_status, detail)`` tuple of bound values per outcome, typed
# on PostgreSQL (a VALUES list infers no types from its use); a NULL ``not_before`` keeps the
# row's own (only a retry moves it).
_OUTCOMES = (
    "WITH v(id, status, not_before, last_status, detail) AS (VALUES {rows}) "
    "UPDATE delivery SET status = v.status, "
    "not_before = COALESCE(v.not_before, delivery.not_before), "
    "last_status = v.last_status, detail = v.detail, lease_until = NULL, claim = NULL, "
    "updated_at = {{}} FROM v WHERE delivery.id = v.id AND delivery.claim = {{}}"
)
_OUTCOME_ROW = {
    "sqlite": "({}, {}, {}, {}, {})",
    "postgres": (
        "(CAST({} AS BIGINT), CAST({} AS TEXT), CAST({} AS TIMESTAMPTZ), CAST({} AS INTEGER), "
        "CAST({} AS TEXT))"
    ),
}
OUTCOME_CHUNK = 500
"""Outcomes per statement: 2,500 bound values, far below either database's limit."""


async def record_outcomes(
    engine: Engine[Any],
    outcomes: Sequence[Outcome],
    *,
    claim: str,
    release: Sequence[int] = (),
) -> None:
    """Write every outcome of a batch in one transaction; a gone subscription is deleted.

    Only rows still held by ``claim`` are written: a worker whose lease ran out (and whose
    rows another worker took) changes nothing. ``release``: claimed deliveries that were not
    sent, given back to the next claim.
    """
    if not outcomes and not release:
        return
    now = utc_now()
    row_sql = _OUTCOME_ROW["postgres" if isinstance(engine, PostgresEngine) else "sqlite"]
    async with write_transaction(engine):
        if release:
            await run_sql(
                "UPDATE delivery SET lease_until = NULL, claim = NULL, attempts = attempts - 1 "
                f"WHERE claim = {{}} AND id IN ({marks(len(release))})",
                claim,
                *release,
            )
        for start in range(0, len(outcomes), OUTCOME_CHUNK):
            chunk = outcomes[start : start + OUTCOME_CHUNK]
            values: list[Any] = []
            for o in chunk:
                values += [o.delivery_id, o.status, o.not_before, o.last_status, o.detail[:200]]
            sql = _OUTCOMES.format(rows=", ".join(row_sql for _ in chunk))
            await run_sql(sql, *values, now, claim)
        gone = [o.delivery_id for o in outcomes if o.status == "gone" and o.last_status]
        if gone:
            await _forget_gone(gone)


async def _forget_gone(gone: Sequence[int]) -> None:
    """Delete the subscriptions and native devices these deliveries went to: their push
    service said they are gone. Only the one the delivery's person still owns (an id is
    never taken as someone else's)."""
    rows = await Delivery.raw(
        "SELECT channel, target, person FROM delivery WHERE channel IN ('fcm', 'apns') "
        f"AND id IN ({marks(len(gone))})",
        *gone,
    )
    # FCM's UNREGISTERED or 404, APNs' 410 or BadDeviceToken: the app is gone from
    # that phone (or its token was replaced), and so is our row.
    for r in rows:
        await delete_native_devices(
            (NativeDevice.id == r["target"])
            & (NativeDevice.person == r["person"])
            & (NativeDevice.platform == r["channel"])
        )
    rows = await Delivery.raw(
        "SELECT s.id FROM delivery d JOIN push_subscription s ON s.id = d.target "
        f"AND s.person = d.person WHERE d.channel = 'webpush' AND d.id IN ({marks(len(gone))})",
        *gone,
    )
    # The push service said the subscription is gone (404/410): so is ours, with
    # whatever else was waiting for it; all of the batch's at once.
    if rows:
        await delete_subscriptions(PushSubscription.id.is_in([int(r["id"]) for r in rows]))


def native_outcome(delivery_id: int, answer: Answer) -> Outcome:
    """An FCM or APNs answer as the delivery's outcome (``docs/notifications.md``)."""
    status, judgement = answer.status, answer.judgement
    verdict, detail = judgement.verdict, judgement.detail
    if verdict == Verdict.DELIVERED:
        return Outcome(delivery_id, "sent", last_status=status)
    if verdict == Verdict.GONE:
        return Outcome(delivery_id, "gone", last_status=status, detail=detail)
    if verdict in (Verdict.RETRY_AT, Verdict.BACKOFF) and judgement.retry_at is not None:
        return Outcome(
            delivery_id, "queued", not_before=judgement.retry_at, last_status=status, detail=detail
        )
    if verdict == Verdict.EXPIRED:
        return Outcome(delivery_id, "expired", last_status=status, detail=detail)
    return Outcome(delivery_id, "failed", last_status=status, detail=detail)


class Worker:
    """Expands the outbox and sends deliveries until stopped. See the module's docstring."""

    def __init__(
        self,
        engine: Engine[Any],
        settings: Settings,
        *,
        transport: PushTransport | None = None,
        native_client: httpx.AsyncClient | None = None,
        idle_poll: float = 1.0,
        batch: int = CLAIM_BATCH,
        expand_batch: int = EXPAND_BATCH,
    ) -> None:
        self.engine = engine
        self.push = PushSender(settings, transport)
        self.apprise = AppriseSender(settings)
        self.native = NativeSender(settings, native_client)
        self.texts = Texts()
        self.idle_poll = idle_poll
        self.batch = batch
        self.expand_batch = expand_batch
        self.stats = Stats()
        self._rolled_on: dt.date | None = None
        self._apprise_batch = max(1, 2 * settings.apprise_concurrency)
        self._wake = {name: asyncio.Event() for name in ("expand", *(x.name for x in LANES))}
        # Retention runs daily beside the lanes, in one worker of many (docs/retention.md).
        self.retention = DailyRetention(engine, RetentionPolicy.from_settings(settings))

    def wake(self) -> None:
        """Something was enqueued in this process: look now, not at the next poll."""
        for event in self._wake.values():
            event.set()

    async def _idle(self, name: str) -> None:
        event = self._wake[name]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), self.idle_poll)
        event.clear()

    async def _remind(self, today: dt.date) -> None:
        async with write_transaction(self.engine):
            await remind_forms_due(today)

    async def expand_once(self) -> int:
        today = school_today()
        if self._rolled_on != today:
            # Once a day: lesson changes entering this-and-next-week sync, past ones leave;
            # rosters follow the memberships that start or end today.
            await to_the_end(roll_window(self.engine, today))
            await to_the_end(roll_rosters(self.engine, today))
            await to_the_end(self._remind(today))
            self._rolled_on = today
        planned = await to_the_end(expand_next(self.engine, batch=self.expand_batch))
        planned += await to_the_end(assemble_digests(self.engine))
        self.stats.planned += planned
        if planned:
            for lane in LANES:
                self._wake[lane.name].set()
        return planned

    async def send_once(self, lane: Lane) -> int:
        """Claim and send one batch of one lane; returns how many were claimed."""
        limit = self._apprise_batch if lane is APPRISE else self.batch
        claiming = asyncio.ensure_future(claim(self.engine, lane, limit=limit))
        try:
            claimed = await asyncio.shield(claiming)
        except asyncio.CancelledError:
            # Stopped while claiming: let the claim commit, then hand its rows straight back.
            taken = await claiming
            await to_the_end(record_outcomes(self.engine, [], claim=taken.token, release=taken.ids))
            raise
        ids = claimed.ids
        if not ids:
            return 0
        tasks = [asyncio.ensure_future(self._send(row)) for row in claimed.rows]
        outcomes: list[Outcome] = []
        renewal = Heartbeat(
            lambda: renew_claim(self.engine, lane, claimed.token),
            lane.lease.total_seconds() / 4,
            f"a {lane.name} batch",
        )
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is None:
                    outcomes.append(task.result())
                else:
                    task.cancel()
            # Even when stopped mid-batch: what went out is recorded, and what did not is
            # handed back at once (a killed worker's claims wait for their lease instead).
            done = {o.delivery_id for o in outcomes}
            unsent = [i for i in ids if i not in done]
            try:
                # Recorded before the heartbeat stops: a second cancellation while it stops
                # must not skip the record (the sent pushes would go again after the lease).
                await to_the_end(
                    record_outcomes(self.engine, outcomes, claim=claimed.token, release=unsent)
                )
            finally:
                await renewal.stop()  # renews only rows the claim still holds: none now
            channels = {int(row["id"]): str(row["channel"]) for row in claimed.rows}
            for o in outcomes:
                self.stats.by_status[o.status] = self.stats.by_status.get(o.status, 0) + 1
                count_delivery(channels.get(o.delivery_id, lane.channel), o.status)
        return len(ids)

    async def _send(self, row: dict[str, Any]) -> Outcome:
        if utc_now() > row["expires_at"]:
            return Outcome(row["id"], "expired", detail="stale before it could be sent")
        text = await self.texts.get(row)
        if text is None:
            return Outcome(row["id"], "failed", detail="the item no longer exists")
        try:
            if row["channel"] == "apprise":
                return await self.apprise.send(row, text)
            if row["channel"] in NATIVE_CHANNELS:
                return await self._send_native(row, text)
            return await self.push.send(row, text)
        except ValueError as exc:  # a subscription whose keys cannot be used
            return Outcome(row["id"], "failed", detail=f"unusable subscription: {exc}"[:200])
        except Exception as exc:
            # Whatever one delivery does wrong (a URL httpx refuses, a bug) is that delivery's
            # outcome: it must not cancel its batch or come back at the head of the lane.
            log.warning("delivery %s failed: %s", row["id"], type(exc).__name__)
            return Outcome(row["id"], "failed", detail=f"error: {type(exc).__name__}")

    async def _send_native(self, row: dict[str, Any], text: Text) -> Outcome:
        if row["device_token"] is None:
            return Outcome(row["id"], "gone", detail="device removed")
        native = NativeText(
            text.kind, text.item_id, text.title, text.body, text.topic, int(row["item_count"])
        )
        return native_outcome(row["id"], await self.native.send(row, native))

    async def _loop(self, name: str) -> None:
        while True:
            try:
                if name == "expand":
                    busy = await self.expand_once()
                else:
                    busy = await self.send_once(next(x for x in LANES if x.name == name))
            except asyncio.CancelledError:
                raise
            except Exception:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # stopping: an error on the way out must not keep the loop alive
                log.exception("delivery worker: %s step failed; retrying", name)
                busy = 0
                await asyncio.sleep(self.idle_poll)
            if not busy:
                await self._idle(name)

    async def run(self) -> None:
        """Run the expander and every lane until cancelled, beating a heartbeat meanwhile
        (``server/worker_presence.py``)."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(Presence(self.engine).run())
                group.create_task(self._loop("expand"))
                group.create_task(self.retention.run_forever())
                for lane in LANES:
                    for _ in range(lane.loops):
                        group.create_task(self._loop(lane.name))
        finally:
            await self.push.close()
            await self.native.close()

    async def drain(self, *, max_rounds: int = 10_000) -> Stats:
        """Work until nothing is due now (tests and ``reppu worker --once``)."""
        for _ in range(max_rounds):
            busy = await self.expand_once()
            for lane in LANES:
                busy += await self.send_once(lane)
            if not busy:
                break
        return self.stats
