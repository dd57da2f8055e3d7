"""The PWA's files are served at ``/`` without a token, beside an API that still needs one.

Runs in-process (no browser) on both databases, like the other API tests.
"""

from __future__ import annotations

import httpx

from tests.conftest import log_in_as


async def test_app_shell_is_public_and_revalidated(fx_client: httpx.AsyncClient) -> None:
    page = await fx_client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<link rel="manifest"' in page.text
    assert page.headers["cache-control"] == "no-cache"

    worker = await fx_client.get("/sw.js")
    assert worker.status_code == 200
    assert "javascript" in worker.headers["content-type"]
    assert worker.headers["cache-control"] == "no-cache"
    assert "addEventListener('push'" in worker.text

    manifest = await fx_client.get("/manifest.webmanifest")
    assert manifest.status_code == 200
    body = manifest.json()
    assert body["start_url"] == "/"
    assert {icon["sizes"] for icon in body["icons"]} >= {"192x192", "512x512"}
    for icon in body["icons"]:
        assert (await fx_client.get(icon["src"])).status_code == 200

    assert (await fx_client.get("/js/app.js")).status_code == 200
    assert (await fx_client.get("/no-such-file.js")).status_code == 404


async def test_api_still_needs_a_token_and_schema_still_works(
    fx_client: httpx.AsyncClient, fx_city: object
) -> None:
    refused = await fx_client.get("/me")
    assert refused.status_code == 401
    assert refused.json()["code"] == "auth.required"
    assert (await fx_client.post("/sync/pull", json={"schema_version": 1})).status_code == 401
    assert (await fx_client.get("/schema/openapi.json")).status_code == 200
    assert (await fx_client.get("/health")).status_code == 200
    headers = await log_in_as(fx_client, "mother")
    me = await fx_client.get("/me", headers=headers)
    assert me.status_code == 200
    # The static files are not in the API's description.
    paths = (await fx_client.get("/schema/openapi.json")).json()["paths"]
    assert "/" not in paths
    assert all(not p.startswith("/js") for p in paths)


def test_every_word_is_in_finnish_swedish_and_english() -> None:
    """The three dictionaries of clients/pwa/js/words/ have the same keys, none empty, and
    every key the app's code asks for exists."""
    import re
    from pathlib import Path

    pwa = Path(__file__).resolve().parents[2] / "clients" / "pwa"
    loaders = re.findall(
        r"(\w+): \(\) => import\('\./words/(\w+)\.js'\)", (pwa / "js" / "i18n.js").read_text()
    )
    assert loaders == [("fi", "fi"), ("sv", "sv"), ("en", "en")]
    assert sorted(p.name for p in (pwa / "js" / "words").iterdir()) == ["en.js", "fi.js", "sv.js"]
    keys: dict[str, set[str]] = {}
    for language in ("fi", "sv", "en"):
        source = (pwa / "js" / "words" / f"{language}.js").read_text()
        block = source.split("export default {", 1)[1].split("\n};", 1)[0]
        found = re.findall(r"(?:^|,|\s)(\w+): '((?:[^'\\]|\\.)*)'", block)
        found += re.findall(r'(?:^|,|\s)(\w+): "((?:[^"\\]|\\.)*)"', block)
        assert all(text.strip() for _, text in found), language
        keys[language] = {k for k, _ in found}
    assert keys["fi"] == keys["sv"] == keys["en"]
    used = set()
    for path in (pwa / "js").glob("*.js"):
        used |= set(re.findall(r"\bt\('(\w+)'", path.read_text()))
    assert used <= keys["fi"], used - keys["fi"]


def test_the_worker_caches_every_file_of_the_app() -> None:
    """A file left out of sw.js's SHELL would be missing offline; a module left out of
    index.html's modulepreload links would cost a round trip on a slow network."""
    import re
    from pathlib import Path

    pwa = Path(__file__).resolve().parents[2] / "clients" / "pwa"
    shell = set(re.findall(r"^  '(/[^']*)',$", (pwa / "sw.js").read_text(), re.M))
    files = {
        "/" + str(p.relative_to(pwa))
        for p in pwa.rglob("*")
        if p.is_file() and p.name not in ("index.html", "sw.js")
    }
    assert shell == files | {"/"}
    preloaded = set(
        re.findall(r'<link rel="modulepreload" href="([^"]+)">', (pwa / "index.html").read_text())
    )
    modules = {f for f in files if f.startswith("/js/")}

    def imports(module: str, pattern: str) -> set[str]:
        source = (pwa / module.lstrip("/")).read_text()
        folder = module.rsplit("/", 1)[0]
        return {f"{folder}/{name}" for name in re.findall(pattern, source)}

    static_import = r"(?m)^import [^;]*? from '\./([\w/]+\.js)';"
    dynamic_import = r"import\('\./([\w/]+\.js)'\)"
    # Everything app.js imports, directly or not, is preloaded: the first screen needs it.
    first_screen, todo = {"/js/app.js"}, ["/js/app.js"]
    while todo:
        for found in imports(todo.pop(), static_import) - first_screen:
            first_screen.add(found)
            todo.append(found)
    assert preloaded | {"/js/app.js"} == first_screen
    # What the first screen loads only when asked (a view, a language's words) is not preloaded
    # by a link, and every module is reachable one way or the other.
    later = set().union(*(imports(m, dynamic_import) for m in first_screen)) - first_screen
    assert later == {
        "/js/forms.js",
        "/js/staff.js",
        "/js/words/fi.js",
        "/js/words/sv.js",
        "/js/words/en.js",
    }
    assert first_screen | later == modules
    # One language's words are preloaded by index.html's script, named the same way.
    assert "link.href = '/js/words/' + code + '.js';" in (pwa / "index.html").read_text()
