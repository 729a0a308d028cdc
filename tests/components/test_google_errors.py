"""Every reason Google documents for Calendar failures becomes the BPMN error code.

The emulator produces most of these over real HTTP (see the operator tests); this
covers the documented reasons it has no cause to produce (no ACLs, no daily quota),
and answers that are not Google's shape at all (a proxy's page).
"""

from __future__ import annotations

import json

import pytest
import requests

from engine.components.google_calendar import api_error, event_id, valid_event_id


def _answer(status: int, body: object, content_type: str = "application/json") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}.get(status, "")
    response.headers["Content-Type"] = content_type
    response._content = (json.dumps(body) if not isinstance(body, str) else body).encode()
    return response


def _google(status: int, reason: str, message: str) -> requests.Response:
    return _answer(
        status,
        {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"domain": "global", "reason": reason, "message": message}],
            }
        },
    )


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, "badRequest"),
        (400, "invalid"),
        (400, "required"),
        (400, "timeRangeEmpty"),
        (401, "authError"),
        (403, "forbidden"),
        (403, "requiredAccessLevel"),
        (403, "forbiddenForNonOrganizer"),
        (403, "quotaExceeded"),
        (403, "dailyLimitExceeded"),
        (404, "notFound"),
        (409, "duplicate"),
        (410, "deleted"),
        (410, "fullSyncRequired"),
        (412, "conditionNotMet"),
        (429, "rateLimitExceeded"),
        (500, "backendError"),
    ],
)
def test_googles_reason_is_the_bpmn_error_code(status: int, reason: str) -> None:
    error = api_error(_google(status, reason, "What Google said."), "inserting event x")
    assert error.code == reason
    assert error.message == (
        f"inserting event x: Google Calendar answered {status} {reason}: What Google said."
    )
    assert error.details["status"] == status
    assert error.details["response"]["error"]["errors"][0]["reason"] == reason


def test_an_answer_not_in_googles_shape_is_named_by_its_status() -> None:
    error = api_error(_answer(502, "<html>bad gateway</html>", "text/html"), "listing events")
    assert error.code == "http502"
    assert error.details["response"] == "<html>bad gateway</html>"
    assert api_error(_answer(403, "nope", "text/plain"), "x").code == "forbidden"


def test_event_ids_derived_from_records_are_base32hex_and_stable() -> None:
    first = event_id("meetings", 42)
    assert first == event_id("meetings", 42, 0)
    assert valid_event_id(first) and set(first) <= set("0123456789abcdefghijklmnopqrstuv")
    assert (
        len({first, event_id("meetings", 42, 1), event_id("meetings", 43), event_id("m", 42)}) == 4
    )
    assert (
        not valid_event_id("abc")
        and not valid_event_id("has-dash-id")
        and not valid_event_id("W" * 10)
    )
