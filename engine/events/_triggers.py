"""Matching a record event against a catalog's trigger rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select

from engine.catalogs import TriggerDef
from engine.sandbox import ScriptError, run_limited
from engine.store import OutboxEvent, OutboxValues


@dataclass(frozen=True)
class PendingEvent:
    """An outbox event not yet dispatched, with its record values, as the dispatcher
    reads it (plain values: building ORM objects for a batch cost more than matching)."""

    id: int
    catalog: str
    record_id: int
    kind: str
    changed: list[str]
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    cause_kind: str
    cause_user: str | None
    cause_instance_id: int | None
    cause_process_id: str | None
    created_at: datetime | None


# The oldest events not yet dispatched, with their values; ``batch`` of them.
PENDING = (
    select(
        OutboxEvent.id,
        OutboxEvent.catalog,
        OutboxEvent.record_id,
        OutboxEvent.kind,
        OutboxEvent.changed,
        OutboxValues.old,
        OutboxValues.new,
        OutboxEvent.cause_kind,
        OutboxEvent.cause_user,
        OutboxEvent.cause_instance_id,
        OutboxEvent.cause_process_id,
        OutboxEvent.created_at,
    )
    .outerjoin(OutboxValues, OutboxValues.event_id == OutboxEvent.id)
    .where(OutboxEvent.dispatched_at.is_(None))
    .order_by(OutboxEvent.id)
    .limit(bindparam("batch"))
)


@dataclass(frozen=True)
class Match:
    rule: TriggerDef
    matched: bool
    reason: str
    failed: bool = False  # the rule's condition raised: a designer must look


def event_dict(event: OutboxEvent | PendingEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "catalog": event.catalog,
        "record_id": event.record_id,
        "kind": event.kind,
        "changed": list(event.changed),
        "cause": {
            k: v
            for k, v in {
                "kind": event.cause_kind,
                "user": event.cause_user,
                "instance_id": event.cause_instance_id,
                "process_id": event.cause_process_id,
            }.items()
            if v is not None
        },
        "created_at": event.created_at.isoformat() if event.created_at else None,
    }


def match(rule: TriggerDef, event: OutboxEvent | PendingEvent) -> Match:
    if rule.on != event.kind:
        return Match(rule, False, f"rule is for {rule.on} events")
    if rule.on == "updated" and rule.fields and not set(rule.fields) & set(event.changed):
        return Match(rule, False, f"none of {', '.join(rule.fields)} changed")
    if (
        rule.ignore_own_writes
        and event.cause_kind == "instance"
        and event.cause_process_id == rule.process
    ):
        return Match(
            rule, False, f"written by instance {event.cause_instance_id} of {rule.process} itself"
        )
    if rule.when:
        scope = {"new": event.new, "old": event.old, "event": event_dict(event)}
        try:
            if not run_limited("eval", rule.when, scope):
                return Match(rule, False, f"condition {rule.when!r} is false")
        except ScriptError as err:
            return Match(rule, False, f"condition {rule.when!r} failed: {err.message}", True)
    return Match(rule, True, "matched")
