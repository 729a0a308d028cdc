"""What a Calendar API handler receives, and helpers every handler shares."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ._errors import ApiError, invalid_param, not_found
from ._state import State


@dataclass
class Call:
    state: State
    user: str
    params: dict[str, Any]  # path and query parameters, typed
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    base_url: str = ""


@dataclass
class Reply:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def public(resource: dict[str, Any]) -> dict[str, Any]:
    """A stored resource without its internal (``_``-prefixed) keys."""
    return {k: v for k, v in resource.items() if not k.startswith("_")}


def calendar_for(call: Call, calendar_id: str) -> dict[str, Any]:
    """The user's calendar (``primary`` is the user's own); 404 when not theirs."""
    if calendar_id == "primary":
        calendar_id = call.user
    calendar = call.state.calendars.get(calendar_id)
    if calendar is None or calendar["_owner"] != call.user or calendar.get("_deleted"):
        raise not_found()
    return calendar


def fingerprint(params: dict[str, Any], skip: tuple[str, ...]) -> str:
    data = {k: v for k, v in params.items() if k not in skip}
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_page_token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def decode_page_token(token: str, expected: str) -> dict[str, Any]:
    """A page token made by :func:`encode_page_token` for the same query, or 400."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise invalid_param("pageToken", "Invalid page token value.") from None
    if not isinstance(data, dict) or data.get("f") != expected:
        raise invalid_param("pageToken", "Invalid page token value.")
    return data


def check_if_match(call: Call, etag: str) -> None:
    wanted = call.headers.get("if-match")
    if wanted is not None and wanted.strip() != "*" and wanted.strip() != etag:
        raise ApiError(
            412,
            "conditionNotMet",
            "Precondition Failed",
            location="If-Match",
            location_type="header",
        )
