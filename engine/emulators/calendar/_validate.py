"""Request validation against Google's published Calendar v3 discovery document.

The document is the one shipped in google-api-python-client
(``googleapiclient/discovery_cache/documents/calendar.v3.json``): paths, query
parameters, enums, formats and body schemas all come from it.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from typing import Any
from urllib.parse import unquote

from ._errors import ApiError, invalid_field, invalid_param, required_field, required_param

DISCOVERY_RESOURCE = "discovery_cache/documents/calendar.v3.json"
_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@functools.cache
def _document() -> dict[str, Any]:
    text = resources.files("googleapiclient").joinpath(DISCOVERY_RESOURCE).read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def discovery_document() -> dict[str, Any]:
    """A fresh copy of the Calendar v3 discovery document of the installed client library.

    (A copy: google-api-python-client edits the document it is given.)
    """
    return copy.deepcopy(_document())


@dataclass(frozen=True)
class Method:
    id: str  # e.g. "calendar.events.insert"
    http_method: str
    path: str
    pattern: re.Pattern[str]
    path_params: tuple[str, ...]
    spec: dict[str, Any] = field(hash=False, compare=False)

    @property
    def request_schema(self) -> str | None:
        request = self.spec.get("request")
        return None if request is None else str(request["$ref"])


@functools.cache
def methods() -> tuple[Method, ...]:
    found: list[Method] = []

    def collect(resource: dict[str, Any]) -> None:
        for spec in resource.get("methods", {}).values():
            path: str = spec["path"]
            names = tuple(re.findall(r"\{(\w+)\}", path))
            regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
            found.append(
                Method(spec["id"], spec["httpMethod"], path, re.compile(f"^{regex}$"), names, spec)
            )
        for sub in resource.get("resources", {}).values():
            collect(sub)

    collect(_document())
    # Literal segments win over placeholders ("events/watch" before "events/{eventId}").
    found.sort(key=lambda m: len(m.path_params))
    return tuple(found)


def route(http_method: str, raw_path: str) -> tuple[Method, dict[str, str]]:
    """The discovery method for a request path relative to ``/calendar/v3/``."""
    allowed: list[str] = []  # the methods the path takes, for a 405's Allow header
    for method in methods():
        match = method.pattern.match(raw_path)
        if match is None:
            continue
        if method.http_method == http_method:
            return method, {k: unquote(v) for k, v in match.groupdict().items()}
        allowed.append(method.http_method)
    if allowed:
        raise ApiError(
            405,
            "httpMethodNotAllowed",
            f"Method {http_method} not allowed",
            headers={"Allow": ", ".join(sorted(set(allowed)))},
        )
    raise ApiError(404, "notFound", "Not Found")


def parse_date_time(value: str) -> datetime | None:
    """An RFC 3339 date-time, or None if malformed."""
    if not _DATE_TIME.match(value):
        return None
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_date(value: str) -> date | None:
    if not _DATE.match(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _check_scalar(spec: dict[str, Any], value: str, name: str) -> Any:
    kind = spec.get("type", "string")
    if kind == "integer":
        try:
            number = int(value)
        except ValueError:
            raise invalid_param(
                name, f"Invalid integer value for parameter {name}: {value!r}"
            ) from None
        if "minimum" in spec and number < int(spec["minimum"]):
            raise invalid_param(name, f"Parameter {name} must be at least {spec['minimum']}")
        if "maximum" in spec and number > int(spec["maximum"]):
            raise invalid_param(name, f"Parameter {name} must be at most {spec['maximum']}")
        return number
    if kind == "boolean":
        if value.lower() not in ("true", "false"):
            raise invalid_param(name, f"Invalid boolean value for parameter {name}: {value!r}")
        return value.lower() == "true"
    if "enum" in spec and value not in spec["enum"]:
        allowed = ", ".join(spec["enum"])
        raise invalid_param(name, f"Invalid value for parameter {name}: {value!r} ({allowed})")
    if spec.get("format") == "date-time":
        parsed = parse_date_time(value)
        if parsed is None or parsed.tzinfo is None:
            raise invalid_param(
                name, f"Invalid date-time for parameter {name}: {value!r} (RFC 3339 with offset)"
            )
    return value


def validate_query(method: Method, query: list[tuple[str, str]]) -> dict[str, Any]:
    """Typed query parameters; unknown, repeated, malformed or missing ones raise 400."""
    specs: dict[str, Any] = dict(_document()["parameters"])
    specs.update(
        {k: v for k, v in method.spec.get("parameters", {}).items() if v["location"] == "query"}
    )
    result: dict[str, Any] = {}
    for name, value in query:
        spec = specs.get(name)
        if spec is None and name != "access_token":
            raise invalid_param(name, f"Unknown query parameter: {name}")
        checked = value if spec is None else _check_scalar(spec, value, name)
        if spec is not None and spec.get("repeated"):
            result.setdefault(name, []).append(checked)
        elif name in result:
            raise invalid_param(name, f"Parameter {name} given more than once")
        else:
            result[name] = checked
    for name, spec in specs.items():
        if spec.get("required") and name not in result:
            raise required_param(name)
    return result


def validate_body(method: Method, body: Any, *, partial: bool) -> None:
    """Check a request body against the method's schema (recursively)."""
    schema = method.request_schema
    if schema is None:
        return
    if not isinstance(body, dict):
        raise ApiError(400, "parseError", "This API does not support parsing form-encoded input.")
    label = schema[0].lower() + schema[1:]
    _check_value({"$ref": schema}, body, label, method.id if not partial else None)


