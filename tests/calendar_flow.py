"""Processes that call Google Calendar, run against the emulator over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from bpmn_builder import chain, end, service, start

from engine.components.outbound import OutboundPolicy
from engine.connections import add_connection, finish_authorization, load_box, start_authorization
from engine.emulators.calendar import CalendarEmulator, Faults
from engine.runtime import Project, Runner, instance_detail, start_process

CONNECTION = "google"
REDIRECT = "http://127.0.0.1:9/callback"  # never served: the code is read off the redirect


@pytest.fixture
def emulator() -> Iterator[CalendarEmulator]:
    with CalendarEmulator(faults=Faults(user_quota_per_minute=None), token_lifetime=3600) as emu:
        yield emu


def http_settings(emulator: CalendarEmulator, **overrides: Any) -> dict[str, Any]:
    """Settings for a project that reaches the emulator, with quick back-off."""
    return {
        "outbound_allow": (f"127.0.0.1:{emulator.port}",),
        "http_backoff_base": 0.05,
        "http_backoff_max": 2.0,
        "http_max_inline_wait": 2.0,
        **overrides,
    }


def authorize(project: Project, emulator: CalendarEmulator, user: str, name: str) -> None:
    """The consent flow, with the emulator consenting for ``user``."""
    policy = OutboundPolicy.from_settings(project.settings)
    box = load_box(project.settings.secret_key_file)
    consent = start_authorization(project.db, policy, name, REDIRECT, login_hint=user)
    answer = requests.get(consent.url, allow_redirects=False, timeout=10)
    location = parse_qs(urlparse(answer.headers["Location"]).query)
    assert location["state"] == [consent.state]
    finish_authorization(project.db, box, policy, name, REDIRECT, location["code"][0])


def connect(
    project: Project,
    emulator: CalendarEmulator,
    user: str = "ann@example.com",
    name: str = CONNECTION,
) -> None:
    """Add a connection to the emulator and authorise it as ``user``."""
    add(project, emulator, name)
    authorize(project, emulator, user, name)


def add(project: Project, emulator: CalendarEmulator, name: str = CONNECTION) -> None:
    """Add a connection to the emulator, not yet authorised."""
    box = load_box(project.settings.secret_key_file)
    with project.db.session() as s:
        add_connection(s, box, name=name, provider="google", **emulator.connection_settings())


def one_call(operator: str, result: str = "answer", **params: str) -> str:
    """A process that makes one service call (parameters are expressions)."""
    return chain("call", start(), service("call_it", operator, result, **params), end())


def start_and_run(project: Project, process_id: str = "call", **variables: Any) -> int:
    with project.db.session() as s:
        instance_id = start_process(s, process_id, variables, {"kind": "test"}).id
    Runner(project, workers=1).run_once()
    return instance_id


def detail(project: Project, instance_id: int) -> dict[str, Any]:
    with project.db.session() as s:
        return instance_detail(s, instance_id)


def expr(value: Any) -> str:
    """A Python expression that evaluates to ``value`` (JSON data)."""
    return repr(json.loads(json.dumps(value)))


def api_calls(
    emulator: CalendarEmulator, pred: Callable[[dict[str, Any]], bool] | None = None
) -> list[dict[str, Any]]:
    """The emulator's Calendar API requests (not OAuth), oldest first."""
    calls = [r for r in emulator.requests() if "/calendar/v3" in r.get("path", "")]
    return [r for r in calls if pred is None or pred(r)]
