"""What a person may give as a notification channel, and the apprise URL made of it.

A person gives an e-mail address or a phone number, never a URL or a host: the mail server
and the SMS gateway are the operator's (``REPPU_SMTP_URL``, ``REPPU_SMS_URL``), so nothing a
person sends can make the server connect somewhere of their choosing. The steps:

1. :func:`normalise_email` / :func:`normalise_phone` accept one plain address (``name@domain``
   with a dotted domain of letters, digits and hyphens: no IP literal, no port, no comment, no
   second address) or one E.164 number (``+358401234567``), and refuse anything else.
2. :func:`email_url` adds the address to the operator's SMTP URL as its one recipient
   (``to=``, percent-encoded); :func:`sms_url` puts the number into the operator's template
   where it says ``{phone}``. The host, port and credentials come from the operator's text only.

The server then checks with apprise that the URL it built names exactly that one recipient on
the operator's host (``server/channels.py``) before it stores or sends anything.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from schemas.notifications import ChannelKind

MAX_EMAIL = 254
"""RFC 5321's limit on a forward path, which is the longest address that can be delivered."""

_ATOM = r"[A-Za-z0-9!#$&*+=^_`{|}~-]+"
# Left out on purpose: "%", "/", "?", "#", ":", "@", quotes and brackets, which have a meaning
# in a URL or in an address list (apprise reads "o'brien@x.fi" as the name "o" and the address
# "brien@x.fi"), and the quoted local parts of RFC 5322 that nobody uses.
_LOCAL = rf"{_ATOM}(?:\.{_ATOM})*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# The last label is a real top-level domain's shape (letters, or an IDN's xn--), so an IP
# address ("10.0.0.1"), "localhost" and a trailing dot are not addresses.
_TLD = r"(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})"
_EMAIL = re.compile(rf"({_LOCAL})@((?:{_LABEL}\.)+{_TLD})", re.ASCII)
_PHONE = re.compile(r"\+[1-9][0-9]{6,14}", re.ASCII)


def normalise_email(text: str) -> str | None:
    """The address with its domain in lower case, or None if ``text`` is not one address."""
    text = text.strip()
    match = _EMAIL.fullmatch(text)
    if match is None or len(text) > MAX_EMAIL or len(match[1]) > 64:
        return None
    return f"{match[1]}@{match[2].lower()}"


def normalise_phone(text: str) -> str | None:
    """The number in E.164 (``+`` and 7 to 15 digits), or None."""
    text = text.strip()
    return text if _PHONE.fullmatch(text) else None


def normalise(kind: ChannelKind, text: str) -> str | None:
    """The normal form of an address of ``kind``, or None if it is not one."""
    return normalise_email(text) if kind is ChannelKind.EMAIL else normalise_phone(text)


def email_url(smtp_url: str, address: str) -> str:
    """The operator's SMTP URL with ``address`` (already normalised) as its one recipient."""
    separator = "&" if "?" in smtp_url else "?"
    return f"{smtp_url}{separator}to={quote(address, safe='@')}"


def sms_url(template: str, phone: str) -> str:
    """The operator's SMS template with ``phone`` (E.164) where it says ``{phone}``.

    The ``+`` is percent-encoded, so that a template that puts the number in a query string
    does not turn it into a space; apprise decodes path and query alike.
    """
    return template.replace("{phone}", quote(phone, safe=""))


def channel_url(kind: ChannelKind, address: str, *, smtp_url: str, sms_template: str) -> str:
    """The apprise URL that reaches ``address``; "" if the operator sends no ``kind``."""
    if kind is ChannelKind.EMAIL:
        return email_url(smtp_url, address) if smtp_url else ""
    return sms_url(sms_template, address) if sms_template else ""
