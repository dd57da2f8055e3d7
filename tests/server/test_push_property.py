"""A push never fails for what one of its mutations carries (Hypothesis, both databases).

An outbox is sent in order, and the protocol promises that a rejected mutation never blocks the
ones after it (``docs/sync-protocol.md``). Here Hypothesis builds pushes of good mutations
(``message.send`` with a body of its own, so that each can be counted) among bad ones: any
value in any field (id, name, args, occurred_at, an extra field, a missing one, an item that
is not an object at all), huge integers, floats (NaN in MessagePack), nested values, strings
with NUL, and times that are valid RFC 3339 but fall outside years 1-9999 in UTC. The push is
sent as JSON or as MessagePack, and must

- answer 200, one result per item, in order;
- reject exactly the bad mutations, each with a stable code and a reason;
- apply every good one exactly once, and applying the same push again applies nothing more
  and answers the same.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx
import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.sync import SCHEMA_VERSION
from server.catalogue import CATALOGUE
from server.clock import utc_now
from server.db.message_tables import Message
from tests.city import City
from tests.conftest import log_in_as

_clients = itertools.count()
_logins: dict[int, dict[str, str]] = {}

TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12)
"""Any text JSON and MessagePack can carry (a lone surrogate is not UTF-8), NUL included."""
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
OUT_OF_YEARS = st.sampled_from(
    [
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T13:59:59+14:00",
        "9999-12-31T23:59:59-14:00",
        "9999-12-31T10:00:00-14:00",
    ]
)


def values(msgpack: bool) -> st.SearchStrategy[Any]:
    """Any value the format can carry, nested a few levels."""
    leaves = SCALARS
    if msgpack:
        leaves = leaves | st.floats() | st.binary(max_size=8)
    else:
        leaves = leaves | st.integers(min_value=2**64, max_value=10**40)
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
        max_leaves=8,
    )


@st.composite
def slots(draw: st.DrawFn, msgpack: bool) -> tuple[str, Any]:
    """One item of the push: ("good", None) or (kind of fault, the value that makes it)."""
    anything = values(msgpack)
    kind = draw(
        st.sampled_from(
            [
                "good",
                "good",
                "good",
                "time_out_of_years",
                "time_not_a_time",
                "name",
                "args_not_an_object",
                "args_unknown_field",
                "args_body",
                "extra_field",
                "missing_field",
                "id",
                "not_an_object",
                "any_mutation",
                "any_mutation",
            ]
        )
    )
    if kind == "good":
        return kind, None
    if kind == "time_out_of_years":
        return kind, draw(OUT_OF_YEARS)
    if kind == "time_not_a_time":
        return kind, draw(anything.filter(lambda v: not isinstance(v, str)))
    if kind == "name":
        return kind, draw(anything.filter(lambda v: not (isinstance(v, str) and v in CATALOGUE)))
    if kind == "args_not_an_object":
        return kind, draw(anything.filter(lambda v: not isinstance(v, dict)))
    if kind == "args_unknown_field":
        return kind, (
            draw(TEXT.filter(lambda k: k not in ("body", "to", "subject"))),
            draw(anything),
        )
    if kind == "args_body":
        return kind, draw(
            anything.filter(lambda v: not isinstance(v, str)) | st.just("a\x00b") | st.just("")
        )
    if kind == "extra_field":
        return kind, (
            draw(TEXT.filter(lambda k: k not in ("id", "name", "args", "occurred_at"))),
            draw(anything),
        )
    if kind == "missing_field":
        return kind, draw(st.sampled_from(["name", "args", "occurred_at"]))
    if kind == "any_mutation":
        # Any mutation of the catalogue, its args' own fields given any values: applied or
        # rejected, it must not fail the push, nor cost the mutations after it.
        name = draw(st.sampled_from(sorted(CATALOGUE)))
        fields = [f.encode_name for f in msgspec.structs.fields(CATALOGUE[name].args_type)]
        return kind, (name, draw(st.dictionaries(st.sampled_from(fields), anything, max_size=4)))
    if kind == "id":
        return kind, draw(anything.filter(lambda v: not (type(v) is int and 1 <= v <= 2**62)))
    return kind, draw(anything.filter(lambda v: not isinstance(v, dict)))


PLACED = {
    "any_mutation",
    "good",
    "time_out_of_years",
    "time_not_a_time",
    "name",
    "args_not_an_object",
    "args_unknown_field",
    "args_body",
    "extra_field",
    "missing_field",
}
"""The kinds whose id is an id: they take a place in the client's sequence."""


