"""msgspec's validation messages, said in plain words for a ``request.invalid`` answer.

msgspec writes for programmers (``Expected `str` matching regex '^([01][0-9]|2[0-3]):...$'``,
``Invalid RFC3339 encoded date``); a request error's ``message`` is read by people building a
client, and sometimes shown further. So the one place a ``ValidationError`` becomes a message
(``server/wire.py`` for the bodies Reppu reads itself, ``server/errors.py`` for what Litestar
reads) passes it through :func:`plain`: a sentence without regexes, backticks or type names.
Where the problem is stays in the answer's ``field``.
"""

from __future__ import annotations

import re

_KINDS = {
    "str": "text",
    "int": "a whole number",
    "float": "a number",
    "number": "a number",
    "bool": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "nothing (null)",
    "datetime": "a date and time",
    "date": "a date",
    "time": "a time of day",
    "duration": "a duration",
    "uuid": "an id",
    "bytes": "base64 text",
}
_FORMS = {
    r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$": "HH:MM",
    r"^[A-Za-z0-9_-]+$": "letters, digits, - and _",
    r"^[a-z]{2,3}$": "a language code such as fi, sv or en",
    r"^[^\x00\s]+$": "no spaces",
}
_NO_NUL = r"^[^\x00]*$"
_RFC3339 = {
    "datetime": "a valid date and time (for example 2026-09-01T08:15:00+03:00)",
    "date": "a valid date (for example 2026-09-01)",
    "time": "a valid time of day (for example 08:15:00)",
}
_WORDS = {">=": "at least", "<=": "at most", ">": "more than", "<": "less than"}

_REGEX = re.compile(r"^Expected `[^`]+` matching regex '(?P<regex>.*)'$", re.DOTALL)
_LENGTH = re.compile(r"^Expected `(?P<kind>[^`]+)` of length (?P<op>[<>]=?) (?P<n>\d+)$")
_RANGE = re.compile(r"^Expected `[^`]+` (?P<op>[<>]=?) (?P<n>\S+)$")
_MULTIPLE = re.compile(r"^Expected `[^`]+` that's a multiple of (?P<n>\S+)$")
_GOT = re.compile(r"^Expected `(?P<want>[^`]+)`, got `(?P<got>[^`]+)`$")
_ENCODED = re.compile(r"^Invalid RFC3339 encoded (?P<kind>\w+)$")


def _kind(names: str) -> str:
    return " or ".join(
        _KINDS.get(name.strip(), "another kind of value") for name in names.split("|")
    )


def _length(kind: str, op: str, n: str) -> str:
    things = "characters" if kind == "str" else "items"
    if op in (">=", ">") and n in ("0", "1"):
        return "This must not be empty."
    size = "short" if op.startswith(">") else "long"
    return f"This is too {size}: {_WORDS[op]} {n} {things}."


def plain(message: str) -> str:
    """``message`` (msgspec's, without its ``- at `$.path``` part) in plain words."""
    message = message.strip()
    if "missing required field" in message:
        return "This field is required."
    if "unknown field" in message:
        return "This field is not known here."
    if match := _REGEX.match(message):
        regex = match.group("regex")
        if regex == _NO_NUL:
            return "This text holds a character that is not allowed (NUL)."
        form = _FORMS.get(regex)
        return "This value is not in the expected form" + (f" ({form})." if form else ".")
    if match := _LENGTH.match(message):
        return _length(match.group("kind"), match.group("op"), match.group("n"))
    if match := _RANGE.match(message):
        return f"This number must be {_WORDS[match.group('op')]} {match.group('n')}."
    if match := _MULTIPLE.match(message):
        return f"This number must be a multiple of {match.group('n')}."
    if match := _GOT.match(message):
        return f"Expected {_kind(match.group('want'))}, got {_kind(match.group('got'))}."
    if match := _ENCODED.match(message):
        example = _RFC3339.get(match.group("kind"), "a valid date or time")
        return f"This is not {example}."
    if message.startswith("Invalid enum value"):
        return "This is not one of the allowed values."
    if "out of range" in message:
        return "This number is out of range."
    if "`" in message or "regex" in message or message.startswith(("Expected", "Invalid")):
        return "This value is not valid."
    return message
