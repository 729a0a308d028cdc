"""Deploy-time checks: everything that can be known about a BPMN file before it runs."""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser

from engine.errors import Problem, ValidationFailed
from engine.sandbox import MIB, SAFE_MODULES, Limits
from engine.sandbox import check as check_script

from ._serialize import dump_spec
from ._xml import BPMN_NS, NSMAP, SPIFF_NS, read_xml


class OperatorSignature(Protocol):
    """What deployment needs to know of a service operator."""

    @property
    def required_params(self) -> frozenset[str]: ...

    @property
    def optional_params(self) -> frozenset[str]: ...


@dataclass(frozen=True)
class ParsedProcess:
    process_id: str
    name: str
    spec: str  # serialised spec and subprocess specs (JSON)
    line: int | None = None  # where the <bpmn:process> starts in its file
    limits: dict[str, float] = field(default_factory=dict)  # script limits it asks for
    options: dict[str, Any] = field(default_factory=dict)  # other process properties


@dataclass(frozen=True)
class ParsedFile:
    filename: str
    content_hash: str
    xml: str
    processes: tuple[ParsedProcess, ...]


_ISO_DURATION = re.compile(
    r"^-?P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$"
)
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_ISO_CYCLE = re.compile(r"^R\d*/\S+$")
# A bare name such as PT5X or P1H: meant as an ISO 8601 duration, but it is not one
# (P1H lacks the T); as an expression it would only fail when the timer is reached.
_ISO_LOOKALIKE = re.compile(r"^-?PT?\d[0-9A-Za-z.]*$")


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else str(tag)


class _Locator:
    """Names elements the way every deploy error does: file, line, element id and name."""

    def __init__(self, filename: str, root: etree._Element) -> None:
        self.filename = filename
        self.by_id = {el.get("id"): el for el in root.iter() if el.get("id")}

    def where(self, element: etree._Element | None, line: int | None = None) -> str:
        if element is None:
            return f"{self.filename}:{line}" if line else self.filename
        line = line or element.sourceline
        text = f"{self.filename}:{line} {_local(element.tag)} '{element.get('id', '?')}'"
        if element.get("name"):
            text += f" ({element.get('name')})"
        return text

    def problem(
        self, element: etree._Element | None, message: str, hint: str = "", line: int | None = None
    ) -> Problem:
        details: dict[str, object] = {"file": self.filename}
        if element is not None:
            details.update(
                element_id=element.get("id"),
                element_name=element.get("name"),
                element_type=_local(element.tag),
            )
        details["line"] = line or (element.sourceline if element is not None else None)
        return Problem(message=message, where=self.where(element, line), hint=hint, details=details)


def validate_file(
    data: bytes,
    filename: str,
    operators: Mapping[str, OperatorSignature],
    *,
    max_bytes: int,
) -> ParsedFile:
    """Parse and check one file; raises ValidationFailed listing every problem found."""
    root, problems = read_xml(data, filename, max_bytes)
    if root is None:
        raise ValidationFailed(f"{filename} was refused", problems)
    if root.tag != f"{{{BPMN_NS}}}definitions":
        raise ValidationFailed(
            f"{filename} was refused",
            [
                Problem(
                    f"the root element is <{_local(root.tag)}>, not a BPMN 2.0 <definitions>",
                    where=f"{filename}:{root.sourceline}",
                    hint=f'BPMN files start with <bpmn:definitions xmlns:bpmn="{BPMN_NS}">',
                    details={"file": filename, "line": root.sourceline},
                )
            ],
        )
    loc = _Locator(filename, root)
    _quote_timer_literals(root)
    problems.extend(_schema_problems(root, loc))
    if problems:
        raise ValidationFailed(f"{filename} was refused", problems)
    problems.extend(_expression_problems(root, loc))
    problems.extend(_operator_problems(root, loc, operators))
    problems.extend(_call_activity_problems(root, loc))
    executable = [
        p for p in root.findall("bpmn:process", NSMAP) if p.get("isExecutable", "true") == "true"
    ]
    if not executable:
        problems.append(
            loc.problem(
                root,
                "the file has no executable process",
                'set isExecutable="true" on the <bpmn:process> to deploy',
            )
        )
    limits = {p.get("id", ""): _limits_of(p, loc, problems) for p in executable}
    options = {p.get("id", ""): _options_of(p, loc, problems) for p in executable}
    if problems:
        raise ValidationFailed(f"{filename} was refused", problems)
    processes = [
        replace(p, limits=limits.get(p.process_id, {}), options=options.get(p.process_id, {}))
        for p in _parse_with_spiff(root, loc, [p.get("id", "") for p in executable])
    ]
    return ParsedFile(
        filename=filename,
        content_hash=content_hash(data),
        xml=_text_of(data, root),
        processes=tuple(processes),
    )


