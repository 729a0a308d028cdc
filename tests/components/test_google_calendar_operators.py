"""The google_calendar.* and http.request operators, each in a real process run against the
Calendar emulator over real HTTP: what a process gets back, what the calendar then holds,
and which BPMN error (Google's reason as the code) a failure becomes."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import requests
from bpmn_builder import chain, end, error_boundary, flow, script, service, start
from calendar_flow import (
    api_calls,
    connect,
    detail,
    expr,
    http_settings,
    one_call,
    start_and_run,
)

from engine.components.google_calendar import BASE32HEX, event_id
from engine.emulators.calendar import CalendarEmulator
from engine.runtime import Project, Runner, start_process
from engine.store import InstanceRow, utcnow

USER = "ann@example.com"
MEETING = {
    "summary": "Board meeting",
    "start": {"dateTime": "2030-05-01T10:00:00Z"},
    "end": {"dateTime": "2030-05-01T11:00:00Z"},
}
INSERT = "google_calendar.events.insert"
LIST = "google_calendar.events.list"
DELETE = "google_calendar.events.delete"
FOR_RECORD_7 = expr({"catalog": "meetings", "record_id": 7})


# -- helpers -----------------------------------------------------------------------------------


def _proc(process_id: str, operator: str, result: str = "answer", **params: str) -> str:
    """Like ``one_call``, under another process id (several in one project)."""
    return chain(process_id, start(), service("call_it", operator, result, **params), end())


def _open(open_test_project: Any, emu: CalendarEmulator, **processes: str) -> Project:
    project: Project = open_test_project(processes=processes, **http_settings(emu))
    connect(project, emu, user=USER)
    return project


def _completed(project: Project, instance_id: int) -> dict[str, Any]:
    d = detail(project, instance_id)
    assert d["state"] == "completed", (d["error"], d["incidents"])
    assert d["incidents"] == []
    return d


def _incident(project: Project, instance_id: int, code: str) -> dict[str, Any]:
    """The instance's open incident, which must be the uncaught BPMN error ``code``."""
    d = detail(project, instance_id)
    assert d["state"] == "incident", d["state"]
    assert d["error"]["kind"] == "bpmn_error"
    assert d["error"]["code"] == code
    incident: dict[str, Any] = d["incidents"][-1]
    assert incident["kind"] == "bpmn_error"
    assert incident["details"]["code"] == code
    assert incident["resolved_at"] is None
    return incident


def _step(d: dict[str, Any], element_id: str = "call_it") -> dict[str, Any]:
    [step] = [s for s in d["steps"] if s["element_id"] == element_id]
    return step


def _api(emu: CalendarEmulator, method: str, path: str, **kwargs: Any) -> requests.Response:
    """The emulator's Calendar API as USER, beside the engine (to seed and to look)."""
    token = emu.issue_token(USER)
    return requests.request(
        method,
        f"{emu.api_url}{path}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
        **kwargs,
    )


def _events_path(calendar: str = "primary") -> str:
    return f"/calendars/{quote(calendar, safe='')}/events"


def _seed(emu: CalendarEmulator, calendar: str = "primary", **fields: Any) -> dict[str, Any]:
    response = _api(emu, "POST", _events_path(calendar), json={**MEETING, **fields})
    assert response.status_code == 200, response.text
    event: dict[str, Any] = response.json()
    return event


def _stored(emu: CalendarEmulator, calendar: str = "primary") -> dict[str, dict[str, Any]]:
    """Every event of the calendar, cancelled ones too, by id."""
    response = _api(emu, "GET", _events_path(calendar), params={"showDeleted": "true"})
    assert response.status_code == 200, response.text
    return {e["id"]: e for e in response.json()["items"]}


# -- events.insert -----------------------------------------------------------------------------


