"""Wake-ups inside one process: loops that poll the store look at once when they can.

The dispatcher polls the outbox, so that changes made by other processes are seen;
a change committed by this process (an API request, a process's write-back) wakes
it straight away instead of after the poll interval.
"""

from __future__ import annotations

import threading

from sqlalchemy import event
from sqlalchemy.orm import Session

_OUTBOX_KEY = "catflow_outbox_written"

# Set after a commit in this process that wrote outbox events.
outbox_written = threading.Event()


def note_outbox_write(session: Session) -> None:
    """The session wrote outbox events: wake the dispatcher once they are committed."""
    session.info[_OUTBOX_KEY] = True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_OUTBOX_KEY, False):
        outbox_written.set()
