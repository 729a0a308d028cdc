"""The pages without a browser (so without JavaScript): sign-in, the CSRF guard, roles
refused server-side, forms that work as plain HTML."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from bpmn_builder import chain, end, start, user_task
from ui.ui_helpers import Ui

from engine import runtime
from engine.api._deps import SESSION_COOKIE
from engine.runtime import Runner
from engine.store import OutboxEvent

PAGES = (
    "/ui/instances",
    "/ui/incidents",
    "/ui/deployments",
    "/ui/catalogs",
    "/ui/records/meetings",
    "/ui/connections",
    "/ui/processes/meeting_sync",
)


class Browser:
    """A plain HTTP client that signs in with the form, as a browser without scripts."""

    def __init__(self, pages: Ui, role: str | None) -> None:
        self.pages = pages
        self.http = requests.Session()
        self.http.trust_env = False
        if role is not None:
            answer = self.post("/ui/sign-in", {"token": pages.tokens[role], "next": "/ui/catalogs"})
            assert answer.status_code == 303, answer.text
            assert answer.headers["location"] == "/ui/catalogs"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.pages.url(path), allow_redirects=False, timeout=30, **kwargs)

    def post(
        self, path: str, data: dict[str, Any], origin: str | None = "own", **kwargs: Any
    ) -> requests.Response:
        headers = (
            {} if origin is None else {"Origin": self.pages.base_url if origin == "own" else origin}
        )
        return self.http.post(
            self.pages.url(path),
            data=data,
            headers=headers,
            allow_redirects=False,
            timeout=30,
            **kwargs,
        )

    def csrf(self, path: str = "/ui/instances") -> str:
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', self.get(path).text)
        assert found
        return found.group(1)


def _queued(pages: Ui) -> int:
    with pages.project.db.session() as s:
        return runtime.start_process(s, "meeting_delete", {"old": {"id": 1}}, {"kind": "test"}).id


def _state(pages: Ui, instance_id: int) -> str:
    with pages.project.db.session() as s:
        return runtime.get_instance(s, instance_id).state


def test_pages_need_a_session_and_the_sign_in_keeps_the_token_out_of_urls(pages: Ui) -> None:
    anonymous = Browser(pages, None)
    for path in PAGES:
        answer = anonymous.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/ui/sign-in?next=/ui/")
    assert anonymous.get("/ui/records/meetings/1/live.json").status_code == 401

    refused = anonymous.post("/ui/sign-in", {"token": "cf_not-a-token"})
    assert refused.status_code == 401
    assert "that token is not valid" in refused.text
    assert SESSION_COOKIE not in refused.cookies

    viewer = Browser(pages, "viewer")
    cookie = next(c for c in viewer.http.cookies if c.name == SESSION_COOKIE)
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite", "").lower() == "strict"
    for path in PAGES:
        answer = viewer.get(path)
        assert answer.status_code == 200, (path, answer.text[:500])
        assert 'data-testid="who-name">test-viewer<' in answer.text
        assert pages.tokens["viewer"] not in answer.text
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    # An open redirect is not offered.
    offsite = viewer.post(
        "/ui/sign-in", {"token": pages.tokens["viewer"], "next": "//evil.example/"}
    )
    assert offsite.headers["location"] == "/ui/instances"


def test_forms_from_elsewhere_are_refused(pages: Ui) -> None:
    operator = Browser(pages, "operator")
    instance = _queued(pages)
    csrf = operator.csrf()
    path = f"/ui/instances/{instance}/suspend"
    assert operator.post(path, {"csrf": csrf}, origin="http://evil.example").status_code == 403
    assert operator.post(path, {"csrf": csrf}, origin=None).status_code == 403
    assert operator.post(path, {"csrf": "0" * 64}).status_code == 403
    assert operator.post(path, {}).status_code == 403
    assert _state(pages, instance) == "queued"
    done = operator.post(path, {"csrf": csrf})
    assert done.status_code == 303
    assert _state(pages, instance) == "suspended"
    assert "suspend done; now suspended" in operator.get(done.headers["location"]).text


@pytest.mark.parametrize(
    ("role", "path", "data", "needed"),
    [
        ("editor", "/ui/instances/{instance}/cancel", {}, "operator"),
        ("viewer", "/ui/records/meetings", {"title": "x"}, "editor"),
        ("editor", "/ui/deployments", {}, "designer"),
        ("operator", "/ui/connections/google/authorize", {}, "admin"),
    ],
)
def test_what_a_role_may_not_do_is_refused_by_the_server(
    pages: Ui, role: str, path: str, data: dict[str, str], needed: str
) -> None:
    instance = _queued(pages)
    person = Browser(pages, role)
    answer = person.post(path.format(instance=instance), {"csrf": person.csrf(), **data})
    assert answer.status_code == 403
    assert f"needs the {needed} role" in answer.text
    assert f"signed in as {role}" in answer.text
    assert _state(pages, instance) == "queued"
    if needed == "operator":
        page = person.get(f"/ui/instances/{instance}").text
        assert 'data-action="cancel"' not in page


def test_operator_actions_and_a_user_task_from_plain_forms(pages: Ui) -> None:
    runtime.deploy(
        pages.project.db,
        [("approve.bpmn", chain("approve", start(), user_task("ok", "Approve"), end()).encode())],
        max_bytes=2**20,
    )
    with pages.project.db.session() as s:
        instance = runtime.start_process(s, "approve", {}, {"kind": "test"}).id
    Runner(pages.project, workers=1).run_once()
    assert _state(pages, instance) == "waiting"
    operator = Browser(pages, "operator")
    page = operator.get(f"/ui/instances/{instance}").text
    assert "Complete user task <code>ok</code>" in page
    csrf = operator.csrf()
    bad = operator.post(f"/ui/instances/{instance}/tasks/ok/complete", {"csrf": csrf, "data": "{"})
    assert "is not valid JSON" in operator.get(bad.headers["location"]).text
    good = operator.post(
        f"/ui/instances/{instance}/tasks/ok/complete", {"csrf": csrf, "data": '{"approved": true}'}
    )
    assert "task ok completed" in operator.get(good.headers["location"]).text
    Runner(pages.project, workers=1).run_once()
    assert _state(pages, instance) == "completed"
    detail = operator.get(f"/ui/instances/{instance}").text
    assert 'data-variable="approved"' in detail
    assert 'data-action="' not in detail  # nothing left to do on a completed instance


def test_records_are_made_and_changed_with_plain_forms(pages: Ui) -> None:
    editor = Browser(pages, "editor")
    form = editor.get("/ui/records/employees/new").text
    assert 'name="active" value="on" checked' in form  # the default, ticked
    csrf = editor.csrf("/ui/records/employees/new")
    made = editor.post(
        "/ui/records/employees", {"csrf": csrf, "name": "Bea", "email": "Bea@Example.COM"}
    )
    assert made.status_code == 303
    record_path = made.headers["location"]
    shown = editor.get(record_path).text
    assert "Bea@example.com" in shown  # the domain lower-cased
    assert re.search(r'data-field="active">no<', shown)  # the box was unticked

    refused = editor.post(
        "/ui/records/meetings",
        {
            "csrf": csrf,
            "title": "Backwards",
            "starts_at": "2030-01-01T12:00:00+01:00",
            "ends_at": "2030-01-01T11:00:00+01:00",
            "participants": ["1"],
        },
    )
    assert refused.status_code == 422
    assert re.search(r'data-field="ends_at">.*?is not after starts_at', refused.text, re.S)
    assert 'value="Backwards"' in refused.text  # the form comes back as it was sent

    edit = editor.get(record_path + "/edit").text
    assert 'value="Bea"' in edit and 'name="active" value="on">' in edit
    changed = editor.post(record_path, {"csrf": csrf, "name": "Bea B.", "email": "Bea@example.com"})
    assert changed.status_code == 303
    assert "updated employees record 1: name" in editor.get(changed.headers["location"]).text
    with pages.project.db.session() as s:
        last = s.query(OutboxEvent).order_by(OutboxEvent.id.desc()).first()
        assert last is not None and last.kind == "updated" and last.changed == ["name"]
        assert last.cause_user == "test-editor"
    live = editor.get(record_path + "/live.json").json()
    assert live["fields"]["name"] == "Bea B." and live["instances"] == []

    gone = editor.post(record_path + "/delete", {"csrf": csrf})
    assert gone.headers["location"] == "/ui/records/employees"
    assert editor.get(record_path + "/live.json").json()["deleted"] is True


def test_an_unknown_authorisation_answer_is_refused(pages: Ui) -> None:
    admin = Browser(pages, "admin")
    answer = admin.get("/ui/connections/callback?state=forged&code=abc")
    assert answer.status_code == 400
    assert "unknown, expired or was used already" in answer.text
    with pages.project.db.session() as s:
        from engine.connections import list_connections

        [google] = list_connections(s)
    assert google.status == "authorized"
