"""The meetings → Google Calendar job, end to end: records in, events out, ids back.

Everything runs for real: the shipped catalogs and processes, the store (SQLite and
PostgreSQL), the workers, and the Calendar emulator over HTTP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flow_helpers import create, get, update
from meetings_flow import (
    OWNER,
    delete,
    events,
    every,
    instance_states,
    live,
    open_meetings,
    settle,
)

from engine.components.google_calendar import event_id
from engine.emulators.calendar import CalendarEmulator
from engine.errors import ValidationFailed
from engine.runtime import Project, cancel, retry


def _people(project: Project) -> dict[str, int]:
    return {
        "ann": create(project, "employees", {"name": "Ann", "email": "ann@example.com"}),
        "bob": create(project, "employees", {"name": "Bob", "email": "BOB@Example.com"}),
        "carl": create(
            project, "employees", {"name": "Carl", "email": "carl@example.com", "active": False}
        ),
        "dora": create(project, "employees", {"name": "Dora"}),
    }


def _meetings(project: Project, people: dict[str, int], team: int) -> dict[str, int]:
    """Meetings covering every case a meetings catalog produces."""
    return {
        # No end: start + 60 minutes, in the meeting's zone; duplicates in any case once.
        "planning": create(
            project,
            "meetings",
            {
                "title": "Planning",
                "agenda": "Q2 goals",
                "starts_at": "2030-03-04T08:00:00Z",
                "time_zone": "Europe/Berlin",
                "participants": [people["ann"], people["bob"], people["carl"], people["dora"]],
                "extra_participants": ["bob@example.com", "Zed@Partner.org", "ANN@example.com"],
            },
        ),
        # An end, another zone.
        "review": create(
            project,
            "meetings",
            {
                "title": "Review",
                "starts_at": "2030-03-04T15:00:00Z",
                "ends_at": "2030-03-04T16:30:00Z",
                "time_zone": "America/New_York",
                "participants": [people["bob"]],
                "send_updates": "none",
            },
        ),
        # All day, two days, in Tokyo: Google's end date is exclusive.
        "offsite": create(
            project,
            "meetings",
            {
                "title": "Offsite",
                "starts_at": "2030-03-05T00:30:00+09:00",
                "ends_at": "2030-03-06T18:00:00+09:00",
                "all_day": True,
                "time_zone": "Asia/Tokyo",
            },
        ),
        # A Meet link and reminders.
        "standup": create(
            project,
            "meetings",
            {
                "title": "Stand-up",
                "starts_at": "2030-03-06T09:15:00+05:30",
                "ends_at": "2030-03-06T09:30:00+05:30",
                "time_zone": "Asia/Kolkata",
                "create_meet_link": True,
                "reminders": [10, 60],
                "participants": [people["ann"]],
            },
        ),
        # In a team calendar that Catflow creates.
        "platform_sync": create(
            project,
            "meetings",
            {
                "title": "Platform sync",
                "starts_at": "2030-03-07T10:00:00Z",
                "team_calendar": team,
            },
        ),
    }


def _run_the_job(project: Project, emulator: CalendarEmulator) -> None:
    """Create, edit and delete meetings; check what the calendars and records then hold."""
    people = _people(project)
    team = create(project, "team_calendars", {"name": "Platform", "time_zone": "Europe/Paris"})
    ids = _meetings(project, people, team)
    states = settle(project)
    assert set(states.values()) == {"completed"}, states

    team_record = get(project, "team_calendars", team)
    assert team_record["sync_status"] == "synced"
    team_calendar = team_record["calendar_id"]
    primary = live(events(emulator))
    in_team = live(events(emulator, team_calendar))
    meetings = {name: get(project, "meetings", i) for name, i in ids.items()}
    for name, meeting in meetings.items():
        assert meeting["sync_status"] == "synced", (name, meeting["sync_error"])
        assert meeting["sync_error"] is None
        assert meeting["calendar_event_id"] == event_id("meetings", meeting["id"])
    assert set(primary) == {
        meetings[n]["calendar_event_id"] for n in ("planning", "review", "offsite", "standup")
    }
    assert set(in_team) == {meetings["platform_sync"]["calendar_event_id"]}

    planning = primary[meetings["planning"]["calendar_event_id"]]
    assert planning["summary"] == "Planning" and planning["description"] == "Q2 goals"
    assert planning["start"] == {
        "dateTime": "2030-03-04T09:00:00+01:00",
        "timeZone": "Europe/Berlin",
    }
    assert planning["end"] == {"dateTime": "2030-03-04T10:00:00+01:00", "timeZone": "Europe/Berlin"}
    assert [a["email"] for a in planning["attendees"]] == [
        "ann@example.com",
        "BOB@example.com",
        "Zed@partner.org",
    ]
    assert {a["responseStatus"] for a in planning["attendees"]} == {"needsAction"}
    assert meetings["planning"]["attendees"] == [
        "ann@example.com",
        "BOB@example.com",
        "Zed@partner.org",
    ]

    review = primary[meetings["review"]["calendar_event_id"]]
    assert review["start"]["dateTime"] == "2030-03-04T10:00:00-05:00"
    assert review["end"]["dateTime"] == "2030-03-04T11:30:00-05:00"

    offsite = primary[meetings["offsite"]["calendar_event_id"]]
    assert offsite["start"] == {"date": "2030-03-05"} and offsite["end"] == {"date": "2030-03-07"}

    standup = primary[meetings["standup"]["calendar_event_id"]]
    assert standup["hangoutLink"] == meetings["standup"]["meeting_url"]
    assert meetings["standup"]["meeting_url"].startswith("https://meet.google.com/")
    assert standup["reminders"] == {
        "useDefault": False,
        "overrides": [{"method": "popup", "minutes": 10}, {"method": "popup", "minutes": 60}],
    }
    assert meetings["review"]["meeting_url"] is None

    # -- edits ------------------------------------------------------------------------------
    before = events(emulator)
    runs_before = len(instance_states(project))
    update(project, "meetings", ids["review"], {"send_updates": "all"})  # not on the event
    settle(project)
    assert len(instance_states(project)) == runs_before  # no instance: nothing to tell Google
    update(
        project,
        "meetings",
        ids["planning"],
        {"title": "Planning (moved)", "ends_at": "2030-03-04T08:45:00Z"},
    )
    update(project, "meetings", ids["standup"], {"team_calendar": team})  # to the team calendar
    states = settle(project)
    assert set(states.values()) == {"completed"}, states

    after = events(emulator)
    review_id = meetings["review"]["calendar_event_id"]
    assert after[review_id]["etag"] == before[review_id]["etag"]  # untouched
    moved = after[meetings["planning"]["calendar_event_id"]]
    assert moved["summary"] == "Planning (moved)"
    assert moved["end"]["dateTime"] == "2030-03-04T09:45:00+01:00"
    assert moved["sequence"] == 1
    assert after[meetings["standup"]["calendar_event_id"]]["status"] == "cancelled"
    standup_now = get(project, "meetings", ids["standup"])
    assert standup_now["event_calendar_id"] == team_calendar
    assert standup_now["calendar_event_id"] in live(events(emulator, team_calendar))

    # -- deletions ---------------------------------------------------------------------------
    delete(project, "meetings", ids["offsite"])
    delete(project, "meetings", ids["review"])
    states = settle(project)
    assert set(states.values()) == {"completed"}, states
    final = events(emulator)
    assert final[meetings["offsite"]["calendar_event_id"]]["status"] == "cancelled"
    assert final[review_id]["status"] == "cancelled"
    assert set(live(final)) == {meetings["planning"]["calendar_event_id"]}
    # Exactly once: no event in any calendar but the ones derived from the meetings.
    assert set(final) == {
        meetings[n]["calendar_event_id"] for n in ("planning", "review", "offsite", "standup")
    }
    assert set(live(events(emulator, team_calendar))) == {
        meetings["platform_sync"]["calendar_event_id"],
        standup_now["calendar_event_id"],
    }


def test_the_meetings_job_end_to_end(
    open_test_project: Any, project_dir: Path, emulator: CalendarEmulator
) -> None:
    project = open_meetings(open_test_project, project_dir, emulator)
    _run_the_job(project, emulator)


def test_the_job_survives_throttling_errors_and_expiring_tokens(
    open_test_project: Any, project_dir: Path, emulator: CalendarEmulator
) -> None:
    """20% of Calendar requests answered 503 or 429, tokens expiring every 30 s (and
    dropped every 2 s besides): every meeting still synced exactly once."""
    emulator.core.token_lifetime = 30
    emulator.faults.update({"error_rates": {503: 0.1, 429: 0.1}, "retry_after_s": 1, "seed": 7})
    emulator.core.injector.reseed()
    project = open_meetings(open_test_project, project_dir, emulator)
    stop_expiring = every(2.0, emulator.expire_tokens)
    try:
        _run_the_job(project, emulator)
    finally:
        stop_expiring()
    statuses = [r["status"] for r in emulator.requests() if "/calendar/v3" in r["path"]]
    assert statuses.count(503) + statuses.count(429) >= 5  # the faults did happen
    assert 401 in statuses  # and so did expired tokens


def test_bad_meetings_are_refused_at_the_record_with_a_per_field_error(
    open_test_project: Any, project_dir: Path, emulator: CalendarEmulator
) -> None:
    project = open_meetings(open_test_project, project_dir, emulator)
    base = {"title": "Bad", "starts_at": "2030-01-01T10:00:00Z"}
    cases = {
        "meetings.ends_at": {**base, "ends_at": "2030-01-01T09:00:00Z"},
        "meetings.participants": {**base, "participants": [424242]},
        "meetings.extra_participants": {**base, "extra_participants": ["not an address"]},
    }
    for where, data in cases.items():
        with pytest.raises(ValidationFailed) as refused:
            create(project, "meetings", data)
        assert [p.where for p in refused.value.problems] == [where]
    good = create(project, "meetings", base)
    with pytest.raises(ValidationFailed) as refused:
        update(project, "meetings", good, {"ends_at": "2030-01-01T10:00:00Z"})
    assert refused.value.problems[0].where == "meetings.ends_at"
    assert "is not after starts_at" in refused.value.problems[0].message


def test_what_only_google_can_refuse_ends_as_sync_status_error_and_a_retry_clears_it(
    open_test_project: Any, project_dir: Path, emulator: CalendarEmulator
) -> None:
    project = open_meetings(open_test_project, project_dir, emulator)
    meeting = create(
        project,
        "meetings",
        {
            "title": "Elsewhere",
            "starts_at": "2030-01-01T10:00:00Z",
            "calendar_id": "nobody@example.com",
        },
    )
    states = settle(project)
    [(instance, state)] = states.items()
    assert state == "incident"
    record = get(project, "meetings", meeting)
    assert record["sync_status"] == "error"
    assert "Google Calendar answered 404 notFound: Not Found" in record["sync_error"]
    # The operator gives up on that run; the user fixes the calendar: the update of a
    # meeting that has no event yet creates it.
    with project.db.session() as s:
        cancel(s, instance, "tester")
    update(project, "meetings", meeting, {"calendar_id": "primary"})
    settle(project)
    fixed_calendar = get(project, "meetings", meeting)
    assert fixed_calendar["sync_status"] == "synced" and fixed_calendar["sync_error"] is None
    assert fixed_calendar["calendar_event_id"] in live(events(emulator))

    # A fault of Google's own (a daily quota) that passes: the retry clears the error.
    emulator.faults.update({"script": ["403 quotaExceeded"]})
    other = create(project, "meetings", {"title": "Quota", "starts_at": "2030-01-02T10:00:00Z"})
    settle(project)
    assert get(project, "meetings", other)["sync_status"] == "error"
    assert "quotaExceeded" in get(project, "meetings", other)["sync_error"]
    failed = [i for i, st in instance_states(project).items() if st == "incident"]
    with project.db.session() as s:
        retry(s, failed[0], "tester")
    settle(project)
    fixed = get(project, "meetings", other)
    assert fixed["sync_status"] == "synced" and fixed["sync_error"] is None
    assert fixed["calendar_event_id"] in live(events(emulator, user=OWNER))


def test_deleting_an_employee_takes_them_off_the_events_of_their_meetings(
    open_test_project: Any, project_dir: Path, emulator: CalendarEmulator
) -> None:
    project = open_meetings(open_test_project, project_dir, emulator)
    ann = create(project, "employees", {"name": "Ann", "email": "ann@example.com"})
    bob = create(project, "employees", {"name": "Bob", "email": "bob@example.com"})
    meeting = create(
        project,
        "meetings",
        {"title": "Pairing", "starts_at": "2030-01-01T10:00:00Z", "participants": [ann, bob]},
    )
    settle(project)
    event = get(project, "meetings", meeting)["calendar_event_id"]
    attendees = [a["email"] for a in live(events(emulator))[event]["attendees"]]
    assert attendees == ["ann@example.com", "bob@example.com"]

    delete(project, "employees", bob)
    states = settle(project)
    assert set(states.values()) == {"completed"}, states
    record = get(project, "meetings", meeting)
    assert record["participants"] == [ann] and record["attendees"] == ["ann@example.com"]
    assert [a["email"] for a in live(events(emulator))[event]["attendees"]] == ["ann@example.com"]
