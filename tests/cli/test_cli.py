"""The `catflow` command: every form the issue names, tables for people, JSON for scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from bpmn_builder import chain, end, script, service, start, user_task
from click.testing import CliRunner, Result
from conftest import write_files
from flow_helpers import catalog

from engine.cli import cli

PROCESSES = {
    "stamp": chain(
        "stamp",
        start(),
        service(
            "write",
            "records.update",
            "updated",
            catalog="'items'",
            id="record['id']",
            data="{'note': 'seen'}",
        ),
        user_task("confirm", "Confirm"),
        script("boom", "x = 1 / confirmed"),
        end(),
    ),
}


@pytest.fixture
def invoke(project_dir: Path, db_url: str) -> Any:
    write_files(project_dir, {"items": catalog("[{on: created, process: stamp}]")}, PROCESSES)
    runner = CliRunner()

    def _invoke(*args: str, code: int = 0) -> Result:
        result = runner.invoke(
            cli, ["--project", str(project_dir), *args], env={"CATFLOW_DATABASE_URL": db_url}
        )
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        assert "Traceback" not in result.stderr
        return result

    return _invoke


def test_records_commands(invoke: Any) -> None:
    created = json.loads(
        invoke("records", "create", "items", "--data", '{"title": "a"}', "--json").stdout
    )
    rid = created["id"]
    assert created["title"] == "a" and created["count"] == 0
    assert (
        "created items record"
        in invoke("records", "create", "items", "--data", '{"title": "b", "count": 2}').stdout
    )
    got = json.loads(invoke("records", "get", "items", str(rid), "--json").stdout)
    assert got == created
    table = invoke("records", "get", "items", str(rid)).stdout
    assert "FIELD" in table and "title" in table
    updated = json.loads(
        invoke("records", "update", "items", str(rid), "--data", '{"count": 5}', "--json").stdout
    )
    assert updated["count"] == 5 and updated["title"] == "a"
    listed = json.loads(invoke("records", "list", "items", "--where", "count=5", "--json").stdout)
    assert [r["id"] for r in listed["items"]] == [rid] and listed["total"] == 1
    page = json.loads(
        invoke("records", "list", "items", "--limit", "1", "--offset", "1", "--json").stdout
    )
    assert page["total"] == 2 and len(page["items"]) == 1
    human = invoke("records", "list", "items")
    assert "TITLE" in human.stdout and "(2 of 2" in human.stderr
    assert "deleted items record" in invoke("records", "delete", "items", str(rid)).stdout
    missing = invoke("records", "get", "items", str(rid), code=1)
    assert f"items record {rid} does not exist" in missing.stderr


def test_refusals_exit_1_with_errors_on_stderr(invoke: Any) -> None:
    bad = invoke("records", "create", "items", "--data", '{"count": "x", "note": "n"}', code=1)
    assert "items.count: expected a number" in bad.stderr
    assert "items.note: is read-only" in bad.stderr
    assert "items.title: is required" in bad.stderr
    assert bad.stdout == ""
    assert "not valid JSON" in invoke("records", "create", "items", "--data", "{", code=1).stderr
    assert "no catalog named 'nope'" in invoke("records", "list", "nope", code=1).stderr
    assert "no field 'zzz'" in invoke("records", "list", "items", "--where", "zzz=1", code=1).stderr
    assert "no process 'ghost'" in invoke("instances", "start", "ghost", code=1).stderr
    assert "instance 99 does not exist" in invoke("instances", "show", "99", code=1).stderr


def test_instances_commands(invoke: Any, tmp_path: Path) -> None:
    invoke("records", "create", "items", "--data", '{"title": "a"}')
    assert "created 1 instance(s)" in invoke("run-once").stdout
    listed = json.loads(invoke("instances", "list", "--json").stdout)
    [item] = listed["items"]
    assert item["state"] == "waiting" and item["record"] == "items:1"
    assert listed["counts"]["waiting"] == 1
    assert (
        json.loads(invoke("instances", "list", "--state", "completed", "--json").stdout)["items"]
        == []
    )
    by_record = json.loads(invoke("instances", "list", "--record", "items:1", "--json").stdout)
    assert [i["id"] for i in by_record["items"]] == [item["id"]]
    assert (
        json.loads(invoke("instances", "list", "--process", "other", "--json").stdout)["items"]
        == []
    )
    iid = str(item["id"])
    shown = invoke("instances", "show", iid).stdout
    assert "waiting:  user task 'confirm' (Confirm)" in shown and "write" in shown
    detail = json.loads(invoke("instances", "show", iid, "--json").stdout)
    assert detail["user_tasks"] == ["confirm"]
    wrong = invoke("instances", "complete-task", iid, "nope", "--data", "{}", code=1)
    assert "waiting: confirm" in wrong.stderr
    invoke("instances", "complete-task", iid, "confirm", "--data", '{"confirmed": 0}')
    invoke("run-once")
    failed = json.loads(invoke("instances", "show", iid, "--json").stdout)
    assert failed["state"] == "incident" and "ZeroDivisionError" in failed["error"]["message"]
    incidents = json.loads(invoke("incidents", "list", "--json").stdout)
    assert [i["element_id"] for i in incidents] == ["boom"]
    assert "now running" in invoke("instances", "retry", iid).stdout
    invoke("run-once")
    assert "now suspended" in invoke("instances", "suspend", iid).stdout
    assert "now incident" in invoke("instances", "resume", iid).stdout
    data = tmp_path / "x.json"
    data.write_text('{"x": 42}')
    assert "now running" in invoke("instances", "skip", iid, "--data", f"@{data}").stdout
    invoke("run-once")
    done = json.loads(invoke("instances", "show", iid, "--json").stdout)
    assert done["state"] == "completed" and done["variables"]["x"] == 42
    assert "cannot cancel" in invoke("instances", "cancel", iid, code=1).stderr
    started = json.loads(
        invoke("instances", "start", "stamp", "--data", '{"record": {"id": 1}}', "--json").stdout
    )
    assert started["state"] == "queued"
    assert "now cancelled" in invoke("instances", "cancel", str(started["id"])).stdout


def test_processes_catalogs_and_deploy(invoke: Any, tmp_path: Path) -> None:
    listed = json.loads(invoke("processes", "list", "--json").stdout)
    assert [(p["process_id"], p["latest_version"]) for p in listed] == [("stamp", 1)]
    extra = tmp_path / "extra.bpmn"
    extra.write_text(chain("extra", start(), script("s", "y = 2"), end()))
    deployed = json.loads(invoke("deploy", str(extra), "--json").stdout)
    assert [(d["process_id"], d["version"], d["status"]) for d in deployed] == [("extra", 1, "new")]
    again = invoke("deploy", str(extra))
    assert "unchanged" in again.stdout
    assert "extra" in invoke("processes", "list").stdout
    cats = json.loads(invoke("catalogs", "list", "--json").stdout)
    assert cats[0]["name"] == "items"


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*prefix, name)))
    return found


def test_every_command_has_help() -> None:
    commands = _commands(cli)
    for expected in [
        ("deploy",),
        ("records", "create"),
        ("instances", "complete-task"),
        ("serve",),
        ("run-once",),
        ("processes", "list"),
    ]:
        assert expected in commands
    runner = CliRunner()
    for path in commands:
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Usage:" in result.stdout
        summary = result.stdout.split("\n\n")[1].strip()
        assert len(summary) > 10, (path, result.stdout)


def test_retry_upgrade_from_the_command_line(invoke: Any, project_dir: Path) -> None:
    invoke("records", "create", "items", "--data", '{"title": "a"}')
    invoke("run-once")
    iid = "1"
    invoke("instances", "complete-task", iid, "confirm", "--data", '{"confirmed": 0}')
    invoke("run-once")
    refused = invoke("instances", "retry", iid, "--upgrade", code=1)
    assert "already runs the latest version (v1)" in refused.stderr
    fixed = PROCESSES["stamp"].replace("x = 1 / confirmed", "x = 1 / (confirmed or 1)")
    (project_dir / "processes" / "stamp.bpmn").write_text(fixed)
    assert "now running" in invoke("instances", "retry", iid, "--upgrade").stdout
    invoke("run-once")
    shown = json.loads(invoke("instances", "show", iid, "--json").stdout)
    assert shown["state"] == "completed" and shown["version"] == 2
