"""Roster imports over HTTP, for the admin of every city (``server/roster_imports.py``):
upload a OneRoster zip for a dry run, read the report, apply it, see the history."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from schemas.errors import ErrorCode
from schemas.roster_imports import RosterImport, RosterImportList
from server.errors import ReppuError
from server.identity import Principal
from server.roster_imports import (
    apply_upload,
    check_may_import,
    check_upload,
    imports_folder,
    receive_upload,
    roster_import,
    roster_imports,
)
from server.routes.ids import PathId
from server.state import AppState

ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed"})
"""What browsers and curl call a zip (Windows' browsers send the second)."""

NO_CONTROLS = r"^[^\x00-\x1f\x7f]*$"
FileName = Annotated[
    str,
    QueryParameter(name="file_name", required=False, max_length=255, pattern=NO_CONTROLS),
]
Limit = Annotated[int, QueryParameter(ge=1, le=500, required=False)]
IMPORT_ERRORS = [ErrorCode.AUTH_FORBIDDEN, ErrorCode.IMPORT_NOT_FOUND]


@post(
    "/admin/roster-imports",
    status_code=200,
    tags=["admin"],
    summary="Upload a OneRoster zip for a dry run",
    # The body is streamed to a file with its own limit (REPPU_MAX_IMPORT_BYTES).
    request_max_body_size=None,
    error_codes=[ErrorCode.AUTH_FORBIDDEN],
)
async def upload_roster(
    request: Request[Principal, Any, Any],
    app_state: NamedDependency[AppState],
    file_name: FileName = "upload.zip",
) -> RosterImport:
    """The body is the zip (``Content-Type: application/zip``). Nothing of the roster is
    changed: the answer says what the import would create, update and end per file, or
    every problem with its file, line and column (``status`` ``checked`` or ``refused``).
    A checked upload is applied with ``POST /admin/roster-imports/{id}/apply`` within a
    day. Admins of every city only."""
    await check_may_import(request.user.person_id)  # before a byte is stored
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media not in ZIP_TYPES:
        raise ReppuError(
            ErrorCode.REQUEST_UNSUPPORTED_MEDIA_TYPE,
            "Send the OneRoster set as a zip (Content-Type: application/zip).",
        )
    settings = app_state.settings
    upload = await receive_upload(
        request.stream(), imports_folder(settings), settings.max_import_bytes
    )
    return await check_upload(
        app_state.engine,
        settings,
        actor=request.user.person_id,
        upload=upload,
        file_name=file_name,
    )


@post(
    "/admin/roster-imports/{import_id:int}/apply",
    status_code=200,
    tags=["admin"],
    summary="Apply a checked roster import",
    error_codes=[*IMPORT_ERRORS, ErrorCode.IMPORT_NOT_APPLICABLE],
)
async def apply_roster(
    request: Request[Principal, Any, Any],
    import_id: PathId,
    app_state: NamedDependency[AppState],
) -> RosterImport:
    """Applies the upload in one transaction (``applied``), or refuses it whole if the roster
    changed since the dry run in a way it cannot take (``refused``). Admins of every city."""
    await check_may_import(request.user.person_id)
    return await apply_upload(
        app_state.engine, app_state.settings, actor=request.user.person_id, import_id=import_id
    )


@get(
    "/admin/roster-imports",
    tags=["admin"],
    summary="The roster import history",
    error_codes=[ErrorCode.AUTH_FORBIDDEN],
)
async def list_roster_imports(
    request: Request[Principal, Any, Any], limit: Limit = 50
) -> RosterImportList:
    """Newest first: who uploaded what, and what became of it. Admins of every city."""
    await check_may_import(request.user.person_id)
    return RosterImportList(imports=await roster_imports(limit))


@get(
    "/admin/roster-imports/{import_id:int}",
    tags=["admin"],
    summary="One roster import's report",
    error_codes=IMPORT_ERRORS,
)
async def get_roster_import(
    request: Request[Principal, Any, Any], import_id: PathId
) -> RosterImport:
    await check_may_import(request.user.person_id)
    return await roster_import(import_id)


ROSTER_IMPORT_ROUTES = [upload_roster, apply_roster, list_roster_imports, get_roster_import]
