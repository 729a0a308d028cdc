"""Matching a record event against a catalog's trigger rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.catalogs import TriggerDef
from engine.sandbox import ScriptError, run_limited
from engine.store import OutboxEvent


@dataclass(frozen=True)
class Match:
    rule: TriggerDef
    matched: bool
    reason: str
    failed: bool = False  # the rule's condition raised: a designer must look


def event_dict(event: OutboxEvent) -> dict[str, Any]:
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


def match(rule: TriggerDef, event: OutboxEvent) -> Match:
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
