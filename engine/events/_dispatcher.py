"""The dispatcher: turns committed record events into process instances, in order.

Events are read in id order. For one record, id order is commit order (a change
locks the record row before it writes its event), which is all the ordering the
serial key needs. Each (event, rule) pair yields at most one instance: a unique
key in the database, not this code, guarantees it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.catalogs import CatalogDef, TriggerDef
from engine.errors import NotFound
from engine.store import Database, InstanceRow, OutboxEvent, utcnow

from ._triggers import event_dict, match

log = logging.getLogger("catflow.dispatcher")


# Creates an instance of the latest version of a process; raises NotFound if none.
# The runtime provides it (events does not depend on runtime).
StartInstance = Callable[..., int]


@dataclass
class DispatchReport:
    events: int = 0
    instances: list[int] = field(default_factory=list)
    held: int = 0  # events left for later (e.g. a process not deployed yet)


def dispatch_pending(
    db: Database,
    catalogs: dict[str, CatalogDef],
    start_instance: StartInstance,
    batch: int = 200,
) -> DispatchReport:
    report = DispatchReport()
    with db.session() as session:
        if not _dispatch_lock(session):
            return report  # another dispatcher is at work; instance order needs just one
        events = list(
            session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.dispatched_at.is_(None))
                .order_by(OutboxEvent.id)
                .limit(batch)
            )
        )
        held_keys: set[tuple[str, int]] = set()
        for event in events:
            key = (event.catalog, event.record_id)
            if key in held_keys:
                report.held += 1
                continue  # an earlier event of this record is held: keep the order
            definition = catalogs.get(event.catalog)
            notes: list[str] = []
            created: list[int] = []
            try:
                for rule in definition.triggers if definition else ():
                    result = match(rule, event)
                    if not result.matched:
                        if rule.on == event.kind:  # other kinds' rules go without saying
                            notes.append(f"{rule.key}: {result.reason}")
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
                    instance_id = _start(session, event, rule, start_instance)
                    created.append(instance_id)
                    notes.append(f"{rule.key}: started instance {instance_id}")
            except NotFound as exc:
                log.error("event held: %s", exc.message, extra={"event_id": event.id})
                held_keys.add(key)
                report.held += 1
                event.dispatch_note = f"held: {exc.message}"
                continue
            event.dispatched_at = utcnow()
            event.dispatch_note = "; ".join(notes) or f"no trigger rule for {event.kind} events"
            # The values went to the instances as their variables (record, old); the
            # event keeps what changed, who changed it and when, without a third copy.
            event.old = event.new = None
            report.events += 1
            report.instances.extend(created)
    return report


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


def _start(
    session: Session,
    event: OutboxEvent,
    rule: TriggerDef,
    start_instance: StartInstance,
) -> int:
    rule_key, process_id = rule.key, rule.process
    existing = session.scalar(
        select(InstanceRow.id).where(
            InstanceRow.event_id == event.id, InstanceRow.rule_key == rule_key
        )
    )
    if existing is not None:
        return existing
    record = event.new if event.new is not None else event.old
    variables: dict[str, Any] = {
        **rule.variables,
        "record": record,
        "old": event.old,
        "event": event_dict(event),
    }
    try:
        with session.begin_nested():
            instance_id = start_instance(
                session,
                process_id,
                variables,
                cause={"event_id": event.id, "rule": rule_key, **event_dict(event)["cause"]},
                serial_key=f"{event.catalog}:{event.record_id}",
                event_id=event.id,
                rule_key=rule_key,
                record=(event.catalog, event.record_id),
            )
    except IntegrityError:
        # Another dispatcher made it first; that one is the instance.
        again = session.scalar(
            select(InstanceRow.id).where(
                InstanceRow.event_id == event.id, InstanceRow.rule_key == rule_key
            )
        )
        if again is None:
            raise
        return again
    return instance_id