# Process properties that set script limits: name -> (unit factor, the most allowed).
LIMIT_PROPERTIES = {
    "script_cpu_seconds": ("cpu_seconds", 1.0, Limits.MAX_CPU_SECONDS),
    "script_memory_mib": ("memory_bytes", float(MIB), Limits.MAX_MEMORY_BYTES / MIB),
}


OPTION_PROPERTIES = {
    "record_on_incident": "a JSON object of the fields to set on the instance's record when "
    "it stops in an incident, e.g. "
    '{"sync_status": "error", "sync_error": "{message}"} ({message}, {code}, {element} '
    "are filled in)",
}


def _options_of(process: etree._Element, loc: _Locator, problems: list[Problem]) -> dict[str, Any]:
    """Process properties other than script limits (see OPTION_PROPERTIES)."""
    options: dict[str, Any] = {}
    path = "bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property"
    for prop in process.iterfind(path, NSMAP):
        name = prop.get("name", "")
        if name.startswith("script_"):
            continue
        if name not in OPTION_PROPERTIES:
            known = ", ".join([*OPTION_PROPERTIES, *LIMIT_PROPERTIES])
            problems.append(
                loc.problem(
                    process,
                    f"unknown process property {name!r}",
                    f"known: {known}",
                    prop.sourceline,
                )
            )
            continue
        try:
            value = json.loads(prop.get("value", ""))
        except ValueError:
            value = None
        if not isinstance(value, dict) or not value:
            problems.append(
                loc.problem(
                    process,
                    f"{name} must be {OPTION_PROPERTIES[name]}",
                    "write the value as JSON in the property's value attribute",
                    prop.sourceline,
                )
            )
            continue
        options[name] = value
    return options


def _limits_of(process: etree._Element, loc: _Locator, problems: list[Problem]) -> dict[str, float]:
    """Script limits a process asks for in its spiffworkflow:properties."""
    limits: dict[str, float] = {}
    path = "bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property"
    for prop in process.iterfind(path, NSMAP):
        name = prop.get("name", "")
        if not name.startswith("script_"):
            continue
        if name not in LIMIT_PROPERTIES:
            problems.append(
                loc.problem(
                    process,
                    f"unknown script limit {name!r}",
                    f"known: {', '.join(LIMIT_PROPERTIES)}",
                    prop.sourceline,
                )
            )
            continue
        key, factor, most = LIMIT_PROPERTIES[name]
        try:
            value = float(prop.get("value", ""))
        except ValueError:
            value = -1.0
        if not 0 < value <= most:
            problems.append(
                loc.problem(
                    process,
                    f"{name} must be a number above 0 and at most {most:g}",
                    f'e.g. <spiffworkflow:property name="{name}" value="5"/>',
                    prop.sourceline,
                )
            )
            continue
        limits[key] = value * factor
    return limits


def _text_of(data: bytes, root: etree._Element) -> str:
    """The file as text, decoded as it declares (a modeler may save Latin-1 or UTF-16)."""
    encoding = root.getroottree().docinfo.encoding or "utf-8"
    try:
        return data.decode(encoding).lstrip("\ufeff")
    except (LookupError, UnicodeDecodeError):
        return data.decode("utf-8", errors="replace")


def _quote_timer_literals(root: etree._Element) -> None:
    # Timer values are expressions; designers write literals like PT5M without
    # quotes. Quote a bare ISO 8601 literal so it means what it says.
    for tag in ("timeDuration", "timeDate", "timeCycle"):
        for el in root.iter(f"{{{BPMN_NS}}}{tag}"):
            text = (el.text or "").strip()
            if _ISO_DURATION.match(text) or _ISO_DATETIME.match(text) or _ISO_CYCLE.match(text):
                el.text = repr(text)


