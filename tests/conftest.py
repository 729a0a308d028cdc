"""Shared fixtures: every storage and runtime test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

# Every scan of a task tree the engine does its own way is compared with
# SpiffWorkflow's, in this process and in the worker processes tests start.
os.environ["CATFLOW_CHECK_SCANS"] = "1"

import pytest
from api_helpers import serve_api  # noqa: F401  (a fixture: the HTTP API on loopback)
from calendar_flow import emulator  # noqa: F401  (a fixture: a Calendar emulator per test)
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from engine.bpmn import _scan
from engine.config import Settings, load_settings
from engine.runtime import Project, open_project

assert _scan._CHECK, "engine.bpmn was imported before the scan check was switched on"

PG_URL = os.environ.get(
    "CATFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/catflow_test"
)
_pg_status: tuple[bool, str] | None = None


def _postgres() -> tuple[bool, str]:
    """Whether PostgreSQL can be had; creates the test database when it is missing."""
    global _pg_status
    if _pg_status is not None:
        return _pg_status
    url = make_url(PG_URL)
    try:
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}
            )
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{url.database}"'))
        admin.dispose()
        _pg_status = (True, "")
    except Exception as exc:  # any failure to connect means: no PostgreSQL here
        _pg_status = (False, f"PostgreSQL at {url.render_as_string()} unavailable: {exc}")
    return _pg_status


def pytest_report_header(config: pytest.Config) -> str:
    ok, reason = _postgres()
    return "postgresql: available" if ok else f"WARNING: {reason}; PostgreSQL tests SKIPPED"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catflow.db'}"
        return
    ok, reason = _postgres()
    if not ok:
        pytest.skip(f"LOUD SKIP: {reason}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield str(
        make_url(PG_URL)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    with engine.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "catalogs").mkdir(parents=True)
    (root / "processes").mkdir()
    return root


def settings_for(project_dir: Path, db_url: str, **overrides: object) -> Settings:
    base = load_settings(project_dir)
    return dataclasses.replace(base, database_url=db_url, **overrides)  # type: ignore[arg-type]


def write_files(
    project_dir: Path,
    catalogs: dict[str, str] | None = None,
    processes: dict[str, str] | None = None,
) -> None:
    for name, body in (catalogs or {}).items():
        (project_dir / "catalogs" / f"{name}.yaml").write_text(body)
    for name, body in (processes or {}).items():
        (project_dir / "processes" / f"{name}.bpmn").write_text(body)


@pytest.fixture
def open_test_project(project_dir: Path, db_url: str) -> Iterator[object]:
    """Call with catalogs/processes (file name -> text) to get an opened Project."""
    opened: list[Project] = []

    def _open(
        catalogs: dict[str, str] | None = None,
        processes: dict[str, str] | None = None,
        **overrides: object,
    ) -> Project:
        write_files(project_dir, catalogs, processes)
        project = open_project(settings_for(project_dir, db_url, **overrides))
        opened.append(project)
        return project

    yield _open
    for project in opened:
        project.close()
