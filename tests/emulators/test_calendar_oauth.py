"""OAuth2 over real HTTP: auto-consent, code exchange, refresh, expiry, revocation."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from emulators.calendar_helpers import reason

from engine.emulators.calendar import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, CalendarEmulator

REDIRECT = "http://127.0.0.1:9/callback"


def _code(emu: CalendarEmulator, user: str, **extra: str) -> str:
    response = requests.get(
        emu.auth_url,
        allow_redirects=False,
        timeout=5,
        params={
            "client_id": DEFAULT_CLIENT_ID,
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": "https://www.googleapis.com/auth/calendar",
            "state": "xyz",
            "login_hint": user,
            "access_type": "offline",
            **extra,
        },
    )
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]
    return query["code"][0]


def _token(emu: CalendarEmulator, **form: str) -> requests.Response:
    return requests.post(
        emu.token_url,
        data={"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET, **form},
        timeout=5,
    )


def _calendar(emu: CalendarEmulator, token: str) -> requests.Response:
    return requests.get(
        f"{emu.api_url}/calendars/primary", timeout=5, headers={"Authorization": f"Bearer {token}"}
    )


def test_code_flow_refresh_and_revoke(emu: CalendarEmulator) -> None:
    code = _code(emu, "ann@example.com")
    answer: dict[str, Any] = _token(
        emu, grant_type="authorization_code", code=code, redirect_uri=REDIRECT
    ).json()
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 3600
    assert answer["refresh_token"] and answer["access_token"]
    assert _calendar(emu, answer["access_token"]).json()["id"] == "ann@example.com"

    reused = _token(emu, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"

    basic = requests.post(
        emu.token_url,
        timeout=5,
        auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
        data={"grant_type": "refresh_token", "refresh_token": answer["refresh_token"]},
    )
    refreshed = basic.json()
    assert basic.status_code == 200 and refreshed["access_token"] != answer["access_token"]
    assert "refresh_token" not in refreshed
    assert _calendar(emu, refreshed["access_token"]).status_code == 200

    assert (
        requests.post(
            emu.revoke_url, params={"token": answer["refresh_token"]}, timeout=5
        ).status_code
        == 200
    )
    again = _token(emu, grant_type="refresh_token", refresh_token=answer["refresh_token"])
    assert again.status_code == 400
    assert again.json() == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }
    revoked = _calendar(emu, refreshed["access_token"])
    assert revoked.status_code == 401 and reason(revoked) == "authError"
    unknown = requests.post(emu.revoke_url, data={"token": "nope"}, timeout=5)
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_token"


def test_client_checks_and_errors(emu: CalendarEmulator) -> None:
    code = _code(emu, "bob@example.com")
    wrong = requests.post(
        emu.token_url,
        timeout=5,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": "wrong",
        },
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert _token(emu, grant_type="password").json()["error"] == "unsupported_grant_type"
    bad_code = _token(emu, grant_type="authorization_code", code="4/bogus", redirect_uri=REDIRECT)
    assert bad_code.json() == {
        "error": "invalid_grant",
        "error_description": "Malformed auth code.",
    }
    unknown_client = requests.get(
        emu.auth_url,
        allow_redirects=False,
        timeout=5,
        params={"client_id": "nobody", "redirect_uri": REDIRECT, "response_type": "code"},
    )
    assert unknown_client.status_code == 401
    online = _code(emu, "carl@example.com", access_type="online")
    answer = _token(emu, grant_type="authorization_code", code=online, redirect_uri=REDIRECT)
    assert "refresh_token" not in answer.json()


def test_missing_and_bad_bearer(emu: CalendarEmulator) -> None:
    missing = requests.get(f"{emu.api_url}/calendars/primary", timeout=5)
    body = missing.json()["error"]
    assert missing.status_code == 401 and body["status"] == "UNAUTHENTICATED"
    assert body["errors"][0]["reason"] == "authError"
    assert "WWW-Authenticate" in missing.headers
    assert _calendar(emu, "ya29.bogus").status_code == 401


def test_expiry_by_lifetime_and_forced() -> None:
    now = [1_000_000.0]
    with CalendarEmulator(token_lifetime=60, clock=lambda: now[0]) as emu:
        short = emu.issue_token("dee@example.com")
        assert _calendar(emu, short).status_code == 200
        now[0] += 61
        expired = _calendar(emu, short)
        assert expired.status_code == 401 and reason(expired) == "authError"

        code = _code(emu, "dee@example.com")
        answer = _token(
            emu, grant_type="authorization_code", code=code, redirect_uri=REDIRECT
        ).json()
        assert answer["expires_in"] == 60
        assert _calendar(emu, answer["access_token"]).status_code == 200
        forced = requests.post(emu.base_url + "/_emulator/expire-tokens", timeout=5).json()
        assert forced["expired"] >= 1
        assert _calendar(emu, answer["access_token"]).status_code == 401
        fresh = _token(emu, grant_type="refresh_token", refresh_token=answer["refresh_token"])
        assert _calendar(emu, fresh.json()["access_token"]).status_code == 200
