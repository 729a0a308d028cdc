"""Running instances: claim with a lease, advance, checkpoint, and record the outcome.

Each step that writes (a ``records.*`` write, say) commits its writes, the new
workflow state and the step log in one transaction, so a crash never leaves a
write without the checkpoint that records it: a replay cannot repeat it. Pure
steps (scripts, gateways) are checkpointed with the next write or at the end;
after a crash they simply run again.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.dml import Update

from engine import metrics
from engine.bpmn import Failure, Outcome, ProcessRun, TaskInfo
from engine.catalogs import Cause, PlannedUpdate, Record, RecordMoved, RecordService
from engine.components import OPERATORS, OperatorContext
from engine.components.outbound import HttpClient
from engine.errors import CatflowError, NotFound, RetryLater
from engine.sandbox import Limits
from engine.store import (
    Database,
    IncidentRow,
    InstanceRow,
    OutboxEvent,
    ProcessVersionRow,
    StepRow,
    learn_dictionary,
    pack,
    pack_json,
    unpack,
    utcnow,
)

from . import _states as S
from ._instances import limits_of

log = logging.getLogger("catflow.executor")


def due_now() -> ColumnElement[bool]:
    """What makes an instance one a worker could take now: runnable, due, not leased,
    and not queued behind an earlier instance of the same record."""
    return _due_at(utcnow())


def _due_at(now: Any) -> ColumnElement[bool]:
    """``due_now`` as of ``now``: a time, or a bound parameter of a prepared statement."""
    earlier = aliased(InstanceRow)
    blocked = exists().where(
        earlier.serial_key == InstanceRow.serial_key,
        earlier.id < InstanceRow.id,
        earlier.state.in_(S.BLOCKING_STATES),
    )
    return and_(
        InstanceRow.state.in_(S.RUNNABLE_STATES),
        InstanceRow.due_at <= now,
        or_(InstanceRow.lease_expires_at.is_(None), InstanceRow.lease_expires_at < now),
        or_(InstanceRow.state != S.QUEUED, InstanceRow.serial_key.is_(None), ~blocked),
    )


@functools.cache
def _claim_statement(dialect: str, by_id: bool) -> Update:
    """The claim as one prepared statement (built once: building and hashing it anew
    cost about a millisecond per run). Parameters: now, owner, expires and, ``by_id``,
    instance_id."""
    now = bindparam("now", type_=InstanceRow.due_at.type)
    if by_id:
        # Only if it is due, too: an id from the broker may be stale (the instance
        # has since gone to wait for a timer or a back-off) or, re-sent, early.
        which = and_(InstanceRow.id == bindparam("instance_id"), _due_at(now))
    else:
        first_due = (
            select(InstanceRow.id)
            .where(_due_at(now))
            .order_by(InstanceRow.due_at, InstanceRow.id)
            .limit(1)
            .correlate(None)
        )
        if dialect == "postgresql":  # concurrent claims skip rows another one holds
            first_due = first_due.with_for_update(skip_locked=True)
        which = InstanceRow.id == first_due.scalar_subquery()
    return (
        update(InstanceRow)
        .where(
            which,
            InstanceRow.state.in_(S.RUNNABLE_STATES),
            or_(InstanceRow.lease_expires_at.is_(None), InstanceRow.lease_expires_at < now),
        )
        .values(
            lease_owner=bindparam("owner"),
            lease_expires_at=bindparam("expires", type_=InstanceRow.lease_expires_at.type),
            runs=InstanceRow.runs + 1,
            state=case((InstanceRow.state == S.QUEUED, S.RUNNING), else_=InstanceRow.state),
            started_at=func.coalesce(InstanceRow.started_at, now),
        )
        .returning(
            InstanceRow.id,
            InstanceRow.process_id,
            InstanceRow.version_id,
            InstanceRow.workflow,
            InstanceRow.started_at,
            InstanceRow.record_catalog,
            InstanceRow.record_id,
            # When the record change that started it was committed (for a metric).
            select(OutboxEvent.created_at)
            .where(OutboxEvent.id == InstanceRow.event_id)
            .scalar_subquery()
            .label("changed_at"),
        )
    )


# Due instances, oldest due first (prepared once, like the claim): the scheduler asks
# this many times a second.
_DUE_IDS = (
    select(InstanceRow.id, InstanceRow.runs)
    .where(_due_at(bindparam("now", type_=InstanceRow.due_at.type)))
    .order_by(InstanceRow.due_at, InstanceRow.id)
    .limit(bindparam("limit"))
)


@dataclass(frozen=True)
class _Claimed:
    """What a run needs of an instance row, as the claim returned it."""

    instance_id: int
    now: datetime
    process_id: str
    version_id: int
    workflow: str | bytes  # bytes: packed against the version's dictionary
    started_at: datetime | None
    changed_at: datetime | None  # of the record change that started it, if one did
    record: tuple[str, int] | None


@dataclass(frozen=True)
class _Version:
    id: int
    spec: str
    limits: Limits
    on_incident: dict[str, Any] | None
    dictionary: bytes | None  # what its instances' values are packed against, once learned


class LeaseLost(Exception):
    """Another worker took the instance over (our lease expired); our work is discarded."""


# Where a step's planned record updates wait for its commit (in the step's session).
_PLANNED = "catflow_planned_updates"


class _RecordsForInstance:
    """The record service as an operator sees it: changes caused by this instance.

    With ``planner`` (a database to read from), an update is worked out in a read
    session and written only when the step commits, with its checkpoint
    (``write_planned_updates``). On SQLite a write transaction holds the one write
    lock from its first write to its commit; an update written at once held it while
    the rest of the run went on — serialising the state, packing the step log — and
    that hold, not CPU, bounded how many instances all workers together finished.
    A record another writer changed meanwhile makes the commit fail (RecordMoved);
    the run is then done again with its updates written at once, under the lock.
    """

    def __init__(
        self, service: RecordService, cause: Cause, planner: Database | None = None
    ) -> None:
        self.service = service
        self.cause = cause
        self.planner = planner

    def get(self, session: Session, catalog: str, record_id: int) -> dict[str, Any]:
        return self.service.get(session, catalog, record_id).as_dict()

    def find(
        self, session: Session, catalog: str, where: Mapping[str, Any], limit: int
    ) -> list[dict[str, Any]]:
        found = self.service.matching(session, catalog, dict(where), limit=limit)
        return [r.as_dict() for r in found]

    def create(
        self, session: Session, catalog: str, data: Mapping[str, Any], idempotency_key: str
    ) -> dict[str, Any]:
        record = self.service.create(
            session, catalog, data, self.cause, idempotency_key=idempotency_key
        )
        return record.as_dict()

    def update(
        self, session: Session, catalog: str, record_id: int, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        if self.planner is None:
            return self.service.update(session, catalog, record_id, data, self.cause).as_dict()
        with self.planner.read_session() as reading:
            planned = self.service.plan_update(reading, catalog, record_id, data, self.cause)
        if isinstance(planned, Record):
            return planned.as_dict()  # nothing changes: nothing to write
        session.info.setdefault(_PLANNED, []).append(planned)
        return planned.record.as_dict()

    def delete(self, session: Session, catalog: str, record_id: int) -> bool:
        try:
            self.service.delete(session, catalog, record_id, self.cause)
        except NotFound:
            return False
        return True


@dataclass
class _Steps:
    """The hooks ProcessRun calls around each task."""

    executor: Executor
    instance_id: int
    process_id: str
    version: _Version
    plan_updates: bool = True  # record updates written at the commit (_RecordsForInstance)
    run: ProcessRun | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)  # StepRow values
    open_session: Session | None = None  # the writes of the last step that wrote
    open_step_done: bool = False  # whether that step finished (else its writes are void)
    started_at: datetime | None = None
    started: float = 0.0
    notes: list[str] = field(default_factory=list)
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    tasks_run: int = 0
    record: tuple[str, int] | None = None  # the record that started the instance
    # Step-log values of this run, while the version has no dictionary to learn from.
    samples: list[Any] = field(default_factory=list)

    def task_started(self, task: TaskInfo) -> None:
        if self.open_session is not None and task.is_element and task.type != "EndEvent":
            # A step that writes is committed, with its checkpoint, before the next
            # step that may call out, run a script or wait; only SpiffWorkflow's own
            # bookkeeping and end events run while its transaction stays open.
            self._commit_open()
        self.started_at = utcnow()
        self.started = time.perf_counter()
        self.notes = []
        self.exchanges = []

    def call_service(self, task: TaskInfo, operator: str, params: dict[str, Any]) -> Any:
        op = OPERATORS.get(operator)
        if op is None:
            raise CatflowError(f"unknown service operator {operator!r}")
        db = self.executor.db
        session = db.new_session() if op.writes else db.new_read_session()
        session.begin()
        ctx = OperatorContext(
            instance_id=self.instance_id,
            process_id=self.process_id,
            task_id=task.task_id,
            element_id=task.element_id,
            session=session,
            records=_RecordsForInstance(
                self.executor.records,
                Cause.instance(self.instance_id, self.process_id),
                db if self.plan_updates else None,
            ),
            http_client=self.executor.http,
            attempts=task.attempts,
        )
        try:
            result = op.run(ctx, params)
        except STORE_TROUBLE as exc:
            # The database, not the step, failed: the step is tried again later (the
            # instance waits), as a throttled call would be; it is not an incident,
            # nor an attempt of the step (an HTTP call keeps all its retries). The
            # wait doubles each time, up to STORE_RETRY_MAX_SECONDS: an outage of
            # hours is waited out without a worker polling a dead database every 10 s.
            _end_quietly(session)
            put_offs = task.put_offs + 1
            raise RetryLater(
                min(STORE_RETRY_MAX_SECONDS, STORE_RETRY_SECONDS * 2 ** (put_offs - 1)),
                f"the database could not be reached or was busy ({_first_line(exc)})",
                task.attempts,
                put_offs=put_offs,
            ) from exc
        except BaseException:
            session.rollback()
            session.close()
            raise
        finally:
            # Kept whether the call worked or not: what was called is what operators need.
            self.notes.extend(ctx.notes)
            self.exchanges.extend(ctx.exchanges)
        if op.writes:
            # Committed with a checkpoint before the next step that does anything
            # (see task_started), or with the end of this run if none comes first:
            # a write never commits without the state that records it.
            self.open_session = session
            self.open_step_done = False
        else:
            session.rollback()
            session.close()
        return result

    def task_finished(
        self, task: TaskInfo, outcome: str, changed: dict[str, Any], message: str | None
    ) -> None:
        self.tasks_run += 1
        if task.is_element:
            seconds = time.perf_counter() - self.started
            metrics.observe_step(task.type, seconds)
            text = "\n".join([*self.notes, *([message] if message else [])]) or None
            trimmed, exchanges = _trim(changed) or None, _cap(self.exchanges)
            if self.version.dictionary is None:
                self.samples += [v for v in (exchanges, trimmed) if v]
            self.pending.append(
                {
                    "instance_id": self.instance_id,
                    "task_id": task.task_id,
                    "element_id": task.element_id,
                    "element_name": task.name,
                    "element_type": task.type,
                    "outcome": outcome,
                    "started_at": self.started_at or utcnow(),
                    "duration_ms": seconds * 1000,
                    "changed": trimmed,
                    "message": text,
                    "worker": self.executor.worker_name,
                    "exchanges": exchanges,
                }
            )
        self.notes = []
        self.exchanges = []
        if self.open_session is not None:
            self.open_step_done = True

    def _commit_open(self) -> None:
        """Commit the open step's writes together with a checkpoint of the state now."""
        assert self.open_session is not None and self.run is not None
        session, self.open_session = self.open_session, None
        # Packed before the transaction's first write: on SQLite the one write lock is
        # held from then until the commit.
        dictionary = self.version.dictionary
        workflow = pack(self.run.dump().encode(), dictionary)
        step_rows = _pack_steps(self.pending, dictionary)
        with _committed(session):
            self.executor.write_planned_updates(session)
            self.executor.save_checkpoint(session, self.instance_id, workflow, step_rows)
            self.pending = []

    def discard(self) -> None:
        if self.open_session is not None:
            self.open_session.rollback()
            self.open_session.close()
            self.open_session = None


