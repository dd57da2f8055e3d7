"""``GET /health``: is the database reachable, and which schema version does it hold."""

from __future__ import annotations

import logging

from litestar import get
from litestar.di import NamedDependency

from schemas.errors import ErrorCode
from schemas.people import Health
from server.db.migrate import schema_version
from server.errors import ReppuError
from server.state import AppState

log = logging.getLogger("reppu.health")


@get("/health", exclude_from_auth=True, tags=["operations"], summary="Health check")
async def health(app_state: NamedDependency[AppState]) -> Health:
    """Answers 200 when the database answers, 503 ``server.unavailable`` when it does not."""
    try:
        version = await schema_version()
    except Exception as exc:
        log.warning("health check: database unreachable: %s", type(exc).__name__)
        raise ReppuError(ErrorCode.SERVER_UNAVAILABLE, "The database is not reachable.") from exc
    return Health(
        status="ok",
        database="sqlite" if app_state.settings.is_sqlite else "postgresql",
        schema_version=version,
    )