def _schema_problems(root: etree._Element, loc: _Locator) -> list[Problem]:
    schema = VALIDATOR.validator
    VALIDATOR.preprocess(root)
    if schema.validate(root):
        return []
    problems: list[Problem] = []
    for error in list(schema.error_log)[:10]:
        message = re.sub(r"\{[^}]*\}", "", error.message)
        problems.append(
            loc.problem(
                _element_at(root, error.line, error.message),
                f"does not follow the BPMN 2.0 schema: {message}",
                "open and save the file in a BPMN modeler, or fix the element named",
                line=error.line,
            )
        )
    return problems


def _element_at(root: etree._Element, line: int, message: str) -> etree._Element | None:
    """The element a schema error is about: libxml2 gives its line and its tag name."""
    named = re.match(r"Element '(\{[^}]*\})?([^']+)'", message)
    candidates = [el for el in root.iter() if isinstance(el.tag, str) and el.sourceline == line]
    if named:
        candidates = [el for el in candidates if _local(el.tag) == named.group(2)]
    return candidates[0] if len(candidates) == 1 else None


def _script_problem(
    loc: _Locator, el: etree._Element, text_el: etree._Element, source: str, mode: str, what: str
) -> Problem | None:
    err = check_script(source, mode)
    message, script_line = (err.message, err.line) if err else _import_problem(source, mode)
    if not message:
        return None
    line = text_el.sourceline
    if script_line is not None and line is not None:
        # Line 1 of the text is the line its element starts on; an expression is
        # compiled without its leading blank lines, so count those back in.
        skipped = source[: len(source) - len(source.lstrip())].count("\n") if mode == "eval" else 0
        line = line + skipped + script_line - 1
    hint = (
        "scripts are Python; names starting with '_' and imports other than "
        f"{', '.join(SAFE_MODULES)} are not allowed"
    )
    at = f" (line {script_line} of the {what})" if script_line is not None else ""
    verb = "does not compile" if err else "is refused"
    return loc.problem(el, f"{what} {verb}: {message}{at}", hint, line=line)


def _import_problem(source: str, mode: str) -> tuple[str, int | None]:
    """An import the sandbox would refuse when the script runs; known now, so said now."""
    if mode != "exec":
        return "", None
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in SAFE_MODULES:
                    return f"import of {alias.name!r} is not allowed", node.lineno
        elif isinstance(node, ast.ImportFrom):
            module = SAFE_MODULES.get(node.module or "") if node.level == 0 else None
            if module is None:
                name = "." * node.level + (node.module or "")
                return f"import from {name!r} is not allowed", node.lineno
            for alias in node.names:
                if not hasattr(module, alias.name):
                    return f"{node.module} offers no {alias.name!r} to scripts", node.lineno
    return "", None


def _expression_problems(root: etree._Element, loc: _Locator) -> list[Problem]:
    problems: list[Problem] = []
    for el in root.iter(f"{{{BPMN_NS}}}scriptTask"):
        script = el.find("bpmn:script", NSMAP)
        if script is None or not (script.text or "").strip():
            problems.append(loc.problem(el, "script task has no script", "add a <bpmn:script>"))
            continue
        p = _script_problem(loc, el, script, script.text or "", "exec", "script")
        if p:
            problems.append(p)
    for tag in ("preScript", "postScript"):
        for script in root.iter(f"{{{SPIFF_NS}}}{tag}"):
            owner = script.getparent().getparent() if script.getparent() is not None else None
            if (script.text or "").strip():
                p = _script_problem(loc, owner, script, script.text or "", "exec", tag)
                if p:
                    problems.append(p)
    for flow in root.iter(f"{{{BPMN_NS}}}sequenceFlow"):
        cond = flow.find("bpmn:conditionExpression", NSMAP)
        if cond is not None and (cond.text or "").strip():
            p = _script_problem(loc, flow, cond, cond.text or "", "eval", "condition")
            if p:
                problems.append(p)
    for tag in ("timeDuration", "timeDate", "timeCycle"):
        for el in root.iter(f"{{{BPMN_NS}}}{tag}"):
            event = el.getparent().getparent() if el.getparent() is not None else None
            text = (el.text or "").strip()
            if not text:
                problems.append(
                    loc.problem(
                        event, f"timer has an empty {tag}", "e.g. PT5M or 2026-12-01T09:00Z"
                    )
                )
                continue
            if _ISO_LOOKALIKE.match(text):
                problems.append(
                    loc.problem(
                        event,
                        f"timer {tag} {text!r} is not an ISO 8601 duration",
                        "write e.g. PT5M (5 minutes), PT1H (1 hour) or P1D (1 day)",
                        line=el.sourceline,
                    )
                )
                continue
            p = _script_problem(loc, event, el, el.text or "", "eval", f"timer {tag}")
            if p:
                problems.append(p)
    return problems


