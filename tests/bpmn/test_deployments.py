"""Deployments on a real database (SQLite and PostgreSQL): versions, atomicity, startup.

Deploying the same content twice changes nothing; changed content is a new version;
a refused file changes nothing at all; running instances stay on their version.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from bpmn_builder import chain, end, script, service, start, user_task
from sqlalchemy import func, select

from engine.errors import ValidationFailed
from engine.runtime import (
    Executor,
    Project,
    complete_user_task,
    deploy,
    deploy_paths,
    instance_detail,
    list_processes,
    start_process,
)
from engine.store import Database, DeploymentRow, InstanceRow, ProcessVersionRow, migrate

OpenProject = Callable[..., Project]
USER = {"kind": "user", "user": "tester"}


def approval(result: str) -> str:
    """A process that waits for a person, then runs a script that sets ``result``."""
    return chain(
        "approval",
        start(),
        user_task("approve", "Approve"),
        script("decide", f"result = {result!r}", name="Decide"),
        end(),
        name="Approval",
    )


def invoice(total: str = "1 + 2") -> str:
    return chain("invoice", start(), script("sum", f"total = {total}", name="Sum"), end())


BROKEN = chain("broken", start(), service("load", "records.gte", "r", catalog="'m'", id="1"), end())


def rows(db: Database) -> tuple[int, int]:
    """How many deployments and process versions are stored."""
    with db.session() as s:
        deployments = s.scalar(select(func.count()).select_from(DeploymentRow))
        versions = s.scalar(select(func.count()).select_from(ProcessVersionRow))
    return int(deployments or 0), int(versions or 0)


def versions(db: Database, process_id: str) -> list[int]:
    with db.session() as s:
        return list(
            s.scalars(
                select(ProcessVersionRow.version)
                .where(ProcessVersionRow.process_id == process_id)
                .order_by(ProcessVersionRow.version)
            )
        )


def deploy_texts(project: Project, files: dict[str, str]) -> list[tuple[str, str, int, str]]:
    results = deploy(
        project.db,
        [(name, text.encode()) for name, text in files.items()],
        max_bytes=project.settings.max_bpmn_bytes,
    )
    return [(r.filename, r.process_id, r.version, r.status) for r in results]


def run_due(project: Project) -> None:
    executor = Executor(project.db, project.records, "test-worker", 30.0)
    while executor.run_due():
        pass


# -- startup and `deploy` --------------------------------------------------------


def test_processes_folder_is_deployed_when_the_project_opens(
    open_test_project: OpenProject, project_dir: Path
) -> None:
    project = open_test_project(processes={"approval": approval("yes"), "invoice": invoice()})
    assert sorted((r.process_id, r.version, r.status) for r in project.deployed) == [
        ("approval", 1, "new"),
        ("invoice", 1, "new"),
    ]
    with project.db.session() as s:
        summaries = {p.process_id: p for p in list_processes(s)}
    assert summaries["approval"].name == "Approval"
    assert summaries["approval"].latest_version == 1
    assert summaries["approval"].filename == str(project_dir / "processes" / "approval.bpmn")
    assert rows(project.db) == (2, 2)


def test_the_same_content_is_the_same_version(open_test_project: OpenProject) -> None:
    project = open_test_project(processes={"invoice": invoice()})
    assert rows(project.db) == (1, 1)
    # Opening the project again redeploys processes/: nothing new is stored.
    again = open_test_project()
    assert [(r.process_id, r.version, r.status) for r in again.deployed] == [
        ("invoice", 1, "unchanged")
    ]
    # The same bytes under another name are the same version too.
    assert deploy_texts(project, {"copy/invoice.bpmn": invoice()}) == [
        ("copy/invoice.bpmn", "invoice", 1, "unchanged")
    ]
    assert rows(project.db) == (1, 1)


def test_changed_content_is_a_new_version(open_test_project: OpenProject) -> None:
    project = open_test_project(processes={"invoice": invoice("1 + 2")})
    v2 = open_test_project(processes={"invoice": invoice("1 + 3")})
    assert [(r.process_id, r.version, r.status) for r in v2.deployed] == [
        ("invoice", 2, "new version")
    ]
    assert versions(project.db, "invoice") == [1, 2]
    # A file in processes/ whose content was deployed before is left alone at
    # start: putting the old file back does not flip the process back to it...
    back = open_test_project(processes={"invoice": invoice("1 + 2")})
    assert [(r.version, r.status) for r in back.deployed] == [(1, "unchanged")]
    assert versions(project.db, "invoice") == [1, 2]
    # ...deploying it by name makes it current again, as a new version.
    assert deploy_texts(project, {"processes/invoice.bpmn": invoice("1 + 2")}) == [
        ("processes/invoice.bpmn", "invoice", 3, "new version")
    ]
    with project.db.session() as s:
        [summary] = list_processes(s)
    assert (summary.latest_version, summary.versions) == (3, 3)
    assert rows(project.db) == (3, 3)


def test_one_file_may_define_several_processes(open_test_project: OpenProject) -> None:
    both = approval("yes").replace(
        "</bpmn:definitions>",
        '<bpmn:process id="notify" name="Notify" isExecutable="true">'
        '<bpmn:startEvent id="n_start"/></bpmn:process>\n</bpmn:definitions>',
    )
    project = open_test_project(processes={"both": both})
    assert sorted((r.process_id, r.version) for r in project.deployed) == [
        ("approval", 1),
        ("notify", 1),
    ]
    assert rows(project.db) == (1, 2)  # one file, stored once; a version per process
    again = open_test_project()
    assert {r.status for r in again.deployed} == {"unchanged"}


# -- a refused file changes nothing ----------------------------------------------


def test_a_deployment_with_one_bad_file_deploys_none_of_them(
    open_test_project: OpenProject,
) -> None:
    project = open_test_project(processes={"invoice": invoice("1 + 2")})
    with pytest.raises(ValidationFailed) as caught:
        deploy_texts(
            project,
            {"invoice.bpmn": invoice("1 + 3"), "approval.bpmn": approval("yes"), "b.bpmn": BROKEN},
        )
    assert caught.value.message == "deployment refused: 1 problem(s); nothing was deployed"
    [problem] = caught.value.problems
    assert problem.details["file"] == "b.bpmn"
    assert problem.hint == "did you mean 'records.get'?"
    assert rows(project.db) == (1, 1)
    assert versions(project.db, "invoice") == [1]
    assert versions(project.db, "approval") == []


def test_problems_of_every_refused_file_are_reported(open_test_project: OpenProject) -> None:
    project = open_test_project()
    bad_script = invoice("(")
    with pytest.raises(ValidationFailed) as caught:
        deploy_texts(project, {"a.bpmn": BROKEN, "b.bpmn": bad_script, "c.bpmn": "<oops"})
    assert [p.details["file"] for p in caught.value.problems] == ["a.bpmn", "b.bpmn", "c.bpmn"]
    assert rows(project.db) == (0, 0)


def test_a_bad_file_in_processes_makes_the_project_refuse_to_open(
    open_test_project: OpenProject, project_dir: Path, db_url: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        open_test_project(processes={"invoice": invoice(), "broken": BROKEN})
    [problem] = caught.value.problems
    assert problem.details["file"] == str(project_dir / "processes" / "broken.bpmn")
    assert problem.where.startswith(f"{project_dir / 'processes' / 'broken.bpmn'}:")
    db = Database(db_url)
    try:
        migrate(db)
        assert rows(db) == (0, 0)  # not even the good file
    finally:
        db.dispose()
    (project_dir / "processes" / "broken.bpmn").unlink()
    project = open_test_project()
    assert [r.process_id for r in project.deployed] == ["invoice"]


def test_a_file_in_processes_over_the_size_limit_is_refused(
    open_test_project: OpenProject, project_dir: Path
) -> None:
    text = invoice()
    with pytest.raises(ValidationFailed) as caught:
        open_test_project(processes={"invoice": text}, max_bpmn_bytes=100)
    [problem] = caught.value.problems
    assert problem.message == f"file is {len(text.encode()):,} bytes; the limit is 100"
    assert problem.where == str(project_dir / "processes" / "invoice.bpmn")
    assert "CATFLOW_MAX_BPMN_BYTES" in problem.hint


def test_a_file_that_cannot_be_read_is_refused(
    open_test_project: OpenProject, tmp_path: Path
) -> None:
    project = open_test_project()
    good = tmp_path / "invoice.bpmn"
    good.write_text(invoice())
    missing = tmp_path / "nowhere.bpmn"
    with pytest.raises(ValidationFailed) as caught:
        deploy_paths(project.db, [good, missing], max_bytes=project.settings.max_bpmn_bytes)
    [problem] = caught.value.problems
    assert problem.where == str(missing)
    assert "cannot be read" in problem.message
    assert rows(project.db) == (0, 0)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_reading_a_file_is_bounded_even_when_it_has_no_size(
    open_test_project: OpenProject,
) -> None:
    # A device or a pipe reports size 0 and never ends; reading stops at the limit.
    project = open_test_project()
    with pytest.raises(ValidationFailed) as caught:
        deploy_paths(project.db, [Path("/dev/zero")], max_bytes=1000)
    [problem] = caught.value.problems
    assert problem.message == "file is more than 1,000 bytes, the limit"
    assert rows(project.db) == (0, 0)


@pytest.mark.parametrize("encoding", ["iso-8859-1", "utf-16"])
def test_the_deployed_file_is_stored_as_it_reads(
    open_test_project: OpenProject, tmp_path: Path, encoding: str
) -> None:
    text = chain("cafe", start(), script("pay", "price = 'café crème'", name="Café"), end())
    path = tmp_path / "cafe.bpmn"
    path.write_bytes(text.replace('encoding="UTF-8"', f'encoding="{encoding}"').encode(encoding))
    project = open_test_project()
    [result] = deploy_paths(project.db, [path], max_bytes=project.settings.max_bpmn_bytes)
    assert (result.process_id, result.status) == ("cafe", "new")
    with project.db.session() as s:
        [xml] = s.scalars(select(DeploymentRow.xml)).all()
    assert xml.startswith(f'<?xml version="1.0" encoding="{encoding}"?>')
    assert "price = 'café crème'" in xml
    assert 'name="Café"' in xml


def test_two_files_defining_the_same_process_are_refused(
    open_test_project: OpenProject, project_dir: Path
) -> None:
    # Otherwise each would be the latest in turn, and every start would store both again.
    with pytest.raises(ValidationFailed) as caught:
        open_test_project(processes={"a": invoice("1 + 2"), "b": invoice("1 + 3")})
    [problem] = caught.value.problems
    a, b = (str(project_dir / "processes" / f"{n}.bpmn") for n in "ab")
    assert problem.message == f"process 'invoice' is also defined by {a}"
    assert problem.where == f"{b}:4 process 'invoice' (invoice)"
    assert problem.details["element_id"] == "invoice"
    assert "one file per process" in problem.hint


def test_an_unchanged_file_and_a_new_one_for_the_same_process_are_refused(
    open_test_project: OpenProject, tmp_path: Path
) -> None:
    project = open_test_project(processes={"invoice": invoice("1 + 2")})
    elsewhere = tmp_path / "invoice-v2.bpmn"
    elsewhere.write_text(invoice("1 + 3"))
    with pytest.raises(ValidationFailed) as caught:
        deploy_paths(
            project.db,
            [project.settings.processes_dir / "invoice.bpmn", elsewhere],
            max_bytes=project.settings.max_bpmn_bytes,
        )
    assert "also defined by" in caught.value.problems[0].message
    assert versions(project.db, "invoice") == [1]


def test_the_same_file_named_twice_is_deployed_once(open_test_project: OpenProject) -> None:
    project = open_test_project()
    data = invoice().encode()
    results = deploy(project.db, [("i.bpmn", data), ("i.bpmn", data)], max_bytes=10**6)
    assert [(r.version, r.status) for r in results] == [(1, "new")]
    assert rows(project.db) == (1, 1)


# -- versions and running instances ---------------------------------------------


def test_a_running_instance_keeps_its_version(open_test_project: OpenProject) -> None:
    project = open_test_project(processes={"approval": approval("from v1")})
    with project.db.session() as s:
        old = start_process(s, "approval", {"amount": 10}, USER).id
    run_due(project)  # it now waits for the user task of v1

    # v2 changes the script and no longer asks anyone.
    v2 = chain("approval", start(), script("decide", "result = 'from v2'", name="Decide"), end())
    assert deploy_texts(project, {"approval.bpmn": v2}) == [
        ("approval.bpmn", "approval", 2, "new version")
    ]
    with project.db.session() as s:
        new = start_process(s, "approval", {"amount": 20}, USER).id
        complete_user_task(s, old, "approve", {"approved": True}, "tester")
    run_due(project)

    with project.db.session() as s:
        before, after = instance_detail(s, old), instance_detail(s, new)
    assert (before["state"], before["version"]) == ("completed", 1)
    assert before["variables"] == {"amount": 10, "approved": True, "result": "from v1"}
    assert {"approve", "decide"} <= {step["element_id"] for step in before["steps"]}
    assert (after["state"], after["version"]) == ("completed", 2)
    assert after["variables"] == {"amount": 20, "result": "from v2"}
    assert "approve" not in {step["element_id"] for step in after["steps"]}


def test_the_spec_is_stored_once_per_version_not_in_instances(
    open_test_project: OpenProject,
) -> None:
    marker = "# SPEC-ONLY-MARKER"
    long_script = "\n".join([f"{marker} {i}: explain the rule at length" for i in range(200)])
    text = chain(
        "approval",
        start(),
        user_task("approve", "Approve"),
        script("decide", long_script + "\nresult = 1", name="Decide"),
        end(),
    )
    project = open_test_project(processes={"approval": text})
    with project.db.session() as s:
        for amount in (1, 2, 3):
            start_process(s, "approval", {"amount": amount}, USER)
    run_due(project)

    with project.db.session() as s:
        [spec] = s.scalars(select(ProcessVersionRow.spec)).all()
        workflows = s.scalars(select(InstanceRow.workflow)).all()
        states = set(s.scalars(select(InstanceRow.state)))
    assert states == {"waiting"}
    assert marker in spec
    assert len(workflows) == 3
    for workflow in workflows:
        state = json.loads(workflow)
        assert "spec" not in state
        assert "subprocess_specs" not in state
        assert marker not in workflow
        assert len(workflow) * 3 < len(spec)
