"""The pull cursor: format 2 says what format 1 said in fewer bytes, and both are read.

The format-1 writer below is the one the server used before format 2, kept here (not in
``sync/cursor.py``) so that the reader is tested against cursors as devices in the field hold
them; the two literal cursors were made by that code at 71bb8d2.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.core import PartitionKind
from sync.cursor import KIND_CODES, CursorError, decode_cursor, encode_cursor

KEY = hashlib.sha256(b"golden").digest()
OTHER_KEY = hashlib.sha256(b"another epoch").digest()
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)

PUPIL = {
    "inbox:4512": 61234,
    "person:4512": 40211,
    "group:87": 58000,
    "school:3": 12000,
    "municipality:1": 900,
}
GUARDIAN = {
    "inbox:5120": 61234,
    "person:4512": 40211,
    "group:87": 58000,
    "group-guardians:87": 51000,
    "school:3": 12000,
    "school-guardians:3": 30000,
    "municipality:1": 900,
    "municipality-guardians:1": 2000,
}
GOLDEN_V1 = (
    "kwGFqGdyb3VwOjg3zeKQqmluYm94OjQ1MTLN7zKubXVuaWNpcGFsaXR5OjHNA4SrcGVyc29uOjQ1MTLNnROoc2Nob29s"
    "OjPNLuCBqGdyb3VwOjg3zepg.ecS5uN2aqyhtrHwRBdf1lQ"
)
GOLDEN_V1_EMPTY = "kwGAgA.-MZmNV0iq4bJdFFDe-4alg"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def encode_format_1(
    key: bytes, positions: dict[str, int], floors: dict[str, int], fmt: int = 1
) -> str:
    state = [fmt, dict(sorted(positions.items())), dict(sorted(floors.items()))]
    payload = _b64(msgspec.msgpack.encode(state))
    tag = hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest()[:16]
    return f"{payload}.{_b64(tag)}"


def sign_format_2(key: bytes, payload: bytes) -> str:
    """A format-2 cursor of any payload bytes, signed as the protocol says."""
    text = _b64(payload)
    return text + _b64(hmac.new(key, text.encode("ascii"), hashlib.sha256).digest()[:12])


partition_names = st.one_of(
    st.builds(
        lambda kind, ident: f"{kind.value}:{ident}",
        st.sampled_from(PartitionKind),
        st.integers(min_value=0, max_value=10**20),  # past 2**63 they go by name
    ),
    st.text(max_size=20),  # anything else: a kind with no code yet, "group:007", ...
)
maps = st.dictionaries(partition_names, INT64, max_size=12)


@settings(max_examples=300, deadline=None)
@given(positions=maps, floors=maps)
def test_any_positions_and_floors_come_back_as_they_went(
    positions: dict[str, int], floors: dict[str, int]
) -> None:
    cursor = encode_cursor(KEY, positions, floors)
    assert "." not in cursor
    assert decode_cursor(KEY, cursor) == (positions, floors)


@settings(max_examples=200, deadline=None)
@given(positions=maps, floors=maps)
def test_format_1_cursors_are_still_read(positions: dict[str, int], floors: dict[str, int]) -> None:
    assert decode_cursor(KEY, encode_format_1(KEY, positions, floors)) == (positions, floors)


def test_cursors_made_before_format_2_are_read() -> None:
    assert decode_cursor(KEY, GOLDEN_V1) == (PUPIL, {"group:87": 60000})
    assert decode_cursor(KEY, GOLDEN_V1_EMPTY) == ({}, {})


@pytest.mark.parametrize(
    ("name", "tricky"),
    [
        ("leading zero", {"group:007": 1, "group:7": 2}),
        ("kind without a code", {"classroom:5": 1}),
        ("no id", {"group:": 1, "group": 2, "": 3}),
        ("colons", {"group:5:6": 1, "a:b:c": 2}),
        ("not ascii digits", {"group:٣": 1, "group:+3": 2, "group: 3": 3}),
        ("huge id", {f"person:{10**30}": 1, f"person:{2**64}": 2}),
        ("extreme values", {"person:1": 2**63 - 1, "person:2": -(2**63), "inbox:1": -1}),
    ],
)
def test_names_that_are_not_plain_kind_and_id_survive(name: str, tricky: dict[str, int]) -> None:
    mixed = {**PUPIL, **tricky}
    assert decode_cursor(KEY, encode_cursor(KEY, mixed, tricky)) == (mixed, tricky)


def test_every_partition_kind_has_a_code_and_codes_never_move() -> None:
    # Cursors in the field name kinds by these codes: a new kind is appended, none renumbered.
    assert KIND_CODES == {
        "person": 0,
        "group": 1,
        "group-staff": 2,
        "school": 3,
        "school-staff": 4,
        "municipality": 5,
        "group-guardians": 6,
        "school-guardians": 7,
        "municipality-guardians": 8,
        "inbox": 9,
    }
    assert set(KIND_CODES) == {kind.value for kind in PartitionKind}


@pytest.mark.parametrize("positions", [PUPIL, GUARDIAN], ids=["pupil", "guardian"])
def test_a_typical_cursor_is_less_than_half_its_format_1_size(positions: dict[str, int]) -> None:
    new, old = encode_cursor(KEY, positions, {}), encode_format_1(KEY, positions, {})
    assert len(new) * 2 < len(old)
    assert len(encode_cursor(KEY, {}, {})) <= 24


def _valid_cursors() -> list[str]:
    return [
        encode_cursor(KEY, PUPIL, {}),
        encode_cursor(KEY, GUARDIAN, {"group:87": 60000}),
        encode_cursor(KEY, {}, {}),
        GOLDEN_V1,
        GOLDEN_V1_EMPTY,
    ]


@pytest.mark.parametrize("cursor", _valid_cursors())
def test_a_cut_or_changed_cursor_is_refused(cursor: str) -> None:
    for end in range(len(cursor)):
        with pytest.raises(CursorError):
            decode_cursor(KEY, cursor[:end])
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    for at, was in enumerate(cursor):
        for now in {alphabet[(alphabet.index(was) + 1) % len(alphabet)], "=", "é", "+"}:
            with pytest.raises(CursorError):
                decode_cursor(KEY, cursor[:at] + now + cursor[at + 1 :])
    with pytest.raises(CursorError):
        decode_cursor(KEY, cursor + "A")
    with pytest.raises(CursorError):
        decode_cursor(OTHER_KEY, cursor)  # another epoch


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300))
def test_random_text_is_refused(text: str) -> None:
    with pytest.raises(CursorError):
        decode_cursor(KEY, text)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_random_bytes_with_a_wrong_tag_are_refused(data: bytes) -> None:
    forged = sign_format_2(OTHER_KEY, data)
    with pytest.raises(CursorError):
        decode_cursor(KEY, forged)
    with pytest.raises(CursorError):
        decode_cursor(KEY, f"{_b64(data)}.{forged[-16:]}AAAAAA")


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_signed_bytes_that_are_not_a_cursor_are_refused_cleanly(data: bytes) -> None:
    """Only the server can sign, but a reader that trusts its own bytes still fails cleanly."""
    cursor = sign_format_2(KEY, data)
    try:
        positions, floors = decode_cursor(KEY, cursor)
    except CursorError:
        return
    assert data[:1] == b"\x02"  # only a format-2 payload is ever read
    assert all(isinstance(v, int) for v in [*positions.values(), *floors.values()])


def signed(*fields: object, fmt: int = 2, tail: bytes = b"") -> str:
    """A format-2 cursor, signed with KEY, of a payload made of any ``fields``."""
    return sign_format_2(KEY, bytes((fmt,)) + msgspec.msgpack.encode(list(fields)) + tail)


@pytest.mark.parametrize(
    ("what", "cursor"),
    [
        ("format 3", signed(b"", [], [], fmt=3)),
        ("format 1 byte, format 2 body", signed(b"", [], [], fmt=1)),
        ("no payload", sign_format_2(KEY, b"")),
        ("format 2 in a format-1 cursor", encode_format_1(KEY, PUPIL, {}, fmt=2)),
        ("format 9 in a format-1 cursor", encode_format_1(KEY, PUPIL, {}, fmt=9)),
        ("more kinds than ids", signed(b"\x01\x02", [5], [7])),
        ("unknown kind code", signed(b"\x63", [5], [7])),
        ("a name for a kind code", signed("group", [5], [7])),
        ("bytes after the array", signed(b"", [], [], tail=b"\x00")),
        ("a string position", signed(b"\x01", [5], ["7"])),
        ("too few fields", signed(b"", [])),
        ("too many fields", signed(b"", [], [], b"", [], [], {}, {}, 1)),
        ("floors that do not pair up", signed(b"", [], [], b"\x01", [], [4])),
    ],
)
def test_signed_but_unreadable_cursors_are_refused(what: str, cursor: str) -> None:
    with pytest.raises(CursorError):
        decode_cursor(KEY, cursor)


def test_huge_and_negative_values_go_through_as_format_1_let_them() -> None:
    positions = {"person:1": 2**64 - 1, "group:2": -5}
    assert decode_cursor(KEY, signed(b"\x00\x01", [1, 1], [2**64 - 1, -5])) == (positions, {})
    assert decode_cursor(KEY, encode_format_1(KEY, positions, {})) == (positions, {})


@pytest.mark.parametrize("length", [0, 1, 32, 63, 64, 65, 200])
def test_the_tag_is_hmac_sha_256_whatever_the_key_length(length: int) -> None:
    key = bytes(range(length % 256)) * (length // 256) + bytes(range(length % 256))
    cursor = sign_format_2(key, b"\x02" + msgspec.msgpack.encode([b"\x01", [5], [7]]))
    assert decode_cursor(key, cursor) == ({"group:5": 7}, {})
    assert encode_cursor(key, {"group:5": 7}, {}) == cursor
    assert decode_cursor(key, encode_format_1(key, PUPIL, {})) == (PUPIL, {})
