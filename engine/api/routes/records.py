"""/api/catalogs/{catalog}/records: create, read, change and delete records.

The same record service as the CLI: every change is validated against the catalog
and, in the same transaction, becomes the outbox event that starts processes. The
change's cause names the token (``token:NAME``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, status

from engine.api._deps import Editor, ProjectDep, Viewer
from engine.api.schemas import (
    AUTH_ERRORS,
    CONFLICT,
    ID_MAX,
    NOT_FOUND,
    Limit,
    Offset,
    RecordBody,
    RecordOut,
    RecordPage,
    Tx,
    check_json,
    refuse_nul,
)
from engine.api.tokens import Principal
from engine.catalogs import Cause, Record
from engine.errors import Problem, ValidationFailed

router = APIRouter(
    prefix="/api/catalogs/{catalog}/records",
    tags=["records"],
    dependencies=[Depends(refuse_nul)],
    responses={**AUTH_ERRORS, **NOT_FOUND},
)

CatalogName = Annotated[str, Path(min_length=1, max_length=100, description="The catalog's name.")]
RecordId = Annotated[int, Path(ge=1, le=ID_MAX, description="The record's id.")]
BODY_EXAMPLE = {"title": "Weekly", "starts_at": "2030-01-07T10:00:00+01:00"}
Fields = Annotated[
    RecordBody,
    Body(description="Field values, as a JSON object", examples=[BODY_EXAMPLE]),
]


def _out(record: Record) -> RecordOut:
    return RecordOut(
        id=record.id,
        catalog=record.catalog,
        version=record.version,
        created_at=record.created_at,
        updated_at=record.updated_at,
        data=record.data,
    )


def _cause(who: Principal) -> Cause:
    return Cause.person(f"token:{who.name}")


def _fits(filters: dict[str, Any]) -> dict[str, Any]:
    """Filter values the database can compare: ids and numbers within 64 bits."""
    for name, value in filters.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, int) and not isinstance(item, bool) and abs(item) > ID_MAX:
                raise ValidationFailed(
                    "the filters were refused",
                    [Problem(f"{item} is not a record id", where=f"where {name}")],
                )
    return filters


@router.get("", summary="Records of a catalog, oldest first, filtered and paged")
def list_records(
    catalog: CatalogName,
    project: ProjectDep,
    session: Tx,
    _who: Viewer,
    where: Annotated[
        list[str] | None,
        Query(
            max_length=50,
            description="FIELD=VALUE: only records whose FIELD equals VALUE (repeatable, all "
            "must hold; a list field matches when it contains VALUE; `id=3` works too).",
            examples=["title=Weekly"],
        ),
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> RecordPage:
    filters = _fits(project.records.parse_where(catalog, where or []))
    page = project.records.find(session, catalog, filters, limit=limit, offset=offset)
    return RecordPage(
        items=[_out(r) for r in page.items], total=page.total, limit=page.limit, offset=page.offset
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a record (and start the processes its catalog's triggers name)",
    responses=CONFLICT,
)
def create_record(
    catalog: CatalogName,
    data: Fields,
    project: ProjectDep,
    session: Tx,
    who: Editor,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=80,
            description="Send the same key again (e.g. when retrying after a network failure) "
            "to get the record the first request made instead of a second one.",
        ),
    ] = None,
) -> RecordOut:
    check_json(data, catalog)
    # Keys are unique across catalogs and callers: scope them to the token.
    key = f"api:{who.name}:{idempotency_key}" if idempotency_key is not None else None
    record = project.records.create(session, catalog, data, _cause(who), idempotency_key=key)
    return _out(record)


@router.get("/{record_id}", summary="One record", responses=NOT_FOUND)
def get_record(
    catalog: CatalogName, record_id: RecordId, project: ProjectDep, session: Tx, _who: Viewer
) -> RecordOut:
    return _out(project.records.get(session, catalog, record_id))


@router.patch(
    "/{record_id}",
    summary="Change some fields of a record (the others stay as they are)",
)
def update_record(
    catalog: CatalogName,
    record_id: RecordId,
    data: Fields,
    project: ProjectDep,
    session: Tx,
    who: Editor,
) -> RecordOut:
    check_json(data, catalog)
    return _out(project.records.update(session, catalog, record_id, data, _cause(who)))


@router.delete(
    "/{record_id}",
    summary="Delete a record; the answer holds its last values",
)
def delete_record(
    catalog: CatalogName, record_id: RecordId, project: ProjectDep, session: Tx, who: Editor
) -> RecordOut:
    return _out(project.records.delete(session, catalog, record_id, _cause(who)))
