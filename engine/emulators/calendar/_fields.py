"""Partial responses: Google's ``fields`` system parameter.

Google's syntax (loosely XPath): a comma-separated list of fields (``id,summary``);
``a/b`` selects ``b`` inside ``a``; ``a(b,c)`` selects several fields inside ``a``;
``*`` selects every field at its level. Inside an array, a selection applies to each
item (``items(id,start)``). Selections of the same field merge: ``items/id,items/end``
is ``items(id,end)``.

As Google does, the selection is checked against the method's response schema in
the discovery document before the method runs: a name the schema does not have is a
400 ``invalidParameter`` ("Invalid field selection <name>"), and nothing is done.
The answer then keeps only what was selected, in the resource's own order; a field
selected but absent from the resource is simply left out. Errors are never trimmed.
"""

from __future__ import annotations

import re
from typing import Any

from ._errors import ApiError
from ._validate import Method, schema_of

# A field name to the selection inside it; None: the whole value.
Selection = dict[str, "Selection | None"]

_TOKEN = re.compile(r"\s*([,/()]|[^,/()\s]+)\s*")


def _invalid(what: str) -> ApiError:
    return ApiError(
        400,
        "invalidParameter",
        f"Invalid field selection {what}",
        location="fields",
        location_type="parameter",
    )


def requested(params: dict[str, Any], method: Method) -> Selection | None:
    """The request's selection (None: the whole answer), parsed and checked against
    the method's response; a 400 for one that does not parse or names no field."""
    text = params.get("fields", "")
    if not text.strip():
        return None
    selection = parse(text)
    response = method.spec.get("response")
    if response is not None:
        _check(selection, response)
    return selection


def parse(text: str) -> Selection:
    """The selection ``text`` names; a 400 for one that does not parse."""
    tokens: list[str] = []
    at = 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:  # only blanks are left
            break
        tokens.append(match.group(1))
        at = match.end()
    if not tokens:
        raise _invalid(text)
    selection, used = _parse_list(tokens, 0, text)
    if used != len(tokens):
        raise _invalid(text)
    return selection


def _parse_list(tokens: list[str], at: int, text: str) -> tuple[Selection, int]:
    """``item (',' item)*`` from ``tokens[at]``; the selection and where it stopped."""
    selection: Selection = {}
    while True:
        path: list[str] = []
        while True:
            if at >= len(tokens) or tokens[at] in ",/()":
                raise _invalid(text)  # a name was due: "a,,b", "a/", "()"
            path.append(tokens[at])
            at += 1
            if at < len(tokens) and tokens[at] == "/":
                at += 1
                continue
            break
        inner: Selection | None = None
        if at < len(tokens) and tokens[at] == "(":
            inner, at = _parse_list(tokens, at + 1, text)
            if at >= len(tokens) or tokens[at] != ")":
                raise _invalid(text)
            at += 1
        _merge_path(selection, path, inner)
        if at < len(tokens) and tokens[at] == ",":
            at += 1
            continue
        return selection, at


def _merge_path(selection: Selection, path: list[str], inner: Selection | None) -> None:
    for name in path[:-1]:
        if name in selection and selection[name] is None:
            return  # the whole of it is selected already
        nested = selection.setdefault(name, {})
        assert nested is not None
        selection = nested
    _merge(selection, path[-1], inner)


def _merge(selection: Selection, name: str, inner: Selection | None) -> None:
    if name not in selection:
        selection[name] = inner
        return
    have = selection[name]
    if have is None or inner is None:
        selection[name] = None  # the whole value wins
        return
    for key, value in inner.items():
        _merge(have, key, value)


def _check(selection: Selection, spec: dict[str, Any]) -> None:
    """A 400 for a selected name the schema ``spec`` does not have."""
    spec = _object_of(spec)
    properties: dict[str, Any] = spec.get("properties", {})
    extra = spec.get("additionalProperties")  # a map: any key
    for name, inner in selection.items():
        if name == "*":
            child: dict[str, Any] | None = extra
            if child is None:
                continue  # every field: only a map says what is inside them all
        elif name in properties:
            child = properties[name]
        elif extra is not None:
            child = extra
        else:
            raise _invalid(name)
        if inner is None:
            continue
        if _object_of(child).get("type") != "object":
            raise _invalid(next(iter(inner)))  # "summary/x": a string has no fields
        _check(inner, child)


def _object_of(spec: dict[str, Any]) -> dict[str, Any]:
    """The schema a selection inside ``spec`` applies to (arrays: their items)."""
    spec = schema_of(spec)
    while spec.get("type") == "array":
        spec = schema_of(spec.get("items", {}))
    return spec


def apply(selection: Selection, value: Any) -> Any:
    """``value`` with only what ``selection`` selects (in arrays: of each item)."""
    if isinstance(value, list):
        return [apply(selection, item) for item in value]
    if not isinstance(value, dict):
        return value
    every = selection.get("*", False)
    kept: dict[str, Any] = {}
    for key, item in value.items():
        if key in selection:
            inner = selection[key]
            if every is None:
                inner = None  # "*" selects it whole
        elif "*" in selection:
            inner = every if isinstance(every, dict) else None
        else:
            continue
        kept[key] = item if inner is None else apply(inner, item)
    return kept
