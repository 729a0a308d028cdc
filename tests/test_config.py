"""Settings come from CATFLOW_* variables; bad values are named, not a stack trace."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.config import load_settings
from engine.errors import CatflowError


def test_defaults_work_out_of_the_box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CATFLOW_HOME", "CATFLOW_DATABASE_URL", "CATFLOW_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.project_dir == tmp_path.resolve()
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'catflow.db'}"
    assert settings.workers == 4 and settings.lease_seconds == 30.0


def test_plain_postgresql_urls_use_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATFLOW_DATABASE_URL", "postgresql://u@db:5432/catflow")
    assert load_settings().database_url == "postgresql+psycopg://u@db:5432/catflow"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CATFLOW_WORKERS", "many", "CATFLOW_WORKERS='many' is not a whole number"),
        ("CATFLOW_LEASE_SECONDS", "-1", "CATFLOW_LEASE_SECONDS='-1' must be greater than zero"),
        (
            "CATFLOW_CONNECTION_RATE_PER_MINUTE",
            "-5",
            "CATFLOW_CONNECTION_RATE_PER_MINUTE='-5' must be zero or more",
        ),
    ],
)
def test_bad_values_are_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(CatflowError, match=message.replace("(", r"\(")):
        load_settings(tmp_path)
    result = CliRunner().invoke(cli, ["--project", str(tmp_path), "processes", "list"])
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.stderr


def test_an_unreachable_database_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["--project", str(tmp_path), "processes", "list"],
        env={"CATFLOW_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
    )
    assert result.exit_code == 1
    assert "the database could not be used" in result.stderr
    assert "CATFLOW_DATABASE_URL" in result.stderr and "Traceback" not in result.stderr


def test_the_field_size_limit_reaches_the_record_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "catalogs").mkdir()
    (tmp_path / "catalogs" / "notes.yaml").write_text("fields: {body: {type: text}}\n")
    monkeypatch.setenv("CATFLOW_MAX_FIELD_BYTES", "100")
    result = CliRunner().invoke(
        cli,
        [
            "--project",
            str(tmp_path),
            "records",
            "create",
            "notes",
            "--data",
            '{"body": "' + "x" * 200 + '"}',
        ],
        env={"CATFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"},
    )
    assert result.exit_code == 1
    assert "notes.body: is 202 bytes as JSON; at most 100 allowed" in result.stderr
