"""A BPMN file is untrusted input: it is read safely, or refused with a clear reason.

Nothing in a refused file is expanded, read from disk or fetched from the network,
and the error says which file, which line and what to do.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bpmn_builder import chain, end, script, start

from engine.bpmn import validate_file
from engine.components import OPERATORS
from engine.errors import Problem, ValidationFailed

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
LIMIT = 2 * 1024 * 1024
GOOD = chain("order", start(), script("total", "total = 1 + 2", name="Add up"), end())


def refusal(data: str | bytes, filename: str = "order.bpmn", max_bytes: int = LIMIT) -> Problem:
    """The single problem a refused file is refused with."""
    raw = data.encode() if isinstance(data, str) else data
    with pytest.raises(ValidationFailed) as caught:
        validate_file(raw, filename, OPERATORS.all(), max_bytes=max_bytes)
    assert filename in caught.value.message
    assert len(caught.value.problems) == 1, caught.value.problems
    problem = caught.value.problems[0]
    assert problem.hint, f"no hint for: {problem}"
    assert problem.details["file"] == filename
    return problem


def with_doctype(doctype: str, body: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"{doctype}\n"
        f'<bpmn:definitions xmlns:bpmn="{BPMN_NS}" id="defs" targetNamespace="t">'
        f"{body}</bpmn:definitions>\n"
    )


BILLION_LAUGHS = with_doctype(
    '<!DOCTYPE lolz [\n  <!ENTITY lol "lol">\n'
    + "".join(
        f'  <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10)
    )
    + "]>",
    '<bpmn:documentation id="doc">&lol9;</bpmn:documentation>',
)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A local TCP port that records whether anyone connected to it."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.setblocking(False)
    yield server
    server.close()


def assert_nobody_connected(server: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        conn, _ = server.accept()
        conn.close()


def test_a_well_formed_bpmn_file_is_accepted() -> None:
    parsed = validate_file(GOOD.encode(), "order.bpmn", OPERATORS.all(), max_bytes=LIMIT)
    assert [p.process_id for p in parsed.processes] == ["order"]


def test_billion_laughs_is_refused_without_expanding_the_entities() -> None:
    # Expanded, &lol9; would be 10**9 "lol"s (3 GB); refused, it costs nothing.
    began = time.perf_counter()
    problem = refusal(BILLION_LAUGHS)
    assert time.perf_counter() - began < 1.0
    assert "DOCTYPE" in problem.message
    assert problem.where == "order.bpmn:2"
    assert problem.details["line"] == 2
    assert "lollol" not in str(problem)


def test_an_external_entity_is_refused_without_reading_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "passwd"
    secret.write_text("root:SECRET-MARKER-4711:0:0\n")
    for target in ("file:///etc/passwd", secret.as_uri()):
        document = with_doctype(
            f'<!DOCTYPE d [<!ENTITY xxe SYSTEM "{target}">]>',
            '<bpmn:documentation id="doc">&xxe;</bpmn:documentation>',
        )
        problem = refusal(document)
        assert "DOCTYPE" in problem.message
        assert "SECRET-MARKER" not in str(problem)
        assert "root:" not in str(problem)


def test_an_external_dtd_or_parameter_entity_is_never_fetched(listener: socket.socket) -> None:
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/evil.dtd"
    documents = [
        with_doctype(f'<!DOCTYPE bpmn:definitions SYSTEM "{url}">'),
        with_doctype(f'<!DOCTYPE d [<!ENTITY % remote SYSTEM "{url}"> %remote;]>'),
        with_doctype(
            f'<!DOCTYPE d [<!ENTITY ext SYSTEM "{url}">]>',
            '<bpmn:documentation id="doc">&ext;</bpmn:documentation>',
        ),
    ]
    for document in documents:
        problem = refusal(document)
        assert "DOCTYPE" in problem.message
        assert problem.where == "order.bpmn:2"
    assert_nobody_connected(listener)


def test_any_doctype_is_refused_even_a_harmless_one() -> None:
    problem = refusal(with_doctype("<!DOCTYPE bpmn:definitions>"))
    assert problem.message == "the file declares a DTD (<!DOCTYPE>), which is refused"
    assert "remove it" in problem.hint
    assert problem.where == "order.bpmn:2"


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed() -> None:
    data = GOOD.encode()
    problem = refusal(data, max_bytes=len(data) - 1)
    assert problem.message == f"file is {len(data):,} bytes; the limit is {len(data) - 1:,}"
    assert "CATFLOW_MAX_BPMN_BYTES" in problem.hint
    # Too big is refused even when the content would be dangerous to parse.
    problem = refusal(BILLION_LAUGHS, max_bytes=100)
    assert "limit is 100" in problem.message
    # Exactly at the limit is fine.
    validate_file(data, "order.bpmn", OPERATORS.all(), max_bytes=len(data))


def test_not_well_formed_xml_is_refused_with_the_line() -> None:
    broken = GOOD.replace("</bpmn:process>", "")  # the process is never closed
    problem = refusal(broken)
    line = broken.splitlines().index("</bpmn:definitions>") + 1
    assert problem.message.startswith("not well-formed XML: mismatched tag")
    assert problem.where == f"order.bpmn:{line}"
    assert problem.details["line"] == line
    assert "closed" in problem.hint


def test_an_undeclared_entity_reference_is_refused() -> None:
    problem = refusal(GOOD.replace("total = 1 + 2", "total = &nope;"))
    assert problem.message.startswith("not well-formed XML: undefined entity")
    assert problem.where == "order.bpmn:6"


@pytest.mark.parametrize("content", [b"", b"   \n\t\n"], ids=["empty", "whitespace"])
def test_an_empty_file_is_refused(content: bytes) -> None:
    problem = refusal(content)
    assert problem.message == "file is empty"
    assert problem.where == "order.bpmn"


@pytest.mark.parametrize(
    ("document", "root"),
    [
        ('<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>', "svg"),
        (
            '<definitions xmlns="http://www.omg.org/spec/BPMN/2.0/WRONG" targetNamespace="t"/>',
            "definitions",
        ),
        (f'<?xml version="1.0"?>\n<bpmn:process xmlns:bpmn="{BPMN_NS}" id="p"/>', "process"),
    ],
    ids=["svg", "wrong-namespace", "process-as-root"],
)
def test_a_file_that_is_not_bpmn_is_refused(document: str, root: str) -> None:
    problem = refusal(document)
    assert problem.message == f"the root element is <{root}>, not a BPMN 2.0 <definitions>"
    assert problem.where == f"order.bpmn:{document.count(chr(10)) + 1}"
    assert BPMN_NS in problem.hint
