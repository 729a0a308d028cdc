"""Calendar semantics over real HTTP: ids, etags, cancellation, paging, sync, rules."""

from __future__ import annotations

from emulators.calendar_helpers import Api, reason


def test_insert_fills_google_fields(api: Api) -> None:
    event = api.insert(attendees=[{"email": "a@example.com"}, {"email": api.user}])
    assert event["kind"] == "calendar#event" and event["status"] == "confirmed"
    assert len(event["id"]) >= 5 and set(event["id"]) <= set("0123456789abcdefghijklmnopqrstuv")
    assert event["iCalUID"] == f"{event['id']}@google.com"
    assert event["creator"] == {"email": api.user, "self": True}
    assert event["organizer"]["email"] == api.user
    assert event["sequence"] == 0 and event["etag"].startswith('"')
    assert event["htmlLink"].startswith("https://www.google.com/calendar/event?eid=")
    assert event["created"].endswith("Z") and event["updated"].endswith("Z")
    assert [a["responseStatus"] for a in event["attendees"]] == ["needsAction", "needsAction"]


def test_client_ids(api: Api) -> None:
    assert api.insert(id="abc0123v")["id"] == "abc0123v"
    duplicate = api.call(
        "POST",
        "/calendars/primary/events",
        json={"id": "abc0123v", "start": {"date": "2030-01-01"}, "end": {"date": "2030-01-02"}},
    )
    assert duplicate.status_code == 409 and reason(duplicate) == "duplicate"
    for bad in ("abc", "ABCDEF", "abcdw1", "abc-def"):
        response = api.call(
            "POST",
            "/calendars/primary/events",
            json={"id": bad, "start": {"date": "2030-01-01"}, "end": {"date": "2030-01-02"}},
        )
        assert response.status_code == 400 and reason(response) == "invalid", bad


def test_delete_keeps_cancelled_event(api: Api) -> None:
    event = api.insert()
    assert api.call("DELETE", f"/calendars/primary/events/{event['id']}").status_code == 204
    got = api.call("GET", f"/calendars/primary/events/{event['id']}")
    assert got.status_code == 200 and got.json()["status"] == "cancelled"
    again = api.call("DELETE", f"/calendars/primary/events/{event['id']}")
    assert again.status_code == 410 and reason(again) == "deleted"
    listed = api.call("GET", "/calendars/primary/events").json()["items"]
    assert listed == []
    shown = api.call("GET", "/calendars/primary/events", params={"showDeleted": "true"})
    assert [e["status"] for e in shown.json()["items"]] == ["cancelled"]
    duplicate = api.call(
        "POST",
        "/calendars/primary/events",
        json={"id": event["id"], "start": {"date": "2030-01-01"}, "end": {"date": "2030-01-02"}},
    )
    assert duplicate.status_code == 409


def test_not_found(api: Api) -> None:
    response = api.call("GET", "/calendars/primary/events/unknown1")
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": 404,
            "message": "Not Found",
            "status": "NOT_FOUND",
            "errors": [{"domain": "global", "reason": "notFound", "message": "Not Found"}],
        }
    }
    assert api.call("GET", "/calendars/nobody@example.com/events").status_code == 404
    assert api.call("GET", "/calendars/nobody@example.com").status_code == 404


def test_patch_update_sequence_and_etag(api: Api) -> None:
    event = api.insert(description="keep", location="Room 1")
    path = f"/calendars/primary/events/{event['id']}"
    stale = api.call("PATCH", path, json={"summary": "x"}, headers={"If-Match": '"stale"'})
    assert stale.status_code == 412 and reason(stale) == "conditionNotMet"
    patched = api.call(
        "PATCH",
        path,
        json={"summary": "New", "location": None},
        headers={"If-Match": event["etag"]},
    ).json()
    assert patched["summary"] == "New" and patched["description"] == "keep"
    assert "location" not in patched and patched["sequence"] == 1
    assert patched["etag"] != event["etag"] and patched["created"] == event["created"]
    switched = api.call(
        "PATCH", path, json={"start": {"date": "2030-01-01"}, "end": {"date": "2030-01-02"}}
    ).json()
    assert switched["start"] == {"date": "2030-01-01"}
    updated = api.call(
        "PUT",
        path,
        json={
            "summary": "Whole",
            "start": {"dateTime": "2030-01-01T10:00:00+02:00"},
            "end": {"dateTime": "2030-01-01T11:00:00+02:00"},
        },
    )
    body = updated.json()
    assert updated.status_code == 200 and "description" not in body and body["sequence"] == 3
    assert body["id"] == event["id"] and body["iCalUID"] == event["iCalUID"]
    not_modified = api.call("GET", path, headers={"If-None-Match": body["etag"]})
    assert not_modified.status_code == 304


