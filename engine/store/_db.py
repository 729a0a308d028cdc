"""Engine and session set-up for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event, exc, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool


class Database:
    """One per process: an engine and a session factory for short transactions."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {
                "check_same_thread": False,
                "timeout": _BUSY_SECONDS,
                "factory": _writer_queue(url),
            }
            if ":memory:" not in url and url not in ("sqlite://", "sqlite:///"):
                # Connections are kept open: closing the last one checkpoints the WAL
                # and opening one re-runs the PRAGMAs — per transaction, that was most
                # of the cost of a step. SQLite's own locking still arbitrates writers.
                kwargs["poolclass"] = QueuePool
                kwargs["pool_size"] = 10
                kwargs["max_overflow"] = 30
        else:
            kwargs["pool_size"] = 10
            kwargs["max_overflow"] = 20
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        else:
            _ping_when_idle(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Sessions that only read: on SQLite they begin a deferred transaction, which
        # takes no write lock, so readers never queue behind writers (WAL). On
        # PostgreSQL they run in autocommit: under READ COMMITTED every statement
        # sees its own snapshot anyway, and BEGIN and COMMIT were two round trips
        # more than the statement a read mostly is.
        reading: dict[str, Any] = {"catflow_read_only": True}
        if not self.is_sqlite:
            reading["isolation_level"] = "AUTOCOMMIT"
        self._read_sessions = sessionmaker(
            self.engine.execution_options(**reading), expire_on_commit=False
        )
        self._statement_sessions = (
            self._sessions
            if self.is_sqlite
            else sessionmaker(
                self.engine.execution_options(isolation_level="AUTOCOMMIT"),
                expire_on_commit=False,
            )
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        with self._sessions() as session, session.begin():
            yield session

    def new_session(self) -> Session:
        """A session whose transaction the caller begins and ends (for long-lived steps)."""
        return self._sessions()

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """Reads, ended when the block ends: a deferred transaction on SQLite (no write
        lock), autocommit on PostgreSQL (each statement its own; never write in it)."""
        with self._read_sessions() as session, session.begin():
            yield session

    @contextmanager
    def statement_session(self) -> Iterator[Session]:
        """For work whose every write is one statement that must hold on its own (a
        worker's claim): autocommit on PostgreSQL, where BEGIN and COMMIT were two
        round trips more than the statement; a write transaction on SQLite."""
        with self._statement_sessions() as session, session.begin():
            yield session

    def new_read_session(self) -> Session:
        """A session for reads only; a write in it may fail with "database is locked"."""
        return self._read_sessions()

    def dispose(self) -> None:
        self.engine.dispose()


_BUSY_SECONDS = 60

# A pooled connection is pinged before use only when it sat idle this long. One in
# steady use answered a moment ago; pinging it anyway (SQLAlchemy's pool_pre_ping)
# was a round trip per session — for a worker on PostgreSQL, several per step. The
# same trade as HikariCP's aliveBypassWindowMs (500 ms): a connection that dies
# within the window fails the statement it runs, that failure invalidates the whole
# pool, and the next session gets a fresh connection.
PING_AFTER_IDLE_SECONDS = 0.5
_IDLE_SINCE = "catflow_idle_since"


def _ping_when_idle(engine: Engine) -> None:
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # just made, or in use a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                # Dead (a restart of the server, say): so are its siblings; the pool
                # replaces them all and this checkout gets a fresh connection.
                raise exc.InvalidatePoolError() from error
            raise


class _WriterQueue:
    """The turn to write to one SQLite file: threads queue on a lock, processes on a
    ``flock`` of a file beside the database; both hand over the moment it is free.

    SQLite lets one writer in at a time; the others wait in its busy handler, which
    sleeps in growing steps (up to 100 ms) and so leaves the database idle after
    the writer is done. Processes that do not use Catflow's store still meet
    SQLite's own locking.
    """

    def __init__(self, path: str | None) -> None:
        self.threads = threading.Lock()
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        if not self.threads.acquire(timeout=_BUSY_SECONDS):
            raise sqlite3.OperationalError(
                f"database is locked: no write transaction ended for {_BUSY_SECONDS} s"
            )
        try:
            if self.path is not None:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self.threads.release()
            raise

    def release(self) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self.threads.release()


class _QueuedWriterConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions take their turn (``_WriterQueue``)."""

    writers: _WriterQueue  # one per database, set by _writer_queue
    holding = False

    def begin_write(self) -> None:
        self.writers.acquire()
        self.holding = True

    def end_write(self) -> None:
        if self.holding:
            self.holding = False
            self.writers.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.end_write()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.end_write()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.end_write()


def _writer_queue(url: str) -> type[_QueuedWriterConnection]:
    """A connection class whose write turn all connections of one Database share."""
    database = make_url(url).database or ""
    in_file = database not in ("", ":memory:") and not database.startswith("file:")
    queue = _WriterQueue(f"{database}.writers" if in_file else None)
    return type("QueuedWriterConnection", (_QueuedWriterConnection,), {"writers": queue})


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so that we can
        # say BEGIN IMMEDIATE ourselves (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A deferred transaction that reads and then writes fails at once with
        # SQLITE_BUSY when another writer committed in between; taking the write
        # lock up front makes writers queue (busy_timeout) instead. Transactions
        # are kept short, so this costs little. Sessions that only read (see
        # ``new_read_session``) take no lock at all.
        read_only = bool(connection.get_execution_options().get("catflow_read_only"))
        statement = "BEGIN" if read_only else "BEGIN IMMEDIATE"
        raw = connection.connection.dbapi_connection
        queued = not read_only and isinstance(raw, _QueuedWriterConnection)
        try:
            if queued:
                raw.begin_write()
            try:
                # Said on the driver's connection: through SQLAlchemy's statement
                # machinery it took ~150 us of CPU per transaction, now ~120.
                raw.execute(statement)
            except BaseException:
                if queued:
                    raw.end_write()
                raise
        except sqlite3.Error as error:
            # Wrapped as SQLAlchemy wraps the driver's errors, so callers that handle
            # store trouble (OperationalError) see these too.
            raise exc.DBAPIError.instance(statement, None, error, sqlite3.Error) from error
