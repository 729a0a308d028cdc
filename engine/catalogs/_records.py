"""The record service: every change validated, and its event written in the same transaction.

The CLI, the HTTP API and processes' ``records.*`` operators all go through here,
each handing in the session (transaction) the change belongs to.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.errors import Conflict, NotFound, Problem, ValidationFailed
from engine.store import (
    OutboxEvent,
    OutboxValues,
    note_outbox_write,
    pack_json,
    utcnow,
)

from ._conditions import RECORDS, field_condition
from ._fields import FieldError, moment_of, normalise, parse_filter
from ._links import links_to
from ._schema import CatalogDef

DEFAULT_MAX_FIELD_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Cause:
    """Who made a change: a person (``user``), a process instance, or the system."""

    kind: str
    user: str | None = None
    instance_id: int | None = None
    process_id: str | None = None

    @classmethod
    def person(cls, name: str | None = None) -> Cause:
        if name is None:
            try:
                name = getpass.getuser()
            except (KeyError, OSError):
                name = "unknown"
        return cls(kind="user", user=name)

    @classmethod
    def instance(cls, instance_id: int, process_id: str) -> Cause:
        return cls(kind="instance", instance_id=instance_id, process_id=process_id)

    @property
    def by_process(self) -> bool:
        return self.kind != "user"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Record:
    id: int
    catalog: str
    data: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """The record as processes and ``--json`` see it: its id and its fields."""
        return {"id": self.id, **self.data}

    @classmethod
    def from_row(cls, row: Any, fields: Iterable[str] = ()) -> Record:
        """The record of ``row``, its data in the order of ``fields`` (the catalog's order).

        PostgreSQL's JSONB keeps no key order; without this, the same record would list
        its fields differently on SQLite and on PostgreSQL. ``row`` is anything with the
        records table's columns as attributes (a result row of ``_COLUMNS``).
        """
        data = _in_field_order(row.data, fields)
        return cls(row.id, row.catalog, data, row.version, row.created_at, row.updated_at)


def _in_field_order(data: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """``data`` with the catalog's fields first, in the catalog's order."""
    ordered = {f: data[f] for f in fields if f in data}
    ordered.update((k, v) for k, v in data.items() if k not in ordered)
    return ordered


@dataclass(frozen=True)
class Page:
    items: list[Record]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class PlannedUpdate:
    """An update worked out from the record as it was read, written later
    (``RecordService.write_planned``) — if the record is still at ``read_version``."""

    record: Record  # as it will be once written
    read_version: int
    data: dict[str, Any]  # the stored data to write
    changed: list[str]
    old: bytes  # the event's values, packed (pack_json) when planned, not when written
    new: bytes
    cause: Cause


class RecordMoved(Exception):
    """A planned update found its record changed since it was read (or gone)."""


class RecordService:
    """Record operations over the catalogs given; each call works inside the caller's session."""

    def __init__(
        self, catalogs: Mapping[str, CatalogDef], max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES
    ) -> None:
        self.catalogs = dict(catalogs)
        self.max_field_bytes = max_field_bytes

    def catalog(self, name: str) -> CatalogDef:
        try:
            return self.catalogs[name]
        except KeyError:
            known = ", ".join(sorted(self.catalogs)) or "none"
            raise NotFound(f"no catalog named {name!r} (known catalogs: {known})") from None

    # -- writes ---------------------------------------------------------------

    def create(
        self,
        session: Session,
        catalog: str,
        data: Mapping[str, Any],
        cause: Cause,
        *,
        idempotency_key: str | None = None,
    ) -> Record:
        """Create a record; with an ``idempotency_key``, a repeat returns the first one."""
        definition = self.catalog(catalog)
        connection = session.connection()
        if idempotency_key is not None:
            existing = connection.execute(_BY_KEY, {"key": idempotency_key}).one_or_none()
            if existing is not None:
                return self._replayed(existing, definition, idempotency_key)
        values = self._validate(session, definition, data, cause)
        _check_order(definition, values)
        now = utcnow()
        row = {
            "catalog": catalog,
            "data": values,
            "version": 1,
            "idempotency_key": idempotency_key,
            "created_at": now,
            "updated_at": now,
        }
        if idempotency_key is None:
            record_id = connection.execute(_INSERT, row).scalar_one()
        else:
            try:
                # A savepoint, so that losing the race below leaves the transaction usable.
                # (The savepoint is taken when the session's connection is asked for in it.)
                with session.begin_nested():
                    record_id = session.connection().execute(_INSERT, row).scalar_one()
            except IntegrityError:
                # Another transaction created it first; that one is the record.
                existing = connection.execute(_BY_KEY, {"key": idempotency_key}).one_or_none()
                if existing is None:
                    raise
                return self._replayed(existing, definition, idempotency_key)
        record = Record(record_id, catalog, values, 1, now, now)
        changed = [k for k, v in values.items() if v is not None]
        self._emit(session, record, "created", changed, None, record.as_dict(), cause)
        return record

    def update(
        self,
        session: Session,
        catalog: str,
        record_id: int,
        changes: Mapping[str, Any],
        cause: Cause,
    ) -> Record:
        """Change the given fields only; an update that changes nothing emits nothing."""
        planned = self.plan_update(session, catalog, record_id, changes, cause, lock=True)
        if isinstance(planned, Record):
            return planned
        self.write_planned(session, planned)  # the row is locked: it cannot have moved
        return planned.record

    def plan_update(
        self,
        session: Session,
        catalog: str,
        record_id: int,
        changes: Mapping[str, Any],
        cause: Cause,
        *,
        lock: bool = False,
    ) -> Record | PlannedUpdate:
        """``update`` worked out but not written: the record as it is if nothing would
        change, else the update to write. Reads only (and, ``lock``, locks the row)."""
        definition = self.catalog(catalog)
        row = self._row(session, catalog, record_id, lock=lock)
        values = self._validate(session, definition, changes, cause, current=row.data)
        return self._planned(row, definition, values, cause)

    def _planned(
        self, row: Any, definition: CatalogDef, values: dict[str, Any], cause: Cause
    ) -> Record | PlannedUpdate:
        """``plan_update`` of a row with values validated already."""
        changed = [k for k, v in values.items() if not _same(row.data.get(k), v)]
        if not changed:
            return Record.from_row(row, definition.fields)
        merged = {**row.data, **values}
        _check_order(definition, merged, set(changed))
        old = {"id": row.id, **row.data}
        data = _in_field_order(merged, definition.fields)
        record = Record(row.id, row.catalog, data, row.version + 1, row.created_at, utcnow())
        return PlannedUpdate(
            record,
            row.version,
            merged,
            changed,
            pack_json(old),
            pack_json(record.as_dict()),
            cause,
        )

    def write_planned(self, session: Session, planned: PlannedUpdate) -> None:
        """Write an update planned earlier, and its event; RecordMoved if the record is
        no longer at the version it was planned from (then nothing is written)."""
        record = planned.record
        written = session.connection().execute(
            _UPDATE,
            {
                "record_id": record.id,
                "read_version": planned.read_version,
                "data": planned.data,
                "version": record.version,
                "now": record.updated_at,
            },
        )
        if written.rowcount != 1:
            raise RecordMoved(
                f"{record.catalog} record {record.id} changed (or was deleted) since version "
                f"{planned.read_version} was read"
            )
        self._emit(
            session,
            record,
            "updated",
            planned.changed,
            planned.old,
            planned.new,
            planned.cause,
        )

    def delete(self, session: Session, catalog: str, record_id: int, cause: Cause) -> Record:
        """Delete a record, and take it out of the link fields of records that point at
        it (each such change an update with its own event, so their triggers run);
        Conflict, and nothing written, if that would empty a required link."""
        definition = self.catalog(catalog)
        row = self._row(session, catalog, record_id, lock=True, deleting=True)
        record = Record.from_row(row, definition.fields)
        for linking in links_to(session, self.catalogs, catalog, row.id):
            source = self.catalog(linking.catalog)
            try:
                linked_row = self._row(session, linking.catalog, linking.record_id, lock=True)
            except NotFound:
                continue  # deleted meanwhile: it links to nothing any more
            planned = self._planned(linked_row, source, linking.values(linked_row.data), cause)
            if isinstance(planned, PlannedUpdate):
                self.write_planned(session, planned)
        session.connection().execute(_DELETE, {"record_id": row.id})
        self._emit(session, record, "deleted", list(record.data), record.as_dict(), None, cause)
        return record

    # -- reads ----------------------------------------------------------------

    def get(self, session: Session, catalog: str, record_id: int) -> Record:
        definition = self.catalog(catalog)
        return Record.from_row(self._row(session, catalog, record_id), definition.fields)

    def find(
        self,
        session: Session,
        catalog: str,
        filters: Mapping[str, Any] | None = None,
        *,
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        """Records whose fields equal the filter values (a list value means "one of"),
        one page of them, and how many there are in all."""
        if offset < 0:
            raise ValidationFailed(f"offset cannot be negative, got {offset}")
        definition, where = self._where(session, catalog, filters, limit)
        connection = session.connection()
        total = connection.execute(select(func.count()).select_from(_T).where(where)).scalar() or 0
        rows = connection.execute(
            select(*_COLUMNS).where(where).order_by(_T.c.id).limit(limit).offset(offset)
        )
        items = [Record.from_row(r, definition.fields) for r in rows]
        return Page(items, total, limit, offset)

    def matching(
        self,
        session: Session,
        catalog: str,
        filters: Mapping[str, Any] | None = None,
        *,
        limit: int = 50,
    ) -> list[Record]:
        """The first ``limit`` records ``find`` would give, without counting them all."""
        if filters is not None and filters.keys() == {"id"}:
            # By ids only, as processes mostly look records up: a prepared statement.
            definition = self.catalog(catalog)
            _check_limit(limit)
            ids = _ids(catalog, filters["id"])
            if not ids:
                return []
            rows = session.connection().execute(
                _BY_IDS, {"catalog": catalog, "ids": ids, "limit": limit}
            )
            return [Record.from_row(r, definition.fields) for r in rows]
        definition, where = self._where(session, catalog, filters, limit)
        if any(isinstance(value, list) and not value for value in (filters or {}).values()):
            return []  # "one of" nothing: no record can match, no query needed
        rows = session.connection().execute(
            select(*_COLUMNS).where(where).order_by(_T.c.id).limit(limit)
        )
        return [Record.from_row(r, definition.fields) for r in rows]

    def _where(
        self, session: Session, catalog: str, filters: Mapping[str, Any] | None, limit: int
    ) -> tuple[CatalogDef, ColumnElement[bool]]:
        definition = self.catalog(catalog)
        _check_limit(limit)
        conditions: list[ColumnElement[bool]] = [_T.c.catalog == catalog]
        dialect = session.get_bind().dialect.name
        for fname, value in (filters or {}).items():
            if fname == "id":
                conditions.append(_T.c.id.in_(_ids(catalog, value)))
                continue
            fdef = definition.fields.get(fname)
            if fdef is None:
                raise ValidationFailed(
                    f"cannot filter {catalog} on {fname!r}",
                    [Problem(f"no field {fname!r}", where=catalog, hint=_known(definition))],
                )
            conditions.append(field_condition(fdef, value, dialect))
        return definition, and_(*conditions)

    def parse_where(self, catalog: str, expressions: list[str]) -> dict[str, Any]:
        """``["field=value", ...]`` from the command line, typed by each field's type."""
        definition = self.catalog(catalog)
        filters: dict[str, Any] = {}
        problems: list[Problem] = []
        for expr in expressions:
            fname, sep, raw = expr.partition("=")
            fname = fname.strip()
            if not sep:
                problems.append(Problem(f"{expr!r} is not FIELD=VALUE", where="--where"))
                continue
            if fname == "id":
                try:
                    filters["id"] = _id(raw)
                except FieldError:
                    problems.append(Problem(f"{raw!r} is not a record id", where="--where id"))
                continue
            fdef = definition.fields.get(fname)
            if fdef is None:
                problems.append(
                    Problem(f"no field {fname!r} in {catalog}", "--where", _known(definition))
                )
                continue
            try:
                filters[fname] = parse_filter(fdef, raw)
            except FieldError as exc:
                problems.append(Problem(str(exc), where=f"--where {fname}"))
        if problems:
            raise ValidationFailed("the filters were refused", problems)
        return filters

    # -- internals ------------------------------------------------------------

    def _replayed(self, row: Any, definition: CatalogDef, key: str) -> Record:
        if row.catalog != definition.name:
            # Keys are unique across catalogs; the same key here means a mix-up, not a replay.
            raise Conflict(
                f"idempotency key {key!r} was already used to create {row.catalog} "
                f"record {row.id}, not a {definition.name} record",
                [Problem("use one key per created record", where=definition.name)],
            )
        return Record.from_row(row, definition.fields)

    def _row(
        self,
        session: Session,
        catalog: str,
        record_id: int,
        lock: bool = False,
        deleting: bool = False,
    ) -> Any:
        """The record's row (its columns as attributes), or NotFound; ``lock``ed against
        other writers of it, and ``deleting``, against writers linking to it too."""
        statement = (_ROW_FOR_DELETE if deleting else _ROW_LOCKED) if lock else _ROW
        row = session.connection().execute(statement, {"id": record_id, "catalog": catalog}).first()
        if row is None:
            raise NotFound(f"{catalog} record {record_id} does not exist")
        return row

    def _validate(
        self,
        session: Session,
        definition: CatalogDef,
        data: Mapping[str, Any],
        cause: Cause,
        *,
        current: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The values of ``data`` normalised, or ValidationFailed naming each problem.

        ``current``: the record's data when this is an update of it (None: a create,
        where every field gets a value, its default if none was given).
        """
        creating = current is None
        if not isinstance(data, Mapping):
            raise ValidationFailed(
                f"{definition.name} record data must be an object of field values",
                [Problem(f"got {type(data).__name__}", where=definition.name)],
            )
        problems: list[Problem] = []
        values: dict[str, Any] = {}
        for fname, value in data.items():
            where = f"{definition.name}.{fname}"
            fdef = definition.fields.get(fname)
            if fdef is None:
                if fname != "id":
                    problems.append(Problem("unknown field", where, _known(definition)))
                continue
            if fdef.readonly and not cause.by_process:
                problems.append(
                    Problem("is read-only: it is set by processes, not by users", where)
                )
                continue
            try:
                values[fname] = normalise(fdef, value)
            except FieldError as exc:
                problems.append(Problem(str(exc), where))
                continue
            size = len(json.dumps(values[fname], ensure_ascii=False).encode())
            if size > self.max_field_bytes:
                problems.append(
                    Problem(
                        f"is {size:,} bytes as JSON; at most {self.max_field_bytes:,} allowed",
                        where,
                        "store large content elsewhere and keep a link, or raise "
                        "CATFLOW_MAX_FIELD_BYTES",
                    )
                )
        if creating:
            # Every field present, in the catalog's order; defaults where none was given.
            values = {
                fname: values.get(fname, fdef.default) for fname, fdef in definition.fields.items()
            }
        refused = {p.where for p in problems}
        for fname, fdef in definition.fields.items():
            where = f"{definition.name}.{fname}"
            if where in refused:
                continue
            if fdef.required and fname in values and values[fname] in (None, "", []):
                problems.append(Problem("is required", where, f"give a {fdef.type} value"))
        problems.extend(self._check_links(session, definition, values, current or {}))
        if problems:
            raise ValidationFailed(f"the {definition.name} record was refused", problems)
        return values

    def _check_links(
        self,
        session: Session,
        definition: CatalogDef,
        values: Mapping[str, Any],
        current: Mapping[str, Any],
    ) -> list[Problem]:
        """A problem for each linked record that does not exist; those that do stay
        locked against deletion until this write commits (see ``_LINKED``).

        Only links the write adds are checked: one the record has already is taken
        out by whoever deletes its target, and that delete waits for this record's
        row, which the writer holds. Locking the target as well would take the two
        rows in the opposite order to the delete: a deadlock on PostgreSQL.
        """
        problems: list[Problem] = []
        for fname, value in values.items():
            fdef = definition.fields[fname]
            if fdef.type != "link" or value in (None, []):
                continue
            wanted = _link_set(value) - _link_set(current.get(fname))
            if not wanted:
                continue
            found = set(session.scalars(_LINKED, {"catalog": fdef.catalog, "ids": list(wanted)}))
            for missing in sorted(wanted - found):
                problems.append(
                    Problem(
                        f"{fdef.catalog} record {missing} does not exist",
                        f"{definition.name}.{fname}",
                    )
                )
        return problems

    def _emit(
        self,
        session: Session,
        record: Record,
        kind: str,
        changed: list[str],
        old: dict[str, Any] | bytes | None,
        new: dict[str, Any] | bytes | None,
        cause: Cause,
    ) -> None:
        """The change's outbox event; ``old`` and ``new`` as dicts or packed already
        (``pack_json``)."""
        # Two plain statements: the ORM's unit of work for an event and its values
        # cost a quarter of a millisecond more per record written.
        connection = session.connection()
        event_id = connection.execute(
            _NEW_EVENT,
            {
                "catalog": record.catalog,
                "record_id": record.id,
                "kind": kind,
                "changed": changed,
                "cause_kind": cause.kind,
                "cause_user": cause.user,
                "cause_instance_id": cause.instance_id,
                "cause_process_id": cause.process_id,
                "created_at": utcnow(),
            },
        ).scalar_one()
        connection.execute(_NEW_VALUES, {"event_id": event_id, "old": old, "new": new})
        note_outbox_write(session)


# The record service reads and writes the records table with plain statements, not
# ORM objects: loading, tracking and flushing a RecordRow cost more than the SQL.
_T = RECORDS
_COLUMNS = (_T.c.id, _T.c.catalog, _T.c.data, _T.c.version, _T.c.created_at, _T.c.updated_at)
# One record by catalog and id (prepared once: processes read and write records by id
# many times a second, and building the query each time cost as much as running it).
_ROW = select(*_COLUMNS).where(_T.c.id == bindparam("id"), _T.c.catalog == bindparam("catalog"))
# PostgreSQL: FOR NO KEY UPDATE to change a record, so writes linking to it (FOR KEY
# SHARE, ``_LINKED``) go on meanwhile; FOR UPDATE to delete it, which waits for them.
_ROW_LOCKED = _ROW.with_for_update(key_share=True)
_ROW_FOR_DELETE = _ROW.with_for_update()
# Records of a catalog by ids, the first ``limit`` of them.
_BY_IDS = (
    select(*_COLUMNS)
    .where(_T.c.catalog == bindparam("catalog"), _T.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_T.c.id)
    .limit(bindparam("limit"))
)
_BY_KEY = select(*_COLUMNS).where(_T.c.idempotency_key == bindparam("key"))
_INSERT = insert(_T).returning(_T.c.id)
# Only from the version the update was worked out from: a planned update written
# later must not overwrite what another writer changed meanwhile.
_UPDATE = (
    update(_T)
    .where(_T.c.id == bindparam("record_id"), _T.c.version == bindparam("read_version"))
    .values(
        data=bindparam("data", type_=_T.c.data.type),
        version=bindparam("version"),
        updated_at=bindparam("now", type_=_T.c.updated_at.type),
    )
)
_DELETE = delete(_T).where(_T.c.id == bindparam("record_id"))
# Which of these ids are records of the catalog (for link fields). On PostgreSQL they
# stay locked against deletion (FOR KEY SHARE) until the linking write commits: a
# delete waits for it, and then finds the new link to take out (see ``links_to``).
_LINKED = (
    select(_T.c.id)
    .where(_T.c.catalog == bindparam("catalog"), _T.c.id.in_(bindparam("ids", expanding=True)))
    .with_for_update(read=True, key_share=True)
)
_NEW_EVENT = insert(OutboxEvent).returning(OutboxEvent.id)
_NEW_VALUES = insert(OutboxValues)


def _link_set(value: Any) -> set[Any]:
    """The ids a link field's value holds (one, several or none)."""
    if value is None:
        return set()
    return set(value) if isinstance(value, list) else {value}


def _id(value: Any) -> int:
    """A record id given as a number or as digits (from a command line or a URL)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise FieldError(f"record ids are whole numbers, got {value!r}")


def _ids(catalog: str, value: Any) -> list[int]:
    """The record ids an ``id`` filter gives (one, or a list for "one of")."""
    try:
        return [_id(v) for v in (value if isinstance(value, list) else [value])]
    except FieldError as exc:
        raise ValidationFailed(
            f"cannot filter {catalog} on id", [Problem(str(exc), where=f"{catalog}.id")]
        ) from None


def _check_limit(limit: int) -> None:
    if limit < 1 or limit > 10_000:
        raise ValidationFailed(f"limit must be between 1 and 10000, got {limit}")


def _known(definition: CatalogDef) -> str:
    return f"fields of {definition.name}: {', '.join(definition.fields)}"


def _same(a: Any, b: Any) -> bool:
    """Equal as stored JSON: unlike ``==``, ``true`` is not ``1`` (json fields may hold both)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _check_order(
    definition: CatalogDef, values: Mapping[str, Any], changed: set[str] | None = None
) -> None:
    """Fields with ``after: other`` must be later than ``other`` (when both have a value)."""
    problems: list[Problem] = []
    for fname, fdef in definition.fields.items():
        if fdef.after is None or (changed is not None and not {fname, fdef.after} & changed):
            continue
        other = definition.fields[fdef.after]
        mine, theirs = moment_of(fdef, values.get(fname)), moment_of(other, values.get(fdef.after))
        if mine is None or theirs is None:
            continue
        if mine <= theirs:
            problems.append(
                Problem(
                    f"{values[fname]} is not after {fdef.after} ({values[fdef.after]})",
                    f"{definition.name}.{fname}",
                    f"give a {fname} later than {fdef.after}, or leave it empty",
                )
            )
    if problems:
        raise ValidationFailed(f"the {definition.name} record was refused", problems)
