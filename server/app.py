"""The Litestar application: ``create_app(settings)``.

The app owns nothing global. Its settings and database engine live in one :class:`AppState`,
given to routes as the ``app_state`` dependency; the database opens in the app's lifespan, so
each worker process has its own pool (PostgreSQL) or connections (SQLite).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.config.compression import CompressionConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from piccolo.engine.base import Engine

from schemas.errors import ErrorCode
from server.compression import NegotiatedCompression
from server.db.engine import open_database
from server.deliver import Worker
from server.errors import EXCEPTION_HANDLERS, ReppuError
from server.identity import authenticate, token_digest
from server.live import LiveHub
from server.metrics import RequestMetrics, release_process
from server.openapi import CompletedOpenAPIJson
from server.recent import RecentLookups
from server.routes.absences import ABSENCE_ROUTES
from server.routes.accounts import ACCOUNT_ROUTES
from server.routes.admin import ADMIN_ROUTES
from server.routes.auth import login, logout
from server.routes.calendar import CALENDAR_ROUTES
from server.routes.forms import FORM_ROUTES
from server.routes.health import health, ready
from server.routes.metrics import metrics
from server.routes.notifications import NOTIFICATION_ROUTES
from server.routes.people import choose_language, me, person
from server.routes.pwa import SKIP_COMPRESSION, pwa_router
from server.routes.roster_imports import ROSTER_IMPORT_ROUTES
from server.routes.signin import SIGNIN_ROUTES
from server.routes.sync import sync_live, sync_pull, sync_push
from server.settings import Settings
from server.state import AppState
from server.wire import BoundedRequest

log = logging.getLogger("reppu")

# Paths open without a token, besides routes marked ``exclude_from_auth`` (login, health).
PUBLIC_PATHS = ["^/schema", "^/static/"]
LIVE_PATH = "/sync/live"
"""The live stream's route: its tokens are looked up in batches (``server/live_access.py``)."""


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    """Every route needs ``Authorization: Bearer <token>`` unless it is public."""

    def __init__(self, app: Any, app_state: AppState, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.app_state = app_state

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization")
        if not header:
            raise ReppuError(ErrorCode.AUTH_REQUIRED, "A bearer token is required.")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ReppuError(
                ErrorCode.AUTH_INVALID_TOKEN, "Send the token as 'Authorization: Bearer <token>'."
            )
        token = token.strip()
        recent, hub = self.app_state.recent, self.app_state.live
        digest = token_digest(self.app_state.settings, token)
        principal = None
        if recent.enabled:
            await hub.start()  # a kept token is trusted only while revocations are heard of
            if hub.listening:
                principal = recent.principal(digest)
        if principal is None:
            if connection.scope["path"] == LIVE_PATH:
                # Streams open by the thousand at once (a school's morning): one lookup for
                # all that are waiting (server/live_access.py).
                principal = await self.app_state.stream_access.principal(digest)
            else:
                principal = await authenticate(self.app_state.settings, token)
            if principal is not None:
                recent.keep_principal(digest, principal)
        if principal is None:
            raise ReppuError(
                ErrorCode.AUTH_INVALID_TOKEN, "The token is unknown, expired or revoked."
            )
        return AuthenticationResult(user=principal, auth=None)


def create_app(settings: Settings, *, engine: Engine[Any] | None = None) -> Litestar:
    """A Reppu application configured by ``settings``; the database opens when it starts.

    ``engine``: an engine already open and bound (tests, an embedding process); the app then
    uses it from the start and leaves opening and closing it to the caller.
    """
    app_state = AppState(
        settings=settings,
        live=LiveHub(settings),
        recent=RecentLookups(settings.access_cache_seconds),
    )
    app_state.live.on_revoked = app_state.recent.forget_principals
    lifespan = []
    if engine is not None:
        app_state.open(engine)

        @asynccontextmanager
        async def live_lifespan(_: Litestar) -> AsyncIterator[None]:
            # The engine is the caller's, but the live hub (started on first use) is the
            # app's: it stops with the app, or its watch would outlive it in the caller's loop.
            try:
                yield
            finally:
                await app_state.live.stop()

        lifespan.append(live_lifespan)
    else:

        @asynccontextmanager
        async def database_lifespan(_: Litestar) -> AsyncIterator[None]:
            async with open_database(settings) as opened:
                app_state.open(opened)
                log.info("database open: %s", settings.database_label)
                worker_task = None
                if settings.run_worker:
                    worker = Worker(opened, settings)
                    app_state.wake_worker = worker.wake
                    worker_task = asyncio.create_task(worker.run(), name="reppu-delivery-worker")
                try:
                    yield
                finally:
                    if worker_task is not None:
                        worker_task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await worker_task
                    await app_state.live.stop()
                    release_process()

        lifespan.append(database_lifespan)

    def provide_app_state() -> AppState:
        return app_state

    operations = [metrics] if settings.metrics_token else []
    app = Litestar(
        route_handlers=[
            health,
            ready,
            *operations,
            login,
            logout,
            me,
            choose_language,
            person,
            sync_pull,
            sync_push,
            sync_live,
            *NOTIFICATION_ROUTES,
            *ABSENCE_ROUTES,
            *FORM_ROUTES,
            *CALENDAR_ROUTES,
            *ACCOUNT_ROUTES,
            *ADMIN_ROUTES,
            *ROSTER_IMPORT_ROUTES,
            *SIGNIN_ROUTES,
            pwa_router(),
        ],
        lifespan=lifespan,
        dependencies={"app_state": Provide(provide_app_state, sync_to_thread=False)},
        middleware=[
            DefineMiddleware(BearerTokenMiddleware, app_state=app_state, exclude=PUBLIC_PATHS)
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        # Bodies Litestar decodes end in the error catalogue whatever their bytes.
        request_class=BoundedRequest,
        # Also reachable as app.state.reppu, for tests and embedding processes.
        state=State({"reppu": app_state}),
        request_max_body_size=settings.max_body_bytes,
        # Brotli where the client takes it (a third of gzip's size on timetable JSON, at
        # quality 4), gzip otherwise, as Accept-Encoding's q-values say (server/compression.py).
        # Small answers ("nothing new") are not worth it; the live stream must not be
        # buffered by a compressor.
        compression_config=CompressionConfig(
            backend="brotli",
            brotli_quality=4,
            brotli_gzip_fallback=True,
            gzip_compress_level=6,
            minimum_size=512,
            exclude=["^/sync/live"],
            # The app's files come compressed already, at a better ratio (server/routes/pwa.py).
            exclude_opt_key=SKIP_COMPRESSION,
            middleware_class=NegotiatedCompression,
        ),
        openapi_config=OpenAPIConfig(
            title="Reppu",
            version="0.1.0",
            path="/schema",
            # The JSON document completed by server/openapi.py (sync bodies, error answers).
            render_plugins=[ScalarRenderPlugin(), CompletedOpenAPIJson()],
            components=Components(
                security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer")}
            ),
            security=[{"BearerToken": []}],
        ),
        debug=False,
        # Logging is set up by the process (server/logs.py), not by the app.
        logging_config=None,
    )
    if settings.metrics_token:
        # Around Litestar's whole handler, so answers made from errors count as well.
        app.asgi_handler = RequestMetrics(app.asgi_handler, lambda: app_state._engine)
    return app
