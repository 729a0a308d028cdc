"""What every command shares: the project, output as tables or JSON, and errors."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from engine.api import ThreadedServer, create_app
from engine.catalogs import Cause
from engine.config import load_settings
from engine.errors import CatflowError
from engine.runtime import Project, open_project

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("catflow.cli")


class State:
    def __init__(self, project_dir: str | None) -> None:
        self.project_dir = project_dir
        self._project: Project | None = None

    def project(self, extra_files: Sequence[Path] = ()) -> Project:
        if self._project is None:
            settings = load_settings(self.project_dir)
            self._project = open_project(settings, extra_files=extra_files)
            for result in self._project.deployed:
                if result.status != "unchanged":
                    click.echo(
                        f"deployed {result.process_id} v{result.version} ({result.status}) "
                        f"from {result.filename}",
                        err=True,
                    )
        return self._project

    def close(self) -> None:
        if self._project is not None:
            self._project.close()


def who() -> str:
    """The person running the command, as instance notes name them."""
    return f"user:{Cause.person().user}"


def state() -> State:
    obj = click.get_current_context().find_root().obj
    assert isinstance(obj, State)
    return obj


def handle_errors(func: F) -> F:
    """Refusals go to stderr with exit code 1; never a stack trace."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CatflowError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except OperationalError as exc:
            click.echo(f"error: the database could not be used: {exc.orig}", err=True)
            click.echo("  (check CATFLOW_DATABASE_URL and that the database is running)", err=True)
            sys.exit(1)
        except Exception as exc:  # a bug of ours: say so plainly, keep the trace in the log
            log.exception("internal error")
            click.echo(f"error: internal error: {type(exc).__name__}: {exc}", err=True)
            click.echo("  (this is a Catflow bug; the log has the details)", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def parse_json_option(raw: str | None, option: str) -> Any:
    if raw is None:
        return None
    if raw.startswith("@"):
        try:
            raw = Path(raw[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise CatflowError(f"{option}: cannot read {raw[1:]}: {exc.strerror}") from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CatflowError(
            f"{option} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ' (write e.g. --data \'{"title": "Weekly"}\', or @file.json)'
        ) from None


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def cell(value: Any, width: int = 60) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Columns for people; long values are cut, except in the last column."""
    last = len(headers) - 1
    cells = [[cell(v, 60 if i < last else 10_000) for i, v in enumerate(row)] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))
    click.echo(line.rstrip())
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def safe_url(url: str) -> str:
    """A database URL without its password, for people to read."""
    return make_url(url).render_as_string(hide_password=True)


def start_http(project: Project, host: str, port: int) -> ThreadedServer:
    """The HTTP API and pages of ``project``, served from a background thread."""
    try:
        return ThreadedServer(create_app(project), host, port).start()
    except OSError as exc:
        raise CatflowError(
            f"the HTTP API cannot listen on {host}:{port} ({exc.strerror}); "
            "pass --port, or --no-http"
        ) from None


def record_ref(raw: str) -> tuple[str, int]:
    catalog, sep, rid = raw.partition(":")
    if not sep or not rid.isdigit():
        raise CatflowError(f"--record {raw!r} is not CATALOG:ID (e.g. meetings:12)")
    return catalog, int(rid)
