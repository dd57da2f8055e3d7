"""Push payloads: compact, always within the byte limit, cut where a reader would cut."""

from __future__ import annotations

import json
import unicodedata

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifications.payload import ELLIPSIS, PushPayload, encode_payload, shorter
from notifications.webpush import MAX_PLAINTEXT, Kind


def test_bulletin_shape() -> None:
    raw = encode_payload(Kind.BULLETIN, item_id=42, title="Tiedote", body="Koulu alkaa klo 9.")
    assert raw == (
        b'{"pull":1,"kind":"bulletin","id":42,"title":"Tiedote","body":"Koulu alkaa klo 9."}'
    )


def test_digest_shape() -> None:
    raw = encode_payload(Kind.DIGEST, item_id=None, title="3 uutta", body="", count=3)
    assert raw == b'{"pull":1,"kind":"digest","count":3,"title":"3 uutta"}'
    one = encode_payload(Kind.DIGEST, item_id=None, title="", body="", count=1)
    assert one == b'{"pull":1,"kind":"digest","count":1}'


def test_fits_untouched_when_short() -> None:
    raw = encode_payload(Kind.MESSAGE, item_id=7, title="Hei", body="ä" * 100)
    assert json.loads(raw)["body"] == "ä" * 100


def test_body_is_cut_first_on_a_character_boundary() -> None:
    body = "Äänestys päättyy perjantaina. " * 300  # 2 bytes per ä: far over the limit
    raw = encode_payload(Kind.BULLETIN, item_id=1, title="Äänestys", body=body)
    assert len(raw) <= MAX_PLAINTEXT
    decoded = json.loads(raw.decode("utf-8"))  # valid UTF-8: no character split
    assert decoded["title"] == "Äänestys"
    assert decoded["body"].endswith(ELLIPSIS)
    assert body.startswith(decoded["body"].removesuffix(ELLIPSIS))
    assert not decoded["body"].removesuffix(ELLIPSIS).endswith(" ")  # no space before "…"
    # As long as fits: one more character would not.
    assert len(raw) > MAX_PLAINTEXT - 8


def test_escapes_are_counted() -> None:
    # Each control character costs six bytes once escaped (\u0001): counting the text would
    # be six times off.
    body = "\x01" * 2000
    raw = encode_payload(Kind.MESSAGE, item_id=1, title="t", body=body, limit=500)
    assert len(raw) <= 500
    assert len(raw) > 500 - 6 - 3
    assert json.loads(raw)["body"].endswith(ELLIPSIS)


def test_title_is_cut_once_the_body_is_gone() -> None:
    raw = encode_payload(Kind.BULLETIN, item_id=5, title="Ö" * 100, body="x" * 100, limit=80)
    decoded = json.loads(raw)
    assert len(raw) <= 80
    assert "body" not in decoded
    assert decoded["title"].endswith(ELLIPSIS)
    assert decoded["title"].startswith("Ö")


def test_ids_only_when_nothing_else_fits() -> None:
    raw = encode_payload(Kind.BULLETIN, item_id=5, title="Otsikko", body="Teksti", limit=45)
    assert raw == b'{"pull":1,"kind":"bulletin","id":5}'
    with pytest.raises(ValueError, match="too small"):
        encode_payload(Kind.BULLETIN, item_id=5, title="", body="", limit=20)


def test_combining_marks_and_emoji_are_not_split() -> None:
    # NFC composes "a" + U+0308 into one "ä"; a mark with no composed form (U+0333) stays
    # two characters and must stay with its letter.
    body = "x" + "a\u0333" * 300
    raw = encode_payload(Kind.MESSAGE, item_id=1, title="", body=body, limit=200)
    cut = json.loads(raw)["body"].removesuffix(ELLIPSIS)
    assert not unicodedata.combining(body[len(cut)])
    family = "\N{MAN}\N{ZERO WIDTH JOINER}\N{WOMAN}\N{ZERO WIDTH JOINER}\N{GIRL}"
    for limit in range(60, 120):
        raw = encode_payload(Kind.MESSAGE, item_id=1, title="", body=family * 20, limit=limit)
        cut = json.loads(raw).get("body", "").removesuffix(ELLIPSIS)
        assert len(cut) % len(family) == 0, limit


def test_decomposed_text_is_composed() -> None:
    raw = encode_payload(Kind.MESSAGE, item_id=1, title="a\u0308", body="")
    assert json.loads(raw)["title"] == "\N{LATIN SMALL LETTER A WITH DIAERESIS}"


def test_shorter_keeps_ids_only() -> None:
    raw = encode_payload(Kind.DIGEST, item_id=None, title="Uutisia", body="Paljon", count=4)
    assert shorter(raw) == b'{"pull":1,"kind":"digest","count":4}'
    raw = encode_payload(Kind.LESSON_CHANGE, item_id=9, title="Muutos", body="Sali 2")
    assert shorter(raw) == b'{"pull":1,"kind":"lesson_change","id":9}'


def test_round_trips_through_the_struct() -> None:
    raw = encode_payload(Kind.URGENT, item_id=3, title="Koulu suljettu", body="Tänään")
    decoded = msgspec.json.decode(raw, type=PushPayload)
    assert decoded == PushPayload(
        pull=1, kind=Kind.URGENT, id=3, title="Koulu suljettu", body="Tänään"
    )


@given(
    kind=st.sampled_from(Kind),
    item_id=st.none() | st.integers(min_value=0, max_value=2**53),
    title=st.text(max_size=300),
    body=st.text(max_size=6000),
    count=st.integers(min_value=0, max_value=10_000),
    limit=st.integers(min_value=70, max_value=MAX_PLAINTEXT),
)
def test_always_within_the_limit(
    kind: Kind, item_id: int | None, title: str, body: str, count: int, limit: int
) -> None:
    raw = encode_payload(kind, item_id=item_id, title=title, body=body, count=count, limit=limit)
    assert len(raw) <= limit
    decoded = msgspec.json.decode(raw, type=PushPayload)
    assert (decoded.pull, decoded.kind, decoded.id) == (1, kind, item_id)
    shown_title = decoded.title.removesuffix(ELLIPSIS)
    shown_body = decoded.body.removesuffix(ELLIPSIS)
    assert unicodedata.normalize("NFC", title).startswith(shown_title)
    assert unicodedata.normalize("NFC", body).startswith(shown_body)
    if decoded.body:
        # The title is only cut once the body is gone entirely.
        assert decoded.title == unicodedata.normalize("NFC", title)
    assert len(shorter(raw)) <= len(raw)
