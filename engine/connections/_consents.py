"""Consents under way: what an authorisation was started with, until the provider answers.

Kept in the database, not in the API process's memory: the provider sends the
person's browser back to whichever process the address reaches (a stand-by
behind the same name, or the same one restarted), and each answer is taken once
across all of them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete

from engine.store import ConsentRow, Database, utcnow

# How long a person has to consent at the provider.
CONSENT_SECONDS = 600.0


@dataclass(frozen=True)
class PendingConsent:
    connection: str
    redirect_uri: str
    started_by: str


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def remember_consent(
    db: Database,
    state: str,
    consent: PendingConsent,
    seconds: float = CONSENT_SECONDS,
) -> None:
    """Keep ``consent`` under its ``state`` for ``seconds``; forget those that ran out."""
    now = utcnow()
    with db.session() as session:
        session.execute(delete(ConsentRow).where(ConsentRow.expires_at <= now))
        session.add(
            ConsentRow(
                state_hash=_digest(state),
                connection=consent.connection,
                redirect_uri=consent.redirect_uri,
                started_by=consent.started_by,
                expires_at=now + timedelta(seconds=seconds),
            )
        )


def take_consent(db: Database, state: str) -> PendingConsent | None:
    """The consent started with ``state``, once (one statement takes it, so two answers
    with the same state, to two processes, cannot both have it); None if it is
    unknown, taken already or ran out."""
    with db.session() as session:
        row = session.execute(
            delete(ConsentRow)
            .where(ConsentRow.state_hash == _digest(state))
            .returning(
                ConsentRow.connection,
                ConsentRow.redirect_uri,
                ConsentRow.started_by,
                ConsentRow.expires_at,
            )
        ).one_or_none()
    if row is None or row.expires_at <= utcnow():
        return None
    return PendingConsent(row.connection, row.redirect_uri, row.started_by)
