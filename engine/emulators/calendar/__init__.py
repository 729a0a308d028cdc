"""A local Google Calendar API v3 + OAuth2 emulator.

It follows the discovery document shipped with google-api-python-client: paths,
parameters, enums, formats and body fields are validated against it, and failures
use Google's error shapes. See :class:`CalendarEmulator`.
"""

from typing import TYPE_CHECKING, Any

from ._errors import ApiError, OAuthError
from ._faults import GOOGLE_USER_QUOTA_PER_MINUTE, Faults
from ._state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_USER
from ._validate import discovery_document

if TYPE_CHECKING:
    from ._server import CalendarEmulator


def __getattr__(name: str) -> Any:
    # The server (FastAPI, uvicorn) is imported when it is used, not by every `catflow`
    # command that only needs the emulator's constants.
    if name == "CalendarEmulator":
        from ._server import CalendarEmulator

        return CalendarEmulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_USER",
    "GOOGLE_USER_QUOTA_PER_MINUTE",
    "ApiError",
    "CalendarEmulator",
    "Faults",
    "OAuthError",
    "discovery_document",
]
