"""Deploy-time checks: what can be known about a BPMN file is said before it runs.

Each error names the file, the line, the element (type, id and name) and what to do.
"""

from __future__ import annotations

import pytest
from bpmn_builder import chain, end, flow, script, service, start, timer, user_task

from engine.bpmn import validate_file
from engine.components import OPERATORS
from engine.errors import Problem, ValidationFailed

FILE = "meetings.bpmn"
LIMIT = 2 * 1024 * 1024


def accepted(text: str) -> list[str]:
    parsed = validate_file(text.encode(), FILE, OPERATORS.all(), max_bytes=LIMIT)
    return [p.process_id for p in parsed.processes]


def problems(text: str) -> list[Problem]:
    with pytest.raises(ValidationFailed) as caught:
        validate_file(text.encode(), FILE, OPERATORS.all(), max_bytes=LIMIT)
    assert caught.value.message == f"{FILE} was refused"
    return caught.value.problems


def only(text: str) -> Problem:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


def line_of(text: str, needle: str) -> int:
    """The line of the file ``needle`` is on, counted independently of the validator."""
    assert text.count(needle) == 1, needle
    return text[: text.index(needle)].count("\n") + 1


def assert_located(
    problem: Problem, line: int, element_type: str, element_id: str, name: str | None = None
) -> None:
    """The problem names file, line, element type, id and name, and says what to do."""
    where = f"{FILE}:{line} {element_type} '{element_id}'" + (f" ({name})" if name else "")
    assert problem.where == where
    assert problem.hint
    assert problem.details == {
        "file": FILE,
        "line": line,
        "element_id": element_id,
        "element_name": name,
        "element_type": element_type,
    }
    assert str(problem).startswith(f"{where}: ")


def get_meeting(**params: str) -> str:
    return chain(
        "sync",
        start(),
        service("load", "records.get", "meeting", name="Load meeting", **params),
        end(),
    )


# -- the BPMN schema -------------------------------------------------------------


def test_an_element_the_schema_does_not_allow_is_refused_with_its_line() -> None:
    text = chain(
        "sync",
        start(),
        '<bpmn:scriptTasks id="typo" name="Compute end"/>',
        end(),
    )
    problem = only(text)
    assert_located(problem, line_of(text, 'id="typo"'), "scriptTasks", "typo", "Compute end")
    assert problem.message.startswith("does not follow the BPMN 2.0 schema: Element 'scriptTasks'")
    assert "not expected" in problem.message
    assert "{" not in problem.message  # namespaces are left out of what a person reads


def test_an_attribute_the_schema_does_not_allow_is_refused() -> None:
    text = chain("sync", start(), '<bpmn:userTask id="ask" name="Ask" colour="red"/>', end())
    problem = only(text)
    assert_located(problem, line_of(text, 'id="ask"'), "userTask", "ask", "Ask")
    assert "colour" in problem.message


# -- scripts and expressions -----------------------------------------------------


def test_a_script_syntax_error_names_the_task_the_file_line_and_the_script_line() -> None:
    code = "start = record['start']\nduration = 30\nend = add_duration(start, 'PT30M'\n"
    text = chain("sync", start(), script("compute", code, name="Compute end"), end())
    problem = only(text)
    assert_located(
        problem, line_of(text, "end = add_duration"), "scriptTask", "compute", "Compute end"
    )
    assert problem.message.startswith("script does not compile: SyntaxError")
    assert "(line 3 of the script)" in problem.message
    assert "Python" in problem.hint


def test_a_script_reaching_for_internals_is_refused_at_deploy() -> None:
    code = "x = 1\ny = x.__class__\n"
    text = chain("sync", start(), script("peek", code, name="Peek"), end())
    problem = only(text)
    assert_located(problem, line_of(text, "y = x.__class__"), "scriptTask", "peek", "Peek")
    assert "__class__" in problem.message
    assert "(line 2 of the script)" in problem.message


def test_a_script_importing_a_module_the_sandbox_refuses_is_refused_at_deploy() -> None:
    code = "import json\nfrom datetime import timedelta\nimport os\n"
    text = chain("sync", start(), script("imp", code, name="Imports"), end())
    problem = only(text)
    assert_located(problem, line_of(text, "import os"), "scriptTask", "imp", "Imports")
    assert "'os'" in problem.message
    assert "(line 3 of the script)" in problem.message
    for code in ("from subprocess import run", "from json import load", "from . import x"):
        bad = chain("sync", start(), script("imp", code, name="Imports"), end())
        assert "(line 1 of the script)" in only(bad).message


def test_scripts_using_the_allowed_modules_are_accepted() -> None:
    code = "import json\nimport math\nfrom datetime import timedelta\nx = math.floor(1.5)\n"
    assert accepted(chain("sync", start(), script("ok", code, name="Fine"), end())) == ["sync"]


