"""Partial responses: Google's ``fields`` parameter, checked against the response schema."""

from __future__ import annotations

from typing import Any

import pytest
from emulators.calendar_helpers import Api
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build_from_document
from googleapiclient.errors import HttpError

from engine.emulators.calendar import CalendarEmulator

MEETING = {
    "summary": "Planning",
    "start": {"dateTime": "2030-01-01T10:00:00Z"},
    "end": {"dateTime": "2030-01-01T11:00:00Z"},
    "attendees": [{"email": "bob@example.com"}, {"email": "eve@example.com"}],
    "extendedProperties": {"private": {"record": "7", "catalog": "meetings"}},
}


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_an_insert_answers_only_the_selected_fields(api: Api) -> None:
    created = _ok(
        api.call(
            "POST",
            "/calendars/primary/events",
            params={"fields": "id, start/dateTime,attendees(email)"},
            json=MEETING,
        )
    )
    assert set(created) == {"id", "start", "attendees"}
    assert created["start"] == {"dateTime": "2030-01-01T10:00:00Z"}
    assert created["attendees"] == [{"email": "bob@example.com"}, {"email": "eve@example.com"}]
    # The selection trims the answer, not the event.
    whole = _ok(api.call("GET", f"/calendars/primary/events/{created['id']}"))
    assert whole["summary"] == "Planning" and whole["attendees"][0]["responseStatus"]


def test_a_list_selects_inside_each_item_and_merges_selections_of_one_field(api: Api) -> None:
    first, second = api.insert(**MEETING), api.insert(summary="Retro")
    page = _ok(
        api.call(
            "GET",
            "/calendars/primary/events",
            params={"fields": "items/id,items(summary),items/extendedProperties/private/record"},
        )
    )
    assert page == {
        "items": [
            {
                "id": first["id"],
                "summary": "Planning",
                "extendedProperties": {"private": {"record": "7"}},
            },
            {"id": second["id"], "summary": "Retro"},  # nothing of what it lacks
        ]
    }


def test_a_star_selects_every_field_of_its_level(api: Api) -> None:
    event = api.insert(**MEETING)
    whole = _ok(api.call("GET", f"/calendars/primary/events/{event['id']}"))
    assert _ok(api.call("GET", "/calendars/primary/events", params={"fields": "*"}))["items"] == [
        whole
    ]
    inside = _ok(api.call("GET", "/calendars/primary/events", params={"fields": "items/*"}))
    assert inside == {"items": [whole]}


def test_a_whole_field_wins_over_a_part_of_it(api: Api) -> None:
    event = api.insert(**MEETING)
    got = _ok(
        api.call(
            "GET",
            f"/calendars/primary/events/{event['id']}",
            params={"fields": "start/timeZone,start"},
        )
    )
    assert got == {"start": {"dateTime": "2030-01-01T10:00:00Z"}}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ("id,colour", "colour"),  # not a field of Event
        ("start/hour", "hour"),  # not a field of EventDateTime
        ("summary/x", "x"),  # a string has no fields
        ("attendees(email,name)", "name"),  # not a field of EventAttendee
        ("id,", "id,"),  # a name is missing
        ("start(dateTime", "start(dateTime"),  # unclosed
        ("id)", "id)"),
        ("()", "()"),
    ],
)
def test_a_bad_selection_is_refused_before_the_method_runs(
    api: Api, fields: str, named: str
) -> None:
    response = api.call(
        "POST", "/calendars/primary/events", params={"fields": fields}, json=MEETING
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["message"] == f"Invalid field selection {named}"
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["errors"] == [
        {
            "domain": "global",
            "reason": "invalidParameter",
            "message": f"Invalid field selection {named}",
            "location": "fields",
            "locationType": "parameter",
        }
    ]
    # Nothing was created.
    assert _ok(api.call("GET", "/calendars/primary/events"))["items"] == []


def test_a_selection_is_checked_against_the_methods_own_response(api: Api) -> None:
    # "items" is a field of the list (Events), not of one event (Event).
    response = api.call(
        "POST", "/calendars/primary/events", params={"fields": "items"}, json=MEETING
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Invalid field selection items"
    listed = _ok(
        api.call("GET", "/users/me/calendarList", params={"fields": "items(id,accessRole)"})
    )
    assert listed["items"] and all(set(c) == {"id", "accessRole"} for c in listed["items"])


def test_errors_are_never_trimmed(api: Api) -> None:
    response = api.call("GET", "/calendars/primary/events/nosuchevent0", params={"fields": "id"})
    assert response.status_code == 404
    assert response.json()["error"]["errors"][0]["reason"] == "notFound"


def test_the_official_client_asks_for_fields_and_gets_them(emu: CalendarEmulator) -> None:
    token = emu.issue_token("fields-contract@example.com")
    with build_from_document(
        emu.discovery_document(), credentials=Credentials(token=token)
    ) as service:
        events = service.events()
        created = events.insert(calendarId="primary", body=MEETING, fields="id").execute()
        assert list(created) == ["id"]
        page = events.list(calendarId="primary", fields="items(id,summary)").execute()
        assert page == {"items": [{"id": created["id"], "summary": "Planning"}]}
        with pytest.raises(HttpError) as refused:
            events.get(calendarId="primary", eventId=created["id"], fields="nope").execute()
        assert refused.value.status_code == 400
        assert refused.value.error_details[0]["reason"] == "invalidParameter"
