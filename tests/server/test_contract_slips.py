"""Small contract slips of Reppu issue 14, item 8: Accept-Encoding's q-values, the calendar
feed's Content-Type, and the time format of ``/me/notifications``."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from server.compression import accepted_weights, choose_encoding
from server.db.notify_tables import NotifyPreference
from tests.city import City
from tests.devices import device
from tests.server.test_calendar import feed_url

# (Accept-Encoding, the Content-Encoding the answer must have; None: uncompressed)
NEGOTIATIONS: list[tuple[str, str | None]] = [
    ("br;q=0, gzip", "gzip"),
    ("gzip;q=0", None),
    ("gzip;q=0, br", "br"),
    ("gzip, br", "br"),
    ("gzip;q=0.5, br;q=0.4", "gzip"),
    ("gzip;q=0.5, br;q=0.500", "br"),
    ("BR ; Q=0 , GZIP", "gzip"),
    (" gzip ;q= 1 ", "gzip"),
    ("*", "br"),
    ("*;q=0", None),
    ("*, br;q=0", "gzip"),
    ("*;q=0, gzip;q=0.1", "gzip"),
    ("identity;q=0", None),
    ("identity", None),
    ("deflate", None),
    ("", None),
    ("x-gzip", "gzip"),
    ("br;q=1.5, gzip", "gzip"),
    ("br;q=abc, gzip;q=0.2", "gzip"),
    ("br;q=-0, gzip", "gzip"),
    ("br;level=1", "br"),
]


@pytest.mark.parametrize(("header", "expected"), NEGOTIATIONS)
def test_the_coding_follows_the_q_values(header: str, expected: str | None) -> None:
    assert choose_encoding(header) == expected


def test_weights_are_read_per_coding() -> None:
    assert accepted_weights("br;q=0, GZIP;q=0.7, *;q=0.1, bogus;q=2") == {
        "br": 0.0,
        "gzip": 0.7,
        "*": 0.1,
    }


async def test_answers_are_compressed_as_accept_encoding_says(
    fx_client: httpx.AsyncClient,
) -> None:
    for header, expected in NEGOTIATIONS:
        answer = await fx_client.get("/schema/openapi.json", headers={"Accept-Encoding": header})
        assert answer.status_code == 200
        assert answer.headers.get("content-encoding") == expected, header
        assert answer.json()["openapi"]  # httpx decoded what it was sent


async def test_the_calendar_feed_names_its_charset_once(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    path = await feed_url(fx_client, "mother", fx_city.aino)
    answer = await fx_client.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/calendar; charset=utf-8"


async def test_notification_times_are_hh_mm_both_ways(
    fx_client: httpx.AsyncClient, fx_city: City
) -> None:
    mother = await device(fx_client, "mother")
    answer = await fx_client.get("/me/notifications", headers=mother.headers)
    assert answer.json() == {
        "webpush": "instant",
        "apprise": "instant",
        "quiet_start": "21:00",
        "quiet_end": "07:00",
        "digest_at": "18:00",
    }
    # What the PWA's <input type="time"> sends, and an older client's seconds (dropped).
    body = {"quiet_start": "22:15", "quiet_end": "06:45:30", "digest_at": "17:05:00"}
    answer = await fx_client.put("/me/notifications", json=body, headers=mother.headers)
    assert answer.status_code == 200, answer.text
    expected = {"quiet_start": "22:15", "quiet_end": "06:45", "digest_at": "17:05"}
    assert {k: answer.json()[k] for k in expected} == expected
    answer = await fx_client.get("/me/notifications", headers=mother.headers)
    assert {k: answer.json()[k] for k in expected} == expected
    (row,) = await NotifyPreference.select(
        NotifyPreference.quiet_start, NotifyPreference.quiet_end, NotifyPreference.digest_at
    )
    assert row == {
        "quiet_start": dt.time(22, 15),
        "quiet_end": dt.time(6, 45),
        "digest_at": dt.time(17, 5),
    }
    for bad in ("7:00", "24:00", "21:60", "21:00+02:00", "21:00Z", "21:00:00.5", "21", "2100"):
        body = {"quiet_start": bad, "quiet_end": "07:00"}
        answer = await fx_client.put("/me/notifications", json=body, headers=mother.headers)
        assert (answer.status_code, answer.json()["code"], answer.json()["field"]) == (
            422,
            "request.invalid",
            "$.quiet_start",
        ), bad
