"""`catflow demo`: the meetings job, out of the box (what `make run` starts).

It starts the Google Calendar emulator and the engine on the project's store (SQLite by
default), connects the two without a browser, seeds a few employees, and then shows the
job: a meeting created, its event in the calendar, the id written back, an edit and a
deletion. Then it keeps serving until Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import click
import requests

from engine.api import ThreadedServer
from engine.api.tokens import rotate_token
from engine.catalogs import Cause
from engine.components.outbound import OutboundPolicy
from engine.config import load_settings
from engine.connections import (
    add_connection,
    authorize_by_auto_consent,
    get_connection,
    load_box,
)
from engine.emulators.calendar import Faults
from engine.errors import CatflowError, NotFound
from engine.runtime import InstanceFilter, Project, Runner, list_instances, open_project

from ._common import handle_errors, safe_url, start_http, state

if TYPE_CHECKING:
    from engine.emulators.calendar import CalendarEmulator

CONNECTION = "google"
ACCOUNT = "you@example.com"  # the emulator's user whose calendar the demo fills
TOUR = Cause.person("catflow-demo")
EMPLOYEES: list[dict[str, Any]] = [
    {"name": "Ada Lovelace", "email": "ada@example.com"},
    {"name": "Grace Hopper", "email": "GRACE@example.com"},
    {"name": "Alan Turing", "email": "alan@example.com", "active": False},
    {"name": "Edsger Dijkstra"},
]


def _say(text: str = "") -> None:
    click.echo(text)


def _step(text: str) -> None:
    click.secho(f"\n== {text}", bold=True)


@click.command("demo")
@click.option(
    "--port", default=8765, show_default=True, help="Port of the Calendar emulator (loopback)."
)
@click.option("--workers", type=int, help="Worker threads (default: $CATFLOW_WORKERS or 4).")
@click.option(
    "--http-port",
    default=8080,
    show_default=True,
    help="Port of the HTTP API and pages (loopback); 0 picks a free one.",
)
@click.option("--no-tour", is_flag=True, help="Set everything up and serve, without the tour.")
@click.option("--exit-after-tour", is_flag=True, help="Stop after the tour instead of serving on.")
@click.option(
    "--timeout",
    default=60,
    show_default=True,
    help="Seconds to wait for each step of the tour before giving up.",
)
@handle_errors
def demo(
    port: int,
    http_port: int,
    workers: int | None,
    no_tour: bool,
    exit_after_tour: bool,
    timeout: int,
) -> None:
    """The meetings job on the embedded defaults: emulator, engine, connection, tour.

    Starts the Google Calendar emulator on 127.0.0.1:PORT (its state kept in
    .catflow/calendar-emulator.json), serves the project on its database, adds and
    authorises the connection 'google' against the emulator, seeds employees, shows a
    meeting being created, edited and deleted, then serves until Ctrl-C. Running it
    again reuses all of it.
    """
    root = state()
    base = load_settings(root.project_dir)
    settings = dataclasses.replace(base, outbound_allow=(*base.outbound_allow, f"127.0.0.1:{port}"))
    state_file = settings.project_dir / ".catflow" / "calendar-emulator.json"
    state_file.parent.mkdir(parents=True, exist_ok=True)
    from engine.emulators.calendar import CalendarEmulator  # FastAPI: only when demoing

    emulator = CalendarEmulator(port=port, state_file=state_file, faults=Faults())
    try:
        emulator.start()
    except OSError as exc:
        raise CatflowError(
            f"the Calendar emulator cannot listen on 127.0.0.1:{port} ({exc.strerror}); "
            "is another `make run` still running? Stop it, or pass --port"
        ) from None
    stop = threading.Event()
    project: Project | None = None
    serving: threading.Thread | None = None
    http: ThreadedServer | None = None
    try:
        _step("Starting")
        project = open_project(settings)
        _say(f"project:   {settings.project_dir}")
        _say(f"database:  {safe_url(settings.database_url)}")
        _say(f"emulator:  {emulator.api_url} (Google Calendar API v3, OAuth2 consent built in)")
        _connect(project, emulator)
        _seed(project)
        runner = Runner(project, workers=workers)
        serving = threading.Thread(target=runner.serve, args=(stop,), name="serve", daemon=True)
        serving.start()
        _say(f"engine:    serving with {runner.workers} worker(s)")
        http = start_http(project, "127.0.0.1", http_port)
        _say(f"pages:     {http.base_url}/  (API: {http.base_url}/docs)")
        _install_stop(stop)
        if not no_tour:
            _tour(project, emulator, stop, timeout)
        if not exit_after_tour and not stop.is_set():
            _where_to_look(project, emulator, http)
            stop.wait()
    finally:
        stop.set()
        if http is not None:
            http.stop()
        if serving is not None:
            serving.join(timeout=30)
        if project is not None:
            project.close()
        emulator.stop()
        _say("stopped.")


def _install_stop(stop: threading.Event) -> None:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        click.echo(f"\nstopping ({signal.Signals(signum).name})", err=True)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)


def _connect(project: Project, emulator: CalendarEmulator) -> None:
    box = load_box(project.settings.secret_key_file)
    policy = OutboundPolicy.from_settings(project.settings)
    with project.db.session() as s:
        try:
            row = get_connection(s, CONNECTION)
            ready = row.status == "authorized" and row.api_url == emulator.base_url
            if row.api_url != emulator.base_url:
                raise CatflowError(
                    f"connection {CONNECTION!r} points at {row.api_url}, not at the emulator "
                    f"on {emulator.base_url}; run the demo with the port it was made with, "
                    "or in a fresh project folder"
                )
        except NotFound:
            add_connection(
                s, box, name=CONNECTION, provider="google", **emulator.connection_settings()
            )
            ready = False
    if ready:
        try:  # the token must still be good with the emulator's saved state
            assert project.http.credentials is not None
            project.http.credentials.access_token(CONNECTION)
            _say(f"connection '{CONNECTION}': authorised (kept from the last run)")
            return
        except CatflowError:
            pass
    authorize_by_auto_consent(project.db, box, policy, CONNECTION, login_hint=ACCOUNT)
    _say(f"connection '{CONNECTION}': authorised as {ACCOUNT} (the emulator consents by itself)")


def _seed(project: Project) -> None:
    with project.db.session() as s:
        if project.records.find(s, "employees", {}, limit=1).items:
            _say("employees: already there")
            return
        for person in EMPLOYEES:
            project.records.create(s, "employees", person, TOUR)
    _say(f"employees: seeded {len(EMPLOYEES)} (one inactive, one without an e-mail address)")


def _tour(
    project: Project, emulator: CalendarEmulator, stop: threading.Event, timeout: int
) -> None:
    with project.db.session() as s:
        people = project.records.find(s, "employees", {}, limit=10).items
        starts = (datetime.now(UTC) + timedelta(days=1)).replace(
            hour=9, minute=0, second=0, microsecond=0
        )
        meeting = project.records.create(
            s,
            "meetings",
            {
                "title": "Catflow tour",
                "agenda": "See a record become a calendar event.",
                "starts_at": starts.isoformat(),
                "time_zone": "Europe/Berlin",
                "participants": [p.id for p in people],
                "extra_participants": ["guest@example.org", "ADA@example.com"],
                "create_meet_link": True,
            },
            TOUR,
        ).as_dict()
    meeting_id = meeting["id"]
    _step(f"1. Created meeting {meeting_id} (no end time; four participants, two extra addresses)")
    record = _await(
        "the event to be created",
        lambda: _synced(project, meeting_id, 1),
        stop,
        timeout,
    )
    event = _event(emulator, record["calendar_event_id"])
    _show_event(event, record)

    _step("2. Edited it: a new title, and 90 minutes long")
    with project.db.session() as s:
        project.records.update(
            s,
            "meetings",
            meeting_id,
            {
                "title": "Catflow tour (extended)",
                "ends_at": (starts + timedelta(minutes=90)).isoformat(),
            },
            TOUR,
        )
    _await("the event to be updated", lambda: _synced(project, meeting_id, 2), stop, timeout)
    event = _event(emulator, record["calendar_event_id"])
    start, end = event["start"]["dateTime"], event["end"]["dateTime"]
    _say(f"event now: {event['summary']!r}, {start} to {end}")
    _say(f"           (sequence {event['sequence']}: Google counts the changes)")

    _step("3. Deleted it")
    with project.db.session() as s:
        project.records.delete(s, "meetings", meeting_id, TOUR)
    _await(
        "the event to be deleted",
        lambda: _event(emulator, record["calendar_event_id"])["status"] == "cancelled" or None,
        stop,
        timeout,
    )
    _say(f"event {record['calendar_event_id']} is now cancelled in the calendar")
    _say("\nEach step above is a process instance; `catflow instances list` shows them.")


def _synced(project: Project, meeting_id: int, runs: int) -> dict[str, Any] | None:
    """The meeting once ``runs`` of its instances have finished, all well, and none is
    left to run; None before."""
    with project.db.session() as s:
        rows, _ = list_instances(s, InstanceFilter(record=("meetings", meeting_id)))
        record = project.records.get(s, "meetings", meeting_id).as_dict()
    failed = [r for r in rows if r.state == "incident"]
    if failed:
        raise CatflowError(
            f"instance {failed[0].id} stopped: {(failed[0].error or {}).get('message')}; "
            f"see `catflow instances show {failed[0].id}`"
        )
    done = [r for r in rows if r.state == "completed"]
    settled = len(done) >= runs and len(done) == len(rows)
    return record if settled and record["sync_status"] == "synced" else None


def _await(what: str, check: Callable[[], Any], stop: threading.Event, timeout: int) -> Any:
    click.echo(f"waiting for {what} ", nl=False)
    deadline = time.monotonic() + timeout
    while not stop.is_set():
        found = check()
        if found:
            click.echo(" done")
            return found
        if time.monotonic() > deadline:
            click.echo("")
            raise CatflowError(
                f"{what} did not happen within {timeout} s; see `catflow instances list`"
            )
        click.echo(".", nl=False)
        stop.wait(0.25)
    raise CatflowError("stopped during the tour")


def _event(emulator: CalendarEmulator, event_id: str) -> dict[str, Any]:
    """The event as the calendar holds it (read beside the engine, as its owner)."""
    answer = requests.get(
        f"{emulator.api_url}/calendars/primary/events/{quote(event_id, safe='')}",
        headers={"Authorization": f"Bearer {emulator.issue_token(ACCOUNT)}"},
        timeout=10,
    )
    answer.raise_for_status()
    event: dict[str, Any] = answer.json()
    return event


def _show_event(event: dict[str, Any], record: dict[str, Any]) -> None:
    _say(f"event {event['id']} in {ACCOUNT}'s calendar:")
    _say(f"  summary    {event['summary']}")
    _say(f"  start      {event['start']['dateTime']} ({event['start'].get('timeZone')})")
    _say(f"  end        {event['end']['dateTime']}  (start + the default 60 minutes)")
    attendees = ", ".join(a["email"] for a in event.get("attendees", []))
    _say(f"  attendees  {attendees}")
    _say("             (the inactive employee and the one without an address are left out;")
    _say("              ADA@example.com was already there as ada@example.com)")
    _say(f"  Meet link  {event.get('hangoutLink')}")
    _say(
        f"written back to meeting {record['id']}: calendar_event_id={record['calendar_event_id']}, "
        f"meeting_url={record['meeting_url']}, sync_status={record['sync_status']}"
    )


def _where_to_look(project: Project, emulator: CalendarEmulator, http: ThreadedServer) -> None:
    _step("Serving; Ctrl-C stops everything")
    with project.db.session() as s:
        # Made afresh each run (the last run's stops working): shown once, here.
        token, view = rotate_token(s, "admin", "demo-admin", created_by="catflow demo")
    _say(f"Pages: {http.base_url}/  — sign in with this {view.role} token (valid until the")
    _say(f"next `make run`; make your own with `catflow tokens create --role R`):\n  {token}")
    _say("Try, in another terminal (same folder):")
    _say(
        "  .venv/bin/catflow records create meetings --data "
        '\'{"title": "Lunch", "starts_at": "2030-01-01T12:00:00Z"}\''
    )
    _say("  .venv/bin/catflow records list meetings")
    _say("  .venv/bin/catflow instances list")
    _say("  .venv/bin/catflow instances show ID        # step log, outbound calls, incidents")
    _say("  .venv/bin/catflow incidents list")
    _say(f"The emulator's request log: {emulator.base_url}/_emulator/requests")
    _say(f"Project folder: {project.settings.project_dir}")
