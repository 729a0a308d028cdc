"""Links that point at a record about to be deleted: which records hold them, and what
their link fields become without it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import Conflict, Problem

from ._conditions import RECORDS, field_condition
from ._fields import FieldDef
from ._schema import CatalogDef

# How many linking records a refusal names; the count says how many there are.
_NAMED = 10


@dataclass
class Linking:
    """A record with link fields that point at the record being deleted."""

    catalog: str
    record_id: int
    fields: list[FieldDef] = field(default_factory=list)
    target: int = 0

    def values(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The link fields' new values, from the record's data as it is now."""
        return {f.name: _without(f, data.get(f.name), self.target) for f in self.fields}


def links_to(
    session: Session, catalogs: Mapping[str, CatalogDef], catalog: str, record_id: int
) -> list[Linking]:
    """The records whose link fields point at ``catalog`` record ``record_id`` (itself
    left out), oldest first; Conflict if taking it out would empty a required one."""
    dialect = session.get_bind().dialect.name
    connection = session.connection()
    found: dict[tuple[str, int], Linking] = {}
    blocking: dict[str, list[int]] = {}  # "meetings.organizer" -> the records
    for source in catalogs.values():
        for fdef in source.fields.values():
            if fdef.type != "link" or fdef.catalog != catalog:
                continue
            rows = connection.execute(
                select(RECORDS.c.id, RECORDS.c.data)
                .where(
                    RECORDS.c.catalog == source.name,
                    field_condition(fdef, record_id, dialect),
                )
                .order_by(RECORDS.c.id)
            )
            for linking_id, data in rows:
                if (source.name, linking_id) == (catalog, record_id):
                    continue  # the record's own link to itself goes with it
                if fdef.required and not _without(fdef, data.get(fdef.name), record_id):
                    blocking.setdefault(f"{source.name}.{fdef.name}", []).append(linking_id)
                    continue
                key = (source.name, linking_id)
                found.setdefault(key, Linking(source.name, linking_id, target=record_id))
                found[key].fields.append(fdef)
    if blocking:
        raise Conflict(
            f"{catalog} record {record_id} was not deleted: required links point at it",
            [
                Problem(
                    f"{_named(ids)} link to it, and the field is required",
                    where,
                    f"point those records elsewhere or delete them, then delete {catalog} "
                    f"record {record_id}",
                )
                for where, ids in blocking.items()
            ],
        )
    return sorted(found.values(), key=lambda linking: (linking.catalog, linking.record_id))


def _without(fdef: FieldDef, value: Any, record_id: int) -> Any:
    if fdef.many:
        return [v for v in value or [] if v != record_id]
    return None if value == record_id else value


def _named(ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:_NAMED])
    more = f" and {len(ids) - _NAMED} more" if len(ids) > _NAMED else ""
    return f"{len(ids)} record(s) ({shown}{more})"
