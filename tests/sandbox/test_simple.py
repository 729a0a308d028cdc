"""Expressions simple enough to evaluate in place, and everything else left to the sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from engine.sandbox import evaluate, evaluate_simple

VARIABLES: dict[str, Any] = {
    "record": {"id": 7, "participants": [1, 2], "team": None},
    "meeting": {"team_calendar": 3},
    "ready": False,
}


@pytest.mark.parametrize(
    "expression",
    [
        "'meetings'",
        "record['id']",
        "{'id': record['participants'] or []}",
        "{'id': [meeting['team_calendar']] if meeting['team_calendar'] else []}",
        "not ready and record['team'] is None",
        "record['id'] in [7, 8] and -1 < record['id'] <= 7",
        "(record['id'], 'x')",
        "record.get('team') or meeting.get('team_calendar')",
        "record.get('missing', 'none')",
        "{'id': record['id'], 'link': meeting.get('hangoutLink') or record.get('team')}",
    ],
)
def test_simple_expressions_give_what_the_sandbox_gives(expression: str) -> None:
    simple, value = evaluate_simple(expression, VARIABLES)
    assert simple, f"{expression!r} should be evaluated in place"
    assert value == evaluate(expression, VARIABLES)


@pytest.mark.parametrize(
    "expression",
    [
        "'a' * 10**9",  # arithmetic can build anything: sandbox, under its limits
        "len(record)",  # calls
        "record.keys()",  # attributes
        "().__class__",
        "[x for x in record]",  # loops
        "unique(record['participants'])",  # a helper
        "_secret",  # names out of a script's reach
        "missing['id']",  # a name that is not a variable: the sandbox words the error
        "record['nope']",  # raises: the sandbox words the error
        "record['participants'][0:1]",  # slices
        "lambda: 1",
        "b'bytes'",
        "record['participants'].get(0)",  # get of something that is not a dict
        "record.get('id', default=1)",  # keywords
        "record.get()",
        "record.get(*record['participants'])",
        "record.get.__self__",
        "_dict_get(record, 'id')",  # the in-place helper is no name a process may use
    ],
)
def test_anything_else_is_left_to_the_sandbox(expression: str) -> None:
    assert evaluate_simple(expression, VARIABLES) == (False, None)


def test_a_value_handed_out_is_a_copy_of_the_variable() -> None:
    variables = {"record": {"participants": [1, 2]}}
    simple, value = evaluate_simple("record['participants']", variables)
    assert simple
    value.append(3)
    assert variables["record"]["participants"] == [1, 2]
