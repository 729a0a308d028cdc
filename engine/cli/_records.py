"""`catflow records ...`: create, read, change and delete catalog records."""

from __future__ import annotations

from typing import Any

import click

from engine.catalogs import Cause, Record
from engine.errors import CatflowError

from ._common import emit_json, handle_errors, parse_json_option, state, table

JSON_HELP = "Print JSON for scripts instead of a table."


@click.group("records")
def records() -> None:
    """Create, read, change and delete catalog records.

    Every change is validated against the catalog's definition and starts the
    processes whose trigger rules match it.
    """


def _data(raw: str) -> dict[str, Any]:
    data = parse_json_option(raw, "--data")
    if not isinstance(data, dict):
        raise CatflowError('--data must be a JSON object of field values, e.g. \'{"title": "x"}\'')
    return data


def _show(record: Record, as_json: bool) -> None:
    if as_json:
        emit_json(record.as_dict())
        return
    table(["field", "value"], [["id", record.id], *record.data.items()])


@records.command("create")
@click.argument("catalog")
@click.option("--data", required=True, help="Field values as a JSON object, or @file.json.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@handle_errors
def create(catalog: str, data: str, as_json: bool) -> None:
    """Create a record in CATALOG."""
    project = state().project()
    with project.db.session() as session:
        record = project.records.create(session, catalog, _data(data), Cause.person())
    if as_json:
        emit_json(record.as_dict())
    else:
        click.echo(f"created {catalog} record {record.id}")


@records.command("update")
@click.argument("catalog")
@click.argument("record_id", metavar="ID", type=int)
@click.option("--data", required=True, help="The fields to change, as a JSON object.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@handle_errors
def update(catalog: str, record_id: int, data: str, as_json: bool) -> None:
    """Change some fields of record ID in CATALOG (the others stay as they are)."""
    project = state().project()
    with project.db.session() as session:
        record = project.records.update(session, catalog, record_id, _data(data), Cause.person())
    if as_json:
        emit_json(record.as_dict())
    else:
        click.echo(f"updated {catalog} record {record.id} (version {record.version})")


@records.command("delete")
@click.argument("catalog")
@click.argument("record_id", metavar="ID", type=int)
@handle_errors
def delete(catalog: str, record_id: int) -> None:
    """Delete record ID from CATALOG."""
    project = state().project()
    with project.db.session() as session:
        project.records.delete(session, catalog, record_id, Cause.person())
    click.echo(f"deleted {catalog} record {record_id}")


@records.command("get")
@click.argument("catalog")
@click.argument("record_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@handle_errors
def get(catalog: str, record_id: int, as_json: bool) -> None:
    """Show record ID of CATALOG."""
    project = state().project()
    with project.db.session() as session:
        record = project.records.get(session, catalog, record_id)
    _show(record, as_json)


@records.command("list")
@click.argument("catalog")
@click.option(
    "--where",
    "where",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Only records whose FIELD equals VALUE (repeatable; a list field "
    "matches when it contains VALUE).",
)
@click.option("--limit", default=50, show_default=True, help="At most this many records.")
@click.option("--offset", default=0, show_default=True, help="Skip this many records first.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@handle_errors
def list_(catalog: str, where: tuple[str, ...], limit: int, offset: int, as_json: bool) -> None:
    """List the records of CATALOG, oldest first."""
    project = state().project()
    filters = project.records.parse_where(catalog, list(where))
    with project.db.session() as session:
        page = project.records.find(session, catalog, filters, limit=limit, offset=offset)
    if as_json:
        emit_json(
            {
                "items": [r.as_dict() for r in page.items],
                "total": page.total,
                "limit": page.limit,
                "offset": page.offset,
            }
        )
        return
    fields = list(project.records.catalog(catalog).fields)
    table(["id", *fields], [[r.id, *(r.data.get(f) for f in fields)] for r in page.items])
    shown_to = page.offset + len(page.items)
    click.echo(
        f"({len(page.items)} of {page.total}; {page.offset + 1 if page.items else 0}-{shown_to})",
        err=True,
    )
