"""Leadership: exactly one active dispatcher and one scheduler; the others stand by.

On PostgreSQL a leader holds a session-level advisory lock on a connection of its
own. If its process dies, the connection closes, the lock is released, and a
standby's next attempt (every poll) takes over. SQLite serves one machine, where
``catflow serve`` is the only dispatcher: it always leads.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from engine.store import Database

log = logging.getLogger("catflow.leader")


def _key(role: str, schema: str) -> int:
    """A stable signed 64-bit advisory lock key for a role in one schema.

    Advisory locks are database-wide; two Catflow stores in different schemas of one
    database must not stand by for each other.
    """
    digest = hashlib.sha256(f"catflow:{schema}:{role}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Leadership:
    """Whether this process leads ``role`` (e.g. "dispatcher", "scheduler") right now.

    A leader checks that its lock's connection is still alive at most every
    ``recheck_seconds``, not on every call: the loops ask before each round, and a
    round trip each time cost the serving process more than a dispatched event. For
    that long after its connection died, a leader may work beside its successor;
    nothing depends on there being one only for that moment (the dispatcher also
    takes a lock per batch, and leases decide who runs an instance).
    """

    def __init__(
        self,
        db: Database,
        role: str,
        recheck_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.role = role
        self.recheck_seconds = recheck_seconds
        self._clock = clock
        self._checked = float("-inf")  # when the leader's connection last answered
        self._connection: Any = None
        self._lock_key = 0
        self._lock = threading.Lock()

    def held(self) -> bool:
        """True if this process leads; tries to become leader when it does not."""
        if self.db.is_sqlite:
            return True
        with self._lock:
            if self._connection is not None:
                now = self._clock()
                if now - self._checked < self.recheck_seconds:
                    return True
                if self._alive():
                    self._checked = now
                    return True
            self._drop()
            connection = self.db.engine.connect()
            try:
                schema = str(connection.execute(text("SELECT current_schema()")).scalar())
                self._lock_key = _key(self.role, schema)
                got = bool(
                    connection.execute(
                        text("SELECT pg_try_advisory_lock(:key)"), {"key": self._lock_key}
                    ).scalar()
                )
                connection.commit()
            except Exception:
                connection.invalidate()
                connection.close()
                raise
            if not got:
                connection.close()  # holds no lock: back to the pool is fine
                return False
            self._connection = connection
            self._checked = self._clock()
            log.info("leading", extra={"role": self.role})
            return True

    def _alive(self) -> bool:
        try:
            self._connection.execute(text("SELECT 1"))
            self._connection.commit()
            return True
        except Exception:
            log.warning("lost the leader's connection", extra={"role": self.role})
            return False

    def _drop(self) -> None:
        """Close the leader's database session for good (a pooled connection would keep
        its session, and with it the lock, alive)."""
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.invalidate()
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None

    def release(self) -> None:
        with self._lock:
            if self._connection is not None:
                try:
                    self._connection.execute(
                        text("SELECT pg_advisory_unlock(:key)"), {"key": self._lock_key}
                    )
                    self._connection.commit()
                except Exception:
                    pass
            self._drop()
