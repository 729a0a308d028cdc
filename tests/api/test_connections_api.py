"""/api/connections: add, list, and authorise through the browser redirect — never a secret."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
from api_helpers import Api, ServeApi
from calendar_flow import http_settings, one_call
from flow_helpers import run
from sqlalchemy import func, select

from engine.api import ThreadedServer, create_app
from engine.connections import (
    PendingConsent,
    get_connection,
    load_box,
    read_token,
    remember_consent,
)
from engine.emulators.calendar import CalendarEmulator
from engine.store import ConsentRow

SECRET = "catflow-emulator-secret"


def add_google(api: Api, emulator: CalendarEmulator) -> requests.Response:
    settings = emulator.connection_settings()
    assert settings["client_secret"] == SECRET
    return api.post("admin", "/api/connections", json={"name": "google", **settings})


def consent(api: Api, name: str) -> str:
    """Authorise in the "browser": our redirect, the emulator's consent; the callback URL."""
    sent = api.get("admin", f"/api/connections/{name}/authorize", allow_redirects=False)
    assert sent.status_code == 302, sent.text
    query = parse_qs(urlparse(sent.headers["Location"]).query)
    assert query["redirect_uri"] == [f"{api.base_url}/api/connections/{name}/callback"]
    consented = requests.get(sent.headers["Location"], allow_redirects=False, timeout=10)
    back = consented.headers["Location"]
    assert back.startswith(f"{api.base_url}/api/connections/{name}/callback?")
    return back


def test_a_connection_is_added_and_listed_without_its_secret(
    serve_api: ServeApi, emulator: CalendarEmulator
) -> None:
    api = serve_api(**http_settings(emulator))
    made = add_google(api, emulator)
    assert made.status_code == 201, made.text
    view = made.json()
    assert (view["name"], view["status"], view["authorized"]) == ("google", "new", False)
    assert view["auth_url"] == emulator.auth_url and view["api_url"] == emulator.base_url
    listed = api.get("viewer", "/api/connections")
    one = api.get("viewer", "/api/connections/google")
    assert listed.json() == [view] and one.json() == view
    for body in (made.text, listed.text, one.text):
        assert SECRET not in body and "client_secret" not in body

    twice = add_google(api, emulator)
    assert twice.status_code == 409 and "'google' exists already" in twice.text
    for field, value, message in (
        ("name", "Bad Name", "'Bad Name' is not a valid connection name"),
        ("token_url", "http://example.com/token", "plain http"),
        ("client_id", " ", "the client id is empty"),
    ):
        body = {"name": "other", "client_id": "x", "client_secret": "y", field: value}
        bad = api.post("admin", "/api/connections", json=body)
        assert bad.status_code == 422, bad.text
        [problem] = bad.json()["error"]["problems"]
        assert problem["where"] == field and message in problem["message"], problem
    # A refusal never echoes what was sent (it may be a secret in the wrong place).
    misplaced = api.post("admin", "/api/connections", json={"name": "x", "secret": "s3cr3t"})
    assert misplaced.status_code == 422 and "s3cr3t" not in misplaced.text
    missing = api.get("viewer", "/api/connections/nope")
    assert missing.status_code == 404 and "no connection named 'nope'" in missing.text
    assert api.get("admin", "/api/connections/nope/authorize").status_code == 404


