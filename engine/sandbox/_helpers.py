"""Helpers handed to scripts: dates, durations, e-mail addresses, lists, nested data."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email

_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(value: str | int | float) -> timedelta:
    """An ISO 8601 duration (``PT45M``, ``P1DT2H``) or a number of minutes."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a number of minutes")
        return timedelta(minutes=value)
    text = str(value).strip()
    match = _DURATION.match(text)
    # The pattern lets every part be absent: "P", "PT" and "P1DT" say no (or no whole) time.
    if not match or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"{value!r} is not an ISO 8601 duration such as 'PT45M' or 'P1D'")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return timedelta(**parts)


def parse_datetime(value: str) -> datetime:
    """An RFC 3339 / ISO 8601 timestamp with an offset (``Z`` allowed)."""
    try:
        parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{value!r} is not an RFC 3339 timestamp such as 2026-11-21T09:00:00+01:00"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset; write e.g. 2026-11-21T09:00:00+01:00")
    return parsed


def format_rfc3339(value: datetime | str, time_zone: str | None = None) -> str:
    """RFC 3339 with an explicit offset, optionally converted into ``time_zone``."""
    moment = parse_datetime(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        raise ValueError("a datetime without an offset cannot be written as RFC 3339")
    if time_zone:
        moment = moment.astimezone(_zone(time_zone))
    return moment.isoformat()


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not a known time zone; use an IANA name such as 'Europe/Berlin'"
        ) from None


def add_duration(value: datetime | str, duration: str | int | float) -> str:
    """``value`` plus a duration (ISO 8601 or minutes), as RFC 3339."""
    moment = parse_datetime(value) if isinstance(value, str) else value
    return format_rfc3339(moment + parse_duration(duration))


def to_time_zone(value: datetime | str, time_zone: str) -> str:
    return format_rfc3339(value, time_zone)


def now_utc() -> str:
    return datetime.now(UTC).isoformat()


def today(time_zone: str = "UTC") -> str:
    return datetime.now(_zone(time_zone)).date().isoformat()


def parse_date(value: str) -> date:
    return date.fromisoformat(value)


def add_days(value: str, days: int) -> str:
    """A date (``2026-11-21``, or the date part of a timestamp) plus ``days``, as a date."""
    return (date.fromisoformat(str(value)[:10]) + timedelta(days=days)).isoformat()


def normalize_email(value: str) -> str:
    """A syntactically valid address with its domain lower-cased; raises ValueError if not."""
    try:
        return str(validate_email(str(value).strip(), check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not a valid e-mail address: {exc}") from None


def is_email(value: Any) -> bool:
    try:
        normalize_email(value)
    except ValueError:
        return False
    return True


def unique(items: list[Any], key: str | None = None, ignore_case: bool = False) -> list[Any]:
    """Items in first-seen order without repeats (optionally by a dict key, or caselessly)."""
    seen: set[Any] = set()
    seen_unhashable: list[Any] = []  # dicts and lists: compared one by one
    out: list[Any] = []
    for item in items:
        marker = item[key] if key is not None else item
        if ignore_case and isinstance(marker, str):
            marker = marker.casefold()
        try:
            if marker in seen:
                continue
            seen.add(marker)
        except TypeError:
            if marker in seen_unhashable:
                continue
            seen_unhashable.append(marker)
        out.append(item)
    return out


def dig(data: Any, path: str, default: Any = None) -> Any:
    """``dig(record, "a.b.0.c")``: nested dict/list access that yields ``default`` when absent."""
    current = data
    for part in path.split(".") if path else []:
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit():
            index = int(part)
            if -len(current) <= index < len(current):
                current = current[index]
            else:
                return default
        else:
            return default
    return current


HELPERS: dict[str, Any] = {
    "parse_duration": parse_duration,
    "parse_datetime": parse_datetime,
    "format_rfc3339": format_rfc3339,
    "add_duration": add_duration,
    "to_time_zone": to_time_zone,
    "now_utc": now_utc,
    "today": today,
    "parse_date": parse_date,
    "add_days": add_days,
    "normalize_email": normalize_email,
    "is_email": is_email,
    "unique": unique,
    "dig": dig,
}
