"""Catalogs and their records: browse, create, edit, delete; a record's sync, live."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse, Response

from engine.api._deps import ProjectDep
from engine.catalogs import CatalogDef, Cause, FieldDef, Record, RecordService
from engine.errors import CatflowError, ValidationFailed
from engine.runtime import InstanceFilter, Project, instance_summary, list_instances, states

from . import _forms
from ._web import UI, Act, Form, Page, Who, need, redirect, render, shown

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
LINK_CHOICES = 500  # options offered for a link field


def _labels(
    session: Session, records: RecordService, definition: CatalogDef, ids: dict[str, set[int]]
) -> dict[str, dict[int, str]]:
    """For each link field, the label of each linked record id given."""
    out: dict[str, dict[int, str]] = {}
    for fname, wanted in ids.items():
        target = records.catalog(definition.fields[fname].catalog or "")
        label = _forms.label_field(target)
        page = records.find(session, target.name, {"id": sorted(wanted)}, limit=len(wanted) or 1)
        out[fname] = {
            r.id: f"{r.data.get(label) or ''} (#{r.id})" if label else f"#{r.id}"
            for r in page.items
        }
    return out


def _link_ids(definition: CatalogDef, items: list[Record]) -> dict[str, set[int]]:
    ids: dict[str, set[int]] = {}
    for fname, fdef in definition.fields.items():
        if fdef.type != "link":
            continue
        for r in items:
            value = r.data.get(fname)
            values = value if isinstance(value, list) else [value]
            ids.setdefault(fname, set()).update(v for v in values if isinstance(v, int))
    return {k: v for k, v in ids.items() if v}


def _choices(
    session: Session, records: RecordService, definition: CatalogDef
) -> dict[str, list[tuple[int, str]]]:
    out: dict[str, list[tuple[int, str]]] = {}
    for fdef in _forms.editable(definition):
        if fdef.type != "link" or not fdef.catalog:
            continue
        target = records.catalog(fdef.catalog)
        label = _forms.label_field(target)
        page = records.find(session, target.name, limit=LINK_CHOICES)
        out[fdef.name] = [
            (r.id, f"{r.data.get(label) or ''} (#{r.id})" if label else f"#{r.id}")
            for r in page.items
        ]
    return out


def _columns(definition: CatalogDef, at_most: int = 7) -> list[FieldDef]:
    """What a list of records shows: required fields, then what processes set (status
    first), then the rest; never JSON."""

    def rank(f: FieldDef) -> int:
        if f.required:
            return 0
        if f.readonly:
            return 1 if f.type == "choice" else 2 if f.type == "text" else 3
        return 4

    fields = [f for f in definition.fields.values() if f.type != "json"]
    return sorted(fields, key=rank)[:at_most]


@router.get(f"{UI}/catalogs")
def catalogs_page(request: Request, who: Page, project: ProjectDep) -> Response:
    records = project.records
    with project.db.session() as session:
        counts = {
            name: records.find(session, name, limit=1).total for name in sorted(records.catalogs)
        }
    return render(
        request,
        "catalogs.html",
        {"catalogs": [records.catalogs[n] for n in counts], "counts": counts},
        who=who,
    )


@router.get(f"{UI}/records/{{catalog}}")
def records_page(
    request: Request,
    who: Page,
    project: ProjectDep,
    catalog: str,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    records = project.records
    definition = records.catalog(catalog)
    with project.db.session() as session:
        page = records.find(session, catalog, limit=PAGE_SIZE, offset=offset)
        labels = _labels(session, records, definition, _link_ids(definition, page.items))
    columns = _columns(definition)
    return render(
        request,
        "records.html",
        {
            "catalog": definition,
            "page": page,
            "columns": columns,
            "labels": labels,
            "can_edit": who.may("editor"),
            "page_size": PAGE_SIZE,
        },
        who=who,
    )


def _form_page(
    request: Request,
    who: Who,
    project: Project,
    definition: CatalogDef,
    raw: dict[str, _forms.Raw],
    *,
    record: Record | None = None,
    errors: dict[str, list[str]] | None = None,
    problems: list[str] | None = None,
    status: int = 200,
) -> Response:
    with project.db.session() as session:
        choices = _choices(session, project.records, definition)
    return render(
        request,
        "record_form.html",
        {
            "catalog": definition,
            "record": record,
            "widgets": _forms.widgets(definition, raw, choices, errors or {}),
            "problems": problems or [],
        },
        status=status,
        who=who,
    )


def _refusal(definition: CatalogDef, exc: CatflowError, errors: dict[str, list[str]]) -> list[str]:
    """Spread a refusal's problems over the fields they name; the rest for the top."""
    general: list[str] = []
    for p in exc.problems:
        name = p.where.removeprefix(f"{definition.name}.")
        if name in definition.fields:
            errors.setdefault(name, []).append(p.message + (f" ({p.hint})" if p.hint else ""))
        else:
            general.append(str(p))
    return [exc.message, *general]


@router.get(f"{UI}/records/{{catalog}}/new")
def new_record_page(request: Request, who: Page, project: ProjectDep, catalog: str) -> Response:
    need(who, "editor", "Creating a record")
    definition = project.records.catalog(catalog)
    return _form_page(request, who, project, definition, _forms.raw_for_create(definition))


