"""``records.*`` operators: read and write catalog records from a process."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.errors import BpmnError, NotFound, ValidationFailed

from ._registry import OPERATORS, Operator, OperatorContext, Param


def _catalog(params: dict[str, Any]) -> str:
    catalog = params["catalog"]
    if not isinstance(catalog, str) or not catalog:
        raise ValidationFailed(f"parameter 'catalog' must be a catalog name, got {catalog!r}")
    return catalog


def _record_id(params: dict[str, Any]) -> int:
    value = params["id"]
    if isinstance(value, dict) and "id" in value:
        value = value["id"]
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.isdigit():
            return int(value)
        raise ValidationFailed(f"parameter 'id' must be a record id, got {value!r}")
    return value


def _data(params: dict[str, Any]) -> Mapping[str, Any]:
    data = params["data"]
    if not isinstance(data, Mapping):
        raise ValidationFailed(f"parameter 'data' must be an object of field values, got {data!r}")
    return data


def _get(ctx: OperatorContext, params: dict[str, Any]) -> Any:
    catalog, record_id = _catalog(params), _record_id(params)
    try:
        return ctx.records.get(ctx.session, catalog, record_id)
    except NotFound as exc:
        if params.get("missing_ok"):
            return None
        raise BpmnError("notFound", str(exc), {"catalog": catalog, "id": record_id}) from None


def _find(ctx: OperatorContext, params: dict[str, Any]) -> Any:
    where = params.get("where") or {}
    if not isinstance(where, Mapping):
        raise ValidationFailed(
            f"parameter 'where' must be an object of field values, got {where!r}"
        )
    limit = params.get("limit", 1000)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationFailed(f"parameter 'limit' must be a positive whole number, got {limit!r}")
    found = ctx.records.find(ctx.session, _catalog(params), where, limit)
    if params.get("first"):
        return found[0] if found else None
    return found


def _create(ctx: OperatorContext, params: dict[str, Any]) -> Any:
    return ctx.records.create(ctx.session, _catalog(params), _data(params), ctx.idempotency_key)


def _update(ctx: OperatorContext, params: dict[str, Any]) -> Any:
    catalog, record_id = _catalog(params), _record_id(params)
    try:
        return ctx.records.update(ctx.session, catalog, record_id, _data(params))
    except NotFound as exc:
        raise BpmnError("notFound", str(exc), {"catalog": catalog, "id": record_id}) from None


def _delete(ctx: OperatorContext, params: dict[str, Any]) -> Any:
    catalog, record_id = _catalog(params), _record_id(params)
    deleted = ctx.records.delete(ctx.session, catalog, record_id)
    if not deleted:
        ctx.note(f"{catalog} record {record_id} was already gone")
    return {"deleted": deleted, "id": record_id}


CATALOG = Param("catalog", "the catalog's name, e.g. 'meetings'")
ID = Param("id", "the record id (or a record, whose id is used)")

for _op in (
    Operator(
        "records.get",
        "One record by id; BPMN error 'notFound' if it does not exist (unless missing_ok).",
        (CATALOG, ID, Param("missing_ok", "answer None instead of failing", required=False)),
        _get,
    ),
    Operator(
        "records.find",
        "Records whose fields equal `where` (a list value means one of); a list, or with "
        "first=True the first record or None.",
        (
            CATALOG,
            Param("where", "an object of field: value (or field: [values])", required=False),
            Param("limit", "at most this many records (default 1000)", required=False),
            Param("first", "answer the first record only", required=False),
        ),
        _find,
    ),
    Operator(
        "records.create",
        "Create a record; a replay of the same task finds the record made the first time.",
        (CATALOG, Param("data", "an object of field values")),
        _create,
        writes=True,
    ),
    Operator(
        "records.update",
        "Change the given fields of a record; BPMN error 'notFound' if it does not exist.",
        (CATALOG, ID, Param("data", "an object of the fields to change")),
        _update,
        writes=True,
    ),
    Operator(
        "records.delete",
        "Delete a record; a record already gone counts as done.",
        (CATALOG, ID),
        _delete,
        writes=True,
    ),
):
    OPERATORS.register(_op)
