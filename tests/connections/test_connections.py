"""Connections keep client secrets and tokens encrypted at rest and never show them."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet
from sqlalchemy import select

from engine.cli import cli
from engine.connections import client_secret, get_connection, load_box, read_token, store_token
from engine.errors import CatflowError
from engine.store import ConnectionRow, Database

SECRET = "GOCSPX-very-secret-value"
TOKEN = {"access_token": "ya29.access-token", "refresh_token": "1//refresh-token"}


@pytest.fixture
def catflow(project_dir: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("CATFLOW_SECRET_KEY", raising=False)
    runner = CliRunner()

    def run(*args: str, code: int = 0, input: str | None = None) -> Result:
        result = runner.invoke(
            cli,
            ["--project", str(project_dir), *args],
            env={"CATFLOW_DATABASE_URL": db_url},
            input=input,
        )
        assert result.exit_code == code, (result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        return result

    return run


def _add(catflow: Any, name: str = "google", *extra: str, code: int = 0) -> Result:
    return catflow(
        "connections",
        "add",
        name,
        "--client-id",
        "123.apps.example",
        "--client-secret",
        SECRET,
        *extra,
        code=code,
    )


def _raw_rows(db_url: str) -> list[dict[str, Any]]:
    db = Database(db_url)
    try:
        with db.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(ConnectionRow.__table__))]
    finally:
        db.dispose()


def test_add_and_list_never_show_the_secret(catflow: Any, project_dir: Path, db_url: str) -> None:
    added = _add(catflow, "google", "--json")
    assert SECRET not in added.stdout
    listed = catflow("connections", "list", "--json")
    [view] = json.loads(listed.stdout)
    assert view["name"] == "google" and view["status"] == "new" and view["authorized"] is False
    assert view["token_url"] == "https://oauth2.googleapis.com/token"
    assert view["scopes"] == ["https://www.googleapis.com/auth/calendar"]
    assert SECRET not in listed.stdout and "secret" not in " ".join(view)
    assert SECRET not in catflow("connections", "list").stdout
    [row] = _raw_rows(db_url)
    assert SECRET not in json.dumps(row, default=str)  # sealed at rest
    box = load_box(project_dir / ".catflow" / "secret.key")
    db = Database(db_url)
    try:
        with db.session() as s:
            assert client_secret(box, get_connection(s, "google")) == SECRET
    finally:
        db.dispose()


def test_the_key_file_is_made_owner_only_and_reused(catflow: Any, project_dir: Path) -> None:
    _add(catflow, "one")
    key_file = project_dir / ".catflow" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_bytes()
    _add(catflow, "two")
    assert key_file.read_bytes() == key
    os.chmod(key_file, 0o644)
    refused = _add(catflow, "three", code=1)
    assert "readable by others" in refused.stderr and "chmod 600" in refused.stderr


def test_a_configured_key_is_used_and_a_wrong_one_is_named(
    catflow: Any, project_dir: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("CATFLOW_SECRET_KEY", key)
    _add(catflow, "google")
    assert not (project_dir / ".catflow" / "secret.key").exists()
    monkeypatch.setenv("CATFLOW_SECRET_KEY", Fernet.generate_key().decode())
    box = load_box(project_dir / ".catflow" / "secret.key")
    db = Database(db_url)
    try:
        with db.session() as s, pytest.raises(CatflowError, match="cannot be decrypted"):
            client_secret(box, get_connection(s, "google"))
    finally:
        db.dispose()
    monkeypatch.setenv("CATFLOW_SECRET_KEY", "not-a-key")
    assert "not a valid key" in _add(catflow, "other", code=1).stderr


def test_tokens_are_sealed_and_their_expiry_listed(
    catflow: Any, project_dir: Path, db_url: str
) -> None:
    _add(catflow, "google")
    box = load_box(project_dir / ".catflow" / "secret.key")
    db = Database(db_url)
    try:
        with db.session() as s:
            row = get_connection(s, "google")
            store_token(s, box, row, {**TOKEN, "expires_at": time.time() + 3600})
        with db.session() as s:
            row = get_connection(s, "google")
            assert read_token(box, row) is not None
            assert read_token(box, row)["refresh_token"] == TOKEN["refresh_token"]  # type: ignore[index]
            assert row.token_version == 1 and row.status == "authorized"
    finally:
        db.dispose()
    raw = json.dumps(_raw_rows(db_url), default=str)
    assert TOKEN["access_token"] not in raw and TOKEN["refresh_token"] not in raw
    [view] = json.loads(catflow("connections", "list", "--json").stdout)
    assert view["status"] == "authorized" and view["expires_at"] and view["authorized"]
    assert TOKEN["access_token"] not in catflow("connections", "list", "--json").stdout


def test_refusals(catflow: Any) -> None:
    _add(catflow, "google")
    assert "exists already" in _add(catflow, "google", code=1).stderr
    assert "not a valid connection name" in _add(catflow, "Bad Name", code=1).stderr
    bad_url = _add(catflow, "local", "--token-url", "ftp://x", code=1)
    assert "--token-url: 'ftp://x' is not an http(s) URL" in bad_url.stderr
    catflow(
        "connections",
        "add",
        "x",
        "--provider",
        "nope",
        "--client-id",
        "i",
        "--client-secret",
        "s",
        code=2,
    )


def test_the_secret_can_be_typed_at_a_hidden_prompt(catflow: Any) -> None:
    result = catflow(
        "connections",
        "add",
        "prompted",
        "--client-id",
        "id",
        "--api-url",
        "http://127.0.0.1:8099",
        input=f"{SECRET}\n",
    )
    assert SECRET not in result.stdout
    [view] = json.loads(catflow("connections", "list", "--json").stdout)
    assert view["api_url"] == "http://127.0.0.1:8099"
