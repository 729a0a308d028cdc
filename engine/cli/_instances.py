"""`catflow instances ...`: inspect process instances and act on them."""

from __future__ import annotations

from typing import Any

import click

from engine import runtime
from engine.catalogs import Cause
from engine.errors import CatflowError
from engine.runtime import InstanceFilter, instance_detail, instance_summary, list_instances

from ._common import (
    cell,
    emit_json,
    handle_errors,
    parse_json_option,
    record_ref,
    state,
    table,
    who,
)

JSON_HELP = "Print JSON for scripts instead of a table."


@click.group("instances")
def instances() -> None:
    """Inspect process instances: where each is, what it did, why it failed — and act."""


@instances.command("start")
@click.argument("process_id")
@click.option("--data", help="Start variables as a JSON object, or @file.json.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@handle_errors
def start(process_id: str, data: str | None, as_json: bool) -> None:
    """Start an instance of PROCESS_ID (its latest version) by hand."""
    variables = parse_json_option(data, "--data") if data else {}
    if not isinstance(variables, dict):
        raise CatflowError("--data must be a JSON object of variables")
    project = state().project()
    with project.db.session() as session:
        row = runtime.start_process(
            session, process_id, variables, {"kind": "user", "user": Cause.person().user}
        )
        summary = instance_summary(row)
    if as_json:
        emit_json(summary)
    else:
        click.echo(
            f"instance {row.id} of {process_id} queued; a running `catflow serve` "
            "or `catflow run-once` runs it"
        )


@instances.command("list")
@click.option(
    "--state", "state_", type=click.Choice(runtime.states.ALL_STATES), help="Only this state."
)
@click.option("--process", "process_id", help="Only instances of this process id.")
@click.option("--record", help="Only instances started by this record, as CATALOG:ID.")
@click.option("--limit", default=100, show_default=True, help="At most this many instances.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@handle_errors
def list_(
    state_: str | None, process_id: str | None, record: str | None, limit: int, as_json: bool
) -> None:
    """List instances, newest first, with counts by state."""
    project = state().project()
    filters = InstanceFilter(
        state=state_,
        process_id=process_id,
        record=record_ref(record) if record else None,
        limit=limit,
    )
    with project.db.session() as session:
        rows, counts = list_instances(session, filters)
        items = [instance_summary(r) for r in rows]
    if as_json:
        emit_json({"items": items, "counts": counts})
        return
    table(
        ["id", "process", "state", "record", "created", "detail"],
        [
            [
                i["id"],
                i["process_id"],
                i["state"],
                i["record"],
                i["created_at"][:19],
                (i["error"] or {}).get("message") or i["waiting_for"],
            ]
            for i in items
        ],
    )
    click.echo("counts: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v), err=True)


@instances.command("show")
@click.argument("instance_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@handle_errors
def show(instance_id: int, as_json: bool) -> None:
    """Where instance ID is, its variables, its step log and its incidents."""
    project = state().project()
    with project.db.session() as session:
        detail = instance_detail(session, instance_id)
        blocker = runtime.blocking_predecessor(session, runtime.get_instance(session, instance_id))
    if as_json:
        emit_json(detail)
        return
    _print_detail(detail, blocker.id if blocker and detail["state"] == "queued" else None)


def _print_detail(d: dict[str, Any], blocked_by: int | None) -> None:
    click.echo(f"instance {d['id']}  {d['process_id']} v{d['version']}  [{d['state']}]")
    if d["record"]:
        click.echo(f"record:   {d['record']}  (event {d['event_id']}, rule {d['rule']})")
    if blocked_by:
        click.echo(f"queued behind instance {blocked_by} of the same record")
    if d["waiting_for"]:
        click.echo(f"waiting:  {d['waiting_for']}")
    if d["error"]:
        click.echo(f"incident: {d['error']['message']}")
        open_incident = next((i for i in d["incidents"] if not i["resolved_at"]), None)
        response = (open_incident or {}).get("details", {}) or {}
        if response.get("response") is not None:
            click.echo(f"response: {cell(response['response'], 300)}")
        click.echo(f"          fix the cause, then: catflow instances retry|skip|cancel {d['id']}")
    click.echo("\nvariables:")
    table(["name", "value"], sorted(d["variables"].items()))
    click.echo("\nsteps:")
    table(
        ["at", "element", "name", "outcome", "ms", "changed / message"],
        [
            [
                s["started_at"][11:23],
                s["element_id"],
                s["name"],
                s["outcome"],
                s["duration_ms"],
                s["message"] or ", ".join(s["changed"] or {}),
            ]
            for s in d["steps"]
        ],
    )
    calls = [(s, e) for s in d["steps"] for e in s["exchanges"] if "method" in e]
    if calls:
        click.echo("\noutbound calls (secrets redacted):")
        table(
            ["at", "element", "request", "status", "ms", "then"],
            [
                [
                    e["at"][11:23],
                    s["element_id"],
                    f"{e['method']} {e['url']}",
                    e.get("status") or e.get("error", ""),
                    e["duration_ms"],
                    e.get("next", ""),
                ]
                for s, e in calls
            ],
        )


def _action(name: str, help_text: str) -> None:
    @instances.command(name, help=help_text)
    @click.argument("instance_id", metavar="ID", type=int)
    @handle_errors
    def command(instance_id: int) -> None:
        project = state().project()
        action = getattr(runtime, name)
        with project.db.session() as session:
            row = action(session, instance_id, who())
            new_state = row.state
        click.echo(f"instance {instance_id}: {name} done; now {new_state}")


@instances.command("retry")
@click.argument("instance_id", metavar="ID", type=int)
@click.option(
    "--upgrade",
    is_flag=True,
    help="First move the instance to its process's latest version (a deployed fix).",
)
@handle_errors
def retry(instance_id: int, upgrade: bool) -> None:
    """Run the failed task of instance ID again (after fixing the cause)."""
    project = state().project()
    with project.db.session() as session:
        row = runtime.retry(session, instance_id, who(), upgrade=upgrade)
        new_state = row.state
    click.echo(f"instance {instance_id}: retry done; now {new_state}")


_action("cancel", "Cancel instance ID; it will not run again.")
_action("suspend", "Pause instance ID; nothing runs until it is resumed.")
_action("resume", "Resume suspended instance ID where it was.")


@instances.command("skip")
@click.argument("instance_id", metavar="ID", type=int)
@click.option("--data", help="Variables to set in place of the skipped task's result (JSON).")
@handle_errors
def skip(instance_id: int, data: str | None) -> None:
    """Complete the failed task of instance ID without running it, and go on."""
    values = parse_json_option(data, "--data") if data else {}
    if not isinstance(values, dict):
        raise CatflowError("--data must be a JSON object of variables")
    project = state().project()
    with project.db.session() as session:
        row = runtime.skip(session, instance_id, who(), values)
        new_state = row.state
    click.echo(f"instance {instance_id}: skip done; now {new_state}")


@instances.command("complete-task")
@click.argument("instance_id", metavar="ID", type=int)
@click.argument("task", metavar="TASK")
@click.option("--data", required=True, help="The task's answer: variables as a JSON object.")
@handle_errors
def complete_task(instance_id: int, task: str, data: str) -> None:
    """Complete user task TASK (its element id) of instance ID with --data."""
    values = parse_json_option(data, "--data")
    project = state().project()
    with project.db.session() as session:
        runtime.complete_user_task(session, instance_id, task, values, who())
    click.echo(f"instance {instance_id}: task {task} completed; it runs on")