def test_insert_creates_the_event_with_the_given_fields(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    event = {
        **MEETING,
        "description": "Quarterly numbers",
        "location": "Room 4",
        "attendees": [{"email": "bob@example.com"}],
        "reminders": {"useDefault": False, "overrides": [{"method": "popup", "minutes": 15}]},
    }
    project = _open(open_test_project, emulator, call=one_call(INSERT, event=expr(event)))
    d = _completed(project, start_and_run(project, "call"))

    made = d["variables"]["answer"]
    assert made["summary"] == "Board meeting"
    assert made["description"] == "Quarterly numbers"
    assert made["location"] == "Room 4"
    assert made["start"] == MEETING["start"] and made["end"] == MEETING["end"]
    assert [a["email"] for a in made["attendees"]] == ["bob@example.com"]
    assert made["reminders"]["overrides"] == [{"method": "popup", "minutes": 15}]
    assert made["organizer"]["email"] == USER
    assert made["status"] == "confirmed"
    # No id given: one derived from the instance and task, so a replay sends the same id.
    assert set(made["id"]) <= set(BASE32HEX)
    assert "derived from the instance and task" in _step(d)["message"]

    stored = _stored(emulator)
    assert list(stored) == [made["id"]]
    assert stored[made["id"]]["description"] == "Quarterly numbers"
    assert stored[made["id"]]["etag"] == made["etag"]


def test_insert_with_event_id_for_uses_the_id_derived_from_the_record(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    call = one_call(INSERT, event=expr(MEETING), event_id_for=FOR_RECORD_7)
    project = _open(open_test_project, emulator, call=call)
    d = _completed(project, start_and_run(project, "call"))

    expected = event_id("meetings", 7)
    assert expected == event_id("meetings", 7)  # the same every time
    assert 5 <= len(expected) <= 1024 and set(expected) <= set("0123456789abcdefghijklmnopqrstuv")
    assert d["variables"]["answer"]["id"] == expected
    assert list(_stored(emulator)) == [expected]
    [post] = [x for x in _step(d)["exchanges"] if x["method"] == "POST"]
    assert json.loads(post["request_body"])["id"] == expected


def test_a_second_insert_of_the_same_derived_id_gets_the_event_made_first(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    call = one_call(INSERT, event=expr(MEETING), event_id_for=FOR_RECORD_7)
    project = _open(open_test_project, emulator, call=call)
    first = _completed(project, start_and_run(project, "call"))
    second = _completed(project, start_and_run(project, "call"))

    made, again = first["variables"]["answer"], second["variables"]["answer"]
    assert again["id"] == made["id"] == event_id("meetings", 7)
    assert again["created"] == made["created"]
    assert again["etag"] == made["etag"]  # the very same version, not a second event
    assert list(_stored(emulator)) == [made["id"]]

    step = _step(second)
    assert "existed already" in step["message"]
    assert [(x["method"], x["status"]) for x in step["exchanges"]] == [
        ("POST", 409),
        ("GET", 200),
    ]
    assert "existed already" not in (_step(first)["message"] or "")


def test_a_duplicate_id_whose_event_was_deleted_ends_as_bpmn_error_deleted(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    generation_1 = expr({"catalog": "meetings", "record_id": 7, "generation": 1})
    project = _open(
        open_test_project,
        emulator,
        call=one_call(INSERT, event=expr(MEETING), event_id_for=FOR_RECORD_7),
        anew=_proc("anew", INSERT, event=expr(MEETING), event_id_for=generation_1),
    )
    made = _completed(project, start_and_run(project, "call"))["variables"]["answer"]
    gone = _api(emulator, "DELETE", f"{_events_path()}/{made['id']}")
    assert gone.status_code == 204

    incident = _incident(project, start_and_run(project, "call"), "deleted")
    assert f"event {made['id']}" in incident["message"]
    assert "cancelled" in incident["message"]
    assert "raise the generation of event_id_for" in incident["message"]
    assert incident["details"]["event"]["status"] == "cancelled"
    assert incident["details"]["reason"] == "duplicate"
    assert _stored(emulator)[made["id"]]["status"] == "cancelled"  # not revived

    # As the message says: the next generation makes a new event for the record.
    fresh = _completed(project, start_and_run(project, "anew"))["variables"]["answer"]
    assert fresh["id"] == event_id("meetings", 7, 1) != made["id"]
    stored = _stored(emulator)
    assert {i: e["status"] for i, e in stored.items()} == {
        made["id"]: "cancelled",
        fresh["id"]: "confirmed",
    }


def test_insert_with_a_conference_create_request_gets_a_meet_link_and_a_stable_request_id(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    event = {
        **MEETING,
        "conferenceData": {"createRequest": {"conferenceSolutionKey": {"type": "hangoutsMeet"}}},
    }
    call = one_call(
        INSERT,
        event=expr(event),
        event_id_for=expr({"catalog": "meetings", "record_id": 8}),
        conferenceDataVersion="1",
    )
    project = _open(open_test_project, emulator, call=call)
    first = _completed(project, start_and_run(project, "call"))
    second = _completed(project, start_and_run(project, "call"))

    eid = event_id("meetings", 8)
    made = first["variables"]["answer"]
    assert made["hangoutLink"].startswith("https://meet.google.com/")
    assert made["conferenceData"]["createRequest"]["requestId"] == f"catflow-{eid}"
    assert made["conferenceData"]["entryPoints"][0]["uri"] == made["hangoutLink"]

    sent = []
    for d in (first, second):
        [post] = [x for x in _step(d)["exchanges"] if x["method"] == "POST"]
        assert "conferenceDataVersion=1" in post["url"]
        sent.append(json.loads(post["request_body"])["conferenceData"]["createRequest"])
    # Derived from the event id: every attempt asks for the same conference.
    assert (
        sent
        == [{"conferenceSolutionKey": {"type": "hangoutsMeet"}, "requestId": f"catflow-{eid}"}] * 2
    )
    assert second["variables"]["answer"]["hangoutLink"] == made["hangoutLink"]
    assert _stored(emulator)[eid]["hangoutLink"] == made["hangoutLink"]


def test_an_event_ending_before_it_starts_is_an_incident_time_range_empty(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    event = {**MEETING, "end": {"dateTime": "2030-05-01T09:00:00Z"}}
    project = _open(open_test_project, emulator, call=one_call(INSERT, event=expr(event)))
    incident = _incident(project, start_and_run(project, "call"), "timeRangeEmpty")

    assert incident["element_id"] == "call_it"
    details = incident["details"]
    assert details["status"] == 400
    assert details["reason"] == "timeRangeEmpty"
    error = details["response"]["error"]
    assert error["code"] == 400
    assert error["message"] == "The specified time range is empty."
    assert error["errors"][0]["reason"] == "timeRangeEmpty"
    assert "The specified time range is empty." in incident["message"]
    assert _stored(emulator) == {}
    # A 400 is an answer, not a fault: sent once, not retried.
    posts = api_calls(emulator, lambda r: r["method"] == "POST")
    assert [p["status"] for p in posts] == [400]


def test_a_replayed_insert_after_a_crash_makes_one_event(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    """A worker dies after Google made the event but before the step's checkpoint.

    The store then still holds the state from before the insert (that is what the
    checkpoint protects); the next worker runs the insert again with the same id.
    """
    project = _open(open_test_project, emulator, call=one_call(INSERT, event=expr(MEETING)))
    with project.db.session() as s:
        instance_id = start_process(s, "call", {}, {"kind": "test"}).id
        before_insert = s.get(InstanceRow, instance_id).workflow  # type: ignore[union-attr]
    Runner(project, workers=1).run_once()
    first = _completed(project, instance_id)["variables"]["answer"]

    with project.db.session() as s:
        row = s.get(InstanceRow, instance_id)
        assert row is not None
        row.workflow, row.state, row.due_at, row.ended_at = before_insert, "running", utcnow(), None
    Runner(project, workers=1).run_once()
    replayed = _completed(project, instance_id)["variables"]["answer"]

    assert replayed["id"] == first["id"] and replayed["created"] == first["created"]
    assert list(_stored(emulator)) == [first["id"]]
    inserts = api_calls(emulator, lambda r: r["method"] == "POST")
    assert [r["status"] for r in inserts] == [200, 409]


def test_insert_retried_after_a_503_makes_one_event(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    call = one_call(INSERT, event=expr(MEETING), event_id_for=FOR_RECORD_7)
    project = _open(open_test_project, emulator, call=call)
    emulator.faults.script = [503]

    d = _completed(project, start_and_run(project, "call"))
    assert d["variables"]["answer"]["id"] == event_id("meetings", 7)
    assert [(x["method"], x["status"]) for x in _step(d)["exchanges"]] == [
        ("POST", 503),
        ("POST", 200),
    ]
    assert list(_stored(emulator)) == [event_id("meetings", 7)]


# -- events.get --------------------------------------------------------------------------------

LOOKUP = chain(
    "lookup",
    start(),
    service("load", "google_calendar.events.get", "found", eventId="wanted"),
    script("got_it", "path = 'found'"),
    end(),
    extra=(
        error_boundary("missing", "load", "err_not_found"),
        script(
            "fallback",
            "path = 'missing'\ncode = error['code']\nstatus = error['details']['status']",
        ),
        end("end_missing"),
        flow("missing", "fallback"),
        flow("fallback", "end_missing"),
    ),
    errors={"err_not_found": "notFound"},
)


def test_get_of_a_missing_event_is_not_found_and_an_error_boundary_catches_it(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    project = _open(open_test_project, emulator, lookup=LOOKUP)
    seeded = _seed(emulator, summary="Here")

    found = _completed(project, start_and_run(project, "lookup", wanted=seeded["id"]))
    assert found["variables"]["path"] == "found"
    assert found["variables"]["found"]["summary"] == "Here"

    d = _completed(project, start_and_run(project, "lookup", wanted="nosuchevent1"))
    assert d["variables"]["path"] == "missing"
    assert d["variables"]["code"] == "notFound"
    assert d["variables"]["status"] == 404
    assert "found" not in d["variables"]
    assert _step(d, "load")["outcome"] == "caught"
    assert "got_it" not in [s["element_id"] for s in d["steps"]]
    gets = api_calls(emulator, lambda r: r["path"].endswith("/events/nosuchevent1"))
    assert [g["status"] for g in gets] == [404]


# -- events.list -------------------------------------------------------------------------------


def test_list_gives_one_page_or_with_all_pages_every_item_and_a_sync_token(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    project = _open(
        open_test_project,
        emulator,
        page=_proc("page", LIST, maxResults="2"),
        every=_proc("every", LIST, maxResults="2", all_pages="True"),
    )
    seeded = [_seed(emulator, summary=f"Meeting {i}")["id"] for i in range(3)]

    page = _completed(project, start_and_run(project, "page"))["variables"]["answer"]
    assert [e["id"] for e in page["items"]] == seeded[:2]
    assert page["nextPageToken"]
    assert "nextSyncToken" not in page

    d = _completed(project, start_and_run(project, "every"))
    every = d["variables"]["answer"]
    assert [e["id"] for e in every["items"]] == seeded
    assert [e["summary"] for e in every["items"]] == ["Meeting 0", "Meeting 1", "Meeting 2"]
    assert every["pages"] == 2
    assert every["nextSyncToken"]
    assert "nextPageToken" not in every
    urls = [x["url"] for x in _step(d)["exchanges"]]
    assert len(urls) == 2 and "pageToken" not in urls[0] and "pageToken=" in urls[1]


def test_list_with_all_pages_stops_at_max_pages_with_bpmn_error_too_many_pages(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    call = one_call(LIST, maxResults="1", all_pages="True", max_pages="2")
    project = _open(open_test_project, emulator, call=call)
    for i in range(3):
        _seed(emulator, summary=f"Meeting {i}")

    incident = _incident(project, start_and_run(project, "call"), "tooManyPages")
    assert incident["details"]["items_so_far"] == 2
    assert "more than 2 pages" in incident["message"]
    assert len(api_calls(emulator, lambda r: r["method"] == "GET")) == 2  # then it stopped


def test_list_with_the_sync_token_returns_only_the_changes_deletions_included(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    project = _open(
        open_test_project,
        emulator,
        full=_proc("full", LIST, all_pages="True"),
        delta=_proc("delta", LIST, all_pages="True", syncToken="token"),
    )
    keep = _seed(emulator, summary="Keep")["id"]
    change = _seed(emulator, summary="Change")["id"]
    drop = _seed(emulator, summary="Drop")["id"]
    early = _seed(emulator, summary="Deleted early")["id"]
    assert _api(emulator, "DELETE", f"{_events_path()}/{early}").status_code == 204

    full = _completed(project, start_and_run(project, "full"))["variables"]["answer"]
    # A full list leaves cancelled events out unless showDeleted is asked for.
    assert [e["id"] for e in full["items"]] == [keep, change, drop]
    token = full["nextSyncToken"]

    patched = _api(emulator, "PATCH", f"{_events_path()}/{change}", json={"summary": "Changed"})
    assert patched.status_code == 200
    assert _api(emulator, "DELETE", f"{_events_path()}/{drop}").status_code == 204
    new = _seed(emulator, summary="New")["id"]

    delta = _completed(project, start_and_run(project, "delta", token=token))
    changes = {e["id"]: e for e in delta["variables"]["answer"]["items"]}
    assert set(changes) == {change, drop, new}  # not `keep`, not the early deletion
    assert changes[change]["summary"] == "Changed"
    assert changes[drop]["status"] == "cancelled"  # deletions come without showDeleted
    assert changes[new]["status"] == "confirmed"
    next_token = delta["variables"]["answer"]["nextSyncToken"]
    assert next_token and next_token != token
    [get] = _step(delta)["exchanges"]
    assert "syncToken=" in get["url"] and "showDeleted" not in get["url"]

    quiet = _completed(project, start_and_run(project, "delta", token=next_token))
    assert quiet["variables"]["answer"]["items"] == []


def test_list_with_an_unknown_sync_token_is_an_incident_full_sync_required(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    project = _open(open_test_project, emulator, call=one_call(LIST, syncToken="token"))
    incident = _incident(
        project, start_and_run(project, "call", token="CPnosuchtoken"), "fullSyncRequired"
    )
    assert incident["details"]["status"] == 410
    assert incident["details"]["response"]["error"]["errors"][0]["reason"] == "fullSyncRequired"


RESYNC = chain(
    "resync",
    start(),
    service("delta", LIST, "changes", syncToken="token"),
    script("incremental", "mode = 'incremental'"),
    end(),
    extra=(
        error_boundary("expired", "delta", "err_full_sync"),
        service("full", LIST, "changes", all_pages="True"),
        script("resynced", "mode = 'full'"),
        end("end_full"),
        flow("expired", "full"),
        flow("full", "resynced"),
        flow("resynced", "end_full"),
    ),
    errors={"err_full_sync": "fullSyncRequired"},
)


def test_a_process_catches_full_sync_required_and_lists_afresh(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    project = _open(
        open_test_project, emulator, first=_proc("first", LIST, all_pages="True"), resync=RESYNC
    )
    seeded = _seed(emulator)["id"]
    token = _completed(project, start_and_run(project, "first"))["variables"]["answer"][
        "nextSyncToken"
    ]
    expired = requests.post(f"{emulator.base_url}/_emulator/expire-sync-tokens", timeout=10)
    assert expired.json() == {"expired": 1}

    d = _completed(project, start_and_run(project, "resync", token=token))
    assert d["variables"]["mode"] == "full"
    assert [e["id"] for e in d["variables"]["changes"]["items"]] == [seeded]
    assert d["variables"]["changes"]["nextSyncToken"]
    assert _step(d, "delta")["outcome"] == "caught"
    lists = api_calls(emulator, lambda r: r["method"] == "GET" and r["path"].endswith("/events"))
    assert [r["status"] for r in lists][-2:] == [410, 200]


# -- events.patch and events.update ------------------------------------------------------------

PATCH = "google_calendar.events.patch"


def test_patch_changes_only_the_given_fields(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    call = one_call(PATCH, eventId="eid", event=expr({"summary": "Moved"}))
    project = _open(open_test_project, emulator, call=call)
    seeded = _seed(emulator, description="Agenda", location="Room 4")

    changed = _completed(project, start_and_run(project, "call", eid=seeded["id"]))
    patched = changed["variables"]["answer"]
    assert patched["summary"] == "Moved"
    assert patched["description"] == "Agenda"
    assert patched["location"] == "Room 4"
    assert patched["start"] == seeded["start"] and patched["end"] == seeded["end"]
    assert patched["sequence"] == seeded["sequence"] + 1
    assert patched["etag"] != seeded["etag"]
    stored = _stored(emulator)[seeded["id"]]
    assert (stored["summary"], stored["description"]) == ("Moved", "Agenda")
    [sent] = _step(changed)["exchanges"]
    assert sent["method"] == "PATCH"
    assert json.loads(sent["request_body"]) == {"summary": "Moved"}


def test_patch_with_a_stale_etag_is_condition_not_met_and_changes_nothing(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    call = one_call(PATCH, eventId="eid", event=expr({"summary": "Mine"}), if_match="etag")
    project = _open(open_test_project, emulator, call=call)
    seeded = _seed(emulator, summary="Original")
    theirs = _api(emulator, "PATCH", f"{_events_path()}/{seeded['id']}", json={"summary": "Theirs"})
    assert theirs.status_code == 200

    stale = start_and_run(project, "call", eid=seeded["id"], etag=seeded["etag"])
    incident = _incident(project, stale, "conditionNotMet")
    assert incident["details"]["status"] == 412
    [sent] = _step(detail(project, stale))["exchanges"]
    assert sent["request_headers"]["If-Match"] == seeded["etag"]
    assert _stored(emulator)[seeded["id"]]["summary"] == "Theirs"

    current = theirs.json()["etag"]
    fresh = _completed(project, start_and_run(project, "call", eid=seeded["id"], etag=current))
    assert fresh["variables"]["answer"]["summary"] == "Mine"
    assert _stored(emulator)[seeded["id"]]["summary"] == "Mine"


def test_update_replaces_the_whole_event(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    replacement = {
        "summary": "Replaced",
        "start": {"dateTime": "2030-06-01T10:00:00Z"},
        "end": {"dateTime": "2030-06-01T10:30:00Z"},
    }
    call = one_call("google_calendar.events.update", eventId="eid", event=expr(replacement))
    project = _open(open_test_project, emulator, call=call)
    seeded = _seed(
        emulator, description="Agenda", location="Room 4", attendees=[{"email": "bob@example.com"}]
    )

    d = _completed(project, start_and_run(project, "call", eid=seeded["id"]))
    updated = d["variables"]["answer"]
    assert updated["id"] == seeded["id"]
    assert updated["created"] == seeded["created"]
    assert updated["summary"] == "Replaced"
    assert updated["start"] == replacement["start"] and updated["end"] == replacement["end"]
    for gone in ("description", "location", "attendees"):
        assert gone not in updated
    stored = _stored(emulator)[seeded["id"]]
    assert stored["summary"] == "Replaced" and "description" not in stored
    assert _step(d)["exchanges"][0]["method"] == "PUT"


# -- events.delete -----------------------------------------------------------------------------


def test_delete_cancels_the_event_and_deleting_again_is_bpmn_error_deleted(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    project = _open(open_test_project, emulator, call=one_call(DELETE, eventId="eid"))
    seeded = _seed(emulator)["id"]

    d = _completed(project, start_and_run(project, "call", eid=seeded))
    assert d["variables"]["answer"] == {"deleted": True, "eventId": seeded}
    assert _stored(emulator)[seeded]["status"] == "cancelled"

    incident = _incident(project, start_and_run(project, "call", eid=seeded), "deleted")
    assert incident["details"]["status"] == 410
    assert incident["details"]["response"]["error"]["errors"][0]["reason"] == "deleted"
    assert _stored(emulator)[seeded]["status"] == "cancelled"


def test_delete_with_missing_ok_completes_for_an_event_deleted_or_never_made(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    call = one_call(DELETE, eventId="eid", missing_ok="True")
    project = _open(open_test_project, emulator, call=call)
    seeded = _seed(emulator)["id"]
    assert _api(emulator, "DELETE", f"{_events_path()}/{seeded}").status_code == 204

    d = _completed(project, start_and_run(project, "call", eid=seeded))
    assert d["variables"]["answer"] == {"deleted": False, "eventId": seeded, "reason": "deleted"}
    assert "already gone (deleted)" in _step(d)["message"]

    never = _completed(project, start_and_run(project, "call", eid="nevermade1"))
    assert never["variables"]["answer"] == {
        "deleted": False,
        "eventId": "nevermade1",
        "reason": "notFound",
    }
    deletes = api_calls(emulator, lambda r: r["method"] == "DELETE")
    assert [r["status"] for r in deletes] == [204, 410, 404]


def test_delete_with_missing_ok_still_fails_for_a_calendar_that_does_not_exist(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    # A typo in the calendar id also answers 404; that must not count as "already gone".
    call = one_call(
        DELETE, calendarId=expr("team-typo@example.com"), eventId="eid", missing_ok="True"
    )
    project = _open(open_test_project, emulator, call=call)
    incident = _incident(project, start_and_run(project, "call", eid="someevent1"), "notFound")
    assert "checking that calendar 'team-typo@example.com' exists" in incident["message"]


# -- events.watch, calendars.insert, calendar_list.list ----------------------------------------


def test_watch_opens_a_channel_with_a_resource_id(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    channel = {
        "id": "catflow-channel-1",
        "type": "web_hook",
        "address": "https://hooks.example.com/calendar",
        "token": "room=4",
    }
    call = one_call("google_calendar.events.watch", channel=expr(channel))
    project = _open(open_test_project, emulator, call=call)

    opened = _completed(project, start_and_run(project, "call"))["variables"]["answer"]
    assert opened["kind"] == "api#channel"
    assert opened["id"] == "catflow-channel-1"
    assert opened["resourceId"]
    assert opened["resourceUri"].split("?")[0].endswith(f"/calendars/{USER}/events")
    assert int(opened["expiration"]) > 0
    held = emulator.state.channels["catflow-channel-1"]
    assert held["resourceId"] == opened["resourceId"]
    assert held["address"] == channel["address"] and held["user"] == USER


CALENDAR_LIST = "google_calendar.calendar_list.list"
SECONDARY = chain(
    "secondary",
    start(),
    service(
        "make_calendar",
        "google_calendar.calendars.insert",
        "calendar",
        calendar=expr({"summary": "Room bookings", "timeZone": "Europe/Berlin"}),
    ),
    service("book", INSERT, "booking", calendarId="calendar['id']", event=expr(MEETING)),
    service("list_all", CALENDAR_LIST, "calendars", all_pages="True", maxResults="1"),
    end(),
)


def test_a_new_calendar_takes_events_and_is_in_the_calendar_list(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    project = _open(
        open_test_project,
        emulator,
        secondary=SECONDARY,
        one_page=_proc("one_page", CALENDAR_LIST, maxResults="1"),
    )
    d = _completed(project, start_and_run(project, "secondary"))
    calendar = d["variables"]["calendar"]
    assert calendar["id"].endswith("@group.calendar.google.com")
    assert calendar["summary"] == "Room bookings"

    booking = d["variables"]["booking"]
    assert booking["organizer"]["email"] == calendar["id"]
    assert list(_stored(emulator, calendar["id"])) == [booking["id"]]
    assert _stored(emulator) == {}  # not in the primary calendar
    [post] = _step(d, "book")["exchanges"]
    assert f"/calendars/{quote(calendar['id'], safe='')}/events" in post["url"]

    listed = d["variables"]["calendars"]
    assert [c["id"] for c in listed["items"]] == [USER, calendar["id"]]
    assert listed["items"][1]["summary"] == "Room bookings"
    assert listed["pages"] == 2

    page = _completed(project, start_and_run(project, "one_page"))["variables"]["answer"]
    assert [c["id"] for c in page["items"]] == [USER]
    assert page["nextPageToken"]


# -- http.request ------------------------------------------------------------------------------

HTTP = "http.request"
CONNECTED = {"connection": "'google'"}
MISSING_EVENT = "'calendar/v3/calendars/primary/events/nosuchevent1'"


def test_http_request_with_the_connection_reaches_a_relative_path(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    call = one_call(HTTP, url="'calendar/v3/users/me/calendarList'", **CONNECTED)
    project = _open(open_test_project, emulator, call=call)

    d = _completed(project, start_and_run(project, "call"))
    answer = d["variables"]["answer"]
    assert answer["status"] == 200
    assert answer["body"]["kind"] == "calendar#calendarList"
    assert [c["id"] for c in answer["body"]["items"]] == [USER]
    [sent] = _step(d)["exchanges"]
    assert sent["url"] == f"{emulator.base_url}/calendar/v3/users/me/calendarList"
    assert sent["connection"] == "google"
    assert sent["request_headers"]["Authorization"] == "[redacted]"  # sent, not logged
    [logged] = api_calls(emulator, lambda r: r["path"].endswith("/calendarList"))
    assert logged["user"] == USER


def test_http_request_404_is_bpmn_error_404_unless_expected(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    project = _open(
        open_test_project,
        emulator,
        strict=_proc("strict", HTTP, url=MISSING_EVENT, **CONNECTED),
        tolerant=_proc("tolerant", HTTP, url=MISSING_EVENT, expected="[200, 404]", **CONNECTED),
    )

    incident = _incident(project, start_and_run(project, "strict"), "404")
    assert incident["details"]["status"] == 404
    assert incident["details"]["response"]["error"]["errors"][0]["reason"] == "notFound"

    d = _completed(project, start_and_run(project, "tolerant"))
    assert d["variables"]["answer"]["status"] == 404
    assert d["variables"]["answer"]["body"]["error"]["code"] == 404
    gets = api_calls(emulator, lambda r: r["path"].endswith("/nosuchevent1"))
    assert [r["status"] for r in gets] == [404, 404]  # one each: a 404 is not retried
