"""The helpers scripts are given: durations, RFC 3339 times, e-mail addresses, lists, nesting."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from engine.sandbox import HELPERS, add_duration, dig, normalize_email, parse_duration, unique
from engine.sandbox._helpers import format_rfc3339, is_email, parse_datetime, to_time_zone

# -- durations -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT45M", timedelta(minutes=45)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("PT90S", timedelta(seconds=90)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("P2W", timedelta(weeks=2)),
        ("P1D", timedelta(days=1)),
        (" PT15M ", timedelta(minutes=15)),
    ],
)
def test_parse_duration_reads_iso_8601(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [(30, timedelta(minutes=30)), (1.5, timedelta(seconds=90)), (0, timedelta(0))],
)
def test_parse_duration_reads_a_number_as_minutes(minutes: float, expected: timedelta) -> None:
    assert parse_duration(minutes) == expected


@pytest.mark.parametrize(
    "bad", ["", "P", "PT", "P1DT", "45", "45 minutes", "1H", "pt45m", "PT-5M", "PT1,5H", True]
)
def test_parse_duration_refuses_anything_else_with_an_example(bad: Any) -> None:
    with pytest.raises(ValueError, match="is not an ISO 8601 duration such as 'PT45M'"):
        parse_duration(bad)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_parse_duration_refuses_non_finite_minutes(bad: float) -> None:
    with pytest.raises(ValueError, match="is not a number of minutes"):
        parse_duration(bad)


def test_add_duration_keeps_the_offset() -> None:
    assert add_duration("2026-11-23T09:30:00+01:00", "PT45M") == "2026-11-23T10:15:00+01:00"
    assert add_duration("2026-11-23T23:30:00Z", "P1DT2H") == "2026-11-25T01:30:00+00:00"
    assert add_duration("2026-11-23T09:30:00-05:00", 90) == "2026-11-23T11:00:00-05:00"
    start = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    assert add_duration(start, "PT30M") == "2026-11-23T10:00:00+00:00"


def test_add_duration_refuses_a_time_without_offset() -> None:
    with pytest.raises(ValueError, match="has no UTC offset"):
        add_duration("2026-11-23T09:30:00", "PT45M")
    with pytest.raises(ValueError, match="without an offset"):
        add_duration(datetime(2026, 11, 23, 9, 30), "PT45M")
    with pytest.raises(ValueError, match="not an ISO 8601 duration"):
        add_duration("2026-11-23T09:30:00Z", "45 minutes")


# -- RFC 3339 ------------------------------------------------------------------


def test_parse_datetime_accepts_z_and_offsets_only() -> None:
    assert parse_datetime("2026-11-23T09:30:00Z") == datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    assert parse_datetime("2026-11-23T09:30:00+01:00").utcoffset() == timedelta(hours=1)
    with pytest.raises(ValueError, match=r"has no UTC offset; write e\.g\."):
        parse_datetime("2026-11-23T09:30:00")
    with pytest.raises(ValueError, match="'tuesday' is not an RFC 3339 timestamp"):
        parse_datetime("tuesday")


@pytest.mark.parametrize(
    ("value", "zone", "expected"),
    [
        ("2026-11-23T09:30:00Z", None, "2026-11-23T09:30:00+00:00"),
        ("2026-11-23T09:30:00Z", "Europe/Berlin", "2026-11-23T10:30:00+01:00"),
        ("2026-07-01T09:30:00Z", "Europe/Berlin", "2026-07-01T11:30:00+02:00"),  # summer time
        ("2026-11-23T09:30:00+01:00", "America/New_York", "2026-11-23T03:30:00-05:00"),
        ("2026-11-23T09:30:00+01:00", "UTC", "2026-11-23T08:30:00+00:00"),
        ("2026-11-23T09:30:00Z", "Asia/Kolkata", "2026-11-23T15:00:00+05:30"),
    ],
)
def test_format_rfc3339_converts_into_a_time_zone(
    value: str, zone: str | None, expected: str
) -> None:
    assert format_rfc3339(value, zone) == expected


def test_format_rfc3339_takes_aware_datetimes_and_refuses_naive_ones() -> None:
    moment = datetime(2026, 11, 23, 9, 30, 15, tzinfo=timezone(timedelta(hours=-3)))
    assert format_rfc3339(moment) == "2026-11-23T09:30:15-03:00"
    assert to_time_zone(moment, "UTC") == "2026-11-23T12:30:15+00:00"
    with pytest.raises(ValueError, match="without an offset cannot be written as RFC 3339"):
        format_rfc3339(datetime(2026, 11, 23, 9, 30))


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "CET+1"])
def test_format_rfc3339_refuses_unknown_time_zones_clearly(zone: str) -> None:
    with pytest.raises(ValueError, match="is not a known time zone; use an IANA name"):
        format_rfc3339("2026-11-23T09:30:00Z", zone)


def test_today_is_a_date_in_the_given_zone() -> None:
    assert date.fromisoformat(HELPERS["today"]("Pacific/Kiritimati"))
    with pytest.raises(ValueError, match="is not a known time zone"):
        HELPERS["today"]("Nowhere/Land")


# -- e-mail --------------------------------------------------------------------


def test_normalize_email_trims_and_lower_cases_the_domain() -> None:
    assert normalize_email("  Ada.Lovelace@Example.COM ") == "Ada.Lovelace@example.com"
    assert normalize_email("grace@example.org") == "grace@example.org"


@pytest.mark.parametrize("bad", ["", "ada", "ada@", "@example.com", "a b@example.com", None])
def test_normalize_email_refuses_invalid_addresses(bad: Any) -> None:
    with pytest.raises(ValueError, match="is not a valid e-mail address"):
        normalize_email(bad)


def test_is_email_answers_without_raising() -> None:
    assert is_email("ada@example.com") is True
    assert is_email("ada@") is False
    assert is_email(42) is False


# -- lists ---------------------------------------------------------------------


def test_unique_keeps_the_first_of_each_in_order() -> None:
    assert unique([3, 1, 3, 2, 1]) == [3, 1, 2]
    assert unique([]) == []
    assert unique(["a@x.org", "A@x.org"]) == ["a@x.org", "A@x.org"]


def test_unique_ignore_case_merges_addresses_differing_in_case() -> None:
    merged = ["ada@example.com", "Grace@Example.com", "ADA@example.com", "grace@example.com"]
    assert unique(merged, ignore_case=True) == ["ada@example.com", "Grace@Example.com"]
    assert unique([1, "A", "a", 1], ignore_case=True) == [1, "A"]


def test_unique_by_key_compares_one_entry_of_each_dict() -> None:
    people = [
        {"email": "ada@example.com", "name": "Ada"},
        {"email": "ADA@example.com", "name": "Ada L."},
        {"email": "grace@example.com", "name": "Grace"},
    ]
    assert [p["name"] for p in unique(people, key="email")] == ["Ada", "Ada L.", "Grace"]
    assert [p["name"] for p in unique(people, key="email", ignore_case=True)] == ["Ada", "Grace"]


def test_unique_handles_dicts_and_lists_as_values() -> None:
    items = [{"a": 1}, {"a": 1}, [1, 2], {"a": 2}, [1, 2]]
    assert unique(items) == [{"a": 1}, [1, 2], {"a": 2}]


# -- nested data ---------------------------------------------------------------


def test_dig_walks_dicts_and_lists() -> None:
    event = {"conferenceData": {"entryPoints": [{"uri": "https://meet/x"}, {"uri": "tel:1"}]}}
    assert dig(event, "conferenceData.entryPoints.0.uri") == "https://meet/x"
    assert dig(event, "conferenceData.entryPoints.-1.uri") == "tel:1"
    assert dig(event, "") is event


@pytest.mark.parametrize(
    "path",
    [
        "conferenceData.entryPoints.5.uri",
        "conferenceData.entryPoints.-3",
        "conferenceData.missing",
        "conferenceData.entryPoints.first",
        "conferenceData.entryPoints.0.uri.deeper",
        "hangoutLink",
    ],
)
def test_dig_yields_the_default_when_the_path_is_absent(path: str) -> None:
    event = {"conferenceData": {"entryPoints": [{"uri": "https://meet/x"}]}}
    assert dig(event, path) is None
    assert dig(event, path, default="none") == "none"


def test_dig_returns_a_present_none_rather_than_the_default() -> None:
    assert dig({"a": {"b": None}}, "a.b", default="x") is None
    assert dig(None, "a", default=0) == 0
    assert dig({"1": "key"}, "1") == "key"


def test_scripts_get_these_helpers_by_name() -> None:
    assert {
        "parse_duration",
        "add_duration",
        "format_rfc3339",
        "normalize_email",
        "unique",
        "dig",
    } <= set(HELPERS)
    assert HELPERS["unique"] is unique and HELPERS["dig"] is dig
