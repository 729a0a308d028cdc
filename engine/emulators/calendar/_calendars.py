"""calendars.* and calendarList.* handlers."""

from __future__ import annotations

import secrets
from typing import Any

from ._call import (
    Call,
    Reply,
    calendar_for,
    decode_page_token,
    encode_page_token,
    fingerprint,
    public,
)
from ._errors import ApiError

_WRITABLE = ("summary", "description", "location", "timeZone", "conferenceProperties")


def _calendar_out(calendar: dict[str, Any]) -> dict[str, Any]:
    return public(calendar)


def _list_entry(calendar: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "kind": "calendar#calendarListEntry",
        "etag": calendar["etag"],
        "id": calendar["id"],
        "summary": calendar.get("summary", ""),
        "timeZone": calendar.get("timeZone", "UTC"),
        "accessRole": "owner",
        "defaultReminders": [],
        "conferenceProperties": calendar.get("conferenceProperties", {}),
    }
    for key in ("description", "location"):
        if key in calendar:
            entry[key] = calendar[key]
    if calendar.get("_primary"):
        entry["primary"] = True
        entry["notificationSettings"] = {"notifications": []}
    return entry


def calendars_insert(call: Call) -> Reply:
    state = call.state
    with state.lock:
        calendar_id = f"c_{secrets.token_hex(16)}@group.calendar.google.com"
        calendar: dict[str, Any] = {
            "kind": "calendar#calendar",
            "id": calendar_id,
            "timeZone": "UTC",
            "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
        }
        calendar.update({k: call.body[k] for k in _WRITABLE if call.body.get(k) is not None})
        calendar.update(etag=f'"{state.tick()}"', _owner=call.user, _updated=state.now())
        state.calendars[calendar_id] = calendar
        state.events[calendar_id] = {}
        state.calendar_lists.setdefault(call.user, []).append(calendar_id)
        out = _calendar_out(calendar)
    state.save()
    return Reply(200, out)


def calendars_get(call: Call) -> Reply:
    with call.state.lock:
        return Reply(200, _calendar_out(calendar_for(call, call.params["calendarId"])))


def _change(call: Call, *, partial: bool) -> Reply:
    state = call.state
    with state.lock:
        calendar = calendar_for(call, call.params["calendarId"])
        for key in _WRITABLE:
            if key in call.body:
                if call.body[key] is None:
                    calendar.pop(key, None)
                else:
                    calendar[key] = call.body[key]
            elif not partial and key not in ("timeZone", "conferenceProperties"):
                calendar.pop(key, None)
        calendar["etag"] = f'"{state.tick()}"'
        out = _calendar_out(calendar)
    state.save()
    return Reply(200, out)


def calendars_patch(call: Call) -> Reply:
    return _change(call, partial=True)


def calendars_update(call: Call) -> Reply:
    return _change(call, partial=False)


def calendars_delete(call: Call) -> Reply:
    state = call.state
    with state.lock:
        calendar = calendar_for(call, call.params["calendarId"])
        if calendar.get("_primary"):
            raise ApiError(400, "cannotDeletePrimaryCalendar", "Cannot delete primary calendar.")
        calendar["_deleted"] = True
        entries = state.calendar_lists.get(call.user, [])
        if calendar["id"] in entries:
            entries.remove(calendar["id"])
    state.save()
    return Reply(204)


def calendar_list_get(call: Call) -> Reply:
    with call.state.lock:
        calendar = calendar_for(call, call.params["calendarId"])
        if calendar["id"] not in call.state.calendar_lists.get(call.user, []):
            raise ApiError(404, "notFound", "Not Found")
        return Reply(200, _list_entry(calendar))


def calendar_list_list(call: Call) -> Reply:
    params = call.params
    if "syncToken" in params:
        raise ApiError(
            410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required."
        )
    size = min(int(params.get("maxResults", 100)), 250)
    key = fingerprint(params, ("pageToken", "maxResults", "alt", "prettyPrint"))
    offset = 0
    if "pageToken" in params:
        offset = int(decode_page_token(params["pageToken"], key).get("o", 0))
    with call.state.lock:
        ids = call.state.calendar_lists.get(call.user, [])
        entries = [_list_entry(call.state.calendars[i]) for i in ids]
        counter = call.state.counter
    page = entries[offset : offset + size]
    out: dict[str, Any] = {"kind": "calendar#calendarList", "etag": f'"{counter}"', "items": page}
    if offset + size < len(entries):
        out["nextPageToken"] = encode_page_token({"o": offset + size, "f": key})
    else:
        out["nextSyncToken"] = encode_page_token({"calendarList": counter})
    return Reply(200, out)
