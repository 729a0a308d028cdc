"""/api/tokens (admin): make a token (shown once), list tokens, revoke one."""

from __future__ import annotations

import requests
from api_helpers import ServeApi
from flow_helpers import catalog


def test_a_token_made_over_the_api_works_is_listed_without_itself_and_revoked_stops(
    serve_api: ServeApi,
) -> None:
    api = serve_api(catalogs={"items": catalog()})
    made = api.post("admin", "/api/tokens", json={"role": "editor", "name": "ci-bot"})
    assert made.status_code == 201, made.text
    view = made.json()
    token = view.pop("token")
    assert token.startswith("cf_") and token[:10] == view["prefix"]
    assert (view["name"], view["role"], view["created_by"]) == (
        "ci-bot",
        "editor",
        "token:test-admin",
    )

    def as_bot(method: str, path: str) -> int:
        answer = requests.request(
            method, api.base_url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        return answer.status_code

    assert as_bot("GET", "/api/catalogs") == 200
    assert as_bot("GET", "/api/tokens") == 403  # an editor manages no tokens

    listed = api.get("admin", "/api/tokens")
    assert token not in listed.text
    names = [t["name"] for t in listed.json()]
    assert names == sorted(names) and "ci-bot" in names

    revoked = api.call("admin", "DELETE", "/api/tokens/ci-bot")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert as_bot("GET", "/api/catalogs") == 401


def test_names_are_given_when_left_out_and_refusals_say_why(serve_api: ServeApi) -> None:
    api = serve_api(catalogs={"items": catalog()})
    first = api.post("admin", "/api/tokens", json={"role": "viewer"}).json()
    second = api.post("admin", "/api/tokens", json={"role": "viewer"}).json()
    assert (first["name"], second["name"]) == ("viewer-1", "viewer-2")
    taken = api.post("admin", "/api/tokens", json={"role": "viewer", "name": "viewer-1"})
    assert taken.status_code == 409 and "'viewer-1' exists already" in taken.text
    for body in ({"role": "boss"}, {"role": "viewer", "name": "no spaces"}, {}):
        assert api.post("admin", "/api/tokens", json=body).status_code == 422, body
    missing = api.call("admin", "DELETE", "/api/tokens/nobody")
    assert missing.status_code == 404 and "no token named 'nobody'" in missing.text
