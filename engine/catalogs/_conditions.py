"""SQL conditions on record fields, shared by finding records and keeping links whole."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, exists, func, literal, or_, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB

from engine.store import RecordRow

from ._fields import FieldDef

RECORDS = cast(Table, RecordRow.__table__)


def _accessor(fdef: FieldDef) -> Callable[[Any], Any]:
    if fdef.type == "number":
        return lambda c: c.as_float()
    if fdef.type == "boolean":
        return lambda c: c.as_boolean()
    if fdef.type == "link":
        return lambda c: c.as_integer()
    return lambda c: c.as_string()


def field_condition(fdef: FieldDef, value: Any, dialect: str) -> ColumnElement[bool]:
    """Records whose field is ``value`` (a list field: holds it); a list: one of them."""
    if fdef.is_list:
        # "participants=3": the list holds 3; "participants=[3, 4]": it holds one of them.
        wanted = value if isinstance(value, list) else [value]
        if not wanted:
            return literal(False)
        return or_(*(_holds(fdef, v, dialect) for v in wanted))
    column = _accessor(fdef)(RECORDS.c.data[fdef.name])
    if fdef.type == "number":
        # Bound as the first value's type: [2, 4.5] would compare 4.5 as an integer.
        value = [_float(v) for v in value] if isinstance(value, list) else _float(value)
    result: ColumnElement[bool]
    if isinstance(value, list):
        result = column.in_(value) if value else literal(False)
    elif value is None:
        result = column.is_(None)
    else:
        result = column == value
    return result


def _holds(fdef: FieldDef, value: Any, dialect: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        data = type_coerce(RECORDS.c.data, JSONB)
        contains: ColumnElement[bool] = data[fdef.name].contains([value])
        return contains
    items = func.json_each(RECORDS.c.data, f'$."{fdef.name}"').table_valued("value")
    return exists(select(literal(1)).select_from(items).where(items.c.value == value))


def _float(value: Any) -> Any:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