def _call_activity_problems(root: etree._Element, loc: _Locator) -> list[Problem]:
    # A call activity is resolved within its own file; say which one names nothing
    # here, rather than SpiffWorkflow's message that names no element.
    processes = sorted(p.get("id", "") for p in root.iter(f"{{{BPMN_NS}}}process"))
    problems: list[Problem] = []
    for call in root.iter(f"{{{BPMN_NS}}}callActivity"):
        called = call.get("calledElement", "")
        if called not in processes:
            close = difflib.get_close_matches(called, processes, n=1)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else f"set calledElement to a process of this file: {', '.join(processes)}"
            )
            problems.append(
                loc.problem(
                    call, f"calls process {called!r}, which this file does not define", hint
                )
            )
    return problems


def _operator_problems(
    root: etree._Element, loc: _Locator, operators: Mapping[str, OperatorSignature]
) -> list[Problem]:
    problems: list[Problem] = []
    known = ", ".join(sorted(operators))
    for task in root.iter(f"{{{BPMN_NS}}}serviceTask"):
        op = task.find("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", NSMAP)
        if op is None:
            problems.append(
                loc.problem(
                    task,
                    "service task names no operator",
                    'add <spiffworkflow:serviceTaskOperator id="records.get" '
                    f'resultVariable="..."> in its extensionElements; operators: {known}',
                )
            )
            continue
        name = op.get("id", "")
        signature = operators.get(name)
        if signature is None:
            close = difflib.get_close_matches(name, list(operators), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known operators: {known}"
            problems.append(loc.problem(task, f"unknown service operator {name!r}", hint))
            continue
        allowed = signature.required_params | signature.optional_params
        given: set[str] = set()
        for param in op.iterfind("spiffworkflow:parameters/spiffworkflow:parameter", NSMAP):
            pid = param.get("id", "")
            given.add(pid)
            if pid not in allowed:
                close = difflib.get_close_matches(pid, list(allowed), n=1)
                hint = (
                    f"did you mean {close[0]!r}?"
                    if close
                    else (f"{name} takes: {', '.join(sorted(allowed))}")
                )
                problems.append(
                    loc.problem(task, f"{name} has no parameter {pid!r}", hint, param.sourceline)
                )
                continue
            value = param.get("value")
            if value is None or not value.strip():
                problems.append(
                    loc.problem(
                        task,
                        f"parameter {pid!r} of {name} has no value",
                        'give an expression in value="...", e.g. value="record[\'id\']"',
                        param.sourceline,
                    )
                )
                continue
            if param.get("type") is None:
                param.set("type", "any")  # SpiffWorkflow requires the attribute
            p = _script_problem(loc, task, param, value, "eval", f"parameter {pid!r}")
            if p:
                problems.append(p)
        for missing in sorted(signature.required_params - given):
            problems.append(
                loc.problem(
                    task,
                    f"{name} needs parameter {missing!r}",
                    f'add <spiffworkflow:parameter id="{missing}" value="..."/>',
                )
            )
    return problems


def _parse_with_spiff(
    root: etree._Element, loc: _Locator, process_ids: list[str]
) -> list[ParsedProcess]:
    parser = SpiffBpmnParser(validator=None)
    try:
        parser.add_bpmn_xml(etree.ElementTree(root), filename=loc.filename)
        parsed = []
        for pid in process_ids:
            spec = parser.get_spec(pid)
            subprocesses = parser.get_subprocess_specs(pid)
            element = loc.by_id.get(pid)
            name = (element.get("name") if element is not None else None) or pid
            line = element.sourceline if element is not None else None
            parsed.append(ParsedProcess(pid, name, dump_spec(spec, subprocesses), line))
    except ValidationException as exc:
        element = loc.by_id.get(getattr(exc, "id", None) or "")
        line = exc.line_number if isinstance(exc.line_number, int) else None
        raise ValidationFailed(
            f"{loc.filename} was refused",
            [loc.problem(element, str(exc).split("\n")[0], "fix the element named", line)],
        ) from None
    except (SpiffWorkflowException, KeyError, ValueError) as exc:
        raise ValidationFailed(
            f"{loc.filename} was refused",
            [loc.problem(None, f"the process cannot be built: {exc}", "check the elements named")],
        ) from None
    return parsed
