"""Catalog definitions as written in ``catalogs/*.yaml``: fields and trigger rules."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.errors import Problem, ValidationFailed
from engine.sandbox import check as check_script

from ._fields import FIELD_TYPES, FieldDef, FieldError, normalise

NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
EVENT_KINDS = ("created", "updated", "deleted")
RESERVED_FIELDS = {"id"}


@dataclass(frozen=True)
class TriggerDef:
    key: str  # unique within the catalog; part of the one-instance-per-event key
    on: str
    process: str
    fields: tuple[str, ...] = ()
    when: str | None = None
    ignore_own_writes: bool = True
    variables: dict[str, Any] = field(default_factory=dict, hash=False)  # extra start variables

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.key,
            "on": self.on,
            "process": self.process,
            "fields": list(self.fields),
            "when": self.when,
            "ignore_own_writes": self.ignore_own_writes,
            "variables": dict(self.variables),
        }


@dataclass(frozen=True)
class CatalogDef:
    name: str
    title: str
    fields: dict[str, FieldDef]
    triggers: tuple[TriggerDef, ...] = ()
    source: str = ""
    description: str = ""
    content_hash: str = field(default="")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "fields": {n: f.to_dict() for n, f in self.fields.items()},
            "triggers": [t.to_dict() for t in self.triggers],
        }


def _problem(source: str, where: str, message: str, hint: str = "") -> Problem:
    return Problem(message=message, where=f"{source}: {where}" if where else source, hint=hint)


def parse_catalog_text(text: str, source: str, default_name: str) -> CatalogDef:
    """Parse and check one catalog definition; every problem is reported at once."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise ValidationFailed(
            f"{source} is not valid YAML",
            [_problem(source, where, str(getattr(exc, "problem", exc)))],
        ) from None
    if not isinstance(doc, dict):
        raise ValidationFailed(
            f"{source} is not a catalog definition",
            [_problem(source, "", "expected a mapping with 'fields' (and optional 'triggers')")],
        )
    problems: list[Problem] = []
    name = str(doc.get("name") or default_name)
    if not NAME.match(name):
        problems.append(
            _problem(
                source,
                "name",
                f"{name!r} is not a valid catalog name",
                "use lower-case letters, digits and underscores, starting with a letter",
            )
        )
    known_keys = {"name", "title", "description", "fields", "triggers"}
    for key in doc:
        if key not in known_keys:
            problems.append(
                _problem(
                    source, str(key), "unknown key", f"known keys: {', '.join(sorted(known_keys))}"
                )
            )
    fields = _parse_fields(doc.get("fields"), source, problems)
    triggers = _parse_triggers(doc.get("triggers"), source, fields, problems)
    if problems:
        raise ValidationFailed(f"catalog {source} has {len(problems)} problem(s)", problems)
    definition = CatalogDef(
        name=name,
        title=str(doc.get("title") or name.replace("_", " ").title()),
        description=str(doc.get("description") or ""),
        fields=fields,
        triggers=tuple(triggers),
        source=source,
    )
    return with_content_hash(definition)


def with_content_hash(definition: CatalogDef) -> CatalogDef:
    # The order of the fields is part of the catalog (it is the order people see them in).
    identity = [definition.to_dict(), list(definition.fields)]
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return CatalogDef(**{**definition.__dict__, "content_hash": digest})


def parse_catalog_file(path: Path) -> CatalogDef:
    return parse_catalog_text(path.read_text(encoding="utf-8"), str(path), path.stem)


FIELD_KEYS = {
    "type",
    "required",
    "default",
    "readonly",
    "description",
    "options",
    "catalog",
    "many",
    "max_length",
    "after",
}
# Keys that mean something for one field type only; elsewhere they would be ignored.
ONLY_FOR = {"options": "choice", "catalog": "link", "many": "link", "max_length": "text"}


