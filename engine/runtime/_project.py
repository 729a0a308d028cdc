"""A project: its settings, its database, its catalogs and processes, loaded and checked."""

from __future__ import annotations

import getpass
import logging
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from engine.catalogs import (
    CatalogDef,
    RecordService,
    load_catalog_files,
    stored_catalogs,
    sync_catalogs,
)
from engine.components.outbound import (
    HttpClient,
    OutboundPolicy,
    RetrySettings,
    SharedRateLimiter,
)
from engine.config import Settings, load_settings
from engine.connections import Tokens, load_box
from engine.store import Database, ProcessVersionRow, migrate

from ._definitions import DeployResult, deploy_paths, deployed_process_ids, latest_version
from ._instances import initial_state, insert_triggered_instance

log = logging.getLogger("catflow.project")


@dataclass(frozen=True)
class _PreparedStart:
    version: ProcessVersionRow
    workflow: str | bytes  # the serialised start state (bytes: packed)


# The latest version of a process: its id, and the highest version number.
_LATEST_ID = (
    select(ProcessVersionRow.id)
    .where(ProcessVersionRow.process_id == bindparam("process_id"))
    .order_by(ProcessVersionRow.version.desc())
    .limit(1)
)


class _EventStarter:
    """How the dispatcher starts instances of a process's latest version."""

    def __init__(self) -> None:
        # Version rows by database and id. A version never changes once made, except
        # that its dictionary is set once: rows without one are read again.
        self._versions: weakref.WeakKeyDictionary[Engine, dict[int, ProcessVersionRow]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def prepare(self, session: Session, process_id: str, variables: dict[str, Any]) -> object:
        version = self._latest(session, process_id)
        return _PreparedStart(version, initial_state(version, variables))

    def _latest(self, session: Session, process_id: str) -> ProcessVersionRow:
        """The latest version, as ``latest_version`` finds it, without loading its
        spec again for every event: one small query for its id, once per session (a
        dispatcher's batch of events is read in one)."""
        latest: dict[str, int | None] = session.info.setdefault("catflow_latest_versions", {})
        if process_id in latest:
            version_id = latest[process_id]
        else:
            version_id = latest[process_id] = session.execute(
                _LATEST_ID, {"process_id": process_id}
            ).scalar()
        bind = session.get_bind()
        assert isinstance(bind, Engine)
        with self._lock:
            known = self._versions.setdefault(bind, {})
            version = known.get(version_id) if version_id is not None else None
        if version is None:
            version = latest_version(session, process_id)  # names what is deployed if none
            if version.pack_dictionary is not None:
                with self._lock:
                    known[version.id] = version
        return version

    def start(
        self,
        session: Session,
        prepared: object,
        *,
        cause: dict[str, Any],
        serial_key: str,
        event_id: int,
        rule_key: str,
        record: tuple[str, int],
    ) -> int | None:
        assert isinstance(prepared, _PreparedStart)
        return insert_triggered_instance(
            session,
            prepared.version,
            prepared.workflow,
            cause=cause,
            serial_key=serial_key,
            event_id=event_id,
            rule_key=rule_key,
            record=record,
        )


event_starter = _EventStarter()


class _ProjectCredentials:
    """The project's connections, opened on first use (the secret key is read only then)."""

    def __init__(self, settings: Settings, db: Database, policy: OutboundPolicy) -> None:
        self.settings = settings
        self.db = db
        self.policy = policy
        self._tokens: Tokens | None = None
        self._lock = threading.Lock()

    def _get(self) -> Tokens:
        with self._lock:
            if self._tokens is None:
                box = load_box(self.settings.secret_key_file)
                self._tokens = Tokens(self.db, box, self.policy)
            return self._tokens

    def api_base(self, connection: str) -> str:
        return self._get().api_base(connection)

    def allowed_hosts(self, connection: str) -> list[str]:
        return self._get().allowed_hosts(connection)

    def access_token(self, connection: str) -> str:
        return self._get().access_token(connection)

    def after_unauthorized(self, connection: str, rejected: str) -> str:
        return self._get().after_unauthorized(connection, rejected)


def http_client_for(settings: Settings, db: Database) -> HttpClient:
    """The outbound HTTP layer with the project's settings and connections.

    On PostgreSQL the rate limit's buckets are in the database, shared by every
    process on every machine (Celery workers); SQLite serves one machine, whose
    worker processes split the limit between them (``WorkerProcesses``). A rate of 0
    is no limit of our own."""
    policy = OutboundPolicy.from_settings(settings)
    rate = settings.connection_rate_per_minute
    # No shared buckets for a rate of 0 (no limit of our own): not a statement per call.
    limiter = None if db.is_sqlite or rate == 0 else SharedRateLimiter(db, rate)
    return HttpClient(
        policy,
        _ProjectCredentials(settings, db, policy),
        RetrySettings(
            connect_timeout_s=settings.http_connect_timeout,
            read_timeout_s=settings.http_read_timeout,
            max_attempts=settings.http_max_attempts,
            backoff_base_s=settings.http_backoff_base,
            backoff_max_s=settings.http_backoff_max,
            max_inline_wait_s=settings.http_max_inline_wait,
            rate_per_minute=settings.connection_rate_per_minute,
        ),
        limiter=limiter,
    )


@dataclass
class Project:
    settings: Settings
    db: Database
    records: RecordService
    deployed: list[DeployResult]
    _http: HttpClient | None = None

    @property
    def http(self) -> HttpClient:
        """The outbound HTTP layer, shared by every worker of this project."""
        if self._http is None:
            self._http = http_client_for(self.settings, self.db)
        return self._http

    @property
    def catalogs(self) -> dict[str, CatalogDef]:
        return self.records.catalogs

    def reload_catalogs(self) -> None:
        with self.db.session() as session:
            self.records = RecordService(stored_catalogs(session), self.settings.max_field_bytes)

    def close(self) -> None:
        self.db.dispose()


def open_project(
    settings: Settings | None = None,
    *,
    load_files: bool = True,
    extra_files: Sequence[Path] = (),
) -> Project:
    """Migrate the store, deploy ``processes/*.bpmn`` and load ``catalogs/*.yaml``.

    Raises ValidationFailed (listing every problem) when a file is refused; in that
    case nothing of that kind (processes, or catalogs) was changed.
    """
    settings = settings or load_settings()
    db = Database(settings.database_url)
    try:
        migrate(db)
        deployed: list[DeployResult] = []
        if load_files:
            folder = settings.processes_dir
            files = sorted(folder.glob("*.bpmn")) if folder.is_dir() else []
            # A folder file whose content was ever deployed is left alone, so a
            # newer version deployed by hand is not undone at the next start.
            deployed = deploy_paths(
                db,
                files,
                max_bytes=settings.max_bpmn_bytes,
                deployed_by=f"startup:{_who()}",
                unchanged_if_ever_deployed=True,
            )
            if extra_files:
                # Files named explicitly: all of them or none; content that is not
                # the latest version (even an old one) becomes the latest.
                deployed += deploy_paths(
                    db,
                    [Path(f) for f in dict.fromkeys(extra_files)],
                    max_bytes=settings.max_bpmn_bytes,
                    deployed_by=_who(),
                )
            definitions = load_catalog_files(settings.catalogs_dir)
            with db.session() as session:
                sync_catalogs(session, definitions, deployed_process_ids(session))
        with db.session() as session:
            records = RecordService(stored_catalogs(session), settings.max_field_bytes)
    except BaseException:
        db.dispose()
        raise
    return Project(settings=settings, db=db, records=records, deployed=deployed)


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
