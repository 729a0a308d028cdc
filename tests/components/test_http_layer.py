"""The outbound HTTP layer, shown against the Calendar emulator over real HTTP.

Back-off and Retry-After are shown by the times at which the emulator received the
attempts (its request log), never by sleeping in the test and checking a clock.
"""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
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
from click.testing import CliRunner

from engine.cli import cli
from engine.components.outbound import RateLimiter, retry_after_seconds
from engine.components.outbound._redact import redact_url, redact_value, shown_body
from engine.emulators.calendar import CalendarEmulator
from engine.runtime import Project, Runner, retry

LIST = one_call("google_calendar.calendar_list.list")


def _gaps(calls: list[dict[str, Any]]) -> list[float]:
    times = [c["time"] for c in calls]
    return [b - a for a, b in itertools.pairwise(times)]


def _open(
    open_test_project: Any, emulator: CalendarEmulator, process: str = LIST, **kw: Any
) -> Project:
    project: Project = open_test_project(
        processes={"call": process}, **http_settings(emulator, **kw)
    )
    connect(project, emulator)
    return project


def _call_step(d: dict[str, Any], outcome: str | None = None) -> dict[str, Any]:
    steps = [s for s in d["steps"] if s["element_id"] == "call_it"]
    if outcome is not None:
        steps = [s for s in steps if s["outcome"] == outcome]
    assert steps, d["steps"]
    return steps[-1]


