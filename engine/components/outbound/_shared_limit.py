"""The outbound rate limit kept in the database, for processes on several machines.

Each process's own buckets (``RateLimiter``) keep a connection's limit only within
that process. Celery workers on several machines, each with its own processes,
would together send a multiple of it — and Google answers the excess with 429s.
On PostgreSQL the buckets live in a table instead: one statement per request takes
a token (or reserves the next), timed by the database's clock, so every process
on every machine draws from the same bucket.
"""

from __future__ import annotations

from sqlalchemy import text

from engine.errors import CatflowError
from engine.store import Database

from ._client import bucket_shape

# Take a token, or reserve one at most ``max_wait`` seconds ahead (the bucket goes
# below zero by what is reserved); nothing is written when that is too far off.
_TAKE = text(
    """
    INSERT INTO rate_buckets AS b (key, tokens, updated_at)
    SELECT :key, CAST(:burst AS float8) - 1, extract(epoch FROM clock_timestamp())
    ON CONFLICT (key) DO UPDATE SET
        tokens = LEAST(CAST(:burst AS float8),
                       b.tokens + (EXCLUDED.updated_at - b.updated_at) * :rate) - 1,
        updated_at = EXCLUDED.updated_at
    WHERE LEAST(CAST(:burst AS float8),
                b.tokens + (EXCLUDED.updated_at - b.updated_at) * :rate) - 1
          >= -CAST(:max_wait AS float8) * :rate
    RETURNING tokens
    """
)
# What the bucket holds now (when a token was too far off to reserve).
_LEVEL = text(
    """
    SELECT LEAST(CAST(:burst AS float8),
                 tokens + (extract(epoch FROM clock_timestamp()) - updated_at) * :rate)
    FROM rate_buckets WHERE key = :key
    """
)


class SharedRateLimiter:
    """``RateLimiter``'s token buckets in the database (PostgreSQL): one per key for all
    processes. Same rate, same small burst, same answers."""

    def __init__(self, db: Database, per_minute: int) -> None:
        if db.is_sqlite:
            raise CatflowError("the shared rate limit needs PostgreSQL; SQLite serves one machine")
        self.db = db
        self.rate, self.burst = bucket_shape(per_minute)

    def acquire(self, key: str, max_wait_s: float) -> tuple[bool, float]:
        """(True, wait): a slot is ours in ``wait`` seconds. (False, wait): too long; not taken."""
        params = {"key": key, "burst": self.burst, "rate": self.rate, "max_wait": max_wait_s}
        with self.db.statement_session() as session:
            left = session.execute(_TAKE, params).scalar()
            if left is not None:
                return True, max(0.0, -float(left)) / self.rate
            level = float(session.execute(_LEVEL, params).scalar_one())
        return False, (1 - level) / self.rate