def test_a_condition_syntax_error_names_the_flow_and_the_line_of_the_expression() -> None:
    # Modelers write the expression on its own line, below the tag.
    gateway = '<bpmn:exclusiveGateway id="gw" name="Has end?" default="flow_gw_end"/>'
    cond = (
        '<bpmn:sequenceFlow id="needs_end" name="no end" sourceRef="gw" targetRef="compute">'
        "<bpmn:conditionExpression>\n"
        "        meeting.get('end') is None and\n"
        "</bpmn:conditionExpression></bpmn:sequenceFlow>"
    )
    text = chain(
        "sync",
        start(),
        gateway,
        end(),
        extra=(script("compute", "x = 1"), cond, flow("compute", "end")),
    )
    problem = only(text)
    assert_located(
        problem, line_of(text, "meeting.get('end') is None and"), "sequenceFlow", "needs_end",
        "no end",
    )  # fmt: skip
    assert problem.message.startswith("condition does not compile: SyntaxError")
    assert "(line 1 of the condition)" in problem.message


def test_a_timer_expression_syntax_error_names_the_timer_and_its_line() -> None:
    text = chain("sync", start(), timer("wait", "timedelta(minutes=5"), end())
    problem = only(text)
    assert_located(problem, line_of(text, "timedelta(minutes=5"), "intermediateCatchEvent", "wait")
    assert problem.message.startswith("timer timeDuration does not compile: SyntaxError")


def test_a_timer_that_looks_like_an_iso_duration_but_is_not_one_is_refused() -> None:
    text = chain("sync", start(), timer("wait", "PT5X"), end())
    problem = only(text)
    assert_located(problem, line_of(text, "PT5X"), "intermediateCatchEvent", "wait")
    assert "'PT5X' is not an ISO 8601 duration" in problem.message
    assert "PT5M" in problem.hint


@pytest.mark.parametrize("duration", ["PT5M", "P1D", "PT0.5S", "'PT5M'", "'PT%dM' % 5"])
def test_timer_literals_and_expressions_are_accepted(duration: str) -> None:
    assert accepted(chain("sync", start(), timer("wait", duration), end())) == ["sync"]


def test_an_empty_timer_is_refused() -> None:
    text = chain("sync", start(), timer("wait", " "), end())
    problem = only(text)
    assert_located(problem, line_of(text, 'id="wait"'), "intermediateCatchEvent", "wait")
    assert problem.message == "timer has an empty timeDuration"


def test_a_service_parameter_expression_syntax_error_names_the_parameter() -> None:
    text = get_meeting(catalog="'meetings'", id="record['id'")
    problem = only(text)
    assert_located(problem, line_of(text, 'id="load"'), "serviceTask", "load", "Load meeting")
    assert problem.message.startswith("parameter 'id' does not compile: SyntaxError")


def test_a_script_task_without_a_script_is_refused() -> None:
    text = chain("sync", start(), '<bpmn:scriptTask id="empty" name="Nothing"/>', end())
    problem = only(text)
    assert_located(problem, line_of(text, 'id="empty"'), "scriptTask", "empty", "Nothing")
    assert problem.message == "script task has no script"


# -- service operators and their parameters --------------------------------------


def test_an_unknown_operator_is_refused_with_the_closest_name() -> None:
    text = chain(
        "sync",
        start(),
        service("load", "records.gte", "meeting", name="Load meeting", catalog="'m'", id="1"),
        end(),
    )
    problem = only(text)
    assert_located(problem, line_of(text, 'id="load"'), "serviceTask", "load", "Load meeting")
    assert problem.message == "unknown service operator 'records.gte'"
    assert problem.hint == "did you mean 'records.get'?"


def test_an_operator_unlike_any_known_one_lists_the_known_operators() -> None:
    text = chain("sync", start(), service("send", "fax.send", name="Send"), end())
    problem = only(text)
    assert problem.message == "unknown service operator 'fax.send'"
    for name in ("records.get", "records.find", "records.create", "records.update"):
        assert name in problem.hint


def test_a_service_task_without_an_operator_is_refused() -> None:
    text = chain("sync", start(), '<bpmn:serviceTask id="call" name="Call"/>', end())
    problem = only(text)
    assert_located(problem, line_of(text, 'id="call"'), "serviceTask", "call", "Call")
    assert problem.message == "service task names no operator"
    assert "records.get" in problem.hint


def test_a_missing_required_parameter_is_named() -> None:
    problem = only(get_meeting(catalog="'meetings'"))
    assert problem.message == "records.get needs parameter 'id'"
    assert 'id="id"' in problem.hint
    assert problem.details["element_id"] == "load"


def test_every_missing_parameter_is_named() -> None:
    text = chain("sync", start(), service("save", "records.update", name="Save"), end())
    assert [p.message for p in problems(text)] == [
        f"records.update needs parameter {name!r}" for name in ("catalog", "data", "id")
    ]


