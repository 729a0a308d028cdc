"""events.* handlers with Google's semantics (ids, etags, cancellation, paging, sync)."""

from __future__ import annotations

import copy
import secrets
from typing import Any

from . import _event_rules as rules
from ._call import (
    Call,
    Reply,
    calendar_for,
    check_if_match,
    decode_page_token,
    encode_page_token,
    fingerprint,
    public,
)
from ._errors import ApiError, invalid_param, not_found
from ._state import new_token, rfc3339
from ._validate import parse_date_time

_BASE32HEX = "0123456789abcdefghijklmnopqrstuv"
_SYNC_EXCLUSIVE = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)


def _new_id() -> str:
    return "".join(secrets.choice(_BASE32HEX) for _ in range(26))


def _stamp(call: Call, event: dict[str, Any]) -> None:
    """Give a changed event its new change number, ``updated`` and ``etag``."""
    state = call.state
    change = state.tick()
    now = state.now()
    event["_change"] = change
    event["updated"] = rfc3339(now)
    event["etag"] = f'"{int(now * 1000)}{change:06d}"'


def _finish(call: Call, event: dict[str, Any], previous: dict[str, Any] | None) -> None:
    rules.check_times(event)
    rules.check_reminders(event)
    rules.check_attendees(event, call.user)
    version = int(call.params.get("conferenceDataVersion", 0))
    rules.apply_conference(event, previous, version, event["id"])
    event.setdefault("status", "confirmed")
    event.setdefault("eventType", "default")
    if event["status"] not in ("confirmed", "tentative", "cancelled"):
        raise ApiError(400, "invalid", "Invalid value for field: status", location="status")


def _stored(call: Call) -> tuple[dict[str, Any], dict[str, Any]]:
    calendar = calendar_for(call, call.params["calendarId"])
    event = call.state.events[calendar["id"]].get(call.params["eventId"])
    if event is None:
        raise not_found()
    return calendar, event


