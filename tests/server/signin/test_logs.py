"""Sign-in's one-time secrets never reach the access log."""

from __future__ import annotations

import logging

from server.calendar import uvicorn_log_config
from server.signin.logs import RedactSigninSecrets, with_signin_redaction


def test_codes_states_and_handoffs_are_redacted_from_access_log_lines() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1:5000",
            "GET",
            "/auth/oidc/mpassid/callback?state=S3cr3t&code=C0de&iss=https%3A%2F%2Fx",
            "1.1",
            302,
        ),
        None,
    )
    RedactSigninSecrets().filter(record)
    line = record.getMessage()
    assert "S3cr3t" not in line
    assert "C0de" not in line
    assert "state=<redacted>&code=<redacted>&iss=" in line
    handoff = logging.LogRecord("a", logging.INFO, __file__, 1, "GET /?handoff=H4nd", None, None)
    RedactSigninSecrets().filter(handoff)
    assert handoff.getMessage() == "GET /?handoff=<redacted>"


def test_the_served_log_config_applies_the_filter() -> None:
    config = with_signin_redaction(uvicorn_log_config())
    assert "redact_signin_secrets" in config["handlers"]["access"]["filters"]
    assert "redact_feed_tokens" in config["handlers"]["access"]["filters"]
