"""Sign-in's one-time secrets out of the access log. uvicorn logs every request line with its
query: the provider's callback carries ``code`` and ``state``, and the web app's address after
a sign-in carries ``handoff``. Each works once and briefly, but a log outlives that and is
read by more people than the database; so they are replaced before the line is written."""

from __future__ import annotations

import logging
import re
from typing import Any

_SECRET_PARAMETER = re.compile(r"([?&](?:code|state|handoff|nonce)=)[^&\s\"']*")


def redact_signin_secrets(text: str) -> str:
    """``text`` with the values of ``code``, ``state``, ``handoff`` and ``nonce`` replaced."""
    return _SECRET_PARAMETER.sub(r"\1<redacted>", text)


class RedactSigninSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_signin_secrets(a) if isinstance(a, str) else a for a in record.args
            )
        elif isinstance(record.msg, str):
            record.msg = redact_signin_secrets(record.msg)
        return True


def with_signin_redaction(config: dict[str, Any]) -> dict[str, Any]:
    """A uvicorn logging config with :class:`RedactSigninSecrets` on its access log."""
    config.setdefault("filters", {})["redact_signin_secrets"] = {
        "()": f"{__name__}.RedactSigninSecrets"
    }
    config["handlers"]["access"].setdefault("filters", []).append("redact_signin_secrets")
    return config
