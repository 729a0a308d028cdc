"""Reading BPMN XML safely: bounded size, no DTDs, no entities, nothing fetched."""

from __future__ import annotations

import defusedxml
import defusedxml.ElementTree as SafeET
from lxml import etree

from engine.errors import Problem

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NSMAP = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}


def read_xml(
    data: bytes, filename: str, max_bytes: int
) -> tuple[etree._Element | None, list[Problem]]:
    """Parse ``data``; the root element, or None and the reasons it was refused."""
    if len(data) > max_bytes:
        return None, [
            Problem(
                f"file is {len(data):,} bytes; the limit is {max_bytes:,}",
                where=filename,
                hint="split the process, or raise CATFLOW_MAX_BPMN_BYTES",
            )
        ]
    if not data.strip():
        return None, [Problem("file is empty", where=filename, hint="give a BPMN 2.0 XML file")]
    # defusedxml first: it refuses DTDs, entity declarations and external references
    # before anything could expand or fetch them.
    try:
        SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DTDForbidden:
        return None, [
            Problem(
                "the file declares a DTD (<!DOCTYPE>), which is refused",
                where=filename,
                hint="BPMN files need no DOCTYPE; remove it and any <!ENTITY> declarations",
            )
        ]
    except (defusedxml.EntitiesForbidden, defusedxml.ExternalReferenceForbidden) as exc:
        return None, [
            Problem(
                f"the file uses XML entities or external references ({type(exc).__name__})",
                where=filename,
                hint="remove <!ENTITY> declarations and entity references",
            )
        ]
    except SafeET.ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        return None, [
            Problem(
                f"not well-formed XML: {exc}",
                where=f"{filename}:{line}" if line else filename,
                hint="check that every tag is closed and attributes are quoted",
            )
        ]
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        return None, [Problem(f"not well-formed XML: {exc.msg}", where=f"{filename}:{exc.lineno}")]
    return root, []