def test_an_unknown_parameter_is_refused_with_the_closest_name() -> None:
    text = get_meeting(catalgo="'meetings'", id="1")
    found = problems(text)
    # The misspelt parameter is unknown, and so the real one is missing.
    assert [p.message for p in found] == [
        "records.get has no parameter 'catalgo'",
        "records.get needs parameter 'catalog'",
    ]
    assert found[0].hint == "did you mean 'catalog'?"
    assert_located(found[0], line_of(text, 'id="catalgo"'), "serviceTask", "load", "Load meeting")


def test_an_unknown_parameter_unlike_any_lists_what_the_operator_takes() -> None:
    found = problems(get_meeting(catalog="'meetings'", id="1", colour="'red'"))
    assert [p.message for p in found] == ["records.get has no parameter 'colour'"]
    assert found[0].hint == "records.get takes: catalog, id, missing_ok"


def test_a_parameter_without_a_value_is_refused() -> None:
    found = problems(get_meeting(catalog="'meetings'", id=" "))
    assert [p.message for p in found] == ["parameter 'id' of records.get has no value"]


def test_valid_service_tasks_are_accepted() -> None:
    text = chain(
        "sync",
        start(),
        service("load", "records.get", "meeting", catalog="'meetings'", id="record_id"),
        service("find", "records.find", "rows", catalog="'employees'", where="{'id': [1, 2]}"),
        service(
            "save", "records.update", "saved", catalog="'meetings'", id="meeting", data="{'a': 1}"
        ),
        end(),
    )
    assert accepted(text) == ["sync"]


# -- the file as a whole ---------------------------------------------------------


def test_every_problem_in_a_file_is_reported_at_once() -> None:
    text = chain(
        "sync",
        start(),
        script("compute", "end = (", name="Compute end"),
        service("load", "records.gte", name="Load", catalog="'m'", id="1"),
        timer("wait", "PT5M +"),
        user_task("approve", "Approve"),
        end(),
    )
    found = problems(text)
    assert [p.details["element_id"] for p in found] == ["compute", "wait", "load"]
    assert [p.details["line"] for p in found] == [
        line_of(text, 'id="compute"'),
        line_of(text, 'id="wait"'),
        line_of(text, 'id="load"'),
    ]


def test_a_file_without_an_executable_process_is_refused() -> None:
    text = chain("sync", start(), end()).replace('isExecutable="true"', 'isExecutable="false"')
    problem = only(text)
    assert problem.message == "the file has no executable process"
    assert 'isExecutable="true"' in problem.hint
    assert problem.details["line"] == line_of(text, "<bpmn:definitions")


def test_a_process_without_a_start_event_is_refused_naming_the_process() -> None:
    text = chain("sync", script("compute", "x = 1"), end(), name="Sync meeting")
    problem = only(text)
    assert_located(problem, line_of(text, 'id="sync"'), "process", "sync", "Sync meeting")
    assert "No start event" in problem.message


def test_a_call_activity_naming_an_unknown_process_is_refused() -> None:
    call = '<bpmn:callActivity id="call" name="Notify" calledElement="notfy"/>'
    text = chain("sync", start(), call, end()).replace(
        "</bpmn:definitions>",
        '<bpmn:process id="notify" isExecutable="true"><bpmn:startEvent id="s2"/>'
        "</bpmn:process></bpmn:definitions>",
    )
    problem = only(text)
    assert_located(problem, line_of(text, 'id="call"'), "callActivity", "call", "Notify")
    assert problem.message == "calls process 'notfy', which this file does not define"
    assert problem.hint == "did you mean 'notify'?"


# -- process properties ------------------------------------------------------------------------


def test_record_on_incident_is_kept_as_an_option_of_the_process() -> None:
    text = chain(
        "p",
        start(),
        end(),
        properties={"record_on_incident": '{"sync_status": "error", "sync_error": "{message}"}'},
    )
    parsed = validate_file(text.encode(), FILE, OPERATORS.all(), max_bytes=LIMIT)
    [process] = parsed.processes
    assert process.options == {
        "record_on_incident": {"sync_status": "error", "sync_error": "{message}"}
    }


def test_record_on_incident_that_is_not_a_json_object_is_refused() -> None:
    p = only(chain("p", start(), end(), properties={"record_on_incident": "sync_status=error"}))
    assert p.message.startswith("record_on_incident must be a JSON object of the fields")
    assert "value attribute" in p.hint


def test_an_unknown_process_property_is_refused_with_the_known_ones() -> None:
    p = only(chain("p", start(), end(), properties={"record_on_incidents": "{}"}))
    assert p.message == "unknown process property 'record_on_incidents'"
    assert p.hint == "known: record_on_incident, script_cpu_seconds, script_memory_mib"
