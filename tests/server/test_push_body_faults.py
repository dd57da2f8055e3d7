"""A push whose text is broken in one mutation costs that mutation only (issue 14).

Text that is not UTF-8 anywhere in a mutation, or a JSON escape of a lone UTF-16 surrogate,
must be that mutation's rejection in its own place, with its own id, and the mutations around
it applied in the same push: otherwise the outbox is stuck for ever.
"""

from __future__ import annotations

import httpx
import msgspec
import pytest

from schemas.sync import SCHEMA_VERSION
from server.clock import utc_now
from server.push_body import unpair_surrogates
from tests.city import City
from tests.conftest import log_in_as

BROKEN = "BROKEN-PLACEHOLDER"


def _push(city: City, client_id: str, second: dict[str, object]) -> dict[str, object]:
    now = utc_now().isoformat()

    def good(n: int) -> dict[str, object]:
        args = {"to": [city.mother], "subject": "s", "body": f"{client_id} {n}"}
        return {"id": n, "name": "message.send", "args": args, "occurred_at": now}

    return {
        "schema_version": SCHEMA_VERSION,
        "client_id": client_id,
        "mutations": [good(1), {**good(2), **second}, good(3)],
    }


async def _send(
    client: httpx.AsyncClient, headers: dict[str, str], content: bytes, msgpack: bool
) -> list[dict[str, object]]:
    media = "application/x-msgpack" if msgpack else "application/json"
    answer = await client.post(
        "/sync/push", content=content, headers={**headers, "Content-Type": media}
    )
    assert answer.status_code == 200, answer.text
    results: list[dict[str, object]] = answer.json()["results"]
    return results


def _encoded(body: dict[str, object], msgpack: bool, broken: bytes) -> bytes:
    """``body`` encoded, with the string ``BROKEN`` replaced by ``broken`` (a string's
    contents, written as raw bytes)."""
    if msgpack:
        placeholder = msgspec.msgpack.encode(BROKEN)
        # A str8 header of the broken bytes' length, then the bytes themselves.
        return msgspec.msgpack.encode(body).replace(
            placeholder, b"\xd9" + bytes([len(broken)]) + broken
        )
    return msgspec.json.encode(body).replace(f'"{BROKEN}"'.encode(), b'"' + broken + b'"')


def _check(results: list[dict[str, object]]) -> None:
    assert [(r["id"], r["status"]) for r in results] == [
        (1, "applied"),
        (2, "rejected"),
        (3, "applied"),
    ], results
    assert results[1]["code"] == "mutation.invalid_args"


NOT_UTF8_PLACES: dict[str, dict[str, object]] = {
    "name": {"name": BROKEN},
    "occurred_at": {"occurred_at": BROKEN},
    "args": {"args": {"to": BROKEN}},
    "unknown-key": {BROKEN: 1},
}


@pytest.mark.parametrize("msgpack", [False, True], ids=["json", "msgpack"])
@pytest.mark.parametrize("place", sorted(NOT_UTF8_PLACES))
async def test_text_not_utf8_in_a_mutation_costs_only_that_mutation(
    fx_client: httpx.AsyncClient, fx_city: City, place: str, msgpack: bool
) -> None:
    headers = await log_in_as(fx_client, "teacher")
    client_id = f"utf8-{place}-{int(msgpack)}"
    body = _push(fx_city, client_id, NOT_UTF8_PLACES[place])
    content = _encoded(body, msgpack, b"lesson.change\xff")
    _check(await _send(fx_client, headers, content, msgpack))
    # Sent again (the app retries its outbox), every answer is the same: nothing is stuck.
    _check(await _send(fx_client, headers, content, msgpack))


SURROGATES: dict[str, tuple[bytes, dict[str, object]]] = {
    "lone-low-in-args": (rb"\udc00", {"args": {"room": BROKEN}}),
    "lone-high-in-args": (rb"x\ud800y", {"args": {"room": BROKEN}}),
    "reversed-pair-in-name": (rb"\udc00\ud800", {"name": BROKEN}),
    "lone-high-as-key": (rb"\ud83d", {"args": {BROKEN: 1}}),
}


@pytest.mark.parametrize("label", sorted(SURROGATES))
async def test_a_lone_surrogate_escape_costs_only_its_mutation(
    fx_client: httpx.AsyncClient, fx_city: City, label: str
) -> None:
    headers = await log_in_as(fx_client, "teacher")
    escape, second = SURROGATES[label]
    body = _push(fx_city, f"surrogate-{label}", second)
    _check(await _send(fx_client, headers, _encoded(body, False, escape), msgpack=False))


async def test_pairs_and_escaped_backslashes_are_text_like_any_other(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    """A surrogate pair is one character, and an escaped backslash before ``udc00`` is no
    escape: the mutations that hold them, beside a lone surrogate, are applied."""
    headers = await log_in_as(fx_client, "teacher")
    body = _push(fx_city, "surrogate-mixed", {"args": {"room": BROKEN}})
    content = (
        _encoded(body, False, rb"\udc00")
        .replace(b'"surrogate-mixed 1"', b'"PAIR"')
        .replace(b'"surrogate-mixed 3"', b'"BACKSLASH"')
        .replace(b'"PAIR"', rb'"\ud83d\ude00 \\udc00"')
        .replace(b'"BACKSLASH"', rb'"\\\\udc00"')
    )
    _check(await _send(fx_client, headers, content, msgpack=False))


def test_unpairing_keeps_pairs_and_escaped_backslashes() -> None:
    assert unpair_surrogates(rb'"\udc00"') == b'"\xff"'
    assert unpair_surrogates(rb'"\ud83d\ude00"') == rb'"\ud83d\ude00"'
    assert unpair_surrogates(rb'"\\udc00"') == rb'"\\udc00"'
    assert unpair_surrogates(rb'"\\\udc00"') == b'"\\\\\xff"'
    assert unpair_surrogates(rb'"\ud83d\ud83d\ude00"') == b'"\xff\\ud83d\\ude00"'
    assert unpair_surrogates(rb'"\ude00\ud83d"') == b'"\xff\xff"'
    assert unpair_surrogates(rb'"\uD83D\uDE00\u00e4"') == rb'"\uD83D\uDE00\u00e4"'
