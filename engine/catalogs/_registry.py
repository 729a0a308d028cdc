"""Loading catalog files and accepting a changed definition only when no data is lost."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.errors import Problem, ValidationFailed
from engine.store import CatalogRow, RecordRow, utcnow

from ._schema import CatalogDef, parse_catalog_file, parse_catalog_text, with_content_hash


def catalog_from_dict(data: Mapping[str, object], source: str = "") -> CatalogDef:
    """Rebuild a definition stored as JSON (JSON is YAML, so the one parser serves)."""
    data = dict(data)
    order = data.pop("field_order", None)
    parsed = parse_catalog_text(json.dumps(data), source or "stored definition", str(data["name"]))
    fields = parsed.fields
    if isinstance(order, list) and sorted(order) == sorted(fields):
        fields = {name: fields[name] for name in order}
    source = source or str(data.get("source", ""))
    return with_content_hash(CatalogDef(**{**parsed.__dict__, "fields": fields, "source": source}))


def _stored_form(definition: CatalogDef) -> dict[str, object]:
    # PostgreSQL's JSONB keeps no key order, and the order of the fields matters.
    return {**definition.to_dict(), "field_order": list(definition.fields)}


def load_catalog_files(directory: Path) -> dict[str, CatalogDef]:
    """Every ``*.yaml``/``*.yml`` file in ``directory``; all problems of all files at once."""
    defs: dict[str, CatalogDef] = {}
    problems: list[Problem] = []
    if not directory.is_dir():
        return defs
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            definition = parse_catalog_file(path)
        except ValidationFailed as exc:
            problems.extend(exc.problems)
            continue
        if definition.name in defs:
            problems.append(
                Problem(
                    f"catalog {definition.name!r} is defined again "
                    f"(first in {defs[definition.name].source})",
                    where=str(path),
                    hint="each catalog is defined in one file",
                )
            )
            continue
        defs[definition.name] = definition
    if problems:
        raise ValidationFailed("catalog definitions were refused", problems)
    return defs


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    backfilled: dict[str, int] = field(default_factory=dict)


def _check_references(
    defs: Mapping[str, CatalogDef], known_processes: Iterable[str] | None
) -> list[Problem]:
    problems: list[Problem] = []
    processes = set(known_processes) if known_processes is not None else None
    for d in defs.values():
        for f in d.fields.values():
            if f.type == "link" and f.catalog not in defs:
                problems.append(
                    Problem(
                        f"links to catalog {f.catalog!r}, which is not defined",
                        where=f"{d.source}: fields.{f.name}",
                        hint=f"add catalogs/{f.catalog}.yaml or fix the name",
                    )
                )
        for t in d.triggers:
            if processes is not None and t.process not in processes:
                problems.append(
                    Problem(
                        f"trigger {t.key!r} starts process {t.process!r}, which is not deployed",
                        where=f"{d.source}: triggers",
                        hint="deploy its .bpmn file (catflow deploy) or fix the process id",
                    )
                )
    return problems


def sync_catalogs(
    session: Session,
    defs: Mapping[str, CatalogDef],
    known_processes: Iterable[str] | None = None,
) -> SyncReport:
    """Store new and changed definitions; refuse changes that would orphan data.

    Added fields with a default are filled in on existing records, and so are fields
    made required that have one. Removing a field, or changing its type, is refused
    while any record holds a value for it; so is removing a choice option that
    records hold, and making a field without a default required while any record
    has no value for it.
    """
    stored = {row.name: row for row in session.scalars(select(CatalogRow))}
    everything = {
        **{n: catalog_from_dict(r.definition, r.source) for n, r in stored.items()},
        **defs,
    }
    problems = _check_references(everything, known_processes)
    report = SyncReport()
    plans: list[tuple[CatalogDef, CatalogRow | None, list[str], list[str], list[str]]] = []
    for name, new in defs.items():
        row = stored.get(name)
        if row is None:
            plans.append((new, None, [], [], []))
            continue
        if row.content_hash == new.content_hash:
            report.unchanged.append(name)
            continue
        old = catalog_from_dict(row.definition, row.source)
        removed = [f for f in old.fields if f not in new.fields]
        retyped = [
            f
            for f in old.fields
            if f in new.fields and old.fields[f].signature() != new.fields[f].signature()
        ]
        added = [f for f in new.fields if f not in old.fields and new.fields[f].default is not None]
        # Fields required from now on (added, or made required): records without a value
        # get the default if there is one, else the change is refused while any lacks one.
        now_required = [
            f
            for f, fdef in new.fields.items()
            if fdef.required and not (f in old.fields and old.fields[f].required)
        ]
        added += [f for f in now_required if f not in added and new.fields[f].default is not None]
        unfilled = [f for f in now_required if new.fields[f].default is None]
        if unfilled:
            holders = _records_holding(session, name, unfilled)
            records = session.scalar(
                select(func.count()).select_from(RecordRow).where(RecordRow.catalog == name)
            )
            for fname in unfilled:
                lacking = (records or 0) - holders[fname]
                if lacking:
                    problems.append(
                        Problem(
                            f"field {fname!r} becomes required but {lacking} "
                            "record(s) have no value for it",
                            where=f"{new.source}: fields.{fname}",
                            hint="give it a default (filled in on those records), "
                            "or give those records a value first",
                        )
                    )
        dropped_options = {
            f: [o for o in old.fields[f].options if o not in new.fields[f].options]
            for f in old.fields
            if f in new.fields and f not in retyped and old.fields[f].type == "choice"
        }
        dropped_options = {f: gone for f, gone in dropped_options.items() if gone}
        if dropped_options:
            users = _records_choosing(session, name, dropped_options)
            for fname, gone in dropped_options.items():
                if users[fname]:
                    problems.append(
                        Problem(
                            f"option(s) {', '.join(map(repr, gone))} of field {fname!r} were "
                            f"removed but {users[fname]} record(s) hold them",
                            where=f"{new.source}: fields.{fname}",
                            hint="keep the options, or change those records first",
                        )
                    )
        if removed or retyped:
            holders = _records_holding(session, name, [*removed, *retyped])
            for fname in removed:
                if holders.get(fname):
                    problems.append(
                        Problem(
                            f"field {fname!r} was removed but {holders[fname]} record(s) "
                            "hold a value for it",
                            where=f"{new.source}: fields",
                            hint="keep the field, or clear its values first",
                        )
                    )
            for fname in retyped:
                if holders.get(fname):
                    before, after = old.fields[fname], new.fields[fname]
                    problems.append(
                        Problem(
                            f"field {fname!r} changes from {_describe(before.signature())} to "
                            f"{_describe(after.signature())} but {holders[fname]} record(s) "
                            "hold a value for it",
                            where=f"{new.source}: fields.{fname}",
                            hint="add a new field instead, or clear the old values first",
                        )
                    )
        plans.append((new, row, added, removed, retyped))
    if problems:
        raise ValidationFailed("catalog definitions were refused", problems)
    for new, row, added, removed, retyped in plans:
        if row is None:
            session.add(
                CatalogRow(
                    name=new.name,
                    definition=_stored_form(new),
                    source=new.source,
                    content_hash=new.content_hash,
                )
            )
            report.added.append(new.name)
            continue
        row.definition = _stored_form(new)
        row.source = new.source
        row.content_hash = new.content_hash
        row.updated_at = utcnow()
        report.changed.append(new.name)
        if removed or retyped:
            _clear_empty(session, new.name, removed, retyped)
        if added:
            report.backfilled[new.name] = _backfill(session, new, added)
    return report


def _describe(sig: Mapping[str, object]) -> str:
    if sig["type"] == "link":
        return f"link to {sig['catalog']}" + (" (many)" if sig["many"] else "")
    return str(sig["type"])


def _records_holding(session: Session, catalog: str, fields: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(fields, 0)
    rows = session.scalars(select(RecordRow.data).where(RecordRow.catalog == catalog))
    for data in rows:
        for fname in fields:
            if data.get(fname) not in (None, [], ""):
                counts[fname] += 1
    return counts


def _records_choosing(
    session: Session, catalog: str, options: Mapping[str, list[str]]
) -> dict[str, int]:
    counts = dict.fromkeys(options, 0)
    for data in session.scalars(select(RecordRow.data).where(RecordRow.catalog == catalog)):
        for fname, gone in options.items():
            if data.get(fname) in gone:
                counts[fname] += 1
    return counts


def _clear_empty(session: Session, catalog: str, removed: list[str], retyped: list[str]) -> None:
    # Only empty values ("" or []) are left by the check above; they must not linger
    # as keys of a field that is gone, or as values the new type would refuse.
    for row in session.scalars(select(RecordRow).where(RecordRow.catalog == catalog)):
        data = {k: v for k, v in row.data.items() if k not in removed}
        data.update({f: None for f in retyped if data.get(f) is not None})
        if data != row.data:
            row.data = data


def _backfill(session: Session, definition: CatalogDef, added: list[str]) -> int:
    count = 0
    for row in session.scalars(select(RecordRow).where(RecordRow.catalog == definition.name)):
        missing = {
            f: definition.fields[f].default
            for f in added
            # A required field's empty text or list is no value either.
            if row.data.get(f) in ((None, "", []) if definition.fields[f].required else (None,))
        }
        if missing:
            row.data = {**row.data, **missing}
            count += 1
    return count


def stored_catalogs(session: Session) -> dict[str, CatalogDef]:
    return {
        row.name: catalog_from_dict(row.definition, row.source)
        for row in session.scalars(select(CatalogRow))
    }