def _build(
    client: str, mother: int, plan: list[tuple[str, Any]]
) -> tuple[list[Any], list[str | None]]:
    """The push's items, and for each its good body (None for a bad one)."""
    items: list[Any] = []
    bodies: list[str | None] = []
    next_id = 1
    now = utc_now().isoformat()
    for position, (kind, value) in enumerate(plan):
        body = f"{client}-{position}"
        mutation: dict[str, Any] = {
            "id": next_id,
            "name": "message.send",
            "args": {"to": [mother], "subject": "s", "body": body},
            "occurred_at": now,
        }
        if kind in PLACED:
            next_id += 1
        if kind.startswith("time_"):
            mutation["occurred_at"] = value
        elif kind == "name":
            mutation["name"] = value
        elif kind == "args_not_an_object":
            mutation["args"] = value
        elif kind == "args_unknown_field":
            mutation["args"][value[0]] = value[1]
        elif kind == "args_body":
            mutation["args"]["body"] = value
        elif kind == "extra_field":
            mutation[value[0]] = value[1]
        elif kind == "missing_field":
            del mutation[value]
        elif kind == "any_mutation":
            mutation["name"], mutation["args"] = value
        elif kind == "id":
            mutation["id"] = value
        elif kind == "not_an_object":
            mutation = value
        items.append(mutation)
        bodies.append(body if kind == "good" else None)
    return items, bodies


def _encode(envelope: dict[str, Any], msgpack: bool) -> tuple[bytes, str]:
    if msgpack:
        return msgspec.msgpack.encode(envelope), "application/x-msgpack"
    # The standard library: msgspec encodes no integer past 64 bits, and JSON may carry them.
    return json.dumps(envelope, allow_nan=False).encode(), "application/json"


async def _count(body: str) -> int:
    return await Message.count().where(Message.body == body)


PUSH_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    # The app, its database and the city are made once for the test, not per example: each
    # example pushes with a client id of its own, and its messages have bodies of their own.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PUSH_SETTINGS
@given(data=st.data())
async def test_a_push_rejects_only_its_bad_mutations_and_applies_the_rest_once(
    fx_client: httpx.AsyncClient, fx_city: City, data: st.DataObject
) -> None:
    msgpack = data.draw(st.booleans(), label="msgpack")
    plan = data.draw(st.lists(slots(msgpack), min_size=1, max_size=8), label="plan")
    # One login for all the examples (argon2 is slow on purpose).
    if id(fx_client) not in _logins:
        _logins.clear()
        _logins[id(fx_client)] = await log_in_as(fx_client, "teacher")
    headers = _logins[id(fx_client)]
    client = f"prop{next(_clients):06d}x"
    items, bodies = _build(client, fx_city.mother, plan)
    content, media = _encode(
        {"schema_version": SCHEMA_VERSION, "client_id": client, "mutations": items}, msgpack
    )
    answers = []
    for _ in range(2):  # the second time as if the first answer was lost
        answer = await fx_client.post(
            "/sync/push", content=content, headers={**headers, "Content-Type": media}
        )
        assert answer.status_code == 200, answer.text
        answers.append(answer.json()["results"])
        for body in bodies:
            if body is not None:
                assert await _count(body) == 1, body
    first, replayed = answers
    assert replayed == first
    assert len(first) == len(plan)
    for (kind, value), body, result in zip(plan, bodies, first, strict=True):
        if body is not None:
            assert result["status"] == "applied", (kind, result)
            continue
        if kind == "any_mutation" and result["status"] == "applied":
            continue
        assert result["status"] == "rejected", (kind, value, result)
        if kind != "any_mutation":
            assert result["code"] in ("mutation.invalid_args", "mutation.unknown"), result
        assert isinstance(result.get("reason"), str), result
        assert result["reason"], result
        if kind in ("time_out_of_years", "time_not_a_time"):
            assert result.get("field") == "$.occurred_at", result


async def test_a_time_outside_years_1_to_9999_in_utc_does_not_block_the_outbox(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    """The report's case: ``0001-01-01T00:00:00+14:00`` made every retry of the push a 500."""
    headers = await log_in_as(fx_client, "teacher")
    now = utc_now()
    mutations = [
        {
            "id": 1,
            "name": "message.send",
            "occurred_at": moment,
            "args": {"to": [fx_city.mother], "subject": "s", "body": f"edge-{i}"},
        }
        for i, moment in enumerate(
            ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", now.isoformat()]
        )
    ]
    for i, mutation in enumerate(mutations, start=1):
        mutation["id"] = i
    body = {"schema_version": SCHEMA_VERSION, "client_id": "edge-times-1", "mutations": mutations}
    answer = await fx_client.post("/sync/push", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected", "applied"]
    assert [r.get("field") for r in results[:2]] == ["$.occurred_at", "$.occurred_at"]
    assert await _count("edge-2") == 1
