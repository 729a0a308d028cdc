"""Injected faults: error shares, quotas over a sliding minute, latency, the request log."""

from __future__ import annotations

import json
import time

import requests
from emulators.calendar_helpers import Api, reason

from engine.emulators.calendar import CalendarEmulator, Faults


def test_429_share_with_retry_after_and_request_log() -> None:
    faults = Faults(error_rates={429: 0.5}, retry_after_s=2, seed=7, user_quota_per_minute=None)
    with CalendarEmulator(faults=faults) as emu:
        api = Api(emu, "eve@example.com")
        statuses = []
        for _ in range(40):
            response = api.call("GET", "/calendars/primary/events")
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.headers["Retry-After"] == "2"
                assert reason(response) == "rateLimitExceeded"
                assert response.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
        assert set(statuses) == {200, 429}
        assert 8 <= statuses.count(429) <= 32
        log = requests.get(emu.base_url + "/_emulator/requests", timeout=5).json()["requests"]
        api_calls = [r for r in log if r["path"].startswith("/calendar/v3/")]
        assert [r["status"] for r in api_calls] == statuses
        times = [r["time"] for r in api_calls]
        assert times == sorted(times) and all(r["user"] == "eve@example.com" for r in api_calls)
        api.close()


def test_500_and_503_shares_and_runtime_change() -> None:
    with CalendarEmulator(faults=Faults(user_quota_per_minute=None)) as emu:
        api = Api(emu, "fay@example.com")
        base = emu.base_url + "/_emulator/faults"
        assert requests.put(base, json={"error_rates": {"500": 1.0}}, timeout=5).status_code == 200
        failed = api.call("GET", "/calendars/primary")
        assert failed.status_code == 500 and reason(failed) == "backendError"
        requests.put(base, json={"error_rates": {"503": 1.0}}, timeout=5)
        assert api.call("GET", "/calendars/primary").status_code == 503
        requests.put(base, json={"error_rates": {}}, timeout=5)
        assert api.call("GET", "/calendars/primary").status_code == 200
        bad = requests.put(base, json={"error_rates": {"418": 0.5}}, timeout=5)
        assert bad.status_code == 400
        api.close()


def test_user_and_project_quotas_over_a_sliding_minute() -> None:
    now = [5_000.0]
    faults = Faults(user_quota_per_minute=3, project_quota_per_minute=5)
    with CalendarEmulator(faults=faults, clock=lambda: now[0]) as emu:
        ann, bob = Api(emu, "ann@example.com"), Api(emu, "bob@example.com")
        for _ in range(3):
            assert ann.call("GET", "/calendars/primary").status_code == 200
            now[0] += 10
        limited = ann.call("GET", "/calendars/primary")
        assert limited.status_code == 403 and reason(limited) == "userRateLimitExceeded"
        assert limited.json()["error"]["errors"][0]["domain"] == "usageLimits"
        assert bob.call("GET", "/calendars/primary").status_code == 200
        assert bob.call("GET", "/calendars/primary").status_code == 200
        project = bob.call("GET", "/calendars/primary")
        assert project.status_code == 403 and reason(project) == "rateLimitExceeded"
        now[0] += 31  # ann's first call left the window
        assert ann.call("GET", "/calendars/primary").status_code == 200
        ann.close()
        bob.close()


def test_google_user_quota_is_the_default() -> None:
    assert Faults().user_quota_per_minute == 600
    assert Faults().project_quota_per_minute is None


def test_latency() -> None:
    with CalendarEmulator(faults=Faults(latency_ms=150, user_quota_per_minute=None)) as emu:
        api = Api(emu, "gus@example.com")
        started = time.monotonic()
        assert api.call("GET", "/calendars/primary").status_code == 200
        assert time.monotonic() - started >= 0.15
        api.close()


def test_the_request_log_never_shows_a_token(emu: CalendarEmulator) -> None:
    token = emu.issue_token("redact@example.com")
    requests.get(f"{emu.api_url}/users/me/calendarList", params={"access_token": token}, timeout=10)
    requests.post(emu.revoke_url, params={"token": token}, timeout=10)
    logged = json.dumps(emu.requests())
    assert token not in logged
    assert "access_token=%5Bredacted%5D" in logged and "token=%5Bredacted%5D" in logged
