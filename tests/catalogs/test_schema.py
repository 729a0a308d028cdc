"""Catalog YAML: what a valid definition becomes, and how each mistake is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.catalogs import (
    CatalogDef,
    catalog_from_dict,
    load_catalog_files,
    parse_catalog_text,
)
from engine.errors import Problem, ValidationFailed


def parse(text: str, name: str = "meetings") -> CatalogDef:
    return parse_catalog_text(text, f"catalogs/{name}.yaml", name)


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(ValidationFailed) as exc:
        parse(text)
    assert exc.value.problems, "a refusal must say what is wrong"
    return exc.value.problems


def only_problem(text: str) -> Problem:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


# -- what a valid definition becomes -------------------------------------------


def test_reference_catalog_parses_into_typed_fields(meetings_yaml: str) -> None:
    meetings = parse(meetings_yaml)
    assert meetings.name == "meetings"
    assert meetings.title == "Meetings"
    assert meetings.description == "Meetings mirrored to Google Calendar"
    assert meetings.source == "catalogs/meetings.yaml"
    assert list(meetings.fields) == [
        "title",
        "agenda",
        "starts_at",
        "ends_at",
        "day",
        "organizer",
        "participants",
        "extra_participants",
        "status",
        "calendar_event_id",
        "details",
    ]
    f = meetings.fields
    assert f["title"].type == "text" and f["title"].required
    assert f["agenda"].type == "text" and not f["agenda"].required  # `agenda: text` shorthand
    assert f["participants"].catalog == "employees" and f["participants"].many
    assert f["participants"].is_list and f["extra_participants"].is_list
    assert f["organizer"].catalog == "employees" and not f["organizer"].is_list
    assert f["status"].options == ("planned", "held", "cancelled")
    assert f["status"].default == "planned"
    assert f["extra_participants"].default == []
    assert f["calendar_event_id"].readonly
    assert meetings.triggers == ()


def test_title_defaults_from_the_file_name_and_name_key_overrides_it() -> None:
    assert parse("fields: {a: text}", "team_members").title == "Team Members"
    named = parse_catalog_text("name: staff\nfields: {a: text}", "catalogs/x.yaml", "x")
    assert named.name == "staff"


def test_defaults_are_stored_in_their_normal_form() -> None:
    catalog = parse(
        "fields:\n"
        "  at: {type: datetime, default: '2026-01-01T08:00:00Z'}\n"
        "  to: {type: email, default: Team@Example.COM}\n"
    )
    assert catalog.fields["at"].default == "2026-01-01T08:00:00+00:00"
    assert catalog.fields["to"].default == "Team@example.com"


def test_bare_on_key_works_despite_yaml_reading_it_as_true() -> None:
    catalog = parse(
        "fields: {title: text, status: text}\n"
        "triggers:\n"
        "  - on: created\n"
        "    process: meeting_created\n"
        "  - on: updated\n"
        "    process: meeting_updated\n"
        "    fields: [title]\n"
        "    when: new['status'] != 'cancelled'\n"
        "    ignore_own_writes: false\n"
        "  - name: on_delete\n"
        "    'on': deleted\n"
        "    process: meeting_deleted\n"
    )
    created, updated, deleted = catalog.triggers
    assert (created.on, created.process, created.key) == (
        "created",
        "meeting_created",
        "created:meeting_created",
    )
    assert created.ignore_own_writes is True
    assert updated.on == "updated"
    assert updated.fields == ("title",)
    assert updated.when == "new['status'] != 'cancelled'"
    assert updated.ignore_own_writes is False
    assert (deleted.key, deleted.on) == ("on_delete", "deleted")


def test_two_rules_for_the_same_event_and_process_get_distinct_keys() -> None:
    catalog = parse(
        "fields: {a: text}\n"
        "triggers:\n"
        "  - {'on': created, process: p}\n"
        "  - {'on': created, process: p, when: \"new['a']\"}\n"
    )
    assert [t.key for t in catalog.triggers] == ["created:p", "created:p#1"]


def test_a_stored_definition_round_trips_to_the_same_catalog(meetings_yaml: str) -> None:
    original = parse(
        meetings_yaml + "triggers:\n  - on: updated\n    process: p\n    fields: [title]\n"
    )
    again = catalog_from_dict(original.to_dict(), original.source)
    assert again == original
    assert again.content_hash == original.content_hash


def test_content_hash_changes_with_the_definition_only(meetings_yaml: str) -> None:
    assert parse(meetings_yaml).content_hash == parse(meetings_yaml).content_hash
    changed = parse(meetings_yaml + "  room: text\n")
    assert parse(meetings_yaml).content_hash != changed.content_hash


# -- mistakes, each reported clearly ------------------------------------------


def test_unknown_type_lists_the_known_types() -> None:
    p = only_problem("fields:\n  starts_at: {type: timestamp}\n")
    assert p.where == "catalogs/meetings.yaml: fields.starts_at"
    assert p.message == "unknown type 'timestamp'"
    assert "datetime" in p.hint and "emails" in p.hint


def test_missing_type_is_an_unknown_type() -> None:
    p = only_problem("fields:\n  title: {required: true}\n")
    assert p.message == "unknown type None"


def test_choice_without_options_is_refused() -> None:
    p = only_problem("fields:\n  status: {type: choice}\n")
    assert p.where.endswith("fields.status")
    assert "needs a list of 'options'" in p.message
    assert "needs a list" in only_problem("fields: {s: {type: choice, options: []}}").message


def test_choice_options_read_by_yaml_as_booleans_are_refused_with_a_hint_to_quote() -> None:
    p = only_problem("fields:\n  rsvp: {type: choice, options: [yes, no, maybe]}\n")
    assert p.where.endswith("fields.rsvp.options")
    assert "options must be text; got True, False" in p.message
    assert "quote" in p.hint
    quoted = parse("fields:\n  rsvp: {type: choice, options: ['yes', 'no', maybe]}\n")
    assert quoted.fields["rsvp"].options == ("yes", "no", "maybe")


def test_link_without_catalog_is_refused() -> None:
    p = only_problem("fields:\n  participants: {type: link, many: true}\n")
    assert p.where.endswith("fields.participants")
    assert "a link field needs 'catalog'" in p.message


def test_keys_that_do_not_apply_to_the_type_are_refused() -> None:
    problems = problems_of(
        "fields:\n"
        "  extra: {type: emails, many: true}\n"
        "  status: {type: text, options: [a, b]}\n"
        "  owner: {type: number, catalog: employees}\n"
    )
    messages = {p.where.split(": ")[1]: p.message for p in problems}
    assert messages == {
        "fields.extra.many": "'many' only applies to link fields, not emails",
        "fields.status.options": "'options' only applies to choice fields, not text",
        "fields.owner.catalog": "'catalog' only applies to link fields, not number",
    }


def test_flags_must_be_booleans() -> None:
    p = only_problem("fields:\n  title: {type: text, required: 'no'}\n")
    assert p.where.endswith("fields.title.required")
    assert p.message == "expected true or false, got 'no'"


@pytest.mark.parametrize("bad", ["0", "-3", "ten", "true"])
def test_max_length_must_be_a_positive_whole_number(bad: str) -> None:
    p = only_problem(f"fields:\n  title: {{type: text, max_length: {bad}}}\n")
    assert p.message == "max_length must be a positive whole number"


def test_default_that_does_not_fit_the_field_is_refused() -> None:
    p = only_problem("fields:\n  status: {type: choice, options: [a, b], default: c}\n")
    assert p.where.endswith("fields.status.default")
    assert "'c' is not one of: a, b" in p.message
    p = only_problem("fields:\n  starts_at: {type: datetime, default: '2026-01-01T08:00:00'}\n")
    assert "has no UTC offset" in p.message


def test_unknown_keys_are_named_with_the_known_ones() -> None:
    problems = problems_of(
        "titel: Meetings\nfields:\n  title: {type: text, requird: true}\n"
        "triggers:\n  - {on: created, process: p, field: [title]}\n"
    )
    by_where = {p.where: p for p in problems}
    assert set(by_where) == {
        "catalogs/meetings.yaml: titel",
        "catalogs/meetings.yaml: fields.title",
        "catalogs/meetings.yaml: triggers[0]",
    }
    assert by_where["catalogs/meetings.yaml: titel"].message == "unknown key"
    assert "title" in by_where["catalogs/meetings.yaml: titel"].hint
    assert by_where["catalogs/meetings.yaml: fields.title"].message == "unknown key(s) requird"
    assert "required" in by_where["catalogs/meetings.yaml: fields.title"].hint
    assert by_where["catalogs/meetings.yaml: triggers[0]"].message == "unknown key(s) field"


@pytest.mark.parametrize("name", ["Title", "2nd", "id", "starts-at"])
def test_invalid_or_reserved_field_names_are_refused(name: str) -> None:
    p = only_problem(f"fields:\n  {name}: text\n")
    assert p.message == f"{name!r} is not a valid field name"
    assert "'id' is reserved" in p.hint


def test_invalid_catalog_name_is_refused() -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_catalog_text("fields: {a: text}", "catalogs/My Meetings.yaml", "My Meetings")
    assert exc.value.problems[0].message == "'My Meetings' is not a valid catalog name"


@pytest.mark.parametrize("text", ["title: x\n", "fields: {}\n", "fields: [title]\n"])
def test_a_catalog_needs_a_fields_mapping(text: str) -> None:
    p = only_problem(text)
    assert p.message == "a catalog needs a 'fields' mapping"


def test_a_document_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="is not a catalog definition"):
        parse("- just\n- a list\n")


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse("title: Meetings\nfields:\n  title: {type: text\n  agenda: text\n")
    assert exc.value.message == "catalogs/meetings.yaml is not valid YAML"
    (p,) = exc.value.problems
    assert p.where == "catalogs/meetings.yaml: line 4"
    assert "expected ',' or '}'" in p.message


@pytest.mark.parametrize("on", ["create", "changed", "true"])
def test_bad_trigger_on_is_refused_with_the_event_kinds(on: str) -> None:
    p = only_problem(f"fields: {{a: text}}\ntriggers:\n  - on: {on}\n    process: p\n")
    assert p.where == "catalogs/meetings.yaml: triggers[0].on"
    assert "is not an event kind" in p.message
    assert p.hint == "one of: created, updated, deleted"


def test_trigger_without_on_or_process_is_refused() -> None:
    problems = problems_of("fields: {a: text}\ntriggers:\n  - {when: 'True'}\n")
    assert {p.where.split(": ")[1] for p in problems} == {
        "triggers[0].on",
        "triggers[0].process",
    }
    assert only_problem("fields: {a: text}\ntriggers: {on: created}\n").message == (
        "expected a list of trigger rules"
    )


def test_trigger_fields_naming_unknown_fields_are_refused() -> None:
    p = only_problem(
        "fields: {title: text, agenda: text}\n"
        "triggers:\n  - on: updated\n    process: p\n    fields: [title, room]\n"
    )
    assert p.where == "catalogs/meetings.yaml: triggers[0].fields"
    assert p.message == "unknown field 'room'"
    assert p.hint == "fields of this catalog: title, agenda"


def test_trigger_fields_only_apply_to_updates() -> None:
    p = only_problem(
        "fields: {title: text}\ntriggers:\n  - on: created\n    process: p\n    fields: [title]\n"
    )
    assert p.message == "'fields' only applies to 'on: updated'"


def test_trigger_when_with_a_syntax_error_is_refused() -> None:
    p = only_problem(
        "fields: {title: text}\n"
        "triggers:\n  - on: updated\n    process: p\n    when: new['title'] ==\n"
    )
    assert p.where == "catalogs/meetings.yaml: triggers[0].when"
    assert p.message.startswith("invalid expression:")
    assert "SyntaxError" in p.message
    assert "`new`" in p.hint


def test_trigger_when_that_scripts_may_not_run_is_refused() -> None:
    p = only_problem(
        "fields: {title: text}\n"
        "triggers:\n  - on: created\n    process: p\n    when: new.__class__\n"
    )
    assert p.where.endswith("triggers[0].when")
    assert "__class__" in p.message


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    problems = problems_of(
        "fields:\n"
        "  a: {type: texte}\n"
        "  b: {type: choice}\n"
        "  c: {type: link}\n"
        "triggers:\n  - on: later\n    process: p\n"
    )
    assert [p.where.split(": ")[1] for p in problems] == [
        "fields.a",
        "fields.b",
        "fields.c",
        "triggers[0].on",
    ]


# -- loading a folder ----------------------------------------------------------


def test_load_catalog_files_reads_yaml_and_yml(
    tmp_path: Path, employees_yaml: str, meetings_yaml: str
) -> None:
    (tmp_path / "employees.yaml").write_text(employees_yaml)
    (tmp_path / "meetings.yml").write_text(meetings_yaml)
    (tmp_path / "notes.txt").write_text("not a catalog")
    defs = load_catalog_files(tmp_path)
    assert sorted(defs) == ["employees", "meetings"]
    assert defs["meetings"].source == str(tmp_path / "meetings.yml")


def test_load_catalog_files_reports_problems_of_every_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("fields: {x: {type: nope}}\n")
    (tmp_path / "b.yaml").write_text("fields: {x: text\n")
    (tmp_path / "c.yaml").write_text("fields: {x: text}\n")
    with pytest.raises(ValidationFailed) as exc:
        load_catalog_files(tmp_path)
    wheres = [p.where for p in exc.value.problems]
    assert wheres[0] == f"{tmp_path / 'a.yaml'}: fields.x"
    assert wheres[1].startswith(f"{tmp_path / 'b.yaml'}: line ")


def test_a_catalog_defined_twice_is_refused(tmp_path: Path, meetings_yaml: str) -> None:
    (tmp_path / "meetings.yaml").write_text(meetings_yaml)
    (tmp_path / "other.yaml").write_text("name: meetings\nfields: {a: text}\n")
    with pytest.raises(ValidationFailed) as exc:
        load_catalog_files(tmp_path)
    (p,) = exc.value.problems
    assert p.where == str(tmp_path / "other.yaml")
    assert "catalog 'meetings' is defined again" in p.message
    assert str(tmp_path / "meetings.yaml") in p.message


def test_a_missing_catalogs_folder_means_no_catalogs(tmp_path: Path) -> None:
    assert load_catalog_files(tmp_path / "nowhere") == {}


def test_after_names_another_field_of_the_same_type() -> None:
    ok = parse("fields:\n  starts_at: datetime\n  ends_at: {type: datetime, after: starts_at}\n")
    assert ok.fields["ends_at"].after == "starts_at"
    assert catalog_from_dict(ok.to_dict()).fields["ends_at"].after == "starts_at"
    p = only_problem("fields:\n  day: date\n  ends_at: {type: datetime, after: day}\n")
    assert p.where == "catalogs/meetings.yaml: fields.ends_at.after"
    assert p.message == "'day' is not another datetime field of this catalog"
    p = only_problem("fields:\n  n: {type: number, after: m}\n  m: number\n")
    assert p.message == "'after' applies to date and datetime fields, not number"


def test_trigger_variables_are_start_variables_but_not_the_reserved_ones() -> None:
    ok = parse(
        "fields: {title: text}\ntriggers:\n  - on: created\n    process: p\n"
        "    variables: {default_duration_minutes: 30}\n"
    )
    assert ok.triggers[0].variables == {"default_duration_minutes": 30}
    assert catalog_from_dict(ok.to_dict()).triggers[0].variables == ok.triggers[0].variables
    p = only_problem(
        "fields: {title: text}\ntriggers:\n  - on: created\n    process: p\n"
        "    variables: {record: 1}\n"
    )
    assert p.where == "catalogs/meetings.yaml: triggers[0].variables"
    assert p.message == "record are set by the trigger itself"
    p = only_problem(
        "fields: {title: text}\ntriggers:\n  - on: created\n    process: p\n    variables: [1]\n"
    )
    assert p.message == "expected a mapping of variable names to values"
