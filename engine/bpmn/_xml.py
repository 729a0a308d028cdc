"""Reading BPMN XML safely: bounded size, no DTDs, no entities, nothing fetched."""

from __future__ import annotations

import re

import defusedxml
import defusedxml.ElementTree as SafeET
from lxml import etree

from engine.errors import Problem

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NSMAP = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}

_WELL_FORMED_HINT = "check that every tag is closed and attributes are quoted"


def _problem(filename: str, message: str, hint: str, line: int | None = None) -> Problem:
    return Problem(
        message,
        where=f"{filename}:{line}" if line else filename,
        hint=hint,
        details={"file": filename, "line": line},
    )


def _line_of(data: bytes, marker: bytes) -> int | None:
    """The line ``marker`` first appears on; a DTD error carries no position of its own."""
    match = re.search(re.escape(marker), data, re.IGNORECASE)
    return data.count(b"\n", 0, match.start()) + 1 if match else None


def read_xml(
    data: bytes, filename: str, max_bytes: int
) -> tuple[etree._Element | None, list[Problem]]:
    """Parse ``data``; the root element, or None and the reasons it was refused."""
    if len(data) > max_bytes:
        return None, [
            _problem(
                filename,
                f"file is {len(data):,} bytes; the limit is {max_bytes:,}",
                "split the process, or raise CATFLOW_MAX_BPMN_BYTES",
            )
        ]
    if not data.strip():
        return None, [_problem(filename, "file is empty", "give a BPMN 2.0 XML file")]
    # defusedxml first: it refuses DTDs, entity declarations and external references
    # before anything could expand or fetch them.
    try:
        SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DTDForbidden:
        return None, [
            _problem(
                filename,
                "the file declares a DTD (<!DOCTYPE>), which is refused",
                "BPMN files need no DOCTYPE; remove it and any <!ENTITY> declarations",
                _line_of(data, b"<!DOCTYPE"),
            )
        ]
    except (defusedxml.EntitiesForbidden, defusedxml.ExternalReferenceForbidden) as exc:
        return None, [
            _problem(
                filename,
                f"the file uses XML entities or external references ({type(exc).__name__})",
                "remove <!ENTITY> declarations and entity references",
                _line_of(data, b"<!ENTITY"),
            )
        ]
    except SafeET.ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        return None, [_problem(filename, f"not well-formed XML: {exc}", _WELL_FORMED_HINT, line)]
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        return None, [
            _problem(filename, f"not well-formed XML: {exc.msg}", _WELL_FORMED_HINT, exc.lineno)
        ]
    return root, []
