"""Requests are checked against Google's calendar.v3 discovery document."""

from __future__ import annotations

from typing import Any

import pytest
from emulators.calendar_helpers import Api, reason

DAY = {"start": {"date": "2030-01-01"}, "end": {"date": "2030-01-02"}}


def _error(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    item: dict[str, Any] = response.json()["error"]["errors"][0]
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
    return item


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"colour": "red"}, "colour"),
        ({"orderBy": "title"}, "orderBy"),
        ({"maxResults": "many"}, "maxResults"),
        ({"maxResults": "0"}, "maxResults"),
        ({"showDeleted": "yes"}, "showDeleted"),
        ({"timeMin": "yesterday"}, "timeMin"),
        ({"timeMin": "2030-01-01T10:00:00"}, "timeMin"),
        ({"eventTypes": "party"}, "eventTypes"),
    ],
)
def test_bad_query_parameters(api: Api, params: dict[str, str], name: str) -> None:
    item = _error(api.call("GET", "/calendars/primary/events", params=params))
    assert item["reason"] == "invalid" and item["location"] == name
    assert name in item["message"]


def test_repeated_parameter_allowed_only_when_repeated(api: Api) -> None:
    ok = api.call(
        "GET",
        "/calendars/primary/events",
        params=[("eventTypes", "default"), ("eventTypes", "focusTime")],
    )
    assert ok.status_code == 200
    twice = api.call("GET", "/calendars/primary/events", params=[("q", "a"), ("q", "b")])
    assert _error(twice)["location"] == "q"


def test_missing_required_parameter(api: Api) -> None:
    event = api.insert()
    response = api.call("POST", f"/calendars/primary/events/{event['id']}/move")
    item = _error(response)
    assert item["reason"] == "required" and item["location"] == "destination"


@pytest.mark.parametrize(
    ("body", "location", "why"),
    [
        ({**DAY, "colour": "red"}, "event.colour", "invalid"),
        (
            {**DAY, "attendees": [{"email": "a@b.c", "rsvp": True}]},
            "event.attendees[0].rsvp",
            "invalid",
        ),
        (
            {**DAY, "reminders": {"overrides": [{"method": "popup", "minutes": 5, "x": 1}]}},
            "event.reminders.overrides[0].x",
            "invalid",
        ),
        (
            {"start": {"date": "2030-02-30"}, "end": {"date": "2030-03-01"}},
            "event.start.date",
            "invalid",
        ),
        (
            {"start": {"dateTime": "tomorrow"}, "end": {"date": "2030-03-01"}},
            "event.start.dateTime",
            "invalid",
        ),
        ({**DAY, "guestsCanModify": "yes"}, "event.guestsCanModify", "invalid"),
        ({**DAY, "summary": 5}, "event.summary", "invalid"),
        ({"end": {"date": "2030-01-02"}}, "event.start", "required"),
    ],
)
def test_bad_bodies(api: Api, body: dict[str, Any], location: str, why: str) -> None:
    item = _error(api.call("POST", "/calendars/primary/events", json=body))
    assert (item["reason"], item["location"]) == (why, location)


def test_patch_needs_no_required_fields_but_is_checked(api: Api) -> None:
    event = api.insert()
    path = f"/calendars/primary/events/{event['id']}"
    assert api.call("PATCH", path, json={"summary": "only"}).status_code == 200
    assert _error(api.call("PATCH", path, json={"bogus": 1}))["location"] == "event.bogus"
    update = api.call("PUT", path, json={"summary": "no times"})
    assert update.status_code == 400 and reason(update) == "required"


def test_unknown_path_and_method(api: Api) -> None:
    assert api.call("GET", "/nothing/here").status_code == 404
    refused = api.call("DELETE", "/users/me/calendarList")
    assert refused.status_code == 405 and reason(refused) == "httpMethodNotAllowed"
    # What the path does take (RFC 9110: a 405 names it): calendarList.list and .insert.
    assert refused.headers["Allow"] == "GET, POST"
    assert api.call("POST", "/calendars/primary/events", data="{not json").status_code == 400
    not_done = api.call("GET", "/colors")
    assert not_done.status_code == 501 and reason(not_done) == "notImplemented"
