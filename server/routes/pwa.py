"""The installable web app's files (``clients/pwa``, ``docs/pwa.md``), served at ``/``.

Every file is read and compressed once per process, at brotli's and gzip's best (a third
smaller than the quality the API's answers get, which are made afresh each time), and kept
while its size and modification time stay the same. Each answer carries a validator and
``Cache-Control: no-cache``: the browser and the service worker ask again at every start
(``sw.js`` revalidates its cache), and a file that did not change costs a ``304`` with no
body instead of the file again.

API routes are matched before these; a path outside the app's folder, a hidden file or a
missing one is ``404``. No token is needed: the app holds no data, only code.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

import brotli  # type: ignore[import-untyped]
from litestar import Request, Response, Router, get, head
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from server.compression import choose_encoding

PWA_DIRECTORY = Path(__file__).resolve().parent.parent.parent / "clients" / "pwa"
"""The web app: plain files, no build step."""

SKIP_COMPRESSION = "reppu_precompressed"
"""A route's ``opt`` key that keeps the compression middleware off answers made here."""

_TYPES = {
    ".js": "text/javascript",
    ".html": "text/html",
    ".css": "text/css",
    ".webmanifest": "application/manifest+json",
    ".json": "application/json",
    ".svg": "image/svg+xml",
}
_COMPRESSIBLE = frozenset(_TYPES)
"""Text; images such as PNG are compressed already."""


@dataclass(frozen=True, slots=True)
class AppFile:
    """One file of the app as read, with its compressed forms (``None``: not smaller)."""

    stamp: tuple[int, int]
    """Size and modification time when read: a different stamp reads the file again."""
    content_type: str
    etag: str
    body: bytes
    br: bytes | None
    gzip: bytes | None


def _compressed(body: bytes, packed: bytes) -> bytes | None:
    return packed if len(packed) < len(body) else None


def read_app_file(path: Path, stamp: tuple[int, int]) -> AppFile:
    """``path`` read whole, with its validator and compressed forms."""
    body = path.read_bytes()
    suffix = path.suffix.lower()
    content_type = _TYPES.get(suffix) or mimetypes.guess_type(path.name)[0]
    compressible = suffix in _COMPRESSIBLE
    return AppFile(
        stamp=stamp,
        content_type=content_type or "application/octet-stream",
        # Weak: one validator for the file, whichever coding carries it (RFC 9110 8.8.3).
        etag=f'W/"{hashlib.sha256(body).hexdigest()[:24]}"',
        body=body,
        br=_compressed(body, brotli.compress(body, quality=11)) if compressible else None,
        gzip=_compressed(body, gzip.compress(body, 9, mtime=0)) if compressible else None,
    )


class AppFiles:
    """The files under one folder, by their URL path, each read when first asked for."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()
        self._files: dict[str, AppFile] = {}

    def _path_of(self, url_path: str) -> Path | None:
        parts = PurePosixPath(url_path.lstrip("/") or "index.html").parts
        # No "..", no hidden files, nothing that is not a plain name.
        if not parts or any(p.startswith(".") or "\\" in p or "\x00" in p for p in parts):
            return None
        path = self.directory.joinpath(*parts)
        return path if path.is_relative_to(self.directory) else None

    def get(self, url_path: str) -> AppFile | None:
        """The file at ``url_path`` (``/`` is ``index.html``), or None if there is none."""
        path = self._path_of(url_path)
        if path is None:
            return None
        try:
            status = os.stat(path)
        except (OSError, ValueError):
            return None
        if not path.is_file():
            return None
        stamp = (status.st_size, status.st_mtime_ns)
        # By the file, not the URL: "/js//app.js" is the same file, and one copy per spelling
        # would let anyone fill the memory.
        key = str(path)
        known = self._files.get(key)
        if known is None or known.stamp != stamp:
            known = self._files[key] = read_app_file(path, stamp)
        return known


def _matches(header: str, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, RFC 9110 13.1.2)."""
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))


def answer(files: AppFiles, request: Request[Any, Any, Any], path: str) -> Response[bytes]:
    """The file's answer: the best coding the client accepts, or ``304`` if it has it."""
    found = files.get(path)
    if found is None:
        raise NotFoundException()
    headers = {
        "cache-control": "no-cache",
        "etag": found.etag,
        "vary": "Accept-Encoding",
    }
    if _matches(request.headers.get("if-none-match", ""), found.etag):
        return Response(b"", status_code=304, headers=headers)
    offered = tuple(c for c in ("br", "gzip") if getattr(found, c) is not None)
    coding = choose_encoding(request.headers.get("accept-encoding", ""), offered)
    body = found.body
    if coding is not None:
        body = getattr(found, coding)
        headers["content-encoding"] = coding
    return Response(
        body,
        media_type=found.content_type,
        headers={**headers, "content-length": str(len(body))},
    )


def pwa_router(directory: Path = PWA_DIRECTORY) -> Router:
    """The app's files at ``/``, ``index.html`` at ``/`` itself."""
    files = AppFiles(directory)

    @get("/", name="pwa/index")
    async def index(request: Request[Any, Any, Any]) -> Response[bytes]:
        return answer(files, request, "/")

    @get("/{file_path:path}", name="pwa")
    async def file(
        request: Request[Any, Any, Any], file_path: FromPath[PurePath]
    ) -> Response[bytes]:
        return answer(files, request, file_path.as_posix())

    @head("/{file_path:path}", name="pwa/head")
    async def file_head(
        request: Request[Any, Any, Any], file_path: FromPath[PurePath]
    ) -> Response[None]:
        got = answer(files, request, file_path.as_posix())
        return Response(
            None, status_code=got.status_code, media_type=got.media_type, headers=got.headers
        )

    return Router(
        path="/",
        route_handlers=[index, file, file_head],
        opt={"exclude_from_auth": True, SKIP_COMPRESSION: True},
        include_in_schema=False,
    )
