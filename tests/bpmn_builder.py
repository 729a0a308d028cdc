"""Small BPMN documents for tests, written the way a modeler would save them."""

from __future__ import annotations

import itertools
from html import escape

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" '
    'id="defs" targetNamespace="http://catflow.test">\n'
)


def attr(value: str) -> str:
    return escape(value, quote=True)


def start(id_: str = "start") -> str:
    return f'<bpmn:startEvent id="{id_}"/>'


def end(id_: str = "end") -> str:
    return f'<bpmn:endEvent id="{id_}"/>'


def script(id_: str, code: str, name: str = "") -> str:
    return (
        f'<bpmn:scriptTask id="{id_}" name="{attr(name)}">'
        f"<bpmn:script>{escape(code, quote=False)}</bpmn:script></bpmn:scriptTask>"
    )


def service(id_: str, operator: str, result: str = "", name: str = "", **params: str) -> str:
    ps = "".join(
        f'<spiffworkflow:parameter id="{k}" type="any" value="{attr(v)}"/>'
        for k, v in params.items()
    )
    return (
        f'<bpmn:serviceTask id="{id_}" name="{attr(name)}"><bpmn:extensionElements>'
        f'<spiffworkflow:serviceTaskOperator id="{operator}" resultVariable="{result}">'
        f"<spiffworkflow:parameters>{ps}</spiffworkflow:parameters>"
        f"</spiffworkflow:serviceTaskOperator></bpmn:extensionElements></bpmn:serviceTask>"
    )


def user_task(id_: str, name: str = "") -> str:
    return f'<bpmn:userTask id="{id_}" name="{attr(name)}"/>'


def timer(id_: str, duration: str) -> str:
    return (
        f'<bpmn:intermediateCatchEvent id="{id_}"><bpmn:timerEventDefinition>'
        f"<bpmn:timeDuration>{escape(duration)}</bpmn:timeDuration>"
        f"</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
    )


def error_boundary(id_: str, attached_to: str, error_ref: str) -> str:
    return (
        f'<bpmn:boundaryEvent id="{id_}" attachedToRef="{attached_to}">'
        f'<bpmn:errorEventDefinition errorRef="{error_ref}"/></bpmn:boundaryEvent>'
    )


def flow(source: str, target: str, condition: str | None = None) -> str:
    cond = (
        f"<bpmn:conditionExpression>{escape(condition, quote=False)}</bpmn:conditionExpression>"
        if condition
        else ""
    )
    return (
        f'<bpmn:sequenceFlow id="flow_{source}_{target}" sourceRef="{source}" '
        f'targetRef="{target}">{cond}</bpmn:sequenceFlow>'
    )


def _id(element: str) -> str:
    return element.split('id="', 1)[1].split('"', 1)[0]


def chain(
    process_id: str,
    *elements: str,
    extra: tuple[str, ...] = (),
    errors: dict[str, str] | None = None,
    name: str = "",
    properties: dict[str, str] | None = None,
) -> str:
    """A process whose elements run one after another (plus `extra` elements and flows)."""
    ids = [_id(e) for e in elements]
    flows = [flow(a, b) for a, b in itertools.pairwise(ids)]
    error_defs = "".join(
        f'<bpmn:error id="{eid}" name="{code}" errorCode="{code}"/>'
        for eid, code in (errors or {}).items()
    )
    props = "".join(
        f'<spiffworkflow:property name="{k}" value="{attr(v)}"/>'
        for k, v in (properties or {}).items()
    )
    if props:
        props = (
            "<bpmn:extensionElements><spiffworkflow:properties>"
            f"{props}</spiffworkflow:properties></bpmn:extensionElements>"
        )
    body = "\n    ".join([*([props] if props else []), *elements, *flows, *extra])
    return (
        f"{HEAD}  {error_defs}\n"
        f'  <bpmn:process id="{process_id}" name="{attr(name or process_id)}" '
        'isExecutable="true">\n'
        f"    {body}\n  </bpmn:process>\n</bpmn:definitions>\n"
    )
