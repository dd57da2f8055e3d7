"""How Reppu's processes log: text for a terminal, or one JSON object per line for a log
collector (``REPPU_LOG_FORMAT=json``; ``docs/operations.md``).

Reppu's own code never logs a token, a password, a message body or a national identity
number (each such place says so where it logs). As a second line of defence every record,
in either format, passes :class:`RedactSecrets`, which blanks what looks like a bearer token
or a Finnish personal identity code wherever it appears, in the message or its arguments.
The access log's feed tokens and sign-in codes are taken out before that, by the filters of
``server/calendar.py`` and ``server/signin/logs.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from typing import Any

_BEARER = re.compile(r"(?i)(bearer(?:\s+|%20|\+))[A-Za-z0-9._~+/=-]{8,}")
_SECRET_QUERY = re.compile(
    r"(?i)([?&;](?:access_token|token|password|passwd|pwd|secret|api_key|key)=)[^&\s\"']*"
)
_OPAQUE = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{32,}(?![A-Za-z0-9_-])")
"""A run of 32 or more URL-safe characters: the shape of every token Reppu issues (and of
hashes, which lose nothing by it). A token put in a path by mistake is caught by this."""
_HETU = re.compile(r"\b(\d{6})[-+A-FU-Y](\d{3})[0-9A-FHJ-NPR-Y]\b")
REDACTED = "<redacted>"

_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
"""Attributes every record has; anything else on a record came from ``extra=`` and is
written as a field of its own."""
_SKIPPED = frozenset({"color_message"})
"""uvicorn's copy of the message with terminal colour codes."""


def redact(text: str) -> str:
    """``text`` with bearer tokens, secret query parameters (``token=``, ``password=``, ...),
    token-shaped runs of 32+ URL-safe characters and personal identity codes replaced."""
    text = _BEARER.sub(r"\1" + REDACTED, text)
    text = _SECRET_QUERY.sub(r"\1" + REDACTED, text)
    text = _OPAQUE.sub(REDACTED, text)
    return _HETU.sub(REDACTED, text)


class RedactSecrets(logging.Filter):
    """Blanks bearer tokens and personal identity codes in a record before any handler
    formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, ``exception`` when there is one, and any ``extra=`` fields.

    uvicorn's access lines also get ``client``, ``method``, ``path`` and ``status`` as fields
    of their own, so a collector can count and filter them without parsing the message.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        access = record.args if record.name == "uvicorn.access" else None
        if isinstance(access, tuple) and len(access) == 5:
            client, method, path, _, status = access
            entry.update(client=client, method=method, path=path, status=status)
        for key, value in vars(record).items():
            if key in _SKIPPED or key in _RECORD_FIELDS or key in entry or key.startswith("_"):
                continue
            entry[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure(log_format: str) -> None:
    """Log to stderr in ``log_format`` (``text`` or ``json``): the CLI's commands."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def uvicorn_config(config: dict[str, Any], log_format: str) -> dict[str, Any]:
    """uvicorn's logging ``config`` for the served processes, in ``log_format``.

    Each worker process applies it as it starts. It also gives Reppu's own loggers a
    handler there (the root logger's): a worker process is started afresh and would
    otherwise print only warnings, through Python's last-resort handler.
    """
    config.setdefault("filters", {})["redact_secrets"] = {"()": f"{__name__}.RedactSecrets"}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_secrets")
    if log_format == "json":
        for name in list(config["formatters"]):
            config["formatters"][name] = {"()": f"{__name__}.JsonFormatter"}
    config.setdefault("loggers", {})[""] = {"handlers": ["default"], "level": "INFO"}
    return config
