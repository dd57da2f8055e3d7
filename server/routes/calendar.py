"""Timetable calendar feeds: ``GET /calendar/{token}.ics`` for calendar apps, and the
logged-in person's feed management (``/calendar/feeds``). ``docs/calendar.md`` explains them.

The feed itself takes no bearer token (calendar apps cannot send one): its secret URL is the
credential. Whatever is wrong with it (unknown, revoked, its owner no longer a guardian of
the child) answers the same 404, and so does a feed id that is not the caller's.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from typing import Any

from litestar import Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT, HTTP_304_NOT_MODIFIED

from schemas.calendar import FeedCreated, FeedIn, FeedOut
from schemas.errors import ErrorCode
from server.calendar import (
    MAX_FEEDS_PER_PERSON,
    create_feed,
    list_feeds,
    live_feed_count,
    may_hold,
    revoke_feed,
    serve_feed,
)
from server.clock import school_today, utc_now
from server.errors import ReppuError
from server.identity import Principal
from server.routes.ids import PathId
from server.state import AppState
from sync.calendar import not_modified

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
"""What :func:`secrets.token_urlsafe(32)` makes (43 characters), with room to spare."""

# Litestar adds "; charset=utf-8" to every text/* type itself; naming it here doubled it.
CALENDAR_MEDIA_TYPE = "text/calendar"


def _no_feed() -> ReppuError:
    return ReppuError(ErrorCode.NOT_FOUND, "No such calendar feed.")


def _http_date(moment: dt.datetime) -> str:
    return email.utils.format_datetime(moment.astimezone(dt.UTC), usegmt=True)


def _since(header: str | None) -> dt.datetime | None:
    if not header:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None  # RFC 9110: an invalid date is ignored
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


@get(
    "/calendar/{name:str}",
    exclude_from_auth=True,
    tags=["calendar"],
    summary="A timetable calendar feed (iCalendar)",
    security=[],
    media_type=CALENDAR_MEDIA_TYPE,
    error_codes=[ErrorCode.NOT_FOUND],
    responses={
        HTTP_304_NOT_MODIFIED: ResponseSpec(
            None, description="Not modified since the ETag or date the app sent."
        )
    },
)
async def calendar_feed(
    request: Request[Any, Any, Any], name: FromPath[str], app_state: NamedDependency[AppState]
) -> Response[bytes]:
    """The timetable as ``text/calendar`` for calendar apps to subscribe to. Answers 304
    to ``If-None-Match`` with the current ``ETag``, or to ``If-Modified-Since`` not older
    than ``Last-Modified``. 404 for an unknown or revoked feed."""
    token = name.removesuffix(".ics")
    if token == name or not _TOKEN.match(token):
        raise _no_feed()
    now = utc_now()
    feed = await serve_feed(app_state.engine, app_state.settings, token, school_today(now), now)
    if feed is None:
        raise _no_feed()
    headers = {
        "ETag": feed.etag,
        "Last-Modified": _http_date(feed.last_modified),
        # Apps may keep it but must ask again (a cheap 304) before using it; shared caches
        # must not keep a person's timetable at all.
        "Cache-Control": "private, no-cache",
        "Referrer-Policy": "no-referrer",
        "X-Robots-Tag": "noindex",
    }
    if not_modified(
        feed.etag,
        feed.last_modified,
        request.headers.get("if-none-match"),
        _since(request.headers.get("if-modified-since")),
    ):
        return Response(content=b"", status_code=HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(content=feed.body.encode(), media_type=CALENDAR_MEDIA_TYPE, headers=headers)


@post(
    "/calendar/feeds",
    status_code=HTTP_201_CREATED,
    tags=["calendar"],
    summary="Make a calendar feed of my or my child's timetable",
    error_codes=[ErrorCode.NOT_FOUND],
)
async def add_feed(
    request: Request[Principal, Any, Any],
    data: JSONBody[FeedIn],
    app_state: NamedDependency[AppState],
) -> FeedCreated:
    """A new secret feed URL of the timetable of ``person_id``: the caller, or a child of
    whom the caller is a guardian today. The URL is shown this once; keep it secret."""
    owner = request.user.person_id
    if not await may_hold(owner, data.person_id, school_today()):
        raise ReppuError(
            ErrorCode.NOT_FOUND, "No such person, or not yours to follow.", field="$.person_id"
        )
    if await live_feed_count(owner) >= MAX_FEEDS_PER_PERSON:
        raise ReppuError(
            ErrorCode.REQUEST_INVALID,
            f"You have {MAX_FEEDS_PER_PERSON} calendar feeds; revoke one first.",
            field="$.person_id",
        )
    made = await create_feed(app_state.engine, app_state.settings, owner, data.person_id)
    base = str(request.base_url).rstrip("/")
    return FeedCreated(
        id=made.id,
        person_id=data.person_id,
        url=f"{base}/calendar/{made.token}.ics",
        created_at=made.created_at,
    )


@get("/calendar/feeds", tags=["calendar"], summary="My calendar feeds")
async def my_feeds(request: Request[Principal, Any, Any]) -> list[FeedOut]:
    """The caller's live feeds (never their URLs: only their hashes are kept)."""
    return await list_feeds(request.user.person_id)


@delete(
    "/calendar/feeds/{feed_id:int}",
    status_code=HTTP_204_NO_CONTENT,
    tags=["calendar"],
    summary="Revoke a calendar feed",
)
async def remove_feed(
    request: Request[Principal, Any, Any],
    feed_id: PathId,
    app_state: NamedDependency[AppState],
) -> None:
    """The feed's URL answers 404 from now on."""
    if not await revoke_feed(app_state.engine, request.user.person_id, feed_id):
        raise ReppuError(ErrorCode.NOT_FOUND, "No such calendar feed.")


CALENDAR_ROUTES = [my_feeds, add_feed, remove_feed, calendar_feed]
