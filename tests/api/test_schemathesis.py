"""Generated requests against every API operation: none may answer with a 5xx.

Schemathesis reads the OpenAPI document of a real server (uvicorn on loopback, a
real database with records, completed instances and an incident to find) and sends
each operation generated requests with an admin token: valid ones (positive) and
invalid ones (negative: they must be refused with a 4xx, never crash), once with
every part generated and, for an operation with path parameters, once more with them
naming things that exist (so the requests get past the 404 into the route's work).
The one check is schemathesis's ``not_a_server_error``. The first 5xx of each
operation, mode and pass is kept (with a curl command that repeats it) and all are
reported together at the end.

Bounded: ``MAX_EXAMPLES`` cases per operation, mode and pass; no shrinking;
deterministic generation (a 5xx found once is found again, and the run takes the
same time every time); no example database. About 730 requests, 45 s per database,
nearly all of it a 40 ms stall per keep-alive request in ``engine.serving`` (its
listening socket is made with proto 0, so asyncio never sets TCP_NODELAY); without
that stall the run takes a few seconds. It runs on PostgreSQL too: that costs no
more than SQLite, and PostgreSQL is where out-of-range integers and NUL characters
turn into database errors.

Why not ``@schema.parametrize()`` with ``schemathesis.pytest.from_fixture``: the
server (and so the schema) exists only inside a fixture, which needs the lazy
loader, and schemathesis 4.32.5's lazy loader reads ``request.node._nodeid``, which
pytest 9.2 no longer has (``AttributeError: 'Function' object has no attribute
'_nodeid'``). So this test uses schemathesis's documented non-pytest API instead —
an operation's ``as_strategy()`` under Hypothesis's own ``@given`` — and needs
nothing of its pytest plugin (which the ``pytest11`` entry point still loads;
loading it is harmless under ``filterwarnings = error`` and
``--import-mode=importlib``).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import requests
import schemathesis
from api_helpers import Api, ServeApi
from bpmn_builder import chain, end, script, start
from flow_helpers import catalog, create, update
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from sqlalchemy import select

from engine.runtime import Runner
from engine.store import DeploymentRow, IncidentRow

MAX_EXAMPLES = 10
NOOP = chain("noop", start(), script("s", "seen = record['title']"), end())
BROKEN = chain("broken", start(), script("boom", "x = 1 / 0"), end())
RULES = "[{on: created, process: noop}, {on: updated, fields: [status], process: broken}]"

BOUNDED = settings(
    max_examples=MAX_EXAMPLES,
    phases=[Phase.explicit, Phase.generate],  # no shrinking, no example database
    database=None,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def _seeded(serve_api: ServeApi) -> tuple[Api, dict[str, Any]]:
    """A server with something to find (records, completed instances, an incident), and
    path parameters that name what is there."""
    api = serve_api(catalogs={"items": catalog(RULES)}, processes={"noop": NOOP, "broken": BROKEN})
    ids = [create(api.project, "items", {"title": f"item {n}"}) for n in range(3)]
    update(api.project, "items", ids[0], {"status": "go"})
    Runner(api.project, workers=1).run_once()
    with api.project.db.session() as s:
        incident = s.scalars(select(IncidentRow)).one()
        deployment = s.scalars(select(DeploymentRow)).first()
        assert deployment is not None
        known = {
            "catalog": "items",
            "record_id": ids[1],
            "instance_id": incident.instance_id,  # so retry, skip, cancel... have work to do
            "element_id": incident.element_id,
            "incident_id": incident.id,
            "deployment_id": deployment.id,
            "process_id": "broken",
            "version": 1,
        }
    return api, known


def _server_errors(case: Any, response: requests.Response) -> str | None:
    """What ``not_a_server_error`` says of this answer; None when it passes."""
    try:
        case.validate_response(response, checks=[not_a_server_error])
    except (AssertionError, BaseExceptionGroup) as failure:
        return str(failure) or type(failure).__name__
    return None


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    session: requests.Session,
    known: dict[str, Any],
    failures: dict[tuple[str, str, str], str],
) -> Counter[int]:
    """Send ``operation`` up to ``MAX_EXAMPLES`` generated requests; the statuses answered.

    ``known`` fixes path parameters to things that exist (the rest of the request is
    generated); when it is empty, everything is generated.

    The first 5xx of the operation in this mode and pass is kept in ``failures``
    (by operation, mode and pass); the rest are only counted.
    """
    statuses: Counter[int] = Counter()
    pass_ = "known" if known else "generated"

    @BOUNDED
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=known))
    def send(case: Any) -> None:
        response = case.call(session=session, timeout=30)
        statuses[response.status_code] += 1
        failure = _server_errors(case, response)
        if failure is not None and (operation.label, mode, pass_) not in failures:
            curl = case.as_curl_command(headers={"Authorization": "Bearer <admin token>"})
            failures[operation.label, mode, pass_] = f"{failure}\nWith the token: {curl}"

    try:
        send()
    except Unsatisfiable:
        # Negative mode for an operation without a parameter or body: there is
        # nothing to make invalid (the Authorization header is not in the schema).
        assert mode is GenerationMode.NEGATIVE, operation.label
    return statuses


def test_no_operation_answers_with_a_server_error(serve_api: ServeApi) -> None:
    api, known = _seeded(serve_api)
    schema = schemathesis.openapi.from_url(
        f"{api.base_url}/openapi.json",
        config=SchemathesisConfig.from_dict({}),  # not any schemathesis.toml up the tree
        timeout=30,
    )
    failures: dict[tuple[str, str, str], str] = {}
    answered: dict[str, Counter[int]] = {}
    began = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()  # an operation the schema cannot describe fails here
        named = {k: v for k, v in known.items() if f"{{{k}}}" in operation.path}
        passes = [{}, named] if named else [{}]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for fixed in passes:
                answered.setdefault(operation.label, Counter()).update(
                    _fuzz(operation, mode, api.session("admin"), fixed, failures)
                )
    took = time.monotonic() - began
    total = sum(sum(c.values()) for c in answered.values())
    print(f"\nschemathesis: {total} requests to {len(answered)} operations in {took:.1f}s")
    for label, statuses in answered.items():
        print(f"  {label}: {dict(sorted(statuses.items()))}")
    assert answered["GET /metrics"][200] and answered["GET /api/catalogs"][200], answered
    # Every request went in as admin: none was turned away by the token check.
    assert not [label for label, statuses in answered.items() if statuses[401]], answered
    server_errors = [
        f"{label} ({mode}, {pass_} path parameters; "
        f"{sum(n for status, n in answered[label].items() if status >= 500)} 5xx in all): "
        f"{failure}"
        for (label, mode, pass_), failure in failures.items()
    ]
    assert not server_errors, "\n\n".join(server_errors)