def test_authorising_through_the_redirect_and_callback_resumes_the_stopped_instances(
    serve_api: ServeApi, emulator: CalendarEmulator
) -> None:
    api = serve_api(
        processes={"call": one_call("google_calendar.calendar_list.list")},
        **http_settings(emulator),
    )
    assert add_google(api, emulator).status_code == 201
    started = api.post("operator", "/api/instances", json={"process_id": "call"}).json()
    run(api.project)
    stopped = api.get("viewer", f"/api/instances/{started['id']}").json()
    assert stopped["state"] == "incident"
    assert stopped["incidents"][0]["kind"] == "connection"

    back = consent(api, "google")
    # The provider's redirect carries no API token: the state admits it.
    done = api.get(None, back[len(api.base_url) :], allow_redirects=False)
    assert done.status_code == 302, done.text
    assert done.headers["Location"] == "/ui/connections"
    view = api.get("viewer", "/api/connections/google").json()
    assert view["status"] == "authorized" and view["authorized"] and view["expires_at"]
    resumed = api.get("viewer", f"/api/instances/{started['id']}").json()
    assert resumed["state"] == "running"
    assert any(
        "connection 'google' authorised again" in (s["message"] or "") for s in resumed["steps"]
    )
    run(api.project)
    assert api.get("viewer", f"/api/instances/{started['id']}").json()["state"] == "completed"

    # A state is good once (then 404); a refusal is a 400; both say what to do.
    replayed = api.get(None, back[len(api.base_url) :], allow_redirects=False)
    assert replayed.status_code == 404
    assert "unknown, used or expired" in replayed.json()["error"]["message"]
    assert "GET /api/connections/google/authorize" in replayed.json()["error"]["message"]
    refused_url = consent(api, "google")
    state = parse_qs(urlparse(refused_url).query)["state"][0]
    refused = api.get(
        None,
        "/api/connections/google/callback",
        params={"state": state, "error": "access_denied"},
        allow_redirects=False,
    )
    assert refused.status_code == 400 and "access_denied" in refused.text

    # Nothing the API says holds the secret or a token.
    box = load_box(api.project.settings.secret_key_file)
    with api.project.db.session() as s:
        token = read_token(box, get_connection(s, "google"))
    assert token is not None
    secrets = [SECRET, token["access_token"], token["refresh_token"]]
    for path in ("/api/connections", "/api/connections/google", f"/api/instances/{started['id']}"):
        body = api.get("admin", path).text
        assert not any(secret in body for secret in secrets), path


def test_the_providers_answer_may_reach_another_api_process_of_the_store(
    serve_api: ServeApi, open_test_project: Any, emulator: CalendarEmulator
) -> None:
    """Two API processes on one store (a stand-by behind the same address, or the same
    one restarted): a consent started on one is finished on the other, once."""
    api = serve_api(**http_settings(emulator))
    assert add_google(api, emulator).status_code == 201
    back = consent(api, "google")
    state = parse_qs(urlparse(back).query)["state"][0]
    # The store keeps the consent by its state's digest, never the state itself.
    with api.project.db.session() as s:
        kept = s.scalars(select(ConsentRow)).all()
    assert [row.connection for row in kept] == ["google"]
    assert state not in {row.state_hash for row in kept}

    other = ThreadedServer(create_app(open_test_project(**http_settings(emulator)))).start()
    try:
        path = back[len(api.base_url) :]
        done = requests.get(other.base_url + path, allow_redirects=False, timeout=30)
        assert done.status_code == 302, done.text
        view = api.get("viewer", "/api/connections/google").json()
        assert view["status"] == "authorized" and view["authorized"]
        # Used once, whichever process is asked again.
        for base in (api.base_url, other.base_url):
            replayed = requests.get(base + path, allow_redirects=False, timeout=30)
            assert replayed.status_code == 404, replayed.text
    finally:
        other.stop()


def test_a_consent_not_answered_in_time_is_refused_and_forgotten(
    serve_api: ServeApi, emulator: CalendarEmulator
) -> None:
    api = serve_api(**http_settings(emulator))
    assert add_google(api, emulator).status_code == 201
    late = PendingConsent("google", f"{api.base_url}/api/connections/google/callback", "x")
    remember_consent(api.project.db, "late-state", late, seconds=-1)
    answered = api.get(
        None,
        "/api/connections/google/callback",
        params={"state": "late-state", "code": "c"},
        allow_redirects=False,
    )
    assert answered.status_code == 404
    assert "unknown, used or expired" in answered.json()["error"]["message"]
    # The next consent started forgets those that ran out.
    remember_consent(api.project.db, "gone-state", late, seconds=-1)
    consent(api, "google")
    with api.project.db.session() as s:
        assert s.scalar(select(func.count()).select_from(ConsentRow)) == 1