def _parse_fields(raw: Any, source: str, problems: list[Problem]) -> dict[str, FieldDef]:
    if not isinstance(raw, dict) or not raw:
        problems.append(
            _problem(
                source,
                "fields",
                "a catalog needs a 'fields' mapping",
                "e.g. fields: {title: {type: text, required: true}}",
            )
        )
        return {}
    fields: dict[str, FieldDef] = {}
    for fname, spec in raw.items():
        where = f"fields.{fname}"
        if not isinstance(fname, str) or not NAME.match(fname) or fname in RESERVED_FIELDS:
            problems.append(
                _problem(
                    source,
                    where,
                    f"{fname!r} is not a valid field name",
                    "lower-case letters, digits, underscores; 'id' is reserved",
                )
            )
            continue
        if isinstance(spec, str):
            spec = {"type": spec}
        if not isinstance(spec, dict):
            problems.append(_problem(source, where, "expected a mapping such as {type: text}"))
            continue
        unknown = set(spec) - FIELD_KEYS
        if unknown:
            problems.append(
                _problem(
                    source,
                    where,
                    f"unknown key(s) {', '.join(sorted(map(str, unknown)))}",
                    f"known keys: {', '.join(sorted(FIELD_KEYS))}",
                )
            )
        ftype = spec.get("type")
        if ftype not in FIELD_TYPES:
            problems.append(
                _problem(
                    source, where, f"unknown type {ftype!r}", f"one of: {', '.join(FIELD_TYPES)}"
                )
            )
            continue
        if "after" in spec and ftype not in ("date", "datetime"):
            problems.append(
                _problem(
                    source,
                    f"{where}.after",
                    f"'after' applies to date and datetime fields, not {ftype}",
                )
            )
            continue
        misplaced = [k for k, only in ONLY_FOR.items() if k in spec and ftype != only]
        if misplaced:
            for key in misplaced:
                problems.append(
                    _problem(
                        source,
                        f"{where}.{key}",
                        f"'{key}' only applies to {ONLY_FOR[key]} fields, not {ftype}",
                    )
                )
            continue
        flags = {key: spec.get(key, False) for key in ("required", "readonly", "many")}
        not_bool = [key for key, value in flags.items() if not isinstance(value, bool)]
        if not_bool:
            for key in not_bool:
                problems.append(
                    _problem(
                        source, f"{where}.{key}", f"expected true or false, got {flags[key]!r}"
                    )
                )
            continue
        options = spec.get("options") or ()
        if ftype == "choice" and (not isinstance(options, list) or not options):
            problems.append(_problem(source, where, "a choice field needs a list of 'options'"))
            continue
        not_text = [o for o in options if not isinstance(o, str)]
        if not_text:
            # YAML 1.1 turns unquoted yes/no/on/off into booleans: [yes, no] is [True, False].
            problems.append(
                _problem(
                    source,
                    f"{where}.options",
                    f"options must be text; got {', '.join(map(repr, not_text))}",
                    "quote them, e.g. options: ['yes', 'no', '1'] "
                    "(YAML reads bare yes, no, on, off and numbers as other types)",
                )
            )
            continue
        target = spec.get("catalog")
        if ftype == "link" and not (isinstance(target, str) and NAME.match(target)):
            problems.append(
                _problem(source, where, "a link field needs 'catalog': the catalog it points to")
            )
            continue
        max_length = spec.get("max_length")
        if max_length is not None and (
            isinstance(max_length, bool) or not isinstance(max_length, int) or max_length <= 0
        ):
            problems.append(_problem(source, where, "max_length must be a positive whole number"))
            continue
        fdef = FieldDef(
            name=fname,
            type=ftype,
            required=flags["required"],
            readonly=flags["readonly"],
            description=str(spec.get("description") or ""),
            options=tuple(options),
            catalog=target if ftype == "link" else None,
            many=flags["many"],
            max_length=max_length,
            after=str(spec["after"]) if spec.get("after") is not None else None,
        )
        default = spec.get("default")
        if default is not None:
            try:
                default = normalise(fdef, default)
            except FieldError as exc:
                problems.append(_problem(source, f"{where}.default", str(exc)))
                continue
        fields[fname] = FieldDef(**{**fdef.__dict__, "default": default})
    for fname, fdef in fields.items():
        if fdef.after is None:
            continue
        other = fields.get(fdef.after)
        if other is None or other.type != fdef.type or other.name == fname:
            problems.append(
                _problem(
                    source,
                    f"fields.{fname}.after",
                    f"{fdef.after!r} is not another {fdef.type} field of this catalog",
                )
            )
    return fields


