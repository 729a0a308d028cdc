"""Reproducible performance measurements. `make bench` runs them all.

Each case prints its figures; all of them land in benchmarks/results/latest.json
and a Markdown summary beside it. `--quick` runs tiny sizes (the smoke run in
`make test`, which checks that the cases still run, never how fast).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from engine.bpmn import ProcessRun, TaskInfo, validate_file  # noqa: E402
from engine.components import OPERATORS  # noqa: E402
from engine.sandbox import pool, run_limited  # noqa: E402

sys.path.insert(0, str(ROOT))
from e2e import (  # noqa: E402
    bench_e2e_sqlite,
    bench_growth,
    bench_pacing,
    bench_pg_celery,
    bench_raw_spiff,
    bench_worker_rss,
)
from targets import derived, summary  # noqa: E402

# A script shaped like the meetings job's: list work, de-duplication, a date sum.
SCRIPT = """invited = [p['email'] for p in people if p['active'] and p['email']]
attendees = unique(invited + extra, ignore_case=True)
ends_at = add_duration(starts_at, 60)
"""
VARIABLES: dict[str, Any] = {
    "people": [{"email": f"p{i}@example.com", "active": i % 3 != 0} for i in range(20)],
    "extra": ["P1@example.com", "guest@example.org"],
    "starts_at": "2026-12-01T10:00:00+01:00",
}


def _timed(repeat: int, call: Callable[[], object]) -> float:
    """Median seconds per call over `repeat` calls (after one warm-up)."""
    call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _process(tasks: int) -> bytes:
    scripts = "".join(
        f'<bpmn:scriptTask id="s{i}"><bpmn:script>n = n + 1\n{SCRIPT}</bpmn:script>'
        "</bpmn:scriptTask>"
        for i in range(tasks)
    )
    ids = ["start", *(f"s{i}" for i in range(tasks)), "end"]
    flows = "".join(
        f'<bpmn:sequenceFlow id="f{i}" sourceRef="{a}" targetRef="{b}"/>'
        for i, (a, b) in enumerate(itertools.pairwise(ids))
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'id="d" targetNamespace="https://catflow.dev/bench">'
        '<bpmn:process id="bench" isExecutable="true"><bpmn:startEvent id="start"/>'
        f'{scripts}<bpmn:endEvent id="end"/>{flows}</bpmn:process></bpmn:definitions>'
    ).encode()


class _NoHooks:
    def task_started(self, task: TaskInfo) -> None:
        pass

    def task_finished(self, task: TaskInfo, outcome: str, changed: Any, message: Any) -> None:
        pass

    def call_service(self, task: TaskInfo, operator: str, params: Any) -> Any:
        raise AssertionError("no services in this benchmark")


def _raw_spiff_run(xml: bytes, tasks: int) -> Callable[[], object]:
    """The same process under SpiffWorkflow's own (unsandboxed) script engine."""
    from lxml import etree
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
    from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

    from engine.sandbox import HELPERS

    parser = SpiffBpmnParser()
    parser.add_bpmn_xml(etree.fromstring(xml), filename="bench.bpmn")
    spec = parser.get_spec("bench")
    engine = PythonScriptEngine(environment=TaskDataEnvironment(dict(HELPERS)))

    def run() -> object:
        workflow = BpmnWorkflow(spec, script_engine=engine)
        workflow.get_tasks()[0].data.update({**VARIABLES, "n": 0})
        workflow.do_engine_steps()
        assert workflow.completed and workflow.last_task.data["n"] == tasks
        return workflow

    return run


def _in_sandbox_sized_process(repeat: int) -> float:
    """Median seconds of ``execute(SCRIPT)`` in a fresh process set up as a sandbox
    process is (its imports, then what exists frozen out of the collector's sight).
    Each script ends with a full garbage collection, whose cost grows with what the
    process holds: timed here, with the engine, SpiffWorkflow and SQLAlchemy loaded,
    it read ~60 ms, two hundred times the script's own cost."""
    code = (
        "import gc, json, statistics, sys, time\n"
        "from engine.sandbox._restricted import execute\n"
        "gc.collect(); gc.freeze()\n"
        "script, variables, repeat = json.loads(sys.stdin.read())\n"
        "execute(script, variables)\n"
        "samples = []\n"
        "for _ in range(repeat):\n"
        "    started = time.perf_counter()\n"
        "    execute(script, variables)\n"
        "    samples.append(time.perf_counter() - started)\n"
        "print(statistics.median(samples))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps([SCRIPT, VARIABLES, repeat]),
        capture_output=True,
        text=True,
        cwd=ROOT.parent,
        check=True,
        timeout=300,
    )
    return float(result.stdout)