# Errors of the database itself (a lost connection, a lock or statement timeout, a
# serialisation failure), as opposed to errors in what a step asked of it.
STORE_TROUBLE = (OperationalError, InterfaceError)
STORE_RETRY_SECONDS = 10.0  # a step that met them runs again after this long, at first
STORE_RETRY_MAX_SECONDS = 300.0


def _end_quietly(session: Session) -> None:
    """Roll back and close a session whose connection may be gone."""
    with contextlib.suppress(Exception):
        session.rollback()
    with contextlib.suppress(Exception):
        session.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


@contextmanager
def _committed(session: Session) -> Iterator[None]:
    """Commit ``session`` when the block ends, roll it back if it raises; close it."""
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# A checkpoint: the workflow state, fenced by the lease (prepared once, like the claim).
_CHECKPOINT = (
    update(InstanceRow)
    .where(
        InstanceRow.id == bindparam("instance_id"), InstanceRow.lease_owner == bindparam("owner")
    )
    .values(
        workflow=bindparam("workflow", type_=InstanceRow.workflow.type),
        updated_at=bindparam("now", type_=InstanceRow.updated_at.type),
        lease_expires_at=bindparam("expires", type_=InstanceRow.lease_expires_at.type),
    )
)


@functools.cache
def _finish_statement(columns: tuple[str, ...]) -> Update:
    """The end of a run: these columns set, fenced by the lease; one per set of columns."""
    table = InstanceRow.__table__.c
    return (
        update(InstanceRow)
        .where(
            InstanceRow.id == bindparam("instance_id"),
            InstanceRow.lease_owner == bindparam("owner"),
        )
        .values({name: bindparam(name, type_=table[name].type) for name in columns})
    )


