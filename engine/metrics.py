"""Prometheus metrics: the registry, the series, and the calls that observe into them.

``GET /metrics`` (``engine.api.routes.metrics``) serves them in the Prometheus text
format (or OpenMetrics, when the scraper asks for it):

* ``catflow_instances{state}`` (gauge) — instances in each state, every state listed
  (0 when none); read from the database at scrape time.
* ``catflow_queue_depth`` (gauge) — instances a worker could take now: runnable, due,
  without a live lease, and not held back by an earlier instance of the same record
  (the predicate of ``Executor.due_instances``); read from the database at scrape time.
* ``catflow_step_duration_seconds{element_type}`` (histogram) — how long each BPMN
  step took in a worker, failed ones included; ``element_type`` is the element's kind
  (``ScriptTask``, ``ServiceTask``, ...), a small fixed set.
* ``catflow_outbound_requests_total{status}`` (counter) — every attempt of the
  outbound HTTP layer (``HttpClient.send``: the calls processes make; retries and
  resends after a token refresh included) by the status code answered, or ``error``
  when no answer came (a network error or timeout). A connection's own OAuth
  requests (consent, token refresh) do not go through it and are not counted. Only
  the status is a label: never a URL, a host or a connection, which would be
  unbounded and may be private.
* ``catflow_trigger_to_start_seconds`` (histogram) — from the commit of a record
  change (its outbox event's ``created_at``) to the moment an instance started by
  that change first runs: dispatch delay, queueing and waiting behind earlier
  instances of the same record.

**Per process.** The counter and the histograms live in this process's registry
(not the global ``prometheus_client.REGISTRY``): they count what this process's
workers and HTTP layer did since it started, and start from zero on a restart. The
worker processes of a ``catflow serve --worker-processes N`` send theirs to it every
second (``snapshot``/``absorb``), so its ``/metrics`` counts their work too. Scrape
each ``serve`` and each Celery worker host; with several, aggregate in Prometheus
(``sum``). The two gauges read the shared database, so every process reports the
same values.

**Role.** ``/metrics`` needs the ``viewer`` role, like every other read: the counts of
instances and calls are operational data, and the rule that every endpoint checks a
role has no exception here. Give the scraper a viewer token
(``catflow tokens create --role viewer``) and put it in its scrape config::

    scrape_configs:
      - job_name: catflow
        authorization: {credentials: cf_...}   # sent as "Authorization: Bearer cf_..."
        static_configs: [{targets: ["catflow.example.org:8000"]}]

No other engine module imports ``prometheus_client``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

# The ``*_created`` samples only double the series count for nothing Prometheus uses
# (a switch for all of prometheus_client in this process; nothing else here uses it).
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus_client

REGISTRY = CollectorRegistry(auto_describe=True)

STEP_DURATION = Histogram(
    "catflow_step_duration_seconds",
    "How long a BPMN step took in a worker, by element type.",
    ["element_type"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
OUTBOUND_REQUESTS = Counter(
    "catflow_outbound_requests",
    "Outbound HTTP attempts by the status code answered, or 'error' when none came.",
    ["status"],
    registry=REGISTRY,
)
TRIGGER_TO_START = Histogram(
    "catflow_trigger_to_start_seconds",
    "From a record change's commit to the first run of an instance it started.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
    registry=REGISTRY,
)


def observe_step(element_type: str, seconds: float) -> None:
    """A step of ``element_type`` finished (or failed) after ``seconds``."""
    STEP_DURATION.labels(element_type=element_type or "unknown").observe(max(0.0, seconds))


def observe_outbound(status: int | None) -> None:
    """One outbound attempt answered with ``status``; None: no answer (network error)."""
    OUTBOUND_REQUESTS.labels(status="error" if status is None else str(status)).inc()


def observe_trigger_to_start(seconds: float) -> None:
    """An instance started by a record change ran for the first time ``seconds`` after it."""
    TRIGGER_TO_START.observe(max(0.0, seconds))


# -- worker processes ------------------------------------------------------------------
#
# The worker processes of one `catflow serve` count into registries of their own; each
# sends its samples to the serving process now and then (``snapshot``), which adds them
# to its own (``absorb``) when it is scraped. A child that ended keeps what it counted
# (``retire``), so the series never go back.

Sample = tuple[str, dict[str, str], float]
_others_lock = threading.Lock()
_others: dict[str, list[Sample]] = {}  # the latest samples of each live child
_retired: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}  # of children that ended


def snapshot() -> list[Sample]:
    """This process's own series, as samples another process can add up."""
    return [(s.name, dict(s.labels), float(s.value)) for m in REGISTRY.collect() for s in m.samples]


def absorb(source: str, samples: list[Sample]) -> None:
    """The latest samples of the worker process ``source``."""
    with _others_lock:
        _others[source] = samples


def retire(source: str) -> None:
    """``source`` ended: what it counted stays counted."""
    with _others_lock:
        for name, labels, value in _others.pop(source, []):
            key = (name, tuple(sorted(labels.items())))
            _retired[key] = _retired.get(key, 0.0) + value


def _with_others(metric: Metric) -> Metric:
    """``metric`` with the worker processes' samples of it added."""
    with _others_lock:
        extra = [s for samples in _others.values() for s in samples]
        extra += [(name, dict(labels), value) for (name, labels), value in _retired.items()]
    mine = [s for s in extra if s[0].startswith(metric.name)]
    if not mine:
        return metric
    totals: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    groups: dict[tuple[tuple[str, str], ...], list[tuple[str, dict[str, str]]]] = {}
    for name, labels, value in [(s.name, dict(s.labels), s.value) for s in metric.samples] + mine:
        key = (name, tuple(sorted(labels.items())))
        if key not in totals:
            group = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            groups.setdefault(group, []).append((name, labels))
        totals[key] = totals.get(key, 0.0) + value
    merged = Metric(metric.name, metric.documentation, metric.type, metric.unit)
    for members in groups.values():  # a histogram's buckets stay together, in order
        for name, labels in members:
            merged.add_sample(name, labels, totals[(name, tuple(sorted(labels.items())))])
    return merged


class _Scrape:
    """This process's series plus the database figures read for this one scrape."""

    def __init__(self, instances_by_state: Mapping[str, int], queue_depth: int) -> None:
        self.instances_by_state = instances_by_state
        self.queue_depth = queue_depth

    def collect(self) -> Iterator[Metric]:
        for metric in REGISTRY.collect():
            yield _with_others(metric)
        instances = GaugeMetricFamily(
            "catflow_instances", "Process instances by state.", labels=["state"]
        )
        for state, count in sorted(self.instances_by_state.items()):
            instances.add_metric([state], count)
        yield instances
        yield GaugeMetricFamily(
            "catflow_queue_depth",
            "Instances a worker could take now: due, not leased, not held back.",
            value=self.queue_depth,
        )


def render(
    instances_by_state: Mapping[str, int], queue_depth: int, accept: str = ""
) -> tuple[bytes, str]:
    """The exposition (body, content type) in the format ``accept`` asks for."""
    try:
        encoder, content_type = choose_encoder(accept)
    except (TypeError, ValueError):  # a version it cannot compare ("version=x"): the default
        encoder, content_type = generate_latest, CONTENT_TYPE_PLAIN_0_0_4
    return encoder(_Scrape(instances_by_state, queue_depth)), content_type