@router.post(f"{UI}/records/{{catalog}}")
def create_record(
    request: Request, who: Act, form: Form, project: ProjectDep, catalog: str
) -> Response:
    need(who, "editor", "Creating a record")
    definition = project.records.catalog(catalog)
    raw = _forms.raw_of(definition, form)
    values, errors = _forms.values_for_create(definition, raw)
    problems: list[str] = []
    if not errors:
        try:
            with project.db.session() as session:
                record = project.records.create(session, catalog, values, Cause.person(who.name))
        except ValidationFailed as exc:
            problems = _refusal(definition, exc, errors)
        else:
            return redirect(
                f"{UI}/records/{catalog}/{record.id}", f"created {catalog} record {record.id}"
            )
    return _form_page(
        request,
        who,
        project,
        definition,
        raw,
        errors=errors,
        problems=problems or ["the record was refused; see the fields marked below"],
        status=422,
    )


def _record_view(project: Project, catalog: str, record_id: int) -> dict[str, Any]:
    records = project.records
    definition = records.catalog(catalog)
    with project.db.session() as session:
        record = records.get(session, catalog, record_id)
        labels = _labels(session, records, definition, _link_ids(definition, [record]))
        rows, _counts = list_instances(
            session, InstanceFilter(record=(catalog, record_id), limit=20)
        )
        instances = [instance_summary(r) for r in rows]
    return {"definition": definition, "record": record, "labels": labels, "instances": instances}


def _shown_value(view: dict[str, Any], fname: str, value: Any) -> str:
    labels = view["labels"].get(fname)
    if labels is not None:
        values = value if isinstance(value, list) else [value]
        return ", ".join(labels.get(v, f"#{v}") for v in values if v is not None)
    return shown(value)


@router.get(f"{UI}/records/{{catalog}}/{{record_id}}")
def record_page(
    request: Request, who: Page, project: ProjectDep, catalog: str, record_id: int
) -> Response:
    view = _record_view(project, catalog, record_id)
    fields = [
        (f, _shown_value(view, f.name, view["record"].data.get(f.name)))
        for f in view["definition"].fields.values()
    ]
    return render(
        request,
        "record.html",
        {
            **view,
            "fields": fields,
            "busy": any(i["state"] not in states.FINAL_STATES for i in view["instances"]),
            "can_edit": who.may("editor"),
        },
        who=who,
    )


@router.get(f"{UI}/records/{{catalog}}/{{record_id}}/live.json")
def record_live(who: Page, project: ProjectDep, catalog: str, record_id: int) -> Response:
    """What the record page polls: its fields as shown, and its instances' states."""
    del who  # signed in is enough
    try:
        view = _record_view(project, catalog, record_id)
    except CatflowError as exc:
        return JSONResponse(
            {"deleted": True, "message": exc.message}, headers={"Cache-Control": "no-store"}
        )
    record: Record = view["record"]
    body = {
        "deleted": False,
        "version": record.version,
        "fields": {f: _shown_value(view, f, record.data.get(f)) for f in view["definition"].fields},
        "instances": [
            {
                "id": i["id"],
                "process_id": i["process_id"],
                "state": i["state"],
                "detail": (i["error"] or {}).get("message") or i["waiting_for"] or "",
            }
            for i in view["instances"]
        ],
        "busy": any(i["state"] not in states.FINAL_STATES for i in view["instances"]),
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get(f"{UI}/records/{{catalog}}/{{record_id}}/edit")
def edit_record_page(
    request: Request, who: Page, project: ProjectDep, catalog: str, record_id: int
) -> Response:
    need(who, "editor", "Editing a record")
    definition = project.records.catalog(catalog)
    with project.db.session() as session:
        record = project.records.get(session, catalog, record_id)
    raw = {f.name: _forms.to_raw(f, record.data.get(f.name)) for f in _forms.editable(definition)}
    return _form_page(request, who, project, definition, raw, record=record)


@router.post(f"{UI}/records/{{catalog}}/{{record_id}}")
def update_record(
    request: Request, who: Act, form: Form, project: ProjectDep, catalog: str, record_id: int
) -> Response:
    need(who, "editor", "Editing a record")
    definition = project.records.catalog(catalog)
    raw = _forms.raw_of(definition, form)
    with project.db.session() as session:
        record = project.records.get(session, catalog, record_id)
    changes, errors = _forms.changes_for_update(definition, raw, record.data)
    problems: list[str] = []
    if not errors:
        if not changes:
            return redirect(f"{UI}/records/{catalog}/{record_id}", "nothing changed")
        try:
            with project.db.session() as session:
                record = project.records.update(
                    session, catalog, record_id, changes, Cause.person(who.name)
                )
        except ValidationFailed as exc:
            problems = _refusal(definition, exc, errors)
        else:
            return redirect(
                f"{UI}/records/{catalog}/{record_id}",
                f"updated {catalog} record {record_id}: {', '.join(changes)}",
            )
    return _form_page(
        request,
        who,
        project,
        definition,
        raw,
        record=record,
        errors=errors,
        problems=problems or ["the changes were refused; see the fields marked below"],
        status=422,
    )


@router.post(f"{UI}/records/{{catalog}}/{{record_id}}/delete")
def delete_record(who: Act, project: ProjectDep, catalog: str, record_id: int) -> Response:
    need(who, "editor", "Deleting a record")
    try:
        with project.db.session() as session:
            project.records.delete(session, catalog, record_id, Cause.person(who.name))
    except CatflowError as exc:
        return redirect(f"{UI}/records/{catalog}/{record_id}", str(exc), "error")
    return redirect(f"{UI}/records/{catalog}", f"deleted {catalog} record {record_id}")