def _parse_triggers(
    raw: Any, source: str, fields: dict[str, FieldDef], problems: list[Problem]
) -> list[TriggerDef]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(_problem(source, "triggers", "expected a list of trigger rules"))
        return []
    triggers: list[TriggerDef] = []
    keys: set[str] = set()
    for i, rule in enumerate(raw):
        where = f"triggers[{i}]"
        if not isinstance(rule, dict):
            problems.append(_problem(source, where, "expected a mapping with 'on' and 'process'"))
            continue
        # YAML 1.1 reads a bare `on:` key as the boolean true.
        on = rule.get("on", rule.get(True))
        if on not in EVENT_KINDS:
            problems.append(
                _problem(
                    source,
                    f"{where}.on",
                    f"{on!r} is not an event kind",
                    f"one of: {', '.join(EVENT_KINDS)}",
                )
            )
        process = rule.get("process")
        if not isinstance(process, str) or not process:
            problems.append(_problem(source, f"{where}.process", "a trigger needs a 'process' id"))
        watched = rule.get("fields") or []
        if not isinstance(watched, list) or not all(isinstance(w, str) for w in watched):
            problems.append(_problem(source, f"{where}.fields", "expected a list of field names"))
            watched = []
        for w in watched:
            if w not in fields:
                problems.append(
                    _problem(
                        source,
                        f"{where}.fields",
                        f"unknown field {w!r}",
                        f"fields of this catalog: {', '.join(fields)}",
                    )
                )
        if watched and on != "updated":
            problems.append(
                _problem(source, f"{where}.fields", "'fields' only applies to 'on: updated'")
            )
        when = rule.get("when")
        if when is not None:
            if not isinstance(when, str):
                problems.append(_problem(source, f"{where}.when", "expected an expression as text"))
                when = None
            else:
                err = check_script(when, "eval")
                if err is not None:
                    problems.append(
                        _problem(
                            source,
                            f"{where}.when",
                            f"invalid expression: {err.message}",
                            "a Python expression over `new`, `old` and `event`",
                        )
                    )
        ignore_own = rule.get("ignore_own_writes", True)
        if not isinstance(ignore_own, bool):
            problems.append(
                _problem(source, f"{where}.ignore_own_writes", "expected true or false")
            )
            ignore_own = True
        variables = rule.get("variables") or {}
        if not isinstance(variables, dict) or not all(isinstance(k, str) for k in variables):
            problems.append(
                _problem(
                    source,
                    f"{where}.variables",
                    "expected a mapping of variable names to values",
                    "e.g. variables: {default_duration_minutes: 30}",
                )
            )
            variables = {}
        reserved = sorted(set(variables) & {"record", "old", "event"})
        if reserved:
            problems.append(
                _problem(
                    source,
                    f"{where}.variables",
                    f"{', '.join(reserved)} are set by the trigger itself",
                    "choose other names",
                )
            )
        key = str(rule.get("name") or f"{on}:{process}")
        if key in keys:
            key = f"{key}#{i}"
        keys.add(key)
        known = {"on", True, "process", "fields", "when", "ignore_own_writes", "name", "variables"}
        unknown = set(rule) - known
        if unknown:
            problems.append(
                _problem(source, where, f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
            )
        if isinstance(on, str) and isinstance(process, str):
            triggers.append(
                TriggerDef(
                    key=key,
                    on=on,
                    process=process,
                    fields=tuple(watched),
                    when=when,
                    ignore_own_writes=ignore_own,
                    variables=dict(variables),
                )
            )
    return triggers
