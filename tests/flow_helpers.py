"""Shared pieces of the runtime tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from engine.catalogs import Cause
from engine.runtime import Project, Runner, instance_detail
from engine.store import InstanceRow, RecordRow

ITEMS = """
fields:
  title: {type: text, required: true}
  status: {type: text}
  count: {type: number, default: 0}
  note: {type: text, readonly: true}
triggers: []
"""

USER = Cause.person("tester")


def create(project: Project, catalog: str, data: dict[str, Any]) -> int:
    with project.db.session() as s:
        return project.records.create(s, catalog, data, USER).id


def update(project: Project, catalog: str, record_id: int, data: dict[str, Any]) -> None:
    with project.db.session() as s:
        project.records.update(s, catalog, record_id, data, USER)


def get(project: Project, catalog: str, record_id: int) -> dict[str, Any]:
    with project.db.session() as s:
        return project.records.get(s, catalog, record_id).as_dict()


def run(project: Project) -> None:
    Runner(project, workers=1).run_once()


def instances(project: Project) -> list[InstanceRow]:
    with project.db.session() as s:
        return list(s.scalars(select(InstanceRow).order_by(InstanceRow.id)))


def detail(project: Project, instance_id: int) -> dict[str, Any]:
    with project.db.session() as s:
        return instance_detail(s, instance_id)


def records_of(project: Project, catalog: str) -> list[RecordRow]:
    with project.db.session() as s:
        return list(s.scalars(select(RecordRow).where(RecordRow.catalog == catalog)))


def catalog(triggers: str = "[]", extra_fields: str = "") -> str:
    """The items catalog with these trigger rules and extra field lines."""
    return ITEMS.replace("triggers: []", f"{extra_fields}triggers: {triggers}")
