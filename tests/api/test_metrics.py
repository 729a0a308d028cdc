"""/metrics: the five series, read off a real server after real instances and calls.

The counter and histograms are per process and the tests share one process, so
what a test asserts of them is the change between a scrape before and one after.
"""

from __future__ import annotations

from collections import Counter

from api_helpers import Api, ServeApi
from bpmn_builder import chain, end, script, start
from calendar_flow import api_calls, connect, detail, http_settings, one_call, start_and_run
from flow_helpers import catalog, create, instances, update
from prometheus_client.parser import text_string_to_metric_families

from engine.emulators.calendar import CalendarEmulator
from engine.runtime import Runner

NOOP = chain("noop", start(), script("s", "seen = record['title']"), end())
BROKEN = chain("broken", start(), script("boom", "x = 1 / 0"), end())
RULES = "[{on: created, process: noop}, {on: updated, fields: [status], process: broken}]"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(api: Api) -> tuple[Samples, dict[str, list[str]]]:
    """Every sample by (name, labels), and every family's label names."""
    answer = api.get("viewer", "/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    labels: dict[str, list[str]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
            labels.setdefault(family.name, [])
            labels[family.name] += [k for k in sample.labels if k not in labels[family.name]]
    return samples, labels


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str) -> float:
    """A sample summed over its labels (``le`` buckets are not samples of this name)."""
    return sum(v for (n, _), v in samples.items() if n == name)


def test_metrics_show_instances_steps_calls_queue_and_trigger_latency(
    serve_api: ServeApi, emulator: CalendarEmulator
) -> None:
    api = serve_api(
        catalogs={"items": catalog(RULES)},
        processes={
            "noop": NOOP,
            "broken": BROKEN,
            "call": one_call("google_calendar.calendar_list.list"),
        },
        **http_settings(emulator),
    )
    connect(api.project, emulator)
    before, _ = scrape(api)

    # Three records, three queued instances; the update of the first one starts a
    # fourth, held back behind the first's create: not something a worker can take.
    ids = [create(api.project, "items", {"title": f"item {n}"}) for n in range(3)]
    update(api.project, "items", ids[0], {"status": "go"})
    Runner(api.project, workers=1).dispatch()
    queued, _ = scrape(api)
    assert value(queued, "catflow_instances", state="queued") == 4
    assert value(queued, "catflow_queue_depth") == 3

    Runner(api.project, workers=1).run_once()
    call = start_and_run(api.project)  # not started by a record change
    assert detail(api.project, call)["state"] == "completed"
    after, labels = scrape(api)

    # Instances by state: what the database holds, and every state listed.
    in_db = Counter(row.state for row in instances(api.project))
    assert in_db == {"completed": 4, "incident": 1}
    for state in (
        "queued",
        "running",
        "waiting",
        "completed",
        "incident",
        "suspended",
        "cancelled",
    ):
        assert value(after, "catflow_instances", state=state) == in_db[state], state
    assert value(after, "catflow_queue_depth") == 0

    # Steps: the scripts, the service call, start and end events; failed ones too.
    def steps(element_type: str) -> float:
        return value(
            after, "catflow_step_duration_seconds_count", element_type=element_type
        ) - value(before, "catflow_step_duration_seconds_count", element_type=element_type)

    assert steps("ScriptTask") == 4  # three `s`, one `boom` that failed
    assert steps("ServiceTask") == 1
    assert total(after, "catflow_step_duration_seconds_sum") > total(
        before, "catflow_step_duration_seconds_sum"
    )
    assert labels["catflow_step_duration_seconds"] == ["element_type", "le"]

    # Outbound calls by status: the one calendar call, a 200; no URL in any label.
    made = api_calls(emulator)
    assert [c["status"] for c in made] == [200]
    assert (
        value(after, "catflow_outbound_requests_total", status="200")
        - value(before, "catflow_outbound_requests_total", status="200")
        == 1
    )
    assert labels["catflow_outbound_requests"] == ["status"]

    # Trigger to start: once per instance a record change started (4), not the call.
    started = value(after, "catflow_trigger_to_start_seconds_count") - value(
        before, "catflow_trigger_to_start_seconds_count"
    )
    assert started == 4
    waited = value(after, "catflow_trigger_to_start_seconds_sum") - value(
        before, "catflow_trigger_to_start_seconds_sum"
    )
    assert 0 < waited < 4 * 60  # plausible: seconds at most here, never negative

    # Running again starts nothing new: the first start is counted once.
    Runner(api.project, workers=1).run_once()
    again, _ = scrape(api)
    assert value(again, "catflow_trigger_to_start_seconds_count") == value(
        after, "catflow_trigger_to_start_seconds_count"
    )


def test_metrics_need_a_viewer_token_and_speak_openmetrics_on_request(
    serve_api: ServeApi,
) -> None:
    api = serve_api(catalogs={"items": catalog()})
    refused = api.get(None, "/metrics")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert api.get(None, "/metrics", headers={"Authorization": "Bearer cf_nope"}).status_code == 401
    assert api.get("viewer", "/metrics").status_code == 200
    assert api.get("admin", "/metrics").status_code == 200

    open_metrics = api.get(
        "viewer", "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert open_metrics.status_code == 200
    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
    assert open_metrics.text.endswith("# EOF\n")
    assert 'catflow_instances{state="queued"} 0' in open_metrics.text
    # A malformed Accept header (prometheus_client cannot compare "version=x") gets the
    # classic text format, not a 500.
    odd = api.get("viewer", "/metrics", headers={"Accept": "text/plain; version=x"})
    assert odd.status_code == 200
    assert odd.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