def schema_of(spec: dict[str, Any]) -> dict[str, Any]:
    """A schema as written, or the one its ``$ref`` names in the document."""
    ref = spec.get("$ref")
    if ref is None:
        return spec
    resolved: dict[str, Any] = _document()["schemas"][ref]
    return resolved


def _check_value(spec: dict[str, Any], value: Any, path: str, method_id: str | None) -> None:
    if value is None:  # JSON null clears a field (patch semantics)
        return
    spec = schema_of(spec)
    kind = spec.get("type", "string")
    if kind == "any":
        return
    if kind == "object":
        if not isinstance(value, dict):
            raise invalid_field(path, f"Invalid value for field {path}: expected an object")
        props: dict[str, Any] = spec.get("properties", {})
        extra = spec.get("additionalProperties")
        for key, item in value.items():
            sub = f"{path}.{key}"
            if key in props:
                _check_value(props[key], item, sub, method_id)
            elif extra is not None:
                _check_value(extra, item, sub, method_id)
            else:
                raise invalid_field(sub, f"Unknown field: {sub}")
        if method_id is not None:
            for key, prop in props.items():
                required = prop.get("annotations", {}).get("required", [])
                if method_id in required and value.get(key) is None:
                    raise required_field(f"{path}.{key}")
        return
    if kind == "array":
        if not isinstance(value, list):
            raise invalid_field(path, f"Invalid value for field {path}: expected an array")
        for index, item in enumerate(value):
            _check_value(spec.get("items", {}), item, f"{path}[{index}]", method_id)
        return
    if kind == "boolean":
        if not isinstance(value, bool):
            raise invalid_field(path, f"Invalid value for field {path}: expected a boolean")
        return
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise invalid_field(path, f"Invalid value for field {path}: expected an integer")
        try:
            int(value)
        except ValueError:
            raise invalid_field(
                path, f"Invalid value for field {path}: expected an integer"
            ) from None
        return
    if not isinstance(value, str):
        raise invalid_field(path, f"Invalid value for field {path}: expected a string")
    if "enum" in spec and value not in spec["enum"]:
        raise invalid_field(path, f"Invalid value for field {path}: {value!r}")
    fmt = spec.get("format")
    if fmt == "date-time" and parse_date_time(value) is None:
        raise invalid_field(path, f"Invalid date-time for field {path}: {value!r} (RFC 3339)")
    if fmt == "date" and parse_date(value) is None:
        raise invalid_field(path, f"Invalid date for field {path}: {value!r} (yyyy-mm-dd)")
    if fmt == "int64":
        try:
            int(value)
        except ValueError:
            raise invalid_field(
                path, f"Invalid value for field {path}: expected an int64"
            ) from None
