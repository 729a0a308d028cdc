"""parse_where: the command line's ``--where FIELD=VALUE`` turned into typed filters."""

from __future__ import annotations

import pytest

from engine.catalogs import RecordService, parse_catalog_text
from engine.errors import ValidationFailed


@pytest.fixture
def service(employees_yaml: str, meetings_yaml: str) -> RecordService:
    """The record service over the reference catalogs; parsing filters needs no database."""
    return RecordService(
        {
            name: parse_catalog_text(text, f"{name}.yaml", name)
            for name, text in (("employees", employees_yaml), ("meetings", meetings_yaml))
        }
    )


def test_parse_where_types_each_value_by_its_field(service: RecordService) -> None:
    filters = service.parse_where(
        "employees",
        [
            "name=Ada Lovelace",
            "level=3",
            "active=no",
            "team=sales",
            "manager=12",
            "email=ADA@Example.com",
            "skills=x@Example.org",
            "id=5",
        ],
    )
    assert filters == {
        "name": "Ada Lovelace",
        "level": 3.0,
        "active": False,
        "team": "sales",
        "manager": 12,
        "email": "ADA@example.com",
        "skills": "x@example.org",
        "id": 5,
    }
    meetings = service.parse_where(
        "meetings", ["starts_at=2026-11-23T08:30:00Z", "day=2026-11-23", "participants=4"]
    )
    assert meetings == {
        "starts_at": "2026-11-23T08:30:00+00:00",
        "day": "2026-11-23",
        "participants": 4,
    }


@pytest.mark.parametrize(
    ("raw", "value"),
    [("true", True), ("YES", True), ("1", True), ("false", False), ("No", False), ("0", False)],
)
def test_parse_where_reads_booleans(service: RecordService, raw: str, value: bool) -> None:
    assert service.parse_where("employees", [f"active={raw}"]) == {"active": value}


def test_parse_where_keeps_everything_after_the_first_equals_sign(service: RecordService) -> None:
    assert service.parse_where("employees", ["name=a=b"]) == {"name": "a=b"}


def test_parse_where_reports_every_bad_expression(service: RecordService) -> None:
    with pytest.raises(ValidationFailed) as exc:
        service.parse_where(
            "employees",
            [
                "nmae=Ada",
                "level=three",
                "active=maybe",
                "team=marketing",
                "manager=Ada",
                "email=not-an-address",
                "name",
                "id=seven",
            ],
        )
    assert exc.value.message == "the filters were refused"
    got = [(p.where, p.message) for p in exc.value.problems]
    assert got[0] == ("--where", "no field 'nmae' in employees")
    assert "fields of employees: name, email" in exc.value.problems[0].hint
    assert got[1:] == [
        ("--where level", "'three' is not a number"),
        ("--where active", "'maybe' is not true or false"),
        ("--where team", "'marketing' is not one of: sales, engineering, support"),
        ("--where manager", "'Ada' is not a record id"),
        ("--where email", got[5][1]),
        ("--where", "'name' is not FIELD=VALUE"),
        ("--where id", "'seven' is not a record id"),
    ]
    assert "'not-an-address' is not a valid e-mail address" in got[5][1]


def test_parse_where_refuses_json_fields_and_non_finite_numbers(service: RecordService) -> None:
    with pytest.raises(ValidationFailed) as exc:
        service.parse_where("meetings", ["details=x"])
    assert exc.value.problems[0].message == "json fields cannot be filtered on"
    with pytest.raises(ValidationFailed, match="'nan' is not a number"):
        service.parse_where("employees", ["level=nan"])
