"""Contract: the official google-api-python-client against the emulator."""

from __future__ import annotations

from typing import Any

import pytest
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build_from_document
from googleapiclient.errors import HttpError

from engine.emulators.calendar import CalendarEmulator


def _event(event_id: str, hour: int) -> dict[str, Any]:
    return {
        "id": event_id,
        "summary": f"Meeting {hour}",
        "start": {"dateTime": f"2030-03-01T{hour:02d}:00:00Z"},
        "end": {"dateTime": f"2030-03-01T{hour:02d}:30:00Z"},
        "attendees": [{"email": "bob@example.com"}],
    }


def _reason(exc: HttpError) -> str:
    details: Any = exc.error_details
    return str(details[0]["reason"])


def test_official_client_round_trip(emu: CalendarEmulator) -> None:
    token = emu.issue_token("contract@example.com")
    with build_from_document(
        emu.discovery_document(), credentials=Credentials(token=token)
    ) as service:
        _round_trip(service.events())


def _round_trip(events: Any) -> None:
    ids = [f"contract{n:05d}" for n in range(5)]
    for n, event_id in enumerate(ids):
        created = events.insert(calendarId="primary", body=_event(event_id, 9 + n)).execute()
        assert created["id"] == event_id
        assert created["attendees"][0]["responseStatus"] == "needsAction"

    got = events.get(calendarId="primary", eventId=ids[0]).execute()
    assert got["summary"] == "Meeting 9" and got["kind"] == "calendar#event"

    # Paging: 5 events, 2 per page; the sync token comes on the last page only.
    pages: list[dict[str, Any]] = []
    request = events.list(calendarId="primary", maxResults=2)
    while request is not None:
        page = request.execute()
        pages.append(page)
        request = events.list_next(request, page)
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    assert [e["id"] for p in pages for e in p["items"]] == ids
    assert all("nextSyncToken" not in p for p in pages[:-1])
    sync_token = pages[-1]["nextSyncToken"]

    patched = events.patch(
        calendarId="primary", eventId=ids[1], body={"summary": "Moved"}
    ).execute()
    assert patched["summary"] == "Moved" and patched["sequence"] == 1
    events.delete(calendarId="primary", eventId=ids[2]).execute()

    changes = events.list(calendarId="primary", syncToken=sync_token).execute()
    by_id = {e["id"]: e for e in changes["items"]}
    assert set(by_id) == {ids[1], ids[2]}
    assert by_id[ids[1]]["summary"] == "Moved"
    assert by_id[ids[2]]["status"] == "cancelled"
    assert "nextSyncToken" in changes

    with pytest.raises(HttpError) as duplicate:
        events.insert(calendarId="primary", body=_event(ids[0], 9)).execute()
    assert duplicate.value.status_code == 409 and _reason(duplicate.value) == "duplicate"

    with pytest.raises(HttpError) as deleted:
        events.delete(calendarId="primary", eventId=ids[2]).execute()
    assert deleted.value.status_code == 410 and _reason(deleted.value) == "deleted"

    with pytest.raises(HttpError) as missing:
        events.get(calendarId="primary", eventId="nosuchevent").execute()
    assert missing.value.status_code == 404 and _reason(missing.value) == "notFound"


def test_official_client_calendars(emu: CalendarEmulator) -> None:
    token = emu.issue_token("contract-cal@example.com")
    with build_from_document(
        emu.discovery_document(), credentials=Credentials(token=token)
    ) as service:
        _calendars(service)


def _calendars(service: Any) -> None:
    created = service.calendars().insert(body={"summary": "Team"}).execute()
    assert created["kind"] == "calendar#calendar"
    assert service.calendars().get(calendarId=created["id"]).execute()["summary"] == "Team"
    listed = service.calendarList().list().execute()["items"]
    assert [c["id"] for c in listed] == ["contract-cal@example.com", created["id"]]
    assert listed[0]["primary"] is True
