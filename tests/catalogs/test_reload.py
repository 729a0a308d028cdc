"""Reloading catalog definitions: accepted when no data is lost, refused (clearly) otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from engine.catalogs import (
    CatalogDef,
    Cause,
    RecordService,
    SyncReport,
    parse_catalog_text,
    stored_catalogs,
    sync_catalogs,
)
from engine.errors import ValidationFailed
from engine.store import CatalogRow, Database, OutboxEvent

ADA = Cause.person("ada")

BASE = """\
fields:
  title: {type: text, required: true}
  agenda: text
  room: text
  seats: number
"""


def catalog(text: str, name: str = "meetings") -> CatalogDef:
    return parse_catalog_text(text, f"catalogs/{name}.yaml", name)


def sync(db: Database, *defs: CatalogDef, processes: list[str] | None = None) -> SyncReport:
    with db.session() as session:
        return sync_catalogs(session, {d.name: d for d in defs}, processes)


def create(db: Database, catalog_name: str, data: dict[str, Any]) -> int:
    with db.session() as session:
        service = RecordService(stored_catalogs(session))
        return service.create(session, catalog_name, data, ADA).id


def stored_data(db: Database, catalog_name: str, record_id: int) -> dict[str, Any]:
    with db.session() as session:
        return RecordService(stored_catalogs(session)).get(session, catalog_name, record_id).data


def stored_fields(db: Database, catalog_name: str = "meetings") -> list[str]:
    with db.session() as session:
        return list(stored_catalogs(session)[catalog_name].fields)


def refusal(db: Database, *defs: CatalogDef) -> str:
    with pytest.raises(ValidationFailed) as exc:
        sync(db, *defs)
    assert exc.value.problems
    return str(exc.value)


def test_first_sync_stores_the_definitions(db: Database) -> None:
    report = sync(db, catalog(BASE), catalog("fields: {name: text}", "employees"))
    assert sorted(report.added) == ["employees", "meetings"]
    assert report.changed == report.unchanged == []
    with db.session() as session:
        stored = stored_catalogs(session)
    assert stored["meetings"] == catalog(BASE)
    assert list(stored["employees"].fields) == ["name"]


def test_an_unchanged_definition_is_a_no_op(db: Database) -> None:
    sync(db, catalog(BASE))
    with db.session() as session:
        before = session.get(CatalogRow, "meetings")
        assert before is not None
        stamp = before.updated_at
    report = sync(db, catalog(BASE))
    assert report.unchanged == ["meetings"]
    assert report.added == report.changed == []
    with db.session() as session:
        after = session.get(CatalogRow, "meetings")
        assert after is not None and after.updated_at == stamp


def test_an_added_field_applies_to_existing_records_with_its_default(db: Database) -> None:
    sync(db, catalog(BASE))
    first = create(db, "meetings", {"title": "Kick-off"})
    second = create(db, "meetings", {"title": "Retro"})
    changed = catalog(
        BASE + "  status: {type: choice, options: [planned, held], default: planned}\n"
        "  notes: text\n"
    )
    report = sync(db, changed)
    assert report.changed == ["meetings"]
    assert report.backfilled == {"meetings": 2}
    assert stored_data(db, "meetings", first)["status"] == "planned"
    assert stored_data(db, "meetings", second)["status"] == "planned"
    assert stored_data(db, "meetings", first).get("notes") is None
    # The new field is usable on the old records at once.
    with db.session() as session:
        service = RecordService(stored_catalogs(session))
        service.update(session, "meetings", first, {"status": "held"}, ADA)
        assert service.find(session, "meetings", {"status": "planned"}).total == 1
    with db.session() as session:  # schema back-fills are not record changes
        assert session.scalar(select(OutboxEvent.kind).where(OutboxEvent.kind != "created")) == (
            "updated"
        )


def test_removing_a_field_that_holds_data_is_refused_naming_field_and_count(
    db: Database,
) -> None:
    sync(db, catalog(BASE))
    create(db, "meetings", {"title": "A", "room": "Blue"})
    create(db, "meetings", {"title": "B", "room": "Red"})
    create(db, "meetings", {"title": "C"})
    without_room = catalog(BASE.replace("  room: text\n", ""))
    message = refusal(db, without_room)
    assert "field 'room' was removed but 2 record(s) hold a value for it" in message
    assert "catalogs/meetings.yaml: fields" in message
    assert "keep the field, or clear its values first" in message
    assert "room" in stored_fields(db)  # the stored definition did not change


def test_retyping_a_field_that_holds_data_is_refused_naming_field_and_count(
    db: Database,
) -> None:
    sync(db, catalog(BASE))
    create(db, "meetings", {"title": "A", "room": "12"})
    message = refusal(db, catalog(BASE.replace("room: text", "room: number")))
    assert "field 'room' changes from text to number but 1 record(s) hold a value" in message
    assert "catalogs/meetings.yaml: fields.room" in message
    with db.session() as session:
        assert stored_catalogs(session)["meetings"].fields["room"].type == "text"


def test_pointing_a_link_that_holds_data_elsewhere_is_refused(db: Database) -> None:
    people = "fields: {name: text}"
    link = "fields:\n  title: text\n  host: {type: link, catalog: employees}\n"
    sync(db, catalog(people, "employees"), catalog(people, "guests"), catalog(link))
    ada = create(db, "employees", {"name": "Ada"})
    create(db, "meetings", {"title": "A", "host": ada})
    message = refusal(db, catalog(link.replace("employees", "guests")))
    assert "from link to employees to link to guests but 1 record(s)" in message
    message = refusal(db, catalog(link.replace("}", ", many: true}")))
    assert "to link to employees (many)" in message


def test_removing_or_retyping_a_field_without_data_is_accepted(db: Database) -> None:
    sync(db, catalog(BASE))
    rid = create(db, "meetings", {"title": "A", "agenda": "", "seats": 4})
    changed = catalog(
        BASE.replace("  agenda: text\n", "").replace("room: text", "room: {type: number}")
    )
    report = sync(db, changed)
    assert report.changed == ["meetings"]
    assert stored_fields(db) == ["title", "room", "seats"]
    data = stored_data(db, "meetings", rid)
    # No trace of the removed field; no value the new type would refuse.
    assert data == {"title": "A", "room": None, "seats": 4}


def test_an_emptied_list_does_not_survive_a_change_of_type(db: Database) -> None:
    sync(db, catalog(BASE + "  guests: {type: emails, default: []}\n"))
    rid = create(db, "meetings", {"title": "A"})
    assert stored_data(db, "meetings", rid)["guests"] == []
    sync(db, catalog(BASE + "  guests: text\n"))
    assert stored_data(db, "meetings", rid)["guests"] is None


def test_a_refused_reload_changes_no_catalog(db: Database) -> None:
    sync(db, catalog(BASE), catalog("fields: {name: text}", "employees"))
    create(db, "meetings", {"title": "A", "room": "Blue"})
    refusal(
        db,
        catalog("fields: {name: text, email: email}", "employees"),
        catalog(BASE.replace("  room: text\n", "")),
    )
    assert stored_fields(db, "employees") == ["name"]


def test_a_link_to_an_undefined_catalog_is_refused(db: Database) -> None:
    message = refusal(db, catalog("fields:\n  host: {type: link, catalog: employes}\n"))
    assert "links to catalog 'employes', which is not defined" in message
    assert "catalogs/meetings.yaml: fields.host" in message
    with db.session() as session:
        assert stored_catalogs(session) == {}


def test_a_link_may_point_to_a_catalog_stored_earlier(db: Database) -> None:
    sync(db, catalog("fields: {name: text}", "employees"))
    report = sync(db, catalog("fields:\n  host: {type: link, catalog: employees}\n"))
    assert report.added == ["meetings"]


def test_triggers_must_name_deployed_processes_when_those_are_known(db: Database) -> None:
    with_trigger = catalog(BASE + "triggers:\n  - on: created\n    process: meeting_created\n")
    with pytest.raises(ValidationFailed) as exc:
        sync(db, with_trigger, processes=["other"])
    (p,) = exc.value.problems
    assert p.message == (
        "trigger 'created:meeting_created' starts process 'meeting_created', which is not deployed"
    )
    assert "catflow deploy" in p.hint
    assert sync(db, with_trigger, processes=["meeting_created"]).added == ["meetings"]


def test_triggers_are_not_checked_against_processes_when_none_are_given(db: Database) -> None:
    with_trigger = catalog(BASE + "triggers:\n  - on: deleted\n    process: not_deployed\n")
    sync(db, with_trigger)
    with db.session() as session:
        (trigger,) = stored_catalogs(session)["meetings"].triggers
    assert (trigger.on, trigger.process) == ("deleted", "not_deployed")


def test_the_order_of_fields_survives_storage_and_a_reorder_is_a_change(db: Database) -> None:
    order = ["title", "zone", "agenda", "b", "room", "seats"]
    text = "fields:\n" + "".join(f"  {name}: text\n" for name in order)
    sync(db, catalog(text))
    assert stored_fields(db) == order  # PostgreSQL's JSONB would sort the keys
    reordered = "fields:\n" + "".join(f"  {name}: text\n" for name in reversed(order))
    assert sync(db, catalog(reordered)).changed == ["meetings"]
    assert stored_fields(db) == list(reversed(order))
    rid = create(db, "meetings", {"seats": "4", "title": "A"})
    assert list(stored_data(db, "meetings", rid)) == list(reversed(order))


def test_removing_a_choice_option_that_records_hold_is_refused(db: Database) -> None:
    status = "  status: {type: choice, options: [planned, held, cancelled]}\n"
    sync(db, catalog(BASE + status))
    create(db, "meetings", {"title": "A", "status": "held"})
    create(db, "meetings", {"title": "B", "status": "held"})
    create(db, "meetings", {"title": "C", "status": "planned"})
    message = refusal(db, catalog(BASE + status.replace(", held", "")))
    assert "option(s) 'held' of field 'status' were removed but 2 record(s) hold them" in message
    assert "catalogs/meetings.yaml: fields.status" in message
    # An option no record holds may go; new options may come.
    sync(db, catalog(BASE + status.replace("cancelled", "postponed")))
    with db.session() as session:
        options = stored_catalogs(session)["meetings"].fields["status"].options
    assert options == ("planned", "held", "postponed")


def test_a_changed_default_is_stored_even_when_python_calls_it_equal(db: Database) -> None:
    sync(db, catalog(BASE + "  extra: {type: json, default: 1}\n"))
    assert sync(db, catalog(BASE + "  extra: {type: json, default: true}\n")).changed
    with db.session() as session:
        assert stored_catalogs(session)["meetings"].fields["extra"].default is True
    assert sync(db, catalog(BASE + "  extra: {type: json, default: true}\n")).unchanged


def test_making_a_field_required_is_refused_while_records_have_no_value_for_it(
    db: Database,
) -> None:
    sync(db, catalog(BASE))
    create(db, "meetings", {"title": "A", "room": "12"})
    create(db, "meetings", {"title": "B"})
    create(db, "meetings", {"title": "C", "room": ""})
    message = refusal(db, catalog(BASE.replace("room: text", "room: {type: text, required: true}")))
    assert "field 'room' becomes required but 2 record(s) have no value for it" in message
    assert "catalogs/meetings.yaml: fields.room" in message
    assert "give it a default (filled in on those records)" in message
    with db.session() as session:
        assert not stored_catalogs(session)["meetings"].fields["room"].required
    # A new required field with no default is refused the same way.
    message = refusal(db, catalog(BASE + "  owner: {type: text, required: true}\n"))
    assert "field 'owner' becomes required but 3 record(s) have no value for it" in message


def test_a_field_made_required_with_a_default_fills_the_records_without_a_value(
    db: Database,
) -> None:
    sync(db, catalog(BASE))
    kept = create(db, "meetings", {"title": "A", "room": "12"})
    empty = create(db, "meetings", {"title": "B", "room": ""})
    unset = create(db, "meetings", {"title": "C"})
    report = sync(
        db,
        catalog(BASE.replace("room: text", "room: {type: text, required: true, default: lobby}")),
    )
    assert report.changed == ["meetings"] and report.backfilled == {"meetings": 2}
    assert [stored_data(db, "meetings", r)["room"] for r in (kept, empty, unset)] == [
        "12",
        "lobby",
        "lobby",
    ]