def test_time_rules(api: Api) -> None:
    def insert(start: dict[str, str], end: dict[str, str]) -> tuple[int, str]:
        response = api.call("POST", "/calendars/primary/events", json={"start": start, "end": end})
        return response.status_code, reason(response) if response.status_code >= 400 else ""

    same = {"dateTime": "2030-01-01T10:00:00Z"}
    assert insert(same, same) == (400, "timeRangeEmpty")
    assert insert({"date": "2030-01-02"}, {"date": "2030-01-01"}) == (400, "timeRangeEmpty")
    assert insert({"date": "2030-01-01"}, same)[0] == 400
    assert insert({"dateTime": "2030-01-01T10:00:00"}, same) == (400, "required")
    assert insert({"dateTime": "2030-01-01T09:00:00", "timeZone": "UTC"}, same) == (200, "")


def test_reminder_limits(api: Api) -> None:
    def insert(reminders: dict[str, object]) -> int:
        response = api.call(
            "POST",
            "/calendars/primary/events",
            json={
                "start": {"date": "2030-01-01"},
                "end": {"date": "2030-01-02"},
                "reminders": reminders,
            },
        )
        return response.status_code

    five = [{"method": "popup", "minutes": m} for m in (0, 10, 60, 1440, 40320)]
    assert insert({"useDefault": False, "overrides": five}) == 200
    assert insert({"useDefault": False, "overrides": [*five, five[0]]}) == 400
    assert (
        insert({"useDefault": False, "overrides": [{"method": "email", "minutes": 40321}]}) == 400
    )
    assert insert({"useDefault": False, "overrides": [{"method": "email", "minutes": -1}]}) == 400
    assert insert({"useDefault": True, "overrides": five[:1]}) == 400


def test_conference_data_needs_version_1(api: Api) -> None:
    request = {
        "conferenceData": {
            "createRequest": {
                "requestId": "req-1",
                "conferenceSolutionKey": {"type": "hangoutsMeet"},
            }
        }
    }
    plain = api.insert(**request)
    assert "conferenceData" not in plain and "hangoutLink" not in plain
    response = api.call(
        "POST",
        "/calendars/primary/events",
        params={"conferenceDataVersion": 1},
        json={"start": {"date": "2030-01-01"}, "end": {"date": "2030-01-02"}, **request},
    )
    event = response.json()
    data = event["conferenceData"]
    assert data["createRequest"]["status"]["statusCode"] == "success"
    assert data["entryPoints"][0]["entryPointType"] == "video"
    assert event["hangoutLink"] == data["entryPoints"][0]["uri"]
    assert event["hangoutLink"].startswith("https://meet.google.com/")
    patched = api.call(
        "PATCH", f"/calendars/primary/events/{event['id']}", json={"summary": "kept"}
    ).json()
    assert patched["hangoutLink"] == event["hangoutLink"]


def test_send_updates_accepted(api: Api) -> None:
    for value in ("all", "externalOnly", "none"):
        response = api.call(
            "POST",
            "/calendars/primary/events",
            params={"sendUpdates": value},
            json={"start": {"date": "2030-01-01"}, "end": {"date": "2030-01-02"}},
        )
        assert response.status_code == 200
    bad = api.call(
        "POST",
        "/calendars/primary/events",
        params={"sendUpdates": "some"},
        json={"start": {"date": "2030-01-01"}, "end": {"date": "2030-01-02"}},
    )
    assert bad.status_code == 400 and reason(bad) == "invalid"


