"""Instance states, and which of them hold back later instances of the same record."""

QUEUED = "queued"  # created, not started: waiting for a worker or for an earlier instance
RUNNING = "running"
WAITING = "waiting"  # a timer, a user task, a message, or a back-off
COMPLETED = "completed"
INCIDENT = "incident"  # failed; needs a person
SUSPENDED = "suspended"
CANCELLED = "cancelled"

ALL_STATES = (QUEUED, RUNNING, WAITING, COMPLETED, INCIDENT, SUSPENDED, CANCELLED)
FINAL_STATES = (COMPLETED, CANCELLED)
# An instance does not start while an earlier one for the same record is in one of these.
BLOCKING_STATES = (QUEUED, RUNNING, WAITING, INCIDENT, SUSPENDED)
# States a worker may pick an instance up in (when it is due).
RUNNABLE_STATES = (QUEUED, RUNNING, WAITING)
