"""What the native channels (FCM, APNs) share: the retry rule of Web Push's judge."""

from __future__ import annotations

import datetime as dt

from notifications.webpush import Judgement, Verdict


def retry_judgement(
    verdict: Verdict, now: dt.datetime, delay: float, expires_at: dt.datetime, detail: str
) -> Judgement:
    """Retry after ``delay`` seconds, unless that is after ``expires_at`` (the item is stale
    by then: EXPIRED, as Web Push's judge does)."""
    retry_at = (now + dt.timedelta(seconds=delay)).astimezone(dt.UTC)
    if retry_at > expires_at:
        return Judgement(Verdict.EXPIRED, detail=f"{detail}; stale before a retry")
    return Judgement(verdict, retry_at, detail)
