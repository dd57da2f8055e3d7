"""Logging in and out."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from schemas.core import NO_NUL, Role


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NO_NUL)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    device_name: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NO_NUL)]
    """A name the person recognises in a list of their devices ("Aino's phone")."""


class LoginResponse(msgspec.Struct):
    token: str
    """Send as ``Authorization: Bearer <token>``. Shown once; the server keeps only a keyed hash."""
    expires_at: dt.datetime
    person_id: int
    roles: list[Role]
    """The person's roles today."""
