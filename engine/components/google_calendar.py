"""``google_calendar.*``: Google Calendar API v3 through an OAuth2 connection.

Parameters carry the API's own names (``calendarId``, ``sendUpdates``, ``timeMin``…);
the request body is ``event``, ``calendar`` or ``channel``. Failures are BPMN errors
whose code is Google's reason (``notFound``, ``deleted``, ``duplicate``,
``timeRangeEmpty``, ``fullSyncRequired``, ``forbidden``…), so a process can catch
them with an error boundary event; uncaught, the incident carries the response body.

Creating an event is idempotent: the event gets a client-chosen id (given, derived
from a record with :func:`event_id`, or derived from the instance and task), and a
409 ``duplicate`` answer fetches the event made the first time.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import requests

from engine.errors import BpmnError, ValidationFailed

from ._registry import OPERATORS, Operator, OperatorContext, Param
from .http import parsed_body
from .outbound import HttpCall, google_reason
from .outbound._redact import BODY_LIMIT

API = "calendar/v3"
DEFAULT_CONNECTION = "google"
BASE32HEX = "0123456789abcdefghijklmnopqrstuv"

# Reasons for answers whose body names none (a proxy's HTML page, say).
_REASON_BY_STATUS = {
    400: "badRequest",
    401: "authError",
    403: "forbidden",
    404: "notFound",
    409: "conflict",
    410: "deleted",
    412: "conditionNotMet",
    429: "rateLimitExceeded",
}


def event_id(catalog: str, record_id: int | str, generation: int = 0) -> str:
    """A Calendar event id for a record: base32hex (``0-9a-v``), the same every time.

    ``generation`` starts at 0; raise it to make a new event for the same record
    (e.g. after its event was deleted: Google never reuses an event id).
    """
    if not catalog or isinstance(generation, bool) or not isinstance(generation, int):
        raise ValidationFailed(
            f"an event id needs a catalog, a record id and a whole generation number, "
            f"got {catalog!r}, {record_id!r}, {generation!r}"
        )
    text = f"catflow/{catalog}/{record_id}/{generation}"
    return base64.b32hexencode(text.encode()).decode().rstrip("=").lower()


def _id_from_key(key: str) -> str:
    """A base32hex id from an idempotency key (an instance's task): 32 characters."""
    digest = hashlib.sha256(key.encode()).digest()[:20]
    return base64.b32hexencode(digest).decode().lower()


def valid_event_id(value: str) -> bool:
    return 5 <= len(value) <= 1024 and all(c in BASE32HEX for c in value)


# -- calling the API ---------------------------------------------------------------------------


def _connection(params: dict[str, Any]) -> str:
    name = params.get("connection") or DEFAULT_CONNECTION
    if not isinstance(name, str):
        raise ValidationFailed(f"parameter 'connection' must be a connection name, got {name!r}")
    return name


def _segment(params: dict[str, Any], name: str, default: str | None = None) -> str:
    value = params.get(name, default)
    if not isinstance(value, str) or not value:
        raise ValidationFailed(f"parameter {name!r} must be a non-empty string, got {value!r}")
    return quote(value, safe="")


def _body(params: dict[str, Any], name: str) -> dict[str, Any]:
    value = params.get(name)
    if not isinstance(value, Mapping):
        raise ValidationFailed(f"parameter {name!r} must be an object, got {value!r}")
    return dict(value)


def _query(params: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {n: params[n] for n in names if params.get(n) is not None}


def api_error(response: requests.Response, what: str) -> BpmnError:
    """A Google failure as a BPMN error: the code is Google's reason."""
    body = parsed_body(response)
    reason = google_reason(response) or _REASON_BY_STATUS.get(
        response.status_code, f"http{response.status_code}"
    )
    message = response.reason or f"HTTP {response.status_code}"
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = str(body["error"].get("message") or message)
    shown = body[:BODY_LIMIT] if isinstance(body, str) else body
    return BpmnError(
        reason,
        f"{what}: Google Calendar answered {response.status_code} {reason}: {message}",
        {"status": response.status_code, "reason": reason, "response": shown},
    )


def _send(
    ctx: OperatorContext,
    params: dict[str, Any],
    method: str,
    path: str,
    what: str,
    *,
    query: dict[str, Any] | None = None,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    repeatable: bool | None = None,
    ok: tuple[int, ...] = (200,),
) -> requests.Response:
    response: requests.Response = ctx.http(
        HttpCall(
            method=method,
            url=f"{API}/{path}",
            query=query,
            json_body=body,
            headers=headers,
            connection=_connection(params),
            repeatable=repeatable,
        )
    )
    if response.status_code not in ok:
        raise api_error(response, what)
    return response


def _json(response: requests.Response) -> Any:
    return parsed_body(response)


# -- events ------------------------------------------------------------------------------------

WRITE_QUERY = ("sendUpdates", "conferenceDataVersion", "maxAttendees", "supportsAttachments")


def _insert(ctx: OperatorContext, params: dict[str, Any]) -> Any:
    calendar = _segment(params, "calendarId", "primary")
    event = _body(params, "event")
    derive = params.get("event_id_for")
    if derive is not None:
        if not isinstance(derive, Mapping) or not {"catalog", "record_id"} <= set(derive):
            raise ValidationFailed(
                "parameter 'event_id_for' must be an object with catalog, record_id and "
                f"optionally generation, got {derive!r}"
            )
        event["id"] = event_id(
            str(derive["catalog"]), derive["record_id"], derive.get("generation", 0)
        )
    elif not event.get("id"):
        # Derived from this instance's task: a replay of the step sends the same id.
        event["id"] = _id_from_key(ctx.idempotency_key)
        ctx.note(f"event id {event['id']} derived from the instance and task")
    chosen = str(event["id"])
    if not valid_event_id(chosen):
        raise ValidationFailed(
            f"event id {chosen!r} is not valid: Google wants 5 to 1024 characters of "
            "base32hex (0-9 and a-v)"
        )
    create = (event.get("conferenceData") or {}).get("createRequest")
    if isinstance(create, dict) and not create.get("requestId"):
        # Stable across retries and replays, so Google makes one conference, not two.
        create["requestId"] = f"catflow-{chosen}"
    what = f"inserting event {chosen} into calendar {params.get('calendarId', 'primary')!r}"
    response = _send(
        ctx,
        params,
        "POST",
        f"calendars/{calendar}/events",
        what,
        query=_query(params, WRITE_QUERY),
        body=event,
        repeatable=True,  # the client-chosen id makes a second send harmless
        ok=(200, 409),
    )
    if response.status_code == 200:
        return _json(response)
    if google_reason(response) != "duplicate":
        raise api_error(response, what)
    existing = _send(
        ctx,
        params,
        "GET",
        f"calendars/{calendar}/events/{quote(chosen, safe='')}",
        f"fetching existing event {chosen}",
    )
    found = _json(existing)
    if isinstance(found, dict) and found.get("status") == "cancelled":
        raise BpmnError(
            "deleted",
            f"event {chosen} in calendar {params.get('calendarId', 'primary')!r} was created "
            "before and has since been cancelled (deleted); Google does not reuse an event id, "
            "so create the event under a new id (raise the generation of event_id_for)",
            {"status": 409, "reason": "duplicate", "event": found},
        )
    ctx.note(f"event {chosen} existed already (an earlier attempt made it); using it")
    return found


def _event_path(params: dict[str, Any]) -> str:
    return f"calendars/{_segment(params, 'calendarId', 'primary')}/events/" + _segment(
        params, "eventId"
    )


def _if_match(params: dict[str, Any]) -> dict[str, str] | None:
    etag = params.get("if_match")
    return {"If-Match": str(etag)} if etag else None


def _get(ctx: OperatorContext, params: dict[str, Any]) -> Any:
    what = f"getting event {params.get('eventId')!r}"
    query = _query(params, ("timeZone", "maxAttendees", "alwaysIncludeEmail"))
    return _json(_send(ctx, params, "GET", _event_path(params), what, query=query))


def _patch(ctx: OperatorContext, params: dict[str, Any]) -> Any:
    return _change(ctx, params, "PATCH")


def _update(ctx: OperatorContext, params: dict[str, Any]) -> Any:
    return _change(ctx, params, "PUT")


def _change(ctx: OperatorContext, params: dict[str, Any], method: str) -> Any:
    verb = "patching" if method == "PATCH" else "updating"
    what = f"{verb} event {params.get('eventId')!r}"
    response = _send(
        ctx,
        params,
        method,
        _event_path(params),
        what,
        query=_query(params, WRITE_QUERY),
        body=_body(params, "event"),
        headers=_if_match(params),
        # Setting the same fields twice ends in the same event; but with If-Match, a
        # repeat of a change whose answer was lost would fail on its own new etag.
        repeatable=not params.get("if_match"),
    )
    return _json(response)


def _delete(ctx: OperatorContext, params: dict[str, Any]) -> Any:
    event = params.get("eventId")
    what = f"deleting event {event!r}"
    response = _send(
        ctx,
        params,
        "DELETE",
        _event_path(params),
        what,
        query=_query(params, ("sendUpdates",)),
        headers=_if_match(params),
        ok=(200, 204, 404, 410),
    )
    if response.status_code in (200, 204):
        return {"deleted": True, "eventId": event}
    error = api_error(response, what)
    if not params.get("missing_ok"):
        raise error
    if response.status_code == 404:
        # A 404 also answers a calendar that does not exist (a typo): that is no success.
        calendar = _segment(params, "calendarId", "primary")
        _send(
            ctx,
            params,
            "GET",
            f"users/me/calendarList/{calendar}",
            f"checking that calendar {params.get('calendarId', 'primary')!r} exists",
        )
    ctx.note(f"event {event!r} was already gone ({error.code}); counted as deleted")
    return {"deleted": False, "eventId": event, "reason": error.code}


LIST_QUERY = (
    "maxResults",
    "pageToken",
    "syncToken",
    "timeMin",
    "timeMax",
    "singleEvents",
    "orderBy",
    "showDeleted",
    "showHiddenInvitations",
    "q",
    "updatedMin",
    "timeZone",
    "iCalUID",
    "maxAttendees",
    "privateExtendedProperty",
    "sharedExtendedProperty",
    "eventTypes",
    "alwaysIncludeEmail",
)


def _pages(
    ctx: OperatorContext, params: dict[str, Any], path: str, names: tuple[str, ...], what: str
) -> Any:
    """One page, or with all_pages every page: items joined, the last page's sync token."""
    query = _query(params, names)
    all_pages = bool(params.get("all_pages"))
    max_pages = params.get("max_pages", 100)
    if isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1:
        raise ValidationFailed(
            f"parameter 'max_pages' must be a positive number, not {max_pages!r}"
        )
    page = _json(_send(ctx, params, "GET", path, what, query=query))
    if not all_pages:
        return page
    items = list(page.get("items", []))
    pages = 1
    while page.get("nextPageToken"):
        if pages >= max_pages:
            raise BpmnError(
                "tooManyPages",
                f"{what}: more than {max_pages} pages; narrow the query or raise max_pages",
                {"items_so_far": len(items)},
            )
        query = {**query, "pageToken": page["nextPageToken"]}
        page = _json(_send(ctx, params, "GET", path, what, query=query))
        items.extend(page.get("items", []))
        pages += 1
    result = {k: v for k, v in page.items() if k not in ("items", "nextPageToken")}
    result["items"] = items
    result["pages"] = pages
    return result


def _list(ctx: OperatorContext, params: dict[str, Any]) -> Any:
    calendar = _segment(params, "calendarId", "primary")
    what = f"listing events of calendar {params.get('calendarId', 'primary')!r}"
    return _pages(ctx, params, f"calendars/{calendar}/events", LIST_QUERY, what)


def _watch(ctx: OperatorContext, params: dict[str, Any]) -> Any:
    calendar = _segment(params, "calendarId", "primary")
    channel = _body(params, "channel")
    what = f"watching events of calendar {params.get('calendarId', 'primary')!r}"
    query = _query(params, LIST_QUERY)
    response = _send(
        ctx, params, "POST", f"calendars/{calendar}/events/watch", what, query=query, body=channel
    )
    return _json(response)


# -- calendars ---------------------------------------------------------------------------------


def _calendars_insert(ctx: OperatorContext, params: dict[str, Any]) -> Any:
    calendar = _body(params, "calendar")
    what = f"creating calendar {calendar.get('summary')!r}"
    return _json(_send(ctx, params, "POST", "calendars", what, body=calendar))


CALENDAR_LIST_QUERY = (
    "maxResults",
    "pageToken",
    "syncToken",
    "minAccessRole",
    "showDeleted",
    "showHidden",
)


def _calendar_list(ctx: OperatorContext, params: dict[str, Any]) -> Any:
    what = "listing the calendar list"
    return _pages(ctx, params, "users/me/calendarList", CALENDAR_LIST_QUERY, what)


# -- registration ------------------------------------------------------------------------------

CONNECTION = Param("connection", f"the OAuth2 connection (default {DEFAULT_CONNECTION!r})", False)
CALENDAR_ID = Param("calendarId", "calendar id (default 'primary')", False)
EVENT_ID = Param("eventId", "the event's id")
SEND_UPDATES = Param("sendUpdates", "who is e-mailed: 'all', 'externalOnly' or 'none'", False)
CONFERENCE = Param("conferenceDataVersion", "1 to create or change Meet conferences", False)
MAX_ATTENDEES = Param("maxAttendees", "at most this many attendees in the answer", False)
ATTACHMENTS = Param("supportsAttachments", "whether attachments may be set", False)
IF_MATCH = Param("if_match", "an etag: change only if the event is still that version", False)
ALL_PAGES = Param("all_pages", "follow nextPageToken and join every page's items", False)
MAX_PAGES = Param("max_pages", "with all_pages, stop (BPMN error) after this many (100)", False)


def _params(*names: str, **descriptions: str) -> tuple[Param, ...]:
    return tuple(Param(n, descriptions.get(n, f"as in the API ({n})"), False) for n in names)


for _operator in (
    Operator(
        "google_calendar.events.insert",
        "Create an event; idempotent: a 409 duplicate fetches the event made before "
        "(BPMN error 'deleted' if it was cancelled since).",
        (
            CONNECTION,
            CALENDAR_ID,
            Param("event", "the event resource (summary, start, end, attendees…)"),
            Param(
                "event_id_for",
                "{catalog, record_id, generation}: derive the event id from a record",
                False,
            ),
            SEND_UPDATES,
            CONFERENCE,
            MAX_ATTENDEES,
            ATTACHMENTS,
        ),
        _insert,
    ),
    Operator(
        "google_calendar.events.get",
        "One event (cancelled ones too, with status 'cancelled').",
        (
            CONNECTION,
            CALENDAR_ID,
            EVENT_ID,
            *_params("timeZone", "alwaysIncludeEmail"),
            MAX_ATTENDEES,
        ),
        _get,
    ),
    Operator(
        "google_calendar.events.list",
        "Events of a calendar: one page, or all pages with all_pages; the result carries "
        "nextPageToken / nextSyncToken as Google gives them.",
        (
            CONNECTION,
            CALENDAR_ID,
            ALL_PAGES,
            MAX_PAGES,
            *_params(*(n for n in LIST_QUERY if n != "maxAttendees")),
            MAX_ATTENDEES,
        ),
        _list,
    ),
    Operator(
        "google_calendar.events.patch",
        "Change the given fields of an event.",
        (
            CONNECTION,
            CALENDAR_ID,
            EVENT_ID,
            Param("event", "the fields to change"),
            SEND_UPDATES,
            CONFERENCE,
            MAX_ATTENDEES,
            ATTACHMENTS,
            IF_MATCH,
        ),
        _patch,
    ),
    Operator(
        "google_calendar.events.update",
        "Replace an event with the given resource.",
        (
            CONNECTION,
            CALENDAR_ID,
            EVENT_ID,
            Param("event", "the whole event resource"),
            SEND_UPDATES,
            CONFERENCE,
            MAX_ATTENDEES,
            ATTACHMENTS,
            IF_MATCH,
        ),
        _update,
    ),
    Operator(
        "google_calendar.events.delete",
        "Delete an event; with missing_ok, an event already gone (404 / 410) counts as done.",
        (
            CONNECTION,
            CALENDAR_ID,
            EVENT_ID,
            SEND_UPDATES,
            IF_MATCH,
            Param("missing_ok", "count 404 notFound and 410 deleted as done", False),
        ),
        _delete,
    ),
    Operator(
        "google_calendar.events.watch",
        "Open a notification channel on a calendar's events.",
        (
            CONNECTION,
            CALENDAR_ID,
            Param("channel", "the channel: id, type 'web_hook', address, token…"),
            *_params(*LIST_QUERY),
        ),
        _watch,
    ),
    Operator(
        "google_calendar.calendars.insert",
        "Create a secondary calendar; the result carries its id.",
        (CONNECTION, Param("calendar", "the calendar: summary, description, timeZone…")),
        _calendars_insert,
    ),
    Operator(
        "google_calendar.calendar_list.list",
        "The user's calendar list: one page, or all pages with all_pages.",
        (CONNECTION, ALL_PAGES, MAX_PAGES, *_params(*CALENDAR_LIST_QUERY)),
        _calendar_list,
    ),
):
    OPERATORS.register(_operator)
