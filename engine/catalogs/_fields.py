"""Field types: what a value of each type may be, and its stored (JSON) form."""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email

FIELD_TYPES = (
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
)


class FieldError(ValueError):
    """A value is not acceptable for a field; the message says what is expected."""


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str
    required: bool = False
    default: Any = None
    readonly: bool = False
    description: str = ""
    options: tuple[str, ...] = ()  # choice
    catalog: str | None = None  # link target
    many: bool = False  # link: one record or a list
    max_length: int | None = None  # text
    after: str | None = None  # date / datetime: must be later than this other field
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_list(self) -> bool:
        return self.type == "emails" or (self.type == "link" and self.many)

    def signature(self) -> dict[str, Any]:
        """What makes stored values of this field mean the same thing (for reload checks)."""
        return {"type": self.type, "catalog": self.catalog, "many": self.many}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for key in ("required", "readonly"):
            if getattr(self, key):
                out[key] = True
        if self.default is not None:
            out["default"] = self.default
        if self.description:
            out["description"] = self.description
        if self.options:
            out["options"] = list(self.options)
        if self.catalog:
            out["catalog"] = self.catalog
            out["many"] = self.many
        if self.max_length is not None:
            out["max_length"] = self.max_length
        if self.after is not None:
            out["after"] = self.after
        return out


def _email(value: Any) -> str:
    if not isinstance(value, str):
        raise FieldError(f"expected an e-mail address as text, got {_kind(value)}")
    try:
        return _normalised_email(value.strip())
    except EmailNotValidError as exc:
        raise FieldError(f"{value!r} is not a valid e-mail address: {exc}") from None


@functools.lru_cache(maxsize=4096)
def _normalised_email(text: str) -> str:
    # The same addresses come back again and again (a meeting's participants, written
    # by the process that syncs it); checking one costs about 20 us. Refusals raise,
    # and lru_cache keeps no exceptions: a bad address is checked each time.
    return str(validate_email(text, check_deliverability=False).normalized)


def moment_of(f: FieldDef, stored: Any) -> datetime | date | None:
    """A stored date or datetime value as a comparable object (None if there is none)."""
    if not isinstance(stored, str):
        return None
    if f.type == "datetime":
        return datetime.fromisoformat(stored.replace("Z", "+00:00"))
    return date.fromisoformat(stored)


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _record_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, dict) and isinstance(value.get("id"), int):
            return int(value["id"])
        raise FieldError(f"expected a record id (a whole number), got {_kind(value)}")
    if value <= 0:
        raise FieldError(f"record ids are positive, got {value}")
    return value


def normalise(f: FieldDef, value: Any) -> Any:
    """The stored form of ``value`` for field ``f``; raises FieldError if it does not fit.

    ``None`` is accepted here (it means "no value"); whether the field may be empty is
    the caller's concern (``required``).
    """
    if value is None:
        return None
    t = f.type
    if t == "text":
        if not isinstance(value, str):
            raise FieldError(f"expected text, got {_kind(value)}")
        if f.max_length is not None and len(value) > f.max_length:
            raise FieldError(f"is {len(value)} characters long; at most {f.max_length} allowed")
        return value
    if t == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FieldError(f"expected a number, got {_kind(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            # JSON has no NaN or infinity: PostgreSQL would refuse the row outright.
            raise FieldError(f"{value} cannot be stored; give a finite number")
        return value
    if t == "boolean":
        if not isinstance(value, bool):
            raise FieldError(f"expected true or false, got {_kind(value)}")
        return value
    if t == "date":
        if not isinstance(value, str):
            raise FieldError(f"expected a date like 2026-11-21, got {_kind(value)}")
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise FieldError(f"{value!r} is not a date like 2026-11-21") from None
    if t == "datetime":
        if not isinstance(value, str):
            raise FieldError(f"expected an ISO 8601 date and time with offset, got {_kind(value)}")
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise FieldError(
                f"{value!r} is not an ISO 8601 date and time like 2026-11-21T09:30:00+01:00"
            ) from None
        if moment.tzinfo is None:
            raise FieldError(
                f"{value!r} has no UTC offset; add one, e.g. {value}+00:00 or {value}Z"
            )
        return moment.isoformat()
    if t == "email":
        return _email(value)
    if t == "emails":
        if not isinstance(value, list):
            raise FieldError(f"expected a list of e-mail addresses, got {_kind(value)}")
        out: list[str] = []
        for i, item in enumerate(value):
            try:
                out.append(_email(item))
            except FieldError as exc:
                raise FieldError(f"item {i}: {exc}") from None
        return out
    if t == "link":
        if f.many:
            if not isinstance(value, list):
                raise FieldError(f"expected a list of {f.catalog} record ids, got {_kind(value)}")
            ids: list[int] = []
            for i, item in enumerate(value):
                try:
                    ids.append(_record_id(item))
                except FieldError as exc:
                    raise FieldError(f"item {i}: {exc}") from None
            return ids
        return _record_id(value)
    if t == "choice":
        if value not in f.options:
            raise FieldError(f"{value!r} is not one of: {', '.join(map(str, f.options))}")
        return value
    if t == "json":
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise FieldError(f"is not JSON: {exc}") from None
        return value
    raise FieldError(f"unknown field type {t!r}")  # guarded by the schema loader


def parse_filter(f: FieldDef, raw: str) -> Any:
    """Turn a command-line filter value (``--where field=value``) into a typed value."""
    if f.type == "number":
        try:
            number = float(raw)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise FieldError(f"{raw!r} is not a number")
        return number
    if f.type == "boolean":
        lowered = raw.strip().lower()
        if lowered in ("true", "yes", "1"):
            return True
        if lowered in ("false", "no", "0"):
            return False
        raise FieldError(f"{raw!r} is not true or false")
    if f.type == "link":
        try:
            return int(raw)
        except ValueError:
            raise FieldError(f"{raw!r} is not a record id") from None
    if f.type == "json":
        raise FieldError("json fields cannot be filtered on")
    if f.type in ("email", "emails"):
        return _email(raw)
    single = FieldDef(name=f.name, type=f.type, options=f.options)
    return normalise(single, raw)
