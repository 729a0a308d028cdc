"""Settings from CATFLOW_* environment variables, with defaults that work out of the box."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from engine.errors import CatflowError

N = TypeVar("N", int, float)


def _number(name: str, default: N, *, zero_ok: bool = False) -> N:
    """A number from the environment, of the default's type; a clear error if it is not one."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    kind = type(default)
    try:
        value = kind(raw)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise CatflowError(f"{name}={raw!r} is not {what}") from None
    if value < 0 or (value == 0 and not zero_ok):
        floor = "zero or more" if zero_ok else "greater than zero"
        raise CatflowError(f"{name}={raw!r} must be {floor}")
    return value


def normalise_database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain PostgreSQL URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@dataclass(frozen=True)
class Settings:
    project_dir: Path
    database_url: str
    workers: int  # worker threads (per worker process, when there are processes)
    lease_seconds: float
    poll_interval: float
    max_bpmn_bytes: int
    worker_name: str
    # Outbound calls (engine/components/outbound): entries that may be reached, and
    # the most bytes of one web response read into memory.
    outbound_allow: tuple[str, ...] = ()
    max_response_bytes: int = 10 * 1024 * 1024
    max_field_bytes: int = 1024 * 1024  # one record field's value, as JSON
    # The outbound HTTP layer (engine/components/outbound/_client.py).
    http_connect_timeout: float = 5.0
    http_read_timeout: float = 30.0
    http_max_attempts: int = 8
    http_backoff_base: float = 0.5
    http_backoff_max: float = 60.0
    http_max_inline_wait: float = 5.0
    connection_rate_per_minute: int = 580  # per connection; 0: no limit of our own
    # The Celery broker of `catflow worker` and `catflow serve --no-workers`.
    broker_url: str = "redis://127.0.0.1:6379/0"
    # Worker processes of `catflow serve` (0: worker threads in the serving process).
    worker_processes: int = 0

    @property
    def catalogs_dir(self) -> Path:
        return self.project_dir / "catalogs"

    @property
    def secret_key_file(self) -> Path:
        """Made on first use (owner-only) unless CATFLOW_SECRET_KEY is set; back it up."""
        return self.project_dir / ".catflow" / "secret.key"

    @property
    def processes_dir(self) -> Path:
        return self.project_dir / "processes"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(project_dir: str | Path | None = None) -> Settings:
    """Read settings; the project folder is the argument, CATFLOW_HOME, or the current folder."""
    home = Path(project_dir or os.environ.get("CATFLOW_HOME") or Path.cwd()).resolve()
    url = os.environ.get("CATFLOW_DATABASE_URL") or f"sqlite:///{home / 'catflow.db'}"
    return Settings(
        project_dir=home,
        database_url=normalise_database_url(url),
        workers=_number("CATFLOW_WORKERS", 4),
        lease_seconds=_number("CATFLOW_LEASE_SECONDS", 30.0),
        poll_interval=_number("CATFLOW_POLL_INTERVAL", 0.2),
        max_bpmn_bytes=_number("CATFLOW_MAX_BPMN_BYTES", 2 * 1024 * 1024),
        worker_name=os.environ.get("CATFLOW_WORKER_NAME")
        or f"{socket.gethostname()}:{os.getpid()}",
        outbound_allow=tuple(
            entry.strip()
            for entry in os.environ.get("CATFLOW_OUTBOUND_ALLOW", "").split(",")
            if entry.strip()
        ),
        max_response_bytes=_number("CATFLOW_MAX_RESPONSE_BYTES", 10 * 1024 * 1024),
        max_field_bytes=_number("CATFLOW_MAX_FIELD_BYTES", 1024 * 1024),
        http_connect_timeout=_number("CATFLOW_HTTP_CONNECT_TIMEOUT", 5.0),
        http_read_timeout=_number("CATFLOW_HTTP_READ_TIMEOUT", 30.0),
        http_max_attempts=_number("CATFLOW_HTTP_MAX_ATTEMPTS", 8),
        http_backoff_base=_number("CATFLOW_HTTP_BACKOFF_BASE", 0.5),
        http_backoff_max=_number("CATFLOW_HTTP_BACKOFF_MAX", 60.0),
        http_max_inline_wait=_number("CATFLOW_HTTP_MAX_INLINE_WAIT", 5.0),
        connection_rate_per_minute=_number("CATFLOW_CONNECTION_RATE_PER_MINUTE", 580, zero_ok=True),
        broker_url=os.environ.get("CATFLOW_BROKER_URL") or "redis://127.0.0.1:6379/0",
        worker_processes=_number("CATFLOW_WORKER_PROCESSES", 0, zero_ok=True),
    )
