"""The Finnish national identity number (henkilötunnus): its shape and check character.

Reppu never stores one in clear: the import hashes it at once (``person_identifier``) and a
sign-in's claim is hashed the same way to be compared. Nothing here logs or repeats a value.
"""

from __future__ import annotations

import re

_SHAPE = re.compile(r"^(\d{6})[-+ABCDEFUVWXY](\d{3})([0-9A-Y])$")
_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def is_national_id(value: str) -> bool:
    """Whether ``value`` (upper case, no spaces) is a well-formed henkilötunnus."""
    found = _SHAPE.match(value)
    if found is None:
        return False
    number = int(found.group(1) + found.group(2))
    return _CHECK[number % 31] == found.group(3)