def _out(call: Call, event: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(public(event))
    limit = call.params.get("maxAttendees")
    if limit is not None and len(data.get("attendees", [])) > int(limit):
        data["attendees"] = data["attendees"][: int(limit)]
        data["attendeesOmitted"] = True
    return data


def events_insert(call: Call) -> Reply:
    body: dict[str, Any] = call.body
    state = call.state
    with state.lock:
        calendar = calendar_for(call, call.params["calendarId"])
        events = state.events[calendar["id"]]
        event_id = body.get("id")
        if event_id is not None:
            if not rules.EVENT_ID.match(event_id):
                raise ApiError(400, "invalid", "Invalid resource id value.", location="id")
            if event_id in events:
                raise ApiError(409, "duplicate", "The requested identifier already exists.")
        else:
            event_id = _new_id()
        event = {
            k: copy.deepcopy(v)
            for k, v in body.items()
            if k not in rules.READ_ONLY and v is not None
        }
        event["id"] = event_id
        _finish(call, event, None)
        now = rfc3339(state.now())
        who = {"email": call.user, "self": True}
        organizer = (
            dict(who)
            if calendar.get("_primary")
            else {"email": calendar["id"], "displayName": calendar.get("summary", ""), "self": True}
        )
        event.update(
            kind="calendar#event",
            htmlLink=rules.html_link(event_id, calendar["id"]),
            created=now,
            creator=who,
            organizer=organizer,
            sequence=0,
        )
        event.setdefault("iCalUID", f"{event_id}@google.com")
        event["_order"] = len(events)
        _stamp(call, event)
        events[event_id] = event
        out = _out(call, event)
    state.save()
    return Reply(200, out)


def events_get(call: Call) -> Reply:
    with call.state.lock:
        _, event = _stored(call)
        if call.headers.get("if-none-match") == event["etag"]:
            return Reply(304)
        return Reply(200, _out(call, event))


def _rewrite(call: Call, *, partial: bool) -> Reply:
    state = call.state
    body: dict[str, Any] = call.body
    with state.lock:
        calendar, previous = _stored(call)
        check_if_match(call, previous["etag"])
        writable = {k: v for k, v in body.items() if k not in rules.READ_ONLY and k != "id"}
        if partial:
            event = copy.deepcopy(previous)
            rules.merge_patch(event, writable)
        else:
            keep = (
                "id",
                "iCalUID",
                "kind",
                "htmlLink",
                "created",
                "creator",
                "organizer",
                "_order",
                "_change",
            )
            event = {k: copy.deepcopy(previous[k]) for k in keep if k in previous}
            event.update({k: copy.deepcopy(v) for k, v in writable.items() if v is not None})
            event.pop("hangoutLink", None)
        if not partial or "iCalUID" in body:
            event["iCalUID"] = previous["iCalUID"]
        _finish(call, event, previous)
        event["sequence"] = int(previous.get("sequence", 0)) + 1
        _stamp(call, event)
        state.events[calendar["id"]][event["id"]] = event
        out = _out(call, event)
    state.save()
    return Reply(200, out)


def events_patch(call: Call) -> Reply:
    return _rewrite(call, partial=True)


def events_update(call: Call) -> Reply:
    return _rewrite(call, partial=False)


def events_delete(call: Call) -> Reply:
    state = call.state
    with state.lock:
        _, event = _stored(call)
        if event["status"] == "cancelled":
            raise ApiError(410, "deleted", "Resource has been deleted")
        check_if_match(call, event["etag"])
        event["status"] = "cancelled"
        _stamp(call, event)
    state.save()
    return Reply(204)


def _matches(event: dict[str, Any], params: dict[str, Any]) -> bool:
    if "timeMin" in params or "timeMax" in params:
        start, end = rules.start_moment(event["start"]), rules.start_moment(event["end"])
        low = parse_date_time(params.get("timeMin", ""))
        high = parse_date_time(params.get("timeMax", ""))
        if low is not None and end <= low:
            return False
        if high is not None and start >= high:
            return False
    if "updatedMin" in params:
        low = parse_date_time(params["updatedMin"])
        updated = parse_date_time(event["updated"])
        if low is not None and updated is not None and updated < low:
            return False
    if "iCalUID" in params and event.get("iCalUID") != params["iCalUID"]:
        return False
    if params.get("eventTypes") and event.get("eventType", "default") not in params["eventTypes"]:
        return False
    for scope, name in (
        ("private", "privateExtendedProperty"),
        ("shared", "sharedExtendedProperty"),
    ):
        props = (event.get("extendedProperties") or {}).get(scope) or {}
        for pair in params.get(name) or []:
            key, _, value = pair.partition("=")
            if props.get(key) != value:
                return False
    if "q" in params:
        words = str(params["q"]).lower().split()
        haystack = " ".join(
            [str(event.get(k, "")) for k in ("summary", "description", "location")]
            + [
                a.get("email", "") + " " + a.get("displayName", "")
                for a in event.get("attendees") or []
            ]
        ).lower()
        if not all(word in haystack for word in words):
            return False
    return True


def events_list(call: Call) -> Reply:
    params = call.params
    state = call.state
    sync_from: int | None = None
    if "syncToken" in params:
        clash = [name for name in _SYNC_EXCLUSIVE if name in params]
        if clash:
            raise invalid_param(
                clash[0], f"The parameter {clash[0]} cannot be used together with syncToken."
            )
    if params.get("orderBy") == "startTime" and not params.get("singleEvents"):
        raise invalid_param(
            "orderBy", "The requested ordering is not available for the particular query."
        )
    size = min(int(params.get("maxResults", 250)), 2500)
    key = fingerprint(params, ("pageToken", "maxResults", "alt", "prettyPrint", "fields"))
    with state.lock:
        calendar = calendar_for(call, params["calendarId"])
        if "syncToken" in params:
            grant = state.sync_tokens.get(params["syncToken"])
            if grant is None or grant["calendar"] != calendar["id"] or grant["user"] != call.user:
                raise ApiError(
                    410,
                    "fullSyncRequired",
                    "Sync token is no longer valid, a full sync is required.",
                )
            sync_from = int(grant["counter"])
        page: dict[str, Any] = {"o": 0, "c": state.counter}
        if "pageToken" in params:
            page = decode_page_token(params["pageToken"], key)
        show_deleted = sync_from is not None or bool(params.get("showDeleted"))
        found = []
        for event in state.events[calendar["id"]].values():
            if event["_change"] > page["c"]:
                continue  # changed after the first page: the next sync brings it
            if sync_from is not None and event["_change"] <= sync_from:
                continue
            if event["status"] == "cancelled" and not show_deleted:
                continue
            if sync_from is None and not _matches(event, params):
                continue
            found.append(event)
        if params.get("orderBy") == "startTime":
            found.sort(key=lambda e: (rules.start_moment(e["start"]), e["_order"]))
        elif params.get("orderBy") == "updated":
            found.sort(key=lambda e: e["_change"])
        else:
            found.sort(key=lambda e: e["_order"])
        offset = int(page["o"])
        items = [_out(call, e) for e in found[offset : offset + size]]
        out: dict[str, Any] = {
            "kind": "calendar#events",
            "etag": f'"{page["c"]}"',
            "summary": calendar.get("summary", ""),
            "description": calendar.get("description", ""),
            "updated": rfc3339(state.now()),
            "timeZone": calendar.get("timeZone", "UTC"),
            "accessRole": "owner",
            "defaultReminders": [],
            "items": items,
        }
        if offset + size < len(found):
            out["nextPageToken"] = encode_page_token({"o": offset + size, "c": page["c"], "f": key})
        else:
            token = new_token("CP")
            state.sync_tokens[token] = {
                "calendar": calendar["id"],
                "user": call.user,
                "counter": page["c"],
            }
            out["nextSyncToken"] = token
    state.save()
    return Reply(200, out)


def events_watch(call: Call) -> Reply:
    body: dict[str, Any] = call.body
    for name in ("id", "type", "address"):
        if not body.get(name):
            raise ApiError(400, "required", f"Required field: {name}", location=name)
    if body["type"] not in ("web_hook", "webhook"):
        raise ApiError(400, "invalid", f"Invalid channel type: {body['type']}", location="type")
    state = call.state
    with state.lock:
        calendar = calendar_for(call, call.params["calendarId"])
        channel: dict[str, Any] = {
            "kind": "api#channel",
            "id": body["id"],
            "resourceId": secrets.token_urlsafe(20),
            "resourceUri": f"{call.base_url}/calendar/v3/calendars/{calendar['id']}/events"
            "?alt=json",
            "expiration": str(int((state.now() + 7 * 86400) * 1000)),
        }
        if body.get("token"):
            channel["token"] = body["token"]
        state.channels[channel["id"]] = {**channel, "address": body["address"], "user": call.user}
    state.save()
    return Reply(200, channel)


def channels_stop(call: Call) -> Reply:
    body: dict[str, Any] = call.body
    state = call.state
    with state.lock:
        channel = state.channels.get(body.get("id", ""))
        if (
            channel is None
            or channel["user"] != call.user
            or (body.get("resourceId") and body["resourceId"] != channel["resourceId"])
        ):
            raise ApiError(404, "notFound", f"Channel '{body.get('id', '')}' not found for project")
        del state.channels[channel["id"]]
    state.save()
    return Reply(204)