def bench_sandbox(quick: bool) -> dict[str, float]:
    repeat = 20 if quick else 300
    tasks = 5 if quick else 20
    figures: dict[str, float] = {}
    # The floor: compiled and run with no limits enforced and no process between.
    figures["sandbox_in_process_us_per_script"] = _in_sandbox_sized_process(repeat) * 1e6
    figures["sandbox_pool_us_per_script"] = (
        _timed(repeat, lambda: run_limited("exec", SCRIPT, VARIABLES)) * 1e6
    )
    figures["sandbox_pool_us_per_expression"] = (
        _timed(repeat, lambda: run_limited("eval", "record['id']", {"record": {"id": 1}})) * 1e6
    )
    xml = _process(tasks)
    parsed = validate_file(xml, "bench.bpmn", OPERATORS.all(), max_bytes=10_000_000)
    spec = parsed.processes[0].spec

    def engine_run() -> object:
        run = ProcessRun.start(spec, {**VARIABLES, "n": 0})
        outcome = run.advance(_NoHooks())
        assert outcome.status == "completed"
        return run

    runs = max(3, repeat // 20)
    ours = _timed(runs, engine_run) / tasks
    raw = _timed(runs, _raw_spiff_run(xml, tasks)) / tasks
    figures["script_task_ms_engine"] = ours * 1e3
    figures["script_task_ms_raw_spiff"] = raw * 1e3
    figures["sandbox_ms_per_script_task"] = (ours - raw) * 1e3
    pool().close()
    return figures


def _loop_process(turns: int) -> str:
    """A process that turns a loop (script, exclusive gateway, back) ``turns`` times."""
    flows = [
        ("start", "count", None),
        ("count", "again", None),
        ("again", "count", f"n &lt; {turns}"),
        ("again", "end", None),
    ]
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'id="d" targetNamespace="https://catflow.dev/bench">'
        '<bpmn:process id="loop" isExecutable="true"><bpmn:startEvent id="start"/>'
        '<bpmn:scriptTask id="count"><bpmn:script>n = n + 1</bpmn:script></bpmn:scriptTask>'
        '<bpmn:exclusiveGateway id="again" default="f3"/><bpmn:endEvent id="end"/>'
    )
    for i, (source, target, condition) in enumerate(flows):
        xml += f'<bpmn:sequenceFlow id="f{i}" sourceRef="{source}" targetRef="{target}"'
        if condition is None:
            xml += "/>"
        else:
            xml += (
                '><bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">'
                f"{condition}</bpmn:conditionExpression></bpmn:sequenceFlow>"
            )
    parsed = validate_file(
        (xml + "</bpmn:process></bpmn:definitions>").encode(),
        "loop.bpmn",
        OPERATORS.all(),
        max_bytes=1_000_000,
    )
    return parsed.processes[0].spec


def bench_loop(quick: bool) -> dict[str, float]:
    """A loop run in memory (no store): ms per turn when short and when long. Every
    turn adds a level to SpiffWorkflow's task tree; a scan of the whole tree per task
    once made the long loop cost ~10x more per turn (2,000 turns: 17 s)."""
    short, long = (20, 100) if quick else (200, 2000)
    figures: dict[str, float] = {}
    for turns in (short, long):
        spec = _loop_process(turns)

        def run(spec: str = spec, turns: int = turns) -> object:
            process = ProcessRun.start(spec, {"n": 0})
            outcome = process.advance(_NoHooks(), max_tasks=1_000_000)
            assert outcome.status == "completed", outcome
            assert process.variables()["n"] == turns
            return process

        figures[f"loop_ms_per_turn_at_{turns}"] = _timed(1 if quick else 3, run) / turns * 1e3
    figures["loop_long_vs_short_per_turn"] = (
        figures[f"loop_ms_per_turn_at_{long}"] / figures[f"loop_ms_per_turn_at_{short}"]
    )
    pool().close()
    return figures


CASES: dict[str, Callable[[bool], dict[str, float]]] = {
    "sandbox": bench_sandbox,
    "loop": bench_loop,
    "e2e_sqlite": bench_e2e_sqlite,
    "raw_spiff": bench_raw_spiff,
    "pg_celery": bench_pg_celery,
    "growth": bench_growth,
    "pacing": bench_pacing,
    "worker_rss": bench_worker_rss,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("cases", nargs="*", help=f"cases to run (default all: {', '.join(CASES)})")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the cases run")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "results", help="folder for latest.json and .md"
    )
    args = parser.parse_args()
    chosen = args.cases or list(CASES)
    unknown = [c for c in chosen if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; cases: {', '.join(CASES)}")
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cores": os.cpu_count(),
        },
        "quick": args.quick,
        "figures": {},
    }
    for name in chosen:
        print(f"running {name}{' (quick)' if args.quick else ''} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        results["figures"].update(CASES[name](args.quick))
        print(f"  {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    results["figures"].update(derived(results["figures"]))
    width = max(len(k) for k in results["figures"])
    print(f"{'figure'.ljust(width)}  value")
    for key, value in results["figures"].items():
        print(f"{key.ljust(width)}  {value:12.3f}")
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.output / "latest.md").write_text(summary(results))
    print(f"wrote {args.output / 'latest.json'} and latest.md", file=sys.stderr)


if __name__ == "__main__":
    main()
