"""``docs/native-clients.md`` names only routes the server has: every ``METHOD /path`` in it
is an operation of the OpenAPI document the server serves (which is checked against the
routes themselves in ``tests/server/test_openapi.py``)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

GUIDE = Path(__file__).resolve().parents[2] / "docs/native-clients.md"
NAMED = re.compile(r"`(GET|POST|PUT|DELETE|PATCH) (/[^`?\s]*)")


async def test_every_route_the_guide_names_exists(fx_client: httpx.AsyncClient) -> None:
    named = {(method.lower(), path) for method, path in NAMED.findall(GUIDE.read_text())}
    assert len(named) > 15  # the pattern still finds the guide's routes
    document = (await fx_client.get("/schema/openapi.json")).json()
    served = {
        (method, re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", path))
        for path, item in document["paths"].items()
        for method in item
    }
    served.add(("get", "/schema/openapi.json"))  # the document itself
    assert sorted(named - served) == []
