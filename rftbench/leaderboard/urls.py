"""Links that come from entries: only ``http``/``https`` URLs, checked in the schema and again when rendered."""

from __future__ import annotations

from urllib.parse import urlsplit

SCHEMES = ("http", "https")
MAX_LENGTH = 2048


def check_http_url(value: str) -> str:
    """``value`` if it is an absolute http(s) URL with a host and no control characters; else ``ValueError``."""
    text = str(value)
    if len(text) > MAX_LENGTH:
        raise ValueError(f"a URL may have at most {MAX_LENGTH} characters")
    if any(ord(c) < 0x21 or c in '"<>\\`' or 0x7F <= ord(c) <= 0x9F for c in text):
        raise ValueError(f"{text[:80]!r}: a URL may not contain spaces, control characters, quotes or <>")
    try:
        parts = urlsplit(text)
    except ValueError as err:
        raise ValueError(f"{text[:80]!r}: not a URL ({err})") from None
    if parts.scheme.lower() not in SCHEMES or not parts.netloc or text.split(":", 1)[0].lower() not in SCHEMES:
        raise ValueError(f"{text[:80]!r}: only http:// and https:// links are allowed")
    return text


def safe_href(value: str | None) -> str:
    """``value`` when it passes :func:`check_http_url`, else ``""`` (the page then shows no link)."""
    if not value:
        return ""
    try:
        return check_http_url(value)
    except ValueError:
        return ""
