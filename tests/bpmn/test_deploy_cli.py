"""`catflow deploy FILE...` and `catflow processes list`, as a user runs them."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bpmn_builder import chain, end, script, service, start
from click.testing import CliRunner, Result

from engine.cli import cli

Catflow = Callable[..., Result]


def invoice(total: str = "1 + 2") -> str:
    return chain("invoice", start(), script("sum", f"total = {total}", name="Sum"), end())


BROKEN = chain(
    "sync",
    start(),
    service("load", "records.gte", "meeting", name="Load meeting", catalog="'m'", id="1"),
    end(),
)


@pytest.fixture(autouse=True)
def _keep_logging() -> Iterator[None]:
    # The command points the "catflow" logger at the runner's stderr, which is
    # closed once the command returns; later tests must not log into it.
    logger = logging.getLogger("catflow")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture
def catflow(project_dir: Path, db_url: str) -> Catflow:
    def _run(*args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(
            cli,
            ["--project", str(project_dir), *args],
            env={
                "CATFLOW_DATABASE_URL": db_url,
                "CATFLOW_MAX_BPMN_BYTES": "",
                "CATFLOW_HOME": None,
                **(env or {}),
            },
        )

    return _run


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def processes(catflow: Catflow) -> list[dict[str, Any]]:
    result = catflow("processes", "list", "--json")
    assert result.exit_code == 0, result.output
    items: list[dict[str, Any]] = json.loads(result.stdout)
    return items


def assert_refused(result: Result) -> str:
    """Exit code 1, the reasons on stderr, and no stack trace."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output
    return result.stderr


def test_deploy_a_file_then_the_same_file_again(catflow: Catflow, tmp_path: Path) -> None:
    path = write(tmp_path, "invoice.bpmn", invoice())
    first = catflow("deploy", str(path), "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == [
        {"filename": str(path), "process_id": "invoice", "version": 1, "status": "new"}
    ]
    assert f"deployed invoice v1 (new) from {path}" in first.stderr

    again = catflow("deploy", str(path))
    assert again.exit_code == 0, again.output
    header, row = again.stdout.splitlines()
    assert header.split() == ["PROCESS", "VERSION", "STATUS", "FILE"]
    assert row.split() == ["invoice", "1", "unchanged", str(path)]  # the path is never cut
    assert again.stderr == ""  # nothing was deployed, so nothing is announced

    [listed] = processes(catflow)
    assert (listed["process_id"], listed["latest_version"], listed["versions"]) == ("invoice", 1, 1)


def test_deploying_changed_content_makes_a_new_version(catflow: Catflow, tmp_path: Path) -> None:
    path = write(tmp_path, "invoice.bpmn", invoice("1 + 2"))
    assert catflow("deploy", str(path)).exit_code == 0
    path.write_text(invoice("1 + 3"))
    result = catflow("deploy", str(path), "--json")
    assert result.exit_code == 0, result.output
    assert [(r["version"], r["status"]) for r in json.loads(result.stdout)] == [(2, "new version")]
    [listed] = processes(catflow)
    assert (listed["latest_version"], listed["versions"], listed["filename"]) == (2, 2, str(path))


def test_a_refused_deploy_exits_1_with_every_error_located(
    catflow: Catflow, tmp_path: Path
) -> None:
    path = write(tmp_path, "sync.bpmn", BROKEN)
    stderr = assert_refused(catflow("deploy", str(path)))
    assert "deployment refused: 1 problem(s); nothing was deployed" in stderr
    line = BROKEN.splitlines().index(next(x for x in BROKEN.splitlines() if 'id="load"' in x)) + 1
    assert (
        f"{path}:{line} serviceTask 'load' (Load meeting): unknown service operator "
        "'records.gte' (did you mean 'records.get'?)"
    ) in stderr
    assert processes(catflow) == []


