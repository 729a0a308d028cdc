"""Record forms: a widget per field type, and the typed values a submitted form stands for.

A form is held as text (what the inputs show): stored values are turned into it to
edit a record, and a refused form is shown again as it was sent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from engine.catalogs import CatalogDef, FieldDef

Raw = str | list[str]
_INT = re.compile(r"^[+-]?\d+$")
_SPLIT = re.compile(r"[\s,;]+")
PLACEHOLDERS = {
    "datetime": "2026-11-21T09:30:00+01:00",
    "date": "2026-11-21",
    "emails": "one address per line",
    "json": "JSON, e.g. [10, 60]",
}


class Unreadable(ValueError):
    """A form value that cannot be the field's type; the message says what is expected."""


@dataclass
class Widget:
    name: str
    type: str
    kind: str  # input | textarea | checkbox | select | multiselect
    input_type: str = "text"
    value: str = ""
    checked: bool = False
    options: list[tuple[str, str, bool]] = field(default_factory=list)  # value, label, selected
    required: bool = False
    description: str = ""
    placeholder: str = ""
    errors: list[str] = field(default_factory=list)


def editable(definition: CatalogDef) -> list[FieldDef]:
    return [f for f in definition.fields.values() if not f.readonly]


def to_raw(fdef: FieldDef, value: Any) -> Raw:
    """The text an input shows for a stored value."""
    if fdef.type == "link" and fdef.many:
        return [str(v) for v in value or []]
    if value is None:
        return ""
    if fdef.type == "boolean":
        return "on" if value else ""
    if fdef.type == "emails":
        return "\n".join(str(v) for v in value)
    if fdef.type == "json":
        return json.dumps(value, indent=2, ensure_ascii=False)
    return str(value)


def raw_of(definition: CatalogDef, form: FormData) -> dict[str, Raw]:
    out: dict[str, Raw] = {}
    for fdef in editable(definition):
        if fdef.type == "link" and fdef.many:
            out[fdef.name] = [v for v in form.getlist(fdef.name) if isinstance(v, str) and v]
        else:
            value = form.get(fdef.name)
            out[fdef.name] = value if isinstance(value, str) else ""
    return out


def parse(fdef: FieldDef, raw: Raw) -> Any:
    """The typed value of a form input (None: empty); raises Unreadable."""
    if isinstance(raw, list):
        try:
            return [int(v) for v in raw]
        except ValueError:
            raise Unreadable("choose records from the list") from None
    text = raw.strip()
    t = fdef.type
    if t == "boolean":
        return text == "on"
    if t == "emails":
        return [part for part in _SPLIT.split(text) if part]
    if not text:
        return None
    if t == "text":
        return raw
    if t == "number":
        if _INT.match(text):
            return int(text)
        try:
            return float(text)
        except ValueError:
            raise Unreadable(f"{text!r} is not a number") from None
    if t == "link":
        if not _INT.match(text):
            raise Unreadable(f"{text!r} is not a record id")
        return int(text)
    if t == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise Unreadable(
                f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
    return text


def values_for_create(
    definition: CatalogDef, raw: dict[str, Raw]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Field values to create a record with (empty inputs left out: defaults apply)."""
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for fdef in editable(definition):
        try:
            value = parse(fdef, raw.get(fdef.name, ""))
        except Unreadable as exc:
            errors.setdefault(fdef.name, []).append(str(exc))
            continue
        if value is not None and value != []:
            values[fdef.name] = value
        elif fdef.type == "emails" and fdef.name in raw:
            values[fdef.name] = []
    return values, errors


def changes_for_update(
    definition: CatalogDef, raw: dict[str, Raw], current: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The fields whose input differs from what the record holds, and their new values."""
    changes: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for fdef in editable(definition):
        sent = raw.get(fdef.name, "")
        if sent == to_raw(fdef, current.get(fdef.name)):
            continue
        try:
            value = parse(fdef, sent)
        except Unreadable as exc:
            errors.setdefault(fdef.name, []).append(str(exc))
            continue
        if value != current.get(fdef.name):
            changes[fdef.name] = value
    return changes, errors


def widgets(
    definition: CatalogDef,
    raw: dict[str, Raw],
    links: dict[str, list[tuple[int, str]]],
    errors: dict[str, list[str]],
) -> list[Widget]:
    out: list[Widget] = []
    for fdef in editable(definition):
        value = raw.get(fdef.name, "")
        w = Widget(
            name=fdef.name,
            type=fdef.type,
            kind="input",
            required=fdef.required,
            description=fdef.description,
            placeholder=PLACEHOLDERS.get(fdef.type, ""),
            errors=errors.get(fdef.name, []),
        )
        text = value if isinstance(value, str) else ""
        if fdef.type == "boolean":
            w.kind, w.checked = "checkbox", text == "on"
        elif fdef.type in ("emails", "json"):
            w.kind, w.value = "textarea", text
        elif fdef.type == "choice":
            w.kind = "select"
            w.options = [(o, o, o == text) for o in fdef.options]
        elif fdef.type == "link":
            chosen = set(value) if isinstance(value, list) else {text}
            w.kind = "multiselect" if fdef.many else "select"
            w.options = [(str(i), label, str(i) in chosen) for i, label in links.get(fdef.name, [])]
        else:
            w.value = text
            w.input_type = {"number": "text", "date": "date", "email": "email"}.get(
                fdef.type, "text"
            )
        out.append(w)
    return out


def label_field(definition: CatalogDef) -> str | None:
    """The field that names a record of this catalog (name, title, or the first text)."""
    for candidate in ("name", "title"):
        if candidate in definition.fields:
            return candidate
    return next((f.name for f in definition.fields.values() if f.type == "text"), None)


def raw_for_create(definition: CatalogDef) -> dict[str, Raw]:
    """A new record's form: the defaults filled in."""
    return {f.name: to_raw(f, f.default) for f in editable(definition)}
