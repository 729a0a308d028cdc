"""A worker killed with SIGKILL mid-instance: after a restart the instance completes once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bpmn_builder import chain, end, script, service, start
from conftest import write_files
from flow_helpers import USER
from sqlalchemy import func, select

from engine.runtime import open_project
from engine.store import InstanceRow, OutboxEvent, RecordRow, StepRow

pytestmark = pytest.mark.slow

CATALOGS = {
    "jobs": """
fields:
  title: {type: text, required: true}
  status: {type: text, readonly: true}
triggers:
  - on: created
    process: slow_job
""",
    "audits": """
fields:
  job: {type: link, catalog: jobs}
  text: {type: text}
""",
}

# Creates a record (a side effect), then works for a while, then writes back.
SLOW_JOB = chain(
    "slow_job",
    start(),
    service(
        "audit",
        "records.create",
        "audit",
        "Write audit",
        catalog="'audits'",
        data="{'job': record['id'], 'text': 'started ' + record['title']}",
    ),
    script(
        "work",
        "t0 = datetime.datetime.now()\n"
        "while (datetime.datetime.now() - t0).total_seconds() < 2.5:\n"
        "    pass\n"
        "del t0\nworked = True",
        "Long work",
    ),
    service(
        "finish",
        "records.update",
        "done",
        "Write back",
        catalog="'jobs'",
        id="record['id']",
        data="{'status': 'done'}",
    ),
    end(),
    properties={"script_cpu_seconds": "10"},  # the default 2 s would stop the long work
)


def _serve(project_dir: Path, db_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CATFLOW_DATABASE_URL": db_url,
        "CATFLOW_LEASE_SECONDS": "2",
        "CATFLOW_POLL_INTERVAL": "0.05",
        "CATFLOW_WORKERS": "2",
        "CATFLOW_LOG_LEVEL": "info",
    }
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "engine", "--project", str(project_dir), "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as at a terminal
        )


def _wait_for(check: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; serve log:\n{log.read_text()[-3000:]}")


def test_sigkill_mid_instance_then_restart_completes_once(
    project_dir: Path, db_url: str, tmp_path: Path
) -> None:
    write_files(project_dir, CATALOGS, {"slow_job": SLOW_JOB})
    from conftest import settings_for

    project = open_project(settings_for(project_dir, db_url))
    log = tmp_path / "serve.log"
    try:
        with project.db.session() as s:
            job_id = project.records.create(s, "jobs", {"title": "nightly"}, USER).id

        def scalar(query: Any) -> Any:
            with project.db.session() as s:
                return s.scalar(query)

        audits = select(func.count()).select_from(RecordRow).where(RecordRow.catalog == "audits")
        first = _serve(project_dir, db_url, log)
        try:
            # The audit record is committed together with the checkpoint after
            # it; the instance is then inside the 2.5 s script.
            _wait_for(lambda: scalar(audits) == 1, 30, "the audit record", log)
            time.sleep(0.5)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        inst = scalar(select(InstanceRow).where(InstanceRow.record_id == job_id))
        assert inst.state == "running" and inst.lease_owner is not None  # died holding it
        assert inst.ended_at is None

        second = _serve(project_dir, db_url, log)
        try:
            _wait_for(
                lambda: (
                    scalar(select(InstanceRow.state).where(InstanceRow.id == inst.id))
                    == "completed"
                ),
                60,
                "the instance to complete after the restart",
                log,
            )
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0, log.read_text()[-3000:]

        assert scalar(audits) == 1  # no repeated side effect
        audit_events = select(func.count()).where(
            OutboxEvent.catalog == "audits", OutboxEvent.kind == "created"
        )
        assert scalar(audit_events) == 1
        with project.db.session() as s:
            job = project.records.get(s, "jobs", job_id)
            assert job.data["status"] == "done"
            steps = list(
                s.execute(
                    select(StepRow.element_id, StepRow.outcome, StepRow.worker)
                    .where(StepRow.instance_id == inst.id)
                    .order_by(StepRow.id)
                )
            )
            final = s.get(InstanceRow, inst.id)
            assert final is not None and final.runs == 2
        ran = [element for element, outcome, _ in steps if outcome == "completed"]
        assert ran == ["start", "audit", "work", "finish", "end"]  # each exactly once
        assert len({worker for _, _, worker in steps}) == 2  # the dead one, then the new one
    finally:
        project.close()


def _sandbox_running(pid: int) -> bool:
    import psutil

    children = psutil.Process(pid).children()
    return any("engine.sandbox._child" in " ".join(c.cmdline()) for c in children)


def test_serve_stops_cleanly_on_sigint(project_dir: Path, db_url: str, tmp_path: Path) -> None:
    write_files(project_dir, CATALOGS, {"slow_job": SLOW_JOB})
    from conftest import settings_for

    project = open_project(settings_for(project_dir, db_url))
    with project.db.session() as s:
        project.records.create(s, "jobs", {"title": "at work"}, USER)
    project.close()
    log = tmp_path / "serve.log"
    proc = _serve(project_dir, db_url, log)
    try:
        # Inside the long script: the sandbox processes are up when Ctrl-C comes.
        _wait_for(
            lambda: _sandbox_running(proc.pid),
            30,
            "a sandbox process",
            log,
        )
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole process group
        assert proc.wait(30) == 0
        assert "stopping (SIGINT)" in log.read_text()
        assert "Traceback" not in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
