"""``GET /health`` (is the database reachable) and ``GET /health/ready`` (can this server do
its whole job: the database answers, its migrations are current, a delivery worker is alive).

A load balancer sends traffic on ``/health``; a deployment waits for ``/health/ready`` before
it counts a new release as up (``docs/operations.md``).
"""

from __future__ import annotations

import logging

from litestar import get
from litestar.di import NamedDependency

from schemas.errors import ErrorCode
from schemas.people import Health, Readiness
from server.db.migrate import pending_migrations, schema_version
from server.errors import ReppuError
from server.state import AppState
from server.worker_presence import alive, workers_seen

log = logging.getLogger("reppu.health")


def _database(app_state: AppState) -> str:
    return "sqlite" if app_state.settings.is_sqlite else "postgresql"


@get("/health", exclude_from_auth=True, tags=["operations"], summary="Health check")
async def health(app_state: NamedDependency[AppState]) -> Health:
    """Answers 200 when the database answers, 503 ``server.unavailable`` when it does not."""
    try:
        version = await schema_version()
    except Exception as exc:
        log.warning("health check: database unreachable: %s", type(exc).__name__)
        raise ReppuError(ErrorCode.SERVER_UNAVAILABLE, "The database is not reachable.") from exc
    return Health(status="ok", database=_database(app_state), schema_version=version)


@get(
    "/health/ready",
    exclude_from_auth=True,
    tags=["operations"],
    summary="Readiness check",
    error_codes=[ErrorCode.SERVER_UNAVAILABLE],
)
async def ready(app_state: NamedDependency[AppState]) -> Readiness:
    """200 when the database answers, every migration the code knows is applied and a
    delivery worker has beaten recently; else 503 ``server.unavailable`` naming each
    problem."""
    try:
        version = await schema_version()
        pending = await pending_migrations()
        living = alive(await workers_seen()) if not pending else []
    except Exception as exc:
        log.warning("readiness check: database unreachable: %s", type(exc).__name__)
        raise ReppuError(
            ErrorCode.SERVER_UNAVAILABLE, "Not ready: the database is not reachable."
        ) from exc
    problems = []
    if pending:
        problems.append(f"{len(pending)} migration(s) not applied (run `reppu migrate`)")
    if not living and not pending:
        problems.append("no delivery worker is alive (`reppu worker`, or REPPU_RUN_WORKER=true)")
    if problems or version is None:
        raise ReppuError(ErrorCode.SERVER_UNAVAILABLE, "Not ready: " + "; ".join(problems) + ".")
    return Readiness(
        status="ready",
        database=_database(app_state),
        schema_version=version,
        workers_alive=len(living),
    )
