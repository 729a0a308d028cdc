"""OAuth2 against the local emulator over real HTTP: consent, refresh, 401, invalid_grant."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result

from engine.cli import cli
from engine.components.outbound import OutboundPolicy
from engine.connections import ConnectionBroken, Tokens, load_box
from engine.emulators.calendar import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    CalendarEmulator,
    Faults,
)
from engine.store import Database


@pytest.fixture
def emulator() -> Iterator[CalendarEmulator]:
    # Tokens live an hour, as Google's do; tests expire them on purpose.
    with CalendarEmulator(faults=Faults(user_quota_per_minute=None), token_lifetime=3600) as emu:
        yield emu


@pytest.fixture
def catflow(
    project_dir: Path, db_url: str, emulator: CalendarEmulator, monkeypatch: pytest.MonkeyPatch
) -> Any:
    monkeypatch.delenv("CATFLOW_SECRET_KEY", raising=False)
    env = {"CATFLOW_DATABASE_URL": db_url, "CATFLOW_OUTBOUND_ALLOW": f"127.0.0.1:{emulator.port}"}

    def run(*args: str, code: int = 0) -> Result:
        result = CliRunner().invoke(cli, ["--project", str(project_dir), *args], env=env)
        assert result.exit_code == code, (result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        return result

    return run


def _connect(catflow: Any, emulator: CalendarEmulator, name: str = "cal") -> None:
    catflow(
        "connections",
        "add",
        name,
        "--client-id",
        DEFAULT_CLIENT_ID,
        "--client-secret",
        DEFAULT_CLIENT_SECRET,
        "--auth-url",
        emulator.auth_url,
        "--token-url",
        emulator.token_url,
        "--api-url",
        emulator.base_url,
    )
    assert "authorised" in catflow("connections", "authorize", name, "--auto-consent").stdout


def _tokens(project_dir: Path, db_url: str, emulator: CalendarEmulator) -> tuple[Tokens, Database]:
    db = Database(db_url)
    box = load_box(project_dir / ".catflow" / "secret.key")
    return Tokens(db, box, OutboundPolicy([f"127.0.0.1:{emulator.port}"])), db


def _calendar_list(emulator: CalendarEmulator, token: str) -> int:
    answer = requests.get(
        f"{emulator.api_url}/users/me/calendarList",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    return answer.status_code


def test_authorize_with_auto_consent_then_call_the_api(
    catflow: Any, emulator: CalendarEmulator, project_dir: Path, db_url: str
) -> None:
    _connect(catflow, emulator)
    listed = catflow("connections", "list", "--json").stdout
    assert '"status": "authorized"' in listed and '"expires_at": "' in listed
    tokens, db = _tokens(project_dir, db_url, emulator)
    try:
        token = tokens.access_token("cal")
        assert _calendar_list(emulator, token) == 200
        assert token not in listed
        assert tokens.refreshes == 0  # a fresh token is used as it is
    finally:
        db.dispose()


def test_a_401_is_recovered_with_one_refresh(
    catflow: Any, emulator: CalendarEmulator, project_dir: Path, db_url: str
) -> None:
    _connect(catflow, emulator)
    tokens, db = _tokens(project_dir, db_url, emulator)
    try:
        old = tokens.access_token("cal")
        emulator.expire_tokens()  # the provider forgets access tokens early
        assert _calendar_list(emulator, old) == 401
        new = tokens.after_unauthorized("cal", old)
        assert new != old and _calendar_list(emulator, new) == 200
        # A second caller that also saw the 401 finds the token renewed already.
        assert tokens.after_unauthorized("cal", old) == new
        assert tokens.refreshes == 1
    finally:
        db.dispose()


def test_four_threads_and_two_processes_refresh_once(
    catflow: Any, emulator: CalendarEmulator, project_dir: Path, db_url: str
) -> None:
    _connect(catflow, emulator)
    first, db1 = _tokens(project_dir, db_url, emulator)
    second, db2 = _tokens(project_dir, db_url, emulator)  # as if another process
    try:
        stale = first.access_token("cal")
        emulator.expire_tokens()
        results: list[str] = []
        gate = threading.Barrier(4)

        def worker(tokens: Tokens) -> None:
            gate.wait()
            results.append(tokens.after_unauthorized("cal", stale))

        threads = [
            threading.Thread(target=worker, args=(t,)) for t in (first, first, second, second)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(set(results)) == 1 and len(results) == 4
        assert first.refreshes + second.refreshes == 1
        assert _calendar_list(emulator, results[0]) == 200
    finally:
        db1.dispose()
        db2.dispose()


def test_a_token_about_to_expire_is_refreshed_before_use(
    catflow: Any, emulator: CalendarEmulator, project_dir: Path, db_url: str
) -> None:
    _connect(catflow, emulator)
    db = Database(db_url)
    box = load_box(project_dir / ".catflow" / "secret.key")
    policy = OutboundPolicy([f"127.0.0.1:{emulator.port}"])
    eager = Tokens(db, box, policy, margin_seconds=4000)  # longer than the token lives
    try:
        token = eager.access_token("cal")
        assert eager.refreshes == 1 and _calendar_list(emulator, token) == 200
    finally:
        db.dispose()


def test_a_revoked_grant_breaks_the_connection_until_authorised_again(
    catflow: Any, emulator: CalendarEmulator, project_dir: Path, db_url: str
) -> None:
    _connect(catflow, emulator)
    tokens, db = _tokens(project_dir, db_url, emulator)
    try:
        old = tokens.access_token("cal")
        requests.post(emulator.revoke_url, params={"token": old}, timeout=10)  # user revokes
        with pytest.raises(ConnectionBroken, match="invalid_grant") as broken:
            tokens.after_unauthorized("cal", old)
        assert "catflow connections authorize cal" in str(broken.value)
        listed = catflow("connections", "list", "--json").stdout
        assert '"status": "broken"' in listed and "invalid_grant" in listed
        with pytest.raises(ConnectionBroken):
            tokens.access_token("cal")  # no call to the provider while broken
        assert "authorised" in catflow("connections", "authorize", "cal", "--auto-consent").stdout
        assert _calendar_list(emulator, tokens.access_token("cal")) == 200
    finally:
        db.dispose()


def test_plain_http_is_only_for_loopback(catflow: Any) -> None:
    refused = catflow(
        "connections",
        "add",
        "x",
        "--client-id",
        "i",
        "--client-secret",
        "s",
        "--token-url",
        "http://oauth.example.com/token",
        code=1,
    )
    assert "plain http; tokens and secrets travel only over https" in refused.stderr


def test_a_token_is_read_from_the_store_once_and_a_401_drops_that_copy(
    catflow: Any, emulator: CalendarEmulator, project_dir: Path, db_url: str
) -> None:
    from sqlalchemy import event

    _connect(catflow, emulator)
    tokens, db = _tokens(project_dir, db_url, emulator)
    reads: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM connections" in statement:
            reads.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        token = tokens.access_token("cal")
        assert [tokens.access_token("cal") for _ in range(5)] == [token] * 5
        assert len(reads) == 1  # every call read and decrypted it before
        emulator.expire_tokens()
        assert _calendar_list(emulator, token) == 401
        renewed = tokens.after_unauthorized("cal", token)
        assert tokens.access_token("cal") == renewed != token
        assert _calendar_list(emulator, renewed) == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
        db.dispose()
