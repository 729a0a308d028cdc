"""The `catflow` command."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from engine import __version__
from engine.logs import configure_logging
from engine.runtime import Runner, list_processes, open_incidents

from ._common import State, emit_json, handle_errors, safe_url, start_http, state, table
from ._connections import connections
from ._demo import demo
from ._emulator import emulator
from ._instances import instances
from ._records import records
from ._tokens import tokens

JSON_HELP = "Print JSON for scripts instead of a table."


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project",
    "project_dir",
    type=click.Path(file_okay=False, path_type=str),
    envvar="CATFLOW_HOME",
    help="The project folder (with catalogs/ and processes/). Default: $CATFLOW_HOME or the "
    "current folder.",
)
@click.option(
    "--log-level",
    default=lambda: os.environ.get("CATFLOW_LOG_LEVEL"),
    help="Level of the JSON log on stderr (default: $CATFLOW_LOG_LEVEL, else info for "
    "serve and warning for the rest).",
)
@click.version_option(__version__, prog_name="catflow")
@click.pass_context
def cli(ctx: click.Context, project_dir: str | None, log_level: str | None) -> None:
    """Catflow: BPMN processes started by changes to catalog records.

    Every command loads the project first: it migrates the database, deploys
    processes/*.bpmn and loads catalogs/*.yaml, refusing with the reasons if
    any file is invalid.
    """
    configure_logging(log_level or ("info" if ctx.invoked_subcommand == "serve" else "warning"))
    ctx.obj = State(project_dir)
    ctx.call_on_close(ctx.obj.close)


cli.add_command(records)
cli.add_command(instances)
cli.add_command(connections)
cli.add_command(emulator)
cli.add_command(demo)
cli.add_command(tokens)


@cli.command("deploy")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@handle_errors
def deploy(files: tuple[Path, ...], as_json: bool) -> None:
    """Validate and deploy BPMN FILES; all of them, or none if any is refused.

    Deploying the same content again changes nothing; changed content becomes a new
    version, and running instances stay on the version they started with.
    """
    project = state().project(extra_files=files)
    wanted = {str(f.resolve()) for f in files}
    # A file in processes/ is seen at start and again as named: report it once, last.
    results = list(
        {
            (r.filename, r.process_id): r
            for r in project.deployed
            if str(Path(r.filename).resolve()) in wanted
        }.values()
    )
    if as_json:
        emit_json([r.__dict__ for r in results])
        return
    table(
        ["process", "version", "status", "file"],
        [[r.process_id, r.version, r.status, r.filename] for r in results],
    )


@cli.group("processes")
def processes() -> None:
    """Deployed process definitions."""


@processes.command("list")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@handle_errors
def processes_list(as_json: bool) -> None:
    """List deployed processes with their latest version."""
    project = state().project()
    with project.db.session() as session:
        items = list_processes(session)
    if as_json:
        emit_json([p.__dict__ for p in items])
        return
    table(
        ["process", "name", "version", "versions", "instances", "deployed", "file"],
        [
            [
                p.process_id,
                p.name,
                p.latest_version,
                p.versions,
                p.instances,
                p.deployed_at,
                p.filename,
            ]
            for p in items
        ],
    )


@cli.group("catalogs")
def catalogs() -> None:
    """Catalog definitions (loaded from catalogs/*.yaml)."""


@catalogs.command("list")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@handle_errors
def catalogs_list(as_json: bool) -> None:
    """List catalogs with their fields and trigger rules."""
    project = state().project()
    items = [c.to_dict() for c in project.catalogs.values()]
    if as_json:
        emit_json(items)
        return
    table(
        ["catalog", "fields", "triggers"],
        [
            [
                c["name"],
                ", ".join(c["fields"]),
                "; ".join(f"{t['on']} -> {t['process']}" for t in c["triggers"]),
            ]
            for c in items
        ],
    )


@cli.group("incidents")
def incidents() -> None:
    """Failures that need a person."""


@incidents.command("list")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@handle_errors
def incidents_list(as_json: bool) -> None:
    """List open incidents."""
    project = state().project()
    with project.db.session() as session:
        rows = open_incidents(session)
        items = [
            {
                "id": i.id,
                "instance_id": i.instance_id,
                "element_id": i.element_id,
                "line": i.line,
                "kind": i.kind,
                "message": i.message,
                "created_at": i.created_at.isoformat(),
            }
            for i in rows
        ]
    if as_json:
        emit_json(items)
        return
    table(
        ["id", "instance", "element", "kind", "message"],
        [[i["id"], i["instance_id"], i["element_id"], i["kind"], i["message"]] for i in items],
    )


@cli.command("run-once")
@handle_errors
def run_once() -> None:
    """Do all work that is due now — dispatch record events, run instances — and exit."""
    project = state().project()
    report = Runner(project, workers=1).run_once()
    states = ", ".join(f"{n} {s}" for s, n in sorted(report.states.items())) or "none"
    click.echo(
        f"dispatched {report.events} event(s), created {report.instances_created} instance(s), "
        f"ran {report.runs} time(s): {states}"
    )


@cli.command("serve")
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    help="Worker threads, per worker process if there are any (default: $CATFLOW_WORKERS or 4).",
)
@click.option(
    "--worker-processes",
    type=click.IntRange(min=0),
    help="Run the workers in this many child processes, to use more than one core "
    "(default: $CATFLOW_WORKER_PROCESSES or 0: threads of this process).",
)
@click.option(
    "--host",
    default=lambda: os.environ.get("CATFLOW_HTTP_HOST", "127.0.0.1"),
    show_default="$CATFLOW_HTTP_HOST or 127.0.0.1",
    help="Address the HTTP API and pages listen on.",
)
@click.option(
    "--port",
    type=int,
    default=lambda: int(os.environ.get("CATFLOW_HTTP_PORT", "8080")),
    show_default="$CATFLOW_HTTP_PORT or 8080",
    help="Port of the HTTP API and pages.",
)
@click.option("--no-http", is_flag=True, help="Serve no HTTP API or pages (workers only).")
@click.option(
    "--no-workers",
    is_flag=True,
    help="Run no workers here: publish due instances to the Celery broker "
    "($CATFLOW_BROKER_URL) for `catflow worker` processes.",
)
@handle_errors
def serve(
    workers: int | None,
    worker_processes: int | None,
    host: str,
    port: int,
    no_http: bool,
    no_workers: bool,
) -> None:
    """Run the dispatcher, the scheduler, the workers and the HTTP API until stopped (Ctrl-C)."""
    project = state().project()
    if no_workers:
        runner = Runner(project, workers=0, processes=0)
    else:
        runner = Runner(project, workers=workers, processes=worker_processes)
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        click.echo(
            f"\nstopping ({signal.Signals(signum).name}); finishing the steps at hand", err=True
        )
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    where = safe_url(project.settings.database_url)
    http = None
    if not no_http:
        http = start_http(project, host, port)
    click.echo(
        f"catflow serving {project.settings.project_dir} on {where}"
        + (
            f" with {runner.processes} worker process(es) of {runner.workers} thread(s)"
            if runner.processes
            else f" with {runner.workers} worker(s)"
            if runner.workers
            else f" with Celery workers via {_safe_broker(project.settings.broker_url)}"
        )
        + (f"; API and pages at {http.base_url} (OpenAPI: {http.base_url}/docs)" if http else "")
        + "; Ctrl-C stops",
        err=True,
    )
    try:
        runner.serve(stop)
    finally:
        if http is not None:
            http.stop()


def _safe_broker(url: str) -> str:
    return safe_url(url) if "://" in url else url


@cli.command("worker")
@click.option(
    "--concurrency",
    type=int,
    default=lambda: int(os.environ.get("CATFLOW_WORKERS", "4")),
    show_default="$CATFLOW_WORKERS or 4",
    help="Worker processes of this Celery worker.",
)
@handle_errors
def worker(concurrency: int) -> None:
    """Run a Celery worker: take instance ids from the broker and run them (Ctrl-C stops).

    The broker is $CATFLOW_BROKER_URL (Redis by default, redis://127.0.0.1:6379/0; a
    RabbitMQ amqp:// URL works too); the store is $CATFLOW_DATABASE_URL, which must be
    the PostgreSQL database `catflow serve --no-workers` uses. Start as many as you like,
    on as many machines.
    """
    from engine.runtime import run_worker

    project = state().project()  # migrates and checks the project before serving
    settings = project.settings
    project.close()
    click.echo(
        f"catflow worker on {safe_url(settings.database_url)} via "
        f"{_safe_broker(settings.broker_url)}, {concurrency} process(es); Ctrl-C stops",
        err=True,
    )
    run_worker(settings, concurrency)


def main() -> None:
    cli(prog_name="catflow")