def test_back_off_grows_and_retry_after_is_honoured(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    project = _open(open_test_project, emulator, http_backoff_base=0.2)
    emulator.faults.update({"retry_after_s": 1, "script": [503, 500, 429]})
    instance = start_and_run(project)

    d = detail(project, instance)
    assert d["state"] == "completed"
    assert [c["status"] for c in api_calls(emulator)] == [503, 500, 429, 200]
    first, second, third = _gaps(api_calls(emulator))
    # Exponential with jitter: attempt n waits between half and all of 0.2 * 2^(n-1) s;
    # after the 429, the emulator's Retry-After (1 s) is longer and wins.
    assert first >= 0.1
    assert second >= 0.2
    assert third >= 1.0
    exchanges = _call_step(d)["exchanges"]
    assert [e["status"] for e in exchanges] == [503, 500, 429, 200]
    assert [e["attempt"] for e in exchanges] == [1, 2, 3, 4]
    assert all(e["next"].startswith("retry in") for e in exchanges[:3])


def test_rate_limit_reasons_are_retried_but_not_quota_exceeded(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    process = chain(
        "call",
        start(),
        service("call_it", "google_calendar.calendar_list.list", "answer"),
        end(),
        extra=(
            error_boundary("quota", "call_it", "err_quota"),
            script("note_quota", "caught = error['code']"),
            end("end_quota"),
            flow("quota", "note_quota"),
            flow("note_quota", "end_quota"),
        ),
        errors={"err_quota": "quotaExceeded"},
    )
    project = _open(open_test_project, emulator, process)
    emulator.faults.update({"script": ["403 userRateLimitExceeded", "403 rateLimitExceeded", 200]})
    assert detail(project, start_and_run(project))["variables"]["answer"]["items"]
    assert [c["status"] for c in api_calls(emulator)] == [403, 403, 200]

    before = len(api_calls(emulator))
    emulator.faults.update({"script": ["403 quotaExceeded"]})
    d = detail(project, start_and_run(project))
    # A daily quota does not come back in seconds: one attempt, then the process decides.
    assert len(api_calls(emulator)) == before + 1
    assert d["state"] == "completed" and d["variables"]["caught"] == "quotaExceeded"


def test_a_long_back_off_puts_the_instance_off_instead_of_holding_a_worker(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    project = _open(open_test_project, emulator, http_max_inline_wait=0.5)
    emulator.faults.update({"retry_after_s": 2, "script": [429]})
    instance = start_and_run(project)

    d = detail(project, instance)
    assert d["state"] == "waiting"
    assert "retry of task 'call_it'" in d["waiting_for"]
    due = datetime.fromisoformat(d["due_at"])
    first_call = api_calls(emulator)[0]["time"]
    assert due.timestamp() >= first_call + 2.0  # Retry-After, not the shorter back-off
    put_off = _call_step(d, "waiting")
    assert put_off["exchanges"][0]["status"] == 429
    assert "trying again at" in put_off["message"]

    # Nothing runs it before it is due ...
    assert Runner(project, workers=1).run_once().runs == 0
    # ... and once due, the next run makes attempt 2.
    while datetime.now(UTC) < due:
        time.sleep(0.05)
    Runner(project, workers=1).run_once()
    d = detail(project, instance)
    assert d["state"] == "completed"
    calls = api_calls(emulator)
    assert [c["status"] for c in calls] == [429, 200]
    assert calls[1]["time"] - calls[0]["time"] >= 2.0
    assert _call_step(d, "completed")["exchanges"][0]["attempt"] == 2


def test_attempts_carry_over_put_off_runs_and_end_in_an_incident(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    project = _open(open_test_project, emulator, http_max_inline_wait=0.01, http_max_attempts=2)
    emulator.faults.update({"retry_after_s": 1, "script": [503, 503, 503]})
    instance = start_and_run(project)
    assert detail(project, instance)["state"] == "waiting"
    time.sleep(1.1)
    Runner(project, workers=1).run_once()
    d = detail(project, instance)
    assert d["state"] == "incident"
    assert d["error"]["code"] == "backendError"
    assert len(api_calls(emulator)) == 2
    # A retry by an operator starts the count afresh and gets through.
    with project.db.session() as s:
        retry(s, instance, "tester")
    emulator.faults.update({"script": []})
    Runner(project, workers=1).run_once()
    assert detail(project, instance)["state"] == "completed"


def test_a_post_is_not_sent_twice_after_a_server_error_but_is_after_a_503(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    process = one_call(
        "http.request",
        method=expr("POST"),
        url=expr("calendar/v3/calendars"),
        json=expr({"summary": "Team"}),
        connection=expr("google"),
    )
    project = _open(open_test_project, emulator, process)
    emulator.faults.update({"script": [500]})
    d = detail(project, start_and_run(project))
    # A 500 may come after the calendar was made: sending again could make two.
    assert d["state"] == "incident" and d["error"]["code"] == "500"
    assert [c["status"] for c in api_calls(emulator)] == [500]

    emulator.faults.update({"script": [503]})
    d = detail(project, start_and_run(project))
    assert d["state"] == "completed" and d["variables"]["answer"]["status"] == 200
    assert [c["status"] for c in api_calls(emulator)][1:] == [503, 200]


def test_network_errors_are_retried_then_an_incident_says_so(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    closed = 9  # the discard port: nothing listens on loopback here
    process = one_call("http.request", url=expr(f"http://127.0.0.1:{closed}/ping"))
    project: Project = open_test_project(
        processes={"call": process},
        **http_settings(emulator, outbound_allow=(f"127.0.0.1:{closed}",), http_max_attempts=3),
    )
    d = detail(project, start_and_run(project))
    assert d["state"] == "incident"
    assert "failed after 3 attempts" in d["error"]["message"]
    exchanges = _call_step(d, "failed")["exchanges"]
    assert [e["attempt"] for e in exchanges] == [1, 2, 3]
    assert all("ConnectionError" in e["error"] for e in exchanges)


def test_a_401_in_the_middle_of_a_run_is_recovered_with_one_refresh(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    project = _open(open_test_project, emulator)
    emulator.expire_tokens()  # the provider drops access tokens before their expiry
    token_requests = len([r for r in emulator.requests() if r["path"] == "/token"])
    d = detail(project, start_and_run(project))

    assert d["state"] == "completed"
    assert [c["status"] for c in api_calls(emulator)] == [401, 200]
    refreshes = [r for r in emulator.requests() if r["path"] == "/token"]
    assert len(refreshes) == token_requests + 1
    exchanges = _call_step(d)["exchanges"]
    assert exchanges[0]["next"] == "token refreshed; sending again"


def test_the_step_log_never_shows_a_token_or_secret(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    process = one_call(
        "http.request",
        method=expr("POST"),
        url=expr("calendar/v3/calendars"),
        json=expr({"summary": "Team", "client_secret": "s3cr3t-value-123"}),
        connection=expr("google"),
        expected=expr([400]),  # the emulator refuses the unknown field; we only log it
    )
    project = _open(open_test_project, emulator, process)
    d = detail(project, start_and_run(project))
    assert d["state"] == "completed"
    exchange = _call_step(d)["exchanges"][0]
    assert exchange["request_headers"]["Authorization"] == "[redacted]"
    assert json.loads(exchange["request_body"]) == {
        "summary": "Team",
        "client_secret": "[redacted]",
    }
    everything = json.dumps(d)
    assert "Bearer" not in everything and "s3cr3t-value-123" not in everything
    assert project.http.credentials is not None
    assert project.http.credentials.access_token("google") not in everything


def test_a_connection_token_goes_only_to_the_connection_api(
    open_test_project: Any, emulator: CalendarEmulator
) -> None:
    elsewhere = "http://127.0.0.1:9/steal"
    process = one_call("http.request", url=expr(elsewhere), connection=expr("google"))
    project = _open(open_test_project, emulator, process, outbound_allow=("127.0.0.1",))
    d = detail(project, start_and_run(project))
    assert d["state"] == "incident"
    assert "is not on the API of connection 'google'" in d["error"]["message"]
    assert api_calls(emulator) == []


def test_instances_show_lists_the_outbound_calls_redacted(
    open_test_project: Any, emulator: CalendarEmulator, project_dir: Path, db_url: str
) -> None:
    project = _open(open_test_project, emulator)
    emulator.faults.update({"script": [503]})
    instance = start_and_run(project)
    result = CliRunner().invoke(
        cli,
        ["--project", str(project_dir), "instances", "show", str(instance)],
        env={"CATFLOW_DATABASE_URL": db_url},
    )
    assert result.exit_code == 0, result.output
    assert "outbound calls (secrets redacted):" in result.stdout
    assert "GET http://127.0.0.1" in result.stdout and "503" in result.stdout
    assert "Bearer" not in result.stdout


# -- pieces without a server ---------------------------------------------------------------


def test_the_rate_limit_keeps_every_sliding_minute_under_googles_600() -> None:
    now = [0.0]
    limiter = RateLimiter(580, clock=lambda: now[0])  # the default
    sent: list[float] = []
    for _ in range(2000):
        taken, wait = limiter.acquire("google", max_wait_s=10)
        assert taken
        now[0] += wait
        sent.append(now[0])
    worst = max(sum(1 for t in sent[i:] if t < start_t + 60) for i, start_t in enumerate(sent))
    assert worst <= 589  # the rate plus its small burst: under Google's 600 per minute
    assert sent[-1] == pytest.approx((2000 - limiter.burst) / (580 / 60))


def test_a_rate_limit_wait_too_long_to_hold_a_worker_is_not_taken() -> None:
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])  # one a second, burst 1
    assert limiter.acquire("c", max_wait_s=0.5) == (True, 0.0)
    taken, wait = limiter.acquire("c", max_wait_s=0.5)
    assert not taken and wait == pytest.approx(1.0)
    now[0] += 1.0
    assert limiter.acquire("c", max_wait_s=0.5) == (True, 0.0)
    assert limiter.acquire("other", max_wait_s=0.5) == (True, 0.0)  # per connection


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT", now=1792567670.0) == 10.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_redaction_of_urls_and_bodies() -> None:
    url = "https://user:pw@api.example.com/cb?code=abc&state=s&pageToken=p&access_token=t"
    assert redact_url(url) == (
        "https://api.example.com/cb?code=[redacted]&state=s&pageToken=p&access_token=[redacted]"
    )
    body = {"error": {"code": 404}, "refresh_token": "r", "nested": [{"apiKey": "k"}]}
    assert redact_value(body) == {
        "error": {"code": 404},
        "refresh_token": "[redacted]",
        "nested": [{"apiKey": "[redacted]"}],
    }
    echoed = shown_body(
        b"your token is ya29.secret-token-value", "text/plain", ["ya29.secret-token-value"]
    )
    assert echoed == "your token is [redacted]"
    form = shown_body(
        b"grant_type=refresh_token&refresh_token=r1&client_secret=s",
        "application/x-www-form-urlencoded",
        [],
    )
    assert form == "grant_type=refresh_token&refresh_token=[redacted]&client_secret=[redacted]"