def test_list_filters_and_order(api: Api) -> None:
    late = api.insert(
        start={"dateTime": "2030-01-03T10:00:00Z"}, end={"dateTime": "2030-01-03T11:00:00Z"}
    )
    early = api.insert(
        start={"dateTime": "2030-01-01T10:00:00Z"}, end={"dateTime": "2030-01-01T11:00:00Z"}
    )
    middle = api.insert(start={"date": "2030-01-02"}, end={"date": "2030-01-03"})

    def ids(**params: str) -> list[str]:
        response = api.call("GET", "/calendars/primary/events", params=params)
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()["items"]]

    assert ids() == [late["id"], early["id"], middle["id"]]
    assert ids(orderBy="startTime", singleEvents="true") == [early["id"], middle["id"], late["id"]]
    bad = api.call("GET", "/calendars/primary/events", params={"orderBy": "startTime"})
    assert bad.status_code == 400 and reason(bad) == "invalid"
    api.call("PATCH", f"/calendars/primary/events/{late['id']}", json={"summary": "touch"})
    assert ids(orderBy="updated") == [early["id"], middle["id"], late["id"]]
    assert ids(timeMin="2030-01-01T12:00:00Z", timeMax="2030-01-03T10:30:00Z") == [
        late["id"],
        middle["id"],
    ]
    assert ids(timeMax="2030-01-01T10:00:00Z") == []
    assert ids(q="touch") == [late["id"]]


def test_paging_and_sync(api: Api) -> None:
    created = [api.insert(summary=f"e{n}")["id"] for n in range(5)]
    first = api.call("GET", "/calendars/primary/events", params={"maxResults": 2}).json()
    assert "nextSyncToken" not in first and len(first["items"]) == 2
    seen = [e["id"] for e in first["items"]]
    token = first["nextPageToken"]
    while True:
        page = api.call(
            "GET", "/calendars/primary/events", params={"maxResults": 2, "pageToken": token}
        ).json()
        seen += [e["id"] for e in page["items"]]
        if "nextPageToken" not in page:
            sync = page["nextSyncToken"]
            break
        token = page["nextPageToken"]
    assert seen == created
    nothing = api.call("GET", "/calendars/primary/events", params={"syncToken": sync}).json()
    assert nothing["items"] == [] and nothing["nextSyncToken"]
    api.call("DELETE", f"/calendars/primary/events/{created[0]}")
    changed = api.call("GET", "/calendars/primary/events", params={"syncToken": sync}).json()
    assert [(e["id"], e["status"]) for e in changed["items"]] == [(created[0], "cancelled")]
    clash = api.call(
        "GET",
        "/calendars/primary/events",
        params={"syncToken": sync, "timeMin": "2030-01-01T00:00:00Z"},
    )
    assert clash.status_code == 400 and reason(clash) == "invalid"
    gone = api.call("GET", "/calendars/primary/events", params={"syncToken": "bogus"})
    assert gone.status_code == 410 and reason(gone) == "fullSyncRequired"
    bad_page = api.call("GET", "/calendars/primary/events", params={"pageToken": "zzz"})
    assert bad_page.status_code == 400


def test_sync_token_expiry_fault(api: Api) -> None:
    api.insert()
    sync = api.call("GET", "/calendars/primary/events").json()["nextSyncToken"]
    import requests

    requests.post(api.emu.base_url + "/_emulator/expire-sync-tokens", timeout=5)
    gone = api.call("GET", "/calendars/primary/events", params={"syncToken": sync})
    assert gone.status_code == 410 and reason(gone) == "fullSyncRequired"


def test_calendars_and_list(api: Api) -> None:
    created = api.call("POST", "/calendars", json={"summary": "Team", "timeZone": "Europe/Oslo"})
    calendar = created.json()
    assert created.status_code == 200 and calendar["id"].endswith("@group.calendar.google.com")
    assert api.call("GET", f"/calendars/{calendar['id']}").json()["summary"] == "Team"
    primary = api.call("GET", "/calendars/primary").json()
    assert primary["id"] == api.user
    listed = api.call("GET", "/users/me/calendarList").json()
    assert [c["id"] for c in listed["items"]] == [api.user, calendar["id"]]
    assert listed["items"][0]["primary"] is True
    event = api.insert(calendar=calendar["id"])
    assert event["organizer"]["email"] == calendar["id"]
    missing = api.call("POST", "/calendars", json={})
    assert missing.status_code == 400 and reason(missing) == "required"


def test_watch_and_stop(api: Api) -> None:
    channel = api.call(
        "POST",
        "/calendars/primary/events/watch",
        json={"id": "chan-1", "type": "web_hook", "address": "https://example.com/hook"},
    ).json()
    assert channel["kind"] == "api#channel" and channel["id"] == "chan-1"
    stop = api.call(
        "POST", "/channels/stop", json={"id": "chan-1", "resourceId": channel["resourceId"]}
    )
    assert stop.status_code == 204
