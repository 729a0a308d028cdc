"""A revoked grant stops the instances that need it; authorising again resumes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from calendar_flow import (
    add,
    authorize,
    connect,
    detail,
    http_settings,
    one_call,
    start_and_run,
)
from click.testing import CliRunner

from engine.cli import cli
from engine.connections import list_connections
from engine.emulators.calendar import CalendarEmulator
from engine.runtime import Project, Runner, resume_after_authorization


def test_invalid_grant_breaks_the_connection_and_reauthorising_resumes_its_instances(
    open_test_project: Any,
    emulator: CalendarEmulator,
    project_dir: Path,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CATFLOW_SECRET_KEY", raising=False)
    project: Project = open_test_project(
        processes={"call": one_call("google_calendar.calendar_list.list")},
        **http_settings(emulator),
    )
    connect(project, emulator)
    assert project.http.credentials is not None
    token = project.http.credentials.access_token("google")
    # The user revokes Catflow's access in their Google account.
    answer = requests.post(emulator.revoke_url, data={"token": token}, timeout=10)
    assert answer.status_code == 200

    first = start_and_run(project)
    second = start_and_run(project)  # the connection is known broken: no call is made
    for instance in (first, second):
        d = detail(project, instance)
        assert d["state"] == "incident"
        assert "connection 'google' is broken: invalid_grant" in d["error"]["message"]
        assert "catflow connections authorize google" in d["error"]["message"]
        [incident] = d["incidents"]
        assert incident["kind"] == "connection"
        assert incident["details"]["connection"] == "google"
    with project.db.session() as s:
        [view] = list_connections(s)
    assert view.status == "broken" and "invalid_grant" in (view.status_message or "")

    result = CliRunner().invoke(
        cli,
        [
            *("--project", str(project_dir), "connections", "authorize", "google"),
            *("--auto-consent", "--login-hint", "ann@example.com"),
        ],
        env={
            "CATFLOW_DATABASE_URL": db_url,
            "CATFLOW_OUTBOUND_ALLOW": f"127.0.0.1:{emulator.port}",
        },
    )
    assert result.exit_code == 0, result.output
    assert f"retrying 2 instance(s) the connection had stopped: {first}, {second}" in (
        result.stdout
    )

    Runner(project, workers=1).run_once()
    for instance in (first, second):
        d = detail(project, instance)
        assert d["state"] == "completed"
        assert d["variables"]["answer"]["items"][0]["id"] == "ann@example.com"
        assert d["incidents"][0]["resolution"] == "retried"


def test_a_connection_never_authorised_stops_instances_until_it_is(
    open_test_project: Any,
    emulator: CalendarEmulator,
) -> None:
    project: Project = open_test_project(
        processes={"call": one_call("google_calendar.calendar_list.list")},
        **http_settings(emulator),
    )
    add(project, emulator)
    instance = start_and_run(project)
    d = detail(project, instance)
    assert d["state"] == "incident"
    assert "not authorised yet" in d["error"]["message"]
    assert d["incidents"][0]["kind"] == "connection"

    authorize(project, emulator, "ann@example.com", "google")
    with project.db.session() as s:
        assert resume_after_authorization(s, "google", "tester") == [instance]
    Runner(project, workers=1).run_once()
    assert detail(project, instance)["state"] == "completed"
