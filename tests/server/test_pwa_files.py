"""The web app's files: compressed once at their best, revalidated with a 304, nothing outside.

In-process, through the whole app (its compression middleware and token middleware included),
and on a folder of the test's own for a file that changes while the server runs.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import brotli  # type: ignore[import-untyped]
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from server.routes.pwa import PWA_DIRECTORY, AppFiles, pwa_router


async def test_a_file_comes_compressed_at_best_and_once_held_costs_a_304(
    fx_client: httpx.AsyncClient,
) -> None:
    source = (PWA_DIRECTORY / "js" / "views.js").read_bytes()
    first = await fx_client.get("/js/views.js", headers={"Accept-Encoding": "gzip, br"})
    assert first.status_code == 200
    assert first.headers["content-encoding"] == "br"
    assert first.headers["cache-control"] == "no-cache"
    assert first.headers["vary"] == "Accept-Encoding"
    assert first.content == source  # httpx decoded it: compressed once, not twice
    # Brotli at its best: the size the middleware's quality 4 would give is larger.
    sent = int(first.headers["content-length"])
    assert sent == len(brotli.compress(source, quality=11))
    assert sent < len(brotli.compress(source, quality=4))

    again = await fx_client.get(
        "/js/views.js", headers={"If-None-Match": first.headers["etag"], "Accept-Encoding": "br"}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    # Another coding, the same file: the same (weak) validator still matches.
    plain = await fx_client.get(
        "/js/views.js", headers={"If-None-Match": f'"x", {first.headers["etag"]}'}
    )
    assert plain.status_code == 304
    other = await fx_client.get("/js/views.js", headers={"If-None-Match": 'W/"other"'})
    assert other.status_code == 200
    assert other.content == source


@pytest.mark.parametrize(
    ("accept", "coding"),
    [("gzip", "gzip"), ("br;q=0, gzip", "gzip"), ("identity", None), ("", None), ("*", "br")],
)
async def test_the_coding_follows_accept_encoding(
    fx_client: httpx.AsyncClient, accept: str, coding: str | None
) -> None:
    answer = await fx_client.get("/css/app.css", headers={"Accept-Encoding": accept})
    assert answer.status_code == 200
    assert answer.headers.get("content-encoding") == coding
    assert answer.content == (PWA_DIRECTORY / "css" / "app.css").read_bytes()


async def test_images_are_sent_as_they_are_and_head_says_the_size(
    fx_client: httpx.AsyncClient,
) -> None:
    icon = await fx_client.get("/icons/icon-192.png", headers={"Accept-Encoding": "br"})
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/png"
    assert "content-encoding" not in icon.headers
    head = await fx_client.head("/js/app.js", headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) == (PWA_DIRECTORY / "js" / "app.js").stat().st_size


@pytest.mark.parametrize(
    "path",
    [
        "/js/../../server/app.py",
        "/%2e%2e/server/app.py",
        "/js/%2e%2e/%2e%2e/pyproject.toml",
        "/.hidden",
        "/js",
        "/icons/",
        "/no-such-file.js",
        "/js/%00.js",
        "/js\\..\\sw.js",
    ],
)
async def test_nothing_outside_the_app_and_nothing_hidden(
    fx_client: httpx.AsyncClient, path: str
) -> None:
    answer = await fx_client.get(path)
    assert answer.status_code == 404
    assert b"import" not in answer.content


async def test_a_file_changed_while_the_server_runs_is_sent_anew(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><p>one</p>" * 40)
    app = Litestar(route_handlers=[pwa_router(tmp_path)])
    async with AsyncTestClient(app) as client:
        first = await client.get("/", headers={"Accept-Encoding": "gzip"})
        assert first.status_code == 200
        assert gzip.decompress(await _raw(client, "/")) == first.content
        (tmp_path / "index.html").write_text("<!doctype html><p>two</p>" * 40)
        # A new modification time (coarse file systems could give the same one).
        os.utime(tmp_path / "index.html", ns=(1, 2_000_000_000))
        changed = await client.get(
            "/", headers={"If-None-Match": first.headers["etag"], "Accept-Encoding": "gzip"}
        )
        assert changed.status_code == 200
        assert b"two" in changed.content
        assert changed.headers["etag"] != first.headers["etag"]


async def _raw(client: httpx.AsyncClient, path: str) -> bytes:
    """The bytes as sent (gzip), not decoded by httpx."""
    async with client.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as answer:
        return b"".join([chunk async for chunk in answer.aiter_raw()])


async def test_one_copy_per_file_however_its_path_is_spelled(tmp_path: Path) -> None:
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "a.js").write_text("export const a = 1;\n" * 100)
    files = AppFiles(tmp_path)
    spellings = ["/js/a.js", "/js//a.js", "/js/./a.js", "js/a.js", "/js///a.js"]
    assert all(files.get(path) is files.get("/js/a.js") for path in spellings)
    assert len(files._files) == 1
