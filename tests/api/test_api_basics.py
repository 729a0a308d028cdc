"""The HTTP API's ground rules: tokens, roles, error shapes, health, OpenAPI."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_helpers import ServeApi
from click.testing import CliRunner
from flow_helpers import catalog
from pg_helpers import pooled_backends, terminate

from engine.api.tokens import revoke_token
from engine.cli import cli
from engine.store import _db


def test_no_token_or_a_bad_one_is_401_with_how_to_get_one(serve_api: ServeApi) -> None:
    api = serve_api(catalogs={"items": catalog()})
    for headers in (
        {},
        {"Authorization": "Bearer cf_not-a-real-token"},
        {"Authorization": "Basic x"},
    ):
        answer = api.get(None, "/api/catalogs", headers=headers)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert "catflow tokens create" in answer.json()["error"]["message"]


def test_a_viewer_reads_catalogs(serve_api: ServeApi) -> None:
    api = serve_api(catalogs={"items": catalog()})
    answer = api.get("viewer", "/api/catalogs")
    assert answer.status_code == 200
    [items] = answer.json()
    assert items["name"] == "items" and "title" in items["fields"]
    assert api.get("viewer", "/api/catalogs/items").json()["name"] == "items"
    missing = api.get("viewer", "/api/catalogs/nope")
    assert missing.status_code == 404
    assert missing.json() == {"error": {"message": "no catalog named 'nope' (catalogs: items)"}}


def test_healthz_needs_no_token_and_openapi_is_served(serve_api: ServeApi) -> None:
    api = serve_api(catalogs={"items": catalog()})
    assert api.get(None, "/healthz").json()["status"] == "ok"
    spec = api.get(None, "/openapi.json").json()
    assert "/api/catalogs" in spec["paths"]
    assert api.get(None, "/docs").status_code == 200


def test_a_revoked_token_stops_working_at_once(serve_api: ServeApi) -> None:
    api = serve_api(catalogs={"items": catalog()})
    assert api.get("viewer", "/api/catalogs").status_code == 200
    with api.project.db.session() as s:
        revoke_token(s, "test-viewer")
    assert api.get("viewer", "/api/catalogs").status_code == 401


def test_tokens_cli_shows_a_token_once_and_never_again(project_dir: Path, db_url: str) -> None:
    env = {"CATFLOW_DATABASE_URL": db_url}
    runner = CliRunner()
    made = runner.invoke(
        cli, ["--project", str(project_dir), "tokens", "create", "--role", "operator"], env=env
    )
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert token.startswith("cf_") and "operator-1 (operator)" in made.stderr
    listed = runner.invoke(
        cli, ["--project", str(project_dir), "tokens", "list", "--json"], env=env
    )
    assert '"name": "operator-1"' in listed.stdout and token not in listed.stdout
    assert token[:10] in listed.stdout  # the prefix tells tokens apart
    revoked = runner.invoke(
        cli, ["--project", str(project_dir), "tokens", "revoke", "operator-1"], env=env
    )
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    bad = runner.invoke(
        cli, ["--project", str(project_dir), "tokens", "create", "--role", "boss"], env=env
    )
    assert bad.exit_code == 2 and "'boss' is not one of" in bad.stderr


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_database_that_restarted_is_a_503_to_retry_not_a_500(
    serve_api: ServeApi, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL restarted (every backend of the server's pool terminated) while its
    connections were in steady use: the request that meets a dead one is told to
    retry (503, Retry-After), and the retry succeeds on fresh connections."""
    monkeypatch.setattr(_db, "PING_AFTER_IDLE_SECONDS", 60)  # all "in use a moment ago"
    api = serve_api(catalogs={"items": catalog()})
    assert api.get("viewer", "/api/catalogs").status_code == 200
    terminate(db_url, pooled_backends(api.project.db))
    answer = api.get("viewer", "/api/catalogs")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    assert answer.json()["error"]["message"] == (
        "the database could not be reached or was busy; try again in a moment"
    )
    assert api.get("viewer", "/api/catalogs").status_code == 200
