"""Google's rules for an event body: times, reminders, attendees, conferences."""

from __future__ import annotations

import base64
import copy
import random
import re
import string
from datetime import UTC, datetime
from typing import Any

from ._errors import ApiError, invalid_field, required_field
from ._validate import parse_date, parse_date_time

EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
MAX_OVERRIDES = 5
MAX_REMINDER_MINUTES = 40320
# Fields the server owns: values sent by clients are ignored, as Google does.
READ_ONLY = frozenset(
    {
        "kind",
        "etag",
        "htmlLink",
        "created",
        "updated",
        "creator",
        "organizer",
        "hangoutLink",
        "sequence",
    }
)


def start_moment(when: dict[str, Any]) -> datetime:
    """The instant an EventDateTime stands for (all-day dates at 00:00 UTC)."""
    if when.get("dateTime"):
        parsed = parse_date_time(when["dateTime"])
        assert parsed is not None  # checked by check_times
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    day = parse_date(when["date"])
    assert day is not None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _check_when(event: dict[str, Any], name: str) -> str:
    when = event.get(name)
    if not isinstance(when, dict) or not (when.get("date") or when.get("dateTime")):
        raise required_field(name)
    if when.get("date") and when.get("dateTime"):
        raise invalid_field(name, f"Invalid {name}: give either date or dateTime, not both.")
    if when.get("dateTime"):
        parsed = parse_date_time(when["dateTime"])
        if parsed is None:
            raise invalid_field(f"{name}.dateTime")
        if parsed.tzinfo is None and not when.get("timeZone"):
            raise ApiError(
                400,
                "required",
                f"Missing time zone definition for {name} time.",
                location=f"{name}.timeZone",
            )
        return "dateTime"
    return "date"


def check_times(event: dict[str, Any]) -> None:
    kinds = {_check_when(event, "start"), _check_when(event, "end")}
    if len(kinds) > 1:
        raise invalid_field(
            "end", "Start and end times must either both be date or both be dateTime."
        )
    if start_moment(event["end"]) <= start_moment(event["start"]):
        raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.", location="end")


def check_reminders(event: dict[str, Any]) -> None:
    reminders = event.get("reminders")
    if reminders is None:
        event["reminders"] = {"useDefault": True}
        return
    overrides = reminders.get("overrides") or []
    if reminders.get("useDefault") and overrides:
        raise ApiError(
            400,
            "cannotUseDefaultRemindersAndSpecifyOverride",
            "Cannot specify both default reminders and overrides at the same time.",
            location="reminders",
        )
    if len(overrides) > MAX_OVERRIDES:
        raise invalid_field(
            "reminders.overrides", f"Cannot have more than {MAX_OVERRIDES} override reminders."
        )
    for index, override in enumerate(overrides):
        path = f"reminders.overrides[{index}]"
        if override.get("method") not in ("email", "popup"):
            raise (
                required_field(f"{path}.method")
                if override.get("method") is None
                else invalid_field(f"{path}.method")
            )
        if override.get("minutes") is None:
            raise required_field(f"{path}.minutes")
        if not 0 <= int(override["minutes"]) <= MAX_REMINDER_MINUTES:
            raise invalid_field(
                f"{path}.minutes",
                f"Invalid value for field {path}.minutes: reminder minutes must "
                f"be between 0 and {MAX_REMINDER_MINUTES}.",
            )
        override["minutes"] = int(override["minutes"])
    reminders.setdefault("useDefault", False)


def check_attendees(event: dict[str, Any], user: str) -> None:
    for index, attendee in enumerate(event.get("attendees") or []):
        if not attendee.get("email"):
            raise ApiError(
                400, "required", "Missing attendee email.", location=f"attendees[{index}].email"
            )
        attendee.setdefault("responseStatus", "needsAction")
        if attendee["email"].lower() == user.lower():
            attendee["self"] = True
            attendee["organizer"] = True


def _meet_code(rng: random.Random) -> str:
    parts = ("".join(rng.choice(string.ascii_lowercase) for _ in range(n)) for n in (3, 4, 3))
    return "-".join(parts)


def apply_conference(
    event: dict[str, Any], previous: dict[str, Any] | None, version: int, seed: str
) -> None:
    """Honour ``conferenceData`` only with ``conferenceDataVersion=1``, as Google does."""
    if version not in (0, 1):
        raise ApiError(
            400,
            "invalid",
            "Invalid conference data version: must be 0 or 1.",
            location="conferenceDataVersion",
        )
    old = (previous or {}).get("conferenceData")
    if version == 0:
        event.pop("conferenceData", None)
        event.pop("hangoutLink", None)
        if old is not None:
            event["conferenceData"] = copy.deepcopy(old)
            if previous and "hangoutLink" in previous:
                event["hangoutLink"] = previous["hangoutLink"]
        return
    data = event.get("conferenceData")
    if not data:
        event.pop("conferenceData", None)
        event.pop("hangoutLink", None)
        return
    request = data.get("createRequest")
    if request is None or (
        old and old.get("createRequest", {}).get("requestId") == request.get("requestId")
    ):
        if old is not None and request is not None:
            event["conferenceData"] = copy.deepcopy(old)
            if previous and "hangoutLink" in previous:
                event["hangoutLink"] = previous["hangoutLink"]
        return
    if not request.get("requestId"):
        raise required_field("conferenceData.createRequest.requestId")
    kind = (request.get("conferenceSolutionKey") or {}).get("type", "hangoutsMeet")
    if kind != "hangoutsMeet":
        raise invalid_field(
            "conferenceData.createRequest.conferenceSolutionKey.type",
            "Invalid conference type value.",
        )
    code = _meet_code(random.Random(seed + request["requestId"]))
    uri = f"https://meet.google.com/{code}"
    event["conferenceData"] = {
        "createRequest": {
            "requestId": request["requestId"],
            "conferenceSolutionKey": {"type": kind},
            "status": {"statusCode": "success"},
        },
        "entryPoints": [
            {"entryPointType": "video", "uri": uri, "label": f"meet.google.com/{code}"}
        ],
        "conferenceSolution": {
            "key": {"type": kind},
            "name": "Google Meet",
            "iconUri": "https://fonts.gstatic.com/s/i/productlogos/meet_2020q4/v6/web-512dp/"
            "logo_meet_2020q4_color_2x_web_512dp.png",
        },
        "conferenceId": code,
    }
    event["hangoutLink"] = uri


def html_link(event_id: str, calendar_id: str) -> str:
    eid = base64.urlsafe_b64encode(f"{event_id} {calendar_id}".encode()).decode().rstrip("=")
    return f"https://www.google.com/calendar/event?eid={eid}"


def merge_patch(target: dict[str, Any], patch: dict[str, Any], path: str = "") -> None:
    """Google's patch: objects merge recursively, arrays and scalars replace, null clears."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            if path == "" and key in ("start", "end", "originalStartTime"):
                # Switching between date and dateTime replaces the other one.
                other = "dateTime" if "date" in value else "date" if "dateTime" in value else None
                if other is not None:
                    target[key].pop(other, None)
            merge_patch(target[key], value, f"{path}.{key}")
        else:
            target[key] = copy.deepcopy(value)
