"""What an outbound exchange looks like in a step log: secrets blanked, bodies cut short."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "[redacted]"
BODY_LIMIT = 4096  # characters of a request or response body kept in the step log

# Header names and body or query keys whose values are never shown. Sync and page
# tokens (pageToken, nextSyncToken) are cursors, not credentials, and stay visible.
_SECRET_HEADER = re.compile(r"authorization|cookie|token|secret|api-?key|password", re.I)
_SECRET_KEY = re.compile(
    r"^(token|assertion|code_verifier)$"
    r"|secret|password|passwd|access_?token|refresh_?token|id_?token|api_?key|authorization",
    re.I,
)
# In query strings and forms, ``code`` is an OAuth2 authorization code; in JSON bodies it is
# usually an error's status, which people need to see.
_SECRET_PARAM = re.compile(rf"^code$|{_SECRET_KEY.pattern}", re.I)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: REDACTED if _SECRET_HEADER.search(k) else str(v) for k, v in headers.items()}


def redact_url(url: str) -> str:
    """The URL without credentials in its user part or secret query parameters."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2] if "@" in parts.netloc else parts.netloc
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode(
        [(k, REDACTED if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="[]"
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_value(value: Any) -> Any:
    """A JSON-like value with the values of secret-looking keys blanked, at any depth."""
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if _SECRET_KEY.search(str(k)) else redact_value(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Blank literal occurrences of known secrets (a token echoed back, say)."""
    for secret in secrets:
        if secret and len(secret) >= 8:
            text = text.replace(secret, REDACTED)
    return text


def shown_body(raw: bytes | str | None, content_type: str, secrets: Iterable[str]) -> Any:
    """A body as the step log shows it: JSON redacted by key, other text cut short."""
    if raw is None or raw == b"" or raw == "":
        return None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if "json" in content_type.lower():
        try:
            shown = json.dumps(redact_value(json.loads(text)), ensure_ascii=False)
        except ValueError:
            shown = text
    elif "x-www-form-urlencoded" in content_type.lower():
        pairs = parse_qsl(text, keep_blank_values=True)
        shown = urlencode(
            [(k, REDACTED if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="[]"
        )
    else:
        shown = text
    shown = scrub(shown, secrets)
    if len(shown) > BODY_LIMIT:
        return f"{shown[:BODY_LIMIT]}… ({len(shown)} characters)"
    return shown