_STEPS: Table = StepRow.__table__  # type: ignore[assignment]  # Core: ORM bulk inserts split rows


def _pack_steps(steps: list[dict[str, Any]], dictionary: bytes | None) -> list[dict[str, Any]]:
    """Step-log rows with their values packed against ``dictionary``, if there is one."""
    if dictionary is None:
        return steps
    return [
        {
            **step,
            "changed": _packed(step["changed"], dictionary),
            "exchanges": _packed(step["exchanges"], dictionary),
        }
        for step in steps
    ]


def _insert_steps(session: Session, rows: list[dict[str, Any]]) -> None:
    """Step-log rows in one statement (executemany), not one INSERT per row."""
    if rows:
        session.connection().execute(insert(_STEPS), rows)


def _packed(value: Any, dictionary: bytes) -> bytes | None:
    return None if value is None else pack_json(value, dictionary)


def _cap(exchanges: list[dict[str, Any]], limit: int = 20) -> list[dict[str, Any]] | None:
    """At most ``limit`` exchanges per step: the first ones and the last ones."""
    if not exchanges:
        return None
    if len(exchanges) <= limit:
        return list(exchanges)
    half = limit // 2
    skipped = {"skipped": len(exchanges) - 2 * half, "note": "exchanges left out of the log"}
    return [*exchanges[:half], skipped, *exchanges[-half:]]


