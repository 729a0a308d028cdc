"""PostgreSQL as a restart leaves it: the backends of a pool's connections terminated."""

from __future__ import annotations

import contextlib

from sqlalchemy import create_engine, text

from engine.store import Database


def pooled_backends(db: Database) -> list[int]:
    """The backend of every connection idle in ``db``'s pool (all taken out at once)."""
    with contextlib.ExitStack() as held:
        conns = [held.enter_context(db.engine.connect()) for _ in range(db.engine.pool.checkedin())]
        return [int(c.execute(text("SELECT pg_backend_pid()")).scalar_one()) for c in conns]


def terminate(db_url: str, pids: list[int]) -> None:
    """End those backends, as a restart of PostgreSQL would."""
    admin = create_engine(db_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for pid in pids:
                ended = conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                assert ended.scalar(), f"backend {pid} could not be terminated"
    finally:
        admin.dispose()
