"""Field types: which values each accepts, their stored form, and what a refusal says."""

from __future__ import annotations

from typing import Any

import pytest

from engine.catalogs import FIELD_TYPES, FieldDef, FieldError, normalise


def field(type_: str, **kwargs: Any) -> FieldDef:
    return FieldDef(name="f", type=type_, **kwargs)


def test_every_documented_type_is_known() -> None:
    assert set(FIELD_TYPES) == {
        "text",
        "number",
        "boolean",
        "date",
        "datetime",
        "email",
        "emails",
        "link",
        "choice",
        "json",
    }


@pytest.mark.parametrize("type_", FIELD_TYPES)
def test_none_means_no_value_for_every_type(type_: str) -> None:
    f = field(type_, options=("a",), catalog="employees" if type_ == "link" else None)
    assert normalise(f, None) is None


def test_text_accepts_strings_and_enforces_max_length() -> None:
    assert normalise(field("text"), "Weekly sync") == "Weekly sync"
    assert normalise(field("text", max_length=3), "abc") == "abc"
    with pytest.raises(FieldError, match="4 characters long; at most 3"):
        normalise(field("text", max_length=3), "abcd")
    with pytest.raises(FieldError, match="expected text, got a number"):
        normalise(field("text"), 12)


def test_number_accepts_ints_and_floats_but_not_booleans_or_text() -> None:
    assert normalise(field("number"), 3) == 3
    assert normalise(field("number"), 2.5) == 2.5
    with pytest.raises(FieldError, match="expected a number, got a boolean"):
        normalise(field("number"), True)
    with pytest.raises(FieldError, match="expected a number, got text"):
        normalise(field("number"), "3")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_number_refuses_values_json_cannot_store(value: float) -> None:
    with pytest.raises(FieldError, match="cannot be stored"):
        normalise(field("number"), value)


def test_boolean_accepts_only_true_and_false() -> None:
    assert normalise(field("boolean"), False) is False
    assert normalise(field("boolean"), True) is True
    for value in (0, 1, "true", "yes"):
        with pytest.raises(FieldError, match="expected true or false"):
            normalise(field("boolean"), value)


def test_date_is_iso_8601() -> None:
    assert normalise(field("date"), "2026-11-21") == "2026-11-21"
    with pytest.raises(FieldError, match=r"'21\.11\.2026' is not a date like 2026-11-21"):
        normalise(field("date"), "21.11.2026")
    with pytest.raises(FieldError, match="expected a date"):
        normalise(field("date"), 20261121)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2026-11-21T09:30:00+01:00", "2026-11-21T09:30:00+01:00"),
        ("2026-11-21T09:30:00Z", "2026-11-21T09:30:00+00:00"),
        ("2026-11-21T09:30:00.250-05:00", "2026-11-21T09:30:00.250000-05:00"),
        ("2026-11-21 09:30+02:00", "2026-11-21T09:30:00+02:00"),
    ],
)
def test_datetime_keeps_the_offset_and_writes_iso_8601(given: str, stored: str) -> None:
    assert normalise(field("datetime"), given) == stored


def test_naive_datetime_is_refused_with_a_hint_to_add_an_offset() -> None:
    with pytest.raises(FieldError) as exc:
        normalise(field("datetime"), "2026-11-21T09:30:00")
    message = str(exc.value)
    assert "has no UTC offset" in message
    assert "2026-11-21T09:30:00+00:00" in message
    assert "2026-11-21T09:30:00Z" in message


def test_datetime_refuses_garbage_and_non_text() -> None:
    with pytest.raises(FieldError, match="is not an ISO 8601 date and time"):
        normalise(field("datetime"), "next tuesday")
    with pytest.raises(FieldError, match="expected an ISO 8601 date and time"):
        normalise(field("datetime"), 1_700_000_000)


def test_email_is_validated_and_its_domain_lower_cased() -> None:
    assert normalise(field("email"), "  Ada@Example.COM ") == "Ada@example.com"
    with pytest.raises(FieldError, match="'ada@' is not a valid e-mail address"):
        normalise(field("email"), "ada@")
    with pytest.raises(FieldError, match="expected an e-mail address as text"):
        normalise(field("email"), ["ada@example.com"])


def test_emails_is_a_list_of_addresses_and_names_the_bad_item() -> None:
    f = field("emails")
    assert normalise(f, ["a@Example.com", "b@example.org"]) == ["a@example.com", "b@example.org"]
    assert normalise(f, []) == []
    with pytest.raises(FieldError, match="item 1: 'not-an-address' is not a valid e-mail"):
        normalise(f, ["a@example.com", "not-an-address"])
    with pytest.raises(FieldError, match="expected a list of e-mail addresses, got text"):
        normalise(f, "a@example.com")


def test_single_link_is_a_positive_record_id() -> None:
    f = field("link", catalog="employees")
    assert normalise(f, 7) == 7
    assert normalise(f, {"id": 7, "name": "Ada"}) == 7  # a record as processes see it
    with pytest.raises(FieldError, match="record ids are positive, got 0"):
        normalise(f, 0)
    with pytest.raises(FieldError, match="expected a record id"):
        normalise(f, "7")
    with pytest.raises(FieldError, match="expected a record id"):
        normalise(f, True)


def test_many_link_is_a_list_of_record_ids() -> None:
    f = field("link", catalog="employees", many=True)
    assert normalise(f, [1, {"id": 2}]) == [1, 2]
    with pytest.raises(FieldError, match="expected a list of employees record ids"):
        normalise(f, 1)
    with pytest.raises(FieldError, match="item 1: expected a record id"):
        normalise(f, [1, "two"])


def test_choice_accepts_only_its_options() -> None:
    f = field("choice", options=("planned", "held"))
    assert normalise(f, "held") == "held"
    with pytest.raises(FieldError, match="'done' is not one of: planned, held"):
        normalise(f, "done")


def test_json_accepts_json_values_only() -> None:
    f = field("json")
    value = {"rooms": ["A", "B"], "capacity": 12, "remote": True, "note": None}
    assert normalise(f, value) == value
    with pytest.raises(FieldError, match="is not JSON"):
        normalise(f, {"when": object()})
    with pytest.raises(FieldError, match="is not JSON"):
        normalise(f, [float("nan")])
