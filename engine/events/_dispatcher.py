"""The dispatcher: turns committed record events into process instances, in order.

Events are read in id order. For one record, id order is commit order (a change
locks the record row before it writes its event), which is all the ordering the
serial key needs. Each (event, rule) pair yields at most one instance: a unique
key in the database, not this code, guarantees it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import bindparam, delete, select, text, update
from sqlalchemy.orm import Session

from engine.catalogs import CatalogDef
from engine.errors import CatflowError, NotFound
from engine.store import Database, InstanceRow, OutboxEvent, OutboxValues, utcnow

from ._triggers import PENDING, PendingEvent, event_dict, match

log = logging.getLogger("catflow.dispatcher")


class InstanceStarter(Protocol):
    """How the dispatcher starts instances (the runtime provides it; events does not
    depend on runtime). ``prepare`` does the work that needs no write lock."""

    def prepare(self, session: Session, process_id: str, variables: dict[str, Any]) -> object:
        """The start of an instance of the process's latest version; NotFound if none."""

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
        """Insert the prepared instance; its id, or None if this event and rule have
        their instance already (then nothing is written)."""


@dataclass
class DispatchReport:
    events: int = 0
    instances: list[int] = field(default_factory=list)
    held: int = 0  # events left for later (e.g. a process not deployed yet)


@dataclass
class _Start:
    rule_key: str
    prepared: object
    cause: dict[str, Any]


@dataclass
class _Plan:
    """What one event leads to, worked out before the write transaction."""

    event_id: int
    key: tuple[str, int]  # catalog and record id: the serial key's parts
    starts: list[_Start] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # per rule; "started" notes come later
    held: str | None = None  # why the event must wait (no such process deployed yet)


def dispatch_pending(
    db: Database,
    catalogs: dict[str, CatalogDef],
    starter: InstanceStarter,
    batch: int = 200,
) -> DispatchReport:
    """Start the instances of the events not yet dispatched, oldest first.

    Matching rules (conditions run in the sandbox) and building each instance's
    start state happen in a read-only transaction; the write transaction that
    records the result is short, so record writers are not kept waiting.
    """
    report = DispatchReport()
    with db.read_session() as session:
        rows = session.connection().execute(PENDING, {"batch": batch})
        events = [PendingEvent(**row._mapping) for row in rows]
        plans = [_plan(session, event, catalogs.get(event.catalog), starter) for event in events]
    if not plans:
        return report
    with db.session() as session:
        if not _dispatch_lock(session):
            return report  # another dispatcher is at work; instance order needs just one
        pending = set(
            session.scalars(
                select(OutboxEvent.id).where(
                    OutboxEvent.id.in_([p.event_id for p in plans]),
                    OutboxEvent.dispatched_at.is_(None),
                )
            )
        )
        held_keys: set[tuple[str, int]] = set()
        dispatched: list[dict[str, Any]] = []
        for plan in plans:
            if plan.event_id not in pending:
                continue  # another dispatcher did it meanwhile
            if plan.key in held_keys or plan.held is not None:
                held_keys.add(plan.key)  # later events of this record wait too: order
                report.held += 1
                if plan.held is not None:
                    session.execute(
                        update(OutboxEvent)
                        .where(OutboxEvent.id == plan.event_id)
                        .values(dispatch_note=f"held: {plan.held}")
                    )
                continue
            notes = list(plan.notes)
            for start in plan.starts:
                instance_id = _start(session, plan, start, starter)
                report.instances.append(instance_id)
                notes.append(f"{start.rule_key}: started instance {instance_id}")
            dispatched.append(
                {"event_id": plan.event_id, "note": "; ".join(notes) or "no trigger rule matched"}
            )
        if dispatched:  # one statement each for the batch (executemany)
            connection = session.connection()
            connection.execute(_DISPATCHED, [{**d, "now": utcnow()} for d in dispatched])
            connection.execute(_VALUES_DONE, [{"event_id": d["event_id"]} for d in dispatched])
            report.events += len(dispatched)
    return report


# An event done with: when, and what came of it.
_DISPATCHED = (
    update(OutboxEvent)
    .where(OutboxEvent.id == bindparam("event_id"))
    .values(
        dispatched_at=bindparam("now", type_=OutboxEvent.dispatched_at.type),
        dispatch_note=bindparam("note"),
    )
)
# Its values went to the instances as their variables (record, old); the event keeps
# what changed, who changed it and when.
_VALUES_DONE = delete(OutboxValues).where(OutboxValues.event_id == bindparam("event_id"))


def _plan(
    session: Session,
    event: PendingEvent,
    definition: CatalogDef | None,
    starter: InstanceStarter,
) -> _Plan:
    plan = _Plan(event.id, (event.catalog, event.record_id))
    described = event_dict(event)
    for rule in definition.triggers if definition else ():
        result = match(rule, event)
        if not result.matched:
            if rule.on == event.kind:  # other kinds' rules go without saying
                plan.notes.append(f"{rule.key}: {result.reason}")
            if result.failed:
                log.warning(
                    "trigger condition failed; no instance started",
                    extra={
                        "event_id": event.id,
                        "catalog": event.catalog,
                        "record_id": event.record_id,
                        "rule": rule.key,
                        "reason": result.reason,
                    },
                )
            continue
        variables: dict[str, Any] = {
            **rule.variables,
            "record": event.new if event.new is not None else event.old,
            "old": event.old,
            "event": described,
        }
        try:
            prepared = starter.prepare(session, rule.process, variables)
        except NotFound as exc:
            log.error("event held: %s", exc.message, extra={"event_id": event.id})
            plan.held = exc.message
            return plan
        cause = {"event_id": event.id, "rule": rule.key, **described["cause"]}
        plan.starts.append(_Start(rule.key, prepared, cause))
    return plan


# Per-record order rests on instances being created in event order, so only one
# dispatcher may work at a time. SQLite's BEGIN IMMEDIATE already serialises
# writers; PostgreSQL gets a transaction-scoped advisory lock.
_DISPATCH_LOCK_KEY = 0x6361_7466_6C6F_77  # "catflow"


def _dispatch_lock(session: Session) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(
        session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _DISPATCH_LOCK_KEY})
    )


def _start(session: Session, plan: _Plan, start: _Start, starter: InstanceStarter) -> int:
    catalog, record_id = plan.key
    made = starter.start(
        session,
        start.prepared,
        cause=start.cause,
        serial_key=f"{catalog}:{record_id}",
        event_id=plan.event_id,
        rule_key=start.rule_key,
        record=plan.key,
    )
    if made is not None:
        return made
    # This event and rule have their instance already (another dispatcher, or one
    # that died before marking the event dispatched): that one is the instance.
    found = session.scalar(
        select(InstanceRow.id).where(
            InstanceRow.event_id == plan.event_id, InstanceRow.rule_key == start.rule_key
        )
    )
    if found is None:
        raise CatflowError(
            f"event {plan.event_id}, rule {start.rule_key}: no instance was made, and none "
            "exists; the dispatcher retries the event"
        )
    return found