def test_several_files_with_one_bad_deploy_none(catflow: Catflow, tmp_path: Path) -> None:
    good = write(tmp_path, "invoice.bpmn", invoice())
    bad = write(tmp_path, "sync.bpmn", BROKEN)
    stderr = assert_refused(catflow("deploy", str(good), str(bad)))
    assert str(bad) in stderr
    assert f"{good}:" not in stderr
    assert processes(catflow) == []


def test_an_unsafe_file_is_refused_on_the_command_line(catflow: Catflow, tmp_path: Path) -> None:
    evil = write(
        tmp_path,
        "evil.bpmn",
        '<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">'
        "&xxe;</bpmn:definitions>\n",
    )
    stderr = assert_refused(catflow("deploy", str(evil)))
    assert f"{evil}:2: the file declares a DTD (<!DOCTYPE>), which is refused" in stderr
    assert "root:" not in stderr


def test_the_size_limit_comes_from_catflow_max_bpmn_bytes(catflow: Catflow, tmp_path: Path) -> None:
    path = write(tmp_path, "invoice.bpmn", invoice())
    size = path.stat().st_size
    stderr = assert_refused(
        catflow("deploy", str(path), env={"CATFLOW_MAX_BPMN_BYTES": str(size - 1)})
    )
    assert f"file is {size:,} bytes; the limit is {size - 1:,}" in stderr
    assert "raise CATFLOW_MAX_BPMN_BYTES" in stderr
    ok = catflow("deploy", str(path), env={"CATFLOW_MAX_BPMN_BYTES": str(size)})
    assert ok.exit_code == 0, ok.output


def test_a_missing_file_is_refused(catflow: Catflow, tmp_path: Path) -> None:
    stderr = assert_refused(catflow("deploy", str(tmp_path / "nowhere.bpmn")))
    assert "nowhere.bpmn: cannot be read: No such file or directory" in stderr


def test_processes_folder_is_deployed_by_any_command(catflow: Catflow, project_dir: Path) -> None:
    write(project_dir / "processes", "invoice.bpmn", invoice())
    [listed] = processes(catflow)
    assert (listed["process_id"], listed["latest_version"]) == ("invoice", 1)
    assert listed["filename"] == str(project_dir.resolve() / "processes" / "invoice.bpmn")
    # Deploying a file of processes/ by name reports it like any other.
    result = catflow("deploy", str(project_dir / "processes" / "invoice.bpmn"), "--json")
    assert result.exit_code == 0, result.output
    assert [(r["version"], r["status"]) for r in json.loads(result.stdout)] == [(1, "unchanged")]


def test_a_bad_file_in_processes_stops_every_command(catflow: Catflow, project_dir: Path) -> None:
    write(project_dir / "processes", "invoice.bpmn", invoice())
    write(project_dir / "processes", "sync.bpmn", BROKEN)
    stderr = assert_refused(catflow("processes", "list", "--json"))
    assert "sync.bpmn:" in stderr
    assert "did you mean 'records.get'?" in stderr
    (project_dir / "processes" / "sync.bpmn").unlink()
    assert [p["process_id"] for p in processes(catflow)] == ["invoice"]


def test_a_version_deployed_by_hand_is_not_undone_by_processes_at_the_next_start(
    catflow: Catflow, project_dir: Path, tmp_path: Path
) -> None:
    write(project_dir / "processes", "invoice.bpmn", invoice("1 + 2"))
    other = write(tmp_path, "invoice-v2.bpmn", invoice("1 + 3"))
    result = catflow("deploy", str(other), "--json")
    assert result.exit_code == 0, result.output
    assert [(d["process_id"], d["version"], d["status"]) for d in json.loads(result.stdout)] == [
        ("invoice", 2, "new version")
    ]
    # Every later command loads processes/ again; v1's file is known, so v2 stays.
    for _ in range(2):
        assert [(p["latest_version"], p["versions"]) for p in processes(catflow)] == [(2, 2)]