def _trim(changed: dict[str, Any], limit: int = 2000) -> dict[str, Any]:
    """Keep step logs small: long values are cut, with a note of their size."""
    out: dict[str, Any] = {}
    for key, value in changed.items():
        text = json.dumps(value, default=str)
        out[key] = value if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"
    return out


class Executor:
    """Claims due instances and runs them; many may run side by side (threads, processes)."""

    def __init__(
        self,
        db: Database,
        records: RecordService,
        worker_name: str,
        lease_seconds: float,
        http: HttpClient | None = None,
    ) -> None:
        self.db = db
        self.records = records
        self.http = http
        self.worker_name = worker_name
        self.lease = timedelta(seconds=lease_seconds)
        self._held: set[int] = set()
        self._held_lock = threading.Lock()
        self._heartbeat: threading.Thread | None = None
        self._versions: dict[int, _Version] = {}

    # -- leases ----------------------------------------------------------------

    def _hold(self, instance_id: int) -> None:
        with self._held_lock:
            self._held.add(instance_id)
            if self._heartbeat is None or not self._heartbeat.is_alive():
                self._heartbeat = threading.Thread(
                    target=self._beat, name=f"lease-heartbeat-{self.worker_name}", daemon=True
                )
                self._heartbeat.start()

    def _release(self, instance_id: int) -> None:
        with self._held_lock:
            self._held.discard(instance_id)

    def _beat(self) -> None:
        """Extend the leases of instances being run, so a long step is not taken over.

        A worker that dies stops beating and its leases run out; one that only
        stalls past its lease is fenced off at its next checkpoint.
        """
        interval = max(0.05, self.lease.total_seconds() / 3)
        while True:
            time.sleep(interval)
            with self._held_lock:
                held = sorted(self._held)
                if not held:
                    self._heartbeat = None
                    return
            try:
                with self.db.session() as session:
                    session.execute(
                        update(InstanceRow)
                        .where(
                            InstanceRow.id.in_(held), InstanceRow.lease_owner == self.worker_name
                        )
                        .values(lease_expires_at=utcnow() + self.lease)
                    )
            except Exception:
                log.warning("lease heartbeat failed", exc_info=True)

    # -- claiming ---------------------------------------------------------------

    def due_instances(self, limit: int = 20) -> list[int]:
        """Instances a worker could run now, oldest due first."""
        return [instance_id for instance_id, _runs in self.due_runs(limit)]

    def due_runs(self, limit: int = 20) -> list[tuple[int, int]]:
        """``due_instances`` with how many runs each has had (one more each claim)."""
        with self.db.read_session() as session:
            rows = session.connection().execute(_DUE_IDS, {"now": utcnow(), "limit": limit})
            return [(row.id, row.runs) for row in rows]

    def checkpoint(
        self,
        session: Session,
        instance_id: int,
        run: ProcessRun,
        steps: list[dict[str, Any]],
        dictionary: bytes | None = None,
    ) -> None:
        """Save the workflow state, fenced by our lease, and the steps since the last one
        (packed against the version's ``dictionary``, if it has one)."""
        self.save_checkpoint(
            session,
            instance_id,
            pack(run.dump().encode(), dictionary),
            _pack_steps(steps, dictionary),
        )

    def save_checkpoint(
        self, session: Session, instance_id: int, workflow: bytes, step_rows: list[dict[str, Any]]
    ) -> None:
        """``checkpoint`` with the state and the step rows packed already."""
        now = utcnow()
        result = session.connection().execute(
            _CHECKPOINT,
            {
                "instance_id": instance_id,
                "owner": self.worker_name,
                "workflow": workflow,
                "now": now,
                "expires": now + self.lease,
            },
        )
        if result.rowcount != 1:
            raise LeaseLost(f"instance {instance_id}: lease lost to another worker")
        _insert_steps(session, step_rows)

    # -- running ---------------------------------------------------------------

    def run_due(self, limit: int = 20) -> list[tuple[int, str]]:
        """Run what is due now, once each; (instance id, new state) for those run."""
        done: list[tuple[int, str]] = []
        for instance_id in self.due_instances(limit):
            state = self.run_instance(instance_id)
            if state is not None:
                done.append((instance_id, state))
        return done

    def run_instance(self, instance_id: int) -> str | None:
        """Claim and advance one instance; its new state, or None if it was not ours to run."""
        taken = self._take(instance_id)
        return None if taken is None else self._run_claimed(*taken)

    def run_next(self) -> tuple[int, str | None] | None:
        """Claim the instance due first and advance it: (its id, its new state or None if
        its lease was lost meanwhile); None when nothing is due."""
        taken = self._take(None)
        return None if taken is None else (taken[0].instance_id, self._run_claimed(*taken))

    def _take(self, instance_id: int | None) -> tuple[_Claimed, _Version] | None:
        # The claim is one atomic statement; the rest only reads.
        with self.db.statement_session() as session:
            claimed = self.claim(session, instance_id)
            if claimed is None:
                return None
            version = self._version(session, claimed.version_id)
            if isinstance(claimed.workflow, bytes) and version.dictionary is None:
                version = self._with_dictionary(session, version)
            return claimed, version

    def _run_claimed(self, claimed: _Claimed, version: _Version) -> str | None:
        instance_id = claimed.instance_id
        if claimed.started_at == claimed.now and claimed.changed_at is not None:
            metrics.observe_trigger_to_start((claimed.now - claimed.changed_at).total_seconds())
        self._hold(instance_id)
        try:
            state = unpack(claimed.workflow, version.dictionary)
            for plan_updates in (True, False):
                steps = _Steps(
                    self,
                    instance_id,
                    claimed.process_id,
                    record=claimed.record,
                    version=version,
                    plan_updates=plan_updates,
                )
                try:
                    return self._advance(instance_id, steps, version.spec, state, version.limits)
                except RecordMoved as moved:
                    if not plan_updates:
                        raise  # updates written under the row lock: cannot happen
                    # Another writer changed a record this run updated: the run's work
                    # since its last checkpoint is void. Done again from there, with
                    # its updates written at once under the record's lock, it cannot
                    # meet that again.
                    log.info(
                        "record changed under a planned update; running again",
                        extra={"instance_id": instance_id, "reason": str(moved)},
                    )
                    checkpointed = self._checkpointed_state(instance_id, version)
                    if checkpointed is None:
                        return None  # our lease is gone meanwhile
                    state = checkpointed
            raise AssertionError("unreachable")
        finally:
            self._release(instance_id)

    def _checkpointed_state(self, instance_id: int, version: _Version) -> str | None:
        """The instance's state as last committed, while our lease holds; else None."""
        with self.db.read_session() as session:
            stored = session.scalar(
                select(InstanceRow.workflow).where(
                    InstanceRow.id == instance_id, InstanceRow.lease_owner == self.worker_name
                )
            )
        return None if stored is None else unpack(stored, version.dictionary)

    def claim(self, session: Session, instance_id: int | None = None) -> _Claimed | None:
        """Take the lease of an instance (``instance_id`` if it is due, or the one due
        first), count the run and mark a queued instance started — one statement; None
        if there is none.

        Without an id the choice and the claim are one atomic statement, so workers
        never race for the same instance (PostgreSQL skips rows another claim holds).
        """
        now = utcnow()
        statement = _claim_statement(session.get_bind().dialect.name, instance_id is not None)
        params: dict[str, Any] = {
            "now": now,
            "owner": self.worker_name,
            "expires": now + self.lease,
        }
        if instance_id is not None:
            params["instance_id"] = instance_id
        row = session.connection().execute(statement, params).one_or_none()
        if row is None:
            return None
        catalog, record_id = row.record_catalog, row.record_id
        return _Claimed(
            instance_id=row.id,
            now=now,
            process_id=row.process_id,
            version_id=row.version_id,
            workflow=row.workflow,
            started_at=row.started_at,
            changed_at=row.changed_at,
            record=(catalog, record_id) if catalog and record_id else None,
        )

    def _version(self, session: Session, version_id: int) -> _Version:
        """A process version's spec, limits and options; versions never change once made."""
        cached = self._versions.get(version_id)
        if cached is not None:
            return cached
        row = session.get(ProcessVersionRow, version_id)
        if row is None:
            raise NotFound(f"process version {version_id} does not exist")
        version = _Version(
            id=row.id,
            spec=row.spec,
            limits=limits_of(row),
            on_incident=(row.options or {}).get("record_on_incident"),
            dictionary=row.pack_dictionary,
        )
        self._versions[version_id] = version
        return version

    def _with_dictionary(self, session: Session, version: _Version) -> _Version:
        """``version`` with the dictionary another worker learned since we cached it."""
        dictionary = session.scalar(
            select(ProcessVersionRow.pack_dictionary).where(ProcessVersionRow.id == version.id)
        )
        version = replace(version, dictionary=dictionary)
        self._versions[version.id] = version
        return version

    def _learn(self, session: Session, version: _Version, samples: list[str]) -> _Version:
        """Set the version's dictionary from these values, unless another worker did first;
        the version as it now is."""
        learned = learn_dictionary(samples)
        result = session.execute(
            update(ProcessVersionRow)
            .where(ProcessVersionRow.id == version.id, ProcessVersionRow.pack_dictionary.is_(None))
            .values(pack_dictionary=learned)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return self._with_dictionary(session, version)
        # Not cached here: the caller caches it once this transaction has committed.
        # A dictionary whose commit failed is not in the database, and values packed
        # against it could never be read.
        return replace(version, dictionary=learned)

    def _advance(
        self, instance_id: int, steps: _Steps, spec_json: str, state_json: str, limits: Limits
    ) -> str | None:
        run: ProcessRun | None
        try:
            run = ProcessRun.load(spec_json, state_json, limits)
            steps.run = run
            outcome = run.advance(steps)
        except LeaseLost:
            steps.discard()
            log.warning(
                "lease lost", extra={"instance_id": instance_id, "worker": self.worker_name}
            )
            return None
        except RecordMoved:
            steps.discard()
            raise
        except STORE_TROUBLE as exc:
            # Lost the database between steps (a checkpoint's commit): like a crash, the
            # instance runs again from its last checkpoint once its lease runs out.
            with contextlib.suppress(Exception):
                steps.discard()
            log.warning(
                "database unavailable; the instance runs again from its last checkpoint",
                extra={"instance_id": instance_id, "error": _first_line(exc)},
            )
            return None
        except Exception as exc:  # a failure of the engine itself, not of a task
            steps.discard()
            log.exception("engine failure", extra={"instance_id": instance_id})
            outcome = Outcome(
                "failed", failure=Failure(None, "engine", f"{type(exc).__name__}: {exc}")
            )
            run = None
        try:
            return self._finish(instance_id, run, outcome, steps)
        except LeaseLost:
            log.warning(
                "lease lost", extra={"instance_id": instance_id, "worker": self.worker_name}
            )
            return None

    def _finish(
        self,
        instance_id: int,
        run: ProcessRun | None,
        outcome: Outcome,
        steps: _Steps,
    ) -> str:
        now = utcnow()
        values: dict[str, Any] = {
            "lease_owner": None,
            "lease_expires_at": None,
            "updated_at": now,
            "waiting_for": None,
        }
        state = None
        if run is not None:
            state = run.dump_finished() if outcome.status == "completed" else run.dump()
        if outcome.status == "completed":
            values.update(state=S.COMPLETED, due_at=None, ended_at=now, error=None)
        elif outcome.status == "runnable":
            values.update(state=S.RUNNING, due_at=outcome.due_at or now)
        elif outcome.status == "waiting":
            values.update(state=S.WAITING, due_at=outcome.due_at, waiting_for=outcome.waiting_for)
        else:
            failure = outcome.failure
            assert failure is not None
            values.update(state=S.INCIDENT, due_at=None, error=_error_dict(failure))
        version = steps.version
        # The first completed instance: its values are what the next ones will look
        # like, the finished state most of all (so it goes last).
        learn = (
            state is not None
            and version.dictionary is None
            and run is not None
            and outcome.status == "completed"
        )
        step_rows: list[dict[str, Any]] = []
        if not learn:  # packed before the first write (see _Steps._commit_open)
            if state is not None:
                values["workflow"] = pack(state.encode(), version.dictionary)
            step_rows = _pack_steps(steps.pending, version.dictionary)
        with self._finishing(steps) as session:
            if learn:
                assert run is not None and state is not None
                version = self._learn(session, version, [run.dump(), *steps.samples, state])
                values["workflow"] = pack(state.encode(), version.dictionary)
                step_rows = _pack_steps(steps.pending, version.dictionary)
            result = session.connection().execute(
                _finish_statement(tuple(values)),
                {**values, "instance_id": instance_id, "owner": self.worker_name},
            )
            if result.rowcount != 1:
                raise LeaseLost(f"instance {instance_id}: lease lost to another worker")
            _insert_steps(session, step_rows)
            if outcome.failure is not None:
                self._record_failure(session, instance_id, outcome.failure, steps)
                self._mark_record(session, instance_id, outcome.failure, steps)
        if learn:  # committed: the database has the dictionary now
            self._versions[version.id] = version
        log.info(
            "instance advanced",
            extra={
                "instance_id": instance_id,
                "state": values["state"],
                "tasks_run": steps.tasks_run,
            },
        )
        return str(values["state"])

    @contextmanager
    def _finishing(self, steps: _Steps) -> Iterator[Session]:
        """The transaction the run's end is written in: that of a step that wrote and is
        not committed yet (its writes, the end state and the steps commit together),
        or a new one."""
        if not steps.open_step_done:
            steps.discard()  # the step failed after its operator wrote: no such writes
        session, steps.open_session = steps.open_session, None
        if session is None:
            with self.db.session() as session:
                yield session
        else:
            with _committed(session):
                self.write_planned_updates(session)
                yield session

    def write_planned_updates(self, session: Session) -> None:
        """Write the record updates a step planned (see _RecordsForInstance), first
        thing in its commit; RecordMoved if one of the records changed meanwhile."""
        planned: list[PlannedUpdate] = session.info.pop(_PLANNED, [])
        for update_ in planned:
            self.records.write_planned(session, update_)

    def _mark_record(
        self, session: Session, instance_id: int, failure: Failure, steps: _Steps
    ) -> None:
        """Set the process's ``record_on_incident`` fields on the instance's record."""
        on_incident = steps.version.on_incident
        if on_incident is None or steps.record is None:
            return
        filled = {
            "message": failure.plain or failure.message,
            "code": failure.code or failure.kind,
            "element": failure.task.element_id if failure.task else "",
        }
        values = {
            name: _fill(value, filled) if isinstance(value, str) else value
            for name, value in on_incident.items()
        }
        catalog, record_id = steps.record
        cause = Cause.instance(instance_id, steps.process_id)
        try:
            with session.begin_nested():
                self.records.update(session, catalog, record_id, values, cause)
        except CatflowError as exc:  # the record is gone, or refuses the values
            log.warning(
                "record_on_incident not applied",
                extra={
                    "instance_id": instance_id,
                    "record": f"{catalog}:{record_id}",
                    "reason": str(exc),
                },
            )

    def _record_failure(
        self, session: Session, instance_id: int, failure: Failure, steps: _Steps
    ) -> None:
        task = failure.task
        if task is not None:
            metrics.observe_step(task.type, time.perf_counter() - steps.started)
        session.add(
            StepRow(
                instance_id=instance_id,
                task_id=task.task_id if task else "",
                element_id=task.element_id if task else "",
                element_name=task.name if task else "",
                element_type=task.type if task else "",
                outcome="failed",
                started_at=(steps.started_at if task else None) or utcnow(),
                duration_ms=(time.perf_counter() - steps.started) * 1000 if task else 0.0,
                message="\n".join([*steps.notes, failure.describe()]),
                worker=self.worker_name,
                exchanges=_cap(steps.exchanges),
            )
        )
        session.add(
            IncidentRow(
                instance_id=instance_id,
                task_id=task.task_id if task else None,
                element_id=task.element_id if task else None,
                element_name=task.name if task else None,
                line=failure.line,
                kind=failure.kind,
                message=failure.describe(),
                details={"code": failure.code, **failure.details}
                if failure.code
                else failure.details,
            )
        )


def _fill(template: str, values: dict[str, str]) -> str:
    """``{message}``, ``{code}`` and ``{element}`` filled in; other braces kept."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


def _error_dict(failure: Failure) -> dict[str, Any]:
    task = failure.task
    return {
        "kind": failure.kind,
        "message": failure.describe(),
        "task_id": task.task_id if task else None,
        "element_id": task.element_id if task else None,
        "element_name": task.name if task else None,
        "line": failure.line,
        "code": failure.code,
    }
